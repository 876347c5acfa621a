"""llama.cpp logs: llama-cli, llama-server, llama-bench/sweep-bench, and the servers that embed it
(llama-cpp-python, Ollama, text-generation-webui) print the same lines.

Lines, as the vendored source prints them (llama-cpp-python 0.3.36, vendor/llama.cpp; older spellings in quotes):
- `load_tensors: <BUF> model buffer size = X MiB` (llama-model.cpp; "llm_load_tensors: <BUF> buffer size"): one per
  backend buffer. CUDA0/ROCm0/Vulkan0/CANN0/MTL0/Metal/MTL0_Mapped hold offloaded tensors on a device; CPU,
  CPU_Mapped, CPU_REPACK and *_Host are host RAM (the token embeddings and whatever stays on the CPU).
- `<BUF> KV buffer size = X MiB` (llama-kv-cache.cpp) per device, then `size = X MiB (N cells, L layers, S seqs),
  K (f16): ..., V (f16): ...` ("KV self size = ...") for all devices together; models with sliding-window layers
  build two caches after "creating non-SWA KV cache" and "creating SWA KV cache" (llama-kv-cache-iswa.cpp);
  `<BUF> RS buffer size` is the recurrent state (llama-memory-recurrent.cpp).
- `<BUF> compute buffer size = X MiB` (llama-context.cpp) per backend; CUDA_Host/CPU ones are pinned host memory;
  `<BUF> output buffer size` (host) holds the logits.
- `offloaded N/M layers to GPU`, `n_ctx = N`, `n_batch`, `n_ubatch`, `flash_attn`, `type_k = 'q8_0'`, `file type =
  Q4_K - Medium` (llama_ftype_name), `using device CUDA0 (NVIDIA ...) - F MiB free`.
- 2023 builds (b1513): `llm_load_tensors: VRAM used: X MB`, `llama_kv_cache_init: VRAM kv self = X MB`,
  `llama_new_context_with_model: VRAM scratch buffer: X MB`, `total VRAM used: X MB (model: Y MB; context: Z MB)`;
  "MB" there is MiB (validation/CASES.md, units).
- failures: `allocating X MiB on device N: cudaMalloc failed: out of memory` (ggml-cuda.cu),
  `failed to allocate <BUF> buffer of size N` (ggml-alloc.c), `unable to allocate <BUF> buffer` (llama-model.cpp),
  `failed to allocate buffer for kv cache` (llama-kv-cache.cpp), `failed to allocate compute pp buffers`
  (llama-context.cpp).
"""

from __future__ import annotations

import re

from .base import MiB, LogParser, OutOfMemory, ParsedLog, lines_of, squash, to_bytes

_F = r"([\d.,]+)"
_BUF = r"([A-Za-z][\w]*?)"

# llama_ftype_name (src/llama-model-loader.cpp) -> the llama-quantize type name hfvram.estimate.gguf takes.
FTYPE_NAMES = {
    "all F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "Q8_0": "Q8_0", "MXFP4 MoE": "MXFP4_MOE", "Q2_K - Medium": "Q2_K", "Q2_K - Small": "Q2_K_S",
    "Q3_K - Small": "Q3_K_S", "Q3_K - Medium": "Q3_K_M", "Q3_K - Large": "Q3_K_L", "Q4_K - Small": "Q4_K_S",
    "Q4_K - Medium": "Q4_K_M", "Q5_K - Small": "Q5_K_S", "Q5_K - Medium": "Q5_K_M", "Q6_K": "Q6_K",
    "TQ1_0 - 1.69 bpw ternary": "TQ1_0", "TQ2_0 - 2.06 bpw ternary": "TQ2_0", "IQ2_XXS - 2.0625 bpw": "IQ2_XXS",
    "IQ2_XS - 2.3125 bpw": "IQ2_XS", "IQ2_S - 2.5 bpw": "IQ2_S", "IQ2_M - 2.7 bpw": "IQ2_M",
    "IQ3_XS - 3.3 bpw": "IQ3_XS", "IQ3_XXS - 3.0625 bpw": "IQ3_XXS", "IQ1_S - 1.5625 bpw": "IQ1_S",
    "IQ1_M - 1.75 bpw": "IQ1_M", "IQ4_NL - 4.5 bpw": "IQ4_NL", "IQ4_XS - 4.25 bpw": "IQ4_XS",
    "IQ3_S - 3.4375 bpw": "IQ3_S", "IQ3_S mix - 3.66 bpw": "IQ3_M",
}
# Quant type names as they appear in GGUF file names (bartowski/unsloth naming: Model-Q4_K_M.gguf, -UD-Q2_K_XL).
_FILE_QUANT = re.compile(r"(?<![A-Za-z0-9])(UD-)?((?:I?Q\d_[A-Z0-9]+(?:_[A-Z]+)?)|Q\d_\d|BF16|F16|F32|MXFP4(?:_MOE)?)"
                         r"(?=[-_.]|$)", re.I)


