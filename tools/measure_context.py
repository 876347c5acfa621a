"""Our own measurement of the CUDA context: what a process holds on the GPU outside its allocators, step by step,
each step in a fresh process so nothing earlier is counted (validation/NOTES-cuda-context.md, "how to check it").

    python tools/measure_context.py --out validation/own-h200/context.json      # on a machine with an NVIDIA GPU

Steps (the figure of each is NVML's per-process memory, what nvidia-smi prints, less torch's reserved segments):
- `driver`: a bare context through the driver API alone (ctypes on libcuda: cuInit, the primary context made
  current), no runtime, no kernel: what estimate/base.py models as SMs x resident threads x bytes a thread. Then the
  per-thread stack limit (cuCtxSetLimit CU_LIMIT_STACK_SIZE) is raised twice: if the context is local memory for
  every resident thread, each raise adds resident threads x the raise.
- `torch`: torch.cuda.init(), then a first elementwise kernel, a bf16 matmul (cuBLAS), scaled-dot-product attention:
  what each step of a torch process adds outside the allocator (the kernels lazy loading brings in).
- `generate`: a fresh process that builds a fixture model with random weights (tools/measure_transformers.py) and
  runs generate() once, then a second model in the same process: what estimate/base.py's torch kernel term models.
- `eager`: torch.cuda.init() with CUDA_MODULE_LOADING=EAGER (every kernel of torch loaded up front): the ceiling of the
  kernel term, for comparison.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import measure_transformers as mt  # noqa: E402 - the NVML reader and the model builder (no torch at import)

MiB = 1024 * 1024
# CUDA driver API enums (cuda.h): CUlimit and CUdevice_attribute values.
CU_LIMIT_STACK_SIZE, CU_LIMIT_PRINTF_FIFO_SIZE, CU_LIMIT_MALLOC_HEAP_SIZE = 0x00, 0x01, 0x02
CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16
CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 75, 76
STACK_STEPS = (2048, 4096)  # bytes a thread the stack limit is raised to, in order


class NVML(mt.NVML):
    """measure_transformers' NVML reader, plus reads that wait for the figure to settle."""

    def settle(self) -> int | None:
        """NVML's per-process figure can lag an allocation by a moment: read until two reads agree."""
        last = None
        for _ in range(20):
            now = self.process_bytes()
            if now is not None and now == last:
                return now
            last = now
            time.sleep(0.1)
        return last


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise RuntimeError(f"{what} returned CUresult {rc}")


