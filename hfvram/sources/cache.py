"""Metadata cache: what we read of a repo, keyed by (repo, commit sha), in the user cache directory.

Layout under `$HFVRAM_CACHE` (default `$XDG_CACHE_HOME/hfvram`, else `~/.cache/hfvram`):
    refs/<org>--<name>/<revision, percent-encoded>   the commit sha that revision resolved to last time
    meta/<org>--<name>/<sha>.json.gz                 the RepoData read at that commit (config texts, file sizes,
                                                     safetensors tensor tables; never a token)
    facts/<org>--<name>/<sha>-<key>.json.gz          what hfvram.introspect derived from that RepoData (architecture,
                                                     weight totals, quantisation, notes): a warm run needs neither
                                                     transformers nor the tensor classification. <key> names the
                                                     code that derived it (hfvram.introspect.derived.key)
A commit's content never changes, so an entry never expires; refs are rewritten on every online resolution.

Nothing in a path comes from a server unchecked: the repo id must be a Hub repo id, the sha 40 hex digits, the
revision is percent-encoded (dots included, so never `.` or `..`), and every path is checked to resolve under the
cache root before it is read or written. An entry is a gzip file whose first line is
`{"format": "hfvram-cache/3", "blake2b": <hex of the rest>}` (facts: "hfvram-facts/2"), then the JSON: an entry of
another format, with a wrong checksum, cut short, or whose content does not validate is deleted and read again from
the Hub (facts: derived again), never trusted. Writes go to a temporary file in the same folder, then `os.replace`: a reader sees the old entry or the
new one, never half of one.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

from ..digest import hexdigest
from ..gcpause import pausing
from ..repodata import RepoData

FORMAT = "hfvram-cache/3"
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
    """A cache entry: gzip of a header line (format, BLAKE2b of the payload: hfvram.digest) and the JSON payload."""
    payload = json.dumps(doc, separators=(",", ":")).encode()
    head = json.dumps({"format": fmt, "blake2b": hexdigest(payload)}).encode()
    # Level 1: DeepSeek-V3's entry (16 MB of JSON) compresses in 0.05 s to 0.76 MB, against 0.27 s to 0.54 MB at
    # gzip's default 9 (measured here): the write is on a cold run's path, the bytes stay on the user's disk.
    return gzip.compress(head + b"\n" + payload, compresslevel=1, mtime=0)


@pausing
def unframe(blob: bytes, fmt: str = FORMAT):
    """The JSON payload of an intact entry of format `fmt`; ValueError for anything else."""
    raw = gzip.decompress(blob)
    head, sep, payload = raw.partition(b"\n")
    meta = json.loads(head) if sep else None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ValueError(f"not a {fmt} entry")
    if meta.get("blake2b") != hexdigest(payload):
        raise ValueError("checksum mismatch")
    return json.loads(payload)


def encode(data: RepoData) -> bytes:
    return frame(data.to_json())


def decode(blob: bytes, repo_id: str, sha: str) -> RepoData:
    """The RepoData of an entry; ValueError (or a subclass) for anything that is not an intact entry of this
    format for exactly this repo and commit."""
    data = unframe(blob)
    if not isinstance(data, dict) or data.get("id") != repo_id or data.get("sha") != sha:
        raise ValueError("entry for another repo or commit")
    return RepoData.from_json(data, source="cache")


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


class MetadataCache:
    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = Path(root) if root else default_dir()
        self.enabled = enabled
        self.dropped = 0  # bad entries deleted (tests and diagnostics)

    # -- paths --------------------------------------------------------------------------------------------------
    def _inside(self, *parts: str) -> Path | None:
        path = self.root.joinpath(*parts)
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if os.path.commonpath([root, real]) != root or real == root:
            return None
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
        repo = self._read(self._meta_path(repo_id, sha), lambda blob: decode(blob, repo_id, sha))
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
        if not self.enabled:
            return None
        path = self._ref_path(repo_id, revision)
        if path is None:
            return None
        try:
            sha = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        if not _SHA.match(sha):
            self._drop(path)
            return None
        return sha

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
        try:
            self._atomic_write(meta, encode(repo))
        except OSError:
            return  # a read-only or full cache directory must not fail the run
        self.put_ref(repo.id, revision, repo.sha)

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
