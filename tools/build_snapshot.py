"""Build the bundled snapshot (hfvram/snapshot/<org>--<name>.json.gz) from fixtures/.

Each snapshot file is the metadata hfvram reads from the Hub for that repo: the file listing with sizes, the small
text files it parses (config.json, params.json, quantization side files, index files), the safetensors tensor
tables and the GGUF headers (metadata and tensor infos). An index file a fixture constructs from its tensor tables
(repo.json "constructed": the real one is not known) is listed but its text is not shipped: it names exactly the
shards whose tables are there, which is what hfvram assumes without an index, and for the largest MoE checkpoints
it was most of their snapshot (Kimi-K2's 139,644 tensor names).

Next to them, hfvram/snapshot/facts/<org>--<name>.json.gz: what hfvram.introspect derives from each (architecture,
weight totals, quantisation, notes), and facts/KEY.json, the key of the code that derived them
(hfvram.introspect.derived), so that `--offline` on a bundled model needs no transformers import. `tests/test_snapshot.py` checks both match the
fixtures and the code, so they cannot drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hfvram.repodata import TEXT_FILES, RepoData, load_fixture  # noqa: E402

OUT = ROOT / "hfvram" / "snapshot"
FACTS = OUT / "facts"


def snapshot_of(fixture_dir: Path) -> RepoData:
    repo, meta = load_fixture(fixture_dir)
    constructed = set(meta.get("constructed") or ())
    return RepoData(id=repo.id, sha=repo.sha, source="snapshot", files=repo.files,
                    texts={k: v for k, v in repo.texts.items() if k in TEXT_FILES and k not in constructed},
                    safetensors=repo.safetensors, gguf=repo.gguf)


def facts_of(repo: RepoData) -> bytes | None:
    """The derived facts of a bundled model as shipped (gzip JSON {"sha", "facts"}), or None when it has none to keep
    (a GGUF repo: its facts come from the header of the file chosen at run time). The key of the code that derived
    them is in the one manifest (`manifest()`), so an edit that changes no facts changes no model's file."""
    import gzip
    import json

    from hfvram.errors import HfvramError
    from hfvram.introspect import _derive, derived

    if repo.gguf or not derived.cacheable(repo):
        return None
    try:
        facts = _derive(repo)
    except HfvramError:
        return None
    doc = {"sha": repo.sha, "facts": derived.to_json(facts)}
    return gzip.compress(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(), mtime=0)


def manifest() -> bytes:
    """hfvram/snapshot/facts/KEY.json: the key the facts were derived under, and what it is made of."""
    import json

    from hfvram.introspect import derived

    doc = {"key": derived.key(), "code": derived.code_digest(), "transformers": derived.transformers_version(),
           "format": derived.FORMAT}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def fixture_dirs() -> list[Path]:
    return sorted(p for p in (ROOT / "fixtures").iterdir() if (p / "repo.json").is_file())


def _write(path: Path, blob: bytes) -> None:
    if not path.exists() or path.read_bytes() != blob:
        path.write_bytes(blob)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    FACTS.mkdir(parents=True, exist_ok=True)
    wanted, wanted_facts = set(), set()
    total = total_facts = 0
    for directory in fixture_dirs():
        repo = snapshot_of(directory)
        blob = repo.dumps()
        name = f"{directory.name}.json.gz"
        wanted.add(name)
        _write(OUT / name, blob)
        total += len(blob)
        facts = facts_of(repo)
        if facts is not None:
            wanted_facts.add(name)
            _write(FACTS / name, facts)
            total_facts += len(facts)
    _write(FACTS / "KEY.json", manifest())
    for folder, keep in ((OUT, wanted), (FACTS, wanted_facts)):
        for stale in folder.glob("*.json.gz"):
            if stale.name not in keep:
                stale.unlink()
    print(f"{len(wanted)} models, {total / 1e6:.2f} MB in {OUT.relative_to(ROOT)}; derived facts of "
          f"{len(wanted_facts)}, {total_facts / 1e6:.2f} MB in {FACTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
