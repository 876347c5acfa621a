"""A fake Hugging Face Hub: a real HTTP server on 127.0.0.1 that the real `huggingface_hub` client talks to.

Standard library only. It follows the "Minimal fake-Hub spec" of shared/research/hub-and-engines.md (Part A) and
was checked against huggingface_hub 2.4.0 (`hf_api.py`, `file_download.py`, `utils/_http.py`).

Repos come from fixture directories (see fixtures/README.md): `repo.json` is read when the hub starts, the rest
(`tensors.json.gz`, verbatim files) on first use, then cached. A safetensors file is served as its real header
followed by zero bytes up to its real size; the zeros are generated per requested slice, never held in memory. A
.gguf file is served the same way: its stored header (`gguf-headers/<path>.gz`), then zeros up to its size. Branches
with files of their own (EXL2 repos keep one bit-rate per branch) live in `revisions/<branch>/`.

    with FakeHub("fixtures", tokens={"hf_good"}, delay_s=0.05) as hub:
        api = HfApi(endpoint=hub.url, token=False)
        api.get_safetensors_metadata("org/name")
        hub.count(), hub.sequential_round_trips()

Routes (GET and HEAD):
    /api/models                                       list_models (search, author, filter, sort, limit, expand,
                                                      full, config; Link-header pagination)
    /api/models/{repo}[/revision/{rev}]               model_info (expand / expand[], blobs=true, securityStatus)
    /api/models/{repo}/tree/{rev}[/{path}]            list_repo_tree / list_repo_files
    /api/models/{repo}/refs                           list_repo_refs (every ref of repo.json is a branch)
    /api/models/{repo}/safetensors-metadata/{index}   get_sharded_safetensors_metadata (main only)
    /api/agent-harnesses                              {"standardEnvVars": [], "harnesses": {}}
    /{repo}/resolve/{rev}/{path}                      file bytes, Range (a-b, a-, -n), 206/416
    /cdn/...                                          only with cdn=True: the LFS redirect target (second port)

Run it by hand:  python -m hfvram.fakehub [--fixtures DIR] [--port 8765] [--delay-ms 0] [--token hf_xxx ...]
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import http.server
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
import warnings
from dataclasses import field
from email.utils import formatdate
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from .record import record
from .repodata import RepoData, load_fixture

# Files the Hub would store in git-LFS (so `lfs` in siblings, X-Linked-Etag/-Size on /resolve/).
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".ot", ".tflite",
    ".npz", ".npy", ".pkl", ".pickle", ".zip", ".tar", ".gz", ".model", ".joblib", ".arrow", ".parquet",
)
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub refuses non-LFS files above 10 MB
TELEMETRY_PATHS = frozenset({"/api/agent-harnesses"})
DEFAULT_DATE = "2024-01-01T00:00:00.000Z"
CHUNK = 1 << 20
SMALL_BODY = 1 << 20  # bodies up to this size go out in one write together with the headers
LIST_PAGE_SIZE = 1000
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_SUBROUTES = {"revision", "tree", "safetensors-metadata", "refs"}


def default_fixtures_dir() -> Path | None:
    """The repo's `fixtures/` next to the package, if it exists."""
    path = Path(__file__).resolve().parent.parent / "fixtures"
    return path if path.is_dir() else None


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs(path: str, size: int) -> bool:
    return path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


# ---------------------------------------------------------------------------------------------------------------
# Request log
# ---------------------------------------------------------------------------------------------------------------


@record
class RequestRecord:
    """One request as the server saw it. `start`/`end` are `time.perf_counter()` values: `start` once the request
    headers were read, `end` just before the last byte of the response was written (so a client can never send a
    follow-up request before `end`). `end` is None while the request is in flight."""

    method: str
    path: str  # decoded path, no query
    raw_path: str  # as sent (percent-encoded), no query
    query: dict[str, list[str]]
    range: str | None
    auth: bool
    start: float
    end: float | None = None
    status: int | None = None  # None: connection dropped (fault) or still in flight
    fault: str | None = None  # "429", "500", "drop", ... when an injected fault answered
    server: str = "hub"  # "hub" or "cdn"
    user_agent: str | None = None
    host: str | None = None  # the Host header (a redirect to another origin changes it)
    sent: int = 0  # body bytes written (a client that stops reading cuts this short)

    @property
    def telemetry(self) -> bool:
        return self.path in TELEMETRY_PATHS

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def critical_path_length(records: Iterable[RequestRecord]) -> int:
    """Length of the longest chain r1, r2, ..., rk with r[i].end <= r[i+1].start (each request starts only after the
    previous one in the chain has ended): the number of sequential round trips. Two sequential requests followed by
    three concurrent ones give 3; five concurrent ones give 1; no requests give 0. Unfinished requests are ignored.
    """
    done = [r for r in records if r.end is not None]
    by_start = sorted(done, key=lambda r: r.start)
    by_end = sorted(range(len(by_start)), key=lambda i: by_start[i].end)  # indices into by_start
    chain = [0] * len(by_start)
    best_ended = 0  # longest chain among requests that ended before the current start
    j = 0
    for i, rec in enumerate(by_start):
        while j < len(by_end) and by_start[by_end[j]].end <= rec.start:
            # a request that ended before rec started also started before it, so its chain is already known
            best_ended = max(best_ended, chain[by_end[j]])
            j += 1
        chain[i] = best_ended + 1
    return max(chain, default=0)


# Fault kinds (FakeHub.inject): what a hostile or broken server or proxy does to one answer.
#   status        answer `status` instead (fail_next / rate_limit_next)
#   drop          close the connection without answering (drop_next)
#   trickle       send the headers, then the body one byte every `interval` seconds (0.5), for as long as the
#                 client reads (a 100 kB range at that pace takes 14 hours)
#   stall         read the request, answer nothing, hold the connection until the hub stops (or `seconds`)
#   reset         send the headers and the first `after` body bytes (default: half), then reset the connection
#   bad-range     answer a Range with 206 for other bytes: Content-Range (and body) start `shift` bytes later (8)
#   ignore-range  answer a Range with 200 and the whole file
#   redirect      302 to the same path on another origin: host `localhost` instead of 127.0.0.1 (same server), or
#                 the CDN server when the hub has one (`to="cdn"`)
FAULT_KINDS = ("status", "drop", "trickle", "stall", "reset", "bad-range", "ignore-range", "redirect")


@record
class _Fault:
    """A fault the fake Hub injects into the answers that match it."""

    kind: str  # one of FAULT_KINDS
    status: int
    remaining: int
    path: re.Pattern | None
    method: str | None
    retry_after: float | int | None
    body: bytes | None = None
    params: dict = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.path is None:
            return path not in TELEMETRY_PATHS
        return self.path.search(path) is not None


# ---------------------------------------------------------------------------------------------------------------
# Repos
# ---------------------------------------------------------------------------------------------------------------


