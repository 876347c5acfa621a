"""Hostile servers, broken files and the cache: every answer here comes from the real huggingface_hub client talking
to the fake Hub (hfvram/fakehub.py) with a fault injected, or from a crafted file. Each test names the attack it
stands for; each asserts what the user sees (exit code, one line, the right number) and what did not happen (a file
outside the cache, a body held in memory, a token sent to another host, a run that outlives its deadline)."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfvram import stformat
from hfvram.fakehub import write_fixture

ROOT = Path(__file__).resolve().parent.parent
CFG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
       "max_position_embeddings": 2048, "torch_dtype": "bfloat16", "tie_word_embeddings": False}


def layer(i: int) -> list:
    p = f"model.layers.{i}."
    return [(p + "self_attn.q_proj.weight", "BF16", [64, 64]), (p + "self_attn.k_proj.weight", "BF16", [32, 64]),
            (p + "self_attn.v_proj.weight", "BF16", [32, 64]), (p + "self_attn.o_proj.weight", "BF16", [64, 64]),
            (p + "mlp.gate_proj.weight", "BF16", [128, 64]), (p + "mlp.up_proj.weight", "BF16", [128, 64]),
            (p + "mlp.down_proj.weight", "BF16", [64, 128]), (p + "input_layernorm.weight", "BF16", [64]),
            (p + "post_attention_layernorm.weight", "BF16", [64])]


TINY = [("model.embed_tokens.weight", "BF16", [100, 64])] + layer(0) + layer(1) + [
    ("model.norm.weight", "BF16", [64]), ("lm_head.weight", "BF16", [100, 64])]
TINY_BYTES = stformat.data_size(TINY)
SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
TOKEN = "hf_PLANTEDtokenDoNotLeak0123456789"


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-repos")
    write_fixture(root / "org--tiny", "org/tiny", sha="a" * 40, files={"config.json": CFG},
                  tensors={"model.safetensors": TINY})
    write_fixture(root / "org--gated", "org/gated", sha="b" * 40, gated="manual", files={"config.json": CFG},
                  tensors={"model.safetensors": TINY})
    # an index that names two shards; the repo holds one
    index = {"metadata": {"total_size": TINY_BYTES}, "weight_map": {n: SHARD1 for n, _, _ in TINY[:10]} |
             {n: SHARD2 for n, _, _ in TINY[10:]}}
    write_fixture(root / "org--halfshards", "org/halfshards", sha="c" * 40,
                  files={"config.json": CFG, "model.safetensors.index.json": index}, tensors={SHARD1: TINY[:10]})
    for i, (name, total) in enumerate((("minus", -5), ("huge", 1e30))):
        write_fixture(root / f"org--bin-{name}", f"org/bin-{name}", sha="d" * 39 + str(i),
                      files={"config.json": CFG, "pytorch_model.bin.index.json": {
                          "metadata": {"total_size": total}, "weight_map": {"w": "pytorch_model-00001-of-00001.bin"}}},
                      large_files={"pytorch_model-00001-of-00001.bin": 123456})
    write_fixture(root / "org--crafted", "org/crafted", sha="e" * 40, files={"config.json": CFG},
                  tensors={"model.safetensors": TINY})
    return root


@pytest.fixture
def hub(fake_hub_factory, repos, tmp_path, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HFVRAM_DEBUG", raising=False)
    return fake_hub_factory([repos, ROOT / "fixtures"], tokens={TOKEN: ["org/gated"]})


def one_line_error(code: int, out: str, err: str, needle: str) -> None:
    assert code == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("hfvram: error: "), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err and "unexpected" not in err


def run_cli(hub, env_extra: dict, *argv, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_ENDPOINT": hub.url, **env_extra}
    env.pop("HFVRAM_ALLOW_TORCH", None)
    return subprocess.run([sys.executable, "-m", "hfvram", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)


# -- the cache: paths that cannot escape, entries that cannot lie ------------------------------------------------------

@pytest.mark.parametrize("sha", ["../../../../tmp/x", "/tmp/x"])
def test_a_hostile_commit_sha_writes_nothing_outside_the_cache(hub, tmp_path, sha):
    """A server answering model_info with sha `../../../../tmp/x` or `/tmp/x` made hfvram write `x.json.gz` there."""
    hub.update_repo("org/tiny", sha=sha, refs={})
    deep = tmp_path / "a" / "b" / "c" / "d"
    cache = deep / "cache"
    before = set(Path("/tmp").glob("x*"))
    proc = run_cli(hub, {"HFVRAM_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf")}, "org/tiny")
    one_line_error(proc.returncode, proc.stdout, proc.stderr, "not 40 hex digits")
    assert set(Path("/tmp").glob("x*")) == before
    written = [p for p in tmp_path.rglob("*")
               if p.is_file() and p.relative_to(tmp_path).parts[0] not in ("hf", "hf_home")]
    assert all(cache in p.parents for p in written), written


def test_a_revision_with_dots_and_slashes_stays_inside_the_cache(hub, tmp_path, cli):
    """A server that resolves any revision: the ref file is named by the percent-encoded revision, never a path."""
    hub.update_repo("org/tiny", refs={"../../../../escape": "a" * 40, "main": "a" * 40})
    code, out, err = cli(["org/tiny@../../../../escape", "--json"])
    assert code == 0, err
    cache = Path(os.environ["HFVRAM_CACHE"])
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "hf_home" not in p.parts]
    assert files and all(cache in p.parents for p in files)
    assert (cache / "refs" / "org--tiny" / "%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fescape").read_text().strip() == "a" * 40


def entry(cache: Path) -> Path:
    [path] = list((cache / "meta" / "org--tiny").glob("*.json.gz"))
    return path


@pytest.mark.parametrize("damage", ["tensor-shape", "truncated-gzip", "old-format", "wrong-repo"])
def test_a_bad_cache_entry_is_dropped_and_refetched(hub, cli, damage):
    cold = json.loads(cli(["org/tiny", "--json"])[1])
    path = entry(Path(os.environ["HFVRAM_CACHE"]))
    blob = path.read_bytes()
    head, _, payload = gzip.decompress(blob).partition(b"\n")
    if damage == "tensor-shape":  # a changed shape in the stored header, the checksum left as it was
        assert payload.count(b'"shape":[') > 1
        blob = gzip.compress(head + b"\n" + payload.replace(b'"shape":[', b'"shape":[3,', 1))
    elif damage == "truncated-gzip":
        blob = blob[: len(blob) // 2]
    elif damage == "old-format":  # hfvram-cache/1: the bare RepoData JSON
        blob = gzip.compress(payload)
    else:  # an intact entry of another repo under this name
        line, _, headers = payload.partition(b"\n")
        data = json.loads(line)
        data["id"] = "org/other"
        from hfvram.sources.cache import frame_bytes

        blob = frame_bytes(json.dumps(data).encode() + b"\n" + headers)  # intact, checksummed: refused for its name
    path.write_bytes(blob)
    hub.reset()
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0, err
    warm = json.loads(out)
    assert warm["weights"] == cold["weights"] and warm["model"]["source"] == "hub"  # read again, not trusted
    assert hub.count(path=r"/resolve/") == 2  # config.json and the header, again
    from hfvram.sources.cache import FORMAT

    assert gzip.decompress(path.read_bytes()).startswith(b'{"format": "%s"' % FORMAT.encode())  # rewritten whole


def test_a_bad_cache_entry_is_not_trusted_offline_either(hub, cli):
    cli(["org/tiny", "--json"])
    path = entry(Path(os.environ["HFVRAM_CACHE"]))
    path.write_bytes(path.read_bytes()[:-20])
    code, out, err = cli(["org/tiny", "--offline"])
    one_line_error(code, out, err, "neither in the metadata cache nor in the bundled snapshot")
    assert not path.exists()


# -- bodies: capped, streamed, checked ---------------------------------------------------------------------------------

def test_a_whole_file_answer_to_a_range_is_not_held_in_memory(hub, monkeypatch):
    """A server that ignores Range and sends the whole 4 GB shard: read only as far as the header goes."""
    import tracemalloc

    from hfvram.analysis import analyze

    repo = "Qwen/Qwen2.5-7B"
    size = max(hub.repo_data(repo).safetensors_size(p) for p in hub.repo_data(repo).safetensors)
    assert size > 3 << 30
    hub.inject("ignore-range", n=100, path=r"\.safetensors$")
    sha = hub._get_repo(repo).sha  # by commit: the shards are read one by one (on main, one request gives them all)
    tracemalloc.start()
    try:
        result = analyze(repo, revision=sha, projections=(), suggest=False, frameworks=["vllm"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.facts.weights.exact and result.facts.weights.bytes == 15231233024
    ignored = [r for r in hub.requests(path=r"\.safetensors$") if r.fault == "ignore-range"]
    shards = [r for r in ignored if not r.path.endswith("/model.safetensors")]  # not the single-file guess (a 404)
    assert len(shards) == 4 and all(r.status == 200 for r in shards)
    assert all(r.sent < 64 << 20 for r in ignored), [r.sent for r in ignored]  # the client hung up
    assert peak < 64 << 20, peak  # Python allocations during the whole run


def test_a_wrong_content_range_is_refused(hub, cli):
    hub.inject("bad-range", n=100, path=r"model\.safetensors$")
    code, out, err = cli(["org/tiny"])
    one_line_error(code, out, err, "asked for bytes 0-100000, the server answered bytes 8-")


def test_a_connection_reset_mid_body_is_retried(hub, cli):
    hub.inject("reset", n=1, path=r"model\.safetensors$", after=20)
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0, err
    assert json.loads(out)["weights"]["bytes"] == TINY_BYTES
    reads = hub.requests(path=r"model\.safetensors$")
    assert [r.fault for r in reads] == ["reset", None] and reads[0].sent == 20


def test_an_oversized_config_is_refused_without_being_read_whole(hub, cli):
    hub.set_file("org/crafted", "config.json", b"{" + b" " * (9 << 20) + b"}")
    code, out, err = cli(["org/crafted"])
    one_line_error(code, out, err, "above the 8,388,608 bytes hfvram reads")
    # the listing said how large it is: never asked for by commit; the first run's guess, made before the listing
    # came, asked for its first MiB only
    assert [r.range for r in hub.requests(path=r"config\.json")] == [f"bytes=0-{(1 << 20) - 1}"]


def test_negative_dims_with_a_matching_negative_span_are_refused(hub, cli):
    body = json.dumps({"w": {"dtype": "BF16", "shape": [-2, 4], "data_offsets": [16, 0]}}).encode()
    hub.set_file("org/crafted", "model.safetensors", struct.pack("<Q", len(body)) + body + b"\0" * 16)
    code, out, err = cli(["org/crafted"])
    one_line_error(code, out, err, "not a list of whole numbers >= 0")


def test_a_header_claiming_more_data_than_the_file_holds_is_refused(hub, cli):
    header = stformat.build_header([("w", "BF16", [1 << 40, 1 << 10])])
    hub.set_file("org/crafted", "model.safetensors", header + b"\0" * 64)
    code, out, err = cli(["org/crafted"])
    one_line_error(code, out, err, "but the file holds 64")


def test_an_index_naming_a_missing_shard_is_an_incomplete_checkpoint(hub, cli):
    code, out, err = cli(["org/halfshards"])
    one_line_error(code, out, err, "names 2 shard(s), 1 of which the repo does not have")


@pytest.mark.parametrize("name", ["minus", "huge"])
def test_an_unbelievable_bin_total_size_is_not_used(hub, cli, name):
    code, out, err = cli([f"org/bin-{name}", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["weights"]["bytes"] == 123456 and doc["weights"]["source"] == "file-sizes"
    assert any("total_size" in n and "not believable" in n for n in doc["notes"])


# -- deadlines and waits -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault,path", [("trickle", r"config\.json$"), ("stall", r"model\.safetensors$"),
                                        ("trickle", r"^/api/models/"), ("stall", r"^/api/models/")])
def test_a_trickling_or_stalled_answer_cannot_hold_a_run(hub, cli, fault, path):
    hub.inject(fault, n=100, path=path, interval=0.2)
    start = time.monotonic()
    code, out, err = cli(["org/tiny", "--deadline", "3"])
    elapsed = time.monotonic() - start
    one_line_error(code, out, err, "gave up after 3 s")
    assert elapsed < 3 + 2.5, elapsed


def test_a_429_storm_waits_at_most_max_wait_and_says_what_it_waits_for(hub, cli):
    hub.rate_limit_next(1000, retry_after=1.5)
    start = time.monotonic()
    code, out, err = cli(["org/tiny", "--max-wait", "2"])
    elapsed = time.monotonic() - start
    lines = err.strip().splitlines()
    assert code == 2 and elapsed < 4, (elapsed, err)
    assert lines[0].startswith("hfvram: waiting 1.5 s to retry resolving org/tiny@main (HTTP 429 rate limit")
    assert lines[-1].startswith("hfvram: error: rate limited by") and "more than the 0.5 s of waiting --max-wait" \
        " leaves" in lines[-1]
    hub.clear_faults()


def test_a_retry_after_beyond_max_wait_fails_at_once(hub, cli):
    hub.rate_limit_next(10, retry_after=240)  # the 4-minute hold of the issue
    start = time.monotonic()
    code, out, err = cli(["org/tiny"])
    one_line_error(code, out, err, "it asks to wait 240 s, more than the 20.0 s of waiting --max-wait leaves")
    code, out, err = cli(["org/tiny", "--deadline", "5", "--max-wait", "60"])
    one_line_error(code, out, err, "s the run's deadline leaves (--deadline)")
    assert time.monotonic() - start < 5
    hub.clear_faults()


def test_short_waits_then_success(hub, cli):
    # on the model info, which the run must have: a cold single-file run also guesses config.json and the header
    # next to it, and a guess that is refused is read again by commit without waiting (3 runs in 12 failed when the
    # two 429s could land on the guesses)
    hub.rate_limit_next(2, retry_after=0.3, path=r"^/api/models/org/tiny")
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0 and json.loads(out)["weights"]["bytes"] == TINY_BYTES
    assert "hfvram: waiting 0.3 s to retry" in err


def test_deadline_and_max_wait_are_checked_settings(cli):
    for argv, needle in ((["--deadline", "0"], "--deadline must be between 1 and 3600"),
                         (["--max-wait", "soon"], "--max-wait must be a number of seconds"),
                         (["--max-wait", "-1"], "--max-wait must be between 0 and 3600")):
        code, out, err = cli(["org/tiny", *argv])
        one_line_error(code, out, err, needle)


# -- what reaches stderr -----------------------------------------------------------------------------------------------

def test_a_config_key_transformers_refuses_prints_no_config(hub, cli):
    """FalconConfig cannot set head_dim (a property): transformers logs the whole config at ERROR level."""
    cfg = json.loads((ROOT / "fixtures/tiiuae--falcon-7b/config.json").read_text())
    hub.set_file("tiiuae/falcon-7b", "config.json", json.dumps({**cfg, "head_dim": 64}))
    code, out, err = cli(["tiiuae/falcon-7b", "--json"])
    assert code == 0, err
    assert err == "" and json.loads(out)["architecture"]["num_layers"] == 32


def test_hfvram_debug_keeps_exit_2_on_our_errors(hub, tmp_path):
    proc = run_cli(hub, {"HFVRAM_DEBUG": "1", "HFVRAM_CACHE": str(tmp_path / "c"), "HF_HOME": str(tmp_path / "h")},
                   "org/does-not-exist")
    assert proc.returncode == 2 and "hfvram: error: repository org/does-not-exist not found" in proc.stderr
    assert "Traceback" in proc.stderr  # asked for


# -- redirects and tokens ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("to", ["localhost", "cdn"])
def test_a_redirect_to_another_host_does_not_carry_the_token(fake_hub_factory, repos, tmp_path, monkeypatch, cli, to):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub = fake_hub_factory(repos, tokens={TOKEN}, cdn=(to == "cdn"))
    hub.inject("redirect", n=100, path=r"/resolve/", to=to)
    code, out, err = cli(["org/tiny", "--json"])
    assert code == 0, err
    assert json.loads(out)["weights"]["bytes"] == TINY_BYTES
    first = [r for r in hub.requests() if r.fault == "redirect"]
    followed = [r for r in hub.requests() if r.fault is None and "/resolve/" in r.path or r.server == "cdn"]
    # config.json and the header, each asked for by branch (the first run's guesses) and, where the answer at the end
    # of the redirect named no commit or refused the request without the token, again by commit
    assert 2 <= len(first) <= 4 and all(r.auth for r in first)
    assert len(followed) == len(first) and not any(r.auth for r in followed)
    assert all(r.host.startswith("localhost:") for r in followed) if to == "localhost" else \
        all(r.server == "cdn" for r in followed)


def test_a_planted_token_appears_in_no_output_error_log_or_cache_file(hub, tmp_path, monkeypatch, cli):
    """Every path that talks to the Hub with a token, fault or not: nothing the run prints, writes or caches holds
    it (the fake Hub's own log, which is on our side of the wire, included)."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.verbose = True
    seen = []
    runs = [
        (["org/tiny", "--json"], None),
        (["org/gated", "--json"], None),
        (["org/does-not-exist"], None),
        (["meta-llama/Llama-2-7b-hf"], None),  # gated, the token not approved for it: 403
        (["org/tiny@nobranch"], None),
        (["org/halfshards"], None),
        (["org/tiny", "--max-wait", "1"], lambda: hub.rate_limit_next(20, retry_after=0.4)),
        (["org/tiny@" + "a" * 40], lambda: hub.inject("reset", n=1, path=r"safetensors$")),
        (["org/crafted"], lambda: hub.inject("bad-range", n=10, path=r"safetensors$")),
        (["org/crafted", "--deadline", "2"], lambda: hub.inject("trickle", n=10, path=r"config\.json$",
                                                                interval=0.2)),
        (["org/gated"], lambda: hub.inject("redirect", n=10, path=r"/resolve/")),
    ]
    for argv, arm in runs:
        hub.clear_faults()
        if arm:
            arm()
        seen.append(cli(argv))
    out_file = tmp_path / "rows.jsonl"
    models = tmp_path / "models.txt"
    models.write_text("org/tiny\norg/gated\norg/nope\nmeta-llama/Llama-2-7b-hf\n")
    hub.clear_faults()
    hub.rate_limit_next(3, retry_after=0.1)
    seen.append(cli(["scan", str(models), "-f", "vllm", "--format", "jsonl", "-o", str(out_file)]))
    seen.append(cli(["check", "org/gated", "org/nope", "--gpu", "H100", "-f", "vllm", "--format", "json"]))
    debug = run_cli(hub, {"HF_TOKEN": TOKEN, "HFVRAM_DEBUG": "1", "HFVRAM_CACHE": os.environ["HFVRAM_CACHE"]},
                    "org/nope")
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    texts = [o + e for _, o, e in seen] + [debug.stdout, debug.stderr]
    files = [p for p in [*Path(os.environ["HFVRAM_CACHE"]).rglob("*"), *tmp_path.rglob("*")] if p.is_file()]
    assert len(files) > 4 and out_file in files
    assert sum(TOKEN in t for t in texts) == 0
    assert [p for p in files if TOKEN.encode() in p.read_bytes()] == []
    codes = [c for c, _, _ in seen]
    assert codes.count(0) >= 2 and codes.count(2) >= 8, codes  # the runs did go down their paths
    assert sum(r.auth for r in hub.requests()) > 10  # and the token was sent where it belongs


# -- fixtures: what the real repos hold; bounds above every real model -------------------------------------------------

@pytest.mark.parametrize("repo", ["Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-Next-80B-A3B-Thinking", "deepseek-ai/DeepSeek-V3"])
def test_the_fake_hub_serves_the_index_the_real_repo_has(hub, repo):
    """Constructed from the fixture's own tensor table (tier E in its provenance), served as the real repo's file."""
    from huggingface_hub import HfApi

    info = HfApi(endpoint=hub.url, token=False).model_info(repo, files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["model.safetensors.index.json"] > 1_000_000
    from huggingface_hub.utils import get_session

    body = get_session().get(f"{hub.url}/{repo}/resolve/main/model.safetensors.index.json").content
    index = json.loads(body)
    data = hub.repo_data(repo)
    assert len(body) == sizes["model.safetensors.index.json"]
    assert sorted(set(index["weight_map"].values())) == sorted(data.safetensors)
    assert index["metadata"]["total_size"] == sum(t.nbytes for _, ts in data.safetensors.values() for t in ts)
    meta = json.loads((ROOT / "fixtures" / repo.replace("/", "--") / "repo.json").read_text())
    assert meta["provenance"]["files"]["model.safetensors.index.json"]["tier"].startswith("E (constructed")
    import hashlib
    assert meta["provenance"]["files"]["model.safetensors.index.json"]["sha256"] == hashlib.sha256(body).hexdigest()


def test_falcon_lists_no_file_it_cannot_serve(hub):
    from huggingface_hub import HfApi

    info = HfApi(endpoint=hub.url, token=False).model_info("tiiuae/falcon-7b", files_metadata=True)
    names = {s.rfilename for s in info.siblings}
    assert "model.safetensors.index.json" not in names and not any(" " in n for n in names)
    for name in names & {"config.json", "pytorch_model.bin.index.json"}:  # what is listed and small is real JSON
        text = (ROOT / "fixtures/tiiuae--falcon-7b" / name).read_text()
        assert json.loads(text)


def test_every_fixture_sits_well_inside_the_config_bounds():
    """The bounds are a multiple of the largest real value (fixtures/), never near it."""
    from hfvram.introspect import validate as v
    from hfvram.introspect.config import text_section

    groups = {"num_hidden_layers": v.MAX_LAYERS, "hidden_size": v.MAX_HIDDEN, "num_attention_heads": v.MAX_HEADS,
              "head_dim": v.MAX_HEAD_DIM, "intermediate_size": v.MAX_INTERMEDIATE, "vocab_size": v.MAX_VOCAB,
              "num_experts": v.MAX_EXPERTS, "n_routed_experts": v.MAX_EXPERTS, "num_local_experts": v.MAX_EXPERTS,
              "max_position_embeddings": v.MAX_CONTEXT_CLAIM, "ssm_state_size": v.MAX_STATE,
              "conv_kernel": v.MAX_CONV}
    largest = dict.fromkeys(groups, 0)
    for path in sorted((ROOT / "fixtures").glob("*/config.json")):
        raw = json.loads(path.read_text())
        v.check_config(raw, str(path))  # every real config passes as it is
        for section in (raw, text_section(raw)):
            for key in groups:
                if isinstance(section.get(key), int):
                    largest[key] = max(largest[key], section[key])
    assert all(largest.values())
    assert all(groups[k] >= 16 * largest[k] for k in groups), {k: (largest[k], groups[k]) for k in groups}
    assert (largest["num_hidden_layers"], largest["hidden_size"], largest["vocab_size"]) == (126, 16384, 262208)


# -- the issue's own cases, one by one ---------------------------------------------------------------------------------

LLAMA = json.loads((ROOT / "fixtures/meta-llama--Llama-2-7b-hf/config.json").read_text())
GEMMA = json.loads((ROOT / "fixtures/google--gemma-2-9b-it/config.json").read_text())
QWEN = json.loads((ROOT / "fixtures/Qwen--Qwen2.5-7B/config.json").read_text())


def analyse_config(cfg: dict, **settings):
    from hfvram.analysis import analyze
    from hfvram.repodata import RepoData

    text = json.dumps(cfg)
    return analyze("org/cfg", repo=RepoData(id="org/cfg", files={"config.json": len(text)},
                                            texts={"config.json": text}), **settings)


@pytest.mark.parametrize("cfg,needle", [
    ({**LLAMA, "num_hidden_layers": 10 ** 7}, "num_hidden_layers is 10,000,000, above 4,096"),
    ({**LLAMA, "num_hidden_layers": 10 ** 6}, "num_hidden_layers is 1,000,000, above 4,096"),
    ({**LLAMA, "hidden_size": -4096}, "hidden_size is -4,096, below 1"),
    ({**LLAMA, "intermediate_size": -11008}, "intermediate_size is -11,008, below 1"),
    ({**LLAMA, "head_dim": -128}, "head_dim is -128, below 1"),
    ({**LLAMA, "num_key_value_heads": -8}, "num_key_value_heads is -8, below 1"),
    ({**GEMMA, "layer_types": ["garbage"] * 42}, "layer_types has 'garbage', not a layer type"),
    ({**QWEN, "rope_scaling": {"type": "yarn", "factor": "4", "original_max_position_embeddings": 32768}},
     "rope_scaling.factor is '4', not a finite number"),
    ({"model_type": "llava", "text_config": [LLAMA]}, "text_config is a list, not an object"),
    ({**LLAMA, "hidden_size": "4096"}, "hidden_size is a string ('4096'), not a whole number"),
    ({**LLAMA, "vocab_size": float("nan")}, "vocab_size is nan, not a whole number"),
    ({**LLAMA, "hidden_size": 262144, "intermediate_size": 4194304, "num_hidden_layers": 4096,
      "num_key_value_heads": 1},
     "parameters (14,091,359,946,539,008 active) is outside 0 to 100,000,000,000,000 (~100x the largest released "
     "model, Kimi-K2) as estimated from the config"),
])
def test_the_configs_the_issue_names_are_named_errors(cfg, needle):
    from hfvram.errors import MalformedInput

    start = time.monotonic()
    with pytest.raises(MalformedInput) as err:
        analyse_config(cfg)
    assert needle in str(err.value)
    assert time.monotonic() - start < 5


def test_layers_at_the_bound_take_moments():
    start = time.monotonic()
    result = analyse_config({**LLAMA, "num_hidden_layers": 4096})
    assert time.monotonic() - start < 5
    assert result.facts.arch.num_layers == 4096 and len(set(result.facts.arch.layers)) == 1  # one shared spec
    assert result.kv.per_token_bytes == 4096 * 2 * 32 * 128 * 2


@pytest.mark.parametrize("argv,needle", [(["--quantize", "exl2:-3"], "--quantize exl2:BPW takes 2 to 8"),
                                         (["--context", "1e20"], "as a number of tokens"),
                                         (["--context", str(10 ** 20)], "--context must be between 1 and")])
def test_the_settings_the_issue_names_are_usage_errors(cli, argv, needle):
    code, out, err = cli(["org/tiny", *argv])
    one_line_error(code, out, err, needle)


def test_a_link_under_the_cache_that_leads_out_of_it_is_not_followed(tmp_path):
    from hfvram.sources.cache import MetadataCache

    cache, outside = tmp_path / "cache", tmp_path / "outside"
    (cache / "meta").mkdir(parents=True)
    outside.mkdir()
    (cache / "meta" / "org--evil").symlink_to(outside)
    (cache / "meta" / "org--fine").mkdir()
    (cache / "meta" / "org--alias").symlink_to(cache / "meta" / "org--fine")  # a link that stays inside is fine
    c = MetadataCache(cache)
    sha = "a" * 40
    assert c._meta_path("org/evil", sha) is None
    assert c._meta_path("org/fine", sha) == cache / "meta" / "org--fine" / f"{sha}.json.gz"
    assert c._meta_path("org/alias", sha) == cache / "meta" / "org--alias" / f"{sha}.json.gz"
    assert c._meta_path("org/new", sha) == cache / "meta" / "org--new" / f"{sha}.json.gz"  # not there yet
    (cache / "refs").symlink_to(outside)
    assert c._ref_path("org/fine", "main") is None
