"""vLLM startup logs, V0 (0.5-0.10) and V1 (0.6-0.33), read line by line.

The lines and what they mean, as the wheels print them (file names as in the log prefix; docs/research/vllm-facts.md
has the accounting behind each):
- weights: "Model loading took X GiB [memory] and T seconds" (V1 gpu_model_runner.py), "Loading model weights took
  X GB" (V0 model_runner.py; GiB, the code divides by 2**30), "model weights take XGiB; non_torch_memory takes XGiB;
  PyTorch activation peak memory takes XGiB; the rest of the memory reserved for KV Cache is XGiB" (V0 worker.py),
  "Memory profiling takes T seconds. Total non KV cache memory: XGiB; torch peak memory increase: XGiB; non-torch
  forward increase memory: XGiB; weights memory: XGiB" (V1 gpu_worker.py DEBUG, 0.8-0.10), "Actual usage is X GiB
  for weight, X GiB for peak activation, X GiB for non-torch memory, and X GiB for CUDAGraph memory" (V1 DEBUG since
  0.10.2), "Memory profiling results: total_gpu_memory=XGiB ... peak_torch_memory=XGiB ... non_torch_memory=XGiB
  kv_cache_size=XGiB gpu_memory_utilization=U" (V0 0.6.4; its peak includes the weights).
- the KV cache: "Available KV cache memory: X GiB", "GPU KV cache size: N tokens", "Maximum concurrency for N tokens
  per request: Xx", "# GPU blocks: N, # CPU blocks: M" (V0).
- CUDA graphs: "Graph capturing finished in T secs, took X GiB"; "Estimated CUDA graph memory: X GiB total" (the
  estimate subtracted before the pool is sized, since 0.20).
- the budget and the GPU: "Free memory on device [cuda:0] (F/T GiB) on startup. Desired GPU memory utilization is
  (U, B GiB)", "the current vLLM instance can use total_gpu_memory (TGiB) x gpu_memory_utilization (U) = BGiB",
  "Initial free memory: F GiB; Requested memory: U (util), B GiB".
- failures: "No available memory for the cache blocks", "To serve at least one request with the models's max seq
  len (N), (X GiB KV cache is needed, which is larger than the available KV cache memory (Y GiB). Based on the
  available memory, the estimated maximum model length is M." (v1/core/kv_cache_utils.py), "The model's max seq
  len (N) is larger than the maximum number of tokens that can be stored in KV cache (M)" (V0 worker.py), "Free
  memory on device ... on startup is less than desired GPU memory utilization" (v1/worker/utils.py), and PyTorch's
  CUDA out-of-memory error.
"""

from __future__ import annotations

import ast
import re

from .base import LogParser, OutOfMemory, ParsedLog, number, squash, to_bytes
from .oom import torch_oom

GIB = "GiB"
_F = r"(-?[\d.,]+)"

_PREFIX = re.compile(r"\((?:VllmWorker|RayWorkerWrapper|Worker)[^)]*?(?:rank=(\d+)|_((?:PP\d+_)?TP\d+))[^)]*\)")
_VERSION = [re.compile(p) for p in (
    r"vLLM API server version (\S+)", r"Initializing an? (?:V\d )?LLM engine \(v([^)\s]+)\)",
    r"[█▀▄]\s+version\s+(\S+)", r"\bvLLM version:? (\d\S+)")]
_CONFIG_PAIR = re.compile(r"(\w+)=('([^']*)'|\"([^\"]*)\"|[^,\s]+)")


