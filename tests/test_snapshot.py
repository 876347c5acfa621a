"""The bundled snapshot is exactly what tools/build_snapshot.py makes of fixtures/, and stays small."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_builder():
    spec = importlib.util.spec_from_file_location("build_snapshot", ROOT / "tools" / "build_snapshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_snapshot_matches_fixtures():
    builder = load_builder()
    dirs = builder.fixture_dirs()
    shipped = {p.name for p in builder.OUT.glob("*.json.gz")}
    assert shipped == {f"{d.name}.json.gz" for d in dirs}, "run `make snapshot`"
    for directory in dirs:
        assert (builder.OUT / f"{directory.name}.json.gz").read_bytes() == builder.snapshot_of(directory).dumps(), \
            f"{directory.name}: snapshot out of date, run `make snapshot`"


def test_snapshot_is_small():
    total = sum(p.stat().st_size for p in (ROOT / "hfvram" / "snapshot").glob("*.json.gz"))
    assert total < 10 * 1024 * 1024
