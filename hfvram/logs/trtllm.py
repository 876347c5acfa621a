"""TensorRT-LLM logs: engines built with `trtllm-build` (C++ runtime, Triton backend, trtllm-serve on an engine) and
the PyTorch backend (LLM API, trtllm-serve / trtllm-bench on a checkpoint).

TensorRT engine path (the C++ runtime's `[TensorRT-LLM][INFO]` lines):
- "Loaded engine size: N MiB" (the serialized engine: weights + plan), "[MemUsageChange] Allocated X MiB for
  execution context memory." (activations, sized at build by max_batch_size / max_num_tokens), "Allocated X GB GPU
  memory for runtime buffers." and "... for decoder." ("GB" from MemoryCounters::bytesToString, base 1024),
- "Memory usage when calculating max tokens in paged kv cache: total: T GiB, available: A GiB" (the device total and
  what is free once those are allocated), "Number of blocks in KV cache primary pool: N", "Number of tokens per
  block: N.", "[MemUsageChange] Allocated X GiB for max tokens in paged KV cache (N)." (0.9+), "Allocate N bytes
  for k/v cache." and "Using N [total] tokens in paged KV cache[, and M blocks per sequence]" (0.8),
- settings: "TRTGptModel maxBatchSize: N", "maxNumTokens", "maxSequenceLen", "maxInputLen", "Both freeGpuMemoryFraction
  ... and maxTokens ... are set (to F and N, respectively)".
- build logs (`[TRT] [I]`): "Total Weights Memory: N", "Total Activation Memory: N" (bytes).
PyTorch backend (`[TRT-LLM] [I]`, tensorrt_llm/_torch/pyexecutor/_util.py KvCacheCreator):
- "Memory used after loading model weights (inside torch) in memory usage profiling: X GiB", "... (outside torch)
  ...", "Memory dynamically allocated during inference (inside torch) in memory usage profiling: X GiB", "Memory used
  outside torch (e.g., NCCL and CUDA graphs) in memory usage profiling: X GiB", "Peak memory during memory usage
  profiling (torch + non-torch): X GiB, available KV cache memory when calculating max tokens: X GiB, fraction is
  set F, kv size is B. device total memory T GiB, , tmp kv_mem X GiB", "Use X GB for model weights." (the checkpoint
  size before loading, GiB), "max_seq_len=N, max_num_requests=N, max_num_tokens=N, max_batch_size=N".
The PyTorch backend allocates a small temporary KV pool for its profiling run before the real one: when a log
shows several "Allocated ... for max tokens in paged KV cache" lines, all but the last are marked
`detail="profiling_pool"`.
"""

from __future__ import annotations

import re

from .base import LogParser, ParsedLog, joined, lines_of, to_bytes
from .oom import torch_oom

_F = r"([\d.,]+)"