def step_driver() -> dict:
    nv = NVML()
    cuda = ctypes.CDLL("libcuda.so.1")
    out: dict = {"device_used_before": nv.device_used_bytes()}
    check(cuda.cuInit(0), "cuInit")
    dev = ctypes.c_int()
    check(cuda.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    for key, attr in (("sms", CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                      ("threads_per_sm", CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR),
                      ("cc_major", CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                      ("cc_minor", CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)):
        v = ctypes.c_int()
        check(cuda.cuDeviceGetAttribute(ctypes.byref(v), attr, dev), "cuDeviceGetAttribute")
        out[key] = v.value
    version = ctypes.c_int()
    check(cuda.cuDriverGetVersion(ctypes.byref(version)), "cuDriverGetVersion")
    out["driver_api_version"] = version.value
    out["process_before_context"] = nv.process_bytes()
    ctx = ctypes.c_void_p()
    check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
    check(cuda.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    check(cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo")
    out["total_bytes"] = total.value
    out["free_after_context"] = free.value
    limits = {}
    for key, lim in (("stack", CU_LIMIT_STACK_SIZE), ("printf_fifo", CU_LIMIT_PRINTF_FIFO_SIZE),
                     ("malloc_heap", CU_LIMIT_MALLOC_HEAP_SIZE)):
        v = ctypes.c_size_t()
        check(cuda.cuCtxGetLimit(ctypes.byref(v), lim), "cuCtxGetLimit")
        limits[key] = v.value
    out["limits"] = limits
    out["process_bare_context"] = nv.settle()
    out["device_used_bare_context"] = nv.device_used_bytes()
    out["stack_steps"] = []
    for stack in STACK_STEPS:
        check(cuda.cuCtxSetLimit(CU_LIMIT_STACK_SIZE, ctypes.c_size_t(stack)), "cuCtxSetLimit")
        v = ctypes.c_size_t()
        check(cuda.cuCtxGetLimit(ctypes.byref(v), CU_LIMIT_STACK_SIZE), "cuCtxGetLimit")
        check(cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo")
        out["stack_steps"].append({"stack_set": stack, "stack_read": v.value, "process": nv.settle(),
                                   "free": free.value})
    return out


def _torch_point(nv, torch, name: str) -> dict:
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    process = nv.settle()
    reserved = int(torch.cuda.memory_reserved())
    return {"step": name, "process": process, "reserved": reserved,
            "outside_allocator": None if process is None else process - reserved, "free": int(free)}


def step_torch() -> dict:
    nv = NVML()
    import torch

    points = []
    torch.cuda.init()
    torch.cuda.current_device()
    torch.cuda._lazy_init()
    points.append(_torch_point(nv, torch, "torch.cuda.init"))
    x = torch.zeros(1024, device="cuda")
    x = x + 1
    points.append(_torch_point(nv, torch, "first elementwise kernel"))
    a = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
    b = a @ a
    points.append(_torch_point(nv, torch, "bf16 matmul (cuBLAS)"))
    q = torch.randn(1, 8, 512, 64, device="cuda", dtype=torch.bfloat16)
    o = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    points.append(_torch_point(nv, torch, "scaled_dot_product_attention"))
    del x, b, o
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "points": points}


def step_generate(models: list[str]) -> dict:
    nv = NVML()
    import torch
    import transformers

    points = []
    for repo in models:
        t0 = time.perf_counter()
        model, config = mt.build(repo, "bf16", "cuda")
        run = {"model": repo, "batch": 1, "prompt": 128}
        result = mt.run_once(model, config, run, 16, "cuda", True)
        point = _torch_point(nv, torch, f"{repo} generate() b1 p128 +16")
        point["peak_reserved"] = result["peak_reserved_bytes"]
        point["seconds"] = round(time.perf_counter() - t0, 1)
        points.append(point)
        del model
        torch.cuda.empty_cache()
    return {"torch": torch.__version__, "transformers": transformers.__version__, "points": points}


def step_eager() -> dict:
    nv = NVML()
    import torch

    torch.cuda.init()
    torch.cuda._lazy_init()
    return {"CUDA_MODULE_LOADING": os.environ.get("CUDA_MODULE_LOADING"),
            "points": [_torch_point(nv, torch, "torch.cuda.init, eager module loading")]}


def child(step: str, models: list[str]) -> dict:
    if step == "driver":
        return step_driver()
    if step == "torch":
        return step_torch()
    if step == "generate":
        return step_generate(models)
    if step == "eager":
        return step_eager()
    raise SystemExit(f"unknown step {step}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="-", help="where the JSON goes (- for stdout)")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--models", default="Qwen/Qwen2.5-0.5B-Instruct,meta-llama/Llama-3.2-1B",
                    help="fixture models for the generate step (comma-separated)")
    ap.add_argument("--steps", default="driver,torch,generate,eager")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if args.step:
        print(json.dumps(child(args.step, models)))
        return 0
    results: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": {}}
    try:
        results["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used", "--format=csv"],
            capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        results["nvidia_smi"] = f"not run: {e}"
    for step in args.steps.split(","):
        env = dict(os.environ)
        if step == "eager":
            env["CUDA_MODULE_LOADING"] = "EAGER"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--step", step, "--models", args.models], env=env,
                              capture_output=True, text=True, timeout=300)
        seconds = round(time.perf_counter() - t0, 1)
        if proc.returncode != 0:
            results["steps"][step] = {"error": proc.stderr.strip()[-2000:], "seconds": seconds}
        else:
            results["steps"][step] = json.loads(proc.stdout.strip().splitlines()[-1]) | {"seconds": seconds}
        print(step, seconds, "s", json.dumps(results["steps"][step])[:1500], file=sys.stderr, flush=True)
    text = json.dumps(results, indent=1)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