@record
class _File:
    """One servable file. kind: "bytes" (in memory), "disk" (a verbatim fixture file), "safetensors" (header +
    zeros), "gguf" (a stored gzip'd header + zeros), "zeros" (a large file known only by size)."""

    kind: str
    size: int
    data: bytes | None = None
    disk: Path | None = None
    header: bytes | None = None
    size_known: bool = True  # False: the fixture lists the file with a null size (served as 0 bytes)
    _table: tuple[RepoData, str] | None = None  # (data, path) to build the safetensors header from, lazily
    _sha256: str | None = None
    _sha1: str | None = None
    _header_json: bytes | None = None  # the header's JSON without its padding, checked once (sharded metadata)
    _index: tuple | None = None  # (content, the index without its weight_map, its shards), decoded once

    def header_json(self) -> bytes | None:
        """The safetensors header's JSON object as stored (its padding stripped), None for a file too short to have
        one, ValueError for one that is not a JSON object: what the sharded-metadata route splices into its answer,
        checked with json once per file, not once per request."""
        if self._header_json is None:
            head = self.header_bytes() if self.kind == "safetensors" else (self.content() or b"")
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head[:8])
            text = head[8 : 8 + n].rstrip(b" ")
            if not isinstance(json.loads(text.decode(errors="ignore")), dict):
                raise ValueError("not a JSON object")
            self._header_json = text
        return self._header_json

    def header_bytes(self) -> bytes:
        """The safetensors header (8-byte length + JSON), built from the tensor table on first use."""
        if self.header is None and self._table is not None:
            data, path = self._table
            self.header = data.header_bytes(path)
        if self.header is None and self.kind == "gguf" and self.disk is not None:
            self.header = gzip.decompress(self.disk.read_bytes())
        return self.header or b""

    def content(self) -> bytes | None:
        """The stored bytes ("bytes"/"disk"; a disk file is read once, then cached: FakeHub.reload() re-reads)."""
        if self.kind == "disk" and self.data is None:
            self.data = self.disk.read_bytes()
            self.size = len(self.data)
        return self.data

    def iter_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes [start, stop) in chunks."""
        if self.kind in ("bytes", "disk"):
            data = self.content()
            for pos in range(start, stop, CHUNK):
                yield data[pos : min(stop, pos + CHUNK)]
            return
        header = self.header_bytes()
        pos = start
        if pos < len(header):
            yield header[pos : min(stop, len(header))]
            pos = min(stop, len(header))
        while pos < stop:
            n = min(CHUNK, stop - pos)
            yield bytes(n)
            pos += n


class _Fixture:
    """One fixture directory, loaded lazily and cached. Shared by every repo id aliased to it."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.meta = json.loads((self.directory / "repo.json").read_text())
        if "id" not in self.meta or "sha" not in self.meta:
            raise ValueError(f"{self.directory / 'repo.json'}: needs at least 'id' and 'sha'")
        self.id: str = self.meta["id"]
        self._lock = threading.Lock()
        self._data: RepoData | None = None
        self._files: dict[str, _File] | None = None
        self._param_counts: dict[str, int] | None = None
        self._revision_files: dict[str, dict[str, _File]] = {}

    def revision_dirs(self) -> dict[str, str]:
        """sha -> branch name, for the branches stored under revisions/<branch>/."""
        refs = self.meta.get("refs") or {}
        return {refs[name]: name for name in self.meta.get("revisions") or () if name in refs}

    def data(self) -> RepoData:
        with self._lock:
            if self._data is None:
                self._data, _ = load_fixture(self.directory)
            return self._data

    def files(self, sha: str | None = None) -> dict[str, _File]:
        branch = self.revision_dirs().get(sha) if sha else None
        if branch is not None:
            with self._lock:
                if sha not in self._revision_files:
                    from .repodata import load_fixture_revision

                    data = load_fixture_revision(self.directory, branch, sha)
                    self._revision_files[sha] = self._servable(data, self.directory / "revisions" / branch)
                return self._revision_files[sha]
        data = self.data()
        with self._lock:
            if self._files is None:
                self._files = self._servable(data, self.directory, set(self.meta.get("constructed") or ()))
            return self._files

    @staticmethod
    def _servable(data: RepoData, directory: Path, constructed=()) -> dict[str, _File]:
        files: dict[str, _File] = {}
        for path, size in sorted(data.files.items()):
            stored_header = directory / "gguf-headers" / (path + ".gz")
            if path in data.safetensors:
                files[path] = _File("safetensors", int(size or 0), _table=(data, path))
            elif path in constructed:  # built from the tensor table (repodata.constructed_index)
                body = data.texts[path].encode()
                files[path] = _File("bytes", len(body), data=body)
            elif stored_header.is_file():
                files[path] = _File("gguf", int(size or 0), disk=stored_header)
            elif (directory / path).is_file():
                files[path] = _File("disk", int(size or 0), disk=directory / path)
            else:
                files[path] = _File("zeros", int(size or 0), size_known=size is not None)
        return files

    def parameter_counts(self) -> dict[str, int]:
        """Element counts per dtype, as the Hub's `safetensors` field: the index's shards if there is an index,
        else model.safetensors, else every top-level .safetensors file."""
        data = self.data()
        with self._lock:
            if self._param_counts is None:
                paths: list[str] = []
                index = data.texts.get("model.safetensors.index.json")
                if index:
                    try:
                        paths = sorted(set(json.loads(index).get("weight_map", {}).values()))
                    except ValueError:
                        paths = []
                if not paths and "model.safetensors" in data.safetensors:
                    paths = ["model.safetensors"]
                if not paths:
                    paths = [p for p in data.safetensors if "/" not in p]
                counts: dict[str, int] = {}
                for p in paths:
                    for t in data.safetensors.get(p, ({}, []))[1]:
                        counts[t.dtype] = counts.get(t.dtype, 0) + t.numel
                self._param_counts = counts
            return self._param_counts

    def reload(self) -> None:
        with self._lock:
            self.meta = json.loads((self.directory / "repo.json").read_text())
            self._data = self._files = self._param_counts = None
            self._revision_files = {}


