"""Reading a repo's metadata from the Hugging Face Hub, through `huggingface_hub`.

Round trips (cold): 1. `model_info(files_metadata=True)` resolves the revision to a commit sha and lists every file
with its size; 2. in parallel, the small text files (config.json, params.json, quantization side files, index
files) and the first 100 kB of every candidate safetensors file (`parse_safetensors_file_metadata`, which asks
for the rest of a header in a third round only when it is larger). Warm: the one `model_info` call, then the
metadata cache by commit sha. A 40-hex revision already in the cache: no request. `--offline` / HF_HUB_OFFLINE:
no request (cache, then the bundled snapshot).

`HF_ENDPOINT`, `HF_TOKEN`, `hf auth login` and `HF_HUB_OFFLINE` work as they do for every huggingface_hub user.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .. import __version__
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
)
from ..repodata import TEXT_FILES, RepoData
from ..stformat import DTYPE_BITS, Tensor, dtype_nbytes
from . import snapshot
from .cache import MetadataCache
from .select import from_index, headers_to_read

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# huggingface_hub's own defaults: HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT = 10 s (constants.py).
TIMEOUT_S = float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") or 10)
# Transient failures (429, 5xx, resets, read timeouts) are retried this many times with exponential backoff
# (0.5 s doubling, jittered), and a 429's Retry-After is honoured up to MAX_RETRY_AFTER_S.
RETRIES = 4
BACKOFF_S = 0.5
MAX_RETRY_AFTER_S = 60.0


def offline_env() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


class _Unreachable(Exception):
    """The Hub could not be reached at all (DNS, refused connection, offline mode)."""


class HubSource:
    def __init__(
        self,
        token: str | bool | None = None,
        endpoint: str | None = None,
        cache: MetadataCache | None = None,
        max_workers: int = 64,  # requests in flight per source, shared by a scan's models (a bound, not tuned)
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.token = token
        self.endpoint = endpoint
        self.cache = cache if cache is not None else MetadataCache()
        self.max_workers = max_workers
        self.retries = retries
        self.sleep = sleep
        self._api = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- public -----------------------------------------------------------------------------------------------
    def fetch(self, repo_id: str, revision: str | None = None, offline: bool = False) -> RepoData:
        revision = revision or "main"
        if offline or offline_env():
            return self._offline(repo_id, revision, "offline mode")
        if SHA_RE.match(revision):
            cached = self.cache.get(repo_id, revision)
            if cached is not None:
                cached.revision = revision
                return cached
        try:
            info = self._retrying(lambda: self.api.model_info(
                repo_id, revision=None if revision == "main" else revision, files_metadata=True,
                timeout=TIMEOUT_S))
        except _Unreachable as exc:
            return self._offline(repo_id, revision, f"cannot reach {self.endpoint_url} ({exc})")
        sha = info.sha
        if not sha:
            raise MalformedInput(f"{repo_id}: the Hub answered without a commit sha")
        cached = self.cache.get(repo_id, sha)
        if cached is not None:
            self.cache.put_ref(repo_id, revision, sha)
            cached.revision = revision
            return cached
        files = {s.rfilename: s.size for s in (info.siblings or [])}
        repo = self._read(repo_id, sha, files)
        repo.revision = revision
        self.cache.put(repo, revision)
        return repo

    def list_models(self, search=None, author=None, sort=None, limit=None) -> list[str]:
        """Repo ids of a Hub listing (`list_models`), with the same retries and one-line errors."""
        def call():
            return [m.id for m in self.api.list_models(search=search, author=author, sort=sort, limit=limit)]

        try:
            return self._retrying(call)
        except _Unreachable as exc:
            raise NetworkError(f"cannot reach {self.endpoint_url} to list models ({exc})") from None

    @property
    def endpoint_url(self) -> str:
        if self.endpoint:
            return self.endpoint
        from huggingface_hub import constants

        return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")

    @property
    def pool(self) -> ThreadPoolExecutor:
        """One pool of request threads for every model this source reads: a scan of many models keeps at most
        max_workers requests in flight (and reuses connections) instead of a pool per model."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="hfvram-fetch")
        return self._pool

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi(endpoint=self.endpoint, token=self.token, library_name="hfvram",
                              library_version=__version__)
        return self._api

    # -- reading ----------------------------------------------------------------------------------------------
    def _read(self, repo_id: str, sha: str, files: dict[str, int | None]) -> RepoData:
        texts_wanted = [f for f in TEXT_FILES if f in files]
        headers_wanted = headers_to_read(files)
        if not texts_wanted and not headers_wanted and not any(
                f.lower().endswith(".gguf") or f.endswith("/config.json") for f in files):  # GGUF, or per-folder models
            raise NothingToRead(
                f"{repo_id} has no config.json, params.json or safetensors weights to read (files: "
                f"{', '.join(sorted(files)[:8]) or 'none'}{', ...' if len(files) > 8 else ''})"
            )
        jobs: list[tuple[str, str]] = [("text", f) for f in texts_wanted] + [("header", f) for f in headers_wanted]
        repo = RepoData(id=repo_id, sha=sha, source="hub", files=dict(files))

        def run(job: tuple[str, str]):
            kind, path = job
            if kind == "text":
                return kind, path, self._retrying(lambda: self._get_text(repo_id, sha, path))
            return kind, path, self._retrying(lambda: self._get_header(repo_id, sha, path))

        try:
            results = list(self.pool.map(run, jobs))
        except _Unreachable as exc:
            raise NetworkError(f"{repo_id}: lost the connection to {self.endpoint_url} ({exc})") from None
        for kind, path, value in results:
            if kind == "text":
                repo.texts[path] = value
            else:
                repo.safetensors[path] = value
        # With an index, only the shards it names are the model (drop e.g. a stray consolidated.safetensors).
        indexed = from_index(repo.texts.get("model.safetensors.index.json"))
        if indexed and all(f in repo.safetensors for f in indexed):
            repo.safetensors = {f: repo.safetensors[f] for f in indexed}
        return repo

    def _get_text(self, repo_id: str, sha: str, path: str) -> str:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(repo_id, path, revision=sha, endpoint=self.endpoint)
        headers = build_hf_headers(token=self.token, library_name="hfvram", library_version=__version__)
        response = get_session().get(url, headers=headers, timeout=TIMEOUT_S)
        hf_raise_for_status(response)
        try:
            return response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput(f"{repo_id}: {path} is not UTF-8 text") from None

    def _get_header(self, repo_id: str, sha: str, path: str) -> tuple[dict, list[Tensor]]:
        meta = self.api.parse_safetensors_file_metadata(repo_id, path, revision=sha, timeout=TIMEOUT_S)
        tensors = []
        for name, info in meta.tensors.items():
            if info.dtype not in DTYPE_BITS:
                raise MalformedInput(f"{repo_id}: {path}: tensor {name!r} has unknown dtype {info.dtype!r}")
            begin, end = info.data_offsets
            nbytes = end - begin
            if nbytes != dtype_nbytes(info.dtype, info.shape):
                raise MalformedInput(
                    f"{repo_id}: {path}: tensor {name!r} spans {nbytes} bytes but {info.dtype}{list(info.shape)} "
                    f"needs {dtype_nbytes(info.dtype, info.shape)}"
                )
            tensors.append((begin, Tensor(name, info.dtype, tuple(info.shape), nbytes, path)))
        tensors.sort(key=lambda t: t[0])
        return dict(meta.metadata or {}), [t for _, t in tensors]

    # -- offline ----------------------------------------------------------------------------------------------
    def _offline(self, repo_id: str, revision: str, reason: str) -> RepoData:
        sha = revision if SHA_RE.match(revision) else self.cache.resolve(repo_id, revision)
        if sha:
            cached = self.cache.get(repo_id, sha)
            if cached is not None:
                cached.revision = revision
                cached.notes.append(f"{reason}: answering {repo_id}@{revision} from the metadata cache "
                                    f"(commit {sha[:12]})")
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
    def _retrying(self, call: Callable):
        attempt = 0
        while True:
            try:
                return call()
            except HfvramError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as one-line errors
                delay = self._transient_delay(exc, attempt)
                if delay is None or attempt >= self.retries:
                    raise self._translate(exc) from None
                attempt += 1
                self.sleep(delay)

    def _transient_delay(self, exc: Exception, attempt: int) -> float | None:
        status = _status(exc)
        backoff = BACKOFF_S * (2 ** attempt) * (0.75 + 0.5 * random.random())
        if status == 429:
            retry_after = _retry_after(exc)
            return min(MAX_RETRY_AFTER_S, retry_after) if retry_after is not None else backoff
        if status is not None and status >= 500:
            return backoff
        if status is None and _is_network(exc) and not _is_unreachable(exc):
            return backoff  # reset connection, read timeout, protocol error
        return None

    def _translate(self, exc: Exception) -> Exception:
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
        if isinstance(exc, hf.SafetensorsParsingError):
            return MalformedInput(str(exc).split(" Please make sure")[0])
        status = _status(exc)
        if status == 429:
            return RateLimited(f"rate limited by {self.endpoint_url} (HTTP 429) after {self.retries} retries")
        if status is not None:
            return NetworkError(f"{self.endpoint_url} answered HTTP {status}: {_server_message(exc)}")
        if _is_unreachable(exc):
            return _Unreachable(_short(exc))
        if _is_network(exc):
            return NetworkError(f"network error talking to {self.endpoint_url}: {_short(exc)}")
        return HfvramError(f"unexpected error reading from {self.endpoint_url}: {type(exc).__name__}: {_short(exc)}")


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _server_message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        message = response.headers.get("X-Error-Message")
        if message:
            return message
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
