"""Property-based fuzzing (hypothesis) of what a hostile or broken repo can hand hfvram: configs and safetensors
headers. Every case must end in an answer that is sane (never negative; never above 100T parameters, 1 PB of weights
or 10 PB of memory) or in one of our named errors (`HfvramError`, not "unexpected" or "internal"), within 5 s.

Configs are real fixture configs (fixtures/*/config.json), mutated: a key set to the wrong type, NaN, infinity, zero,
a negative or a huge number, a string, a list or an object, or dropped; keys hfvram reads are added too, and nested
sections (text_config, rope_scaling, quantization_config) are mutated in place. Headers are real fixture headers,
mutated in their entries (dtype, shape, offsets), their metadata and their bytes, and read by `hfvram.stformat`
directly and through the fake Hub (hfvram/fakehub.py) by the real client.

The number of cases scales with HFVRAM_FUZZ_SCALE (default 1: 4,500 cases in all, about a minute on a 2-core
machine). All of them run under `make test` (marker `fuzz`: `pytest -m fuzz` runs only these)."""

from __future__ import annotations

import copy
import json
import math
import os
import struct
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfvram import stformat
from hfvram.errors import HfvramError, MalformedInput
from hfvram.fakehub import write_fixture
from hfvram.introspect.validate import KEYS
from hfvram.repodata import RepoData, load_fixture

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("HFVRAM_FUZZ_SCALE") or 1)
# What an answer may never exceed without a named error (the issue's own line for "absurd").
MAX_PARAMETERS = 10 ** 14
MAX_BYTES = 10 ** 16  # 10 PB
SLOW_S = 5.0


def examples(n: int) -> settings:
    return settings(max_examples=max(10, int(n * SCALE)), deadline=None, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
                    print_blob=True)


# -- the material ------------------------------------------------------------------------------------------------------

def _fixtures():
    out = []
    for directory in sorted(p for p in (ROOT / "fixtures").iterdir() if (p / "repo.json").is_file()):
        repo, _ = load_fixture(directory)
        if "config.json" in repo.texts:
            out.append(repo)
    return out


FIXTURES = _fixtures()
CONFIGS = {r.id: json.loads(r.texts["config.json"]) for r in FIXTURES}
# Checkpoints small enough to analyse many times a second (up to 3,000 tensors).
SMALL = {r.id: r for r in FIXTURES if 0 < sum(len(t) for _, t in r.safetensors.values()) <= 3000}
NESTED = ("text_config", "language_config", "rope_scaling", "rope_parameters", "quantization_config")
READ_KEYS = sorted(set(KEYS) | set(NESTED) | {"sliding_window", "layer_types", "hybrid_override_pattern"})

SPECIAL = [None, -1, 0, 1, 2, 3, 7, 64, 4095, 65536, 2 ** 20, 2 ** 31, 2 ** 63, 10 ** 30, -10 ** 9, 0.5, 3.7, -0.0,
           math.nan, math.inf, -math.inf, 1e308, "", "x", "4096", "2", True, False, [], [1, 2], [None], ["garbage"],
           ["full_attention", "mamba"], ["sliding_attention"], {}, {"a": 1}, {"factor": "2"},
           {"rope_type": "yarn", "factor": 4000, "original_max_position_embeddings": 2 ** 31},
           {"type": "linear", "factor": 4096}, [[[]]], "M*-E" * 2000]
VALUES = st.one_of(st.sampled_from(SPECIAL), st.integers(-2 ** 70, 2 ** 70),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                   st.lists(st.integers(-5, 70000), max_size=5))


@st.composite
def mutated_configs(draw, names):
    name = draw(st.sampled_from(names))
    cfg = copy.deepcopy(CONFIGS[name])
    for _ in range(draw(st.integers(1, 4))):
        sections = [()] + [(k,) for k in NESTED if isinstance(cfg.get(k), dict)]
        where = draw(st.sampled_from(sections))
        target = cfg[where[0]] if where else cfg
        key = draw(st.sampled_from(sorted(set(target) | set(READ_KEYS))))
        if draw(st.integers(0, 6)) == 0:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(draw(VALUES))
    return name, cfg


