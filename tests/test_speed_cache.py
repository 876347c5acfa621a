"""The derived-facts cache (hfvram.introspect.derived): facts read back are the facts derived, byte for byte in the
JSON answer; a warm or `--offline` run imports no transformers and builds no HfApi; a damaged, foreign or stale
entry is never used; what is not a Hub commit is never kept."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfvram.analysis import analyze_facts
from hfvram.introspect import _derive, derived, introspect
from hfvram.options import parse
from hfvram.repodata import load_fixture
from hfvram.sources import snapshot
from hfvram.sources.cache import MetadataCache, encode_facts, frame

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
# A spread of what introspect distinguishes: dense, sharded, .bin only, MLA + MoE, sliding/hybrid, Mamba, Mamba2
# hybrid, linear attention, composite (vision) configs, GPTQ/AWQ/FP8/NF4/MXFP4 quantisation, encoder-decoder,
# encoder-only, params.json.
SAMPLE = [
    "Qwen--Qwen2.5-0.5B-Instruct", "meta-llama--Meta-Llama-3-8B", "tiiuae--falcon-7b-instruct",
    "deepseek-ai--DeepSeek-V2-Lite", "google--gemma-3-4b-it", "google--gemma-2-9b-it", "ai21labs--Jamba-v0.1",
    "nvidia--Nemotron-H-56B-Base-8K", "state-spaces--mamba-130m-hf", "Qwen--Qwen3-Next-80B-A3B-Thinking",
    "meta-llama--Llama-3.2-11B-Vision-Instruct", "TheBloke--Llama-2-13B-chat-GPTQ", "Qwen--Qwen2.5-7B-Instruct-AWQ",
    "Qwen--Qwen3-8B-FP8", "reubk--Molmo_7B_D_0924_NF4", "openai--gpt-oss-20b", "facebook--bart-large-cnn",
    "dslim--bert-large-NER", "microsoft--Phi-3-mini-128k-instruct", "mistralai--Mixtral-8x7B-Instruct-v0.1",
    "Qwen--Qwen2-Audio-7B-Instruct", "google--gemma-4-E2B-it",
]


def fixture_repo(name: str):
    repo, _ = load_fixture(FIXTURES / name)
    repo.source = "hub"
    return repo


def answer(facts) -> str:
    return json.dumps(analyze_facts(facts, parse()).to_dict(), sort_keys=True)


@pytest.mark.parametrize("name", [n for n in SAMPLE if (FIXTURES / n / "repo.json").is_file()])
def test_facts_read_back_give_the_same_answer(name, tmp_path):
    repo = fixture_repo(name)
    repo.notes.append("a note from the source")
    fresh = _derive(repo)
    doc = json.loads(json.dumps(derived.to_json(fresh)))  # as the cache stores it
    back = derived.from_json(doc, repo)
    assert back.arch == fresh.arch and back.weights == fresh.weights and back.quant == fresh.quant
    assert back.notes == fresh.notes and back.notes[0] == "a note from the source"
    assert (back.raw_config, back.text_config, back.dtype) == (fresh.raw_config, fresh.text_config, fresh.dtype)
    assert (back.params_total, back.params_active) == (fresh.params_total, fresh.params_active)
    assert answer(back) == answer(fresh)
    # layers that were one spec object stay one (the per-kind counts hash each distinct spec once)
    assert len({id(layer) for layer in back.arch.layers}) == len(set(fresh.arch.layers))


def test_introspect_keeps_then_reads_back_through_the_metadata_cache(tmp_path, monkeypatch):
    repo = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    store = MetadataCache(tmp_path)
    repo.facts_store = store
    first = introspect(repo)
    entries = list((tmp_path / "facts" / "Qwen--Qwen2.5-0.5B-Instruct").glob("*.json.gz"))
    assert [p.name for p in entries] == [f"{repo.sha}-{derived.store_key(repo)}.json.gz"]

    def no_derive(_repo):
        raise AssertionError("derived again")

    monkeypatch.setattr("hfvram.introspect._derive", no_derive)
    again = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    again.facts_store = store
    assert answer(introspect(again)) == answer(first)


@pytest.mark.parametrize("damage", ["truncated", "checksum", "format", "other-repo", "bad-content", "absurd"])
def test_a_damaged_or_foreign_entry_is_dropped_and_the_facts_derived_again(damage, tmp_path):
    repo = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    store = MetadataCache(tmp_path)
    repo.facts_store = store
    good = introspect(repo)
    path = next((tmp_path / "facts").rglob("*.json.gz"))
    blob = path.read_bytes()
    doc = derived.to_json(good)
    if damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "checksum":
        raw = gzip.decompress(blob)
        path.write_bytes(gzip.compress(raw.replace(b'"params_total":', b'"params_total": ')))
    elif damage == "format":
        path.write_bytes(frame({"id": repo.id, "sha": repo.sha, "key": derived.store_key(repo), "facts": doc}, "hfvram-facts/0"))
    elif damage == "other-repo":
        path.write_bytes(encode_facts(doc, "org/other", repo.sha, derived.store_key(repo)))
    elif damage == "bad-content":  # intact framing, content that is not what introspect makes
        path.write_bytes(encode_facts({**doc, "layers": [99]}, repo.id, repo.sha, derived.store_key(repo)))
    else:  # well-formed, but an answer the validator refuses
        path.write_bytes(encode_facts({**doc, "params_total": -5}, repo.id, repo.sha, derived.store_key(repo)))
    again = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    again.facts_store = store
    assert answer(introspect(again)) == answer(good)
    assert store.dropped == 1
    # derived again and kept again, intact
    assert derived.from_json(store.get_facts(repo.id, repo.sha, derived.store_key(repo)), again).params_total == good.params_total


def test_the_key_names_the_code_and_the_transformers_release_where_its_class_reads_the_config(monkeypatch):
    base = derived.key()
    listed = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")  # a listed type: read without the class
    classed = fixture_repo("Qwen--Qwen2-Audio-7B")
    raw = json.loads(classed.texts["config.json"])
    raw["text_config"]["model_type"] = "qwen2_moe"  # a text section the table has no defaults for
    classed.texts["config.json"] = json.dumps(raw)  # read through Qwen2AudioConfig then: its release counts
    assert derived.store_key(listed) == base
    assert derived.store_key(classed) != base
    classed_key = derived.store_key(classed)
    try:
        derived.key.cache_clear()
        monkeypatch.setattr(derived, "code_digest", lambda: "something else")
        assert derived.key() != base and derived.store_key(listed) == derived.key()
        monkeypatch.undo()
        derived.key.cache_clear()
        monkeypatch.setattr(derived, "transformers_version", lambda: "something else")
        assert derived.key() == base and derived.store_key(listed) == base
        assert derived.store_key(classed) not in (base, classed_key)
        monkeypatch.undo()
    finally:
        derived.key.cache_clear()
    assert derived.key() == base
    import transformers

    assert derived.transformers_version() == transformers.__version__


def test_an_entry_under_another_key_is_never_read(tmp_path, monkeypatch):
    repo = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    store = MetadataCache(tmp_path)
    doc = derived.to_json(_derive(repo))
    store.put_facts(repo.id, repo.sha, "0123456789abcdef", {**doc, "params_total": 1})
    monkeypatch.setattr(derived, "key", lambda: "fedcba9876543210")
    repo.facts_store = store
    assert derived.load(repo) is None


def test_what_is_not_a_hub_commit_is_never_kept(tmp_path):
    repo = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    store = MetadataCache(tmp_path)
    for change in ({"source": "local"}, {"sha": None}, {"sha": "main"}, {"subfolder": "4.0bpw"},
                   {"format": "gguf"}):
        r = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
        for k, v in change.items():
            setattr(r, k, v)
        assert not derived.cacheable(r), change
    repo.source = "local"
    repo.facts_store = store
    introspect(repo)
    assert not (tmp_path / "facts").exists()
    assert derived.cacheable(fixture_repo("Qwen--Qwen2.5-0.5B-Instruct"))


def test_a_disabled_cache_keeps_nothing(tmp_path):
    repo = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct")
    repo.facts_store = MetadataCache(tmp_path, enabled=False)
    introspect(repo)
    assert not (tmp_path / "facts").exists()


def test_bundled_facts_answer_offline_as_derived_facts_would(monkeypatch):
    built_with = json.loads((snapshot.FACTS_DIR / "KEY.json").read_text())["transformers"]
    for rid in ("Qwen/Qwen2.5-0.5B-Instruct", "deepseek-ai/DeepSeek-V2-Lite", "google/gemma-3-4b-it"):
        repo = snapshot.lookup(rid)
        assert repo.bundled_facts is not None and repo.bundled_facts["key"] == derived.key()
        shipped = derived.load(repo)
        assert shipped is not None
        # Derived with the release KEY.json names: what a class-read config gives may move with another release.
        if derived.transformers_release_used(repo) in (None, built_with):
            assert answer(shipped) == answer(_derive(snapshot.lookup(rid)))
    # whatever transformers release is installed, the shipped facts are this release's answer for its models
    monkeypatch.setattr(derived, "transformers_version", lambda: "0.0.0")
    assert derived.transformers_release_used(snapshot.lookup("google/gemma-3-4b-it")) == "0.0.0"
    assert derived.load(snapshot.lookup("google/gemma-3-4b-it")) is not None
    monkeypatch.undo()
    # facts shipped for another commit are not used for this one
    repo = snapshot.lookup("Qwen/Qwen2.5-0.5B-Instruct")
    repo.sha = "f" * 40
    assert derived.load(repo) is None


CHILD = """
import json, sys
from hfvram.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "transformers": "transformers" in sys.modules,
                  "hf_api": "huggingface_hub.hf_api" in sys.modules}), file=sys.stderr)
