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



def test_snapshot_facts_match_the_code_that_derives_them():
    """The facts shipped for the bundled models (hfvram/snapshot/facts/) are what this code derives, under this
    code's key: an edit to the introspector (or the modules it uses) needs `make snapshot`, or `--offline` on a
    bundled model derives them again (correct, but with transformers imported). Built with another transformers
    release than the one installed, they are not used (their key differs) and only the code is checked."""
    import gzip
    import json

    from hfvram.introspect import derived

    builder = load_builder()
    key = json.loads((builder.FACTS / "KEY.json").read_text())
    assert key["code"] == derived.code_digest(), "the introspector changed since the facts were derived: `make snapshot`"
    same_transformers = key["transformers"] == derived.transformers_version()
    if same_transformers:
        assert (builder.FACTS / "KEY.json").read_bytes() == builder.manifest()
    shipped = {p.name for p in builder.FACTS.glob("*.json.gz")}
    expected = set()
    for directory in builder.fixture_dirs():
        blob = builder.facts_of(builder.snapshot_of(directory))
        if blob is None:
            continue
        name = f"{directory.name}.json.gz"
        expected.add(name)
        assert name in shipped, "run `make snapshot`"
        if same_transformers:
            assert (builder.FACTS / name).read_bytes() == blob, f"{directory.name}: facts out of date, run `make snapshot`"
        assert json.loads(gzip.decompress((builder.FACTS / name).read_bytes()))["sha"] == \
            json.loads(gzip.decompress(blob))["sha"]
    assert shipped == expected, "run `make snapshot`"
    # GGUF-only repos ship none (their facts come from the header of the file chosen at run time); the others do
    assert 150 <= len(shipped) < len(builder.fixture_dirs())
