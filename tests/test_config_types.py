"""Configs read without importing transformers (hfvram/data/config_types.json, tools/config_types.py) give exactly
the facts the transformers classes give, fixture by fixture; a config that leaves a class default unstated is read
through the class."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfvram.introspect import _derive
from hfvram.introspect import config as cfg
from hfvram.repodata import load_fixture

ROOT = Path(__file__).resolve().parent.parent
TABLE = json.loads((ROOT / "hfvram" / "data" / "config_types.json").read_text())


def facts_of(repo, through_transformers: bool):
    cfg.FAST_PATH_OFF = through_transformers
    try:
        f = _derive(repo)
    finally:
        cfg.FAST_PATH_OFF = False
    return {"arch": dataclasses.asdict(f.arch), "weights": dataclasses.asdict(f.weights),
            "params": (f.params_total, f.params_active), "dtype": f.dtype, "notes": f.notes}


def listed_fixtures():
    for d in sorted((ROOT / "fixtures").iterdir()):
        if (d / "config.json").exists() and (d / "repo.json").exists():
            mt = json.loads((d / "config.json").read_text()).get("model_type")
            if mt in TABLE["types"]:
                yield d


def test_the_table_names_the_common_model_types():
    types = TABLE["types"]
    common = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "phi3", "gpt_oss", "deepseek_v2",
              "deepseek_v3", "gemma", "gemma2", "gemma3", "gpt2", "bert", "mamba", "falcon", "llama4", "bloom", "lfm2"}
    assert common <= set(types)
    # composites whose class builds the text sub-config by its model type read it with that type's defaults
    assert {t: types[t]["text_type"] for t in ("fuyu", "qwen2_audio", "mistral3")} == \
        {"fuyu": "persimmon", "qwen2_audio": "qwen2", "mistral3": "mistral"}
    # the original LLaVA repos' flat JSON is not what LlavaConfig reads (read raw instead: see below)
    assert "llava" not in types and "llava" in TABLE["flat_ignored_types"]
    # Gemma-2 configs give no layer_types: the class alternates sliding and full layers, and so does the raw reading
    assert "layer_types" not in json.loads((ROOT / "fixtures" / "google--gemma-2-9b-it" / "config.json").read_text())
    assert ["head_dim"] in types["qwen3"]["required"] and ["max_position_embeddings"] in types["llama"]["required"]
    # a key the class's attribute_map renames counts under either name (Qwen3-MoE configs say num_experts)
    assert ["num_experts", "num_local_experts"] in types["qwen3_moe"]["required"]


def test_every_listed_fixture_reads_the_same_both_ways():
    dirs = list(listed_fixtures())
    assert len(dirs) >= 120
    fast = 0
    for d in dirs:
        repo = load_fixture(d)[0]
        raw = json.loads(repo.texts["config.json"])
        fast += cfg.reads_without_transformers(raw)
        assert facts_of(repo, False) == facts_of(repo, True), repo.id
    assert fast >= 120


def test_an_unstated_class_default_is_the_classs_default(monkeypatch):
    """A config that leaves out a key the class has a default for takes the default the table holds, which is the
    class's (read through transformers to compare); with another transformers release installed, whose default may
    differ, it is read through the class."""
    from hfvram.introspect import derived

    repo = load_fixture(ROOT / "fixtures" / "Qwen--Qwen3-8B")[0]
    raw = json.loads(repo.texts["config.json"])
    assert cfg.reads_without_transformers(raw)
    del raw["head_dim"]  # Qwen3Config's default is 128, not hidden_size / heads (4096 / 32 = 128 here too)
    raw["hidden_size"] = 5120
    assert TABLE["types"]["qwen3"]["defaults"]["head_dim"] == 128
    assert cfg.reads_without_transformers(raw)
    top, text, reader = cfg.load(raw)
    assert reader == "transformers" and top.obj is None and text.int("head_dim") == 128  # not 5120 / 32 = 160
    assert "head_dim" not in raw  # the config itself is left as it was
    cfg.FAST_PATH_OFF = True
    try:
        assert cfg.load(raw)[1].int("head_dim") == 128  # what the class says
    finally:
        cfg.FAST_PATH_OFF = False
    monkeypatch.setattr(derived, "transformers_version", lambda: "4.0.0")
    assert not cfg.reads_without_transformers(raw)
    top, text, reader = cfg.load(raw)
    assert reader == "transformers" and top.obj is not None and text.int("head_dim") == 128
    raw["head_dim"] = 128
    assert cfg.reads_without_transformers(raw)  # every key stated: any release reads it so
    raw.pop("model_type")
    assert not cfg.reads_without_transformers(raw)
    moe = json.loads(load_fixture(ROOT / "fixtures" / "Qwen--Qwen3-30B-A3B")[0].texts["config.json"])
    assert cfg.reads_without_transformers(moe)
    moe["num_local_experts"] = moe.pop("num_experts")  # the class's own name for it states it as well
    assert cfg.reads_without_transformers(moe)
    del moe["num_local_experts"]
    assert not cfg.reads_without_transformers(moe)


def test_a_composites_text_section_takes_the_defaults_of_the_class_its_model_type_names():
    """Qwen2AudioConfig builds text_config as the class its model_type names (Qwen2Config), from the dict alone:
    Qwen2-Audio-7B's text_config states no layer count, width or heads, and Qwen2Config's defaults (32 layers,
    4096 wide, 32 heads, 32 KV heads) are the model's. Read without transformers, the same defaults come from the
    table's text_types; a text section of a type the table has no defaults for is read through the class."""
    raw = json.loads((ROOT / "fixtures" / "Qwen--Qwen2-Audio-7B" / "config.json").read_text())
    assert "num_hidden_layers" not in raw["text_config"] and cfg.reader(raw) == "listed"
    _, text, how = cfg.load(raw)
    assert how == "transformers" and text.obj is None
    assert (text.int("num_hidden_layers"), text.int("hidden_size"), text.int("num_key_value_heads"),
            text.int("intermediate_size"), text.int("vocab_size")) == (32, 4096, 32, 11008, 156032)
    cfg.FAST_PATH_OFF = True
    try:
        _, slow, _ = cfg.load(raw)
    finally:
        cfg.FAST_PATH_OFF = False
    assert slow.obj is not None and (slow.int("num_hidden_layers"), slow.int("num_key_value_heads")) == (32, 32)
    raw["text_config"]["model_type"] = "persimmon_like_but_not_listed"
    assert not cfg.reads_without_transformers(raw)


