"""Projections that respect the checkpoint: `--quantize gguf:TYPE` against published GGUF files of real repos
(validation/gguf-sizes.jsonl), through tools/gguf_size_table.py, and the rules that make them agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import hfvram
from hfvram.estimate import gguf

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("gguf_size_table", ROOT / "tools" / "gguf_size_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, mod.rows()


def test_published_sizes_within_one_percent(table):
    mod, rows = table
    compared = [r for r in rows if not r["skip"]]
    within = [r for r in compared if abs(r["diff"]) <= 0.01]
    assert len(within) >= 20
    assert len({r["arch"] for r in within}) >= 8
    # every miss is one the table names (never silently absorbed)
    misses = {(r["repo"], r["type"]) for r in compared if abs(r["diff"]) > 0.01}
    assert misses <= set(mod.UNEXPLAINED), misses
    # the README table is what the tool prints
    readme = (ROOT / "README.md").read_text()
    for line in mod.by_repo(rows).splitlines()[2:]:
        assert line in readme, line


def test_gpt_oss_experts_keep_mxfp4(table):
    _, rows = table
    unsloth = {r["type"]: r for r in rows if r["repo"] == "unsloth/gpt-oss-20b-GGUF" and not r["skip"]}
    # every type of unsloth's gpt-oss-20b is 11.5-11.8 GB: the experts stay MXFP4, the type names the dense tensors
    assert {"Q2_K", "Q4_K_M", "Q5_K_M", "F16"} <= set(unsloth)
    for t, r in unsloth.items():
        assert abs(r["diff"]) <= 0.01, (t, r["diff"])
    assert unsloth["Q4_K_M"]["projected"] < unsloth["F16"]["projected"]
    # re-quantized on purpose (--allow-requantize), as DevQuasar's Q8_0 is: 22.3 GB
    dq = next(r for r in rows if r["repo"].startswith("DevQuasar/") and r["type"] == "Q8_0")
    assert dq["requantized"] and abs(dq["diff"]) <= 0.01


def test_quantize_gpt_oss_q4_k_m_is_smaller_than_f16():
    """The issue's case: --quantize gguf:Q4_K_M on gpt-oss gave 15.4 GB, more than F16's 12.6 GB."""
    sizes = {}
    for q in ("gguf:F16", "gguf:Q4_K_M", "gguf:MXFP4_MOE", "gguf:Q8_0"):
        a = hfvram.analyze("openai/gpt-oss-20b", offline=True, projections=(), frameworks=["llamacpp"], quantize=q)
        sizes[q] = a.model.gguf.file_bytes
        if q != "gguf:F16":
            assert any("keep that type" in n for n in a.model.gguf.notes) or q == "gguf:MXFP4_MOE"
    assert sizes["gguf:Q4_K_M"] < sizes["gguf:Q8_0"] < sizes["gguf:F16"]
    assert 11.5e9 < sizes["gguf:Q4_K_M"] < 11.7e9  # unsloth's gpt-oss-20b-Q4_K_M.gguf: 11.6 GB


def test_fused_qkv_rules_by_era(table):
    """Phi-4's fused attn_qkv: the files of January 2025 (b4456) follow the branch llama.cpp had until 4227c9b;
    the current rules file attn_qkv under attn_v and give larger files."""
    _, rows = table
    phi4 = {r["type"]: r for r in rows if r["repo"] == "bartowski/phi-4-GGUF" and not r["skip"]}
    assert all(r["rules"] == "4227c9b" for r in phi4.values())
    assert all(abs(r["diff"]) <= 0.01 for r in phi4.values())
    from hfvram.introspect import introspect
    from hfvram.repodata import load_fixture

    repo, _ = load_fixture(ROOT / "fixtures" / "microsoft--phi-4")
    facts = introspect(repo)
    for ftype in ("IQ2_XS", "Q2_K", "IQ4_XS"):
        old = gguf.weights_for(facts, ftype, version="4227c9b", has_imatrix=True)
        new = gguf.weights_for(facts, ftype, version="current", has_imatrix=True)
        qkv_old = {t.type for t in old.tensors if t.name.endswith("attn_qkv.weight")}
        qkv_new = {t.type for t in new.tensors if t.name.endswith("attn_qkv.weight")}
        assert qkv_old == {gguf.FILE_TYPES[ftype]}  # no branch touched it
        assert qkv_new != qkv_old and new.file_bytes > old.file_bytes * 1.02
    # Q4_K_M: the old branch gave every attn_qkv Q5_K, the current use_more_bits split Q6_K / Q4_K
    old = gguf.weights_for(facts, "Q4_K_M", version="4227c9b")
    assert {t.type for t in old.tensors if t.name.endswith("attn_qkv.weight")} == {"Q5_K"}


def test_imatrix_changes_the_mix():
    """mradermacher's i1 IQ3_XXS of Qwen3-235B (90.38 GB) is an imatrix quant: without one, llama-quantize bumps
    ffn_down to Q4_K/Q3_K and attn_v to IQ3_S."""
    from hfvram.introspect import introspect
    from hfvram.repodata import load_fixture

    repo, _ = load_fixture(ROOT / "fixtures" / "Qwen--Qwen3-235B-A22B")
    facts = introspect(repo)
    with_im = gguf.weights_for(facts, "IQ3_XXS", has_imatrix=True).file_bytes
    without = gguf.weights_for(facts, "IQ3_XXS").file_bytes
    assert abs(with_im - 90.38e9) / 90.38e9 < 0.001
    assert without > with_im * 1.04


def test_published_size_parsing(table):
    mod, _ = table
    assert mod.published({"bytes": None, "printed": "17.311 GB", "precision_bytes": 500000}) == (17_311_000_000,
                                                                                                   500000)
    assert mod.published({"bytes": None, "printed": "11.27 GiB", "precision_bytes": 1})[0] == round(11.27 * 2 ** 30)
    assert mod.published({"bytes": None, "printed": "7502 (MB column, = MiB)", "precision_bytes": 1})[0] == \
        7502 * 2 ** 20
    assert mod.published({"bytes": 3738731552, "printed": "size_in_mb 3565.53", "precision_bytes": 0})[0] == \
        3738731552