class TrtllmParser(LogParser):
    name = "trtllm"
    label = "TensorRT-LLM"

    def score(self, text: str) -> int:
        marks = ("[TensorRT-LLM]", "[TRT-LLM]", "TRTGptModel", "trtllm", "tensorrt_llm", "[TRT]")
        return sum(text.count(m) for m in marks)

    def parse(self, text: str) -> ParsedLog:
        log = ParsedLog(engine=self.name)
        lines = lines_of(text)
        pools: list[tuple] = []
        i = 0
        while i < len(lines):
            line, used = joined(lines, i)
            if line.strip():
                self._line(log, line, i + 1, pools)
            i += used
        for figs in pools[:-1]:  # the PyTorch backend's temporary profiling pools
            for fig in figs:
                fig.detail = "profiling_pool"
        log.oom = torch_oom(lines)
        if "backend" not in log.settings:
            if any(k in text for k in ("memory usage profiling", "[TRT-LLM] [I] max_seq_len=", "TorchSampler",
                                       "PyExecutor", "LLM Args")):
                log.settings["backend"] = "pytorch"
            elif any(k in text for k in ("Loaded engine size", "TRTGptModel", "Total Weights Memory",
                                         "engine deserialization")):
                log.settings["backend"] = "tensorrt"
        return log

    def _line(self, log: ParsedLog, line: str, n: int, pools: list) -> None:
        m = re.search(r"(?:TensorRT[- ]LLM version|Engine version):? (\d[\w.\-+]*)", line)
        if m and log.version is None:
            log.version = m.group(1)
        m = re.search(r"Loaded engine size: " + _F + r" MiB", line)
        if m:
            log.add("weights_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MiB",
                    detail="engine_size")
        m = re.search(r"Allocated " + _F + r" MiB for execution context memory", line)
        if m:
            log.add("runtime_buffer_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MiB",
                    detail="execution_context")
        m = re.search(r"Allocated " + _F + r" ([KMG]i?B) GPU memory for (runtime buffers|decoder)", line)
        if m:
            log.add("runtime_buffer_bytes", to_bytes(m.group(1), m.group(2)), line, n,
                    printed=f"{m.group(1)} {m.group(2)}",
                    detail="runtime_buffers" if m.group(3) == "runtime buffers" else "decoder")
        m = re.search(r"Total (Weights|Activation|Scratch) Memory: (\d+)", line)
        if m:
            value = int(m.group(2))
            if m.group(1) == "Weights":
                log.add("weights_bytes", value, line, n, printed=f"{value} bytes",
                        detail="trt_build_total_weights_memory")
            elif m.group(1) == "Activation":
                log.add("runtime_buffer_bytes", value, line, n, printed=f"{value} bytes",
                        detail="trt_build_total_activation_memory")
            else:
                log.set("trt_build_scratch_bytes", value)
        m = re.search(r"Memory usage when calculating max tokens in paged kv cache: total: " + _F + r" GiB, "
                      r"available: " + _F + r" GiB", line)
        if m:
            log.gpu_total_bytes = log.gpu_total_bytes or to_bytes(m.group(1), "GiB")
            log.set("free_before_kv_bytes", to_bytes(m.group(2), "GiB"))
        m = re.search(r"Number of blocks in KV cache primary pool: (\d+)", line)
        if m:
            log.add("gpu_blocks", int(m.group(1)), line, n, printed=m.group(1))
        m = re.search(r"primary blocks=(\d+)", line)
        if m:
            log.add("gpu_blocks", int(m.group(1)), line, n, printed=m.group(1))
        m = re.search(r"(?:Number of tokens per block: |tokens per block=)(\d+)", line)
        if m:
            log.set("tokens_per_block", int(m.group(1)))
        m = re.search(r"Allocated " + _F + r" GiB for max tokens in paged KV cache \((\d+)\)", line)
        if m:
            fig = log.add("kv_cache_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GiB")
            tok = log.add("kv_tokens", int(m.group(2)), line, n, printed=f"{m.group(2)} tokens")
            pools.append((fig, tok))
        m = re.search(r"Allocate (\d+) bytes for k/v cache", line)
        if m:
            log.add("kv_cache_bytes", int(m.group(1)), line, n, printed=f"{m.group(1)} bytes")
        m = re.search(r"Using (\d+) (?:total )?tokens in paged KV cache", line)
        if m:
            log.add("kv_tokens", int(m.group(1)), line, n, printed=f"{m.group(1)} tokens")
        m = re.search(r"Memory used after loading model weights \((inside|outside) torch\) in memory usage profiling: "
                      + _F + r" GiB", line)
        if m:
            if m.group(1) == "inside":
                log.add("weights_bytes", to_bytes(m.group(2), "GiB"), line, n, printed=f"{m.group(2)} GiB")
            else:
                log.add("non_torch_bytes", to_bytes(m.group(2), "GiB"), line, n, printed=f"{m.group(2)} GiB",
                        detail="outside_torch_after_weights")
        m = re.search(r"Memory dynamically allocated during inference \(inside torch\) in memory usage profiling: "
                      + _F + r" GiB", line)
        if m:
            log.add("activation_peak_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GiB")
        m = re.search(r"Memory used outside torch \(e\.g\., NCCL and CUDA graphs\) in memory usage profiling: " + _F
                      + r" GiB", line)
        if m:
            log.add("non_torch_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GiB",
                    detail="outside_torch_after_profiling")
        m = re.search(r"Peak memory during memory usage profiling \(torch \+ non-torch\): " + _F + r" GiB", line)
        if m:
            log.add("total_used_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GiB",
                    detail="profiling_peak_torch_plus_nontorch")
            for rx, key, conv in ((r"fraction is set ([\d.]+)", "kv_cache_free_gpu_mem_fraction", float),
                                  (r"kv size is (\d+)", "kv_bytes_per_token", int)):
                k = re.search(rx, line)
                if k:
                    log.set(key, conv(k.group(1)))
            t = re.search(r"device total memory " + _F + r" GiB", line)
            if t:
                log.gpu_total_bytes = log.gpu_total_bytes or to_bytes(t.group(1), "GiB")
            a = re.search(r"available KV cache memory when calculating max tokens: " + _F + r" GiB", line)
            if a:
                log.set("available_kv_bytes", to_bytes(a.group(1), "GiB"))
        m = re.search(r"(?:Use|Rank \d+ uses) " + _F + r" GB for model weights", line)
        if m:  # the checkpoint's size before loading, "GB" = GiB (validation case trtllm-bench3 notes)
            log.add("weights_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GB",
                    detail="checkpoint_estimate")
        m = re.search(r"max_seq_len=(\d+), max_num_requests=(\d+), max_num_tokens=(\d+), max_batch_size=(\d+)", line)
        if m:
            for key, g in (("max_seq_len", 1), ("max_num_requests", 2), ("max_num_tokens", 3), ("max_batch_size", 4)):
                log.settings[key] = int(m.group(g))  # the last such line is the final configuration
        for key, name in (("maxBatchSize", "max_batch_size"), ("maxNumTokens", "max_num_tokens"),
                          ("maxSequenceLen", "max_seq_len"), ("maxInputLen", "max_input_len"),
                          ("maxBeamWidth", "max_beam_width"), ("maxNumSequences", "max_num_sequences")):
            m = re.search(r"TRTGptModel " + key + r": (\d+)", line)
            if m:
                log.set(name, int(m.group(1)))
        m = re.search(r"(?:freeGpuMemoryFraction|free_gpu_memory_fraction).*?are set \(to ([\d.]+) and (\d+)", line)
        if m:
            log.set("kv_cache_free_gpu_mem_fraction", round(float(m.group(1)), 6))
            log.set("max_tokens_in_paged_kv_cache", int(m.group(2)))
        m = re.search(r"MPI size: (\d+)", line)
        if m:
            log.set("world_size", int(m.group(1)))
        m = re.search(r"tensor_parallel_size[=:] ?(\d+)", line)
        if m:
            log.set("tp", int(m.group(1)))
        m = re.search(r"(?:model|model_dir|checkpoint_dir)[=:] ?['\"]?([\w.\-]+/[\w.\-]+)['\"]?", line)
        if m and "[TRT-LLM]" in line and not log.model:
            log.model = m.group(1)
