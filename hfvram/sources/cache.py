"""Metadata cache: what we read of a repo, keyed by (repo, commit sha), in the user cache directory.

Layout under `$HFVRAM_CACHE` (default `$XDG_CACHE_HOME/hfvram`, else `~/.cache/hfvram`):
    refs/<org>--<name>/<revision, percent-encoded>   the commit sha that revision resolved to last time
    meta/<org>--<name>/<sha>.json.gz                 the RepoData read at that commit (config texts, file sizes,
                                                     safetensors tensor tables; never a token)
    facts/<org>--<name>/<sha>-<key>.json.gz          what hfvram.introspect derived from that RepoData (architecture,
                                                     weight totals, quantisation, notes): a warm run needs neither
                                                     transformers nor the tensor classification. <key> names the
                                                     code that derived it (hfvram.introspect.derived.key)
A commit's content never changes, so an entry never expires; refs are rewritten on every online resolution (their
modification time is when: a ref younger than HubSource.max_age answers a warm run without asking the Hub).

Nothing in a path comes from a server unchecked: the repo id must be a Hub repo id, the sha 40 hex digits, the
revision is percent-encoded (dots included, so never `.` or `..`), and every path is checked to resolve under the
cache root before it is read or written. An entry is a gzip file whose first line is
`{"format": "hfvram-cache/4", "blake2b": <hex of the rest>}` (facts: "hfvram-facts/2"). A facts entry's rest is
JSON. A meta entry's rest is one line of JSON (the RepoData record, its texts and safetensors headers given as
`[path, length]` lists), then those texts and headers' bytes, one after another, the headers exactly as the Hub
sent them: they are JSON already, and a giant's entry (Kimi-K2: 61 headers of 17.7 MB, a 12.5 MB index) is then
written with a join, a hash and a compression instead of ~0.4 s of JSON encoding. Reading an entry back checks its
checksum and record; its headers are parsed, and checked as a header from the Hub is (`stformat.parse_header`), only
when a table is asked for (`StoredTables`): a warm run answers from the facts. An entry of another format, with a
wrong checksum, cut short, or whose record does not validate is deleted and read again from the Hub (facts: derived
again), never trusted; a header that does not parse deletes the entry and is a one-line error. Writes go to a
temporary file in the same folder, then `os.replace`: a reader sees the old entry or the new one, never half of one.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from ..digest import hexdigest
from ..errors import MalformedInput
from ..gcpause import pausing
from .. import stformat
from ..repodata import RepoData

FORMAT = "hfvram-cache/4"
FACTS_FORMAT = "hfvram-facts/2"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_KEY = re.compile(r"^[0-9a-f]{16}$")


def default_dir() -> Path:
    if os.environ.get("HFVRAM_CACHE"):
        return Path(os.environ["HFVRAM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hfvram"


def _slug(repo_id: str) -> str | None:
    """`org/name` -> `org--name`; None for anything that is not a Hub repo id (or could collide: `--`)."""
    from . import valid_repo_id

    if not valid_repo_id(repo_id) or "--" in repo_id:
        return None
    return repo_id.replace("/", "--")


@pausing
def frame(doc: dict, fmt: str = FORMAT) -> bytes:
    """A cache entry of one JSON document (see `frame_bytes`)."""
    return frame_bytes(json.dumps(doc, separators=(",", ":")).encode(), fmt)


def frame_bytes(payload: bytes, fmt: str = FORMAT) -> bytes:
    """A cache entry: gzip of a header line (format, BLAKE2b of the payload: hfvram.digest) and the payload."""
    head = json.dumps({"format": fmt, "blake2b": hexdigest(payload)}).encode()
    # Level 1: DeepSeek-V3's entry (16 MB of JSON) compresses in 0.05 s to 0.76 MB, against 0.27 s to 0.54 MB at
    # gzip's default 9 (measured here): the write is on a cold run's path, the bytes stay on the user's disk.
    return gzip.compress(head + b"\n" + payload, compresslevel=1, mtime=0)


def unframe_bytes(blob: bytes, fmt: str = FORMAT) -> bytes:
    """The payload of an intact entry of format `fmt`; ValueError for anything else."""
    raw = gzip.decompress(blob)
    head, sep, payload = raw.partition(b"\n")
    meta = json.loads(head) if sep else None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ValueError(f"not a {fmt} entry")
    if meta.get("blake2b") != hexdigest(payload):
        raise ValueError("checksum mismatch")
    return payload


@pausing
def unframe(blob: bytes, fmt: str = FORMAT):
    """The JSON document of an intact entry of format `fmt`; ValueError for anything else."""
    return json.loads(unframe_bytes(blob, fmt))


def encode_parts(data: RepoData) -> list[bytes]:
    """A meta entry's payload, in pieces (joined, hashed and compressed where the entry is written): one line of JSON
    (the record, its texts and safetensors tables given as `[path, length]` lists), then the texts' UTF-8 bytes and
    each safetensors header as read (or, for a table read some other way, as `safetensors` would write it)."""
    doc = data.to_json(tables=False)
    parts = [text.encode("utf-8", "surrogatepass") for text in data.texts.values()]
    doc["texts"] = [[path, len(b)] for path, b in zip(data.texts, parts)]
    heads = []
    for path, (meta, tensors) in data.safetensors.items():
        raw = data.raw_headers.get(path)
        if raw is None:
            raw = stformat.build_header(((t.name, t.dtype, t.shape) for t in tensors), meta)[8:]
        heads.append([path, len(raw)])
        parts.append(raw)
    doc["headers"] = heads
    return [json.dumps(doc, separators=(",", ":")).encode() + b"\n", *parts]


def _spans(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) and type(h[1]) is int and h[1] >= 0
        for h in value)


def decode(blob: bytes, repo_id: str, sha: str, on_damage=None) -> RepoData:
    """The RepoData of an entry; ValueError (or a subclass) for anything that is not an intact entry of this
    format for exactly this repo and commit. Its safetensors tables are parsed when first asked for (`StoredTables`);
    `on_damage` is called if they then do not parse."""
    payload = unframe_bytes(blob)
    line, _, rest = payload.partition(b"\n")
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("id") != repo_id or data.get("sha") != sha:
        raise ValueError("entry for another repo or commit")
    texts, heads = data.get("texts"), data.pop("headers", None)
    if not _spans(texts) or not _spans(heads) or sum(n for _, n in texts) + sum(n for _, n in heads) != len(rest):
        raise ValueError("bad text or header list")
    offset, data["texts"] = 0, {}
    for path, n in texts:
        data["texts"][path] = rest[offset:offset + n].decode("utf-8", "surrogatepass")
        offset += n
    repo = RepoData.from_json(data, source="cache")
    repo.safetensors = StoredTables(repo, memoryview(rest)[offset:], heads, on_damage)
    return repo


class StoredTables(Mapping):
    """The safetensors tables of a meta entry: {path: (metadata, tensors)}, as a fetch gives them. Each header is
    parsed (and checked, `stformat.parse_header`) the first time a table is asked for: a warm run answers from the
    derived facts and never needs them (Kimi-K2: 61 headers, 140k tensors, ~0.7 s to parse). Paths and their count
    are known without parsing. A header that does not parse (the entry's checksum held, so it was written so) calls
    `on_damage` (the cache deletes the entry) and is a one-line MalformedInput."""

    def __init__(self, repo: RepoData, blob, heads: list, on_damage=None):
        self._repo, self._blob, self._heads, self._on_damage = repo, blob, heads, on_damage
        self._paths = [path for path, _ in heads]
        self._tables: dict | None = None

    @pausing
    def _load(self) -> dict:
        if self._tables is None:
            tables, offset = {}, 0
            try:
                for path, n in self._heads:
                    size = self._repo.files.get(path)
                    tensors, meta = stformat.parse_header(bytes(self._blob[offset:offset + n]), file=path,
                                                          what=f"{self._repo.id}: {path}",
                                                          data_size=None if size is None else size - 8 - n)
                    tables[path] = (meta, tensors)
                    offset += n
            except MalformedInput as exc:
                if self._on_damage is not None:
                    self._on_damage()
                raise MalformedInput(f"the metadata cache entry of {self._repo.id} (commit {str(self._repo.sha)[:12]}) "
                                     f"does not read back ({exc}); it was deleted: run again to read the repo from "
                                     f"the Hub") from None
            self._tables, self._blob = tables, None
        return self._tables

    def __getitem__(self, path):
        return self._load()[path]

    def __contains__(self, path) -> bool:
        return path in self._paths

    def __iter__(self):
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"StoredTables({self._paths!r}, parsed={self._tables is not None})"


def encode_facts(doc: dict, repo_id: str, sha: str, key: str) -> bytes:
    return frame({"id": repo_id, "sha": sha, "key": key, "facts": doc}, FACTS_FORMAT)


def decode_facts(blob: bytes, repo_id: str, sha: str, key: str) -> dict:
    """The derived-facts document of an entry (its content is checked where it is read back,
    hfvram.introspect.derived); ValueError for an entry of another format, repo, commit or code."""
    data = unframe(blob, FACTS_FORMAT)
    if not isinstance(data, dict) or (data.get("id"), data.get("sha"), data.get("key")) != (repo_id, sha, key) \
            or not isinstance(data.get("facts"), dict):
        raise ValueError("facts entry for another repo, commit or code")
    return data["facts"]


# Meta entries being written (hfvram.sources.cache.MetadataCache.put), of all caches of this process: the writing
# thread -> the repo id.
_writes: dict = {}
_writes_lock = threading.Lock()


def flush(repo_id: str | None = None) -> None:
    """Wait for the meta entries being written, of `repo_id` or all (the command line waits for all before it exits;
    so does the interpreter)."""
    with _writes_lock:
        pending = [w for w, rid in _writes.items() if repo_id is None or rid == repo_id]
    for writer in pending:
        writer.join()


class MetadataCache:
    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = Path(root) if root else default_dir()
        self.enabled = enabled
        self.dropped = 0  # bad entries deleted (tests and diagnostics)
        self._real_root: str | None = None

    # -- paths --------------------------------------------------------------------------------------------------
    def _inside(self, *parts: str) -> Path | None:
        """root/parts, or None when it would lead out of the cache folder (through a symbolic link under it). The
        root's real path is looked up once; below it each part is checked (an lstat), and a full `realpath` is
        taken only when one is a link: a realpath per path was ~5% of a scan's CPU."""
        if not parts or any(p in ("", ".", "..") or "/" in p or os.sep in p for p in parts):
            return None
        path = self.root.joinpath(*parts)
        root = self._real_root
        if root is None:
            root = self._real_root = os.path.realpath(self.root)
        at = root
        for part in parts:
            at = os.path.join(at, part)
            if os.path.islink(at):
                real = os.path.realpath(path)
                return path if os.path.commonpath([root, real]) == root and real != root else None
        return path

    def _meta_path(self, repo_id: str, sha: str) -> Path | None:
        slug = _slug(repo_id)
        if slug is None or not isinstance(sha, str) or not _SHA.match(sha):
            return None
        return self._inside("meta", slug, f"{sha}.json.gz")

    def _facts_path(self, repo_id: str, sha: str, key: str) -> Path | None:
        slug = _slug(repo_id)
        if slug is None or not isinstance(sha, str) or not _SHA.match(sha) or not isinstance(key, str) \
                or not _KEY.match(key):
            return None
        return self._inside("facts", slug, f"{sha}-{key}.json.gz")

    def _ref_path(self, repo_id: str, revision: str) -> Path | None:
        slug = _slug(repo_id)
        if slug is None or not isinstance(revision, str) or not revision or len(revision) > 200:
            return None
        return self._inside("refs", slug, quote(revision, safe="").replace(".", "%2E"))

    # -- reading ------------------------------------------------------------------------------------------------
    def get(self, repo_id: str, sha: str) -> RepoData | None:
        if _writes:
            flush(repo_id)  # an entry this process is writing is read once it is whole (other repos' go on)
        path = self._meta_path(repo_id, sha)
        repo = self._read(path, lambda blob: decode(blob, repo_id, sha, on_damage=lambda: self._drop(path)))
        if repo is not None:
            repo.sha = sha
        return repo

    def get_facts(self, repo_id: str, sha: str, key: str) -> dict | None:
        """The derived facts kept for (repo, commit, code), or None; a damaged entry is deleted."""
        return self._read(self._facts_path(repo_id, sha, key), lambda blob: decode_facts(blob, repo_id, sha, key))

    def _read(self, path: Path | None, decoder):
        """An entry decoded, or None when the cache is off, the entry is missing or it does not decode."""
        if not self.enabled or path is None:
            return None
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        try:
            return decoder(blob)
        except Exception:  # noqa: BLE001 - any damage (gzip, JSON, checksum, content) is a miss, and goes
            self._drop(path)
            return None

    def drop_facts(self, repo_id: str, sha: str, key: str) -> None:
        """Delete an entry whose content did not read back (hfvram.introspect.derived checks it)."""
        path = self._facts_path(repo_id, sha, key)
        if path is not None and path.exists():
            self._drop(path)

    def resolve(self, repo_id: str, revision: str) -> str | None:
        """The commit `revision` resolved to at the last online resolution, or None."""
        found = self.resolved(repo_id, revision)
        return found[0] if found else None

    def resolved(self, repo_id: str, revision: str) -> tuple[str, float] | None:
        """(that commit, seconds since that resolution: the ref's age, negative when the clock went back), or None."""
        if not self.enabled:
            return None
        if _writes:
            flush(repo_id)  # its ref is written after its entry
        path = self._ref_path(repo_id, revision)
        if path is None:
            return None
        try:
            with open(path, "rb") as fh:
                sha = fh.read(64).decode("ascii", errors="replace").strip()
                mtime = os.fstat(fh.fileno()).st_mtime
        except OSError:
            return None
        if not _SHA.match(sha):
            self._drop(path)
            return None
        return sha, time.time() - mtime

    def _drop(self, path: Path) -> None:
        self.dropped += 1
        try:
            path.unlink()
        except OSError:
            pass

    # -- writing ------------------------------------------------------------------------------------------------
    def put(self, repo: RepoData, revision: str) -> None:
        if not self.enabled or not repo.sha:
            return
        meta = self._meta_path(repo.id, repo.sha)
        if meta is None:
            return
        # The record is taken apart here, as it is now; joining, hashing (BLAKE2b), compressing and writing it let go
        # of the GIL, so they run in a thread of their own while the run goes on (a giant's entry: ~0.2 s of its
        # cold run, measured on Kimi-K2). The thread is not a daemon: the interpreter waits for it, and `flush`.
        parts = encode_parts(repo)
        writer = threading.Thread(target=self._write_meta, args=(meta, parts, repo.id, revision, repo.sha),
                                  name="hfvram-cache-write")
        with _writes_lock:  # started before a `flush` in another thread can see it (and join it)
            _writes[writer] = repo.id
            writer.start()

    def _write_meta(self, path: Path, parts: list[bytes], repo_id: str, revision: str, sha: str) -> None:
        try:
            try:
                self._atomic_write(path, frame_bytes(b"".join(parts)))
            except Exception:  # noqa: BLE001 - a read-only or full cache directory (or no memory left for the
                return  # entry) must not fail the run, nor print a thread's traceback
            self.put_ref(repo_id, revision, sha)  # after the entry: a ref always names an entry that is there
        finally:
            with _writes_lock:
                _writes.pop(threading.current_thread(), None)

    def put_facts(self, repo_id: str, sha: str, key: str, doc: dict) -> None:
        if not self.enabled:
            return
        path = self._facts_path(repo_id, sha, key)
        if path is None:
            return
        try:
            self._atomic_write(path, encode_facts(doc, repo_id, sha, key))
        except (OSError, ValueError, TypeError):
            pass  # a read-only or full cache directory (or a value JSON cannot hold) must not fail the run

    def put_ref(self, repo_id: str, revision: str, sha: str) -> None:
        if not self.enabled or not isinstance(sha, str) or not _SHA.match(sha):
            return
        path = self._ref_path(repo_id, revision)
        if path is None:
            return
        try:
            self._atomic_write(path, sha.encode() + b"\n")
        except OSError:
            pass

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        import tempfile  # a write only (it pulls shutil, random): a warm or offline run reads

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