def sane(result) -> str | None:
    """What is absurd about an answer (None: nothing)."""
    d = result.to_dict()
    numbers = {"parameters": d["parameters"]["total"], "active parameters": d["parameters"]["active"],
               "weight bytes": d["weights"]["bytes"], "kv bytes": d["kv_cache"]["bytes"],
               "kv bytes per token": d["kv_cache"]["per_token_bytes"]}
    for name, e in d["estimates"].items():
        numbers[f"{name} total"] = e["total_bytes"]
        numbers[f"{name} per GPU"] = e["per_gpu_bytes"]
        numbers.update({f"{name} {k}": v for k, v in e["components"].items()})
    for what, value in numbers.items():
        if not isinstance(value, (int, float)) or value != value or value < 0 or value > MAX_BYTES:
            return f"{what} = {value!r}"
    if d["parameters"]["total"] > MAX_PARAMETERS or d["weights"]["bytes"] > 10 ** 15:
        return f"parameters {d['parameters']['total']:,}, weights {d['weights']['bytes']:,} bytes"
    ctx = d["architecture"]["max_context"]
    if ctx is not None and not 0 < ctx <= 1 << 32:
        return f"max_context = {ctx!r}"
    return None


def run_case(repo: RepoData, outcomes: Counter, **settings_) -> None:
    from hfvram.analysis import analyze

    start = time.monotonic()
    try:
        result = analyze(repo.id, repo=repo, projections=(), suggest=False, **settings_)
    except HfvramError as exc:
        assert not str(exc).startswith(("unexpected", "internal")), exc
        assert "\n" not in str(exc)
        outcomes["named error"] += 1
    else:
        problem = sane(result)
        assert problem is None, problem
        outcomes["answer"] += 1
    elapsed = time.monotonic() - start
    assert elapsed < SLOW_S, f"{elapsed:.1f} s"


@pytest.fixture(scope="module", autouse=True)
def warm_transformers():
    """The first config read imports transformers (seconds): not a case's time."""
    from hfvram.analysis import analyze

    repo = FIXTURES[0]
    config_only = RepoData(id=repo.id, files={"config.json": 1}, texts={"config.json": repo.texts["config.json"]})
    analyze(repo.id, repo=config_only, projections=(), suggest=False)


# -- configs ----------------------------------------------------------------------------------------------------------

CONFIG_ONLY = Counter()


@examples(1500)
@given(case=mutated_configs(sorted(CONFIGS)), gpu=st.sampled_from([None, "H100", "RTX-4090:2"]))
def test_mutated_configs_alone_give_an_answer_or_a_named_error(case, gpu):
    name, cfg = case
    text = json.dumps(cfg)
    repo = RepoData(id=name, files={"config.json": len(text)}, texts={"config.json": text})
    run_case(repo, CONFIG_ONLY, gpu=gpu)


WITH_TENSORS = Counter()


@examples(700)
@given(case=mutated_configs(sorted(SMALL)),
       quantize=st.sampled_from([None, "awq", "gguf:Q4_K_M", "exl2:4.0", "int8"]),
       context=st.sampled_from([None, 1, 4096, 131072]))
def test_mutated_configs_over_real_tensor_tables_give_an_answer_or_a_named_error(case, quantize, context):
    name, cfg = case
    base = SMALL[name]
    repo = RepoData(id=base.id, sha=base.sha, source="hub", files=dict(base.files),
                    texts={**base.texts, "config.json": json.dumps(cfg)}, safetensors=base.safetensors)
    run_case(repo, WITH_TENSORS, gpu="H100", quantize=quantize, context=context)


def test_config_fuzzing_reached_both_outcomes():
    """The generators are not all refused nor all accepted (a fuzzer that only finds errors tests the validator)."""
    for counts in (CONFIG_ONLY, WITH_TENSORS):
        if sum(counts.values()) >= 100 * SCALE:
            assert counts["answer"] > 0.05 * sum(counts.values()), counts
            assert counts["named error"] > 0.05 * sum(counts.values()), counts
    print(f"\nconfig fuzzing: alone {dict(CONFIG_ONLY)}, over tensor tables {dict(WITH_TENSORS)}")


# -- safetensors headers -----------------------------------------------------------------------------------------------

def _headers():
    """Real headers of up to 400 tensors (a deep copy per case stays cheap), from different fixtures."""
    out = []
    for repo in SMALL.values():
        for path in sorted(repo.safetensors)[:1]:
            if len(repo.safetensors[path][1]) <= 400 and len(out) < 12:
                out.append(json.loads(repo.header_bytes(path)[8:]))
    return out


HEADERS = _headers()
DTYPES = sorted(stformat.DTYPE_BITS)
ENTRY_VALUES = st.one_of(VALUES, st.sampled_from(DTYPES),
                         st.lists(st.one_of(st.integers(-2 ** 66, 2 ** 66), st.sampled_from(SPECIAL)), max_size=4))


