"""GGUF files as input: which files of a repo make one model, and their headers, read exactly.

A GGUF file is a header (magic, version, key/value metadata, one info record per tensor: name, shape, ggml type,
offset) followed by the tensor data. hfvram reads the header only, never tensor data:

- Hub files: HTTP Range requests through `huggingface_hub` (its shared `get_session()`, `hf_hub_url`,
  `build_hf_headers`), streamed and parsed as the bytes arrive. The first range is `FIRST_RANGE_BYTES`; while the
  header goes on, each next range ends `RANGE_GROWTH` times further out, up to `HEADER_CAP_BYTES`; the response
  is closed the moment the header has parsed. A Llama-3 header (7.8 MB of tokenizer) takes two requests.
- Local files: the same parser over the open file.

The header is parsed here (the `gguf` package's `GGUFReader` memory-maps a whole file, which a header read does not
have), with the `gguf` package's own tables: `GGUFValueType` (value types and, through `GGUFReader`, their element
types), `GGMLQuantizationType` and `GGML_QUANT_SIZES` (block sizes), `Keys` (key names), `LlamaFileType`. The checks
are llama.cpp's (`ggml/src/gguf.cpp` `gguf_init_from_reader`, llama-cpp-python 0.3.36): magic, version 2 or 3,
unique non-empty keys, valid value and ggml types, at most 4 dimensions, names under 64 bytes, rows a whole number
of blocks, tensor data contiguous at the file's alignment. A file that breaks one is refused with one line.

Tokenizer arrays (`tokenizer.ggml.tokens`, `merges`, `scores`, ...) are walked, not kept: an array of more than
`KEEP_ARRAY_ITEMS` items is recorded as its element type, length and byte size.

Files (llama.cpp naming): `<name>-00001-of-00003.gguf` are the splits of one model (`llama_split_path`,
`src/llama.cpp`); `mmproj*.gguf` is a vision projector (llama.cpp `mtmd`), never a model of its own.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import field
from typing import Callable, ContextManager, Iterator

from ..errors import MalformedInput, NothingToRead, UsageError
from ..record import record
from ..units import MiB

# The most header bytes hfvram reads before refusing a file. Headers are almost all tokenizer: llama.cpp's own
# vocab-only GGUFs (vendor/llama.cpp/models/ in llama-cpp-python 0.3.36, metadata + tokenizer, no tensors) measure
# 7.8 MB for Llama-3's 128K BPE vocabulary (ggml-vocab-llama-bpe.gguf), 10.9 MB for Command-R's 256K
# (ggml-vocab-command-r.gguf) and 15.8 MB for Gemma-4's 262K (ggml-vocab-gemma-4.gguf); tensor infos add ~40 bytes
# a tensor (2,000-20,000 tensors: under 1 MB). 64 MiB is four times the largest of those: room for bigger
# vocabularies and embedded chat templates, while a corrupt length can never make us stream a multi-GB file.
HEADER_CAP_BYTES = 64 * MiB
# First range: covers every header without a tokenizer (mmproj projectors, hfvram's test fixtures) in one request.
FIRST_RANGE_BYTES = 1 * MiB
# Each further range ends this many times further out than the last: 1 MiB, then 8 MiB (Llama-3 and Qwen2.5
# headers, 5.9-7.8 MB in the llama.cpp vocab files above, in two requests), then the cap.
RANGE_GROWTH = 8
# Arrays longer than this are walked but not kept: per-layer arrays (head_count_kv, sliding-window pattern, ...)
# have one item per block, at most LLAMA_MAX_LAYERS = 512 (src/llama-hparams.h); tokenizer lists have 32K-262K.
KEEP_ARRAY_ITEMS = 4096
# String values longer than this (chat templates, an embedded tokenizer.json) are recorded by size only: hfvram
# reads no such value, and they would bloat the metadata cache (a chat template is 1-20 kB, in every quant file).
KEEP_STRING_BYTES = 1024
# ggml/src/gguf.cpp: GGUF_MAX_ARRAY_ELEMENTS (1024*1024*1024), GGML_MAX_DIMS 4, GGML_MAX_NAME 64 (ggml.h).
MAX_ARRAY_ITEMS = 1 << 30
MAX_DIMS = 4
MAX_NAME = 64
CHUNK_BYTES = 256 * 1024  # read size of a streamed range (a bound on what is read past the header's end)

_SPLIT = re.compile(r"^(?P<base>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# Quant names in file names: Q4_K_M, IQ4_XS, Q8_0, BF16, F16, MXFP4_MOE, TQ1_0, and custom mixes built on them
# (bartowski's Q4_K_L, unsloth's UD-Q4_K_XL): the last such token of the name.
_QUANT_TOKEN = re.compile(r"(?<![A-Za-z0-9])((?:UD-)?(?:I?Q\d(?:_[0-9A-Z]+)*|BF16|F16|F32|FP16|FP32|MXFP4(?:_MOE)?|"
                          r"TQ\d_\d))(?![A-Za-z0-9])", re.IGNORECASE)


def _gguf():
    import gguf  # llama.cpp's gguf-py: imported only when a GGUF file is read (it pulls numpy)

    return gguf


# ---------------------------------------------------------------------------------------------------------------
# The parsed header
# ---------------------------------------------------------------------------------------------------------------


@record(frozen=True)
class ArrayInfo:
    """A metadata array that was walked but not kept (tokenizer lists), or a long string value ("STRING_VALUE")."""

    type: str  # GGUFValueType name of its items, e.g. "STRING"; "STRING_VALUE" for one long string
    count: int
    nbytes: int

    def to_json(self) -> dict:
        return {"__array__": self.type, "count": self.count, "nbytes": self.nbytes}


@record(frozen=True)
class TensorInfo:
    """One tensor info of a GGUF header: name, GGML type, shape, data offset."""

    name: str
    type: str  # GGMLQuantizationType name, e.g. "Q4_K"
    shape: tuple[int, ...]  # numpy order (ggml ne reversed)
    offset: int  # within the data section
    nbytes: int  # ggml_nbytes: rows x (ne[0] / block size) x block bytes

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@record
class GGUFHeader:
    """A GGUF file's header: version, metadata, tensor infos."""

    path: str
    version: int
    metadata: dict
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int  # header bytes, padding to the alignment included: where tensor data starts
    file_size: int | None = None

    @property
    def data_bytes(self) -> int:
        """Tensor bytes (what llama.cpp loads), alignment padding excluded."""
        return sum(t.nbytes for t in self.tensors)

    @property
    def padded_data_bytes(self) -> int:
        a = self.alignment
        return sum(-(-t.nbytes // a) * a for t in self.tensors)

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def file_type(self) -> str | None:
        """general.file_type as llama.cpp's name (LlamaFileType MOSTLY_Q4_K_M -> "Q4_K_M"), or None."""
        value = self.metadata.get("general.file_type")
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        try:
            name = _gguf().LlamaFileType(value).name
        except ValueError:
            return f"file type {value}"
        return {"ALL_F32": "F32", "GUESSED": None}.get(name, name.replace("MOSTLY_", "", 1))

    def to_json(self) -> dict:
        return {
            "path": self.path, "version": self.version, "alignment": self.alignment, "data_offset": self.data_offset,
            "file_size": self.file_size,
            "metadata": {k: (v.to_json() if isinstance(v, ArrayInfo) else v) for k, v in self.metadata.items()},
            "tensors": [[t.name, t.type, list(t.shape), t.offset, t.nbytes] for t in self.tensors],
        }

    @classmethod
    def from_json(cls, d: dict) -> "GGUFHeader":
        meta = {k: (ArrayInfo(v["__array__"], v["count"], v["nbytes"]) if isinstance(v, dict) and "__array__" in v
                    else v) for k, v in d["metadata"].items()}
        return cls(path=d["path"], version=d["version"], metadata=meta, alignment=d["alignment"],
                   data_offset=d["data_offset"], file_size=d.get("file_size"),
                   tensors=[TensorInfo(n, t, tuple(s), o, b) for n, t, s, o, b in d["tensors"]])


class HeaderTooLarge(MalformedInput):
    kind = "header-too-large"


# ---------------------------------------------------------------------------------------------------------------
# Parsing: resumable, so a header can be parsed while it streams in
# ---------------------------------------------------------------------------------------------------------------


class _Short(Exception):
    """Not enough bytes yet."""


class _Buf:
    """Bytes of the file from absolute offset `start`; `pos` is the parser's absolute position."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.start = 0
        self.pos = 0

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def restart_at(self, offset: int) -> None:
        self.data = bytearray()
        self.start = self.pos = offset

    def compact(self) -> None:
        drop = self.pos - self.start
        if drop > 4 * CHUNK_BYTES:
            del self.data[:drop]
            self.start += drop

    def take(self, n: int) -> memoryview:
        i = self.pos - self.start
        if i + n > len(self.data):
            raise _Short
        self.pos += n
        return memoryview(self.data)[i:i + n]


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


class _Parser:
    """GGUF header state machine: `advance(buf)` parses as far as the buffered bytes allow and returns True when
    the header is complete. It resumes after the last complete item (a key/value pair, a run of array items, a
    tensor info), so the bytes can arrive in any chunks."""

    def __init__(self, name: str, template: "GGUFHeader | None" = None):
        import numpy as np

        g = _gguf()
        self.name = name
        self.g = g
        self.np = np
        self.VT = g.GGUFValueType
        # element types of the scalar value types: the gguf package's own table (GGUFReader.gguf_scalar_to_np)
        self.np_types = {vt: np.dtype(t).newbyteorder("<") for vt, t in g.GGUFReader.gguf_scalar_to_np.items()}
        self.item_size = {vt: t.itemsize for vt, t in self.np_types.items()}
        self.stage = "preamble"
        self.version = 0
        self.n_kv = self.n_tensors = 0
        self.kv_done = self.ti_done = 0
        self.metadata: dict = {}
        self.tensors: list[TensorInfo] = []
        self.names: set[str] = set()
        self.array: list | None = None  # [key, item type, count, done, start pos, kept values or None]
        self.skippable = {k: v for k, v in (template.metadata.items() if template else ()) if isinstance(v, ArrayInfo)}
        self.skipped = False
        self.data_offset = 0
        self.next_offset = 0
        self.alignment = g.GGUF_DEFAULT_ALIGNMENT

    # -- primitives (raise _Short) --------------------------------------------------------------------------
    def _u32(self, b: _Buf) -> int:
        return _U32.unpack(b.take(4))[0]

    def _u64(self, b: _Buf) -> int:
        return _U64.unpack(b.take(8))[0]

    def _str(self, b: _Buf, what: str, strict: bool = True) -> str:
        n = self._u64(b)
        if n > HEADER_CAP_BYTES:
            raise self._bad(f"{what} claims {n:,} bytes")  # no string of a header is that long
        raw = bytes(b.take(n))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if strict:
                raise self._bad(f"{what} is not UTF-8") from None
            return raw.decode("utf-8", errors="replace")

    def _vtype(self, raw: int, what: str):
        try:
            return self.VT(raw)
        except ValueError:
            raise self._bad(f"{what} has invalid GGUF value type {raw}") from None

    def _bad(self, why: str) -> MalformedInput:
        return MalformedInput(f"{self.name}: not a valid GGUF header ({why})")

    def _scalar(self, b: _Buf, vt):
        if vt == self.VT.STRING:
            value = self._str(b, "a string value", strict=False)
            return value if len(value) <= KEEP_STRING_BYTES else ArrayInfo("STRING_VALUE", 1, len(value.encode()))
        size = self.item_size[vt]
        value = self.np.frombuffer(b.take(size), dtype=self.np_types[vt], count=1)[0]
        return bool(value) if vt == self.VT.BOOL else value.item()

    # -- driver ----------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.stage == "done"

    def advance(self, b: _Buf) -> bool:
        while self.stage != "done":
            mark = b.pos
            try:
                progressed = getattr(self, "_" + self.stage)(b)
            except _Short:
                b.pos = mark
                return False
            if not progressed:  # a partly read array: its progress is kept, more bytes are needed
                return False
            if b.pos > b.end:  # jumped past the buffered bytes (a fixed-size array, a known tokenizer list)
                return False
        return True

    def _preamble(self, b: _Buf) -> bool:
        magic = bytes(b.take(4))
        if magic != _U32.pack(self.g.GGUF_MAGIC):
            raise self._bad(f"magic {magic!r}, expected b'GGUF'")
        version = self._u32(b)
        if version & 0xFFFF == 0:
            raise self._bad("big-endian file; llama.cpp loads little-endian GGUF")
        if version == 1:
            raise self._bad("GGUF version 1 is no longer supported by llama.cpp")
        if version > self.g.GGUF_VERSION or version == 0:
            raise self._bad(f"version {version}; the gguf package reads up to {self.g.GGUF_VERSION}")
        self.version = version
        self.n_tensors = _I64.unpack(b.take(8))[0]
        self.n_kv = _I64.unpack(b.take(8))[0]
        if not 0 <= self.n_tensors <= 1 << 24 or not 0 <= self.n_kv <= 1 << 24:
            raise self._bad(f"{self.n_tensors} tensors and {self.n_kv} keys")
        self.stage = "kv" if self.n_kv else "ti_start"
        return True

    def _kv(self, b: _Buf) -> bool:
        if self.array is not None:
            return self._array_items(b)
        key = self._str(b, f"key {self.kv_done}")
        if not key:
            raise self._bad(f"key {self.kv_done} is empty")
        if key in self.metadata:
            raise self._bad(f"duplicate key {key!r}")
        vt = self._vtype(self._u32(b), f"key {key!r}")
        if vt == self.VT.ARRAY:
            item = self._vtype(self._u32(b), f"array {key!r}")
            if item == self.VT.ARRAY:
                raise self._bad(f"array {key!r} of arrays")
            count = self._u64(b)
            if count > MAX_ARRAY_ITEMS:
                raise self._bad(f"array {key!r} of {count:,} items")
            self.array = [key, item, count, 0, b.pos, [] if count <= KEEP_ARRAY_ITEMS else None]
            known = self.skippable.get(key)
            if known is not None and known.type == item.name and known.count == count and count > KEEP_ARRAY_ITEMS:
                b.pos += known.nbytes  # the same list as in a sibling file of this model: verified at the end
                self.skipped = True
                self._end_array(b)
            elif item != self.VT.STRING and count > KEEP_ARRAY_ITEMS:
                b.pos += count * self.item_size[item]  # fixed-size items: no need to see them
                self._end_array(b)
            return True  # a checkpoint after the array's header: its items come in the next steps
        self.metadata[key] = self._scalar(b, vt)
        self._next_kv()
        return True

    def _array_items(self, b: _Buf) -> bool:
        key, item, count, done, _, kept = self.array
        if kept is not None:  # small arrays: all at once
            if item == self.VT.STRING:
                values = [self._str(b, f"an item of {key!r}", strict=False) for _ in range(count)]
            else:
                values = [self._scalar(b, item) for _ in range(count)]
            self.array[5] = values
            self._end_array(b)
            return True
        # a long string array: walk the length prefixes, keeping the position after the last whole item
        data, start = b.data, b.start
        i = b.pos - start
        n = len(data)
        unpack = _U64.unpack_from
        while done < count and i + 8 <= n:
            length = unpack(data, i)[0]
            if length > HEADER_CAP_BYTES:
                raise self._bad(f"item {done} of {key!r} claims {length:,} bytes")
            if i + 8 + length > n:
                break
            i += 8 + length
            done += 1
        b.pos = start + i
        self.array[3] = done
        if done < count:
            return False
        self._end_array(b)
        return True

    def _end_array(self, b: _Buf) -> None:
        key, item, count, _, start, kept = self.array
        self.metadata[key] = kept if kept is not None else ArrayInfo(item.name, count, b.pos - start)
        self.array = None
        self._next_kv()

    def _next_kv(self) -> None:
        self.kv_done += 1
        if self.kv_done == self.n_kv:
            self.stage = "ti_start"

    def _ti_start(self, b: _Buf) -> bool:
        align = self.metadata.get("general.alignment", self.alignment)
        if "general.alignment" in self.metadata:
            if not isinstance(align, int) or isinstance(align, bool) or align <= 0 or align & (align - 1):
                raise self._bad(f"general.alignment {align!r} is not a power of two")
        self.alignment = align
        self.stage = "ti" if self.n_tensors else "finish"
        return True

    def _ti(self, b: _Buf) -> bool:
        g = self.g
        name = self._str(b, f"tensor name {self.ti_done}")
        if len(name.encode()) >= MAX_NAME:
            raise self._bad(f"tensor name {name[:80]!r} is {len(name.encode())} bytes (llama.cpp: under {MAX_NAME})")
        if name in self.names:
            raise self._bad(f"duplicate tensor {name!r}")
        n_dims = self._u32(b)
        if n_dims > MAX_DIMS:
            raise self._bad(f"tensor {name!r} has {n_dims} dimensions")
        ne = [_I64.unpack(b.take(8))[0] for _ in range(n_dims)]
        if any(d < 0 for d in ne):
            raise self._bad(f"tensor {name!r} has a negative dimension")
        raw_type = _U32.unpack(b.take(4))[0]
        offset = self._u64(b)
        try:
            qtype = g.GGMLQuantizationType(raw_type)
            block, type_size = g.GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise self._bad(f"tensor {name!r} has ggml type {raw_type}, unknown to the gguf package "
                            f"{_gguf_version()}") from None
        ne0 = ne[0] if ne else 1
        if ne0 % block:
            raise self._bad(f"tensor {name!r}: a row of {ne0} is not a whole number of {qtype.name} blocks ({block})")
        numel = 1
        for d in ne:
            numel *= d
        nbytes = numel // block * type_size
        if offset != self.next_offset:
            raise self._bad(f"tensor {name!r} at data offset {offset:,}, expected {self.next_offset:,} "
                            f"(tensor data must be contiguous)")
        self.next_offset += -(-nbytes // self.alignment) * self.alignment
        self.names.add(name)
        self.tensors.append(TensorInfo(name, qtype.name, tuple(reversed(ne)), offset, nbytes))
        self.ti_done += 1
        if self.ti_done == self.n_tensors:
            self.stage = "finish"
        return True

    def _finish(self, b: _Buf) -> bool:
        a = self.alignment
        self.data_offset = -(-b.pos // a) * a if self.n_tensors else b.pos
        self.stage = "done"
        return True

    def header(self, path: str, file_size: int | None) -> GGUFHeader:
        return GGUFHeader(path=path, version=self.version, metadata=self.metadata, tensors=self.tensors,
                          alignment=self.alignment, data_offset=self.data_offset, file_size=file_size)


def _gguf_version() -> str:
    try:
        from importlib.metadata import version

        return version("gguf")
    except Exception:  # noqa: BLE001 - only for a message
        return "(unknown version)"


# A byte source: open_range(start, stop) -> a context manager yielding chunks of bytes [start, stop).
RangeOpener = Callable[[int, int], ContextManager[Iterator[bytes]]]


def read_header(open_range: RangeOpener, path: str, size: int | None, *, display: str | None = None,
                template: GGUFHeader | None = None, cap: int | None = None) -> GGUFHeader:
    """Parse the header of one GGUF file from growing ranges (see the module docstring). `size`: the file's size
    when known (the header must end inside it, and the tensor data must fill it). `template`: the header of a
    sibling file of the same model, whose long tokenizer arrays may be skipped without reading them; the result is
    then checked against the file size and read again in full if it does not match."""
    if template is not None:
        try:
            header, skipped = _read_header(open_range, path, size, display, template, cap)
        except MalformedInput:
            skipped = True  # a skip landed somewhere else: the sibling's lists differ
            header = None
        if header is not None and (size is None or not skipped or
                                   size == header.data_offset + header.padded_data_bytes):
            return header
        template = None  # read it all
    header, _ = _read_header(open_range, path, size, display, None, cap)
    return header


def _read_header(open_range, path, size, display, template, cap):
    name = display or path
    cap = cap or HEADER_CAP_BYTES
    parser = _Parser(name, template)
    buf = _Buf()
    goal = FIRST_RANGE_BYTES
    while not parser.done:
        start = buf.end
        if buf.pos > start:  # the parser jumped over bytes it does not need
            buf.restart_at(buf.pos)
            start = buf.pos
        limit = cap if size is None else min(cap, size)
        if start >= limit:
            if size is not None and start >= size:
                raise MalformedInput(f"{name}: the file ends ({size:,} bytes) inside its GGUF header (truncated?)")
            raise HeaderTooLarge(f"{name}: GGUF header larger than {cap // MiB} MiB, the most hfvram reads "
                                 f"(tokenizer headers are 1-16 MB; a corrupt length?)")
        stop = min(limit, max(goal, start + FIRST_RANGE_BYTES))
        with open_range(start, stop) as chunks:
            got = 0
            for chunk in chunks:
                if got + len(chunk) > stop - start:  # a server that ignored the range: never read past it
                    chunk = chunk[: stop - start - got]
                got += len(chunk)
                buf.data += chunk
                if parser.advance(buf) or buf.pos > buf.end:
                    break
                buf.compact()
                if got >= stop - start:
                    break
            if not parser.done and buf.pos <= buf.end and got < stop - start:
                raise MalformedInput(f"{name}: the server sent {start + got:,} of the {stop:,} bytes asked for")
        goal = stop * RANGE_GROWTH
    header = parser.header(path, size)
    if size is not None and not parser.skipped:
        expected = header.data_offset + header.padded_data_bytes
        if size < expected:
            raise MalformedInput(f"{name}: its header describes {expected:,} bytes but the file has {size:,} "
                                 f"(truncated?)")
    return header, parser.skipped


def local_opener(path: str) -> RangeOpener:
    from contextlib import contextmanager

    @contextmanager
    def open_range(start: int, stop: int):
        with open(path, "rb") as fh:
            fh.seek(start)

            def chunks():
                left = stop - start
                while left > 0:
                    data = fh.read(min(CHUNK_BYTES, left))
                    if not data:
                        return
                    left -= len(data)
                    yield data

            yield chunks()

    return open_range


def read_local_header(path: str, display: str | None = None, template: GGUFHeader | None = None) -> GGUFHeader:
    try:
        size = os.path.getsize(path)
        return read_header(local_opener(path), os.path.basename(path), size, display=display or path,
                           template=template)
    except OSError as exc:
        raise NothingToRead(f"{path}: {exc.strerror}") from None


# ---------------------------------------------------------------------------------------------------------------
# Which files make a model
# ---------------------------------------------------------------------------------------------------------------


@record
class QuantFiles:
    """One model in a GGUF repo: a single file, or the splits of one (in order)."""

    label: str  # the quant as the file name says it (Q4_K_M, IQ4_XS, BF16, Q4_K_L, ...), or the file name
    files: list[str]
    sizes: list[int | None] = field(default_factory=list)
    missing_parts: list[str] = field(default_factory=list)

    @property
    def size(self) -> int | None:
        return None if any(s is None for s in self.sizes) else sum(self.sizes)  # type: ignore[arg-type]

    @property
    def path(self) -> str:
        return self.files[0]


@record
class GGUFListing:
    """The GGUF models of a repo: its quants (each one or more split files) and projectors."""

    quants: list[QuantFiles]
    mmproj: list[str]

    def __bool__(self) -> bool:
        return bool(self.quants or self.mmproj)


def is_mmproj(path: str) -> bool:
    return "mmproj" in path.rsplit("/", 1)[-1].lower()


def quant_label(path: str) -> str:
    stem = path.rsplit("/", 1)[-1]
    m = _SPLIT.match(stem)
    stem = m.group("base") if m else stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem
    tokens = _QUANT_TOKEN.findall(stem)
    return tokens[-1].upper().replace("FP16", "F16").replace("FP32", "F32") if tokens else stem


def listing(files: dict[str, int | None]) -> GGUFListing:
    groups: dict[str, dict[int, str]] = {}
    counts: dict[str, int] = {}
    singles: list[str] = []
    mmproj: list[str] = []
    for path in sorted(files):
        if not path.lower().endswith(".gguf"):
            continue
        if is_mmproj(path):
            mmproj.append(path)
            continue
        name = path.rsplit("/", 1)[-1]
        m = _SPLIT.match(name)
        if m:
            key = path[: len(path) - len(name)] + m.group("base")
            groups.setdefault(key, {})[int(m.group("no"))] = path
            counts[key] = max(counts.get(key, 0), int(m.group("count")))
        else:
            singles.append(path)
    quants = [QuantFiles(quant_label(p), [p], [files.get(p)]) for p in singles]
    for key, parts in groups.items():
        ordered = [parts[i] for i in sorted(parts)]
        missing = [f"{key}-{i:05d}-of-{counts[key]:05d}.gguf" for i in range(1, counts[key] + 1) if i not in parts]
        quants.append(QuantFiles(quant_label(ordered[0]), ordered, [files.get(p) for p in ordered], missing))
    quants.sort(key=lambda q: (q.size is None, -(q.size or 0), q.path))
    return GGUFListing(quants, mmproj)


def choose(found: GGUFListing, repo_id: str, selector: str | None = None, file: str | None = None) -> QuantFiles:
    """The quant `selector` (`:Q4_K_M`, case-insensitive) or `file` (a path, a file name, or one split of a model)
    names, or the only one there is."""
    quants = found.quants
    if file:
        wanted = file.strip().lstrip("/")
        for q in quants:
            if wanted in q.files or any(f.rsplit("/", 1)[-1] == wanted for f in q.files):
                return q
        if wanted in found.mmproj or any(m.rsplit("/", 1)[-1] == wanted for m in found.mmproj):
            raise UsageError(f"{wanted} is a vision projector (mmproj), not a model: pass it with --mmproj")
        raise UsageError(f"{repo_id} has no GGUF file {wanted!r} (it has {_names(quants)})")
    if selector:
        key = selector.strip().upper()
        hits = [q for q in quants if q.label.upper() == key]
        if not hits:  # a name fragment: "Q4_K_M" inside a custom label, or a file stem
            hits = [q for q in quants if key in q.path.upper()]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UsageError(f"{repo_id}:{selector} matches {len(hits)} GGUF models ({_names(hits)}); "
                             f"name one with --file")
        raise UsageError(f"{repo_id} has no {selector} GGUF file (it has {_labels(quants)})")
    if len(quants) == 1:
        return quants[0]
    if not quants:
        raise NothingToRead(f"{repo_id} holds only vision projectors ({', '.join(found.mmproj)}), no GGUF model")
    raise ChooseQuant(repo_id, found)


class ChooseQuant(UsageError):
    """A GGUF repo with several quants and none chosen (`hfvram REPO` lists them; the API wants one)."""

    kind = "choose-quant"

    def __init__(self, repo_id: str, found: GGUFListing):
        self.repo_id = repo_id
        self.listing = found
        self.repo = None  # the RepoData it was chosen from, when known
        labels = [q.label for q in found.quants]
        first = next((x for x in ("Q4_K_M", "Q4_0") if x in labels), labels[0])
        super().__init__(f"{repo_id} holds {len(found.quants)} GGUF models ({_labels(found.quants)}): choose one "
                         f"with {repo_id}:{first} or --file (`hfvram {repo_id}` lists them with their fit)")


def _labels(quants: list[QuantFiles]) -> str:
    labels = [q.label for q in quants]
    return ", ".join(labels[:12]) + (f", ... ({len(labels)} in all)" if len(labels) > 12 else "")


def _names(quants: list[QuantFiles]) -> str:
    names = [q.path for q in quants]
    return ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")


def choose_mmproj(found: GGUFListing, repo_id: str, wanted: str | None) -> str | None:
    """`--mmproj` alone ("auto"): the repo's projector (the f16 one when there are several); `--mmproj FILE`."""
    if not wanted:
        return None
    if wanted != "auto":
        name = wanted.strip().lstrip("/")
        for m in found.mmproj:
            if name == m or m.rsplit("/", 1)[-1] == name:
                return m
        raise UsageError(f"{repo_id} has no vision projector {name!r} (it has "
                         f"{', '.join(found.mmproj) or 'none'})")
    if not found.mmproj:
        raise UsageError(f"--mmproj: {repo_id} has no mmproj*.gguf vision projector")
    for pref in ("F16", "BF16", "F32"):
        for m in found.mmproj:
            if quant_label(m) == pref:
                return m
    return found.mmproj[0]


# ---------------------------------------------------------------------------------------------------------------
# Hub reading
# ---------------------------------------------------------------------------------------------------------------


def hub_opener(hub, repo_id: str, sha: str, path: str) -> RangeOpener:
    """Range requests for one Hub file through huggingface_hub's shared HTTP client (redirects to the CDN followed;
    HF_ENDPOINT and the token honoured as in HubSource)."""
    from contextlib import contextmanager

    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    from .. import __version__
    from .hub import TIMEOUT_S

    from .hub import current_budget

    url = hf_hub_url(repo_id, path, revision=sha, endpoint=hub.endpoint)
    base = build_hf_headers(token=hub.token, library_name="hfvram", library_version=__version__)
    budget = current_budget()  # the run's deadline, checked between chunks (a trickling server cannot hold it)
    what = f"{repo_id}: {path}"

    def chunks(response):
        for chunk in response.iter_bytes(CHUNK_BYTES):
            budget.check(f"reading {what}")
            yield chunk

    @contextmanager
    def open_range(start: int, stop: int):
        headers = {**base, "Range": f"bytes={start}-{stop - 1}"}
        timeout = budget.request_timeout(f"while reading {what}") or TIMEOUT_S
        with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
            hf_raise_for_status(response)
            if response.status_code != 206 and start > 0:
                raise MalformedInput(f"{repo_id}: {path}: the server ignored the byte range (HTTP "
                                     f"{response.status_code}); hfvram reads GGUF headers with Range requests")
            yield chunks(response)

    return open_range


def fetch_headers(hub, repo, paths: list[str], template: GGUFHeader | None = None) -> None:
    """Read the headers of `paths` (Hub files of `repo`, a RepoData) into `repo.gguf`, in parallel, with the hub's
    retries; then store the repo in the metadata cache, so a warm run reads none of them again."""
    wanted = [p for p in paths if p not in repo.gguf]
    if not wanted:
        return
    from .hub import _Unreachable

    def one(path: str) -> GGUFHeader:
        opener = hub_opener(hub, repo.id, repo.sha, path)
        from .hub import current_budget

        return hub._retrying(current_budget(), f"reading the header of {repo.id}/{path}",
                             lambda: read_header(opener, path, repo.files.get(path), display=f"{repo.id}: {path}",
                                                 template=template))

    try:
        for path, header in zip(wanted, hub.pool.map(one, wanted)):
            repo.gguf[path] = header
    except _Unreachable as exc:
        from ..errors import NetworkError

        raise NetworkError(f"{repo.id}: lost the connection to {hub.endpoint_url} ({exc})") from None
    if repo.source in ("hub", "cache") and repo.sha and not repo.subfolder:
        hub.cache.put(repo, repo.revision or "main")


# ---------------------------------------------------------------------------------------------------------------
# Choosing the model of a repo, and reading what it needs
# ---------------------------------------------------------------------------------------------------------------


def selected(repo, quant: QuantFiles, mmproj: str | None = None):
    """A view of `repo` whose model is the GGUF `quant` (and projector `mmproj`); headers must be in repo.gguf."""
    from dataclasses import replace

    return replace(repo, format="gguf", gguf_files=list(quant.files), mmproj=mmproj, notes=list(repo.notes))


def prepare(repo, hub, *, selector: str | None = None, file: str | None = None, mmproj: str | None = None,
            offline: bool = False):
    """Decide whether `repo`'s model is a GGUF file, choose it, and read its header(s).

    GGUF files are the model when one is asked for (`:QUANT`, `--file`) or when the repo has no other weights:
    a GGUF repo's config.json (often a stub such as TheBloke's `{"model_type": "llama"}`) is never used to size it.
    A repo with safetensors (or .bin) weights is sized from those unless a GGUF file is asked for."""
    from .select import weight_files

    found = listing(repo.files)
    if not found:
        if mmproj:
            raise UsageError(f"--mmproj: {repo.id} has no GGUF files")
        if file and not repo.subfolder:
            raise UsageError(f"--file chooses a GGUF file, and {repo.id} has none")
        return repo
    if repo.format == "gguf" and not (selector or file):  # already chosen (a local .gguf file)
        projector = choose_mmproj(found, repo.id, mmproj)
        if projector:
            read_headers(repo, hub, [projector], offline=offline)
            repo.mmproj = projector
        return repo
    kind, _ = weight_files(repo.files, repo.texts)
    if not (selector or file) and kind != "none":
        if mmproj:
            raise UsageError(f"--mmproj: {repo.id} is sized from its {kind} weights; choose a GGUF model too "
                             f"({repo.id}:{found.quants[0].label if found.quants else 'QUANT'})")
        if found.quants:
            repo.notes.append(f"{repo.id} also holds {len(found.quants)} GGUF file(s) ({_labels(found.quants)}): "
                              f"sized from its {kind} weights; {repo.id}:{found.quants[0].label} sizes a GGUF file")
        return repo
    try:
        quant = choose(found, repo.id, selector, file)
    except ChooseQuant as exc:
        exc.repo = repo  # hfvram.analysis.list_quants goes on from here, with no second request
        raise
    if quant.missing_parts:
        raise MalformedInput(f"{repo.id}: {quant.label} is split in {len(quant.files) + len(quant.missing_parts)} "
                             f"files but {', '.join(quant.missing_parts[:3])} is missing")
    projector = choose_mmproj(found, repo.id, mmproj)
    read_headers(repo, hub, quant.files + ([projector] if projector else []), offline=offline)
    view = selected(repo, quant, projector)
    if found.mmproj and not projector:
        view.notes.append(f"{repo.id} has a vision projector ({', '.join(found.mmproj[:3])}): add it with --mmproj")
    return view


def read_headers(repo, hub, paths: list[str], *, offline: bool = False, template: GGUFHeader | None = None) -> None:
    """Headers of `paths` into repo.gguf: from a local folder, the Hub (Range requests), or already there (metadata
    cache, bundled snapshot)."""
    wanted = [p for p in paths if p not in repo.gguf]
    if not wanted:
        return
    if repo.source == "local":
        root = repo.local_root or repo.id
        for path in wanted:
            repo.gguf[path] = read_local_header(os.path.join(root, path), display=os.path.join(root, path),
                                                template=template)
        return
    from .hub import offline_env

    if hub is None or offline or offline_env() or repo.source == "snapshot" or any(
            "answering" in n and "from the" in n for n in repo.notes):
        from ..errors import NotAvailableOffline

        raise NotAvailableOffline(f"{repo.id}: the GGUF header of {wanted[0]} is not in the metadata cache or the "
                                  f"bundled snapshot, and the Hub is not being asked (offline)")
    fetch_headers(hub, repo, wanted, template)
