"""Byte sizes: parsing `24GiB`/`80GB`/`512MiB` and formatting for people."""

from __future__ import annotations

import re

from .errors import UsageError

GiB = 1 << 30
MiB = 1 << 20

_UNITS = {
    "": GiB,  # a bare number is GiB, like the GPU sizes people quote
    "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 1000,
    "m": MiB, "mib": MiB, "mb": 1000**2,
    "g": GiB, "gib": GiB, "gb": 1000**3,
    "t": 1 << 40, "tib": 1 << 40, "tb": 1000**4,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """`24GiB`, `24G` and `24` are 24 x 2^30 bytes; `24GB` is 24 x 10^9 (decimal, as disk vendors mean it)."""
    m = _SIZE.match(str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"cannot read {text!r} as a size (examples: 24GiB, 80GB, 512MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_tokens(text: str) -> int:
    """Context lengths: `4096`, `32k`/`32K` (= 32768), `1M` (= 1048576)."""
    m = re.match(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)\s*$", str(text))
    if not m:
        raise UsageError(f"cannot read {text!r} as a number of tokens (examples: 4096, 32k, 128K)")
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def fmt_bytes(n: float | None, units: str = "GiB") -> str:
    if n is None:
        return "-"
    if units == "GB":
        for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if abs(n) >= size:
                return f"{n / size:.2f} {unit}"
        return f"{int(n)} B"
    for unit, size in (("TiB", 1 << 40), ("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def fmt_count(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return str(int(n))


def fmt_tokens(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return f"{n:,}"


def median(values) -> float:
    """statistics.median (the mean of the middle two of an even count), without importing statistics: its fractions,
    decimal and random cost ~8 ms on every run."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        raise ValueError("median of no values")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
