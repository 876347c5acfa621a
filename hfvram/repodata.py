"""What hfvram knows about one repo revision, in one plain, serialisable shape.

Every source (the Hub, a local folder, our metadata cache, the bundled snapshot, a test fixture) produces a
`RepoData`. It holds the repo's file listing with sizes, the text of the small files we read (config.json,
params.json, quantization side files, index files) and the tensor tables of the safetensors files whose headers we
read. The introspector works from this alone.

GGUF repos (hfvram.sources.gguf): `gguf` holds the headers read (metadata and tensor infos, per file); when the
model *is* a GGUF file, `format` is "gguf", `gguf_files` names it (its splits, in order) and `mmproj` the vision
projector asked for. Those three are a choice made per run, not what the repo is: they are not serialised.

Serialised form (cache entries, snapshot files, fixture `tensors.json.gz`):
    {"id", "sha", "files": {path: size|null}, "texts": {path: text},
     "safetensors": {path: {"metadata": {...}, "tensors": [[name, dtype, shape], ...]}},
     "gguf": {path: {"version", "alignment", "data_offset", "file_size", "metadata", "tensors": [...]}}}
Tensors are listed in storage order; offsets are contiguous, so each tensor's byte span is dtype bits x numel / 8
(the safetensors format requires exactly that, and `stformat.parse_header` checks it).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import field
from pathlib import Path

from . import stformat
from .errors import MalformedInput
from .gcpause import pausing
from .record import record
from .stformat import Tensor

# Small files worth reading when a repo has them; everything else is known by name and size only.
TEXT_FILES = (
    "config.json",
    "params.json",
    "quantize_config.json",
    "quant_config.json",
    "hf_quant_config.json",
    "adapter_config.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


@record
class RepoData:
    """What a source read of a repo: listing, small text files, and the weight-file headers."""

    id: str
    sha: str | None = None
    source: str = "hub"  # hub | cache | snapshot | local
    revision: str | None = None
    files: dict[str, int | None] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    # path -> (metadata, tensors in storage order)
    safetensors: dict[str, tuple[dict, list[Tensor]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # GGUF: headers read (path -> hfvram.sources.gguf.GGUFHeader), and the model chosen among them
    gguf: dict = field(default_factory=dict)
    format: str | None = None  # "gguf" when the model is the GGUF file(s) in gguf_files
    gguf_files: list[str] = field(default_factory=list)
    mmproj: str | None = None
    subfolder: str | None = None  # the repo folder the model was read from (EXL2 repos with one bit-rate per folder)
    local_root: str | None = None  # the folder of a local model (its GGUF headers are read from there)
    # Where the facts derived from this commit are kept (hfvram.introspect.derived): the metadata cache of the source
    # that read it, and the facts the bundled snapshot ships for it. Per run, not serialised, not compared.
    facts_store: object = field(default=None, compare=False, repr=False)
    bundled_facts: dict | None = field(default=None, compare=False, repr=False)
    # The safetensors headers' JSON bytes as the Hub sent them (path -> bytes): what the metadata cache writes. Per
    # run, not serialised, not compared.
    raw_headers: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    # -- serialisation -------------------------------------------------------------------------------------
    @pausing
    def to_json(self, tables: bool = True) -> dict:
        """The serialised form; `tables=False` leaves out the safetensors tables (the metadata cache stores the
        headers themselves, hfvram.sources.cache)."""
        return {
            "id": self.id,
            "sha": self.sha,
            "files": self.files,
            "texts": self.texts,
            **({"safetensors": {
                path: {"metadata": meta, "tensors": [[t.name, t.dtype, list(t.shape)] for t in tensors]}
                for path, (meta, tensors) in self.safetensors.items()
            }} if tables else {}),
            **({"gguf": {path: h.to_json() for path, h in self.gguf.items()}} if self.gguf else {}),
        }

    @classmethod
    def from_json(cls, data: dict, source: str) -> "RepoData":
        """Checked: what a cache entry or snapshot file holds is validated as a header would be (MalformedInput)."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise MalformedInput(f"{source} entry: not a repo record")
        files, texts = data.get("files") or {}, data.get("texts") or {}
        if not isinstance(files, dict) or not all(
                isinstance(k, str) and (v is None or (type(v) is int and v >= 0)) for k, v in files.items()):
            raise MalformedInput(f"{source} entry for {data['id']}: bad file list")
        if not isinstance(texts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in texts.items()):
            raise MalformedInput(f"{source} entry for {data['id']}: bad texts")
        sha = data.get("sha")
        return cls(
            id=data["id"],
            sha=sha if isinstance(sha, str) else None,
            source=source,
            files=dict(files),
            texts=dict(texts),
            safetensors=tensor_tables(data.get("safetensors") or {}),
            gguf=gguf_tables(data.get("gguf") or {}),
        )

    def dumps(self) -> bytes:
        return gzip.compress(json.dumps(self.to_json(), separators=(",", ":")).encode(), mtime=0)

    @classmethod
    def loads(cls, blob: bytes, source: str) -> "RepoData":
        return cls.from_json(json.loads(gzip.decompress(blob)), source)

    # -- views -----------------------------------------------------------------------------------------------
    def header_bytes(self, path: str) -> bytes:
        meta, tensors = self.safetensors[path]
        return stformat.build_header([(t.name, t.dtype, t.shape) for t in tensors], meta or None)

    def safetensors_size(self, path: str) -> int:
        _, tensors = self.safetensors[path]
        return len(self.header_bytes(path)) + sum(t.nbytes for t in tensors)