"""


def child(argv, env) -> tuple[dict, dict]:
    p = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, text=True, cwd=str(ROOT))
    state = json.loads(p.stderr.strip().splitlines()[-1])
    assert state["code"] == 0, p.stderr
    return json.loads(p.stdout), state


def test_warm_and_offline_runs_import_no_transformers_and_answer_as_the_cold_run(fake_hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))}
    env.update(HF_ENDPOINT=fake_hub.url, HFVRAM_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT))
    for rid in ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-8B"):  # single file; sharded with an index
        cold, state = child([rid, "--json"], env)
        assert state["transformers"] is False  # a listed model type: read without the class (test_config_types)
        warm, state = child([rid, "--json"], env)  # within HFVRAM_REVISION_MAX_AGE: no request, and a note says so
        assert state == {"code": 0, "transformers": False, "hf_api": False}
        assert warm["model"]["source"] == "cache"
        assert {**warm, "model": None, "notes": None} == {**cold, "model": None, "notes": None}
        assert warm["notes"][1:] == cold["notes"] and warm["notes"][0].startswith(
            f"main is commit {cold['model']['revision'][:12]} as of ")
        warm, state = child([rid, "--json", "--refresh"], env)  # asks the Hub which commit main is
        assert state == {"code": 0, "transformers": False, "hf_api": False}
        assert warm["model"]["source"] == "cache"
        assert {**warm, "model": None} == {**cold, "model": None}
        offline, state = child([rid, "--json", "--offline"], env)
        assert state["transformers"] is False and state["hf_api"] is False
        assert {**offline, "model": None, "notes": None} == {**cold, "model": None, "notes": None}
    # a bundled model, offline with an empty cache: the snapshot's facts
    env["HFVRAM_CACHE"] = str(tmp_path / "empty")
    bundled, state = child(["google/gemma-2-9b-it", "--json", "--offline"], env)
    assert state["transformers"] is False
    assert bundled["model"]["source"] == "snapshot" and bundled["weights"]["exact"] is True


# -- the cold path's speed-ups read the same ----------------------------------------------------------------------------

def test_header_reads_reuse_connections(fake_hub, tmp_path):
    """A Range answer read to its end goes back to the connection pool: one request at a time, a sharded repo's
    model info, texts and five header reads go over one connection (they each opened one when the stream was left
    half read). By commit, so that the five headers are five reads (on main one request gives them all)."""
    from hfvram.sources.hub import HubSource, limits

    accepted = []
    server = fake_hub._server
    original = server.process_request

    def counting(request, client_address):
        accepted.append(client_address)
        return original(request, client_address)

    server.process_request = counting
    try:
        with limits():
            repo = HubSource(cache=MetadataCache(tmp_path), max_workers=1).fetch(
                "Qwen/Qwen3-8B", fake_hub._get_repo("Qwen/Qwen3-8B").sha)
    finally:
        server.process_request = original
    assert len(repo.safetensors) == 5
    assert fake_hub.count() >= 8  # model info, config, index, five headers
    assert len(accepted) <= 2


def test_a_metadata_entry_keeps_the_headers_as_read_and_reads_back_the_same_tables(fake_hub, tmp_path):
    """The entry stores each safetensors header as the Hub sent it (byte for byte what a ranged read of the file
    gives), and reading it back gives the tables, texts and listing the fetch gave."""
    import urllib.request

    from hfvram.sources.cache import unframe_bytes
    from hfvram.sources.hub import HubSource, limits

    store = MetadataCache(tmp_path)
    with limits():
        repo = HubSource(cache=store).fetch("Qwen/Qwen3-8B")
    assert len(repo.safetensors) == 5 and not repo.raw_headers  # handed to the cache entry, not kept for the run
    from hfvram.sources import cache

    cache.flush()  # the entry is written in a thread of its own
    [path] = list((tmp_path / "meta").rglob("*.json.gz"))
    line, _, rest = unframe_bytes(path.read_bytes()).partition(b"\n")
    doc = json.loads(line)
    assert "safetensors" not in doc and [h[0] for h in doc["headers"]] == list(repo.safetensors)
    assert [t[0] for t in doc["texts"]] == list(repo.texts) and "model.safetensors.index.json" in repo.texts
    shard, n = doc["headers"][0]
    url = f"{fake_hub.url}/Qwen/Qwen3-8B/resolve/{repo.sha}/{shard}"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=0-7"})) as r:
        assert int.from_bytes(r.read(), "little") == n
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": f"bytes=8-{7 + n}"})) as r:
        start = sum(t[1] for t in doc["texts"])
        assert rest[start:start + n] == r.read()
    back = store.get("Qwen/Qwen3-8B", repo.sha)
    assert back.source == "cache" and not back.raw_headers
    assert (back.files, back.texts, back.safetensors) == (repo.files, repo.texts, repo.safetensors)


def test_stored_tables_are_parsed_only_when_asked_for(tmp_path):
    """A warm read with facts kept answers without parsing a header; the tables parse on first use."""
    repo = fixture_repo("deepseek-ai--DeepSeek-V2-Lite")
    repo.sha = "b" * 40
    store = MetadataCache(tmp_path)
    repo.facts_store = store
    store.put(repo, "main")
    fresh = introspect(repo)  # derives, and keeps the facts
    back = store.get(repo.id, repo.sha)
    back.facts_store = store
    assert list(back.safetensors) == list(repo.safetensors) and len(back.safetensors) == len(repo.safetensors)
    warm, cold = (json.loads(answer(f)) for f in (introspect(back), fresh))
    assert warm["model"]["source"] == "cache" and {**warm, "model": None} == {**cold, "model": None}
    assert "parsed=False" in repr(back.safetensors)  # the facts answered: no header was parsed
    first = "model-00001-of-000004.safetensors"
    assert back.safetensors[first] == repo.safetensors[first]
    assert "parsed=True" in repr(back.safetensors)


def test_a_table_read_without_its_header_bytes_is_kept_as_safetensors_would_write_it(tmp_path):
    """A table from elsewhere (no bytes as read: a fixture here) is written as `safetensors` serialises a header,
    and reads back equal; a stored header that does not parse deletes the entry and is a one-line error."""
    from hfvram.errors import MalformedInput
    from hfvram.sources.cache import frame_bytes, unframe_bytes

    repo = fixture_repo("deepseek-ai--DeepSeek-V2-Lite")
    repo.sha = "a" * 40
    assert repo.safetensors and not repo.raw_headers
    store = MetadataCache(tmp_path)
    store.put(repo, "main")
    back = store.get(repo.id, repo.sha)
    assert back.safetensors == repo.safetensors and back.texts == repo.texts
    [path] = list((tmp_path / "meta").rglob("*.json.gz"))
    line, _, rest = unframe_bytes(path.read_bytes()).partition(b"\n")
    at = rest.index(b'"dtype":"') + len(b'"dtype":"')
    path.write_bytes(frame_bytes(line + b"\n" + rest[:at] + b"X" + rest[at + 1:]))  # an unknown dtype, checksum redone
    back = store.get(repo.id, repo.sha)
    with pytest.raises(MalformedInput, match=r"metadata cache entry of deepseek-ai/DeepSeek-V2-Lite .* unknown dtype "
                                             r".*it was deleted: run again") as err:
        dict(back.safetensors)
    assert "\n" not in str(err.value) and store.dropped == 1 and not path.exists()


@pytest.mark.parametrize("name", ["deepseek-ai--DeepSeek-V2-Lite", "meta-llama--Llama-3.2-11B-Vision-Instruct",
                                  "google--gemma-4-E2B-it", "Qwen--Qwen3-Next-80B-A3B-Thinking"])
def test_classification_fast_path_matches_the_rules(name):
    """analyse()'s inline classification and MTP rule give what classify() and layer_index() give, tensor by
    tensor (DeepSeek keeps its MTP block as layer num_hidden_layers; composite models nest their layers)."""
    from collections import Counter

    from hfvram.introspect.arch import layer_index
    from hfvram.introspect.weights import _layer_number, analyse, classify

    repo = fixture_repo(name)
    facts = _derive(repo)
    tensors = facts.tensors
    layers = facts.arch.num_layers
    expected = Counter()
    for t in tensors:
        expected[classify(t.name, layers)] += t.nbytes
        if t.name.startswith(("model.layers.", "layers.", "model.language_model.layers.")):
            assert _layer_number(t.name) == layer_index(t.name), t.name
    assert analyse(tensors, layers, None).component_bytes == dict(expected)
    for odd in ("model.layers.x.h.3.w", "model.layers.7", "layers.12.mlp.w", "model.language_model.layers.3.q",
                "model.layers.\u0663.mlp.w"):
        assert _layer_number(odd) == layer_index(odd), odd


def test_header_fast_path_matches_the_checked_path():
    """Entries of plain JSON values take parse_header's one-pass path; the result is what the entry-by-entry checks
    give, and anything else still gets them (and their messages)."""
    from hfvram import stformat
    from hfvram.errors import MalformedInput

    raw = {"a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
           "b": {"dtype": "F4", "shape": [3], "data_offsets": [12, 14]},
           "c": {"dtype": "U8", "shape": [], "data_offsets": [14, 15]}}
    assert [stformat._plain_entry(v) is not None for v in raw.values()] == [True, True, True]
    tensors, _ = stformat.parse_header(json.dumps(raw).encode(), file="f")
    assert [(t.name, t.shape, t.nbytes) for t in tensors] == [("a", (2, 3), 12), ("b", (3,), 2), ("c", (), 1)]
    for bad, needle in (({"dtype": "BF16", "shape": [2, True], "data_offsets": [0, 4]}, "shape"),
                        ({"dtype": "BF16", "shape": [2, -1], "data_offsets": [0, 4]}, "shape"),
                        ({"dtype": "BF16", "shape": [2], "data_offsets": [0, 5]}, "needs"),
                        ({"dtype": "BF16", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}, "64-bit"),
                        ({"dtype": "Q9", "shape": [2], "data_offsets": [0, 4]}, "unknown dtype"),
                        ({"dtype": "BF16", "shape": [2], "data_offsets": [False, 4]}, "data_offsets")):
        assert stformat._plain_entry(bad) is None
        with pytest.raises(MalformedInput, match=needle):
            stformat.parse_header(json.dumps({"t": bad}).encode(), file="f")


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:9/mirror"])
def test_file_urls_are_the_ones_huggingface_hub_makes(endpoint):
    """HubSource formats resolve URLs itself (hf_hub_url's module costs ~40 ms of imports): the same strings."""
    from huggingface_hub import hf_hub_url

    from hfvram.sources.hub import HubSource

    src = HubSource(endpoint=endpoint)
    sha = "a" * 40
    for repo_id, path in (("Qwen/Qwen3-8B", "model-00001-of-00005.safetensors"),
                          ("org/name", "sub folder/ü#?.gguf"), ("org/name", "Q4_K_M/model-00001-of-00002.gguf")):
        assert src._url(repo_id, sha, path) == hf_hub_url(repo_id, path, revision=sha, endpoint=endpoint)
    assert src._url("org/name", "refs/pr/1", "config.json") == hf_hub_url("org/name", "config.json",
                                                                            revision="refs/pr/1", endpoint=endpoint)


def test_the_collector_pause_nests_and_gives_back_what_it_found():
    import gc
    import threading

    from hfvram.gcpause import paused

    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
        inner_done = threading.Event()

        def other():
            with paused():
                pass
            inner_done.set()

        threading.Thread(target=other).start()
        assert inner_done.wait(10) and not gc.isenabled()  # another thread's pause ending does not end this one
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_an_index_is_decoded_once_and_its_list_is_the_callers():
    from hfvram.sources import select

    text = json.dumps({"weight_map": {"a": "model-00002.safetensors", "b": "model-00001.safetensors"}})
    select._index_files.cache_clear()
    first = select.from_index(text)
    first.append("mine")
    assert select.from_index(text) == ["model-00001.safetensors", "model-00002.safetensors"]
    assert select._index_files.cache_info().misses == 1
    assert select.from_index("not json") is None and select.from_index('{"weight_map": {}}') is None


def test_the_weight_kind_from_the_listing_is_the_kind_weight_files_answers():
    """`weight_kind` (no index decoded) agrees with `weight_files` on every fixture and on hand-made listings."""
    from hfvram.sources.select import weight_files, weight_kind

    kinds = set()
    for meta in sorted(FIXTURES.glob("*/repo.json")):
        repo = fixture_repo(meta.parent.name)
        kind = weight_files(repo.files, repo.texts)[0]
        assert weight_kind(repo.files) == kind, meta.parent.name
        kinds.add(kind)
    assert {"safetensors", "bin"} <= kinds
    for files, kind in (({"pytorch_model-00001-of-00002.bin": 1}, "bin"), ({"original/consolidated.00.pth": 1}, "pth"),
                        ({"config.json": 1, "adapter_model.safetensors": 1}, "none"), ({}, "none")):
        assert weight_kind(files) == weight_files(files, {})[0] == kind


def test_long_headers_are_read_in_as_few_requests_as_their_sizes_allow(fake_hub, tmp_path):
    """A header longer than the first 100 kB read takes a second request for the rest only (a single-file GPTQ
    checkpoint's 132 kB). Once one shard's header has shown that length, the later shards' first reads are sized on
    it (MiniMax-M2.7: 47 shards without an index, one at a time here, so every later read knows the first). With an
    index, the first reads are sized on its bytes per shard: Kimi-K2's 61 headers of 293-296 kB (60 of 61) take one
    request each, all at once. (By commit: on main, a sharded checkpoint's headers come in one request.)"""
    from hfvram.sources import hub as hubmod
    from hfvram.sources.hub import HubSource, limits

    def reads(rid, **kw):
        fake_hub.reset()
        with limits():
            repo = HubSource(cache=MetadataCache(tmp_path / rid.replace("/", "--")), **kw).fetch(
                rid, fake_hub._get_repo(rid).sha)
        ranges: dict[str, list[str]] = {}
        for r in fake_hub.requests(path=r"\.safetensors$"):
            if r.status == 404:
                continue  # the single-file guess made next to the model info
            ranges.setdefault(r.path.rsplit("/", 1)[1], []).append(r.range)
        return repo, ranges

    repo, ranges = reads("Qwen/Qwen2.5-3B-Instruct-GPTQ-Int4")
    n = len(fixture_repo("Qwen--Qwen2.5-3B-Instruct-GPTQ-Int4").header_bytes("model.safetensors")) - 8
    assert n > hubmod.FIRST_READ and list(ranges.values()) == [
        [f"bytes=0-{hubmod.FIRST_READ - 1}", f"bytes={hubmod.FIRST_READ}-{8 + n - 1}"]]  # the rest, not again

    repo, ranges = reads("MiniMaxAI/MiniMax-M2.7", max_workers=1)
    assert "model.safetensors.index.json" not in repo.files and len(ranges) == 47
    twice = [f for f, rs in ranges.items() if len(rs) == 2]
    assert 1 <= len(twice) <= 3 and sum(map(len, ranges.values())) == 47 + len(twice)

    repo, ranges = reads("moonshotai/Kimi-K2-Instruct")
    kimi = fixture_repo("moonshotai--Kimi-K2-Instruct")
    lengths = [len(kimi.header_bytes(f)) - 8 for f in repo.safetensors]
    assert len(lengths) == 61 and sum(n > hubmod.FIRST_READ for n in lengths) == 60 and max(lengths) < 300_000
    assert len(ranges) == 61 and all(len(rs) == 1 for rs in ranges.values())  # one request a shard
    assert fake_hub.count(path="^/api/models/") == 1
    assert sum(t.nbytes for _, ts in repo.safetensors.values() for t in ts) > 1e12  # a trillion-parameter checkpoint


def test_the_parameter_memo_gives_what_the_rules_give_tensor_by_tensor():
    """analyse() memoises logical_params by name pattern, last name part, dtype and shape: on every fixture of up to
    20k tensors (GPTQ, AWQ, FP8, NF4, MXFP4, NVFP4, EXL2 among them) its totals are the rule applied to each
    tensor, and names that differ only in a digit of their last part (`mul1`, a side tensor) stay apart."""
    from collections import Counter

    from hfvram.introspect.weights import _DIGITS, analyse, classify, logical_params
    from hfvram.stformat import Tensor

    checked = 0
    for meta in sorted(FIXTURES.glob("*/repo.json")):
        repo = fixture_repo(meta.parent.name)
        tensors = [t for _, ts in repo.safetensors.values() for t in ts]
        if not tensors or len(tensors) > 20_000:
            continue
        names = {t.name for t in tensors}
        bnb = {n.split(".quant_state.bitsandbytes__")[0] for n in names if ".quant_state.bitsandbytes__" in n}
        shapes = {t.name: t.shape for t in tensors} if any(n.endswith(".q_weight") for n in names) else None
        for bits in (None, 4):
            expected = Counter()
            for t in tensors:
                expected[classify(t.name, 64)] += logical_params(t, names, bits, bnb, shapes)
            got = analyse(tensors, 64, bits)
            assert got.component_params == {k: v for k, v in expected.items() if k in got.component_params} \
                and got.parameters == sum(expected.values()), meta.parent.name
        checked += 1
    assert checked > 100
    side = [Tensor("m.layers.0.mlp.mul1", "F16", (8,), 16), Tensor("m.layers.0.mlp.mul2", "F16", (8,), 16)]
    assert b"mul#" in side[0].name.encode().translate(_DIGITS)
    assert analyse(side, 4, None).parameters == 8  # mul1 is a side tensor (EXL2), mul2 a weight


def test_a_read_waits_for_its_own_repos_write_only_and_a_failed_write_is_quiet(tmp_path, monkeypatch):
    """Entries are written in threads: reading repo A's entry waits for A's write, not for B's still under way (a
    scan reads and writes many at once); a write that fails for any reason leaves no entry and no traceback."""
    import threading

    from hfvram.sources import cache

    store = MetadataCache(tmp_path)
    a, b = fixture_repo("Qwen--Qwen2.5-0.5B-Instruct"), fixture_repo("meta-llama--Meta-Llama-3-8B")
    a.sha, b.sha = "a" * 40, "b" * 40
    release = threading.Event()
    original = MetadataCache._atomic_write

    def slow_for_b(path, data):
        if "meta-llama" in str(path):
            assert release.wait(10)
        return original(path, data)

    monkeypatch.setattr(MetadataCache, "_atomic_write", staticmethod(slow_for_b))
    store.put(b, "main")
    store.put(a, "main")
    assert store.get(a.id, a.sha).texts == a.texts and store.resolve(a.id, "main") == a.sha
    assert list(cache._writes.values()) == [b.id]  # B's write is still under way
    release.set()
    assert store.get(b.id, b.sha).texts == b.texts and not cache._writes

    hooked = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    monkeypatch.setattr(MetadataCache, "_atomic_write", staticmethod(lambda path, data: 1 / 0))
    c = fixture_repo("tiiuae--falcon-7b-instruct")
    c.sha = "c" * 40
    store.put(c, "main")
    cache.flush()
    assert store.get(c.id, c.sha) is None and store.resolve(c.id, "main") is None and hooked == []


def test_the_gguf_conversion_memo_gives_what_the_rules_give_tensor_by_tensor(monkeypatch):
    """gguf_weights converts a block tensor once per (name pattern, shape) and renames it for the other layers, and
    weights_for converts a model once for all the types it is sized at: on every fixture of up to 20k tensors, at
    three types, the result (every tensor, type, byte and note) equals the rules applied tensor by tensor."""
    from hfvram.estimate import gguf

    from hfvram.errors import HfvramError

    def fresh(name):
        try:
            facts = introspect(fixture_repo(name))
        except HfvramError:  # a GGUF or EXL2 repo, or one with nothing to introspect
            return None
        return facts if facts.tensors else None

    names = [m.parent.name for m in sorted(FIXTURES.glob("*/repo.json"))]
    fast = {}
    for name in names:
        facts = fresh(name)
        if facts is None or len(facts.tensors) > 20_000:
            continue
        fast[name] = [gguf.weights_for(facts, t) for t in ("Q4_K_M", "Q8_0", "IQ2_XS")]
        assert facts.__dict__["_gguf"]["conversion"] is not None  # one conversion, kept for the three types
    assert len(fast) > 100

    def one_by_one(hf, shape, memo, **rules):
        return [(gt.name, gt.layer, gt.shape, gt.src_type, gt.stack, gguf._known(gt.name))
                for gt in gguf.gguf_tensors(hf, shape, **rules)]

    monkeypatch.setattr(gguf, "_converted", one_by_one)
    for name, got in fast.items():
        facts = fresh(name)
        want = [gguf.weights_for(facts, t) for t in ("Q4_K_M", "Q8_0", "IQ2_XS")]
        for g, w in zip(got, want):
            assert g == w, (name, g.ftype)


def test_the_command_exits_hard_after_writing_everything(fake_hub, tmp_path):
    """`hfvram` / `python -m hfvram` leave with os._exit once the answer is out (hfvram.cli.entry): the metadata
    cache entries and the facts are whole by then (an offline run answers from them, facts included), the exit
    codes are those of `main` (2 for an error, 1 for a check that fails), and a closed pipe is not an error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))}
    env.update(HF_ENDPOINT=fake_hub.url, HFVRAM_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT))

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "hfvram", *argv], env=env, capture_output=True, text=True,
                              cwd=str(tmp_path), timeout=120)

    cold = run("Qwen/Qwen3-8B", "--json")
    assert cold.returncode == 0 and cold.stderr == "", cold.stderr
    assert json.loads(cold.stdout)["model"]["source"] == "hub"
    facts = list((tmp_path / "cache" / "facts").rglob("*.json.gz"))
    meta = list((tmp_path / "cache" / "meta").rglob("*.json.gz"))
    assert len(facts) == 1 and len(meta) == 1
    offline = run("Qwen/Qwen3-8B", "--json", "--offline")
    assert offline.returncode == 0 and "from the metadata cache" in offline.stderr
    assert {**json.loads(offline.stdout), "model": None, "notes": None} == \
        {**json.loads(cold.stdout), "model": None, "notes": None}
    missing = run("org/does-not-exist", "--offline")
    assert missing.returncode == 2 and missing.stdout == "" and missing.stderr.startswith("hfvram: error: ")
    fails = run("check", "Qwen/Qwen3-8B", "--offline", "--gpu-mem", "4GiB", "-f", "vllm")
    assert fails.returncode == 1 and "FAIL" in fails.stdout
    piped = subprocess.run(f"{sys.executable} -m hfvram Qwen/Qwen3-8B --offline --json | head -c 10", shell=True,
                           env=env, capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert piped.stdout == '{\n  "schem' and "Traceback" not in piped.stderr
