"""The GPU catalog (`hfvram/data/gpus.json`, sources in `hfvram/data/GPUS.md`) and `--gpu NAME[:COUNT]` parsing.

`--gpu auto` is answered by `hfvram.hardware` (the GPUs of this machine); `match()` maps a detected device to its
catalog entry by name and memory."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from .errors import UsageError
from .record import record
from .units import median, parse_size

CATALOG = Path(__file__).resolve().parent / "data" / "gpus.json"


# "Maximum number of resident threads per SM" by compute capability: the CUDA C++ Programming Guide's table of
# technical specifications per compute capability (see GPUS.md, "SM counts", for the quote). Only the NVIDIA
# capabilities of the catalogue's cards.
RESIDENT_THREADS_PER_SM = {"6.0": 2048, "6.1": 2048, "7.0": 2048, "7.5": 1024, "8.0": 2048, "8.6": 1536, "8.9": 1536,
                           "9.0": 2048, "10.0": 2048, "10.3": 2048, "12.0": 1536}


@record(frozen=True)
class GPU:
    """A catalogue GPU: marketed and usable memory, and what it can compute in."""

    name: str
    memory_bytes: int  # marketed
    usable_bytes: int  # what CUDA reports as total (what engines budget from)
    fp8: bool
    bf16: bool
    compute_capability: str | None
    klass: str  # consumer | workstation | datacenter | unified (Apple) | custom
    usable_derived: bool = False  # True when no printed total exists and the catalog rule was applied
    vendor: str | None = None  # nvidia | amd | apple; None for a GPU known only by its memory (--gpu-mem)
    # How cards of this kind talk to each other (gpus.json "interconnect", sourced per card): "nvswitch" (SXM boards,
    # NVLink through NVSwitch, so NCCL can use NVLink SHARP) or "pcie" (no NVLink, or only an optional bridge).
    # None: not recorded; see `link`.
    interconnect: str | None = None
    sms: int | None = None  # streaming multiprocessors (gpus.json "sms", sourced per card); None: not recorded

    @property
    def resident_threads(self) -> int | None:
        """The most threads the GPU holds at once, SMs x resident threads per SM of its compute capability (what
        the CUDA context reserves local memory for: hfvram.estimate.base.cuda_context_bytes); None when either is
        not known."""
        per_sm = RESIDENT_THREADS_PER_SM.get(self.compute_capability or "")
        return self.sms * per_sm if self.sms and per_sm else None

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


@record(frozen=True)
class GPUChoice:
    """The GPUs a run sizes for: a catalogue card and how many of it."""

    gpu: GPU
    count: int = 1


def _norm(text: str) -> str:
    """What a name is matched on: lower case, alphanumerics only, without the vendor words drivers prefix
    (`NVIDIA GeForce RTX 4090`, `AMD Radeon RX 7900 XTX`, `Apple M3 Max` -> rtx4090, rx7900xtx, m3max)."""
    text = text.lower()
    for word in ("nvidia", "geforce", "amd", "radeon", "apple"):
        text = text.replace(word, "")
    return re.sub(r"[^a-z0-9]", "", text)


# Apple silicon: the GPU shares the machine's memory, and macOS lets it wire only part of it: Metal's
# recommendedMaxWorkingSetSize, which llama.cpp prints at start-up (ggml_metal_init, in MiB). Printed: 16 GiB M1
# 10922.67 (2/3; abetlen/llama-cpp-python#687), 32 GiB M1 Max and M2 Max 21845.34 (2/3; ggml-org/llama.cpp#2011,
# ollama/ollama#434), 96 GiB M2 Max 73728.00 (3/4; ggml-org/llama.cpp#3213); a 64 GiB M2 Max "around 49GB"
# (llama.cpp#1870, i.e. 48 GiB, 3/4). So 2/3 below 64 GiB and 3/4 from 64 GiB; the 36 and 48 GiB machines have no
# print and get the lower share (a verdict must not promise more). macOS 26 wires more (107.52 GiB of 128 on an
# M5 Max, antirez/ds4#893): the rule is the floor of the releases seen. `sysctl iogpu.wired_limit_mb` overrides it
# (--gpu auto reads it).
APPLE_SHARE_SMALL = 2 / 3
APPLE_SHARE_LARGE = 3 / 4
APPLE_LARGE_FROM = 64 << 30


def apple_working_set(memory_bytes: int) -> int:
    """What Metal lets the GPU use of `memory_bytes` of unified memory by default (see APPLE_SHARE_*)."""
    share = APPLE_SHARE_LARGE if memory_bytes >= APPLE_LARGE_FROM else APPLE_SHARE_SMALL
    return int(memory_bytes * share)


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
        if not usable and e.get("usable_rule") == "apple_working_set":
            derived = apple_working_set(e["memory_bytes"])
        else:
            derived = int(e["memory_bytes"] * ratio)
        gpus.append(GPU(
            name=e["name"], memory_bytes=e["memory_bytes"], usable_bytes=usable if usable else derived,
            fp8=bool(e.get("fp8")), bf16=bool(e.get("bf16")), compute_capability=e.get("compute_capability"),
            klass=e.get("class", "datacenter"), usable_derived=not usable, vendor=e.get("vendor"),
            interconnect=e.get("interconnect"), sms=e.get("sms"),
        ))
    return gpus


def usable_ratio(entries: list[dict]) -> float:
    """Median usable/marketed ratio over the cards with a printed CUDA-side total (not nvidia-smi totals, which
    include the driver's reservation). Applied to cards with no printed figure."""
    ratios = [e["usable_bytes"] / e["memory_bytes"] for e in entries
              if e.get("usable_bytes") and str(e.get("usable_kind", "")).startswith("cuda")]
    # (a catalog without any printed CUDA total: fall back to marketed memory minus 3%, that median on the shipped
    # catalog)
    return median(ratios) if ratios else 0.97


@lru_cache(maxsize=1)
def _aliases() -> dict[str, GPU]:
    table = {}
    for entry, gpu in zip(_entries(), catalog()):
        for alias in [entry["name"], *entry.get("aliases", [])]:
            table.setdefault(_norm(alias), gpu)
    return table


# A detected device maps to a catalog entry only when its memory is within this share of the entry's: the widest
# gap between a card's marketed size and what its tools report is the ECC carve-out of GDDR data-centre cards, 1/16
# (T4 15360 of 16384 MiB, GPUS.md), and 6.8% on a P40 (22.38 of 24 GiB). A 12 GB P100 is not a 16 GB one.
MATCH_TOLERANCE = 0.10


def match(name: str, total_bytes: int | None = None, vendor: str | None = None) -> GPU | None:
    """The catalog entry for a device as its driver names it (`NVIDIA GeForce RTX 4060 Ti`, `Radeon RX 7900 XT`,
    `Navi 31 [Radeon RX 7900 XT/7900 XTX]`, `Apple M3 Max`), told apart from its memory variants by
    `total_bytes`; None when nothing fits (the caller then makes a custom GPU with the real total)."""
    key = _norm(name)
    if not key:
        return None
    entries = _entries()
    gpus = catalog()
    variant = re.compile(r"\d+gb?$")

    def candidates(test) -> list[GPU]:
        out = []
        for entry, gpu in zip(entries, gpus):
            if vendor and entry.get("vendor") != vendor:
                continue
            if any(test(_norm(a)) for a in [entry["name"], *entry.get("aliases", [])]):
                out.append(gpu)
        return out

    tests = (
        # the name itself, or the name with a memory suffix (rtx4060ti -> rtx4060ti16gb, m3max -> m3max64gb)
        lambda a: a == key or (a.startswith(key) and variant.fullmatch(a[len(key):]) is not None),
        # a family name that lists several cards (Navi 31 [Radeon RX 7900 XT/7900 XTX])
        lambda a: len(a) >= 5 and a in key,
    )
    for test in tests:
        found = candidates(test)
        if found and total_bytes is None:
            return found[0]
        if found:
            best = min(found, key=lambda g: abs(g.memory_bytes - total_bytes))
            if abs(best.memory_bytes - total_bytes) <= MATCH_TOLERANCE * best.memory_bytes:
                return best
    return None


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


AUTO = "auto"


def parse_gpu(spec: str) -> GPUChoice:
    """`RTX-4090`, `L40S:2`, `8xH100`, `H100x8`, or `auto` (this machine's GPUs: hfvram.hardware)."""
    spec = spec.strip()
    if not spec:
        raise UsageError("--gpu needs a GPU name (see `hfvram gpus`)")
    if spec.lower() == AUTO:
        from .hardware import auto_choice

        return auto_choice()
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
