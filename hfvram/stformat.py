"""The safetensors file format: dtypes, header parsing and header building.

A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON, then the tensor data.
Each JSON entry is `{"dtype", "shape", "data_offsets": [begin, end]}`; the optional `__metadata__` entry is a
str->str map. Byte sizes are always `end - begin` (exact for every dtype, packed 4-bit included).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Iterable

from .errors import MalformedInput

# Bits per element of each safetensors dtype.
# Source: huggingface/safetensors safetensors/src/tensor.rs, `Dtype::bitsize()` (F4 = 4, F6_* = 6, C64 = 64).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

# huggingface_hub refuses headers above this (constants.SAFETENSORS_MAX_HEADER_LENGTH = 25_000_000); so do we.
MAX_HEADER_BYTES = 25_000_000


@dataclass(frozen=True, slots=True)
class Tensor:
    """One tensor as a checkpoint stores it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str = ""

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def dtype_nbytes(dtype: str, shape: Iterable[int]) -> int:
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        raise MalformedInput(f"unknown safetensors dtype {dtype!r}")
    return (math.prod(shape) * bits + 7) // 8


def header_length(prefix: bytes, what: str = "safetensors file") -> int:
    if len(prefix) < 8:
        raise MalformedInput(f"{what}: file is too small to be safetensors ({len(prefix)} bytes)")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_BYTES:
        raise MalformedInput(
            f"{what}: safetensors header claims {n:,} bytes (limit {MAX_HEADER_BYTES:,}); not a safetensors file?"
        )
    return n


def parse_header(header: bytes | str | dict, file: str = "", what: str | None = None) -> tuple[list[Tensor], dict]:
    """Parse the JSON header of a safetensors file into tensors (in file order) and its `__metadata__`."""
    what = what or file or "safetensors header"
    if isinstance(header, dict):
        raw = header
    else:
        if isinstance(header, bytes):
            header = header.decode("utf-8", errors="ignore")
        try:
            raw = json.loads(header)
        except ValueError as exc:
            raise MalformedInput(f"{what}: header is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(raw, dict):
        raise MalformedInput(f"{what}: header is not a JSON object")
    metadata = raw.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise MalformedInput(f"{what}: __metadata__ is not an object")
    tensors = []
    for name, info in raw.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise MalformedInput(f"{what}: tensor {name!r} lacks a valid dtype/shape/data_offsets") from None
        if dtype not in DTYPE_BITS:
            raise MalformedInput(f"{what}: tensor {name!r} has unknown dtype {dtype!r}")
        if end < begin or begin < 0 or any(d < 0 for d in shape):
            raise MalformedInput(f"{what}: tensor {name!r} has invalid data_offsets {[begin, end]}")
        tensors.append((begin, Tensor(name, dtype, shape, end - begin, file)))
    tensors.sort(key=lambda t: t[0])
    return [t for _, t in tensors], {str(k): str(v) for k, v in metadata.items()}


def build_header(tensors: Iterable[tuple[str, str, Iterable[int]]], metadata: dict | None = None) -> bytes:
    """Serialise a header the way `safetensors` does: compact JSON, `__metadata__` first, tensors in the
    given (storage) order with contiguous offsets, padded with spaces to a multiple of 8, behind the 8-byte length.
    """
    entries: dict[str, object] = {}
    if metadata:
        entries["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape in tensors:
        shape = [int(d) for d in shape]
        n = dtype_nbytes(dtype, shape)
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    body = json.dumps(entries, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body


def data_size(tensors: Iterable[tuple[str, str, Iterable[int]]]) -> int:
    return sum(dtype_nbytes(dtype, shape) for _, dtype, shape in tensors)
