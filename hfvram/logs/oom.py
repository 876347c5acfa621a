"""Out-of-memory messages that several engines share: PyTorch's caching allocator (vLLM, SGLang, TensorRT-LLM's
PyTorch backend, transformers) and the CUDA runtime errors TensorRT-LLM and llama.cpp print.

Formats, as printed by the libraries (copies found with the search tools, quoted in tests/test_logs.py):
- PyTorch >= 2.1: "CUDA out of memory. Tried to allocate 1.16 GiB. GPU 0 has a total capacity of 31.36 GiB of
  which 471.69 MiB is free. [Process N has X GiB memory in use.] Including non-PyTorch memory, this process has
  16.63 GiB memory in use. Of the allocated memory 15.03 GiB is allocated by PyTorch, and 1.00 GiB is reserved by
  PyTorch but unallocated." (2.1-2.2 spelled "total capacty"; copies wrap it over several lines).
- PyTorch < 2.1: "CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; 14.56 GiB
  already allocated; 3.44 MiB free; 14.80 GiB reserved in total by PyTorch)".
- TensorRT-LLM: "[TensorRT-LLM][ERROR] CUDA runtime error in ::cudaMalloc(ptr, n): out of memory"
  (tensorrt_llm/common/cudaUtils.h `check`).
"""

from __future__ import annotations

import re

from .base import OutOfMemory, squash, to_bytes

_SIZE = r"(-?[\d.,]+)\s*([KMGT]i?B)"
_NEW = re.compile(r"CUDA out of memory\. Tried to allocate " + _SIZE + r"\. GPU (\d+) has a total capac\w* of "
                  + _SIZE + r" of which " + _SIZE + r" is free\.")
_OLD = re.compile(r"CUDA out of memory\. Tried to allocate " + _SIZE + r" \(GPU (\d+); " + _SIZE
                  + r" total capacity; " + _SIZE + r" already allocated; " + _SIZE + r" free; " + _SIZE
                  + r" reserved in total by PyTorch\)")
_PROCESS = re.compile(r"this process has " + _SIZE + r" memory in use")
_ALLOCATED = re.compile(r"Of the allocated memory " + _SIZE + r" is allocated by PyTorch, and " + _SIZE
                        + r" is reserved by PyTorch but unallocated")
_CUDA_RT = re.compile(r"CUDA runtime error in ([^:]*::)?(cudaMalloc\w*)\([^)]*\): out of memory")


def torch_oom(lines: list[str]) -> OutOfMemory | None:
    """The first PyTorch or CUDA-runtime out-of-memory message in the lines (a wrapped one is joined)."""
    for i, line in enumerate(lines):
        if "out of memory" not in line:
            continue
        text = squash(" ".join(lines[i:i + 6]))
        m = _NEW.search(text)
        if m:
            oom = OutOfMemory(kind="cuda_oom", message=_sentence(text, m.start()), line_no=i + 1,
                              tried_bytes=to_bytes(m.group(1), m.group(2)), device=f"GPU {m.group(3)}",
                              total_bytes=to_bytes(m.group(4), m.group(5)),
                              free_bytes=to_bytes(m.group(6), m.group(7)))
            p = _PROCESS.search(text)
            if p:
                oom.process_bytes = to_bytes(p.group(1), p.group(2))
            a = _ALLOCATED.search(text)
            if a:
                oom.allocated_bytes = to_bytes(a.group(1), a.group(2))
                oom.reserved_unallocated_bytes = to_bytes(a.group(3), a.group(4))
            return oom
        m = _OLD.search(text)
        if m:
            allocated = to_bytes(m.group(6), m.group(7))
            reserved = to_bytes(m.group(10), m.group(11))
            return OutOfMemory(kind="cuda_oom", message=_sentence(text, m.start()), line_no=i + 1,
                               tried_bytes=to_bytes(m.group(1), m.group(2)), device=f"GPU {m.group(3)}",
                               total_bytes=to_bytes(m.group(4), m.group(5)), allocated_bytes=allocated,
                               free_bytes=to_bytes(m.group(8), m.group(9)),
                               reserved_unallocated_bytes=max(0, reserved - allocated))
        m = _CUDA_RT.search(text)
        if m:
            return OutOfMemory(kind="cuda_oom", message=squash(lines[i]), line_no=i + 1,
                               what=f"a {m.group(2)} call")
    return None


def _sentence(text: str, start: int) -> str:
    """The message from its start, without the advice PyTorch appends."""
    out = text[start:]
    for stop in (" If reserved but unallocated", " If reserved memory is", " See documentation"):
        if stop in out:
            out = out[:out.index(stop)]
    return out.strip()
