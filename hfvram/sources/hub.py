"""Reading a repo's metadata from the Hugging Face Hub, through `huggingface_hub`.

Round trips (cold): 1. the model info (`/api/models/{repo}[/revision/{rev}]?blobs=true`, as `HfApi.model_info(
files_metadata=True)` asks it) resolves the revision to a commit sha and lists every file with its size; 2. in
parallel, the small text files (config.json, params.json, quantization side files, index files) and the first
100 kB of every candidate safetensors file, asking for the rest of a header in a third round only when it is larger
(the request pattern of `HfApi.parse_safetensors_file_metadata`); for a sharded checkpoint on `main`, every shard's
header in one request instead (`HfApi.get_sharded_safetensors_metadata`'s route, SHARDED_METADATA_ROUTE), used when
it agrees with the commit. Warm: the one model-info call, then the metadata
cache by commit sha. A 40-hex revision already in the cache: no request. `--offline` / HF_HUB_OFFLINE: no request
(cache, then the bundled snapshot).

`HF_ENDPOINT`, `HF_TOKEN`, `hf auth login` and `HF_HUB_OFFLINE` work as they do for every huggingface_hub user: every
request goes through its shared HTTP client (`get_session()`), URLs (`hf_hub_url`), headers (`build_hf_headers`)
and error mapping (`hf_raise_for_status`).

Nothing the server says is trusted: every body is streamed with a byte cap (a server that ignores Range and sends a
whole checkpoint is cut off after what a header can be), the commit sha must be 40 hex digits (it names a cache
file), file sizes must be whole numbers, and every run has a deadline and a cap on the time spent waiting to retry.
"""

from __future__ import annotations

import contextvars
import json
import os
import queue
import re
import sys
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable
from urllib.parse import quote

from .. import __version__
from ..lazyre import lazy
from ..errors import (
    GatedRepo,
    HfvramError,
    MalformedInput,
    NetworkError,
    NotAvailableOffline,
    NothingToRead,
    RateLimited,
    RepoNotFound,
    RevisionNotFound,
    Timeout,
    UsageError,
)
from ..repodata import TEXT_FILES, RepoData
from ..stformat import MAX_HEADER_BYTES, header_length, parse_header
from . import snapshot
from .cache import MetadataCache
from .select import from_index, headers_to_read

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# huggingface_hub's own defaults: HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT = 10 s (constants.py). It is a
# per-read timeout: a server that trickles a byte every few seconds never trips it, hence the deadline below.
TIMEOUT_S = float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") or 10)
# Transient failures (429, 5xx, resets, read timeouts) are retried this many times with exponential backoff
# (0.5 s doubling, jittered x0.75-1.25: at most 0.6 + 1.2 + 2.5 + 5 = 9.4 s for one request), and a 429's
# Retry-After is honoured, all within the run's wait budget (MAX_WAIT_S) and deadline (DEADLINE_S).
RETRIES = 4
BACKOFF_S = 0.5
# Total seconds one run (one scan row) may sleep before retries: two full backoff series of one request (2 x 9.4 s).
# A rate limit asking for more fails at once, saying so (`--max-wait` raises it).
MAX_WAIT_S = 20.0
# Wall-clock limit of one run (one scan row) on the Hub. A cold run is 2-3 round trips (README "Speed": 0.9-1.0 s
# against a hub with 50 ms per request; DeepSeek-V3's 163 shards 2.8 s); 30 s is three of huggingface_hub's 10 s
# request timeouts: room for a slow request retried, and well under a minute (`--deadline` changes it).
DEADLINE_S = 30.0

