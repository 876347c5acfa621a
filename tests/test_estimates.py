"""Per-framework estimates against numbers worked out by hand from each engine's rules (the arithmetic is in the
comments), one model per attention kind, and every option changing the result the way the engine would."""

from __future__ import annotations

import json

import pytest

import hfvram
from hfvram.gpus import GPU, GPUChoice

GiB = 1 << 30


def run(model: str, fw: str | list[str], **kw):
    names = [fw] if isinstance(fw, str) else fw
    a = hfvram.analyze(model, offline=True, frameworks=names, projections=(), **kw)
    return a.estimates[names[0]] if isinstance(fw, str) else a.estimates


def gpu(total: int, sm: str = "8.6", name: str = "test") -> GPUChoice:
    return GPUChoice(GPU(name=name, memory_bytes=total, usable_bytes=total, fp8=True, bf16=True,
                         compute_capability=sm, klass="custom"))


# -- vLLM ---------------------------------------------------------------------------------------------------------

def test_vllm_full_attention_reproduces_a_published_profile():
    """vllm#10517: Llama-3.1-8B on an RTX 3090 (23.58 GiB), vLLM 0.6.4, max_model_len 20000."""
    e = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu=gpu(25_318_832_210), context=20000,
            gpu_memory_utilization=0.9, max_num_seqs=256, max_num_batched_tokens=20000, vllm_version="0.6")
    # weights: checkpoint 16,060,522,496 + rotary cache 131072 x 128 x 2 bytes
    assert e.components["weights"] == 16_060_522_496 + 131072 * 128 * 2
    # activations: 20000 tokens x (3 x 4096 + 3 x 14336) x 2 bytes (larger than the sampler, 39 x 256 x 128256)
    assert e.components["activations"] == 20000 * (3 * 4096 + 3 * 14336) * 2
    # budget ceil(25,318,832,210 x 0.9); pool = budget - weights - non-torch (0.35 GiB) - activations
    budget = 22_786_948_989
    pool = budget - (16_060_522_496 + 33_554_432) - int(0.35 * GiB) - 2_211_840_000
    assert e.extras["kv_pool_bytes"] == pool
    # a block is 16 tokens x 32 layers x 8 KV heads x 128 x 2 (K,V) x 2 bytes = 2 MiB; one block is the null block
    assert e.extras["num_blocks"] == pool // (2 * 1024 * 1024) - 1 == 1956  # vLLM printed 1952 (0.2% off)


def test_vllm_sliding_window_groups_and_in_flight_tokens():
    e = run("openai/gpt-oss-20b", "vllm", gpu="H100", context=8192)
    # 12 full + 12 sliding layers -> two groups of 12; page = 16 x 8 x 64 x 2 x 2 = 32 KiB; block = 12 pages
    # per request: full 8192/16 = 512 blocks; sliding min(128-1 + 2 x 8192, 8192)/16 + 1 = 513
    # H100 server defaults: max_num_batched_tokens 8192 (>= 70 GiB tier)
    assert e.extras["max_num_batched_tokens"] == 8192
    assert e.components["kv_cache"] == (512 + 513) * 12 * 32768
    short = run("openai/gpt-oss-20b", "vllm", gpu="H100", context=8192, max_num_batched_tokens=256)
    # window 127 + 2 x 256 = 639 tokens -> 40 + 1 blocks
    assert short.components["kv_cache"] == (512 + 41) * 12 * 32768


def test_vllm_mla_is_not_split_across_tensor_parallel_ranks():
    one = run("deepseek-ai/DeepSeek-V2-Lite", "vllm", context=4096)
    two = run("deepseek-ai/DeepSeek-V2-Lite", "vllm", context=4096, tp=2)
    # 27 layers x (512 + 64) x 2 bytes x 4096 tokens, the same on each rank
    assert one.components["kv_cache"] == two.components["kv_cache"] == 27 * 576 * 2 * 4096


def test_vllm_kv_heads_replicated_when_tp_exceeds_them():
    # Llama-3.1-8B has 32 heads and 8 KV heads: at TP 16 every rank still holds one KV head (max(1, 8 // 16))
    e = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=4096, tp=16)
    assert e.components["kv_cache"] == 32 * 1 * 128 * 2 * 2 * 4096


def test_tp_that_does_not_divide_the_heads():
    # Qwen2.5-7B has 28 heads: an explicit --tp 8 is a usage error when vLLM or TensorRT-LLM is asked for ...
    with pytest.raises(hfvram.HfvramError, match="does not divide the 28 attention heads"):
        run("Qwen/Qwen2.5-7B-Instruct", "vllm", tp=8)
    # ... and three GPUs named by --gpu make those engines' rows unsupported, while layer splits still answer
    rows = run("Qwen/Qwen2.5-7B-Instruct", ["vllm", "llamacpp"], gpu="L40S:3")
    assert not rows["vllm"].supported and "does not divide" in rows["vllm"].unsupported[0]
    assert rows["llamacpp"].supported and rows["llamacpp"].fits is True