def is_host(buf: str) -> bool:
    """Host-RAM buffer names: CPU, CPU_Mapped, CPU_REPACK, AMX, and the pinned *_Host buffers."""
    b = buf.upper()
    return b.startswith("CPU") or b.endswith("_HOST") or b == "AMX"


def _host_detail(buf: str, kind: str) -> str:
    """The cases' words: cpu_mapped_model_buffer, cpu_model_buffer, cuda_host_model_buffer,
    cuda_host_compute_buffer, cpu_compute_buffer, cuda_host_output_buffer, ..."""
    return f"{buf.lower()}_{kind}_buffer"


class LlamaCppParser(LogParser):
    name = "llamacpp"
    label = "llama.cpp"

    def score(self, text: str) -> int:
        marks = ("llama_model_loader", "load_tensors:", "llm_load_tensors", "llama_context:", "llama_kv_cache",
                 "buffer size =", "print_info:", "llama_new_context_with_model", "ggml_cuda_init", "gguf",
                 "llama_model_load", "ggml_backend", "llama_init_from_model", "llama-server",
                 "alloc_tensor_range", "ggml_", "msg=offload", "msg=\"offload", "ollama")
        return sum(text.count(m) for m in marks)

    def parse(self, text: str) -> ParsedLog:
        log = ParsedLog(engine=self.name)
        lines = lines_of(text)
        section = None  # "non_swa" / "swa" inside an ISWA cache's output
        for i, line in enumerate(lines):
            n = i + 1
            s = line.strip()
            if not s:
                continue
            if re.search(r"creating\s+non-SWA KV cache|^\s*Non-SWA KV cache", line):
                section = "non_swa"
            elif re.search(r"creating\s+SWA KV cache|^\s*SWA \(Sliding Window Attention\) KV cache|^\s*SWA KV cache",
                           line):
                section = "swa"
            self._settings(log, line)
            self._figures(log, line, n, section)
            if log.oom is None:
                log.oom = _failure(line, n)
            elif log.oom.what is None and n - log.oom.line_no <= 5:
                log.oom.what = _what_failed(line)
        table_figures(log, text)
        self._finish(log)
        return log

    def _figures(self, log: ParsedLog, line: str, n: int, section: str | None) -> None:
        if "MiB" not in line and " MB" not in line:  # every figure is printed in MiB (MB before 2024)
            return
        m = re.search(_BUF + r"\s+model buffer size\s*=\s*" + _F + r" MiB", line) or \
            re.search(r"llm_load_tensors:\s+" + _BUF + r"\s+buffer size\s*=\s*" + _F + r" MiB", line)
        if m:
            buf, value = m.group(1), to_bytes(m.group(2), "MiB")
            if is_host(buf):
                log.add("host_bytes", value, line, n, printed=f"{m.group(2)} MiB", device=buf, host=True,
                        detail=_host_detail(buf, "model"))
            else:
                log.add("weights_bytes", value, line, n, printed=f"{m.group(2)} MiB", device=buf)
            return
        m = re.search(_BUF + r"\s+(KV|RS) buffer size\s*=\s*" + _F + r" MiB", line)
        if m:
            buf, value = m.group(1), to_bytes(m.group(3), "MiB")
            if is_host(buf):
                log.add("host_bytes", value, line, n, printed=f"{m.group(3)} MiB", device=buf, host=True,
                        detail=_host_detail(buf, m.group(2).lower()))
            else:
                detail = "recurrent_state" if m.group(2) == "RS" else (f"{section}_kv" if section else None)
                log.add("kv_cache_bytes", value, line, n, printed=f"{m.group(3)} MiB", device=buf, detail=detail)
            return
        m = re.search(r"(?:KV self size|\bsize)\s*=\s*" + _F + r" MiB(?:,| \(\s*(\d+) cells)", line)
        if m and ("kv" in line.lower() or "cells" in line):
            detail = f"{section}_kv_total_all_devices" if section else "kv_total_all_devices"
            log.add("kv_cache_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MiB",
                    detail=detail)
            if m.group(2) and section in (None, "non_swa"):
                log.set("n_ctx_kv", int(m.group(2)))
            k = re.search(r"K \((\w+)\)", line)
            v = re.search(r"V \((\w+)\)", line)
            if k:
                log.set("cache_type_k", k.group(1))
            if v:
                log.set("cache_type_v", v.group(1))
            return
        m = re.search(_BUF + r"\s+compute buffer size\s*=\s*" + _F + r" MiB", line)
        if m:
            buf, value = m.group(1), to_bytes(m.group(2), "MiB")
            if is_host(buf):
                log.add("host_bytes", value, line, n, printed=f"{m.group(2)} MiB", device=buf, host=True,
                        detail=_host_detail(buf, "compute"))
            else:
                log.add("compute_buffer_bytes", value, line, n, printed=f"{m.group(2)} MiB", device=buf)
            return
        m = re.search(_BUF + r"\s+output buffer size\s*=\s*" + _F + r" MiB", line)
        if m:
            log.add("host_bytes", to_bytes(m.group(2), "MiB"), line, n, printed=f"{m.group(2)} MiB",
                    device=m.group(1), host=is_host(m.group(1)), detail=_host_detail(m.group(1), "output"))
            return
        # 2023 builds
        m = re.search(r"llm_load_tensors: VRAM used:?\s*" + _F + r" MB", line)
        if m:
            log.add("weights_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MB")
        m = re.search(r"VRAM kv self = " + _F + r" MB", line)
        if m:
            log.add("kv_cache_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MB")
        m = re.search(r"VRAM scratch buffer:\s*" + _F + r" MB", line)
        if m:
            log.add("compute_buffer_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MB")
        m = re.search(r"total VRAM used:\s*" + _F + r" MB", line)
        if m:
            log.add("total_reserved_bytes", to_bytes(m.group(1), "MiB"), line, n, printed=f"{m.group(1)} MB")

    def _settings(self, log: ParsedLog, line: str) -> None:
        if "llama_model_loader: - " in line and "repo_url" not in line:  # GGUF metadata and tensor types
            return
        if "msg=offload" in line or 'msg="offload' in line:
            self._ollama_offload(log, line)
            return
        m = re.search(r"\bbuild:? (b?\d+) \((\w+)\)", line)
        if m and log.version is None:
            log.version = f"b{m.group(1).lstrip('b')} ({m.group(2)})"
        m = re.search(r"offloaded (\d+)/(\d+) layers to GPU", line)
        if m:
            log.set("n_gpu_layers", int(m.group(1)))
            log.set("n_layer_total", int(m.group(2)))
        for key in ("n_ctx", "n_batch", "n_ubatch", "n_seq_max", "n_ctx_per_seq", "n_ctx_seq"):
            m = re.search(r"(?:llama_context|llama_new_context_with_model|llama_init_from_model):\s+" + key
                          + r"\s*=\s*(\d+)", line)
            if m:
                log.set(key, int(m.group(1)))
        m = re.search(r"(?:llama_context|llama_new_context_with_model|llama_init_from_model):\s+flash_attn\s*=\s*"
                      r"(\w+)", line)
        if m:
            value = m.group(1).lower()
            if value in ("1", "true", "enabled", "on"):
                log.set("flash_attn", True)
            elif value in ("0", "false", "disabled", "off"):
                log.set("flash_attn", False)
        m = re.search(r"Flash Attention was auto, set to (enabled|disabled)", line)
        if m:
            log.settings["flash_attn"] = m.group(1) == "enabled"
        m = re.search(r"main: n_kv_max = (\d+), n_batch = (\d+), n_ubatch = (\d+), flash_attn = (\d)", line)
        if m:  # llama-sweep-bench / batched-bench
            log.set("n_ctx", int(m.group(1)))
            log.set("n_batch", int(m.group(2)))
            log.set("n_ubatch", int(m.group(3)))
            log.set("flash_attn", m.group(4) == "1")
        m = re.search(r"type_k = '(\w+)', type_v = '(\w+)'", line)
        if m:
            log.set("cache_type_k", m.group(1))
            log.set("cache_type_v", m.group(2))
        m = re.search(r"(?:print_info|llm_load_print_meta): (?:file type|model ftype)\s*=\s*(.+?)\s*$", line)
        if m:
            name = m.group(1).replace("(guessed) ", "")
            log.set("file_type", name)
            if name in FTYPE_NAMES:
                log.set("gguf_type", FTYPE_NAMES[name])
        m = re.search(r"(?:print_info|llm_load_print_meta): (arch|n_layer|n_ctx_train|n_embd|n_head_kv|n_swa|"
                      r"model params|general\.name)\s*=\s*(.+?)\s*$", line)
        if m:
            key = m.group(1).replace(" ", "_").replace("general.", "")
            value = m.group(2)
            log.set(key, int(value) if value.isdigit() else value)
        m = re.search(r"general\.base_model\.0\.repo_url\s+str\s+=\s+https://huggingface\.co/([\w.\-]+/[\w.\-]+)",
                      line)
        if m:
            log.model_hint = log.model_hint or m.group(1)
        m = re.search(r"loaded meta data with .* from (\S+\.gguf)", line) or \
            re.search(r"(?:--model|-m)\s+['\"]?(\S+?\.gguf)", line) or re.search(r"loading model '([^']+)'", line)
        if m:
            log.model = log.model or m.group(1)
        m = re.search(r"using device (\w+) \(([^)]+)\)(?: - (\d+) MiB free)?", line)
        if m and not any(d["device"] == m.group(1) for d in log.devices):
            log.devices.append({"device": m.group(1), "name": m.group(2),
                                "free_bytes": int(m.group(3)) * MiB if m.group(3) else None})
        m = re.search(r"^\s*Device (\d+): ([^,]+), compute capability ([\d.]+)", line)
        if m and not log.gpu_name:
            log.gpu_name = m.group(2).strip()
            log.set("compute_capability", m.group(3))
        m = re.search(r"ggml_metal_init: found device: (.+)$", line)
        if m and not log.gpu_name:
            log.gpu_name = m.group(1).strip()
        # command lines: -c / --ctx-size, -ngl, -ub, -b, -ctk/-ctv, -fa
        if re.search(r"(llama-(cli|server|bench|sweep-bench)|\./main|llama_cpp|--model|\s-m\s)", line) or \
                line.lstrip().startswith("-"):
            for flag, key, conv in ((r"(?:-c|--ctx-size)", "cmd_ctx", int),
                                    (r"(?:-ngl|--n-gpu-layers|--gpu-layers)", "cmd_ngl", int),
                                    (r"(?:-ub|--ubatch-size)", "cmd_ubatch", int),
                                    (r"(?:-b|--batch-size)", "cmd_batch", int),
                                    (r"(?:-ctk|--cache-type-k)", "cmd_ctk", str),
                                    (r"(?:-np|--parallel)", "cmd_parallel", int),
                                    (r"(?:-ot|--override-tensor)", "override_tensor", str)):
                for mm in re.finditer(r"(?:^|\s)" + flag + r"[\s=]+['\"]?([^\s'\"\\]+)", line):
                    try:
                        value = conv(mm.group(1))
                    except ValueError:
                        continue
                    if key == "override_tensor":
                        log.settings.setdefault(key, []).append(value)
                    else:
                        log.set(key, value)

    def _ollama_offload(self, log: ParsedLog, line: str) -> None:
        """Ollama's own plan, printed before it starts llama.cpp (server.go / memory.go `msg=offload`): layers it
        offloads, the memory it found free and what it estimated each part needs. Estimates, not measurements: kept
        as `ollama_estimate` for explain to set beside ours."""
        pairs = {k: v.strip('"') for k, v in re.findall(r'([\w.]+)=("[^"]*"|\S+)', line)}
        if pairs.get("layers.model", "").isdigit():
            log.set("n_layer_total", int(pairs["layers.model"]))
        if pairs.get("layers.offload", "").isdigit():
            log.set("n_gpu_layers", int(pairs["layers.offload"]))
        estimate = {}
        for key in ("memory.available", "memory.required.full", "memory.required.partial", "memory.required.kv",
                    "memory.weights.total", "memory.weights.repeating", "memory.weights.nonrepeating",
                    "memory.graph.full", "memory.graph.partial", "projector.weights"):
            m = re.match(r"\[?\s*([\d.]+) ([KMGT]i?B|B)", pairs.get(key, ""))
            if m:
                estimate[key] = to_bytes(m.group(1), m.group(2))
        if estimate:
            log.set("ollama_estimate", estimate)
            if "memory.available" in estimate:
                log.set("gpu_free_bytes", estimate["memory.available"])
        lib = re.search(r'library=(\w+)|msg="offload to (\w+)"', line)
        if lib:
            log.set("ollama_library", lib.group(1) or lib.group(2))

    def _finish(self, log: ParsedLog) -> None:
        if log.devices and not log.gpu_name:
            log.gpu_name = log.devices[0]["name"]
        if "gguf_type" not in log.settings and log.model:
            m = None
            for m in _FILE_QUANT.finditer(log.model.rsplit("/", 1)[-1]):
                pass
            if m is not None:
                name = (m.group(1) or "") + m.group(2).upper()
                log.set("gguf_type", name.replace("MXFP4", "MXFP4_MOE").replace("_MOE_MOE", "_MOE"))
        if "n_ctx" not in log.settings and "cmd_ctx" in log.settings:
            log.set("n_ctx", log.settings["cmd_ctx"])
        if "n_seq_max" not in log.settings and "cmd_parallel" in log.settings:
            log.set("n_seq_max", log.settings["cmd_parallel"])
        if "n_ctx" not in log.settings and "n_ctx_kv" in log.settings:
            log.set("n_ctx", log.settings["n_ctx_kv"])


