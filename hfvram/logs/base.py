"""What every engine-log parser returns, and the few helpers they share.

A parser reads the text an engine printed at startup (or when it ran out of memory) and returns a `ParsedLog`:
the engine and its release, the model and settings it ran with, the GPU when the log names it, and every memory
figure it printed as a `Figure`. Figures use the quantity names of the validation cases (`validation/CASES.md`):
`weights_bytes`, `kv_cache_bytes`, `kv_tokens`, `gpu_blocks`, `max_concurrency`, `non_torch_bytes`,
`activation_peak_bytes`, `cuda_graph_bytes`, `compute_buffer_bytes`, `host_bytes`, `runtime_buffer_bytes`,
`total_used_bytes`, `peak_allocated_bytes`; `detail` uses the cases' `component_detail` words, so a figure read
from a pasted log is a case as it stands.

Bytes are the printed value times its unit, rounded: GiB/MiB as printed, and the "GB"/"MB" labels of engines that
divide by 1024 (vLLM V0 "Loading model weights took X GB", TensorRT-LLM `MemoryCounters::bytesToString`, SGLang's
`GB = 1024 * 1024 * 1024`) as GiB/MiB, as `validation/CASES.md` "Units" records for each source.
"""

from __future__ import annotations

import re
from dataclasses import field

from ..record import record
from ..units import GiB, MiB

KiB = 1 << 10

# Units as engines print them. The "GB"/"MB" spellings are binary in every engine parsed here (see the module
# docstring); a parser that meets a decimal one converts it itself.
UNIT_BYTES = {"B": 1, "KIB": KiB, "KB": KiB, "MIB": MiB, "MB": MiB, "GIB": GiB, "GB": GiB, "TIB": 1 << 40,
              "TB": 1 << 40}

# ANSI colour codes (vLLM colours its process prefixes); copies pasted from web pages often lost the ESC byte.
_ANSI = re.compile(r"\x1b?\[(?:\d{1,3}(?:;\d{1,3})*)?m")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def squash(text: str) -> str:
    """Whitespace collapsed and colour codes removed: the form in which lines and quotes are compared."""
    return " ".join(strip_ansi(text).split())


def number(text: str) -> float:
    return float(text.replace(",", ""))


def to_bytes(value: str | float, unit: str) -> int:
    v = number(value) if isinstance(value, str) else float(value)
    return int(round(v * UNIT_BYTES[unit.upper()]))


@record
class Figure:
    """One memory figure the log printed."""

    quantity: str
    value: float  # bytes for *_bytes quantities, else a count or a ratio
    line: str  # the text it was read from (colour codes removed; a wrapped line joined)
    line_no: int  # 1-based, in the parsed text
    printed: str = ""  # the value as printed, with its unit ("2.3185 GiB")
    device: str | None = None  # "CUDA0", "rank 2", "TP0" ... when the line names one
    detail: str | None = None  # the cases' component_detail vocabulary ("engine_size", "swa_kv", ...)
    host: bool = False  # memory in host RAM (llama.cpp CPU / CUDA_Host buffers)

    def to_dict(self) -> dict:
        return {"quantity": self.quantity, "value": self.value, "printed": self.printed, "device": self.device,
                "detail": self.detail, "host": self.host, "line_no": self.line_no, "line": self.line}


@record
class OutOfMemory:
    """The failure a log ended with, when it ran out of memory (or refused to start for lack of it)."""

    kind: str  # "cuda_oom" (an allocation failed), "kv_cache_too_small", "no_kv_memory", "startup_free_memory"
    message: str  # the line(s) as printed
    line_no: int
    tried_bytes: int | None = None  # the allocation that failed
    device: str | None = None
    total_bytes: int | None = None  # the device's total, when the message gives it
    free_bytes: int | None = None
    process_bytes: int | None = None  # what this process held ("this process has X memory in use")
    allocated_bytes: int | None = None  # allocated by PyTorch
    reserved_unallocated_bytes: int | None = None
    needed_bytes: int | None = None  # KV bytes needed for one max-length request (vLLM)
    available_bytes: int | None = None  # KV bytes available (vLLM)
    max_model_len: int | None = None
    kv_tokens: int | None = None  # tokens the cache could hold (vLLM V0)
    estimated_max_len: int | None = None  # vLLM's own suggestion
    what: str | None = None  # what was being allocated, in words ("KV cache", "model weights", "compute buffer")

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@record
class ParsedLog:
    """What an engine log says about memory: the engine, the model, and the figures it printed."""

    engine: str  # vllm | llamacpp | trtllm | sglang | table
    version: str | None = None  # as printed
    model: str | None = None  # a Hub id or the path the log names
    model_hint: str | None = None  # a Hub id the log suggests when `model` is a path (GGUF base_model, file name)
    settings: dict = field(default_factory=dict)  # engine knobs as read, under the case-file names
    gpu_name: str | None = None  # as printed
    gpu_total_bytes: int | None = None  # device total as printed (what CUDA reports)
    devices: list = field(default_factory=list)  # [{"name", "device", "free_bytes"}] when the log lists them
    figures: list[Figure] = field(default_factory=list)
    oom: OutOfMemory | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, quantity: str, value: float, line: str, line_no: int, **kw) -> Figure:
        fig = Figure(quantity=quantity, value=value, line=squash(line), line_no=line_no, **kw)
        self.figures.append(fig)
        return fig

    def get(self, quantity: str, detail: str | None = "*", host: bool | None = False) -> list[Figure]:
        """Figures of one quantity; `detail="*"` any detail, `host=None` host and device alike."""
        return [f for f in self.figures if f.quantity == quantity and (detail == "*" or f.detail == detail)
                and (host is None or f.host == host)]

    def first(self, quantity: str, detail: str | None = "*") -> Figure | None:
        found = self.get(quantity, detail)
        return found[0] if found else None

    def set(self, key: str, value) -> None:
        """A setting, the first reading winning (a log repeats its config per worker)."""
        if value is not None and key not in self.settings:
            self.settings[key] = value

    def to_dict(self) -> dict:
        return {"engine": self.engine, "version": self.version, "model": self.model, "model_hint": self.model_hint,
                "settings": self.settings, "gpu_name": self.gpu_name, "gpu_total_bytes": self.gpu_total_bytes,
                "devices": self.devices, "figures": [f.to_dict() for f in self.figures],
                "oom": self.oom.to_dict() if self.oom else None, "notes": self.notes}


class LogParser:
    """One engine's parser: `score(text)` says how sure it is that the text is its log, `parse(text)` reads it."""

    name = ""
    label = ""

    def score(self, text: str) -> int:
        raise NotImplementedError

    def parse(self, text: str) -> ParsedLog:
        raise NotImplementedError


def lines_of(text: str) -> list[str]:
    """The text's lines, colour codes removed, carriage returns (progress bars) dropped."""
    out = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if "\r" in raw:  # a progress bar redrawn in place: keep what was printed last
            raw = raw.rsplit("\r", 1)[-1]
        out.append(strip_ansi(raw))
    return out


def joined(lines: list[str], i: int, follow: int = 2) -> tuple[str, int]:
    """Line i with up to `follow` next lines that continue it (indented, as documentation wraps long log lines),
    and how many lines that took."""
    text, used = lines[i], 1
    for j in range(i + 1, min(len(lines), i + 1 + follow)):
        nxt = lines[j]
        if nxt.startswith("  ") and nxt.strip() and not nxt.lstrip().startswith("[") and lines[i].strip():
            text += " " + nxt.strip()
            used += 1
        else:
            break
    return text, used
