"""Our own measurements: random-weight models built from the fixture configs, run under HF transformers on one GPU
at several prompt lengths, batch sizes and dtypes; peak allocated, peak reserved and the process's GPU memory (NVML,
as nvidia-smi shows it) written as validation case rows (validation/CASES.md schema, source "hfvram own
measurement").

    pip install -e '.[measure]'                       # torch + nvidia-ml-py (transformers is a dependency already)
    python tools/measure_transformers.py              # the default grid, within --budget-s (540 s) on one GPU
    python tools/measure_transformers.py --models Qwen/Qwen3-0.6B --prompts 512,8192 --batches 1 --dtypes bf16
    python tools/measure_transformers.py --device cpu --dry-run --models openai-community/gpt2 --max-layers 2 \\
        --prompts 16 --batches 1,2 --new-tokens 4 --out -   # everything but the CUDA calls (what the tests run)

How a model is built (no download, no checkpoint): the fixture's config.json (fixtures/<org>--<name>/, real configs
with provenance) -> `AutoModelForCausalLM.from_config` with its parameters on the meta device (buffers such as
rotary tables are computed for real) -> every parameter materialised on the GPU (the `to_empty` step) and filled with
N(0, 0.02). Tied parameters stay tied. Memory depends on shapes and dtypes, not values, so random weights measure the
same bytes as the checkpoint (the figures' `arch_note` says so).

One run = `generate()` over a random prompt of `prompt` tokens x `batch` sequences for `--new-tokens` greedy tokens,
with the allocator's cache emptied and its peak counters reset first. Recorded per run:
- `weights_bytes`: torch.cuda.memory_allocated() after the model was built (before the run);
- `peak_allocated_bytes`: torch.cuda.max_memory_allocated() over the run (what validation's transformers cases
  record; excludes the CUDA context and the allocator's cache);
- `peak_reserved_bytes`: torch.cuda.max_memory_reserved() over the run (the caching allocator's segments);
- `total_used_bytes`: this process's GPU memory from NVML after the run (nvmlDeviceGetComputeRunningProcesses, the
  figure nvidia-smi prints: context + reserved segments + library workspaces).

The whole default grid is sized for one 10-minute call on one GPU: runs go from small to large, each model is built
once per dtype, and `--budget-s` (default 540 s) stops before a run that the time measured so far says would not
finish in time; what was skipped, and why, is printed and written to the summary. A run that runs out of memory is
recorded in the summary (not as a case) and the grid goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SOURCE = "hfvram own measurement (tools/measure_transformers.py)"

# Small to large, dense and sliding-window/softcapped (gemma-2), GQA and MHA (Phi-3): the architectures the
# transformers cases in validation/ name most, all in fixtures/ with their real configs.
DEFAULT_MODELS = ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-0.6B", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B",
                  "Qwen/Qwen3-4B", "microsoft/Phi-3-mini-4k-instruct", "meta-llama/Meta-Llama-3.1-8B",
                  "google/gemma-2-9b-it")
DEFAULT_PROMPTS = (128, 2048, 8192, 32768)
DEFAULT_BATCHES = (1, 4)
DEFAULT_DTYPES = ("bf16", "fp16")
DEFAULT_NEW_TOKENS = 16
# Skip runs whose batch x prompt exceeds this many tokens: they are the slow ones and add nothing the smaller runs and
# the per-token KV arithmetic do not already pin down (32K x 4 on an 8B model is ~20 s of prefill alone).
MAX_BATCH_TOKENS = 65536
# A 10-minute call (the device tool's per-call limit), less a minute for the interpreter, the torch/transformers
# imports and CUDA start-up, which run before the budget's clock starts.
DEFAULT_BUDGET_S = 540
# Time to build a model before any build has been timed: the CPU dry run here built gemma-2-9b cut to 2 layers
# (its 256K x 3584 embedding dominates) in 13.5-18.5 s; after the first build the longest build measured is used.
FIRST_BUILD_GUESS_S = 20.0
INIT_STD = 0.02  # the usual initializer_range of these configs; values do not change the bytes
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def fixture_dir(repo_id: str) -> Path:
    path = FIXTURES / repo_id.replace("/", "--")
    if not (path / "config.json").is_file():
        raise SystemExit(f"measure_transformers: no fixture config for {repo_id} ({path}/config.json)")
    return path


def plan(models, dtypes, batches, prompts, new_tokens: int, max_positions: dict) -> tuple[list, list]:
    """The runs in order (model, dtype, then batch x prompt from small to large) and those left out, with why."""
    runs, skipped = [], []
    for model in models:
        for dtype in dtypes:
            for batch, prompt in sorted(((b, p) for b in batches for p in prompts), key=lambda bp: bp[0] * bp[1]):
                why = None
                if batch * prompt > MAX_BATCH_TOKENS:
                    why = f"batch x prompt {batch * prompt:,} > {MAX_BATCH_TOKENS:,} tokens"
                elif max_positions.get(model) and prompt + new_tokens > max_positions[model]:
                    why = f"prompt + new tokens {prompt + new_tokens:,} > the model's {max_positions[model]:,}"
                (skipped if why else runs).append(
                    {"model": model, "dtype": dtype, "batch": batch, "prompt": prompt, "why": why})
    return runs, [dict(s) for s in skipped]


@contextlib.contextmanager
def parameters_on_meta():
    """Parameters created on the meta device, buffers for real (rotary tables, masks): the part of accelerate's
    init_empty_weights(include_buffers=False) we need, without depending on accelerate."""
    from torch import nn

    original = nn.Module.register_parameter

    def register(module, name, param):
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            kwargs = param.__dict__
            module._parameters[name] = type(param)(param.to("meta"), **kwargs) if kwargs else \
                nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def build(repo_id: str, dtype: str, device: str, max_layers: int | None = None, attn: str = "sdpa",
          trace: list | None = None):
    """The fixture's architecture with random weights on `device`. `trace`: a list to which every tensor this
    materialises on `device` is appended, in the order it is allocated, as (kind "p"/"b", name, bytes)."""
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(fixture_dir(repo_id))  # a local folder: never the Hub, never remote code
    if max_layers is not None:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        for key in ("num_hidden_layers", "n_layer", "num_layers"):
            if getattr(text, key, None):
                setattr(text, key, min(getattr(text, key), max_layers))
        if getattr(text, "layer_types", None):
            text.layer_types = text.layer_types[:max_layers]
    torch_dtype = getattr(torch, DTYPES[dtype])
    with parameters_on_meta():
        try:
            model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype, attn_implementation=attn)
        except TypeError:  # transformers < 4.56 spelled it torch_dtype
            model = AutoModelForCausalLM.from_config(config, torch_dtype=torch_dtype, attn_implementation=attn)
    materialised: dict[int, nn.Parameter] = {}
    with torch.no_grad():
        for prefix, module in model.named_modules():
            for name, param in list(module._parameters.items()):
                if param is None:
                    continue
                if id(param) not in materialised:  # tied parameters share one tensor
                    t = torch.empty(param.shape, dtype=param.dtype, device=device)
                    if t.is_floating_point():
                        t.normal_(0.0, INIT_STD)
                    else:
                        t.zero_()
                    materialised[id(param)] = nn.Parameter(t, requires_grad=False)
                    if trace is not None:
                        trace.append(("p", f"{prefix}.{name}".lstrip("."), t.numel() * t.element_size()))
                module._parameters[name] = materialised[id(param)]
            for name, buf in list(module._buffers.items()):
                if buf is not None and buf.device.type != device.split(":")[0]:
                    module._buffers[name] = buf.to(device)
                    if trace is not None:
                        trace.append(("b", f"{prefix}.{name}".lstrip("."), buf.numel() * buf.element_size()))
    model.eval()
    model.generation_config.eos_token_id = None  # run exactly --new-tokens steps
    model.generation_config.pad_token_id = 0
    return model, config


def versions(device: str) -> dict:
    import torch
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
           "cuda": torch.version.cuda, "device": device}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
        free, total = torch.cuda.mem_get_info(0)
        out["gpu_total_bytes"] = int(total)
        out["gpu_free_bytes_at_start"] = int(free)
    nv = nvml()
    if nv is not None:
        out["driver"] = nv.driver()
    return out


class NVML:
    """The process's GPU memory as nvidia-smi shows it (nvidia-ml-py)."""

    def __init__(self):
        import pynvml

        pynvml.nvmlInit()
        self.n = pynvml
        index = int((os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0] or 0)
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)

    def driver(self) -> str:
        v = self.n.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)

    def process_bytes(self) -> int | None:
        procs = self.n.nvmlDeviceGetComputeRunningProcesses(self.handle)
        mine = [p for p in procs if p.pid == os.getpid()]
        if not mine and len(procs) == 1:  # a container's PID namespace: the only process is this one
            mine = procs
        return int(mine[0].usedGpuMemory) if mine and mine[0].usedGpuMemory is not None else None

    def device_used_bytes(self) -> int:
        return int(self.n.nvmlDeviceGetMemoryInfo(self.handle).used)