def _failure(line: str, n: int) -> OutOfMemory | None:
    m = re.search(r"allocating " + _F + r" MiB on device (\d+): cudaMalloc failed: out of memory", line)
    if m:
        return OutOfMemory(kind="cuda_oom", message=squash(line), line_no=n, tried_bytes=to_bytes(m.group(1), "MiB"),
                           device=f"CUDA{m.group(2)}")
    m = re.search(r"failed to allocate (\w+) buffer of size (\d+)", line)
    if m:
        return OutOfMemory(kind="cuda_oom", message=squash(line), line_no=n, tried_bytes=int(m.group(2)),
                           device=m.group(1), what=_what(line))
    m = re.search(r"unable to allocate (\w+) buffer", line)
    if m:
        return OutOfMemory(kind="cuda_oom", message=squash(line), line_no=n, device=m.group(1), what="model weights")
    for text, what in (("failed to allocate buffer for kv cache", "the KV cache"),
                       ("failed to allocate buffer for rs cache", "the recurrent state"),
                       ("failed to allocate compute", "the compute buffers"),
                       ("cudaMalloc failed: out of memory", None)):
        if text in line:
            return OutOfMemory(kind="cuda_oom", message=squash(line), line_no=n, what=what)
    return None


def _what_failed(line: str) -> str | None:
    """What the lines after a cudaMalloc failure say was being allocated."""
    if "buffer for kv cache" in line:
        return "the KV cache"
    if "failed to allocate compute" in line or "gallocr" in line:
        return "the compute buffers"
    if "unable to allocate" in line and "buffer" in line:
        return "model weights"
    return None