def test_a_flat_llava_json_is_read_as_it_states_without_transformers():
    """liuhaotian/llava-v1.5-7b keeps the Llama keys at the top level; LlavaConfig builds its text config from
    LlamaConfig's defaults instead (max_position_embeddings 2048 where the JSON says 4096: the class path used to
    give 2048, its layer and width checks passing because 4096 and 32 are LlamaConfig's defaults too). The JSON's
    own values are read, with or without transformers, and without importing it."""
    raw = json.loads((ROOT / "fixtures" / "liuhaotian--llava-v1.5-7b" / "config.json").read_text())
    assert cfg.reader(raw) == "raw"
    assert cfg.load(raw)[1].int("max_position_embeddings") == 4096
    cfg.FAST_PATH_OFF = True
    try:
        assert cfg.reader(raw) == "class"
        top, text, how = cfg.load(raw)
    finally:
        cfg.FAST_PATH_OFF = False
    assert how == "raw" and text.int("max_position_embeddings") == 4096
    repo = load_fixture(ROOT / "fixtures" / "liuhaotian--llava-v1.5-7b")[0]
    assert facts_of(repo, False) == facts_of(repo, True)
    assert facts_of(repo, False)["arch"]["max_context"] == 4096
    nested = {**raw, "text_config": {"model_type": "llama", "num_hidden_layers": 32}}
    assert cfg.reader(nested) == "class"  # a LLaVA JSON with its own text_config: the class reads it


def test_a_type_listed_without_defaults_reads_an_incomplete_config_through_the_class(monkeypatch):
    """tools/config_types.py lists a type without its defaults when a fixture that leaves keys out reads otherwise
    with them: such a config is then read through the class. With them (Llama's, today), it is not, and reads the
    same: LlamaConfig's max_position_embeddings 2048."""
    import copy

    raw = json.loads(load_fixture(ROOT / "fixtures" / "meta-llama--Meta-Llama-3-8B")[0].texts["config.json"])
    assert cfg.reads_without_transformers(raw)
    del raw["max_position_embeddings"]
    assert cfg.reads_without_transformers(raw)
    assert TABLE["types"]["llama"]["defaults"]["max_position_embeddings"] == 2048
    top, _, _ = cfg.load(raw)
    assert top.obj is None and top.int("max_position_embeddings") == 2048
    table = copy.deepcopy(cfg._table())
    table["types"]["llama"]["defaults"] = {}
    monkeypatch.setattr(cfg, "_TYPES", table)
    assert not cfg.reads_without_transformers(raw)
    top, _, _ = cfg.load(raw)
    assert top.obj is not None and top.int("max_position_embeddings") == 2048  # LlamaConfig's default


def test_a_type_transformers_does_not_know_is_known_without_it(monkeypatch):
    """A remote-code type (Kimi-K2, Molmo) is read as raw JSON without importing transformers to find out: from the
    table's list of the release it was written with when that release is installed, else from the text of the
    installed release's auto-config mapping. Where neither can tell, transformers is asked as before."""
    from hfvram.introspect import derived

    monkeypatch.setitem(cfg._table(), "transformers_version", derived.transformers_version())  # the table's list
    assert "llama" in TABLE["known_types"] and "kimi_k2" not in TABLE["known_types"]
    assert cfg.unknown_to_transformers("kimi_k2") and not cfg.unknown_to_transformers("llama")
    assert cfg.load({"model_type": "kimi_k2", "num_hidden_layers": 2})[2] == "raw"
    monkeypatch.setitem(cfg._table(), "transformers_version", "0.0.1")  # another release: its mapping's source
    assert cfg.unknown_to_transformers("kimi_k2") and cfg.unknown_to_transformers("molmo")
    assert not cfg.unknown_to_transformers("llama") and not cfg.unknown_to_transformers("gemma2")
    assert cfg.reader({"model_type": "kimi_k2"}) == "raw"
    monkeypatch.setattr(cfg, "_mapping_source", lambda: None)  # a layout we cannot read: nothing concluded
    assert not cfg.unknown_to_transformers("kimi_k2")
    assert cfg.reader({"model_type": "kimi_k2"}) == "class"