class _Repo:
    """A repo id as served: a fixture plus per-id overrides (files, gated, private, ...)."""

    def __init__(self, repo_id: str, fixture: _Fixture):
        self.id = repo_id
        self.fixture = fixture
        self.overrides: dict[str, bytes | None] = {}  # path -> bytes, or None = deleted
        self.settings: dict = {}  # gated, private, downloads, likes, tags, sha, refs, ...
        self._override_files: dict[str, _File] = {}

    def get(self, key: str, default=None):
        if key in self.settings:
            return self.settings[key]
        return self.fixture.meta.get(key, default)

    @property
    def sha(self) -> str:
        return self.get("sha")

    @property
    def refs(self) -> dict[str, str]:
        return dict(self.get("refs") or {})

    @property
    def gated(self):
        g = self.get("gated", False)
        if g is True:
            return "auto"
        return g if g in ("auto", "manual") else False

    @property
    def private(self) -> bool:
        return bool(self.get("private", False))

    @property
    def author(self) -> str | None:
        return self.id.split("/", 1)[0] if "/" in self.id else None

    def resolve_revision(self, rev: str) -> str | None:
        refs = self.refs
        if rev in refs:
            return refs[rev]
        if rev == "main":
            return self.sha
        if rev == self.sha or rev in refs.values():
            return rev
        return None

    def files(self, sha: str | None = None) -> dict[str, _File]:
        base = self.fixture.files(sha)
        if not self.overrides:
            return base
        out = dict(base)
        for path, data in self.overrides.items():
            if data is None:
                out.pop(path, None)
            else:
                f = self._override_files.get(path)
                if f is None or f.data is not data:
                    f = self._override_files[path] = _File("bytes", len(data), data=data)
                out[path] = f
        return dict(sorted(out.items()))

    def file_hashes(self, path: str, f: _File) -> tuple[str, str]:
        """(git blob sha1, sha256). Real hashes for stored bytes; for virtual (zero-filled) files a synthetic but
        stable sha256 (the client never checks content hashes, only sizes)."""
        if f._sha1 is None:
            if f.kind in ("bytes", "disk"):
                data = f.content()
                f._sha256 = hashlib.sha256(data).hexdigest()
                f._sha1 = git_blob_sha1(data)
            else:
                h = hashlib.sha256(f"{self.fixture.meta['sha']}:{path}:{f.size}:".encode())
                h.update(f.header_bytes())
                f._sha256 = h.hexdigest()
                f._sha1 = git_blob_sha1(lfs_pointer(f._sha256, f.size))
        return f._sha1, f._sha256

    def etags(self, path: str, f: _File) -> tuple[str, bool]:
        """(etag, lfs): sha256 for LFS files, git sha1 otherwise."""
        sha1, sha256 = self.file_hashes(path, f)
        lfs = is_lfs(path, f.size)
        return (sha256 if lfs else sha1), lfs


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------------------