def gguf_tables(raw: dict) -> dict:
    if not raw:
        return {}
    from .sources.gguf import GGUFHeader

    return {path: GGUFHeader.from_json(entry) for path, entry in raw.items()}


@pausing
def tensor_tables(raw: dict) -> dict[str, tuple[dict, list[Tensor]]]:
    """{path: (metadata, tensors)} from the serialised form; every entry checked (name, known dtype, a shape of
    whole numbers >= 0), so a damaged cache entry is refused here rather than trusted."""
    if not isinstance(raw, dict):
        raise MalformedInput("tensor tables: not a map of files")
    out = {}
    for path, entry in raw.items():
        rows = entry.get("tensors") if isinstance(entry, dict) else None
        meta = (entry.get("metadata") or {}) if isinstance(entry, dict) else None
        if not isinstance(rows, list) or not isinstance(meta, dict):
            raise MalformedInput(f"tensor table of {path}: not a table")
        tensors = []
        for row in rows:
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)
                    and row[1] in stformat.DTYPE_BITS):
                raise MalformedInput(f"tensor table of {path}: bad row {repr(row)[:80]}")
            shape = stformat.check_shape(row[2], f"tensor table of {path}", row[0])
            tensors.append(Tensor(row[0], row[1], shape, stformat.dtype_nbytes(row[1], shape), path))
        out[path] = (meta, tensors)
    return out


# -- fixtures on disk -------------------------------------------------------------------------------------------
# fixtures/<org>--<name>/
#   repo.json          {"id", "sha", "gated", "refs", "files": {path: size} (large files we do not store),
#                       "constructed": [path, ...] (files built from tensors.json.gz when the fixture is loaded),
#                       "provenance": {...}}
#   tensors.json.gz    {path: {"metadata", "tensors"}} for every safetensors file of the repo
#   gguf-headers/<path>.gz  the header bytes of a .gguf file (metadata + tensor infos, gzip): the fake Hub serves
#                      them followed by zeros up to the size in repo.json "files"
#   revisions/<name>/  the files of another branch (EXL2 repos keep one bit-rate per branch), same layout
#                      (a `files.json` there lists its large files), refs[<name>] in repo.json
#   anything else      a verbatim repo file (config.json, params.json, index files, ...)