def _tiny_header() -> dict:
    """A 2-layer Llama's header (48 kB of data): small enough to serve its data through the fake Hub."""
    tensors = [("model.embed_tokens.weight", "BF16", [100, 64]), ("lm_head.weight", "BF16", [100, 64]),
               ("model.norm.weight", "BF16", [64])]
    for i in range(2):
        p = f"model.layers.{i}."
        tensors += [(p + "self_attn.q_proj.weight", "BF16", [64, 64]),
                    (p + "self_attn.k_proj.weight", "BF16", [32, 64]),
                    (p + "self_attn.v_proj.weight", "BF16", [32, 64]),
                    (p + "self_attn.o_proj.weight", "BF16", [64, 64]),
                    (p + "mlp.gate_proj.weight", "BF16", [128, 64]), (p + "mlp.up_proj.weight", "BF16", [128, 64]),
                    (p + "mlp.down_proj.weight", "BF16", [64, 128]), (p + "input_layernorm.weight", "BF16", [64])]
    raw = stformat.build_header(tensors, {"format": "pt"})
    return json.loads(raw[8:])


TINY_HEADER = _tiny_header()


def data_end(body: bytes) -> int:
    """The data size a mutated header asks for, when it can be told (for serving it), else 0."""
    try:
        header = json.loads(body)
        ends = [e["data_offsets"][1] for e in header.values() if isinstance(e, dict)
                and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2]
        return max([e for e in ends if isinstance(e, int) and 0 <= e <= 1 << 20] or [0])
    except (ValueError, RecursionError, AttributeError, TypeError):
        return 0


@st.composite
def mutated_headers(draw, bases=None) -> bytes:
    header = copy.deepcopy(draw(st.sampled_from(bases or HEADERS)))
    for _ in range(draw(st.integers(0, 4))):
        names = [n for n in header if n != "__metadata__"]
        entries = [n for n in names if isinstance(header[n], dict)]
        op = draw(st.integers(0, 12))
        if op >= 10 and entries:  # changes a valid header survives: a shape permuted, a tensor added, metadata
            entry = header[draw(st.sampled_from(entries))]
            if op == 10 and isinstance(entry.get("shape"), list):
                entry["shape"] = list(reversed(entry["shape"]))
            elif op == 11:
                ends = [e["data_offsets"][1] for e in header.values() if isinstance(e, dict)
                        and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2]
                end = max([e for e in ends if isinstance(e, int)] or [0])
                shape = draw(st.lists(st.integers(0, 64), max_size=3))
                header[draw(st.text(min_size=1, max_size=8))] = {
                    "dtype": "F32", "shape": shape, "data_offsets": [end, end + 4 * math.prod(shape)]}
            else:
                header["__metadata__"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
        elif op <= 5 and entries:  # an entry's field
            entry = header[draw(st.sampled_from(entries))]
            field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
            if op == 0:
                entry.pop(field, None)
            elif field == "shape" and op <= 3:  # a plausible shape with its span kept consistent
                shape = draw(st.lists(st.integers(-3, 2 ** 40), max_size=3))
                entry["shape"] = shape
                offsets = entry.get("data_offsets")
                begin = offsets[0] if isinstance(offsets, list) and offsets else 0
                if type(begin) is int and isinstance(entry.get("dtype"), str) and entry["dtype"] in stformat.DTYPE_BITS:
                    entry["data_offsets"] = [begin, begin + (math.prod(shape) * stformat.DTYPE_BITS[entry["dtype"]]
                                                             + 7) // 8]
            else:
                entry[field] = copy.deepcopy(draw(ENTRY_VALUES))
        elif op == 6:  # the entry itself
            header[draw(st.sampled_from(names or ["x"]))] = copy.deepcopy(draw(VALUES))
        elif op == 7:
            header["__metadata__"] = copy.deepcopy(draw(VALUES))
        elif op == 8:  # a new tensor
            header[draw(st.text(max_size=8))] = {"dtype": draw(st.sampled_from(DTYPES)),
                                                 "shape": draw(st.lists(st.integers(0, 2 ** 33), max_size=3)),
                                                 "data_offsets": draw(st.lists(st.integers(-1, 2 ** 40), max_size=3))}
        else:
            header.pop(draw(st.sampled_from(names or ["x"])), None)
    body = json.dumps(header).encode()
    mode = draw(st.integers(0, 9))
    if mode == 0:  # cut short
        body = body[: draw(st.integers(0, len(body)))]
    elif mode == 1:  # bytes flipped
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, max(0, len(body) - 1)))
            body = body[:i] + bytes([draw(st.integers(0, 255))]) + body[i + 1:]
    elif mode == 2:  # nested past any recursion limit
        depth = draw(st.integers(1, 200_000))
        body = b'{"w": ' + b"[" * depth + b"]" * depth + b"}"
    return body