def _what(line: str) -> str | None:
    low = line.lower()
    if "kv" in low:
        return "the KV cache"
    if "gallocr" in low or "compute" in low or "sched" in low:
        return "the compute buffers"
    if "load_tensors" in low or "model" in low:
        return "model weights"
    return None


def measured_table(text: str) -> list[tuple[int, str, dict]]:
    """Rows of a pasted CSV measurement table (a header naming a vram_usage_mib column), as (line_no, line, row)."""
    lines = lines_of(text)
    for i, line in enumerate(lines):
        header = [h.strip() for h in line.split(",")]
        if len(header) > 2 and "vram_usage_mib" in header:
            out = []
            for j in range(i + 1, len(lines)):
                cells = [c.strip() for c in lines[j].split(",")]
                if len(cells) != len(header):
                    if lines[j].strip():
                        continue
                    break
                out.append((j + 1, lines[j], dict(zip(header, cells))))
            return out
    return []


def table_figures(log: ParsedLog, text: str) -> None:
    """vram_usage_mib rows of a CSV table -> total_used_bytes figures (one per row; the row says its settings)."""
    for n, line, row in measured_table(text):
        try:
            value = to_bytes(row["vram_usage_mib"], "MiB")
        except ValueError:
            continue
        log.add("total_used_bytes", value, line, n, printed=f"{row['vram_usage_mib']} MiB", detail="table_row")