FIXTURE_META_FILES = {"repo.json", "tensors.json.gz", "PROVENANCE.md", "files.json"}
FIXTURE_META_DIRS = ("gguf-headers/", "revisions/")
CONSTRUCTIBLE = ("model.safetensors.index.json",)


def constructed_index(shards) -> bytes:
    """A `model.safetensors.index.json` for shards {file: [(name, dtype, shape), ...]}, as tools/build_fixtures.py
    constructs one when the real index is not known: metadata.total_size = the tensors' bytes, weight_map sorted by
    tensor name, `json.dumps(indent=2)` plus a newline (the layout of the indexes transformers writes)."""
    total = sum(stformat.dtype_nbytes(d, s) for ts in shards.values() for _, d, s in ts)
    weight_map = {n: f for f, ts in shards.items() for n, _, _ in ts}
    body = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    return (json.dumps(body, indent=2) + "\n").encode()


def load_fixture(directory: Path) -> tuple[RepoData, dict]:
    """Read a fixture directory into a RepoData (source "fixture") and its repo.json."""
    directory = Path(directory)
    meta = json.loads((directory / "repo.json").read_text())
    repo = _load_files(directory, RepoData(id=meta["id"], sha=meta["sha"], source="fixture"), meta.get("files") or {})
    for rel in meta.get("constructed") or ():
        if rel not in CONSTRUCTIBLE:
            raise ValueError(f"{directory}/repo.json: cannot construct {rel!r} (only {', '.join(CONSTRUCTIBLE)})")
        from .sources.select import safetensors_candidates

        shards = {f: [(t.name, t.dtype, t.shape) for t in repo.safetensors[f][1]]
                  for f in safetensors_candidates(repo.safetensors)}
        data = constructed_index(shards)
        repo.files[rel] = len(data)
        repo.texts[rel] = data.decode()
    return repo, meta


def load_fixture_revision(directory: Path, name: str, sha: str) -> RepoData:
    """The files of branch `name` of a fixture (`revisions/<name>/`)."""
    base = Path(directory) / "revisions" / name
    meta = json.loads((Path(directory) / "repo.json").read_text())
    sizes = json.loads((base / "files.json").read_text()) if (base / "files.json").is_file() else {}
    return _load_files(base, RepoData(id=meta["id"], sha=sha, source="fixture"), sizes)


def _load_files(directory: Path, repo: RepoData, sizes: dict) -> RepoData:
    tables_path = directory / "tensors.json.gz"
    tables = json.loads(gzip.decompress(tables_path.read_bytes())) if tables_path.exists() else {}
    repo.safetensors = tensor_tables(tables)
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in FIXTURE_META_FILES and not rel.startswith(FIXTURE_META_DIRS):
            data = path.read_bytes()
            repo.files[rel] = len(data)
            try:
                repo.texts[rel] = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
    for rel, size in sizes.items():
        repo.files[rel] = size
    for rel in repo.safetensors:
        repo.files[rel] = repo.safetensors_size(rel)
    headers = directory / "gguf-headers"
    if headers.is_dir():
        from .sources.gguf import read_header

        for path in sorted(headers.rglob("*.gz")):
            rel = path.relative_to(headers).as_posix()[: -len(".gz")]
            raw = gzip.decompress(path.read_bytes())
            repo.gguf[rel] = read_header(_bytes_opener(raw), rel, repo.files.get(rel), display=f"{repo.id}: {rel}")
    return repo


def fixture_gguf_header(directory: Path, path: str) -> bytes | None:
    """The stored header bytes of a fixture's .gguf file (None when it has none)."""
    stored = Path(directory) / "gguf-headers" / (path + ".gz")
    return gzip.decompress(stored.read_bytes()) if stored.is_file() else None


def _bytes_opener(data: bytes):
    from contextlib import contextmanager

    @contextmanager
    def open_range(start: int, stop: int):
        yield iter([data[start:stop]])

    return open_range
