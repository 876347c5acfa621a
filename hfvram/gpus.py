"""The GPU catalog (`hfvram/data/gpus.json`, sources in `hfvram/data/GPUS.md`) and `--gpu NAME[:COUNT]` parsing."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import UsageError
from .units import parse_size

CATALOG = Path(__file__).resolve().parent / "data" / "gpus.json"


@dataclass(frozen=True)
class GPU:
    name: str
    memory_bytes: int  # marketed
    usable_bytes: int  # what CUDA reports as total (what engines budget from)
    fp8: bool
    bf16: bool
    compute_capability: str | None
    klass: str  # consumer | workstation | datacenter | custom
    usable_derived: bool = False  # True when no printed total exists and the catalog rule was applied
    # How cards of this kind talk to each other (gpus.json "interconnect", sourced per card): "nvswitch" (SXM boards,
    # NVLink through NVSwitch, so NCCL can use NVLink SHARP) or "pcie" (no NVLink, or only an optional bridge).
    # None: not recorded; see `link`.
    interconnect: str | None = None

    @property
    def link(self) -> str:
        """The recorded interconnect; when none is recorded, Hopper/Blackwell data-centre parts are taken as NVSwitch
        boards (how they are mostly deployed) and every other card as PCIe."""
        if self.interconnect:
            return self.interconnect
        return "nvswitch" if self.klass == "datacenter" and self.sm >= 9.0 else "pcie"

    @property
    def sm(self) -> float:
        try:
            return float(self.compute_capability or 0)
        except ValueError:
            return 0.0


@dataclass(frozen=True)
class GPUChoice:
    gpu: GPU
    count: int = 1


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("nvidia", "").replace("geforce", ""))


@lru_cache(maxsize=1)
def _entries() -> list[dict]:
    return json.loads(CATALOG.read_text())


@lru_cache(maxsize=1)
def catalog() -> list[GPU]:
    entries = _entries()
    ratio = usable_ratio(entries)
    gpus = []
    for e in entries:
        usable = e.get("usable_bytes")
        gpus.append(GPU(
            name=e["name"], memory_bytes=e["memory_bytes"],
            usable_bytes=usable if usable else int(e["memory_bytes"] * ratio),
            fp8=bool(e.get("fp8")), bf16=bool(e.get("bf16")), compute_capability=e.get("compute_capability"),
            klass=e.get("class", "datacenter"), usable_derived=not usable, interconnect=e.get("interconnect"),
        ))
    return gpus


def usable_ratio(entries: list[dict]) -> float:
    """Median usable/marketed ratio over the cards with a printed CUDA-side total (not nvidia-smi totals, which
    include the driver's reservation). Applied to cards with no printed figure."""
    ratios = [e["usable_bytes"] / e["memory_bytes"] for e in entries
              if e.get("usable_bytes") and str(e.get("usable_kind", "")).startswith("cuda")]
    # (a catalog without any printed CUDA total: fall back to marketed memory minus 3%, that median on the shipped
    # catalog)
    return statistics.median(ratios) if ratios else 0.97


@lru_cache(maxsize=1)
def _aliases() -> dict[str, GPU]:
    table = {}
    for entry, gpu in zip(_entries(), catalog()):
        for alias in [entry["name"], *entry.get("aliases", [])]:
            table.setdefault(_norm(alias), gpu)
    return table


def find(name: str) -> GPU:
    key = _norm(name)
    table = _aliases()
    if key in table:
        return table[key]
    import difflib

    names = sorted({g.name for g in table.values()})
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
    close += [g.name for k, g in table.items() if key and len(key) >= 3 and (key in k or k in key)
              and g.name not in close]
    hint = f" (did you mean {', '.join(list(dict.fromkeys(close))[:4])}?)" \
        if close else " (see `hfvram gpus`, or give its memory with --gpu-mem 24GiB)"
    raise UsageError(f"unknown GPU {name!r}{hint}")


# The most GPUs one count may name (`8xH100`): larger numbers in a name are part of it (7900XTX, A6000).
MAX_COUNT = 64


def parse_gpu(spec: str) -> GPUChoice:
    """`RTX-4090`, `L40S:2`, `8xH100` or `H100x8`."""
    spec = spec.strip()
    if not spec:
        raise UsageError("--gpu needs a GPU name (see `hfvram gpus`)")
    name, count = spec, 1
    if ":" in spec:
        name, _, n = spec.rpartition(":")
        count = _count(n, spec)
    elif _norm(spec) not in _aliases():
        m = re.match(r"^(\d+)\s*[x*]\s*(.+)$", spec, re.I) or re.match(r"^(.+?)\s*[x*]\s*(\d+)$", spec, re.I)
        if m:
            a, b = m.groups()
            n, rest = (a, b) if a.isdigit() else (b, a)
            if int(n) <= MAX_COUNT and _norm(rest) in _aliases():
                name, count = rest, _count(n, spec)
    return GPUChoice(find(name), count)


def _count(text: str, spec: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"GPU count must be a positive integer in {spec!r}")
    return int(text)


def custom(size: int | str, count: int = 1, fp8: bool = True) -> GPUChoice:
    """`--gpu-mem 24GiB`: a GPU known only by its memory. The size is taken as the usable total."""
    size = parse_size(size) if isinstance(size, str) else int(size)
    return GPUChoice(GPU(name=f"{size / (1 << 30):.0f}GiB GPU", memory_bytes=size, usable_bytes=size, fp8=fp8,
                         bf16=True, compute_capability=None, klass="custom"), count)