def test_vllm_chunked_local_attention():
    e = run("meta-llama/Llama-4-Scout-17B-16E-Instruct", "vllm", context=65536, tp=4, max_num_batched_tokens=2048)
    # per rank 2 KV heads: page 16 x 2 x 128 x 2 x 2 = 16 KiB; 12 full + 36 chunked -> group size 12, 1 + 3 groups
    # full: 65536/16 = 4096 blocks; chunked: min(8192 + 2 x 2048, 65536)/16 = 768 blocks, x3 groups
    assert e.components["kv_cache"] == (4096 + 3 * 768) * 12 * 16384


@pytest.mark.parametrize("version,block,per_request", [("0.32", 544, 61 + 3 * 2), ("0.33", 576, 57 + 3 * 3)])
def test_vllm_hybrid_gdn_block_size(version, block, per_request):
    """Qwen3-Next: the attention block grows until a page holds a GDN state (docs/research/vllm-facts.md)."""
    e = run("Qwen/Qwen3-Next-80B-A3B-Thinking", "vllm", gpu=gpu(400 * GiB, "9.0", "H-class"), context=32768,
            vllm_version=version)
    # GDN state page: (24,576 + 524,288) elements x 2 bytes = 1,097,728; attention 2048 bytes per token and layer
    # 0.32: 16 x ceil(1,097,728 / (16 x 2048)) = 544; 0.33 on SM90 aligns to 64: 64 x 9 = 576
    assert e.extras["block_size"] == block
    page = block * 2048
    # 4 groups of 12 layers; full attention ceil(32768 / block); GDN 2 pages (align mode) + 1 checkpoint in 0.33
    assert e.components["kv_cache"] == per_request * 12 * page


def test_vllm_budget_by_release_and_eager():
    new = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100")
    old = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.19")
    assert (new.extras["gpu_memory_utilization"], old.extras["gpu_memory_utilization"]) == (0.92, 0.9)
    eager = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", enforce_eager=True)
    assert eager.components["cuda_graphs"] == 0 and new.components["cuda_graphs"] > 0
    assert eager.extras["kv_pool_bytes"] - new.extras["kv_pool_bytes"] == new.components["cuda_graphs"]


def test_vllm_reports_capacity_and_minimum_gpu():
    e = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="RTX-4090", context=8192)
    per_request = 8192 // 16  # blocks
    assert e.extras["max_concurrency"] == round(e.extras["num_blocks"] / per_request, 2)
    assert e.extras["kv_tokens"] == int(e.extras["num_blocks"] / per_request * 8192)
    assert e.fits is True and e.max_context >= 8192
    assert e.extras["min_gpu_bytes"] < 25 * GiB
    too_small = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu_mem="12GiB", context=8192)
    assert too_small.fits is False


# -- TensorRT-LLM -------------------------------------------------------------------------------------------------

def test_trtllm_pool_is_fraction_of_free_after_peak():
    e = run("meta-llama/Meta-Llama-3.1-8B", "trtllm", gpu=gpu(80 * GiB, "9.0"), context=8192)
    c = e.components
    peak = c["weights"] + c["activations"] + c["non_torch"] + c["cuda_graphs"] + c["cuda_context"]
    assert e.extras["kv_pool_bytes"] == int(0.9 * (80 * GiB - peak))
    # 32 layers x 8 KV heads x 128 x 2 x 2 bytes per token
    assert e.extras["kv_tokens"] == int(e.extras["kv_pool_bytes"] / 131072)
    assert c["kv_cache"] == 8192 * 131072


def test_trtllm_vswa_equal_shares():
    # gpt-oss-20b: 12 full + 12 sliding (128) layers, 8 KV heads x 64; each window group gets half the pool
    e = run("openai/gpt-oss-20b", "trtllm", gpu=gpu(24 * GiB, "8.9"), context=65536)
    per_layer_token = 8 * 64 * 2 * 2
    full_group = 12 * per_layer_token * 65536
    assert e.components["kv_cache"] == full_group + 12 * per_layer_token * 128
    assert e.fits == (full_group <= e.extras["kv_pool_bytes"] / 2)
    assert e.max_context is not None and 12 * per_layer_token * e.max_context <= e.extras["kv_pool_bytes"] / 2