# Byte caps on what one answer may hold (the body is streamed and reading stops at the cap):
# - the model info: the Hub recommends under 100k files per repo (docs/hub/repositories-recommendations); a sibling
#   with its blob metadata is ~300 bytes of JSON, so a 100k-file listing is ~30 MB; 64 MB leaves room.
MODEL_INFO_CAP = 64 << 20
# - config.json, params.json and the quantisation/adapter side files: the largest fixture config is 12.9 kB
#   (Qwen3-235B-A22B-FP8, its per-module quantisation list); 8 MB is 600x that and holds any label map.
TEXT_CAP = 8 << 20
# - index files (`*.index.json`): one weight_map entry per tensor, ~80-100 bytes; Kimi-K2 has 139,644 tensors
#   (fixtures/moonshotai--Kimi-K2-Instruct), ~13 MB of index; 64 MB is 5x that.
INDEX_CAP = 64 << 20
# - a safetensors header: the first read is huggingface_hub's (bytes=0-100000, hf_api.py
#   parse_safetensors_file_metadata); the whole header is at most MAX_HEADER_BYTES (25 MB, its
#   SAFETENSORS_MAX_HEADER_LENGTH), and all the headers of one repo at most REPO_HEADERS_CAP: Kimi-K2's 61 shards
#   hold 17.7 MB of headers (the largest fixture); 128 MB is 7x that.
FIRST_READ = 100_001
# - a later shard's first read, sized on the repo's longest header so far plus a quarter (HubSource._get_header), at
#   most this: a header past it takes a second read, as a first one past FIRST_READ does. The quarter: Kimi-K2's 60
#   long headers are 293-296 kB (fixtures/moonshotai--Kimi-K2-Instruct), DeepSeek-V3's 163 are 22-74 kB, all
#   under 100 kB; 4 MiB is 14x Kimi-K2's longest, and bounds what one read may take past a header.
FIRST_READ_MAX = 4 << 20
REPO_HEADERS_CAP = 128 << 20
# - in a scan (HubSource.speculate off: throughput, not latency) the index is read before the shards, and each
#   shard's first read is sized on the tensor names the index gives it: a header entry is its quoted name, then
#   `:{"dtype":..,"shape":[..],"data_offsets":[..,..]},`, at most 82 bytes over the fixtures' 1.1M entries (their
#   headers rebuilt from the tables read off the Hub, in compact JSON as the safetensors library writes it); 128
#   leaves room for spaces and longer shapes or offsets, and
#   SHARD_HEADER_SLACK for `__metadata__` (15 bytes in every fixture header) and padding. Over the fixtures' 1,988
#   shards the longest header is 0.61 of this bound (median 0.44 with 160 a name), against the 100 kB every shard's
#   first read took: most headers are 5-40 kB, and the rest of those 100 kB was tensor data, read and dropped (one
#   ranged read costs the client ~0.3 ms more CPU at 100 kB than at 20 kB). A header longer
#   than its bound takes a second read, as one past FIRST_READ does. An index past SIZED_INDEX_MAX (the giants':
#   Kimi-K2's is 12.5 MB, ~0.3 s to decode) keeps the sizing by the index's file size (`per_shard` in `_read`).
SHARD_ENTRY_BYTES = 128
SHARD_HEADER_SLACK = 4096
SIZED_INDEX_MAX = 1 << 20
INDEX_FILE = "model.safetensors.index.json"
# Every shard header of a sharded checkpoint on `main` in one request: the Hub's
# `/api/models/{repo}/safetensors-metadata/{index}`, which huggingface_hub 2.4 calls in
# `HfApi.get_sharded_safetensors_metadata` ("Hugging Face Hub only"; answer `{"index": {...}, "headers": {shard:
# header}}`, the index without its weight_map). It replaces one ranged read per shard (and a second for a long
# header): 4,585 of the bench scan's 6,111 requests. It reads `main`, not a commit, so its answer is used only for a
# run asking for `main`, and only when it agrees with what the commit holds: the shards the index read at the commit
# names, and each shard's size in the commit's listing (8 + header + the data its tensors span). Anything else (an
# endpoint without the route, a branch that moved in between, an answer that is not one) falls back to reading the
# shards by commit. The answer is capped at REPO_HEADERS_CAP, what all the headers of one repo may hold.
SHARDED_METADATA_ROUTE = "/api/models/{repo_id}/safetensors-metadata/{filename}"
# How long a branch or tag's resolution to a commit answers a warm run without asking the Hub again (HubSource.max_age,
# seconds): PyPI serves its index pages with `Cache-Control: max-age=600` and uv honours it, with `--refresh` to ask
# again (pip chose to revalidate every time instead: "twine upload && pip install" surprised its users; pypa/pip#5791).
# hfvram takes uv's side for a person's repeated runs (the commit answered is named, and --refresh asks the Hub), and
# pip's for `hfvram check`, a gate, which resolves every time. HFVRAM_REVISION_MAX_AGE sets it (0: always ask).
REVISION_MAX_AGE_S = 600.0
# What a cold run reads next to the model info, by revision, before it knows the commit (HubSource._guesses): the
# config and the weights of a single-file checkpoint, so that such a repo is read in one round trip instead of two.
# A read is kept only if the Hub's answer names the commit the model info gives (X-Repo-Commit); the others, and the
# guesses a repo does not have (a sharded checkpoint has no model.safetensors: one 404), are read or dropped as before.
GUESSED = ("config.json", "model.safetensors")
# The most of a guessed text file read: the configs of the 170+ bundled fixtures are 0.5-13 kB (Qwen3-235B-A22B-FP8's
# is the largest); 1 MiB is 80x that. A longer one is read again once the listing gives its size.
GUESS_TEXT_CAP = 1 << 20
# Repos named for a format that keeps neither at the top (bartowski/*-GGUF, turboderp/*-exl2, ...): no guess, which
# would be two 404s.
_NOT_GUESSED = lazy(r"gguf|exl[23]", re.IGNORECASE)
# - an error answer: read for its message only.
ERROR_BODY_CAP = 64 << 10
# A file size in the listing above this is not believed: the Hub's per-file maximum is 50 GB (docs/hub/
# storage-limits, upload guide "Per file: 50GB max"); 1 TiB is 20x that.
MAX_FILE_SIZE = 1 << 40

_BUDGET: contextvars.ContextVar["Budget | None"] = contextvars.ContextVar("hfvram_budget", default=None)


def revision_max_age() -> float:
    """REVISION_MAX_AGE_S, or HFVRAM_REVISION_MAX_AGE's seconds."""
    text = os.environ.get("HFVRAM_REVISION_MAX_AGE", "").strip()
    if not text:
        return REVISION_MAX_AGE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"HFVRAM_REVISION_MAX_AGE must be a number of seconds (0: always ask the Hub), not {text!r}")
    return value


def offline_env() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


class _Unreachable(Exception):
    """The Hub could not be reached at all (DNS, refused connection, offline mode)."""


# -- deadlines and waits -------------------------------------------------------------------------------------------

class Budget:
    """One run's time on the Hub: a deadline (wall clock) and a cap on the total time spent sleeping before retries.
    Shared by every request of the run (also across request threads)."""

    def __init__(self, deadline_s: float | None = None, max_wait_s: float | None = None):
        self.seconds = float(DEADLINE_S if deadline_s is None else deadline_s)
        self.max_wait = float(MAX_WAIT_S if max_wait_s is None else max_wait_s)
        self.end = time.monotonic() + self.seconds
        self.waited = 0.0
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise Timeout(f"gave up after {self.seconds:g} s (the run's deadline; --deadline changes it) {what}")

    def request_timeout(self, what: str) -> float:
        """Per-read timeout of the next request: huggingface_hub's, or less when the deadline is nearer."""
        self.check(what)
        return max(0.05, min(TIMEOUT_S, self.remaining()))

    def left_to_wait(self) -> float:
        with self._lock:
            return max(0.0, self.max_wait - self.waited)

    def take(self, delay: float) -> bool:
        """Reserve `delay` seconds of waiting; False when the wait budget or the deadline cannot cover it."""
        with self._lock:
            if delay > self.max_wait - self.waited or delay >= self.remaining():
                return False
            self.waited += delay
            return True


def current_budget() -> Budget:
    """The budget of the run this thread is in (see `limits`), else a fresh one with the defaults."""
    return _BUDGET.get() or Budget()


@contextmanager
def limits(deadline_s: float | None = None, max_wait_s: float | None = None):
    """Every Hub read inside the block (one run: the model, its draft, its adapter) shares one deadline and one wait
    budget. `hfvram.analyze` opens one per call, so each scan row gets its own."""
    token = _BUDGET.set(Budget(deadline_s, max_wait_s))
    try:
        yield _BUDGET.get()
    finally:
        _BUDGET.reset(token)


