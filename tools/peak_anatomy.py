"""What is alive at a generate() run's allocated peak, and which line of code allocated it: the run as
tools/measure_transformers.py makes it (`build`, `run_once`), with PyTorch's allocator history recorded
(torch.cuda.memory._record_memory_history, Python stacks). The history is replayed to the moment the allocated bytes
peak; the blocks alive then, beyond what was allocated before the run (the weights), are grouped by the innermost
frame in transformers' code (else torch's, else any) and summed.

    python tools/peak_anatomy.py Qwen/Qwen3-0.6B:1:8192 nvidia/Nemotron-H-56B-Base-8K:1:128 [--attn eager]

One JSON line per run: the peak as max_memory_allocated() gives it and as replayed, the bytes alive before the run,
and the groups (frame, bytes, blocks, the largest block sizes), largest first.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MAX_ENTRIES = 1_000_000  # allocator events kept (a 16-token generate() of a 100-layer model makes ~10^5)


def frame_key(frames: list[dict]) -> str:
    """The innermost frame in transformers' code, else in torch's Python, else the innermost frame at all."""
    for want in ("transformers/", "torch/", ""):
        for f in frames:
            name = f.get("filename", "")
            if want in name and not name.endswith(("memory.py", "_memory_viz.py")):
                short = name.split("site-packages/")[-1]
                return f"{short}:{f.get('line')} {f.get('name')}"
    return "?"


def replay(trace: list[dict]) -> tuple[int, dict[int, dict]]:
    """(the peak of bytes allocated during the trace, the blocks alive at that peak)."""
    free_action = "free_completed" if any(e.get("action") == "free_completed" for e in trace) else "free_requested"
    live: dict[int, dict] = {}
    current = peak = 0
    peak_at = -1
    for i, e in enumerate(trace):
        action = e.get("action")
        if action == "alloc":
            live[e["addr"]] = e
            current += e["size"]
            if current > peak:
                peak, peak_at = current, i
        elif action == free_action and e["addr"] in live:
            current -= live.pop(e["addr"])["size"]
    live = {}
    for e in trace[:peak_at + 1]:
        if e.get("action") == "alloc":
            live[e["addr"]] = e
        elif e.get("action") == free_action:
            live.pop(e["addr"], None)
    return peak, live


def anatomy(spec: str, attn: str, new_tokens: int) -> dict:
    import torch

    import measure_transformers as mt

    repo, batch, prompt = spec.rsplit(":", 2)
    model, config = mt.build(repo, "bf16", "cuda", attn=attn)
    mt.run_once(model, config, {"batch": 1, "prompt": 16}, 2, "cuda", measure=False)  # kernels loaded, as after a warm-up
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = int(torch.cuda.memory_allocated())
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.memory._record_memory_history(max_entries=MAX_ENTRIES, stacks="python")
    t0 = time.time()
    try:
        out = mt.run_once(model, config, {"batch": int(batch), "prompt": int(prompt)}, new_tokens, "cuda",
                          measure=True)
        snapshot = torch.cuda.memory._snapshot()
    finally:
        torch.cuda.memory._record_memory_history(enabled=None)
    traces = snapshot.get("device_traces") or [[]]
    trace = traces[torch.cuda.current_device()] if len(traces) > 1 else traces[0]
    peak, live = replay(trace)
    groups: dict[str, list] = defaultdict(lambda: [0, 0, []])
    for e in live.values():
        g = groups[frame_key(e.get("frames") or [])]
        g[0] += e["size"]
        g[1] += 1
        g[2].append(e["size"])
    top = sorted(([k, v[0], v[1], sorted(v[2], reverse=True)[:4]] for k, v in groups.items()), key=lambda x: -x[1])
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return {"model": repo, "batch": int(batch), "prompt": int(prompt), "attn": attn, "new_tokens": new_tokens,
            "before": before, "max_allocated": out.get("peak_allocated_bytes"), "replayed_peak": before + peak,
            "events": len(trace), "seconds": round(time.time() - t0, 1), "groups": top[:30]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="MODEL:BATCH:PROMPT")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args(argv)
    for spec in args.runs:
        try:
            print(json.dumps(anatomy(spec, args.attn, args.new_tokens)), flush=True)
        except Exception as exc:  # noqa: BLE001 - out of memory, say: reported, the others go on
            print(json.dumps({"run": spec, "error": f"{type(exc).__name__}: {exc}"[:400]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
