"""The safetensors file format: dtypes, header parsing and header building.

A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON, then the tensor data.
Each JSON entry is `{"dtype", "shape", "data_offsets": [begin, end]}`; the optional `__metadata__` entry is a
str->str map. Byte sizes are always `end - begin` (exact for every dtype, packed 4-bit included).
"""

from __future__ import annotations

import json
import math
import struct
from operator import itemgetter
from typing import Iterable, NamedTuple

from .errors import MalformedInput
from .gcpause import pausing

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


class Tensor(NamedTuple):
    """One tensor as a checkpoint stores it. A named tuple: a giant checkpoint has 90k-140k of them (DeepSeek-V3,
    Kimi-K2), and `parse_header` makes one in 0.2 us with `tuple.__new__` where a frozen dataclass's `__init__`
    took 1.1 us (timeit, on the 2-core machine `make bench` runs on): 0.12 s of a cold Kimi-K2 run."""

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
    if n < 2:
        raise MalformedInput(f"{what}: safetensors header claims {n} bytes; not a safetensors file?")
    return n


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_shape(shape, what: str, name: str) -> tuple[int, ...]:
    """A tensor shape as the format allows it: a list of whole numbers >= 0 (safetensors `Vec<usize>`)."""
    if not isinstance(shape, (list, tuple)) or not all(_whole(d) and d >= 0 for d in shape):
        raise MalformedInput(f"{what}: tensor {str(name)[:120]!r} has shape {repr(shape)[:80]}, not a list of whole "
                             f"numbers >= 0")
    return tuple(shape)


@pausing
def parse_header(header: bytes | str | dict, file: str = "", what: str | None = None,
                 data_size: int | None = None) -> tuple[list[Tensor], dict]:
    """Parse the JSON header of a safetensors file into tensors (in file order) and its `__metadata__`.

    Checked as the `safetensors` library checks a header before it loads a file (safetensors/src/tensor.rs
    `Metadata::validate`: spans sorted by offset must start where the previous one ended, from 0, and hold exactly
    the shape's bytes, counted in u64): every entry has a known dtype, a shape of whole numbers >= 0 and
    `data_offsets` [begin, end] whose span is exactly the shape's bytes, and the spans tile the data area.
    `data_size` (file size - 8 - header length, when known) bounds the last span. Anything else is a
    `MalformedInput` naming the tensor and what is wrong; nothing else escapes."""
    what = what or file or "safetensors header"
    if isinstance(header, dict):
        raw = header
    else:
        if isinstance(header, (bytes, bytearray)):
            header = bytes(header).decode("utf-8", errors="replace")
        try:
            raw = json.loads(header)
        except RecursionError:
            raise MalformedInput(f"{what}: header nests too deeply to be a safetensors header") from None
        except ValueError as exc:
            detail = f"{exc.msg} at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
            raise MalformedInput(f"{what}: header is not valid JSON ({detail})") from None
    if not isinstance(raw, dict):
        raise MalformedInput(f"{what}: header is not a JSON object")
    metadata = raw.get("__metadata__")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise MalformedInput(f"{what}: __metadata__ is not a map of strings to strings")
    tensors = []
    for name, info in raw.items():
        if name == "__metadata__":
            continue
        fast = _plain_entry(info)  # most entries: the same checks in one pass, no calls (90k-140k in DeepSeek/Kimi)
        if fast is not None:
            shape, begin, end, dtype, need = fast
            tensors.append((begin, end, _new(Tensor, (name, dtype, shape, need, file))))
            continue
        if not isinstance(info, dict):
            raise MalformedInput(f"{what}: tensor {name[:120]!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or shape is None or offsets is None:
            raise MalformedInput(f"{what}: tensor {name[:120]!r} lacks a valid dtype/shape/data_offsets")
        if dtype not in DTYPE_BITS:
            raise MalformedInput(f"{what}: tensor {name[:120]!r} has unknown dtype {dtype[:40]!r}")
        shape = check_shape(shape, what, name)
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_whole(x) for x in offsets)):
            raise MalformedInput(f"{what}: tensor {name[:120]!r} has data_offsets {repr(offsets)[:80]}, not two whole "
                                 f"numbers")
        begin, end = offsets
        if begin < 0 or end < begin:
            raise MalformedInput(f"{what}: tensor {name[:120]!r} has invalid data_offsets {[begin, end]}")
        numel = 1
        for d in shape:  # the format counts in u64: safetensors refuses a larger product (ValidationOverflow)
            numel *= d
            if numel >= 1 << 64:
                raise MalformedInput(f"{what}: tensor {name[:120]!r} has shape {list(shape)[:8]}: more elements than "
                                     f"a 64-bit count holds")
        need = (numel * DTYPE_BITS[dtype] + 7) // 8
        if end - begin != need:
            raise MalformedInput(f"{what}: tensor {name[:120]!r} spans {end - begin:,} bytes but {dtype}"
                                 f"{list(shape)[:8]} needs {need:,}")
        tensors.append((begin, end, Tensor(name, dtype, shape, need, file)))
    tensors.sort(key=_SPAN)
    offset = 0
    for begin, end, t in tensors:
        if begin != offset:
            raise MalformedInput(f"{what}: tensor {t.name[:120]!r} starts at byte {begin:,} of the data, expected "
                                 f"{offset:,} (spans must follow each other without gaps or overlaps)")
        offset = end
    if data_size is not None and offset > data_size:
        raise MalformedInput(f"{what}: the tensors need {offset:,} bytes of data but the file holds {data_size:,}")
    return [t for _, _, t in tensors], dict(metadata)


_NUMEL_LIMIT = 1 << 64
_new = tuple.__new__
_SPAN = itemgetter(0, 1)


def _plain_entry(info):
    """(shape, begin, end, dtype, bytes) of a header entry that passes every check `parse_header` makes, when it is
    made of plain JSON values (a dict, a known dtype, lists of ints); None for anything else, which `parse_header`
    then checks one by one (and names what is wrong)."""
    if type(info) is not dict:
        return None
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if type(dtype) is not str or type(shape) is not list or type(offsets) is not list or len(offsets) != 2:
        return None
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        return None
    begin, end = offsets
    if type(begin) is not int or type(end) is not int or begin < 0 or end < begin:
        return None
    numel = 1
    for d in shape:
        if type(d) is not int or d < 0:
            return None
        numel *= d
        if numel >= _NUMEL_LIMIT:
            return None
    need = (numel * bits + 7) // 8
    if end - begin != need:
        return None
    return tuple(shape), begin, end, dtype, need


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
