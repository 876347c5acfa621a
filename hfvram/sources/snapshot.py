"""The bundled snapshot: metadata (config + tensor tables) of every fixture model, shipped in the package, so the
common models answer with no network. Built from `fixtures/` by `tools/build_snapshot.py`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..repodata import RepoData

SNAPSHOT_DIR = Path(__file__).resolve().parent.parent / "snapshot"
FACTS_DIR = SNAPSHOT_DIR / "facts"


@lru_cache(maxsize=1)
def _index() -> dict[str, Path]:
    index = {}
    if SNAPSHOT_DIR.is_dir():
        for path in SNAPSHOT_DIR.glob("*.json.gz"):
            repo_id = path.name[: -len(".json.gz")].replace("--", "/", 1)
            index[repo_id.lower()] = path
    return index


def ids() -> list[str]:
    return sorted(p.name[: -len(".json.gz")].replace("--", "/", 1) for p in _index().values())


def lookup(repo_id: str) -> RepoData | None:
    path = _index().get(repo_id.lower())
    if path is None:
        return None
    repo = RepoData.loads(path.read_bytes(), source="snapshot")
    repo.bundled_facts = facts(path)
    return repo


def facts(path: Path) -> dict | None:
    """The facts tools/build_snapshot.py derived from a bundled model, as {"key", "sha", "facts"} (see
    hfvram.introspect.derived), or None (none shipped, or unreadable: they are then derived as for any repo)."""
    import gzip
    import json

    key = _facts_key()
    if key is None:
        return None
    try:
        doc = json.loads(gzip.decompress((FACTS_DIR / path.name).read_bytes()))
    except (OSError, ValueError, EOFError):
        return None
    return {**doc, "key": key} if isinstance(doc, dict) else None


@lru_cache(maxsize=1)
def _facts_key() -> str | None:
    """The key the shipped facts were derived under (facts/KEY.json)."""
    import json

    try:
        key = json.loads((FACTS_DIR / "KEY.json").read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def closest(repo_id: str, n: int = 3) -> list[str]:
    """Bundled ids that look like `repo_id` (for the error when it is not bundled): by name, then by whole id."""
    import difflib

    all_ids = ids()
    names = {i.split("/")[-1].lower(): i for i in all_ids}
    wanted = repo_id.split("/")[-1].lower()
    hits = [names[k] for k in difflib.get_close_matches(wanted, list(names), n=n, cutoff=0.6)]
    hits += [i for i in difflib.get_close_matches(repo_id, all_ids, n=n, cutoff=0.6) if i not in hits]
    return hits[:n]
