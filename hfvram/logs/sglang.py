"""SGLang server logs (`python -m sglang.launch_server`), read from the lines sglang/srt prints (wheel 0.5.23;
"GB" is `GB = 1024 * 1024 * 1024` in mem_cache/memory_pool.py and get_available_gpu_memory divides by 1 << 30):
- "Load weight begin. avail mem=X GB", "Load weight end. [elapsed=T s, ]type=..., [dtype=..., ]avail mem=X GB,
  mem usage=Y GB." (model_runner.py: the weights as the free memory dropped);
- "KV Cache is allocated. [dtype: D, ]#tokens: N, K size: X GB, V size: Y GB" or "... #tokens: N, KV size: X GB"
  (mem_cache/memory_pool.py);
- "Capture cuda graph end. Time elapsed: T s. mem usage=X GB. avail mem=Y GB." (older) / "Capture <name> CUDA graph
  end. elapsed=T s, mem usage=X GB, avail mem=Y GB." (cuda_graph_setup.py);
- "max_total_num_tokens=N, chunked_prefill_size=N, max_prefill_tokens=N, max_running_requests=N, context_len=N"
  (managers/scheduler.py);
- "server_args=ServerArgs(model_path='...', tp_size=N, mem_fraction_static=F, ...)" (entrypoints/engine.py).
"""

from __future__ import annotations

import re

from .base import LogParser, ParsedLog, lines_of, to_bytes
from .oom import torch_oom

_F = r"([\d.]+)"
_TP = re.compile(r"\b(?:DP\d+ )?(TP\d+)\b")


class SglangParser(LogParser):
    name = "sglang"
    label = "SGLang"

    def score(self, text: str) -> int:
        marks = ("Load weight end", "KV Cache is allocated", "max_total_num_tokens=", "sglang", "ServerArgs(",
                 "CUDA graph end", "cuda graph end", "Memory pool end")
        return sum(text.count(m) for m in marks)

    def parse(self, text: str) -> ParsedLog:
        log = ParsedLog(engine=self.name)
        lines = lines_of(text)
        for i, line in enumerate(lines):
            n = i + 1
            dev = _TP.search(line)
            dev = dev.group(1) if dev else None
            m = re.search(r"Load weight end\..*?mem usage=" + _F + r" GB", line)
            if m:
                log.add("weights_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GB", device=dev)
                d = re.search(r"dtype=torch\.(\w+)", line)
                if d:
                    log.set("dtype", {"bfloat16": "bf16", "float16": "fp16"}.get(d.group(1), d.group(1)))
            m = re.search(r"KV Cache is allocated\..*?#tokens: (\d+), (?:K size: " + _F + r" GB, V size: " + _F
                          + r" GB|KV size: " + _F + r" GB)", line)
            if m:
                size = float(m.group(2)) + float(m.group(3)) if m.group(2) else float(m.group(4))
                log.add("kv_cache_bytes", to_bytes(size, "GiB"), line, n, printed=f"{size:.2f} GB", device=dev)
                log.add("kv_tokens", int(m.group(1)), line, n, printed=f"{m.group(1)} tokens", device=dev)
                d = re.search(r"dtype: torch\.(\w+)", line)
                if d:
                    log.set("kv_dtype", d.group(1))
            m = re.search(r"[Cc]apture (?:\w+ )*?graph end\..*?mem usage=" + _F + r" GB", line)  # cuda / npu
            if m:
                log.add("cuda_graph_bytes", to_bytes(m.group(1), "GiB"), line, n, printed=f"{m.group(1)} GB",
                        device=dev, detail="captured")
            m = re.search(r"max_total_num_tokens=(\d+).*?max_running_requests=(\d+).*?context_len=(\d+)", line)
            if m:
                log.set("max_total_num_tokens", int(m.group(1)))
                log.set("max_running_requests", int(m.group(2)))
                log.set("context_len", int(m.group(3)))
            m = re.search(r"Load weight begin\. avail mem=" + _F + r" GB", line)
            if m:
                log.set("free_before_weights_bytes", to_bytes(m.group(1), "GiB"))
            m = re.search(r"server_args=ServerArgs\((.*)\)", line)
            if m:
                args = dict(re.findall(r"(\w+)=('[^']*'|[\w.\-]+)", m.group(1)))
                path = args.get("model_path", "").strip("'")
                if path:
                    log.model = log.model or path
                for key, name, conv in (("tp_size", "tp", int), ("pp_size", "pp", int),
                                        ("mem_fraction_static", "mem_fraction_static", float),
                                        ("context_length", "context_length", int),
                                        ("max_running_requests", "max_running_requests", int),
                                        ("chunked_prefill_size", "chunked_prefill_size", int)):
                    try:
                        log.set(name, conv(args[key].strip("'")))
                    except (KeyError, ValueError):
                        pass
                if args.get("kv_cache_dtype"):
                    log.set("kv_dtype", args["kv_cache_dtype"].strip("'"))
            m = re.search(r"sglang(?: version)?[ =:]+v?(\d+\.\d+\.\d+\S*)", line, re.I)
            if m and log.version is None:
                log.version = m.group(1)
        log.oom = torch_oom(lines)
        return log
