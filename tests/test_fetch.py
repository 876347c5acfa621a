"""The fetcher through the real huggingface_hub client against the fake Hub: round trips, caching, offline,
the repo layouts that have no config.json or no safetensors, and every user error as one line with exit 2."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hfvram import stformat
from hfvram.fakehub import write_fixture

ROOT = Path(__file__).resolve().parent.parent
LLAMA_CFG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
    "max_position_embeddings": 2048, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}


def llama_layer(i: int) -> list[tuple[str, str, list[int]]]:
    p = f"model.layers.{i}."
    return [
        (p + "self_attn.q_proj.weight", "BF16", [64, 64]),
        (p + "self_attn.k_proj.weight", "BF16", [32, 64]),
        (p + "self_attn.v_proj.weight", "BF16", [32, 64]),
        (p + "self_attn.o_proj.weight", "BF16", [64, 64]),
        (p + "mlp.gate_proj.weight", "BF16", [128, 64]),
        (p + "mlp.up_proj.weight", "BF16", [128, 64]),
        (p + "mlp.down_proj.weight", "BF16", [64, 128]),
        (p + "input_layernorm.weight", "BF16", [64]),
        (p + "post_attention_layernorm.weight", "BF16", [64]),
    ]


SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
TINY = [("model.embed_tokens.weight", "BF16", [100, 64])] + llama_layer(0) + llama_layer(1) + [
    ("model.norm.weight", "BF16", [64]), ("lm_head.weight", "BF16", [100, 64])]
TINY_BYTES = sum(stformat.dtype_nbytes(d, s) for _, d, s in TINY)
# Long names so the first shard's header exceeds the client's first 100,000-byte Range request.
BIG = [(f"model.layers.0.mlp.experts.{i}.a_deliberately_long_projection_name_to_grow_the_header.weight",
        "BF16", [4, 4]) for i in range(1500)]


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repos")
    write_fixture(root / "org--tiny", "org/tiny", sha="a" * 40, files={"config.json": LLAMA_CFG},
                  tensors={"model.safetensors": TINY}, refs={"v1": "a" * 40})
    index = {"metadata": {"total_size": 0}, "weight_map": {n: SHARD1 for n, _, _ in TINY[:10] + BIG}
             | {n: SHARD2 for n, _, _ in TINY[10:]}}
    write_fixture(root / "org--sharded", "org/sharded", sha="b" * 40,
                  files={"config.json": LLAMA_CFG, "model.safetensors.index.json": index},
                  tensors={SHARD1: TINY[:10] + BIG, SHARD2: TINY[10:]})
    # Mistral's layout: HF shards + index next to consolidated.safetensors (same weights): never count both.
    mindex = {"metadata": {}, "weight_map": {n: "model-00001-of-00001.safetensors" for n, _, _ in TINY}}
    write_fixture(root / "mistralai--dual", "mistralai/dual", files={
        "config.json": LLAMA_CFG, "params.json": {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2},
        "model.safetensors.index.json": mindex},
        tensors={"model-00001-of-00001.safetensors": TINY,
                 "consolidated.safetensors": [(n.replace("model.", ""), d, s) for n, d, s in TINY]})
    # Meta's original format: params.json and one consolidated.00.pth (size only), gated.
    write_fixture(root / "meta--orig", "meta/orig", gated="manual", files={
        "params.json": {"dim": 4096, "multiple_of": 256, "n_heads": 32, "n_layers": 32, "norm_eps": 1e-05,
                        "vocab_size": -1}},
        large_files={"consolidated.00.pth": 13476925163})
    write_fixture(root / "org--binonly", "org/binonly", files={"config.json": LLAMA_CFG},
                  large_files={"pytorch_model.bin": 123456})
    write_fixture(root / "org--gated", "org/gated", gated="manual", files={"config.json": LLAMA_CFG},
                  tensors={"model.safetensors": TINY})
    write_fixture(root / "org--empty", "org/empty", files={"README.md": "nothing here"})
    write_fixture(root / "org--badjson", "org/badjson", files={"config.json": '{"model_type": "llama",'},
                  tensors={"model.safetensors": TINY})
    write_fixture(root / "org--baddtype", "org/baddtype", files={"config.json": LLAMA_CFG},
                  tensors={"model.safetensors": TINY})
    write_fixture(root / "org--hugeheader", "org/hugeheader", files={"config.json": LLAMA_CFG},
                  tensors={"model.safetensors": TINY})
    write_fixture(root / "org--nemo", "org/nemo", files={
        "config.json": '{"model_type": "nemotron_h", "hidden_size": 64, "num_hidden_layers": 3,\r\n'
                       ' "num_attention_heads": 4, "num_key_value_heads": 2, "attention_head_dim": 16,\r\n'
                       ' "hybrid_override_pattern": "M*-", "mamba_num_heads": 8, "mamba_head_dim": 16,\r\n'
                       ' "ssm_state_size": 32, "n_groups": 2, "conv_kernel": 4, "vocab_size": 100,\r\n'
                       ' "time_step_limit": [0.0, Infinity], "torch_dtype": "bfloat16"}\r\n'},
        tensors={"model.safetensors": TINY})
    return root


@pytest.fixture
def hub(fake_hub_factory, repos, tmp_path, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "hfvram-cache"))
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")  # in-process: leave sys.modules alone
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    h = fake_hub_factory(repos, tokens={"hf_good"}, delay_s=0.02)
    # Tests write these files' bytes: a truncated JSON, an unknown dtype, a 10^12-byte header claim.
    h.set_file("org/baddtype", "model.safetensors",
               stformat.build_header([("w", "BF16", [2])]).replace(b'"BF16"', b'"Q9X1"') + b"\0" * 4)
    h.set_file("org/hugeheader", "model.safetensors", struct.pack("<Q", 10**12) + b"{}")
    return h


def as_json(argv, cli) -> dict:
    code, out, err = cli([*argv, "--json"])
    assert code == 0, err
    return json.loads(out)


# -- round trips and cache ----------------------------------------------------------------------------------------

def test_cold_sharded_repo_in_three_round_trips_then_warm_one_request_then_offline_none(hub, cli):
    doc = as_json(["org/sharded"], cli)
    assert doc["weights"]["bytes"] == TINY_BYTES + 1500 * 32
    assert doc["weights"]["exact"] is True
    assert doc["model"] == {"id": "org/sharded", "revision": "b" * 40, "source": "hub", "requested_revision": "main"}
    # model_info next to the guesses (config.json, kept; model.safetensors, a 404), then the index and every shard
    # header (the Hub's sharded-metadata route, main only) in parallel
    assert hub.sequential_round_trips() <= 2
    assert hub.count() == 1 + 2 + 1 + 1
    assert [r.status for r in hub.requests("GET", "/safetensors-metadata/")] == [200]
    assert not hub.requests(path=r"-of-00002\.safetensors$")
    assert [r.status for r in hub.requests("GET", "config.json")] == [206]  # read once, by branch (ranged)
    assert [r.status for r in hub.requests("GET", r"/model\.safetensors$")] == [404]

    hub.reset()
    warm = as_json(["org/sharded"], cli)
    assert hub.count() == 1  # the revision resolution, nothing else
    assert warm["model"]["source"] == "cache"
    assert warm["weights"] == doc["weights"]

    hub.reset()
    offline = as_json(["org/sharded", "--offline"], cli)
    assert hub.count() == 0
    assert offline["weights"]["bytes"] == doc["weights"]["bytes"]


def test_a_recent_resolution_answers_a_warm_run_without_a_request(hub, cli, tmp_path, monkeypatch):
    # The default (conftest sets HFVRAM_REVISION_MAX_AGE=0 for every other test): a branch resolved less than 600 s
    # ago is not asked again, and the run says which commit it answered and when the Hub named it.
    monkeypatch.delenv("HFVRAM_REVISION_MAX_AGE")
    cold = as_json(["org/tiny"], cli)
    assert cold["model"]["source"] == "hub"
    hub.reset()
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0 and hub.count() == 0
    warm = json.loads(out)
    assert warm["model"] == {"id": "org/tiny", "revision": "a" * 40, "source": "cache", "requested_revision": "main"}
    assert warm["weights"] == cold["weights"]
    assert err.startswith("hfvram: main is commit aaaaaaaaaaaa as of ") and \
        err.endswith(" s ago (--refresh asks the Hub again)\n") and len(err.rstrip("\n")) <= 80
    # --refresh and `check` (a gate) ask the Hub every time
    as_json(["org/tiny", "--refresh"], cli)
    assert [r.path for r in hub.requests("GET")] == ["/api/models/org/tiny"]  # the model info, nothing else
    hub.reset()
    code, _, err = cli(["check", "org/tiny", "-f", "llamacpp", "--max-memory", "8GiB"])
    assert code == 0, err
    assert hub.count() == 1
    # a resolution older than the limit is asked again (one request), and is then young again
    ref = tmp_path / "hfvram-cache" / "refs" / "org--tiny" / "main"
    os.utime(ref, (ref.stat().st_atime, ref.stat().st_mtime - 601))
    hub.reset()
    as_json(["org/tiny"], cli)
    assert hub.count() == 1
    hub.reset()
    as_json(["org/tiny"], cli)
    assert hub.count() == 0
    # HFVRAM_REVISION_MAX_AGE: seconds; 0 asks every time; anything else is one line, exit 2
    monkeypatch.setenv("HFVRAM_REVISION_MAX_AGE", "0")
    as_json(["org/tiny"], cli)
    assert hub.count() == 1
    monkeypatch.setenv("HFVRAM_REVISION_MAX_AGE", "ten minutes")
    code, out, err = cli(["org/tiny"])
    assert code == 2 and out == "" and err == ("hfvram: error: HFVRAM_REVISION_MAX_AGE must be a number of seconds (0: "
                                               "always ask the Hub), not 'ten minutes'\n")


def test_single_file_repo_one_round_trip_and_commit_sha_revision_needs_no_request(hub, cli):
    doc = as_json(["org/tiny"], cli)
    # the model info, config.json and the header's first 100 kB at once: the answers name the commit the info gives
    assert hub.sequential_round_trips() == 1 and hub.count() == 3
    assert {r.path for r in hub.requests("GET", "resolve")} == {"/org/tiny/resolve/main/config.json",
                                                                "/org/tiny/resolve/main/model.safetensors"}
    assert doc["weights"]["bytes"] == TINY_BYTES
    assert doc["parameters"]["total"] == TINY_BYTES // 2
    hub.reset()
    pinned = as_json(["org/tiny@" + "a" * 40], cli)
    assert hub.count() == 0 and pinned["model"]["revision"] == "a" * 40


def test_a_guess_that_fails_or_names_another_commit_is_read_again_by_commit(hub, cli):
    # The guess of config.json fails (a 500, not retried); the file is read as usual, by commit, with no waiting.
    hub.fail_next(1, 500, path=r"/resolve/main/config\.json$")
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0 and err == "" and json.loads(out)["weights"]["bytes"] == TINY_BYTES
    assert [(r.path.split("/resolve/")[1], r.status) for r in hub.requests("GET", "config.json")] == \
        [("main/config.json", 500), ("a" * 40 + "/config.json", 200)]
    assert hub.sequential_round_trips() == 2


def test_a_guess_redirected_to_the_cdn_keeps_the_commit_of_the_hubs_answer(fake_hub_factory, repos, tmp_path,
                                                                           monkeypatch, cli):
    # The real Hub answers /resolve/ of an LFS file with a 302 to its CDN, which sends no X-Repo-Commit: the
    # commit is read from the Hub's redirect, so the guessed header is kept, not read again by commit.
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    h = fake_hub_factory(repos, cdn=True)
    doc = as_json(["org/tiny"], cli)
    assert doc["weights"]["bytes"] == TINY_BYTES
    header_reads = [r.path for r in h.requests("GET", "model.safetensors")]
    # the Hub's redirect (by branch), then the CDN's answer; never a read by commit on the Hub
    assert [p for p in header_reads if "/resolve/" in p] == ["/org/tiny/resolve/main/model.safetensors"]
    assert len(header_reads) == 2 and header_reads[1].startswith("/cdn/")


def test_guesses_are_kept_only_for_the_commit_the_model_info_gives():
    """`_guessed`: a guess answered for another commit (the branch moved between the requests), one that failed
    (None) and one still under way after the wait are dropped; the file is then read by commit."""
    import threading
    import time
    from concurrent.futures import Future

    from hfvram.sources.hub import _guessed

    def done(value):
        f = Future()
        f.set_result(value)
        return f

    slow = Future()
    threading.Timer(0.5, slow.set_result, [("a" * 40, "late")]).start()
    start = time.monotonic()
    got = _guessed({"config.json": done(("a" * 40, "{}")), "model.safetensors": done(("b" * 40, b"x")),
                    "params.json": done(None), "late.json": slow}, "a" * 40, wait=0.05)
    assert got == {"config.json": "{}"} and time.monotonic() - start < 0.4


def test_no_guess_on_a_warm_run_nor_in_a_scan(hub, cli, tmp_path):
    as_json(["org/tiny"], cli)
    hub.reset()
    as_json(["org/tiny"], cli)
    assert hub.count() == 1  # the ref is kept: only the model info
    models = tmp_path / "models.txt"
    models.write_text("org/sharded\n")
    hub.reset()
    code, _, err = cli(["scan", str(models), "--format", "jsonl", "-o", str(tmp_path / "rows.jsonl"), "--quiet"])
    assert code == 0, err
    assert not any(r.path.endswith("/model.safetensors") for r in hub.requests())  # no guess, no 404


def test_a_scan_reads_the_index_first_and_sizes_each_shard_read_on_its_tensor_names(hub, tmp_path):
    from hfvram.sources.cache import MetadataCache
    from hfvram.sources.hub import FIRST_READ, INDEX_FILE, HubSource, shard_header_bounds

    shard_reads = r"-of-00002\.safetensors$"
    commit = "b" * 40  # by commit: the shards are read one by one (on main, the Hub's route gives them all at once)
    repo = HubSource(speculate=False, cache=MetadataCache(tmp_path / "scan")).fetch("org/sharded", commit)
    [index] = hub.requests(path=r"index\.json$")
    shards = hub.requests(path=shard_reads)
    # one read a shard, the first shard's 1,510-tensor header (~230 kB) too, each after the index came back
    assert sorted(r.path.rsplit("/", 1)[1] for r in shards) == [SHARD1, SHARD2]
    assert all(r.start >= index.end for r in shards)
    bounds = shard_header_bounds(repo.texts[INDEX_FILE])
    for r in shards:
        name = r.path.rsplit("/", 1)[1]
        assert r.range == f"bytes=0-{8 + bounds[name] - 1}"
    assert 8 + bounds[SHARD2] < 8 * 1024 < FIRST_READ < 8 + bounds[SHARD1]  # 10 tensors: ~5 kB, not 100 kB
    # a latency-first run (a single model) reads the shards next to the index, 100 kB first: the same tables
    hub.reset()
    single = HubSource(cache=MetadataCache(tmp_path / "single")).fetch("org/sharded", commit)
    assert single.safetensors == repo.safetensors
    assert len(hub.requests(path=shard_reads)) == 3  # the first shard's header takes a second read there
    # an index naming fewer tensors than a shard holds: the header passes its bound and is read on, whole
    idx = json.loads(repo.texts[INDEX_FILE])
    idx["weight_map"] = {next(n for n, f in idx["weight_map"].items() if f == shard): shard
                         for shard in (SHARD1, SHARD2)}
    hub.set_file("org/sharded", INDEX_FILE, json.dumps(idx))
    hub.reset()
    short = HubSource(speculate=False, cache=MetadataCache(tmp_path / "short")).fetch("org/sharded", commit)
    assert short.safetensors == repo.safetensors
    assert len(hub.requests(path=shard_reads)) == 3


def test_main_takes_every_shard_header_in_one_request_checked_against_the_commit(hub, tmp_path):
    from huggingface_hub import get_session

    from hfvram.sources.cache import MetadataCache
    from hfvram.sources.hub import HubSource

    def fetch(name: str, source: HubSource | None = None, revision: str | None = None):
        hub.reset()
        source = source or HubSource(speculate=False, cache=MetadataCache(tmp_path / name))
        return source.fetch("org/sharded", revision)

    shard_reads, route = r"-of-00002\.safetensors$", "/safetensors-metadata/"
    by_commit = fetch("commit", revision="b" * 40)
    assert len(hub.requests(path=shard_reads)) == 2 and not hub.requests(path=route)
    on_main = fetch("main")
    assert not hub.requests(path=shard_reads) and hub.count(path=route) == 1
    assert on_main.safetensors == by_commit.safetensors  # 1,510 + 11 tensors, the same tables either way
    # what the cache keeps is the header the route gave, as JSON text: a warm run parses the same tables from it
    hub.reset()
    warm = HubSource(speculate=False, cache=MetadataCache(tmp_path / "main")).fetch("org/sharded")
    assert warm.source == "cache" and warm.safetensors == by_commit.safetensors

    # the branch moved between the model info and the route: one shard's last tensor grew, so its header and data
    # no longer fit the size the commit's listing gives: the shards are read by commit instead
    answer = json.loads(get_session().get(f"{hub.url}/api/models/org/sharded/safetensors-metadata/"
                                          f"model.safetensors.index.json").content)
    header = answer["headers"][SHARD2]
    name, last = max(((n, t) for n, t in header.items() if n != "__metadata__"), key=lambda x: x[1]["data_offsets"])
    last["shape"][0] += 1
    last["data_offsets"][1] += 2 * last["shape"][1]
    hub.fail_next(1, 200, path=route, body=json.dumps(answer).encode())
    moved = fetch("moved")
    assert hub.count(path=route) == 1 and len(hub.requests(path=shard_reads)) == 2
    assert moved.safetensors == by_commit.safetensors

    # an answer that is not JSON, or a shard the index at the commit does not name: the same
    for body in (b"<html>busy</html>", json.dumps({"index": {}, "headers": {SHARD1: answer["headers"][SHARD1]}})):
        hub.fail_next(1, 200, path=route, body=body if isinstance(body, bytes) else body.encode())
        assert fetch(f"bad-{len(body)}").safetensors == by_commit.safetensors
        assert len(hub.requests(path=shard_reads)) == 2

    # an endpoint without the route (a mirror: a 404 that is no Hub error about the repo) is not asked again
    hub.add_alias("org/sharded-copy", "org/sharded")
    hub.fail_next(1, 404, path=route)
    source = HubSource(speculate=False, cache=MetadataCache(tmp_path / "mirror"))
    assert fetch("mirror", source).safetensors == by_commit.safetensors
    hub.reset()
    source.fetch("org/sharded-copy")
    assert not hub.requests(path=route) and len(hub.requests(path=shard_reads)) == 2


def test_tag_revision(hub, cli):
    doc = as_json(["org/tiny@v1"], cli)
    assert doc["model"]["revision"] == "a" * 40 and doc["model"]["requested_revision"] == "v1"
    assert any("/revision/v1" in r.path for r in hub.requests())


def test_hf_hub_offline_env_uses_cache_and_makes_no_request(hub, cli, monkeypatch):
    as_json(["org/tiny"], cli)
    hub.reset()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    doc = as_json(["org/tiny"], cli)
    assert hub.count() == 0 and doc["model"]["source"] == "cache"


def test_mistral_consolidated_next_to_hf_shards_is_not_counted_twice(hub, cli):
    doc = as_json(["mistralai/dual"], cli)
    assert doc["weights"]["bytes"] == TINY_BYTES
    assert doc["weights"]["files"] == 1


def test_meta_original_format_from_params_and_file_sizes(hub, cli, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    doc = as_json(["meta/orig"], cli)
    a = doc["architecture"]
    assert (a["num_layers"], a["hidden_size"], a["num_kv_heads"], a["head_dim"]) == (32, 4096, 32, 128)
    assert a["intermediate_size"] == 11008  # 2/3 * 4 * 4096 rounded up to multiple_of 256
    assert a["config_reader"] == "params.json"
    assert doc["weights"] == {**doc["weights"], "bytes": 13476925163, "exact": False, "source": "file-sizes"}
    assert doc["kv_cache"]["per_token_bytes"] == 524288


def test_pytorch_bin_only_repo_uses_file_sizes(hub, cli):
    doc = as_json(["org/binonly"], cli)
    assert doc["weights"]["bytes"] == 123456 and doc["weights"]["exact"] is False


def test_hybrid_config_with_infinity_and_crlf(hub, cli):
    doc = as_json(["org/nemo"], cli)
    kinds = doc["architecture"]["layer_kinds"]
    assert (kinds["mamba"], kinds["full_attention"], kinds["none"]) == (1, 1, 1)
    # Mamba2 state: conv (8*16 + 2*2*32) x 3 + SSM 8*16*32 = 768 + 4096 elements, bf16.
    assert doc["kv_cache"]["state_bytes"] == (256 * 3 + 4096) * 2


# -- errors: one line, exit 2, no traceback, no token -------------------------------------------------------------

ERRORS = [
    (["org/nope"], "not found"),
    (["org/gated"], "HF_TOKEN"),
    (["org/tiny@nobranch"], "revision"),
    (["org/empty"], "no config.json"),
    (["org/badjson"], "not valid JSON"),
    (["org/baddtype"], "unknown dtype"),
    (["org/hugeheader"], "header"),
    (["not a repo id!"], "neither a local path nor a Hub repo id"),
    (["org/tiny", "--context", "lots"], "as a number of tokens"),
    (["org/tiny", "--batch", "0"], "--batch"),
]


@pytest.mark.parametrize("argv,needle", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_errors_are_one_line_exit_2(hub, cli, argv, needle):
    code, out, err = cli(argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hfvram: error: ")
    assert needle in lines[0]
    assert "Traceback" not in err


def test_gated_message_names_login_and_license_and_never_the_token(hub, cli, monkeypatch):
    code, _, err = cli(["org/gated"])
    assert code == 2 and "hf auth login" in err and "accept the license" in err
    monkeypatch.setenv("HF_TOKEN", "hf_not_approved_secret")
    code, out, err = cli(["org/gated"])
    assert code == 2 and "access list" in err
    assert "hf_not_approved_secret" not in out + err
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    assert as_json(["org/gated"], cli)["weights"]["bytes"] == TINY_BYTES
    cache = Path(os.environ["HFVRAM_CACHE"])
    assert all(b"hf_good" not in p.read_bytes() for p in cache.rglob("*") if p.is_file())


def test_a_gated_sharded_repo_on_main_says_so_and_reads_through_the_route_with_a_token(hub, cli, monkeypatch):
    hub.add_alias("org/gated-sharded", "org/sharded", gated="manual")
    code, _, err = cli(["org/gated-sharded"])
    assert code == 2 and "hf auth login" in err and "accept the license" in err  # the route's 401, then the shards'
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    hub.reset()
    assert as_json(["org/gated-sharded"], cli)["weights"]["bytes"] == TINY_BYTES + 1500 * 32
    assert [r.status for r in hub.requests(path="/safetensors-metadata/")] == [200]
    assert not hub.requests(path=r"-of-00002\.safetensors$")


def test_network_down_unknown_model_is_a_clear_error(repos, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HFVRAM_CACHE": str(tmp_path / "c"),
           "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "hfvram", "org/not-bundled"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot reach" in proc.stderr and "Traceback" not in proc.stderr


def test_cache_survives_network_loss(hub, cli, monkeypatch):
    as_json(["org/tiny"], cli)
    hub.stop()
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0
    assert json.loads(out)["model"]["source"] == "cache"
    assert "cannot reach" in err and "metadata cache" in err


def test_local_folder_reads_real_safetensors_headers(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_CFG))
    header = stformat.build_header(TINY, {"format": "pt"})
    (tmp_path / "model.safetensors").write_bytes(header + b"\0" * TINY_BYTES)
    doc = as_json([str(tmp_path)], cli)
    assert doc["model"]["source"] == "local"
    assert doc["weights"]["bytes"] == TINY_BYTES and doc["weights"]["exact"] is True
    # A header that claims more than the file holds is refused.
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 10**6) + b"{}")
    code, _, err = cli([str(tmp_path)])
    assert code == 2 and "header claims" in err


def test_local_unknown_dtype_is_one_line(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_CFG))
    header = stformat.build_header([("w", "BF16", [2])]).replace(b'"BF16"', b'"Q9X1"')
    (tmp_path / "model.safetensors").write_bytes(header + b"\0" * 4)
    code, out, err = cli([str(tmp_path)])
    assert code == 2 and out == "" and err.count("\n") == 1 and "not a valid safetensors file" in err


def test_a_sharded_metadata_answer_keeps_each_headers_text_however_it_is_laid_out():
    from hfvram.sources.hub import _sharded_answer

    a = {"x": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}
    b = {"__metadata__": {"format": "pt"}, "y": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}
    compact = json.dumps({"index": {"metadata": {}}, "headers": {"a": a, "b": b}}, separators=(",", ":")).encode()
    pretty = json.dumps({"headers": {"a": a, "b": b}, "index": {}}, indent=2).encode()
    for body in (compact, pretty):
        got = _sharded_answer(body)
        assert [(shard, header) for shard, header, _ in got] == [("a", a), ("b", b)]
        assert [json.loads(raw) for _, _, raw in got] == [a, b]  # the text as it stood in the answer
    assert _sharded_answer(compact)[0][2] == json.dumps(a, separators=(",", ":")).encode()
    # "headers" named first inside the index: decoded whole, the headers written compactly
    odd = json.dumps({"index": {"metadata": {"headers": "3"}}, "headers": {"a": a}}).encode()
    assert _sharded_answer(odd) == [("a", a, json.dumps(a, separators=(",", ":")).encode())]