_NVML: list = []


def nvml() -> NVML | None:
    if not _NVML:
        try:
            _NVML.append(NVML())
        except Exception:  # noqa: BLE001 - no driver, no GPU, or nvidia-ml-py not installed
            _NVML.append(None)
    return _NVML[0]


def run_once(model, config, run: dict, new_tokens: int, device: str, measure: bool) -> dict:
    """One generate() call; the memory figures when `measure` (a CUDA device)."""
    import torch

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = int(getattr(text, "vocab_size"))
    gen = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(1, max(2, vocab - 1), (run["batch"], run["prompt"]), generator=gen).to(device)
    mask = torch.ones_like(ids)
    out: dict = {}
    if measure:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        out["weights_bytes"] = int(torch.cuda.memory_allocated())
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.no_grad():
        result = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                                min_new_tokens=new_tokens, do_sample=False, use_cache=True)
    if measure:
        torch.cuda.synchronize()
    out["seconds"] = round(time.perf_counter() - start, 3)
    out["generated_tokens"] = int(result.shape[1] - ids.shape[1])
    if measure:
        out["peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
        out["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        nv = nvml()
        out["total_used_bytes"] = nv.process_bytes() if nv is not None else None
        out["device_used_bytes"] = nv.device_used_bytes() if nv is not None else None
    del result, ids, mask
    return out


QUANTITIES = {
    "weights_bytes": "torch.cuda.memory_allocated() after building the model, before the run: the weights as held",
    "peak_allocated_bytes": "torch.cuda.max_memory_allocated() over generate(): excludes the CUDA context and the "
                            "allocator's cache",
    "peak_reserved_bytes": "torch.cuda.max_memory_reserved() over generate(): the caching allocator's segments",
    "total_used_bytes": "this process's GPU memory from NVML after generate() (nvmlDeviceGetComputeRunningProcesses, "
                        "what nvidia-smi shows): CUDA context + reserved segments + library workspaces",
}


def rows_for(run: dict, result: dict, info: dict, args, dry: bool) -> list[dict]:
    slug = re.sub(r"[^a-z0-9.]+", "-", run["model"].split("/")[-1].lower()).strip("-")
    gpu = info.get("gpu") or ("cpu (dry run)" if dry else None)
    settings = {"gpu": gpu, "gpu_total_bytes": info.get("gpu_total_bytes"), "dtype": run["dtype"],
                "kv_dtype": run["dtype"], "batch": run["batch"], "prompt_tokens": run["prompt"],
                "new_tokens": args.new_tokens, "context": run["prompt"] + args.new_tokens,
                "attn_implementation": args.attn, "cache_implementation": "dynamic", "weights": "random (from_config)"}
    if args.max_layers is not None:
        settings["max_layers"] = args.max_layers
    version = (f"{info['transformers']} (torch {info['torch']}, CUDA {info.get('cuda')}, driver "
               f"{info.get('driver')})")
    raw = {k: result.get(k) for k in ("weights_bytes", "peak_allocated_bytes", "peak_reserved_bytes",
                                      "total_used_bytes", "device_used_bytes", "seconds", "generated_tokens")}
    out = []
    for quantity, meaning in QUANTITIES.items():
        measured = result.get(quantity)
        why = None
        if dry:
            why = "dry run on the CPU: the script's path without its CUDA calls; nothing measured"
        elif measured is None:
            why = "NVML gave no figure for this process" if quantity == "total_used_bytes" else "not measured"
        out.append({
            # the attention implementation in the id when it is not the default sdpa (ids stay unique in one file)
            "id": f"own-hf-{slug}-{run['dtype']}-b{run['batch']}-p{run['prompt']}-n{args.new_tokens}-"
                  f"{'' if args.attn == 'sdpa' else args.attn + '-'}{quantity.replace('_bytes', '')}",
            "model": run["model"], "base_model": run["model"], "framework": "transformers",
            "framework_version": version, "settings": settings,
            "defaults_assumed": [f"attn_implementation={args.attn} (set by the script)",
                                 "cache_implementation=dynamic (generate()'s default DynamicCache)"],
            "quantity": quantity, "measured": measured,
            "unit_note": f"Bytes as measured: {meaning}.",
            "per_gpu": True, "source": SOURCE,
            "quote": json.dumps({"run": {k: run[k] for k in ("model", "dtype", "batch", "prompt")}, **raw}),
            "usable": bool(measured is not None and not dry), "why_unusable": why,
            "arch_config": run["model"],
            "arch_note": f"random weights built from fixtures/{run['model'].replace('/', '--')}/config.json (the "
                         f"checkpoint's shapes and dtypes; values do not change the bytes)",
            "measurement": {"versions": info, "raw": raw, "date": dt.date.today().isoformat()},
        })
    return out


def OOM_ERRORS(torch) -> tuple:
    """torch.OutOfMemoryError (2.5+), torch.cuda.OutOfMemoryError before."""
    return tuple({getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError,
                  torch.cuda.OutOfMemoryError})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/measure_transformers.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="fixture repo ids, comma-separated")
    ap.add_argument("--prompts", default=",".join(map(str, DEFAULT_PROMPTS)), help="prompt lengths (tokens)")
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="batch sizes")
    ap.add_argument("--dtypes", default=",".join(DEFAULT_DTYPES), help="bf16, fp16, fp32")
    ap.add_argument("--new-tokens", type=int, default=DEFAULT_NEW_TOKENS)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="attn_implementation")
    ap.add_argument("--device", default="cuda", help="cuda (measure) or cpu (with --dry-run)")
    ap.add_argument("--dry-run", action="store_true", help="run everything but the CUDA calls; rows are unusable")
    ap.add_argument("--max-layers", type=int, default=None, help="dry runs only: cut every model to N layers")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="stop before a run that would not end "
                    "within this many seconds of the start")
    ap.add_argument("--out", default=None, help="JSONL of case rows (default validation/cases-own-transformers-"
                    "<gpu>.jsonl; '-' for stdout)")
    ap.add_argument("--summary", default=None, help="JSON summary: runs done, skipped and why (default: stderr)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    if args.device.startswith("cpu") and not args.dry_run:
        ap.error("--device cpu measures nothing: add --dry-run")
    if args.max_layers is not None and not args.dry_run:
        ap.error("--max-layers changes the architecture: dry runs only")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for d in dtypes:
        if d not in DTYPES:
            ap.error(f"--dtypes: {d!r} is not one of {', '.join(DTYPES)}")
    batches = [int(b) for b in args.batches.split(",")]
    prompts = [int(p) for p in args.prompts.split(",")]
    max_positions = {}
    for m in models:
        cfg = json.loads((fixture_dir(m) / "config.json").read_text())
        text = cfg.get("text_config") or cfg
        max_positions[m] = text.get("max_position_embeddings") or text.get("n_positions")
    runs, skipped = plan(models, dtypes, batches, prompts, args.new_tokens, max_positions)

    import torch

    measure = args.device.startswith("cuda") and not args.dry_run
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device: run on a GPU machine, or use --device cpu --dry-run")
    info = versions(args.device if measure else "cpu")
    slug = re.sub(r"[^a-z0-9]+", "-", (info.get("gpu") or "cpu").lower()).strip("-")
    out_path = args.out or ("-" if args.dry_run else str(ROOT / "validation" / f"cases-own-transformers-{slug}.jsonl"))
    stream = sys.stdout if out_path == "-" else open(out_path, "w")
    done, failed = [], []
    durations: dict = {}  # (model, dtype) -> seconds per prompt token of the runs so far
    build_s = FIRST_BUILD_GUESS_S
    built_key, model, config = None, None, None
    try:
        for run in runs:
            key = (run["model"], run["dtype"])
            elapsed = time.perf_counter() - started
            rate = durations.get(key) or (max(durations.values()) if durations else None)
            guess = rate * run["batch"] * run["prompt"] if rate else 0.0
            if key != built_key:
                guess += build_s
            if elapsed + guess > args.budget_s:
                skipped.append({**run, "why": f"time budget: {elapsed:.0f} s spent, this run ~{guess:.0f} s more "
                                              f"> --budget-s {args.budget_s:g}"})
                continue
            if key != built_key:
                model = config = None
                if measure:
                    torch.cuda.empty_cache()
                t0 = time.perf_counter()
                model, config = build(run["model"], run["dtype"], args.device, args.max_layers, args.attn)
                built_key = key
                took = time.perf_counter() - t0
                build_s = took if build_s == FIRST_BUILD_GUESS_S else max(build_s, took)
                print(f"built {run['model']} {run['dtype']} in {took:.1f} s", file=sys.stderr)
            try:
                result = run_once(model, config, run, args.new_tokens, args.device, measure)
            except OOM_ERRORS(torch) as exc:
                failed.append({**run, "why": "out of memory: " + " ".join(str(exc).split())[:300]})
                if measure:
                    torch.cuda.empty_cache()
                continue
            durations[key] = max(durations.get(key, 0.0), result["seconds"] / (run["batch"] * run["prompt"]))
            for row in rows_for(run, result, info, args, args.dry_run):
                stream.write(json.dumps(row) + "\n")
            stream.flush()
            done.append({**{k: run[k] for k in ("model", "dtype", "batch", "prompt")}, **result})
            print(f"{run['model']} {run['dtype']} b{run['batch']} p{run['prompt']}: {result}", file=sys.stderr)
    finally:
        if stream is not sys.stdout:
            stream.close()
    summary = {"out": out_path, "seconds": round(time.perf_counter() - started, 1), "versions": info,
               "runs": done, "out_of_memory": failed, "skipped": skipped}
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"measure_transformers: {len(done)} runs, {len(failed)} out of memory, {len(skipped)} skipped, "
          f"{summary['seconds']} s -> {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
