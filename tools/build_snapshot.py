"""Build the bundled snapshot (hfvram/snapshot/<org>--<name>.json.gz) from fixtures/.

Each snapshot file is the metadata hfvram reads from the Hub for that repo: the file listing with sizes, the small
text files it parses (config.json, params.json, quantization side files, index files), the safetensors tensor
tables and the GGUF headers (metadata and tensor infos). `tests/test_snapshot.py` checks the snapshot matches the fixtures, so the two cannot drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hfvram.repodata import TEXT_FILES, RepoData, load_fixture  # noqa: E402

OUT = ROOT / "hfvram" / "snapshot"


def snapshot_of(fixture_dir: Path) -> RepoData:
    repo, _ = load_fixture(fixture_dir)
    return RepoData(id=repo.id, sha=repo.sha, source="snapshot", files=repo.files,
                    texts={k: v for k, v in repo.texts.items() if k in TEXT_FILES},
                    safetensors=repo.safetensors, gguf=repo.gguf)


def fixture_dirs() -> list[Path]:
    return sorted(p for p in (ROOT / "fixtures").iterdir() if (p / "repo.json").is_file())


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = set()
    total = 0
    for directory in fixture_dirs():
        blob = snapshot_of(directory).dumps()
        path = OUT / f"{directory.name}.json.gz"
        wanted.add(path.name)
        if not path.exists() or path.read_bytes() != blob:
            path.write_bytes(blob)
        total += len(blob)
    for stale in OUT.glob("*.json.gz"):
        if stale.name not in wanted:
            stale.unlink()
    print(f"{len(wanted)} models, {total / 1e6:.2f} MB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