STFORMAT = Counter()


@examples(1500)
@given(body=mutated_headers(), size=st.one_of(st.none(), st.integers(0, 2 ** 50)))
def test_mutated_headers_parse_or_are_named_malformed(body, size):
    try:
        tensors, metadata = stformat.parse_header(body, file="model.safetensors", data_size=size)
    except MalformedInput:
        STFORMAT["named error"] += 1
        return
    STFORMAT["answer"] += 1
    offset = 0
    for t in tensors:
        assert t.nbytes >= 0 and t.nbytes == stformat.dtype_nbytes(t.dtype, t.shape)
        offset += t.nbytes
    assert size is None or offset <= size
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())


@examples(500)
@given(prefix=st.binary(max_size=16))
def test_header_length_of_any_prefix(prefix):
    try:
        n = stformat.header_length(prefix)
    except MalformedInput:
        return
    assert 2 <= n <= stformat.MAX_HEADER_BYTES


# -- headers through the fake Hub --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def st_hub(tmp_path_factory):
    """One fake Hub for the module (hypothesis runs many cases per test function)."""
    from huggingface_hub import constants

    from hfvram.fakehub import FakeHub
    from hfvram.sources.cache import MetadataCache
    from hfvram.sources.hub import HubSource

    root = tmp_path_factory.mktemp("fuzz-hub")
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
           "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "vocab_size": 100, "max_position_embeddings": 2048, "torch_dtype": "bfloat16"}
    write_fixture(root / "fuzz--st", "fuzz/st", files={"config.json": cfg},
                  tensors={"model.safetensors": [("model.embed_tokens.weight", "BF16", [100, 64])]})
    hub = FakeHub(root).start()
    home = root / "hf_home"
    with pytest.MonkeyPatch.context() as mp:  # as conftest's hf_isolated, for the whole module
        mp.setenv("HF_HOME", str(home))
        mp.delenv("HF_TOKEN", raising=False)
        mp.delenv("HF_HUB_OFFLINE", raising=False)
        for name, value in (("HF_HOME", home), ("HF_HUB_CACHE", home / "hub"), ("HF_TOKEN_PATH", home / "token"),
                            ("HF_STORED_TOKENS_PATH", home / "stored_tokens"),
                            ("AGENT_HARNESSES_PATH", home / ".agent_harnesses.json")):
            mp.setattr(constants, name, str(value), raising=False)
        mp.setattr(constants, "ENDPOINT", hub.url)
        mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        source = HubSource(token=False, endpoint=hub.url, cache=MetadataCache(enabled=False), notice=None)
        yield hub, source
    hub.stop()


THROUGH_HUB = Counter()


@examples(300)
@given(body=mutated_headers([TINY_HEADER]), delta=st.sampled_from([0, 0, 0, -1, 1, -4096, 4096]))
def test_mutated_headers_through_the_fake_hub_give_an_answer_or_a_named_error(st_hub, body, delta):
    from hfvram.analysis import analyze

    hub, source = st_hub
    extra = max(0, data_end(body) + delta)
    hub.set_file("fuzz/st", "model.safetensors", struct.pack("<Q", len(body)) + body + b"\0" * extra)
    start = time.monotonic()
    try:
        result = analyze("fuzz/st", hub=source, projections=(), suggest=False, gpu="H100")
    except HfvramError as exc:
        assert not str(exc).startswith(("unexpected", "internal")), exc
        THROUGH_HUB["named error"] += 1
    else:
        problem = sane(result)
        assert problem is None, problem
        THROUGH_HUB["answer"] += 1
    assert time.monotonic() - start < SLOW_S


def test_header_fuzzing_reached_both_outcomes():
    for counts in (STFORMAT, THROUGH_HUB):
        if sum(counts.values()) >= 100 * SCALE:
            assert counts["answer"] > 0 and counts["named error"] > 0, counts
    print(f"\nheader fuzzing: stformat {dict(STFORMAT)}, through the fake Hub {dict(THROUGH_HUB)}")