def test_the_mapping_source_names_every_type_the_installed_release_has():
    """The text search agrees with transformers' own mapping: no type it has a class for is taken as unknown."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    cfg._mapping_source.cache_clear()
    source = cfg._mapping_source()
    assert source is not None
    known = list(CONFIG_MAPPING.keys())
    assert len(known) > 500
    assert [t for t in known if f'"{t}"' not in source and f"'{t}'" not in source] == []
    assert "kimi_k2" not in CONFIG_MAPPING and '"kimi_k2"' not in source


@pytest.mark.parametrize("rid", ["Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-8B",  # single file; sharded
                                 "reubk/Molmo_7B_D_0924_NF4",  # a remote-code type, read as raw JSON
                                 "Qwen/Qwen2-Audio-7B", "adept/fuyu-8b",  # text sections with their class's defaults
                                 "liuhaotian/llava-v1.5-7b"])  # a flat JSON its class would ignore: read raw
def test_a_cold_run_of_a_listed_type_imports_no_transformers(fake_hub, tmp_path, rid):
    child = ("import json, sys\nfrom hfvram.cli import main\ncode = 0\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit as exc:\n    code = exc.code\n"
             "print(json.dumps({'code': code, 'transformers': 'transformers' in sys.modules}), file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFVRAM"))}
    env.update(HF_ENDPOINT=fake_hub.url, HFVRAM_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", child, rid, "--json"], env=env, capture_output=True, text=True,
                       cwd=str(ROOT), timeout=120)
    state = json.loads(p.stderr.strip().splitlines()[-1])
    assert state == {"code": 0, "transformers": False}, p.stderr
    doc = json.loads(p.stdout)
    reader = "raw" if "Molmo" in rid or "llava" in rid else "transformers"
    assert doc["model"]["source"] == "hub" and doc["architecture"]["config_reader"] == reader


def test_configs_read_on_many_threads_let_no_transformers_warning_through():
    """Gemma-3's config, read through its class, sets `rope_scaling`, whose setter warns (FutureWarning, transformers 5.x
    configuration_utils.py). `load` silences it; on a scan's 32 threads the silencing must not undo itself (the
    filters are process-wide), as it did: the warning reached a `scan --quiet`'s stderr."""
    import threading
    import warnings

    raw = json.loads(load_fixture(ROOT / "fixtures" / "google--gemma-3-4b-it")[0].texts["config.json"])
    assert "rope_scaling" in cfg.text_section(raw)
    shown = []
    original = warnings.showwarning
    warnings.showwarning = lambda message, *a, **k: shown.append(str(message))
    cfg.FAST_PATH_OFF = True  # through the class (Gemma-3 is read without it otherwise)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            cfg.load(dict(raw))  # transformers imported before the race

            def read():
                for _ in range(20):
                    cfg.load(dict(raw))

            threads = [threading.Thread(target=read) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            warnings.warn("a warning of our own still shows", UserWarning)
    finally:
        warnings.showwarning = original
        cfg.FAST_PATH_OFF = False
    assert shown == ["a warning of our own still shows"]


def test_reading_a_config_through_its_class_leaves_the_json_as_it_was():
    """The facts keep the config as the repo gives it: transformers' Qwen3.5 class sets vision_config's model_type
    to "qwen3_5_vision" in the dict it is given, which was the config's own sub-dict."""
    import copy

    raw = json.loads(load_fixture(ROOT / "fixtures" / "Qwen--Qwen3.5-9B")[0].texts["config.json"])
    before = copy.deepcopy(raw)
    cfg.FAST_PATH_OFF = True
    try:
        top, _, reader = cfg.load(raw)
    finally:
        cfg.FAST_PATH_OFF = False
    assert top.obj is not None and raw == before and raw["vision_config"]["model_type"] == "qwen3_5"


def test_a_class_default_stands_behind_every_name_the_config_may_use():
    """BLOOM's config names its width `n_embed` (BloomConfig takes it for hidden_size): the class's hidden_size
    default (64) must not win over it. A default is used only once the config states none of the names."""
    view = cfg.View(None, {"n_embed": 14336}, {"hidden_size": 64})
    assert view.int("hidden_size", "n_embed") == 14336
    assert view.int("hidden_size") == 64 and cfg.View(None, {}, {"hidden_size": 64}).int("hidden_size", "d") == 64
    assert view.raw == {"n_embed": 14336}
