"""Metadata cache: what we read of a repo, keyed by (repo, commit sha), in the user cache directory.

Layout under `$HFVRAM_CACHE` (default `$XDG_CACHE_HOME/hfvram`, else `~/.cache/hfvram`):
    refs/<org>--<name>/<quoted revision>     the commit sha that revision resolved to last time
    meta/<org>--<name>/<sha>.json.gz         the RepoData read at that commit (config texts, file sizes,
                                             safetensors tensor tables; never a token)
A commit's content never changes, so an entry never expires; refs are rewritten on every online resolution.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from ..repodata import RepoData


def default_dir() -> Path:
    if os.environ.get("HFVRAM_CACHE"):
        return Path(os.environ["HFVRAM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hfvram"


def _slug(repo_id: str) -> str:
    return repo_id.replace("/", "--")


class MetadataCache:
    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = Path(root) if root else default_dir()
        self.enabled = enabled

    def _meta_path(self, repo_id: str, sha: str) -> Path:
        return self.root / "meta" / _slug(repo_id) / f"{sha}.json.gz"

    def _ref_path(self, repo_id: str, revision: str) -> Path:
        return self.root / "refs" / _slug(repo_id) / quote(revision, safe="")

    def get(self, repo_id: str, sha: str) -> RepoData | None:
        if not self.enabled:
            return None
        path = self._meta_path(repo_id, sha)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        try:
            repo = RepoData.loads(blob, source="cache")
        except Exception:
            return None  # a damaged entry is a miss, never an error
        repo.sha = sha
        return repo

    def resolve(self, repo_id: str, revision: str) -> str | None:
        if not self.enabled:
            return None
        try:
            sha = self._ref_path(repo_id, revision).read_text().strip()
        except OSError:
            return None
        return sha or None

    def put(self, repo: RepoData, revision: str) -> None:
        if not self.enabled or not repo.sha:
            return
        try:
            self._atomic_write(self._meta_path(repo.id, repo.sha), repo.dumps())
            self._atomic_write(self._ref_path(repo.id, revision), repo.sha.encode())
        except OSError:
            pass  # a read-only or full cache directory must not fail the run

    def put_ref(self, repo_id: str, revision: str, sha: str) -> None:
        if self.enabled:
            try:
                self._atomic_write(self._ref_path(repo_id, revision), sha.encode())
            except OSError:
                pass

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