class VllmParser(LogParser):
    name = "vllm"
    label = "vLLM"

    def score(self, text: str) -> int:
        marks = ("vLLM API server version", "LLM engine (v", "kv_cache_utils.py", "gpu_model_runner.py",
                 "GPU KV cache size:", "Available KV cache memory", "# GPU blocks:", "vllm serve", "gpu_worker.py",
                 "Loading model weights took", "Maximum concurrency for", "EngineCore", "gpu_memory_utilization",
                 "max seq len", "KV cache memory")
        return sum(text.count(m) for m in marks)

    def parse(self, text: str) -> ParsedLog:
        from .base import lines_of

        log = ParsedLog(engine=self.name)
        lines = lines_of(text)
        for i, line in enumerate(lines):
            self._line(log, line, i + 1)
            if log.oom is None and ("max seq len" in line or "No available memory" in line):
                # the message may be wrapped over the next lines (copies in issues and docs)
                log.oom = _failure(squash(" ".join(lines[i:i + 3])), i + 1)
                self._oom_figures(log, line, i + 1)
        log.oom = log.oom or torch_oom(lines)
        if log.oom and log.oom.kind == "cuda_oom" and log.oom.total_bytes and not log.gpu_total_bytes:
            log.gpu_total_bytes = log.oom.total_bytes
        self._finish(log)
        return log

    # -- one line ---------------------------------------------------------------------------------------------

    def _line(self, log: ParsedLog, line: str, n: int) -> None:
        if not line.strip():
            return
        dev = _device(line)
        if log.version is None:
            for rx in _VERSION:
                m = rx.search(line)
                if m:
                    log.version = m.group(1).rstrip(".,")
                    break
        if "Initializing a V1 LLM engine" in line or "Initializing a V0 LLM engine" in line:
            log.set("engine_generation", "V1" if " V1 " in line else "V0")
        elif "Initializing an LLM engine" in line:
            log.set("engine_generation", "V0")
        if "with config:" in line:
            self._config(log, line.split("with config:", 1)[1])
        if "non-default args:" in line:
            self._args(log, line.split("non-default args:", 1)[1])
        m = re.search(r"\bvllm serve\s+(\S+)(.*)$", line)
        if m and not m.group(1).startswith("-"):
            log.model = log.model or m.group(1)
            self._flags(log, m.group(2))
        m = re.search(r"Using max model len (\d+)", line)
        if m:
            log.set("max_model_len", int(m.group(1)))
        m = re.search(r"max_num_batched_tokens=(\d+)", line)
        if m and "Chunked prefill" in line:  # the last one printed is the engine's (the API server prints again)
            log.settings["max_num_batched_tokens"] = int(m.group(1))
        if "APIServer" in line or "api_server.py" in line or "OPENAI_API_SERVER" in line:
            log.set("api_server", True)
        elif "LLM_CLASS usage context" in line:
            log.set("api_server", False)
        m = re.search(r"Setting (max_num_seqs|max_num_batched_tokens) to (\d+)", line)
        if m:
            log.set(m.group(1), int(m.group(2)))
        m = re.search(r"Setting attention block size to (\d+) tokens", line)
        if m:
            log.set("block_size", int(m.group(1)))
        if "Using fp8 data type to store kv cache" in line:
            log.set("kv_dtype", "fp8")
        m = re.search(r"device_name=(NVIDIA_[A-Za-z0-9_\-]+?)(?:,|\.json|\s|$)", line)
        if m and not log.gpu_name:
            log.gpu_name = m.group(1).replace("_", " ")
        m = re.search(r"Profiling CUDA graph memory: PIECEWISE=(\d+) \(largest=(\d+)\), FULL=(\d+)", line)
        if m:
            log.set("cudagraph_piecewise", int(m.group(1)))
            log.set("cudagraph_largest", int(m.group(2)))
            log.set("cudagraph_full", int(m.group(3)))

        # -- weights and profile ----------------------------------------------------------------------------
        m = re.search(r"Model loading took " + _F + r" ?GiB", line)
        if m:
            log.add("weights_bytes", to_bytes(m.group(1), GIB), line, n, printed=f"{m.group(1)} GiB", device=dev)
        m = re.search(r"Loading model weights took " + _F + r" ?GB", line)
        if m:  # V0 model_runner.py: float(2**30), printed "GB"
            log.add("weights_bytes", to_bytes(m.group(1), GIB), line, n, printed=f"{m.group(1)} GB", device=dev)
        m = re.search(r"model weights take " + _F + r"GiB; non_torch_memory takes " + _F + r"GiB; PyTorch "
                      r"activation peak memory takes " + _F + r"GiB; the rest of the memory reserved for KV Cache "
                      r"is " + _F + r"GiB", line)
        if m:
            for q, g in (("weights_bytes", 1), ("non_torch_bytes", 2), ("activation_peak_bytes", 3),
                         ("kv_cache_bytes", 4)):
                log.add(q, to_bytes(m.group(g), GIB), line, n, printed=f"{m.group(g)} GiB", device=dev)
        m = re.search(r"Total non KV cache memory: " + _F + r" ?GiB; torch peak memory increase: " + _F
                      + r" ?GiB; non-torch forward increase memory: " + _F + r" ?GiB; weights memory: " + _F
                      + r" ?GiB", line)
        if m:
            for q, g in (("activation_peak_bytes", 2), ("non_torch_bytes", 3), ("weights_bytes", 4)):
                log.add(q, to_bytes(m.group(g), GIB), line, n, printed=f"{m.group(g)} GiB", device=dev)
            log.add("non_kv_bytes", to_bytes(m.group(1), GIB), line, n, printed=f"{m.group(1)} GiB", device=dev)
        m = re.search(r"Actual usage is " + _F + r" GiB for weight, " + _F + r" GiB for peak activation, " + _F
                      + r" GiB for non-torch memory, and " + _F + r" GiB for CUDAGraph memory", line)
        if m:
            for q, g in (("weights_bytes", 1), ("activation_peak_bytes", 2), ("non_torch_bytes", 3),
                         ("cuda_graph_bytes", 4)):
                log.add(q, to_bytes(m.group(g), GIB), line, n, printed=f"{m.group(g)} GiB", device=dev)
        m = re.search(r"Current kv cache memory in use is (\d+) bytes", line)
        if m:
            log.add("kv_cache_bytes", int(m.group(1)), line, n, printed=f"{m.group(1)} bytes", device=dev,
                    detail="exact")
        m = re.search(r"Memory profiling results:.*?total_gpu_memory=" + _F + r"GiB", line)
        if m:
            log.gpu_total_bytes = log.gpu_total_bytes or to_bytes(m.group(1), GIB)
            for q, key in (("peak_allocated_bytes", "peak_torch_memory"), ("non_torch_bytes", "non_torch_memory"),
                           ("kv_cache_bytes", "kv_cache_size")):
                k = re.search(key + r"=" + _F + r"GiB", line)
                if k:
                    log.add(q, to_bytes(k.group(1), GIB), line, n, printed=f"{k.group(1)} GiB", device=dev)
            u = re.search(r"gpu_memory_utilization=([\d.]+)", line)
            if u:
                log.set("gpu_memory_utilization", float(u.group(1)))

        # -- the budget --------------------------------------------------------------------------------------
        m = re.search(r"Free memory on device(?: \S+)? \(" + _F + r"/" + _F + r" GiB\) on startup", line)
        if m:
            log.gpu_total_bytes = log.gpu_total_bytes or to_bytes(m.group(2), GIB)
            log.set("gpu_free_bytes", to_bytes(m.group(1), GIB))
            u = re.search(r"desired GPU memory utilization (?:is )?\(([\d.]+), " + _F + r" GiB\)", line, re.I)
            if u:
                log.set("gpu_memory_utilization", float(u.group(1)))
                log.set("budget_bytes", to_bytes(u.group(2), GIB))
            if "is less than desired GPU memory utilization" in line and log.oom is None:
                log.oom = OutOfMemory(kind="startup_free_memory", message=squash(line), line_no=n,
                                      free_bytes=to_bytes(m.group(1), GIB), total_bytes=to_bytes(m.group(2), GIB),
                                      needed_bytes=log.settings.get("budget_bytes"),
                                      what="the memory gpu_memory_utilization asks for at startup")
        m = re.search(r"total_gpu_memory \(" + _F + r" ?GiB\) x gpu_memory_utilization \(([\d.]+)\) = " + _F
                      + r" ?GiB", line)
        if m:
            log.gpu_total_bytes = log.gpu_total_bytes or to_bytes(m.group(1), GIB)
            log.set("gpu_memory_utilization", float(m.group(2)))
            log.set("budget_bytes", to_bytes(m.group(3), GIB))
        m = re.search(r"Initial free memory: " + _F + r" GiB; Requested memory: ([\d.]+) \(util\), " + _F
                      + r" GiB", line)
        if m:
            log.set("gpu_free_bytes", to_bytes(m.group(1), GIB))
            log.set("gpu_memory_utilization", float(m.group(2)))
            log.set("budget_bytes", to_bytes(m.group(3), GIB))

        # -- KV cache -----------------------------------------------------------------------------------------
        m = re.search(r"Available KV cache memory: " + _F + r" ?GiB", line)
        if m:
            log.add("kv_cache_bytes", to_bytes(m.group(1), GIB), line, n, printed=f"{m.group(1)} GiB", device=dev)
        m = re.search(r"GPU KV cache size: ([\d,]+) tokens", line)
        if m:
            log.add("kv_tokens", int(number(m.group(1))), line, n, printed=f"{m.group(1)} tokens", device=dev)
        m = re.search(r"Maximum concurrency for ([\d,]+) tokens per request: " + _F + r"x", line)
        if m:
            log.add("max_concurrency", number(m.group(2)), line, n, printed=f"{m.group(2)}x", device=dev)
            log.set("max_model_len", int(number(m.group(1))))
        m = re.search(r"# GPU blocks: (\d+), # CPU blocks: (\d+)", line)
        if m:
            log.add("gpu_blocks", int(m.group(1)), line, n, printed=m.group(1), device=dev)
        m = re.search(r"Multiplying the GPU KV cache size by the dcp_world_size (\d+)", line)
        if m:
            log.set("decode_context_parallel_size", int(m.group(1)))

        # -- CUDA graphs --------------------------------------------------------------------------------------
        m = re.search(r"Graph capturing finished in [\d.]+ secs?, took " + _F + r" GiB", line)
        if m:
            log.add("cuda_graph_bytes", to_bytes(m.group(1), GIB), line, n, printed=f"{m.group(1)} GiB",
                    device=dev, detail="captured")
        m = re.search(r"Estimated CUDA graph memory: " + _F + r" GiB total", line)
        if m:
            log.add("cuda_graph_bytes", to_bytes(m.group(1), GIB), line, n, printed=f"{m.group(1)} GiB",
                    device=dev, detail="estimated")

    def _oom_figures(self, log: ParsedLog, line: str, n: int) -> None:
        """The KV figures a failure message gives (what the cache held / had)."""
        oom = log.oom
        if oom is None:
            return
        if oom.kv_tokens is not None:
            log.add("kv_tokens", oom.kv_tokens, line, n, printed=f"{oom.kv_tokens} tokens", device=_device(line))
        if oom.available_bytes is not None:
            log.add("kv_cache_bytes", oom.available_bytes, line, n, device=_device(line),
                    printed=_gib(oom.available_bytes))

    # -- settings ---------------------------------------------------------------------------------------------

    def _config(self, log: ParsedLog, text: str) -> None:
        pairs = {}
        for m in _CONFIG_PAIR.finditer(text):
            value = m.group(3) if m.group(3) is not None else m.group(4) if m.group(4) is not None else m.group(2)
            pairs.setdefault(m.group(1), value)
        if pairs.get("model"):
            log.model = log.model or pairs["model"]
        if pairs.get("served_model_name"):
            log.set("served_model_name", pairs["served_model_name"])
        for key, name, conv in (("max_seq_len", "max_model_len", int), ("tensor_parallel_size", "tp", int),
                                ("pipeline_parallel_size", "pp", int), ("data_parallel_size", "dp", int),
                                ("decode_context_parallel_size", "decode_context_parallel_size", int)):
            if key in pairs and re.fullmatch(r"\d+", pairs[key]):
                log.set(name, conv(pairs[key]))
        if "dtype" in pairs:
            log.set("dtype", _dtype(pairs["dtype"]))
        if pairs.get("quantization") not in (None, "None"):
            log.set("quantization", pairs["quantization"])
        if pairs.get("kv_cache_dtype"):
            log.set("kv_dtype", pairs["kv_cache_dtype"])
        if pairs.get("enforce_eager") in ("True", "False"):
            log.set("enforce_eager", pairs["enforce_eager"] == "True")
        if pairs.get("enable_prefix_caching") in ("True", "False"):
            log.set("enable_prefix_caching", pairs["enable_prefix_caching"] == "True")
        m = re.search(r"[\"']cudagraph_capture_sizes[\"']\s*:\s*\[([\d,\s]*)\]", text)
        if m and m.group(1).strip():
            log.set("cudagraph_capture_sizes", [int(x) for x in m.group(1).split(",") if x.strip()])

    def _args(self, log: ParsedLog, text: str) -> None:
        text = text.strip()
        args: dict = {}
        try:
            value = ast.literal_eval(text)
            if isinstance(value, dict):
                args = value
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            for m in re.finditer(r"'(\w+)':\s*('([^']*)'|\[[^\]]*\]|[\w.+\-]+)", text):
                raw = m.group(3) if m.group(3) is not None else m.group(2)
                try:
                    args[m.group(1)] = ast.literal_eval(raw) if m.group(3) is None else raw
                except (ValueError, SyntaxError):
                    args[m.group(1)] = raw
        self._apply(log, args)

    def _flags(self, log: ParsedLog, text: str) -> None:
        tokens = text.split()
        args: dict = {}
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.startswith("--"):
                key = tok[2:].replace("-", "_")
                if "=" in key:
                    key, value = key.split("=", 1)
                    args[key] = value
                elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                    args[key] = tokens[i + 1]
                    i += 1
                else:
                    args[key] = True
            i += 1
        self._apply(log, args)

    def _apply(self, log: ParsedLog, args: dict) -> None:
        if isinstance(args.get("model"), str):
            log.model = log.model or args["model"]
        elif isinstance(args.get("model_tag"), str):
            log.model = log.model or args["model_tag"]
        conv = {"max_model_len": ("max_model_len", int), "tensor_parallel_size": ("tp", int),
                "pipeline_parallel_size": ("pp", int), "gpu_memory_utilization": ("gpu_memory_utilization", float),
                "max_num_seqs": ("max_num_seqs", int), "max_num_batched_tokens": ("max_num_batched_tokens", int),
                "kv_cache_dtype": ("kv_dtype", str), "quantization": ("quantization", str),
                "block_size": ("block_size", int), "swap_space": ("swap_space", float),
                "data_parallel_size": ("dp", int)}
        for key, (name, fn) in conv.items():
            if key in args and args[key] is not None:
                try:
                    log.set(name, fn(args[key]))
                except (TypeError, ValueError):
                    pass
        if "enforce_eager" in args:
            log.set("enforce_eager", args["enforce_eager"] in (True, "True", "true"))
        if "dtype" in args and isinstance(args["dtype"], str):
            log.set("dtype", _dtype(args["dtype"]))
        cc = args.get("compilation_config")
        if isinstance(cc, dict) and isinstance(cc.get("cudagraph_capture_sizes"), list):
            log.set("cudagraph_capture_sizes", cc["cudagraph_capture_sizes"])

    def _finish(self, log: ParsedLog) -> None:
        if log.gpu_total_bytes is None and log.settings.get("budget_bytes") and log.settings.get(
                "gpu_memory_utilization"):
            log.notes.append("the GPU total is not printed; the log gives the budget "
                             f"({_gib(log.settings['budget_bytes'])} at utilization "
                             f"{log.settings['gpu_memory_utilization']:g})")