def test_trtllm_mla_kv():
    e = run("deepseek-ai/DeepSeek-V3", "trtllm", context=4096)
    assert e.components["kv_cache"] == 61 * 576 * 2 * 4096  # kv_factor 1, head_dim kv_lora_rank + rope


def test_trtllm_pytorch_backend_lacks_some_architectures():
    # Gemma-2 and DeepSeek-V2 are on TensorRT-LLM's engine path only (engine_support.json "tensorrt")
    e = run("google/gemma-2-9b-it", "trtllm")
    assert not e.supported and "TensorRT engine path" in e.unsupported[0]


# -- llama.cpp ----------------------------------------------------------------------------------------------------

def test_llamacpp_padding_swa_cells_and_host_embeddings():
    e = run("openai/gpt-oss-20b", "llamacpp", context=1000)
    # n_ctx padded to 1024; SWA cells PAD(min(1024, 128 + 512), 256) = 768; per layer-cell 8 x 64 x 2 x 2 bytes f16
    assert e.extras["n_ctx"] == 1024
    assert e.components["kv_cache"] == 12 * 1024 * 2048 + 12 * 768 * 2048
    assert e.extras["host_bytes"] > 0  # token_embd stays in host RAM


def test_llamacpp_mla_caches_k_only_and_quantised_cache():
    e = run("deepseek-ai/DeepSeek-V2-Lite", "llamacpp", context=4096)
    assert e.components["kv_cache"] == 27 * 4096 * 576 * 2  # K only, f16
    q8 = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", context=8192, kv_dtype="q8_0")
    # 32 layers x 8192 cells x 2 x 1024 elements x 34/32 bytes (q8_0 block)
    assert q8.components["kv_cache"] == int(32 * 8192 * 2 * 1024 * 34 / 32)
    no_fa = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", context=8192, kv_dtype="q8_0", flash_attn=False)
    assert any("flash attention" in n for n in no_fa.notes)


def test_llamacpp_gguf_weights_and_partial_offload():
    full = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", quantize="gguf:Q4_K_M")
    half = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", quantize="gguf:Q4_K_M", gpu_layers=16)
    assert 4.2 * GiB < full.components["weights"] < 4.6 * GiB
    # 16 of 32 layers and no output layer on the GPU; their KV follows them
    assert half.components["kv_cache"] == full.components["kv_cache"] // 2
    assert half.components["weights"] < full.components["weights"] / 2


# -- ExLlamaV2 ----------------------------------------------------------------------------------------------------

def test_exllamav2_no_sliding_savings_and_q4_cache():
    fp16 = run("google/gemma-2-9b-it", "exllamav2", context=8192)
    # every one of the 42 layers holds all 8192 tokens: 8 heads x 256 x 2 x 2 bytes
    assert fp16.components["kv_cache"] == 42 * 8192 * 8 * 256 * 2 * 2
    q4 = run("google/gemma-2-9b-it", "exllamav2", context=8192, kv_dtype="q4")
    # Q4 = 1.125 bytes per K+V pair of elements, plus one fp16 K/V layer as conversion buffer
    assert q4.components["kv_cache"] == int(42 * 8192 * 8 * 256 * 1.125) + 8192 * 8 * 256 * 2 * 2


def test_exllamav2_refuses_architectures_it_lacks():
    e = run("deepseek-ai/DeepSeek-V2-Lite", "exllamav2", gpu="H100")
    assert not e.supported and e.fits is False and e.per_gpu_bytes == 0
    assert any("latent attention" in r or "mla" in r.lower() for r in e.unsupported)
    mamba = run("state-spaces/mamba-2.8b-hf", "exllamav2")
    assert not mamba.supported


# -- transformers -------------------------------------------------------------------------------------------------

def test_transformers_static_cache_and_eager_attention():
    dyn = run("meta-llama/Meta-Llama-3.1-8B", "transformers", context=8192, prompt_tokens=4096)
    static = run("meta-llama/Meta-Llama-3.1-8B", "transformers", context=8192, prompt_tokens=4096,
                 cache_implementation="static")
    # the static cache is allocated for the whole context before prefill
    assert static.extras["peak_allocated_bytes"] > dyn.extras["peak_allocated_bytes"]
    eager = run("meta-llama/Meta-Llama-3.1-8B", "transformers", context=8192, attn_implementation="eager")
    sdpa = run("meta-llama/Meta-Llama-3.1-8B", "transformers", context=8192)
    # eager: 32 heads x 8192^2 scores in bf16 plus a float32 softmax copy
    assert eager.components["activations"] - sdpa.components["activations"] >= 32 * 8192 * 8192 * 6 - 2 * GiB