@record
class _Response:
    """One answer of the fake Hub: status, headers, and a body or a file range to stream."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: tuple[_File, int, int] | None = None  # (file, start, stop) instead of body

    @property
    def length(self) -> int:
        return self.stream[2] - self.stream[1] if self.stream else len(self.body)


def _json_response(status: int, obj, headers: list[tuple[str, str]] | None = None) -> _Response:
    body = json.dumps(obj).encode()
    return _Response(status, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])], body)


def _error(status: int, code: str | None, message: str, headers: list[tuple[str, str]] | None = None) -> _Response:
    h = [("X-Error-Message", message)]
    if code:
        h.insert(0, ("X-Error-Code", code))
    return _json_response(status, {"error": message}, h + (headers or []))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # benchmarks open many connections at once; a small backlog costs 1 s SYN retries

    def __init__(self, addr, handler, hub: "FakeHub", role: str):
        self.hub = hub
        self.role = role
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request, client_address) -> None:
        # A client that closes a connection it no longer needs (hfvram stops reading a GGUF range once the header
        # has parsed) resets it: not an error of the server.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)

    def close_open_connections(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hfvram-fakehub/1"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def setup(self):
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if self.server.hub.verbose:
            sys.stderr.write("fakehub: %s - %s\n" % (self.address_string(), format % args))

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method: str) -> None:
        start = time.perf_counter()
        hub = self.server.hub
        # Keep the connection in sync if a body was sent (we never use it).
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        rec = RequestRecord(
            method=method,
            path=unquote(raw_path),
            raw_path=raw_path,
            query=parse_qs(split.query, keep_blank_values=True),
            range=self.headers.get("Range"),
            auth=self.headers.get("Authorization") is not None,
            start=start,
            server=self.server.role,
            user_agent=self.headers.get("User-Agent"),
        )
        rec.host = self.headers.get("Host")
        hub._record(rec)
        fault = hub._take_fault(method, rec.path, rec.host)
        if hub.delay_s > 0:
            time.sleep(hub.delay_s)
        try:
            if fault is not None and fault.kind == "drop":
                rec.fault = "drop"
                rec.end = time.perf_counter()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault is not None and fault.kind == "stall":
                rec.fault = "stall"
                hub._stopping.wait(fault.params.get("seconds"))
                rec.end = time.perf_counter()
                self.close_connection = True
                return
            if fault is not None and fault.kind == "status":
                rec.fault = str(fault.status)
                resp = hub._fault_response(fault)
            elif fault is not None and fault.kind == "redirect":
                rec.fault = "redirect"
                resp = hub._redirect_response(self.server.role, self.path, fault)
            else:
                headers = self.headers
                if fault is not None:
                    rec.fault = fault.kind
                    if fault.kind == "ignore-range":
                        headers = _WithoutRange(self.headers)
                try:
                    resp = hub._route(self.server.role, method, raw_path, rec.query, headers)
                except Exception as exc:  # a bug or a broken fixture: answer 500, don't kill the connection
                    if hub.verbose:
                        import traceback

                        traceback.print_exc()
                    resp = _error(500, None, f"fake hub internal error: {type(exc).__name__}: {exc}")
                if fault is not None and fault.kind == "bad-range":
                    resp = _shift_range(resp, int(fault.params.get("shift", 8)))
                if fault is not None and fault.kind in ("trickle", "reset") and method != "HEAD":
                    self._send_faulty(resp, rec, fault)
                    return
            self._send(resp, rec, head=(method == "HEAD"))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            if rec.end is None:
                rec.end = time.perf_counter()
        finally:
            if hub.verbose:
                rng = f" [{rec.range}]" if rec.range else ""
                sys.stderr.write(f"fakehub: {rec.server} {method} {self.path}{rng} -> {rec.fault or rec.status}"
                                 f"{' (auth)' if rec.auth else ''}\n")

    def _send(self, resp: _Response, rec: RequestRecord, head: bool) -> None:
        lines = [f"HTTP/1.1 {resp.status} {http.server.BaseHTTPRequestHandler.responses.get(resp.status, ('',))[0]}"]
        lines.append(f"Server: {self.server_version}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        for k, v in resp.headers:
            lines.append(f"{k}: {' '.join(str(v).split())}")  # no CR/LF inside a header value
        lines.append(f"Content-Length: {resp.length}")
        if self.close_connection:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
        rec.status = resp.status
        if head or resp.length == 0:
            rec.end = time.perf_counter()
            self.wfile.write(head_bytes)
            return
        if resp.length <= SMALL_BODY:  # one write: headers and body together
            body = resp.body if resp.stream is None else b"".join(resp.stream[0].iter_range(*resp.stream[1:]))
            rec.end = time.perf_counter()
            self.wfile.write(head_bytes + body)
            rec.sent = len(body)
            return
        self.wfile.write(head_bytes)
        chunks = iter([resp.body]) if resp.stream is None else resp.stream[0].iter_range(*resp.stream[1:])
        pending = next(chunks, None)
        while pending is not None:
            nxt = next(chunks, None)
            if nxt is None:
                rec.end = time.perf_counter()
            self.wfile.write(pending)
            rec.sent += len(pending)
            pending = nxt
        if rec.end is None:
            rec.end = time.perf_counter()

    def _head_bytes(self, resp: _Response) -> bytes:
        lines = [f"HTTP/1.1 {resp.status} {http.server.BaseHTTPRequestHandler.responses.get(resp.status, ('',))[0]}",
                 f"Server: {self.server_version}", f"Date: {formatdate(usegmt=True)}"]
        lines += [f"{k}: {' '.join(str(v).split())}" for k, v in resp.headers]
        lines += [f"Content-Length: {resp.length}", "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")

    def _send_faulty(self, resp: _Response, rec: RequestRecord, fault: _Fault) -> None:
        """trickle: the body a byte at a time; reset: part of the body, then a TCP reset."""
        hub = self.server.hub
        self.close_connection = True
        rec.status = resp.status
        self.wfile.write(self._head_bytes(resp))
        self.wfile.flush()
        chunks = iter([resp.body]) if resp.stream is None else resp.stream[0].iter_range(*resp.stream[1:])
        if fault.kind == "reset":
            after = int(fault.params.get("after", max(1, resp.length // 2)))
            for chunk in chunks:
                part = chunk[: max(0, after - rec.sent)]
                if part:
                    self.wfile.write(part)
                    rec.sent += len(part)
                if rec.sent >= after:
                    break
            self.wfile.flush()
            rec.end = time.perf_counter()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        interval = float(fault.params.get("interval", 0.5))
        for chunk in chunks:
            for i in range(len(chunk)):
                if hub._stopping.wait(interval):
                    rec.end = time.perf_counter()
                    return
                self.wfile.write(chunk[i:i + 1])
                self.wfile.flush()
                rec.sent += 1
        rec.end = time.perf_counter()


# ---------------------------------------------------------------------------------------------------------------
# The hub
# ---------------------------------------------------------------------------------------------------------------


class FakeHub:
    """A fake Hugging Face Hub on 127.0.0.1.

    fixtures_dir: a folder of fixture dirs (`<org>--<name>/repo.json ...`), one fixture dir, a list of either, or
        None for the repo's `fixtures/` (when it exists; else the hub starts empty).
    tokens: accepted tokens. An iterable grants each token every repo (gated approval, private access); a mapping
        token -> repo ids / fnmatch patterns (None or "*" = all) limits it. Any other token is a valid user with no
        approvals (gated -> 403), unless reject_unknown_tokens=True, which answers 401 "Invalid credentials in
        Authorization header" to any request that carries it.
    delay_s: sleep before answering each request (simulated round-trip latency).
    cdn: serve LFS files on /resolve/ as a 302 to a second server on another port (a foreign origin: the client
        drops Authorization, keeps Range), as the real Hub does.
    """

    def __init__(
        self,
        fixtures_dir: str | Path | Iterable[str | Path] | None = None,
        *,
        tokens: Iterable[str] | Mapping[str, Iterable[str] | str | None] | None = None,
        delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn: bool = False,
        reject_unknown_tokens: bool = False,
        verbose: bool = False,
    ):
        self.host = host
        self.port = port
        self.delay_s = float(delay_s)
        self.cdn = cdn
        self.reject_unknown_tokens = reject_unknown_tokens
        self.verbose = verbose
        self.list_page_size = LIST_PAGE_SIZE
        self.tokens: dict[str, list[str] | None] = {}
        self.set_tokens(tokens or ())
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._faults: list[_Fault] = []
        self._server: _Server | None = None
        self._cdn_server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()  # set by stop(): stalled and trickling answers give up
        self.skipped: list[tuple[Path, str]] = []  # fixture dirs that could not be read, with the reason
        if fixtures_dir is None:
            fixtures_dir = default_fixtures_dir()
        if fixtures_dir is not None:
            roots = [fixtures_dir] if isinstance(fixtures_dir, (str, Path)) else list(fixtures_dir)
            for root in roots:
                self.add_fixtures(root)

    # -- repos --------------------------------------------------------------------------------------------------
    def add_fixtures(self, root: str | Path) -> list[str]:
        """Add one fixture dir, or every fixture dir directly under `root`. Returns the repo ids added."""
        root = Path(root)
        if (root / "repo.json").is_file():
            dirs = [root]
        else:
            dirs = sorted(p for p in root.iterdir() if (p / "repo.json").is_file())
        added = []
        for d in dirs:
            try:
                fx = _Fixture(d)
            except (OSError, ValueError) as exc:  # a half-written or broken repo.json: skip it, say so
                self.skipped.append((d, f"{type(exc).__name__}: {exc}"))
                warnings.warn(f"fakehub: skipping fixture {d}: {exc}", stacklevel=2)
                continue
            with self._lock:
                self._repos[fx.id] = _Repo(fx.id, fx)
            added.append(fx.id)
        return added

    def add_alias(self, new_id: str, fixture_id: str, **settings) -> None:
        """Serve `fixture_id`'s files (and sha, refs, gating) under `new_id` too, without copying anything.
        `settings` override repo.json fields for the alias only (gated=, private=, downloads=, sha=, refs=...)."""
        with self._lock:
            base = self._repos.get(fixture_id)
            if base is None:
                raise KeyError(f"fake hub has no repo {fixture_id!r} to alias")
            repo = _Repo(new_id, base.fixture)
            repo.settings = {**base.settings, **settings}
            self._repos[new_id] = repo

    def update_repo(self, repo_id: str, **settings) -> None:
        """Override repo.json fields at runtime: gated="manual", private=True, downloads=10, refs={...}, ..."""
        self._repo_or_raise(repo_id).settings.update(settings)

    def set_file(self, repo_id: str, path: str, data: bytes | str) -> None:
        """Add or replace a file of one repo id (e.g. malformed bytes). It is served verbatim."""
        self._repo_or_raise(repo_id).overrides[path] = data.encode() if isinstance(data, str) else bytes(data)

    def delete_file(self, repo_id: str, path: str) -> None:
        self._repo_or_raise(repo_id).overrides[path] = None

    def reset_files(self, repo_id: str) -> None:
        self._repo_or_raise(repo_id).overrides.clear()

    def reload(self, repo_id: str) -> None:
        """Forget the cached fixture data (after editing the fixture dir on disk)."""
        self._repo_or_raise(repo_id).fixture.reload()

    def preload(self, repo_ids: Iterable[str] | None = None) -> None:
        """Read now what serving these repos (every repo by default) reads on first use: the fixture's tensor
        tables and files, their hashes, headers and parameter counts. A benchmark calls it before it starts the
        clock, so that the fake Hub's first-use loading (a real Hub has its repos at hand) is not counted as the
        client's time; what is served does not change."""
        seen: set[int] = set()
        for repo_id in self.repo_ids() if repo_ids is None else repo_ids:
            repo = self._repo_or_raise(repo_id)
            if id(repo.fixture) in seen:
                continue
            seen.add(id(repo.fixture))
            for path, f in repo.files().items():
                repo.file_hashes(path, f)
                if f.kind == "safetensors":
                    try:
                        f.header_json()
                    except ValueError:  # served as it is; the route that splices it answers 400
                        pass
            repo.fixture.parameter_counts()

    def repo_ids(self) -> list[str]:
        with self._lock:
            return list(self._repos)

    def repo_data(self, repo_id: str) -> RepoData:
        """The fixture's RepoData (as load_fixture returns it; ignores set_file overrides)."""
        return self._repo_or_raise(repo_id).fixture.data()

    def _repo_or_raise(self, repo_id: str) -> _Repo:
        with self._lock:
            if repo_id not in self._repos:
                raise KeyError(f"fake hub has no repo {repo_id!r}")
            return self._repos[repo_id]

    def _get_repo(self, repo_id: str) -> _Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    # -- tokens -------------------------------------------------------------------------------------------------
    def set_tokens(self, tokens: Iterable[str] | Mapping[str, Iterable[str] | str | None]) -> None:
        if isinstance(tokens, str):
            tokens = [tokens]
        if isinstance(tokens, Mapping):
            self.tokens = {
                t: (None if v is None or v == "*" else [v] if isinstance(v, str) else list(v))
                for t, v in tokens.items()
            }
        else:
            self.tokens = {t: None for t in tokens}

    def _allowed(self, token: str | None, repo_id: str) -> bool:
        if token is None or token not in self.tokens:
            return False
        patterns = self.tokens[token]
        return patterns is None or any(fnmatch.fnmatchcase(repo_id, p) for p in patterns)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def cdn_url(self) -> str | None:
        return None if self._cdn_server is None else f"http://{self.host}:{self._cdn_server.server_address[1]}"

    def start(self) -> "FakeHub":
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler, self, "hub")
        self.port = self._server.server_address[1]
        servers = [self._server]
        if self.cdn:
            self._cdn_server = _Server((self.host, 0), _Handler, self, "cdn")
            servers.append(self._cdn_server)
        for srv in servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                 name=f"fakehub-{srv.role}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for srv in (self._server, self._cdn_server):
            if srv is not None:
                srv.shutdown()
                srv.close_open_connections()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._server = self._cdn_server = None

    close = stop

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start and block until interrupted (Ctrl-C / SIGTERM). For the CLI."""
        self.start()
        stop = threading.Event()

        def _stop(*_):
            stop.set()

        try:
            signal.signal(signal.SIGTERM, _stop)
        except ValueError:  # not the main thread: Ctrl-C / stop() from elsewhere only
            pass
        try:
            while not stop.is_set():
                stop.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- instrumentation ----------------------------------------------------------------------------------------
    def _record(self, rec: RequestRecord) -> None:
        with self._lock:
            self._log.append(rec)

    def requests(self, method: str | None = None, path: str | None = None, *,
                 include_telemetry: bool = False) -> list[RequestRecord]:
        """Logged requests (a copy), oldest first. `path` is a regex searched in the decoded path. The client's
        `/api/agent-harnesses` fetch (huggingface_hub telemetry, once per process) is left out unless asked for."""
        pat = re.compile(path) if path else None
        with self._lock:
            log = list(self._log)
        return [
            r for r in log
            if (include_telemetry or not r.telemetry)
            and (method is None or r.method == method.upper())
            and (pat is None or pat.search(r.path))
        ]

    @property
    def log(self) -> list[RequestRecord]:
        return self.requests(include_telemetry=True)

    def count(self, method: str | None = None, path: str | None = None, *, include_telemetry: bool = False) -> int:
        return len(self.requests(method, path, include_telemetry=include_telemetry))

    def reset(self) -> None:
        """Clear the request log (faults stay armed; use clear_faults())."""
        with self._lock:
            self._log.clear()

    def sequential_round_trips(self, method: str | None = None, path: str | None = None, *,
                               include_telemetry: bool = False) -> int:
        """The critical path: the longest chain of logged requests in which each starts after the previous one
        ended (see `critical_path_length`)."""
        return critical_path_length(self.requests(method, path, include_telemetry=include_telemetry))

    # -- fault injection ----------------------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 503, *, path: str | None = None, method: str | None = None,
                  retry_after: float | int | None = None, body: bytes | None = None) -> None:
        """The next `n` requests (matching the `path` regex and `method`, if given) answer `status` instead.
        429 gets `Retry-After: retry_after` (default 1) and `X-Error-Message`; 5xx gets Retry-After only if given.
        Without `path`, the client's telemetry request is never hit."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self._add_fault(_Fault("status", status, n, re.compile(path) if path else None, method, retry_after, body))

    def rate_limit_next(self, n: int = 1, retry_after: float | int = 1, **kw) -> None:
        self.fail_next(n, 429, retry_after=retry_after, **kw)

    def drop_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """The next `n` matching requests get no response: the server closes the connection."""
        self._add_fault(_Fault("drop", 0, n, re.compile(path) if path else None, method, None))

    def inject(self, kind: str, n: int = 1, *, path: str | None = None, method: str | None = None,
               **params) -> None:
        """The next `n` requests matching `path` (a regex on the decoded path) and `method` meet fault `kind`
        (FAULT_KINDS: trickle, stall, reset, bad-range, ignore-range, redirect; `params` as documented there).
        Without `path`, the client's telemetry request is never hit."""
        if kind not in FAULT_KINDS or kind in ("status", "drop"):
            raise ValueError(f"unknown fault {kind!r} (use fail_next / drop_next for status and drop)")
        self._add_fault(_Fault(kind, 0, n, re.compile(path) if path else None, method, None, params=params))

    def _redirect_response(self, role: str, raw_path: str, fault: _Fault) -> _Response:
        if fault.params.get("to") == "cdn" and self._cdn_server is not None:
            # the CDN serves /cdn/{repo}/{sha}/{path}: a /{repo}/resolve/{sha}/{path} request maps onto it
            return _Response(302, [("Location", f"{self.cdn_url}/cdn" + raw_path.replace("/resolve/", "/", 1)),
                                   ("Content-Type", "text/plain; charset=utf-8")], b"Found.")
        else:
            port = (self._cdn_server if role == "cdn" else self._server).server_address[1]
            target = f"http://localhost:{port}"
        location = target + raw_path
        return _Response(302, [("Location", location), ("Content-Type", "text/plain; charset=utf-8")],
                         f"Found. Redirecting to {location}".encode())

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                self._faults.append(fault)

    def _take_fault(self, method: str, path: str, host: str | None = None) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind == "redirect" and (host or "").startswith("localhost"):
                    continue  # already redirected here: answer it
                if f.remaining > 0 and f.matches(method, path):
                    f.remaining -= 1
                    if f.remaining == 0:
                        self._faults.remove(f)
                    return f
        return None

    def _fault_response(self, fault: _Fault) -> _Response:
        headers = []
        if fault.retry_after is not None:
            ra = fault.retry_after
            headers.append(("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra)))
        if fault.body is not None:
            return _Response(fault.status, [("Content-Type", "text/plain"), *headers], fault.body)
        msg = {429: "You have exceeded our request rate limit (fake hub). Retry later.",
               500: "Internal Error (fake hub).",
               502: "Bad Gateway (fake hub).",
               503: "Service Unavailable (fake hub).",
               504: "Gateway Timeout (fake hub)."}.get(fault.status, f"Injected error {fault.status} (fake hub).")
        return _error(fault.status, None, msg, headers)

    # -- routing ------------------------------------------------------------------------------------------------
    def _route(self, role: str, method: str, raw_path: str, query: dict, headers) -> _Response:
        if method not in ("GET", "HEAD"):
            return _error(405, None, f"Method {method} not allowed on the fake hub")
        auth_header = headers.get("Authorization")
        token = None
        if auth_header:
            token = auth_header.split(" ", 1)[1].strip() if auth_header.lower().startswith("bearer ") else auth_header
        auth = auth_header is not None
        if role == "cdn":
            return self._cdn(raw_path, query, headers)
        if auth and self.reject_unknown_tokens and token not in self.tokens:
            return _error(401, None, "Invalid credentials in Authorization header")

        segs = [s for s in raw_path.split("/")[1:]]
        while segs and segs[-1] == "":
            segs.pop()
        if segs == ["api", "agent-harnesses"]:
            return _json_response(200, {"standardEnvVars": [], "harnesses": {}})
        if segs == ["api", "models"]:
            return self._list_models(query, token)
        if len(segs) >= 3 and segs[:2] == ["api", "models"]:
            rest = [unquote(s) for s in segs[2:]]
            two = len(rest) >= 2 and ("/".join(rest[:2]) in self._repos or rest[1] not in _SUBROUTES)
            repo_id = "/".join(rest[:2]) if two else rest[0]
            tail = rest[2:] if two else rest[1:]
            return self._api_model(repo_id, tail, query, token, auth)
        for i in (2, 1):
            if len(segs) > i + 1 and segs[i] == "resolve" and segs[0] not in ("api", "cdn"):
                if segs[0] in ("datasets", "spaces", "kernels"):
                    return _error(401 if not auth else 404, "RepoNotFound", "Repository not found")
                repo_id = "/".join(unquote(s) for s in segs[:i])
                rev = unquote(segs[i + 1])
                path = "/".join(unquote(s) for s in segs[i + 2 :])
                return self._resolve(repo_id, rev, path, headers, token, auth)
        return _error(404, None, "Not Found")

    def _repo_access(self, repo_id: str, token: str | None, auth: bool) -> tuple[_Repo | None, _Response | None]:
        repo = self._get_repo(repo_id)
        if repo is None or (repo.private and not self._allowed(token, repo.id)):
            # The real Hub answers 401 to anonymous requests for missing or private repos, 404 with a token.
            return None, _error(404 if auth else 401, "RepoNotFound", "Repository not found")
        return repo, None

    def _gate(self, repo: _Repo, token: str | None) -> _Response | None:
        if not repo.gated or self._allowed(token, repo.id):
            return None
        if token is None:
            return _error(401, "GatedRepo",
                          f"Access to model {repo.id} is restricted. You must have access to it and be authenticated "
                          "to access it. Please log in.")
        return _error(403, "GatedRepo",
                      f"Access to model {repo.id} is restricted and you are not in the authorized list. Visit "
                      f"https://huggingface.co/{repo.id} to ask for access.")

    @staticmethod
    def _revision_error(rev: str) -> _Response:
        return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")

    # -- /api/models/{repo}... ----------------------------------------------------------------------------------
    def _api_model(self, repo_id: str, tail: list[str], query: dict, token: str | None, auth: bool) -> _Response:
        repo, err = self._repo_access(repo_id, token, auth)
        if err:
            return err
        if not tail:
            return _json_response(200, self._model_info(repo, repo.resolve_revision("main"), query))
        if tail[0] == "revision" and len(tail) >= 2:
            rev = "/".join(tail[1:])
            sha = repo.resolve_revision(rev)
            if sha is None:
                return self._revision_error(rev)
            return _json_response(200, self._model_info(repo, sha, query))
        if tail[0] == "tree" and len(tail) >= 2:
            rev = tail[1]
            sha = repo.resolve_revision(rev)
            if sha is None:
                return self._revision_error(rev)
            return self._tree(repo, sha, "/".join(tail[2:]), query)
        if tail == ["refs"]:
            return self._refs(repo, query)
        if tail[0] == "safetensors-metadata" and len(tail) >= 2:
            gate = self._gate(repo, token)
            if gate:
                return gate
            return self._safetensors_metadata(repo, "/".join(tail[1:]))
        return _error(404, None, "Not Found")

    def _refs(self, repo: _Repo, query: dict) -> _Response:
        """list_repo_refs: every ref of repo.json is a branch (main first), no tags, no converts."""
        refs = dict(repo.refs)
        refs.setdefault("main", repo.sha)
        names = ["main"] + sorted(n for n in refs if n != "main")
        out = {"branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": refs[n]} for n in names],
               "tags": [], "converts": []}
        if _truthy(query.get("include_prs")):
            out["pullRequests"] = []
        return _json_response(200, out)

    def _siblings(self, repo: _Repo, blobs: bool, sha: str | None = None) -> list[dict]:
        out = []
        for path, f in repo.files(sha).items():
            entry: dict = {"rfilename": path}
            if blobs:
                sha1, sha256 = repo.file_hashes(path, f)
                entry["size"] = f.size if f.size_known else None
                entry["blobId"] = sha1
                if f.size_known and is_lfs(path, f.size):
                    entry["lfs"] = {"size": f.size, "sha256": sha256, "pointerSize": len(lfs_pointer(sha256, f.size))}
            out.append(entry)
        return out

    def _config_subset(self, repo: _Repo) -> dict | None:
        text = repo.overrides.get("config.json")
        if text is None and "config.json" not in repo.overrides:
            text = repo.fixture.data().texts.get("config.json")
        if not text:
            return None
        try:
            cfg = json.loads(text)
        except ValueError:
            return None
        if not isinstance(cfg, dict):
            return None
        out = {k: cfg[k] for k in ("architectures", "model_type") if k in cfg}
        qc = cfg.get("quantization_config")
        if isinstance(qc, dict):
            out["quantization_config"] = {k: qc[k] for k in ("quant_method", "bits", "load_in_4bit", "load_in_8bit")
                                          if k in qc}
        return out

    def _summary(self, repo: _Repo) -> dict:
        """Fields shared by model_info and list_models."""
        files = repo.files()
        cfg = self._config_subset(repo)
        library = repo.get("library_name") or ("transformers" if "config.json" in files else None)
        tags = repo.get("tags")
        if tags is None:
            tags = [t for t in (library, "safetensors" if any(p.endswith(".safetensors") for p in files) else None,
                                "gguf" if any(p.endswith(".gguf") for p in files) else None,
                                (cfg or {}).get("model_type")) if t]
        out = {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.author,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": int(repo.get("downloads", 0) or 0),
            "likes": int(repo.get("likes", 0) or 0),
            "trendingScore": int(repo.get("trendingScore", 0) or 0),
            "tags": list(tags),
            "lastModified": repo.get("lastModified", DEFAULT_DATE),
            "createdAt": repo.get("createdAt", DEFAULT_DATE),
        }
        if library:
            out["library_name"] = library
        if repo.get("pipeline_tag"):
            out["pipeline_tag"] = repo.get("pipeline_tag")
        if cfg is not None:
            out["config"] = cfg
        return out

    def _model_info(self, repo: _Repo, sha: str, query: dict) -> dict:
        blobs = _truthy(query.get("blobs"))
        info = self._summary(repo)
        info["sha"] = sha
        info["siblings"] = self._siblings(repo, blobs, sha)
        info["spaces"] = []
        info["usedStorage"] = sum(f.size for f in repo.files(sha).values())
        st = repo.get("safetensors")
        if st is None:
            counts = repo.fixture.parameter_counts()
            st = {"parameters": dict(sorted(counts.items())), "total": sum(counts.values())} if counts else None
        if st is not None:
            info["safetensors"] = st
        if _truthy(query.get("securityStatus")):
            info["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
        expand = _expand(query)
        if expand:
            return {"_id": info["_id"], "id": info["id"], **{k: info[k] for k in expand if k in info}}
        return info

    def _list_models(self, query: dict, token: str | None) -> _Response:
        search = (query.get("search") or [""])[0].lower()
        author = (query.get("author") or [""])[0]
        filters = [f for v in query.get("filter", []) for f in v.split(",") if f]
        sort = (query.get("sort") or [""])[0]
        limit = _int((query.get("limit") or [""])[0])
        cursor = _int((query.get("cursor") or ["0"])[0]) or 0
        with self._lock:
            repos = list(self._repos.values())
        items = []
        for repo in repos:
            if repo.private and not self._allowed(token, repo.id):
                continue
            if search and search not in repo.id.lower():
                continue
            if author and repo.author != author:
                continue
            summary = self._summary(repo)
            if filters and not all(f in summary["tags"] or f == summary.get("library_name") for f in filters):
                continue
            items.append((repo, summary))
        key = {"downloads": "downloads", "likes": "likes", "trendingScore": "trendingScore",
               "lastModified": "lastModified", "createdAt": "createdAt"}.get(sort)
        if key:
            items.sort(key=lambda it: it[1][key], reverse=True)  # the Hub sorts descending
        elif sort == "id":
            items.sort(key=lambda it: it[0].id)
        expand = _expand(query)
        full = _truthy(query.get("full"))
        with_config = _truthy(query.get("config"))
        page_size = min(limit, self.list_page_size) if limit else self.list_page_size
        page = items[cursor : cursor + page_size]
        out = []
        for repo, summary in page:
            if expand or full:
                info = self._model_info(repo, repo.resolve_revision("main"), query)
                if full and not expand:
                    info.pop("safetensors", None)
                    info.pop("usedStorage", None)
                out.append(info)
                continue
            item = {k: summary[k] for k in ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags",
                                            "createdAt", "modelId") if k in summary}
            for k in ("pipeline_tag", "library_name"):
                if k in summary:
                    item[k] = summary[k]
            if with_config and "config" in summary:
                item["config"] = summary["config"]
            out.append(item)
        headers = []
        if not limit and cursor + page_size < len(items):
            params = [(k, v) for k, vs in query.items() if k != "cursor" for v in vs] + [("cursor", cursor + page_size)]
            headers.append(("Link", f'<{self.url}/api/models?{urlencode(params)}>; rel="next"'))
        return _json_response(200, out, headers)

    def _tree(self, repo: _Repo, sha: str, prefix: str, query: dict) -> _Response:
        recursive = _truthy(query.get("recursive"))
        files = repo.files(sha)
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        if prefix and prefix not in {d for p in files for d in _parents(p)}:
            return _error(404, "EntryNotFound", f"{prefix} does not exist on \"{sha}\"",
                          [("X-Repo-Commit", sha)])
        entries: dict[str, dict] = {}
        for path, f in files.items():
            if not path.startswith(base):
                continue
            rel = path[len(base):]
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                if not recursive and depth > 1:
                    break
                d = base + "/".join(parts[:depth])
                entries.setdefault(d, {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0,
                                       "path": d})
            if recursive or len(parts) == 1:
                sha1, sha256 = repo.file_hashes(path, f)
                e = {"type": "file", "oid": sha1, "size": f.size if f.size_known else None, "path": path}
                if f.size_known and is_lfs(path, f.size):
                    e["lfs"] = {"oid": sha256, "size": f.size, "pointerSize": len(lfs_pointer(sha256, f.size))}
                entries[path] = e
        return _json_response(200, sorted(entries.values(), key=lambda e: (e["type"] != "directory", e["path"])))

    def _safetensors_metadata(self, repo: _Repo, filename: str) -> _Response:
        """`{"index": the index without its weight_map, "headers": {shard: its header object}}`, the shards in the
        order of their names. The headers are spliced in as stored (no parse and re-dump per request)."""
        files = repo.files()
        f = files.get(filename)
        if f is None:
            return _error(404, "EntryNotFound", f"{filename} does not exist on \"main\"",
                          [("X-Repo-Commit", repo.resolve_revision("main"))])
        parts = []
        try:
            if f._index is None or f._index[0] is not f.content():  # decoded once per file (Kimi-K2's: 12.5 MB)
                index = json.loads(f.content() or b"")
                f._index = (f.content(), {k: v for k, v in index.items() if k != "weight_map"},
                            sorted(set(index.get("weight_map", {}).values())))
            _, meta, shards = f._index
            for shard in shards:
                g = files.get(shard)
                header = g.header_json() if g is not None else None
                if header is None:
                    return _error(404, "EntryNotFound", f"{shard} is not a safetensors file on \"main\"")
                parts.append(json.dumps(shard).encode() + b":" + header)
        except (ValueError, AttributeError, TypeError):
            return _error(400, None, f"{filename} is not a safetensors index")
        body = b'{"index":' + json.dumps(meta).encode() + b',"headers":{' + b",".join(parts) + b"}}"
        return _Response(200, [("Content-Type", "application/json; charset=utf-8")], body)

    # -- /{repo}/resolve/{rev}/{path} ---------------------------------------------------------------------------
    def _resolve(self, repo_id: str, rev: str, path: str, headers, token: str | None, auth: bool) -> _Response:
        repo, err = self._repo_access(repo_id, token, auth)
        if err:
            return err
        gate = self._gate(repo, token)
        if gate:
            return gate
        sha = repo.resolve_revision(rev)
        if sha is None:
            return self._revision_error(rev)
        f = repo.files(sha).get(path)
        if f is None:
            return _error(404, "EntryNotFound", f"{path} does not exist on \"{rev}\"", [("X-Repo-Commit", sha)])
        etag, lfs = repo.etags(path, f)
        common = [("X-Repo-Commit", sha), ("ETag", f'"{etag}"')]
        if lfs:
            common += [("X-Linked-Etag", f'"{etag}"'), ("X-Linked-Size", str(f.size))]
        if lfs and self.cdn and self._cdn_server is not None:
            token_q = hashlib.sha1(f"{repo.id}:{path}".encode()).hexdigest()[:16]
            location = (f"{self.cdn_url}/cdn/{quote(repo.id)}/{sha}/{quote(path)}"
                        f"?X-Amz-Signature={token_q}&Expires=9999999999")
            return _Response(302, [*common, ("Location", location), ("Content-Type", "text/plain; charset=utf-8")],
                             f"Found. Redirecting to {location}".encode())
        return self._file_response(f, headers.get("Range"), common)

    def _file_response(self, f: _File, range_header: str | None, common: list[tuple[str, str]]) -> _Response:
        base = [*common, ("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream")]
        rng = _parse_range(range_header, f.size)
        if rng == "unsatisfiable":
            return _Response(416, [*common, ("Accept-Ranges", "bytes"), ("Content-Range", f"bytes */{f.size}"),
                                   ("Content-Type", "text/plain")], b"Requested Range Not Satisfiable")
        if rng is None:
            return _Response(200, base, stream=(f, 0, f.size))
        start, stop = rng
        return _Response(206, [*base, ("Content-Range", f"bytes {start}-{stop - 1}/{f.size}")], stream=(f, start, stop))

    def _cdn(self, raw_path: str, query: dict, headers) -> _Response:
        segs = raw_path.split("/")[1:]
        # /cdn/{org}/{name}/{sha}/{path...} or /cdn/{name}/{sha}/{path...}
        if not segs or segs[0] != "cdn" or len(segs) < 4:
            return _Response(404, [("Content-Type", "text/plain")], b"Not Found")
        for i in (3, 2):
            if len(segs) > i + 1 and _SHA_RE.match(segs[i]):
                repo = self._get_repo("/".join(unquote(s) for s in segs[1:i]))
                if repo is None:
                    continue
                path = "/".join(unquote(s) for s in segs[i + 1 :])
                f = repo.files(segs[i]).get(path)
                if f is None:
                    continue
                etag, _ = repo.etags(path, f)
                return self._file_response(f, headers.get("Range"), [("ETag", f'"{etag}"')])
        return _Response(404, [("Content-Type", "text/plain")], b"Not Found")


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