def _device(line: str) -> str | None:
    m = _PREFIX.search(line)
    if not m:
        return None
    if m.group(1) is not None:
        return f"rank {m.group(1)}"
    return m.group(2).replace("_", " ")


def _dtype(text: str) -> str:
    t = text.replace("torch.", "").strip("'\"").lower()
    return {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}.get(t, t)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB"


def _failure(line: str, n: int) -> OutOfMemory | None:
    if "No available memory for the cache blocks" in line:
        return OutOfMemory(kind="no_kv_memory", message=squash(line), line_no=n,
                           what="the KV cache: nothing left in the budget after weights and activations")
    m = re.search(r"max seq len \((\d+)\),\s*\(?" + _F + r" GiB KV cache is needed, which is larger than the "
                  r"available KV cache memory \(" + _F + r" GiB\)", line)
    if m:
        oom = OutOfMemory(kind="kv_cache_too_small", message=squash(line), line_no=n,
                          max_model_len=int(m.group(1)), needed_bytes=to_bytes(m.group(2), GIB),
                          available_bytes=to_bytes(m.group(3), GIB), what="the KV cache of one max-length request")
        e = re.search(r"[Ee]stimated maximum model length is (\d+)", line)
        if e:
            oom.estimated_max_len = int(e.group(1))
        return oom
    m = re.search(r"The model's max seq len \((\d+)\) is larger than the maximum number of tokens that can be stored "
                  r"in KV cache \((\d+)\)", line)
    if m:
        return OutOfMemory(kind="kv_cache_too_small", message=squash(line), line_no=n, max_model_len=int(m.group(1)),
                           kv_tokens=int(m.group(2)), what="the KV cache of one max-length request")
    return None