def _stderr_notice(message: str) -> None:
    try:
        sys.stderr.write(f"hfvram: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class _Pool:
    """Request threads, shared by every HubSource of the process with the same size (a scan keeps at most `size`
    requests in flight and reuses connections; a program that analyses model after model reuses the same threads).
    Daemon threads, started as needed: a request stuck past its run's deadline (a server trickling its status line)
    is abandoned by the waiting run and never keeps the process alive, as ThreadPoolExecutor's joined workers
    would."""

    _shared: dict[int, "_Pool"] = {}
    _shared_lock = threading.Lock()

    def __init__(self, size: int, name: str):
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads = 0
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, size: int) -> "_Pool":
        with cls._shared_lock:
            if size not in cls._shared:
                cls._shared[size] = cls(size, "hfvram-fetch")
            return cls._shared[size]

    def submit(self, fn: Callable, *args) -> Future:
        from concurrent.futures import Future  # (a run with nothing to fetch, --offline, does not import it)

        future: Future = Future()
        self._queue.put((future, fn, args))
        if not self._idle.acquire(blocking=False):  # no idle thread: start one, up to `size`
            with self._lock:
                if self._threads < self.size:
                    self._threads += 1
                    threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()
        return future

    def map(self, fn: Callable, items, what: str = "reading the repo's files") -> list:
        """`fn` over `items` in the pool, results in order, each call in a copy of the caller's context (so the
        run's deadline and wait budget apply in the threads too); the run's deadline bounds the wait."""
        futures = [self.submit(contextvars.copy_context().run, fn, item) for item in items]
        return _gather(futures, current_budget(), what)

    def _work(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting run
                    future.set_exception(exc)
            self._idle.release()


def _gather(futures: list[Future], budget: Budget, what: str) -> list:
    """Results in order; the run's deadline bounds the wait (the request threads check it too, and say which file
    they were reading: half a second of grace lets their message win)."""
    from concurrent.futures import TimeoutError as FutureTimeout

    out = []
    try:
        for future in futures:
            out.append(future.result(timeout=max(0.0, budget.remaining()) + 0.5))
    except FutureTimeout:
        raise Timeout(f"gave up after {budget.seconds:g} s (the run's deadline; --deadline changes it) {what}") \
            from None
    finally:
        for future in futures:
            future.cancel()
    return out


def _guessed(guesses: dict[str, Future], sha: str, wait: float) -> dict[str, object]:
    """The guesses that resolved to `sha`. One still under way is waited for at most `wait` seconds in all (as long
    as the model info took: about one round trip), then left to finish unused."""
    from concurrent.futures import TimeoutError as FutureTimeout

    out: dict[str, object] = {}
    deadline = time.monotonic() + wait
    for path, future in guesses.items():
        try:
            got = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            continue
        if got is not None and got[0] == sha:
            out[path] = got[1]
    return out


def _ago(seconds: float) -> str:
    """42 s ago, 3 min ago (whole units, rounded down)."""
    return f"{int(seconds)} s ago" if seconds < 120 else f"{int(seconds // 60)} min ago"


def _done(value) -> Future:
    from concurrent.futures import Future

    future: Future = Future()
    future.set_result(value)
    return future


# -- the source ------------------------------------------------------------------------------------------------------

class HubSource:
    def __init__(
        self,
        token: str | bool | None = None,
        endpoint: str | None = None,
        cache: MetadataCache | None = None,
        max_workers: int = 64,  # requests in flight per source, shared by a scan's models (a bound, not tuned)
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        notice: Callable[[str], None] | None = _stderr_notice,
        speculate: bool = True,
        max_age: float | None = None,
    ):
        self.token = token
        self.endpoint = endpoint
        self.cache = cache if cache is not None else MetadataCache()
        self.max_workers = max_workers
        self.retries = retries
        self.sleep = sleep
        self.notice = notice  # where "waiting N s for ..." lines go (stderr by default; None: nowhere)
        # Read GUESSED next to the model info on a first run (one round trip for a single-file repo). A scan turns it
        # off: its many requests overlap anyway, and a guess that misses is a request more of CPU.
        self.speculate = speculate
        # Seconds a branch or tag's last resolution answers without a request (REVISION_MAX_AGE_S; 0: always ask).
        self.max_age = revision_max_age() if max_age is None else max_age
        self._api = None
        self._lock = threading.Lock()
        self._pool: _Pool | None = None
        self._last_notice = 0.0
        # False once the endpoint answered the sharded-metadata route as a route it does not have (a mirror): the
        # shards are then read one by one without asking again (SHARDED_METADATA_ROUTE)
        self._sharded_route = True

    # -- public -----------------------------------------------------------------------------------------------
    def replica(self) -> dict | None:
        """What a worker process needs to build a source like this one (`from_replica`): endpoint, token, cache
        folder, limits. None when this one has hooks another process cannot share (a test's sleep or notice, a
        subclass, another cache)."""
        if type(self) is not HubSource or self.sleep is not time.sleep or self.notice is not _stderr_notice \
                or type(self.cache) is not MetadataCache:
            return None
        return {"token": self.token, "endpoint": self.endpoint, "cache_root": str(self.cache.root),
                "cache_enabled": self.cache.enabled, "max_workers": self.max_workers, "retries": self.retries,
                "speculate": self.speculate, "max_age": self.max_age}

    @classmethod
    def from_replica(cls, replica: dict) -> "HubSource":
        return cls(token=replica["token"], endpoint=replica["endpoint"],
                   cache=MetadataCache(replica["cache_root"], enabled=replica["cache_enabled"]),
                   max_workers=replica["max_workers"], retries=replica["retries"],
                   speculate=replica.get("speculate", True), max_age=replica.get("max_age"))

    def fetch(self, repo_id: str, revision: str | None = None, offline: bool = False) -> RepoData:
        repo = self._fetch(repo_id, revision, offline)
        repo.facts_store = self.cache  # the facts derived from it are kept next to it (hfvram.introspect.derived)
        return repo

    def _fetch(self, repo_id: str, revision: str | None, offline: bool) -> RepoData:
        from . import valid_repo_id

        if not valid_repo_id(repo_id):
            raise UsageError(f"{repo_id!r} is not a Hub repo id (org/name)")
        revision = revision or "main"
        if offline or offline_env():
            return self._offline(repo_id, revision, "offline mode")
        if SHA_RE.match(revision):
            cached = self.cache.get(repo_id, revision)
            if cached is not None:
                cached.revision = revision
                return cached
        else:
            cached = self._recently_resolved(repo_id, revision)
            if cached is not None:
                return cached
        budget = current_budget()
        started = time.monotonic()
        info_future = self.pool.submit(self._retrying, budget, f"resolving {repo_id}@{revision}",
                                       lambda: self._model_info(repo_id, revision, budget))
        guesses = self._guesses(repo_id, revision, budget)
        try:
            [info] = _gather([info_future], budget, f"resolving {repo_id}@{revision} on {self.endpoint_url}")
        except _Unreachable as exc:
            return self._offline(repo_id, revision, f"cannot reach {self.endpoint_url} ({exc})")
        sha, files = _listing(info, repo_id, self.endpoint_url)
        cached = self.cache.get(repo_id, sha)
        if cached is not None:
            self.cache.put_ref(repo_id, revision, sha)
            cached.revision = revision
            return cached
        guessed = _guessed(guesses, sha, wait=time.monotonic() - started)
        repo = self._read(repo_id, sha, files, budget, guessed, revision)
        repo.revision = revision
        self.cache.put(repo, revision)
        repo.raw_headers = {}  # the cache entry holds them now; the run goes on with the parsed tables
        return repo

    def _recently_resolved(self, repo_id: str, revision: str) -> RepoData | None:
        """The cached entry of the commit `revision` resolved to less than max_age seconds ago, saying so."""
        found = self.cache.resolved(repo_id, revision) if self.max_age > 0 else None
        if found is None or not 0 <= found[1] < self.max_age:
            return None
        sha, age = found
        # one stderr line within 80 columns for a branch name like main (how long it is kept: --help, README)
        return self._cached(repo_id, sha, revision,
                            f"{revision} is commit {sha[:12]} as of {_ago(age)} (--refresh asks the Hub again)")

    def _cached(self, repo_id: str, sha: str, revision: str, note: str) -> RepoData | None:
        """The metadata cache's entry of (repo, sha) as `revision`, with a note on where the answer comes from."""
        cached = self.cache.get(repo_id, sha)
        if cached is not None:
            cached.revision = revision
            cached.notes.append(note)
        return cached

    def list_models(self, search=None, author=None, sort=None, limit=None) -> list[str]:
        """Repo ids of a Hub listing (`list_models`), with the same retries, deadline and one-line errors."""
        def call():
            return [m.id for m in self.api.list_models(search=search, author=author, sort=sort, limit=limit)]

        budget = current_budget()
        try:
            [ids] = _gather([self.pool.submit(self._retrying, budget, "listing models", call)], budget,
                            f"listing models on {self.endpoint_url}")
            return ids
        except _Unreachable as exc:
            raise NetworkError(f"cannot reach {self.endpoint_url} to list models ({exc})") from None

    @property
    def endpoint_url(self) -> str:
        if self.endpoint:
            return self.endpoint.rstrip("/")
        from huggingface_hub import constants

        return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")

    @property
    def pool(self) -> _Pool:
        if self._pool is None:
            self._pool = _Pool.shared(self.max_workers)
        return self._pool

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi(endpoint=self.endpoint, token=self.token, library_name="hfvram",
                              library_version=__version__)
        return self._api

    # -- a cold run's first round trip --------------------------------------------------------------------------
    def _guesses(self, repo_id: str, revision: str, budget: Budget) -> dict[str, Future]:
        """Reads of GUESSED made next to the model info, by revision, when this looks like a first run for it (no
        ref kept for it in the metadata cache; a warm run, which has one, makes only the model-info request)."""
        if not self.speculate or _NOT_GUESSED.search(repo_id.split("/")[-1]) or \
                (not SHA_RE.match(revision) and self.cache.resolve(repo_id, revision)):
            return {}
        return {path: self.pool.submit(self._guess, repo_id, revision, path, budget) for path in GUESSED}

    def _guess(self, repo_id: str, revision: str, path: str, budget: Budget) -> tuple[str | None, object] | None:
        """(the commit the Hub resolved `revision` to for this file, its text or its first bytes), or None when it
        could not be read: a guess that fails costs nothing, the file is then read as usual if the listing has it
        (the error, if there is one, comes from that read or from the model info)."""
        # Ranged like a header's first read: the size is not known yet, so a file larger than the guess reads is
        # not fetched whole (it is read, or refused, once the listing says how large it is).
        stop = FIRST_READ if path.endswith(".safetensors") else GUESS_TEXT_CAP
        try:
            body, commit = _ranged(self._url(repo_id, revision, path), self._headers(), budget, f"{repo_id}: {path}",
                                   0, stop)
            if stop == FIRST_READ:
                return commit, body
            return (commit, body.decode("utf-8")) if len(body) < stop else None  # else: perhaps cut short
        except Exception:  # noqa: BLE001 - see above
            return None

    # -- reading ----------------------------------------------------------------------------------------------
    def _read(self, repo_id: str, sha: str, files: dict[str, int | None], budget: Budget,
              guessed: dict[str, object] | None = None, revision: str | None = None) -> RepoData:
        texts_wanted = [f for f in TEXT_FILES if f in files]
        headers_wanted = headers_to_read(files)
        if not texts_wanted and not headers_wanted and not any(
                f.lower().endswith(".gguf") or f.endswith("/config.json") for f in files):  # GGUF, or per-folder models
            raise NothingToRead(
                f"{repo_id} has no config.json, params.json or safetensors weights to read (files: "
                f"{', '.join(sorted(files)[:8]) or 'none'}{', ...' if len(files) > 8 else ''})"
            )
        repo = RepoData(id=repo_id, sha=sha, source="hub", files=dict(files))
        header_bytes = [0, 0]  # all headers of this repo so far (REPO_HEADERS_CAP), the longest one

        def text(path: str) -> str:
            return self._retrying(budget, f"reading {repo_id}/{path}",
                                  lambda: self._get_text(repo_id, sha, path, files.get(path), budget))

        guessed = guessed or {}
        # A shard's header takes about as many bytes per tensor as the index's weight_map, a little more (its dtype,
        # shape and offsets against the shard's name): over the fixtures' sharded repos whose headers pass the first
        # 100 kB, the longest header is 1.35-1.47x the index's bytes per shard for the Qwen3 MoEs and Kimi-K2 (2.3-2.4x
        # for Gemma-4's unevenly filled shards). Their first reads are sized on it: Kimi-K2's 61 shards of 293-296
        # kB (an index of 12.5 MB) take one request each, all at once, where each took a second.
        index_size = files.get(INDEX_FILE)
        per_shard = 3 * index_size // (2 * len(headers_wanted)) if index_size and len(headers_wanted) > 1 else 0
        bounds: dict[str, int] = {}

        def header(path: str):
            return self._retrying(budget, f"reading the header of {repo_id}/{path}",
                                  lambda: self._get_header(repo_id, sha, path, files.get(path), budget,
                                                           header_bytes, guessed.get(path), per_shard,
                                                           bounds.get(path)))

        sharded = INDEX_FILE in texts_wanted and len(headers_wanted) > 1
        shortcut = self.pool.submit(self._sharded_headers, repo_id, files, budget) \
            if sharded and revision == "main" and self._sharded_route else None
        futures = [_done(guessed[f]) if f in guessed else self.pool.submit(text, f) for f in texts_wanted]
        # throughput, not latency: a scan reads the index before the shards, which it reads in fewer bytes
        sized = sharded and not self.speculate and (index_size or 0) <= SIZED_INDEX_MAX
        read: dict[str, tuple] = {}  # shard -> (metadata, tensors, header bytes), from the shortcut
        if shortcut is not None or sized:
            try:
                [index_text] = _gather([futures[texts_wanted.index(INDEX_FILE)]], budget, f"reading {repo_id}")
            except Exception:  # noqa: BLE001 - the index's error is raised with the others' below
                index_text = None
            if shortcut is not None:
                [answer] = _gather([shortcut], budget, f"reading {repo_id}")
                if answer and set(answer) == set(from_index(index_text) or ()):
                    read = answer
            if sized and not read:
                bounds = shard_header_bounds(index_text)
        # With the shortcut's headers, the index's shards are all read: what else a listing holds is not the model
        fetch = [] if read else headers_wanted
        futures += [self.pool.submit(header, f) for f in fetch]
        try:
            results = _gather(futures, budget, f"reading {repo_id} from {self.endpoint_url}")
        except _Unreachable as exc:
            raise NetworkError(f"{repo_id}: lost the connection to {self.endpoint_url} ({exc})") from None
        for path, value in zip(texts_wanted, results):
            repo.texts[path] = value
        for path, (meta, tensors, raw) in [*read.items(), *zip(fetch, results[len(texts_wanted):])]:
            repo.safetensors[path] = (meta, tensors)
            repo.raw_headers[path] = raw
        # With an index, only the shards it names are the model (drop e.g. a stray consolidated.safetensors).
        indexed = from_index(repo.texts.get("model.safetensors.index.json"))
        if indexed and all(f in repo.safetensors for f in indexed):
            repo.safetensors = {f: repo.safetensors[f] for f in indexed}
        return repo

    def _sharded_headers(self, repo_id: str, files: dict[str, int | None], budget: Budget) -> dict | None:
        """{shard: (metadata, tensors, header bytes)} for every shard of `main`'s index in one request
        (SHARDED_METADATA_ROUTE), each checked against the commit's listing: the shard is there, and its size is 8
        bytes, a header at least as long as the answer's header without white space and at most MAX_HEADER_BYTES,
        and the data its tensors span. None when the answer cannot be used (any error, any disagreement): the
        caller then reads the shards one by one. The header bytes kept (in the metadata cache, as a read header's
        are) are the JSON text the answer gives each header in: the same tensors as the file's, not its bytes."""
        from huggingface_hub import constants

        endpoint = (self.endpoint or constants.ENDPOINT).rstrip("/")
        url = endpoint + SHARDED_METADATA_ROUTE.format(repo_id=repo_id, filename=quote(INDEX_FILE, safe="/"))
        what = f"the shard headers of {repo_id}"

        def call() -> bytes:
            try:
                return _get(url, self._headers(), budget, what, REPO_HEADERS_CAP)[2]
            except Exception as exc:
                response = getattr(exc, "response", None)
                if _status(exc) in (404, 405, 501) and "X-Error-Code" not in getattr(response, "headers", {}):
                    self._sharded_route = False  # not a Hub answer about this repo: the route is not there
                raise

        try:
            out = {}
            for shard, header, raw in _sharded_answer(self._retrying(budget, what, call)):
                size = files.get(shard)
                if size is None or not isinstance(header, dict):
                    return None
                tensors, metadata = parse_header(header, file=shard, what=f"{repo_id}: {shard}")
                # the spans tile the data from its start (parse_header), so the data ends at their total; what is
                # left of the file is its header, at least the answer's text without its white space
                length = size - 8 - sum(t.nbytes for t in tensors)
                floor = len(raw) - sum(raw.count(c) for c in (b" ", b"\n", b"\t", b"\r"))
                if not floor <= length <= MAX_HEADER_BYTES:
                    return None
                out[shard] = (metadata, tensors, raw)
            return out or None
        except Exception:  # noqa: BLE001 - reading the shards by commit says what is wrong, if anything is
            return None

    def _headers(self) -> dict:
        build_hf_headers, _, _ = _hf_utils()
        return build_hf_headers(token=self.token, library_name="hfvram", library_version=__version__)

    def _url(self, repo_id: str, sha: str, path: str) -> str:
        """The file's resolve URL, as `huggingface_hub.hf_hub_url` makes it for a model repo (its template, the
        revision and path quoted the same way, the endpoint swapped in): calling it would import its
        file_download module (tqdm, asyncio, the local cache: ~40 ms of a cold run) to format one string.
        tests/test_speed_cache.py checks both give the same URL."""
        from huggingface_hub import constants

        url = constants.HUGGINGFACE_CO_URL_TEMPLATE.format(repo_id=repo_id, revision=quote(sha, safe=""),
                                                           filename=quote(path))
        if self.endpoint is not None and url.startswith(constants.ENDPOINT):
            url = self.endpoint + url[len(constants.ENDPOINT):]
        return url

    def _model_info(self, repo_id: str, revision: str, budget: Budget) -> dict:
        from huggingface_hub import constants

        endpoint = (self.endpoint or constants.ENDPOINT).rstrip("/")
        url = f"{endpoint}/api/models/{repo_id}"
        if revision != "main":
            url += f"/revision/{quote(revision, safe='')}"
        what = f"the model info of {repo_id}@{revision}"
        _, _, body, _ = _get(url, self._headers(), budget, what, MODEL_INFO_CAP, params={"blobs": True})
        try:
            info = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedInput(f"{repo_id}: {self.endpoint_url} answered the model info with something that is "
                                 f"not JSON") from None
        if not isinstance(info, dict):
            raise MalformedInput(f"{repo_id}: {self.endpoint_url} answered the model info with a JSON "
                                 f"{type(info).__name__}, not an object")
        return info

    def _get_text(self, repo_id: str, sha: str, path: str, size: int | None, budget: Budget) -> str:
        cap = INDEX_CAP if path.endswith(".index.json") else TEXT_CAP
        what = f"{repo_id}: {path}"
        if size is not None and size > cap:
            raise MalformedInput(f"{what} is {size:,} bytes, above the {cap:,} bytes hfvram reads for it")
        _, _, body, _ = _get(self._url(repo_id, sha, path), self._headers(), budget, what, cap)
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput(f"{what} is not UTF-8 text") from None

    def _get_header(self, repo_id: str, sha: str, path: str, size: int | None, budget: Budget,
                    repo_total: list[int], first_read: bytes | None = None, expected: int = 0,
                    bound: int | None = None):
        """A safetensors header by ranged, capped reads: the first 100 kB, then the rest of the header if it is
        longer (as huggingface_hub's parse_safetensors_file_metadata does). A server that ignores Range and
        answers with the whole file is read only as far as the header goes. Returns (metadata, tensors, the
        header's bytes). `repo_total` is [header bytes of this repo so far, the longest header so far]: once a shard
        of the repo has shown a header longer than the first read, the others' first reads take that length and a
        quarter more (shards of one checkpoint have headers of about one size: 60 of Kimi-K2's 61 are 293-296 kB, so
        they cost one request each instead of two). `first_read`: the first bytes of the file, read already (a guess
        made before the commit was known, `_guess`); `expected`: the header's likely length, from the index's size
        (`_read`), read at once when it passes the first 100 kB; `bound`: the header's most likely length from the
        tensor names the index gives this shard (`shard_header_bounds`), which replaces the first 100 kB."""
        what = f"{repo_id}: {path}"
        url, headers = self._url(repo_id, sha, path), self._headers()
        if first_read is not None:
            body, asked = first_read, FIRST_READ  # (what `_guess` asks for)
        else:
            if bound:
                asked = min(8 + bound, FIRST_READ_MAX)
            else:
                asked = max(FIRST_READ, min(8 + max(expected, repo_total[1] * 5 // 4), FIRST_READ_MAX))
            body, _ = _ranged(url, headers, budget, what, 0, asked)
        n = header_length(body[:8], what)
        if size is not None and 8 + n > size:
            raise MalformedInput(f"{what}: header claims {n:,} bytes but the file has {size:,}")
        with self._lock:
            repo_total[0] += n
            repo_total[1] = max(repo_total[1], n)
            if repo_total[0] > REPO_HEADERS_CAP:
                raise MalformedInput(f"{repo_id}: its safetensors headers add up to more than {REPO_HEADERS_CAP:,} "
                                     f"bytes, the most hfvram reads for one repo")
        if 8 + n <= len(body):
            raw = body[8:8 + n]
        elif len(body) < asked:  # the file ends inside its header
            raw = body[8:]
        else:  # the rest of the header: a Kimi-K2 shard's 296 kB header is read as 100 kB, then 196 kB
            rest, _ = _ranged(url, headers, budget, what, len(body), 8 + n)
            raw = body[8:] + rest
        if len(raw) < n:
            raise MalformedInput(f"{what}: the header was cut short ({len(raw):,} of {n:,} bytes)")
        raw = bytes(raw[:n])
        data_size = None if size is None else size - 8 - n
        tensors, metadata = parse_header(raw, file=path, what=what, data_size=data_size)
        return metadata, tensors, raw

    # -- offline ----------------------------------------------------------------------------------------------
    def _offline(self, repo_id: str, revision: str, reason: str) -> RepoData:
        sha = revision if SHA_RE.match(revision) else self.cache.resolve(repo_id, revision)
        if sha:
            cached = self._cached(repo_id, sha, revision, f"{reason}: answering {repo_id}@{revision} from the "
                                                          f"metadata cache (commit {sha[:12]})")
            if cached is not None:
                return cached
        bundled = snapshot.lookup(repo_id)
        if bundled is not None and revision in ("main", bundled.sha):
            bundled.revision = revision
            bundled.notes.append(f"{reason}: answering {repo_id} from the bundled snapshot "
                                 f"(commit {str(bundled.sha)[:12]})")
            return bundled
        close = snapshot.closest(repo_id)
        hint = f"; closest bundled: {', '.join(close)}" if close else ""
        raise NotAvailableOffline(
            f"{reason}, and {repo_id}@{revision} is neither in the metadata cache nor in the bundled snapshot "
            f"(run once online, or see `hfvram snapshot` for the models that ship with hfvram{hint})"
        )

    # -- errors and retries -------------------------------------------------------------------------------------
    def _retrying(self, budget: Budget, what: str, call: Callable):
        attempt = 0
        while True:
            budget.check(what)
            try:
                return call()
            except HfvramError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as one-line errors
                delay = self._transient_delay(exc, attempt)
                if delay is None or attempt >= self.retries:
                    raise self._translate(exc) from None
                attempt += 1
                self._wait(budget, delay, exc, what, attempt)

    def _wait(self, budget: Budget, delay: float, exc: Exception, what: str, attempt: int) -> None:
        status = _status(exc)
        cause = (f"HTTP 429 rate limit (Retry-After {_retry_after(exc):g} s)" if status == 429 and
                 _retry_after(exc) is not None else f"HTTP {status}" if status else _short(exc)[:80])
        if not budget.take(delay):
            left, remaining = budget.left_to_wait(), max(0.0, budget.remaining())
            by_deadline = remaining <= left  # which bound a wait of `delay` would pass
            room = (f"the {remaining:.1f} s the run's deadline leaves (--deadline)" if by_deadline else
                    f"the {left:.1f} s of waiting --max-wait leaves")
            if status == 429:
                raise RateLimited(f"rate limited by {self.endpoint_url} while {what}: it asks to wait {delay:g} s, "
                                  f"more than {room}")
            if by_deadline and remaining < 1.0:  # the time is spent: say so plainly
                raise Timeout(f"gave up after {budget.seconds:g} s (the run's deadline; --deadline changes it) while "
                              f"{what}: {cause}")
            if by_deadline:
                raise Timeout(f"gave up {what}: {cause}, and a retry in {delay:.1f} s would pass {room}")
            raise self._translate(exc, f" (a retry in {delay:.1f} s would pass {room})")
        if self.notice is not None:
            now = time.monotonic()
            with self._lock:  # one line a second at most: a 429 storm in a scan is a storm of waits
                quiet = now - self._last_notice < 1.0
                if not quiet:
                    self._last_notice = now
            if not quiet:
                self.notice(f"waiting {delay:.1f} s to retry {what} ({cause}; retry {attempt} of {self.retries}, "
                            f"{budget.left_to_wait():.1f} s of --max-wait left)")
        self.sleep(delay)

    def _transient_delay(self, exc: Exception, attempt: int) -> float | None:
        import random  # only a retry needs it (and with it hashlib, bisect): not imported on every run

        status = _status(exc)
        backoff = BACKOFF_S * (2 ** attempt) * (0.75 + 0.5 * random.random())
        if status == 429:
            retry_after = _retry_after(exc)
            return retry_after if retry_after is not None else backoff
        if status is not None and status >= 500:
            return backoff
        if status is None and _is_network(exc) and not _is_unreachable(exc):
            return backoff  # reset connection, read timeout, protocol error
        return None

    def _translate(self, exc: Exception, suffix: str = "") -> Exception:
        from huggingface_hub import errors as hf

        if isinstance(exc, hf.GatedRepoError):
            repo = _repo_from(exc)
            status = _status(exc)
            page = f"https://huggingface.co/{repo}" if repo else "the model page"
            if status == 403:
                return GatedRepo(f"{repo or 'this repo'} is gated and your token is not on its access list: "
                                 f"accept the license on {page}, then retry")
            return GatedRepo(f"{repo or 'this repo'} is gated: set HF_TOKEN or run `hf auth login`, and accept "
                             f"the license on {page}")
        if isinstance(exc, hf.RepositoryNotFoundError):
            repo = _repo_from(exc)
            return RepoNotFound(f"repository {repo or ''} not found on {self.endpoint_url} (or it is private: set "
                                f"HF_TOKEN or run `hf auth login`)".replace("repository  ", "repository "))
        if isinstance(exc, hf.RevisionNotFoundError):
            return RevisionNotFound(f"revision not found: {_server_message(exc)}")
        if isinstance(exc, (hf.EntryNotFoundError,)) or type(exc).__name__ == "RemoteEntryNotFoundError":
            return NothingToRead(f"file not found: {_server_message(exc)}")
        status = _status(exc)
        if status == 429:
            return RateLimited(f"rate limited by {self.endpoint_url} (HTTP 429) after {self.retries} retries"
                               + suffix)
        if status is not None:
            return NetworkError(f"{self.endpoint_url} answered HTTP {status}: {_server_message(exc)}" + suffix)
        if _is_unreachable(exc):
            return _Unreachable(_short(exc))
        if _is_network(exc):
            return NetworkError(f"network error talking to {self.endpoint_url}: {_short(exc)}" + suffix)
        return HfvramError(f"unexpected error reading from {self.endpoint_url}: {type(exc).__name__}: {_short(exc)}")




# -- HTTP: streamed, capped, deadline-bound ----------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _hf_utils():
    """(build_hf_headers, get_session, hf_raise_for_status) from huggingface_hub.utils, looked up once: that module
    resolves names lazily in Python, ~15-20 us a name on every request (~0.7 ms of CPU per model in a scan, timeit)."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    return build_hf_headers, get_session, hf_raise_for_status


def _get(url: str, headers: dict, budget: Budget, what: str, cap: int, *, params: dict | None = None,
         byte_range: tuple[int, int] | None = None, truncate: bool = False):
    """GET through huggingface_hub's client, streaming: (status, headers, body, commit). `commit` is the Hub's
    X-Repo-Commit header, from the first answer that has one (a /resolve/ answer names the commit it resolved; the
    Hub's redirect to its CDN carries it, the CDN's answer does not), None without one. The body stops at `cap` bytes
    (`truncate`) or is refused past it; the run's deadline is checked between chunks, so a server that trickles
    bytes cannot hold the run. Errors go through `hf_raise_for_status` with their body read up to 64 kB."""
    _, get_session, hf_raise_for_status = _hf_utils()
    if byte_range is not None:
        headers = {**headers, "Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"}
    timeout = budget.request_timeout(f"while reading {what}")
    with get_session().stream("GET", url, headers=headers, params=params, timeout=timeout) as response:
        if response.status_code >= 400:
            body = _read_capped(response, ERROR_BODY_CAP, budget, what, truncate=True)
            # the body is decoded already: a copy of the answer without its transfer headers, for the error mapping
            kept = [(k, v) for k, v in response.headers.items()
                    if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
            hf_raise_for_status(type(response)(response.status_code, headers=kept, content=body,
                                               request=response.request))
            raise NetworkError(f"HTTP {response.status_code} reading {what}")  # hf_raise_for_status raised already
        commit = next((r.headers["X-Repo-Commit"] for r in (*response.history, response)
                       if "X-Repo-Commit" in r.headers), None)
        return response.status_code, response.headers, _read_capped(response, cap, budget, what, truncate), commit


def _read_capped(response, cap: int, budget: Budget, what: str, truncate: bool) -> bytes:
    buf = bytearray()
    declared = response.headers.get("Content-Length")
    for chunk in response.iter_bytes():
        budget.check(f"while reading {what} ({len(buf):,} bytes in)")
        room = cap - len(buf)
        if len(chunk) >= room:
            if not truncate and len(chunk) > room:
                raise MalformedInput(f"{what} is larger than {cap:,} bytes, the most hfvram reads for it")
            buf += chunk[:room]
            if truncate and not (len(chunk) == room and declared == str(len(buf))):
                break
            # Exactly the cap, and all the answer said it holds (a Range answer of the length asked): let the
            # stream end, so the connection goes back to the pool (a stream left half read is closed instead:
            # DeepSeek-V3's 163 header reads opened 163 connections).
            continue
        buf += chunk
    return bytes(buf)


_CONTENT_RANGE = lazy(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _ranged(url: str, headers: dict, budget: Budget, what: str, start: int, stop: int) -> tuple[bytes, str | None]:
    """(bytes [start, stop) of a file, the commit the answer names): a 206 must say it holds them (Content-Range); a
    200 (Range ignored) holds the whole file, read only as far as `stop`."""
    status, response_headers, body, commit = _get(url, headers, budget, what, stop, byte_range=(start, stop),
                                                  truncate=True)
    if status == 206:
        m = _CONTENT_RANGE.match(response_headers.get("Content-Range") or "")
        if not m or int(m.group(1)) != start:
            raise MalformedInput(f"{what}: asked for bytes {start}-{stop - 1}, the server answered "
                                 f"{response_headers.get('Content-Range') or 'a partial answer without Content-Range'}")
        return body[:stop - start], commit
    if status != 200:
        raise MalformedInput(f"{what}: unexpected HTTP {status} to a ranged read")
    return body[start:stop], commit


_JSON_SPACE = lazy(r"[ \t\n\r]*")


def _sharded_answer(body: bytes) -> list[tuple[str, object, bytes]]:
    """[(shard, its header as decoded, its header's JSON text as the answer holds it)] from a sharded-metadata
    answer (SHARDED_METADATA_ROUTE): the headers are decoded one by one where the answer has them, so the text each
    came in is kept for the metadata cache without encoding the header again (a json.dumps per header was ~8% of a
    scan's CPU). An answer laid out otherwise is decoded whole and its headers written as compact JSON."""
    text = body.decode("utf-8")
    decode = _JSON_DECODER.raw_decode
    space = _JSON_SPACE.match
    out = []
    try:
        at = text.index('"headers"')
        at = space(text, at + 9).end()
        if text[at] != ":":
            raise ValueError
        at = space(text, at + 1).end()
        if text[at] != "{":
            raise ValueError
        at = space(text, at + 1).end()
        while text[at] != "}":
            shard, at = decode(text, at)
            at = space(text, at).end()
            if text[at] != ":":
                raise ValueError
            start = space(text, at + 1).end()
            header, at = decode(text, start)
            if not isinstance(shard, str):
                raise ValueError
            out.append((shard, header, text[start:at].encode("utf-8")))
            at = space(text, at).end()
            if text[at] == ",":
                at = space(text, at + 1).end()
            elif text[at] != "}":
                raise ValueError
        return out
    except (ValueError, IndexError):  # not laid out as expected ("headers" inside the index, say): decode it whole
        headers = json.loads(text).get("headers")
        return [(shard, header, json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
                for shard, header in headers.items()]


_JSON_DECODER = json.JSONDecoder()


def shard_header_bounds(index_text: str | None) -> dict[str, int]:
    """{shard: the longest its header is likely to be}, from the tensor names an index's weight_map gives each shard
    (SHARD_ENTRY_BYTES); {} for an index that is not one."""
    try:
        weight_map = json.loads(index_text or "").get("weight_map")
    except (ValueError, AttributeError, RecursionError):
        return {}
    if not isinstance(weight_map, dict):
        return {}
    bounds: dict[str, int] = {}
    for name, shard in weight_map.items():
        if isinstance(shard, str):
            bounds[shard] = bounds.get(shard, SHARD_HEADER_SLACK) + len(name) + SHARD_ENTRY_BYTES
    return bounds


# -- what the model info says -----------------------------------------------------------------------------------------

def _listing(info: dict, repo_id: str, endpoint: str) -> tuple[str, dict[str, int | None]]:
    """(commit sha, {file: size}) from a model-info answer. The sha names a cache file and goes into URLs: exactly 40
    lowercase hex digits, or the answer is refused. Sizes must be whole numbers of bytes."""
    sha = info.get("sha")
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        shown = repr(sha)[:60] if sha is not None else "none"
        raise MalformedInput(f"{repo_id}: {endpoint} answered with commit sha {shown}, not 40 hex digits; "
                             f"refusing the answer")
    siblings = info.get("siblings")
    if siblings is None:
        siblings = []
    if not isinstance(siblings, list):
        raise MalformedInput(f"{repo_id}: {endpoint} answered with a file list that is not a list")
    files: dict[str, int | None] = {}
    for entry in siblings:
        name = entry.get("rfilename") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or len(name) > 4096:
            raise MalformedInput(f"{repo_id}: {endpoint} listed a file without a valid name ({repr(entry)[:80]})")
        size = entry.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or
                                 not 0 <= size <= MAX_FILE_SIZE):
            raise MalformedInput(f"{repo_id}: {endpoint} listed {name!r} with size {repr(size)[:40]}, not a whole "
                                 f"number of bytes up to {MAX_FILE_SIZE:,}")
        files[name] = size
    return sha, files


# -- error helpers -----------------------------------------------------------------------------------------------------

def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and seconds == seconds else None


def _server_message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        message = response.headers.get("X-Error-Message")
        if message:
            return " ".join(message.split())[:300]
    return _short(exc)


def _repo_from(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    url = str(getattr(getattr(response, "request", None), "url", "") or "")
    m = re.search(r"/api/models/([^/?]+/[^/?]+)", url) or re.search(r"://[^/]+/([^/?]+/[^/?]+)/resolve/", url)
    return m.group(1) if m else None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _is_network(exc: Exception) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("httpx", "httpcore", "h11", "h2")) and _status(exc) is None


def _is_unreachable(exc: Exception) -> bool:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectError", "ConnectTimeout", "UnsupportedProtocol"})