class _WithoutRange:
    """Request headers with Range hidden (the ignore-range fault)."""

    def __init__(self, headers):
        self._headers = headers

    def get(self, key: str, default=None):
        return default if key.lower() == "range" else self._headers.get(key, default)


def _shift_range(resp: _Response, shift: int) -> _Response:
    """A 206 that holds other bytes than those asked for, and says so in its Content-Range (bad-range fault)."""
    if resp.status != 206 or resp.stream is None:
        return resp
    f, start, stop = resp.stream
    start, stop = min(start + shift, f.size - 1), min(stop + shift, f.size)
    headers = [(k, v) for k, v in resp.headers if k != "Content-Range"]
    headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{f.size}"))
    return _Response(206, headers, stream=(f, start, stop))


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes", "on")


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _expand(query: dict) -> list[str]:
    out: list[str] = []
    for key in ("expand", "expand[]"):
        for v in query.get(key, []):
            out.extend(x for x in v.split(",") if x)
    return out


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _parse_range(header: str | None, size: int):
    """None (serve everything: no Range, or one we ignore as RFC 9110 allows), "unsatisfiable", or (start, stop)."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header, flags=re.IGNORECASE)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # invalid or multi-range: ignore
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid: ignore
    if start >= size:
        return "unsatisfiable"
    stop = size if last == "" else min(int(last) + 1, size)
    return start, stop


# ---------------------------------------------------------------------------------------------------------------
# Writing fixture dirs (tests, benchmarks)
# ---------------------------------------------------------------------------------------------------------------


def write_fixture(
    directory: str | Path,
    repo_id: str,
    *,
    sha: str | None = None,
    files: Mapping[str, bytes | str | dict] | None = None,
    tensors: Mapping[str, list[tuple[str, str, Iterable[int]]] | dict] | None = None,
    gated: bool | str = False,
    private: bool = False,
    refs: Mapping[str, str] | None = None,
    large_files: Mapping[str, int] | None = None,
    **repo_fields,
) -> Path:
    """Write a fixture dir in the fixtures/ layout: verbatim `files` (dicts are written as JSON), `tensors`
    ({safetensors path: [(name, dtype, shape), ...]} or {path: {"metadata": {...}, "tensors": [...]}}) into
    tensors.json.gz, and repo.json (id, sha, gated, private, refs, files=large_files, plus any extra field such as
    downloads=). Returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sha = sha or hashlib.sha1(repo_id.encode()).hexdigest()
    for rel, content in (files or {}).items():
        p = directory / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (dict, list)):
            content = json.dumps(content, indent=2) + "\n"
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    if tensors:
        tables = {}
        for path, entry in tensors.items():
            if isinstance(entry, dict):
                tables[path] = {"metadata": entry.get("metadata") or {},
                                "tensors": [[n, d, list(s)] for n, d, s in entry["tensors"]]}
            else:
                tables[path] = {"metadata": {"format": "pt"}, "tensors": [[n, d, list(s)] for n, d, s in entry]}
        (directory / "tensors.json.gz").write_bytes(
            gzip.compress(json.dumps(tables, separators=(",", ":")).encode(), mtime=0))
    meta = {"id": repo_id, "sha": sha, "gated": gated, "refs": dict(refs or {}), "files": dict(large_files or {})}
    if private:
        meta["private"] = True
    meta.update(repo_fields)
    (directory / "repo.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hfvram.fakehub", description="Serve fixture repos as a fake Hub.")
    ap.add_argument("--fixtures", action="append", default=None,
                    help="fixtures folder or fixture dir (repeatable; default: the repo's fixtures/)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="sleep before answering each request")
    ap.add_argument("--token", action="extend", nargs="+", default=[], help="accepted token(s), approved everywhere")
    ap.add_argument("--alias", action="append", default=[], metavar="NEW_ID=FIXTURE_ID",
                    help="serve a fixture under another repo id (repeatable)")
    ap.add_argument("--cdn", action="store_true", help="redirect LFS files to a second port, like the real Hub")
    ap.add_argument("--verbose", "-v", action="store_true", help="log each request on stderr")
    args = ap.parse_args(argv)
    hub = FakeHub(args.fixtures, tokens=args.token, delay_s=args.delay_ms / 1000, host=args.host, port=args.port,
                  cdn=args.cdn, verbose=args.verbose)
    for spec in args.alias:
        new, _, old = spec.partition("=")
        hub.add_alias(new, old)
    hub.start()
    print(f"HF_ENDPOINT={hub.url}", flush=True)
    print(f"fakehub: {len(hub.repo_ids())} repos; Ctrl-C to stop", file=sys.stderr, flush=True)
    hub.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
