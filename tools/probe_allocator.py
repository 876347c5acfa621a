"""What PyTorch's caching allocator holds for a model's weights, by how they reach the GPU, and the allocation order
of our own measurements' builds: the data hfvram/estimate/allocator.py is checked against.

1. `--orders`: for each model, the tensors tools/measure_transformers.py `build` allocates, in its order, built on
   the meta device (no GPU memory): one JSON line {"model", "dtype", "tensors": [[kind, name, bytes], ...]}, kind
   "p" (a parameter; tied ones once) or "b" (a buffer). Written gzip'd with --out.
2. `--measure`: for each model, on the GPU, after the allocator was emptied:
   - "per_tensor": `build` as our measurements do, one allocation per tensor in module order (what loading on the
     CPU and then `.to("cuda")` does too);
   - "warmup": one fp16 block of the parameters' bytes allocated and freed first, as transformers'
     `caching_allocator_warmup` (modeling_utils.py) does before from_pretrained loads onto a device, then `build`;
   with memory_allocated, the allocator's requested bytes, memory_reserved and the segment count after each.

    python tools/probe_allocator.py --orders --out validation/own-h200/built-tensors.jsonl.gz MODEL...
    python tools/probe_allocator.py --measure MODEL...   # JSON lines on stdout
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def orders(models: list[str], dtype: str, attn: str = "sdpa") -> list[dict]:
    import measure_transformers as mt

    out = []
    for repo in models:
        t0 = time.time()
        trace: list = []
        try:
            model, _ = mt.build(repo, dtype, "meta", attn=attn, trace=trace)
            del model
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            print(json.dumps({"model": repo, "error": f"{type(exc).__name__}: {exc}"[:300]}), flush=True)
            continue
        out.append({"model": repo, "dtype": dtype, "tensors": [list(t) for t in trace]})
        print(json.dumps({"model": repo, "tensors": len(trace), "bytes": sum(t[2] for t in trace),
                          "seconds": round(time.time() - t0, 1)}), flush=True)
        gc.collect()
    return out


def measure(models: list[str], dtype: str, attn: str = "sdpa") -> None:
    import torch

    import measure_transformers as mt

    def state() -> dict:
        torch.cuda.synchronize()
        stats = torch.cuda.memory_stats()
        return {"allocated": int(torch.cuda.memory_allocated()),
                "requested": int(stats.get("requested_bytes.all.current", -1)),
                "reserved": int(torch.cuda.memory_reserved()),
                "segments": int(stats.get("segment.all.current", -1))}

    for repo in models:
        for variant in ("per_tensor", "warmup"):
            gc.collect()
            torch.cuda.empty_cache()
            start = state()
            t0 = time.time()
            trace: list = []
            try:
                if variant == "warmup":
                    meta_trace: list = []
                    meta, _ = mt.build(repo, dtype, "meta", attn=attn, trace=meta_trace)
                    del meta
                    total = sum(b for kind, _, b in meta_trace if kind == "p")
                    torch.empty(int(total // 2), dtype=torch.float16, device="cuda")  # freed at once, kept cached
                model, _ = mt.build(repo, dtype, "cuda", attn=attn, trace=trace)
                after = state()
                del model
            except Exception as exc:  # noqa: BLE001 - out of memory, say: reported, the others go on
                print(json.dumps({"model": repo, "variant": variant, "error": f"{type(exc).__name__}: {exc}"[:300]}),
                      flush=True)
                continue
            print(json.dumps({"model": repo, "dtype": dtype, "variant": variant, "start": start, "after": after,
                              "tensor_bytes": sum(t[2] for t in trace), "tensors": len(trace),
                              "seconds": round(time.time() - t0, 1)}), flush=True)
    gc.collect()
    torch.cuda.empty_cache()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--orders", action="store_true")
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--out", help="where --orders writes its gzip'd JSON lines")
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (eager for Mamba, as its runs used)")
    args = ap.parse_args(argv)
    if args.orders:
        found = orders(args.models, args.dtype, args.attn)
        if args.out:
            with gzip.open(args.out, "wt") as f:
                for entry in found:
                    f.write(json.dumps(entry, separators=(",", ":")) + "\n")
    if args.measure:
        measure(args.models, args.dtype, args.attn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