def test_transformers_sliding_layers_hold_the_prompt_at_prefill():
    e = run("openai/gpt-oss-20b", "transformers", context=8192)
    # prefill of 8192 tokens: every layer (sliding ones too) references the whole prompt's K/V
    assert e.components["kv_cache"] == 24 * 8192 * 8 * 64 * 2 * 2


def test_seed_table_kv_for_llama2_7b():
    # The seed table: KV 2.1 / 4.2 / 8.4 / 16.8 / 67.2 GB at 4K / 8K / 16K / 32K / 128K. The exact figure is
    # 524,288 bytes x tokens = 2.147 / 4.295 / 8.590 / 17.18 / 68.72 GB: the seed doubled its rounded 2.1 GB.
    for ctx, gb in ((4096, 2.1), (8192, 4.2), (16384, 8.4), (32768, 16.8), (131072, 67.2)):
        e = run("meta-llama/Llama-2-7b-hf", "transformers", context=ctx, prompt_tokens=1)
        assert e.components["kv_cache"] == 524_288 * ctx
        assert abs(e.components["kv_cache"] / 1e9 / gb - 1) < 0.025


# -- options ------------------------------------------------------------------------------------------------------

def test_options_change_results_as_engines_would():
    base = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=8192)
    tp2 = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=8192, tp=2)
    assert abs(tp2.components["weights"] * 2 - base.components["weights"]) < 40 * 1024 * 1024  # rope cache copy
    assert tp2.components["kv_cache"] == base.components["kv_cache"] // 2
    fp8 = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=8192, kv_dtype="fp8")
    assert fp8.components["kv_cache"] == base.components["kv_cache"] // 2
    awq = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=8192, quantize="awq")
    # decoder linears at 0.5 + 2/128 + 0.5/128 bytes per weight, embeddings and head stay bf16
    assert 5.0 * GiB < awq.components["weights"] < 5.5 * GiB
    lora = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=8192, lora="rank=16")
    # vLLM wraps every linear: 16 x (8192 + 5120 + 5120 + 8192 + 18432 + 18432 + 18432) x 32 layers x 2 bytes
    assert lora.components["lora"] == 16 * 81920 * 32 * 2 == 80 * 1024 * 1024
    draft = run("meta-llama/Meta-Llama-3.1-8B", "vllm", context=8192, draft="meta-llama/Llama-3.2-1B")
    assert draft.components["draft"] > 2 * GiB and draft.components["kv_cache"] > base.components["kv_cache"]
    contiguous = run("openai/gpt-oss-20b", "vllm", context=65536, kv_paging="contiguous")
    paged = run("openai/gpt-oss-20b", "vllm", context=65536)
    assert contiguous.components["kv_cache"] > paged.components["kv_cache"]
    hf_lora = run("meta-llama/Meta-Llama-3.1-8B", "transformers", context=8192, lora="rank=16,count=2")
    # PEFT keeps adapters in fp32: q_proj (4096+4096) and v_proj (4096+1024) x 16 x 32 layers x 4 bytes x 2 adapters
    assert hf_lora.components["lora"] == 16 * (8192 + 5120) * 32 * 4 * 2


def test_fit_verdict_max_context_and_suggestions():
    e = run("meta-llama/Meta-Llama-3.1-70B", "vllm", gpu="L40S", context=32768)
    assert e.fits is False
    assert any("--tp" in s.text or "--quantize" in s.text for s in e.suggestions)
    ok = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", gpu="RTX-4090", context=32768)
    assert ok.fits is True and ok.max_context > 32768


def test_cli_gpu_table_and_json_estimates(cli):
    code, out, _ = cli(["meta-llama/Llama-2-7b-hf", "--gpu", "RTX-4090", "--offline", "--json"])
    assert code == 0
    d = json.loads(out)
    assert d["gpu"]["name"] == "RTX-4090"
    for name in ("transformers", "vllm", "trtllm", "llamacpp", "exllamav2"):
        e = d["estimates"][name]
        assert set(e) >= {"total_bytes", "per_gpu_bytes", "components", "fits", "max_context", "notes", "engine",
                          "supported", "process_bytes", "suggestions"}
        assert e["supported"] is True and e["engine"]["version"]
        assert e["fits"] is True and e["per_gpu_bytes"] == sum(e["components"].values())
    # the seed's rule: llama.cpp and ExLlamaV2 below the PyTorch baseline, computed not assumed
    assert d["estimates"]["llamacpp"]["vs_transformers"] < 0 and d["estimates"]["exllamav2"]["vs_transformers"] < 0
    assert set(d["projections"]) == {"16384", "32768", "131072"}
    assert d["projections"]["131072"]["beyond_max_context"] is True
