"""Per-framework estimates against numbers worked out by hand from each engine's rules (the arithmetic is in the
comments), one model per attention kind, and every option changing the result the way the engine would."""

from __future__ import annotations

import json
import math

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


def test_vllm_non_torch_follows_release_tp_and_interconnect():
    from hfvram.estimate import vllm

    def nt(gpu_name: str, version: str, tp: int) -> int:
        return run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu=f"{gpu_name}:{tp}", vllm_version=version,
                   tp=tp).components["non_torch"]

    # H100 boards (NVSwitch) with TP since 0.17: NCCL + FlashInfer's all-reduce fusion workspace (2.09 GiB in the
    # v0.19 logs); 0.11-0.16 without the fusion: 0.545 GiB; TP1 0.25 / 0.13 GiB
    assert nt("H100", "0.19", 2) == int(vllm.NT_V117_TP_FUSION.in_sample) == int(2.09 * GiB)
    assert nt("H100", "0.14", 2) == int(0.545 * GiB)
    assert nt("H100", "0.19", 1) == int(0.25 * GiB) and nt("H100", "0.14", 1) == int(0.13 * GiB)
    # a PCIe pair (L40S, no NVLink): the era's TP1 figure + NCCL over PCIe (0.25 GiB, two RTX 4090, vllm#13061)
    assert nt("L40S", "0.19", 2) == int(0.25 * GiB + 0.25 * GiB)
    # V0 counted the CUDA context: 1.79 GiB on Hopper, 0.35 GiB elsewhere (vllm#10511, #10517)
    assert nt("H100", "0.6", 1) == int(1.79 * GiB) and nt("RTX-3090", "0.6", 1) == int(0.35 * GiB)


def test_vllm_cuda_graphs_from_capture_sizes_and_layers():
    from hfvram.estimate import vllm

    e = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.19")
    # H100 server defaults: 1024 seqs, 8192 tokens -> capture up to min(2 x 1024, 512) = 512: [1, 2, 4] + 8..248
    # step 8 (31) + 256..512 step 16 (17) = 51 PIECEWISE sizes, and FULL graphs for the same 51 decode sizes
    per_layer, l0, first = (vllm.CUDAGRAPH_PER_LAYER.in_sample, vllm.CUDAGRAPH_L0.in_sample,
                            vllm.CUDAGRAPH_FIRST.in_sample)
    assert e.components["cuda_graphs"] == int(first + 102 * per_layer * (32 + l0))
    # 0.11 captured 8..512 in steps of 8: 3 + 64 = 67 sizes each
    old = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.11")
    assert old.components["cuda_graphs"] == int(first + 134 * per_layer * (32 + l0))
    # 128 sequences: up to 256 -> 35 PIECEWISE + 19 FULL (decode up to 128)
    few = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.19", max_num_seqs=128)
    assert few.components["cuda_graphs"] == int(first + 54 * per_layer * (32 + l0))
    # a pipeline stage captures its own 16 layers
    stage = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100:2", vllm_version="0.19", pp=2)
    assert stage.components["cuda_graphs"] == int(first + 102 * per_layer * (16 + l0))


def test_vllm_pipeline_stages_sized_by_the_tightest():
    from hfvram.estimate import vllm

    e = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100:2", pp=2, vllm_version="0.19", context=8192)
    # stage 0 holds the embeddings and the hidden states it passes on, stage 1 the LM head and the sampler: each
    # worker sizes its own pool, and the engine takes the smaller block count
    per_stage = [run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100:2", pp=2, pp_rank=r, vllm_version="0.19",
                     context=8192) for r in (0, 1)]
    blocks = [p.extras["num_blocks"] for p in per_stage]
    assert e.extras["num_blocks"] == min(blocks) and blocks[0] != blocks[1]
    tight = per_stage[blocks.index(min(blocks))]
    assert e.extras["kv_pool_bytes"] == tight.extras["kv_pool_bytes"]
    assert e.components["non_torch"] == int(vllm.NT_PP.in_sample)  # PP without TP: 0.07 GiB


def test_vllm_sampler_by_release():
    from hfvram.estimate import vllm

    # 1024 rows x 128,256 logits; the forward at 8192 tokens (8192 x (3 x 4096 + 3 x 14336) x 2 = 0.84 GiB) is
    # smaller than either sampler
    new = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.19")
    old = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.16")
    assert new.components["activations"] == int(1024 * 128256 * vllm.SAMPLER_BYTES_PER_LOGIT.in_sample)
    assert old.components["activations"] == int(1024 * 128256 * vllm.SAMPLER_BYTES_PER_LOGIT_SORTED.in_sample)
    # a float32 model's logits take 2 bytes more per logit
    fp32 = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.19", dtype="float32")
    assert fp32.components["activations"] == int(1024 * 128256 * (vllm.SAMPLER_BYTES_PER_LOGIT.in_sample + 2))


def test_vllm_mxfp4_experts_padded_per_backend():
    stored = run("openai/gpt-oss-20b", "vllm", gpu="H100", tp=1)
    ampere = run("openai/gpt-oss-20b", "vllm", gpu="RTX-4090")
    # Marlin on Ada: hidden 2880 -> 3072 (multiple of 256), intermediate 2880 -> 2944 (of 128)
    from hfvram.estimate import build, vllm

    model = build(hfvram.analyze("openai/gpt-oss-20b", offline=True, frameworks=["vllm"], projections=()).facts)
    experts = model.weights["experts"]
    grow = experts * (3072 * 2944 / (2880 * 2880) - vllm.MXFP4_HOPPER_LAYOUT.in_sample)
    assert abs(ampere.components["weights"] - stored.components["weights"] - grow) < 1024


def test_vllm_process_memory_and_allocator_peak():
    e = run("meta-llama/Meta-Llama-3.1-8B", "vllm", gpu="H100", vllm_version="0.19")
    from hfvram.estimate import vllm

    budget = math.ceil(e.extras["budget_bytes"])
    # nvidia-smi: the whole budget + what was taken before the snapshot (0.51 GiB in the v0.19 logs); before 0.20
    # the CUDA graphs are captured after the pool was sized, outside the budget
    assert e.nvidia_smi == budget + int(vllm.OUTSIDE_BUDGET.in_sample) + e.components["cuda_graphs"]
    # torch's peak: weights + the larger of the profile's activation peak and the pool
    assert e.allocator_peak == e.components["weights"] + max(e.components["activations"], e.extras["kv_pool_bytes"])
    assert run("meta-llama/Meta-Llama-3.1-8B", "vllm").to_dict()["nvidia_smi_bytes"] is None  # no GPU: unknown


# -- TensorRT-LLM -------------------------------------------------------------------------------------------------

def test_trtllm_pool_is_fraction_of_free_after_peak():
    e = run("meta-llama/Meta-Llama-3.1-8B", "trtllm", gpu=gpu(80 * GiB, "9.0"), context=8192)
    c = e.components
    peak = c["weights"] + c["activations"] + c["non_torch"] + c["cuda_graphs"] + c["cuda_context"]
    assert e.extras["kv_pool_bytes"] == int(0.9 * (80 * GiB - peak))
    # 32 layers x 8 KV heads x 128 x 2 x 2 bytes per token
    assert e.extras["kv_tokens"] == int(e.extras["kv_pool_bytes"] / 131072)
    assert c["kv_cache"] == 8192 * 131072


def test_trtllm_engine_build_buffers_and_pool():
    from hfvram.estimate import trtllm

    e = run("meta-llama/Llama-2-7b-hf", "trtllm", gpu=gpu(80 * GiB, "9.0"), trtllm_backend="tensorrt",
            trtllm_version="0.12", max_batch_size=256, max_num_tokens=4096, context=4096)
    c, x = e.components, e.extras
    # execution context: 4096 packed tokens through one layer, 4096 x (3 x 4096 + 3 x 11008) x 2 bytes
    assert c["activations"] == 4096 * (3 * 4096 + 3 * 11008) * 2
    # runtime buffers + decoder: 256 slots x 32000 (padded vocabulary) x bytes per logit of each (0.12 engine)
    runtime = 256 * 32000 * trtllm.RUNTIME_PER_LOGIT.in_sample
    decoder = 256 * 32000 * trtllm.DECODER_PER_LOGIT_OLD.in_sample
    assert c["runtime_buffers"] == int(runtime) + int(decoder)
    fixed = sum(v for k, v in c.items() if k != "kv_cache")
    assert x["kv_pool_bytes"] == int(0.9 * (80 * GiB - fixed))
    # engine builds page the cache in 64-token blocks; 32 layers x 32 KV heads x 128 x 2 x 2 bytes per token
    assert x["tokens_per_block"] == 64 and x["kv_tokens"] == int(x["kv_pool_bytes"] / 524288)
    assert e.engine["label"] == "TensorRT-LLM (TensorRT engine)"
    # smaller build limits, smaller buffers, a bigger pool
    small = run("meta-llama/Llama-2-7b-hf", "trtllm", gpu=gpu(80 * GiB, "9.0"), trtllm_backend="tensorrt",
                trtllm_version="0.12", max_batch_size=1, max_input_len=512, context=1024)
    assert small.components["activations"] == 512 * (3 * 4096 + 3 * 11008) * 2  # min(8192, 1 x 512) tokens
    assert small.extras["kv_pool_bytes"] > x["kv_pool_bytes"]


def test_trtllm_backend_by_release_and_support():
    assert run("meta-llama/Meta-Llama-3.1-8B", "trtllm", trtllm_version="0.19").extras["backend"] == "tensorrt"
    assert run("meta-llama/Meta-Llama-3.1-8B", "trtllm").extras["backend"] == "pytorch"
    e = run("meta-llama/Meta-Llama-3.1-8B", "trtllm", kv_dtype="int8")
    assert not e.supported and "int8 KV cache exists only on the TensorRT engine path" in e.unsupported[0]
    assert run("meta-llama/Meta-Llama-3.1-8B", "trtllm", kv_dtype="int8", trtllm_backend="tensorrt").supported
    old = run("meta-llama/Meta-Llama-3.1-8B", "trtllm", trtllm_version="0.12", trtllm_backend="pytorch")
    assert not old.supported and "predates the PyTorch backend" in old.unsupported[0]


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
    # llama-context.cpp refuses a quantized V cache with flash attention off: an unsupported row, not a size
    no_fa = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", context=8192, kv_dtype="q8_0", flash_attn=False)
    assert not no_fa.supported and any("flash attention" in r for r in no_fa.unsupported)
    # a quantized K with an f16 V is fine without it
    k_only = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", context=8192, cache_type_k="q8_0", flash_attn=False)
    assert k_only.supported and k_only.components["kv_cache"] == int(32 * 8192 * 1024 * (34 / 32 + 2))


def test_llamacpp_gguf_weights_and_partial_offload():
    full = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", quantize="gguf:Q4_K_M")
    half = run("meta-llama/Meta-Llama-3.1-8B", "llamacpp", quantize="gguf:Q4_K_M", gpu_layers=16)
    assert 4.2 * GiB < full.components["weights"] < 4.6 * GiB
    # -ngl 16 is the output layer and the last 15 of 32 repeating layers (src/llama-model.cpp i_gpu_start =
    # n_layer + 1 - n_gpu_layers); their KV follows them
    assert half.extras["gpu_layers"] == 16
    assert half.components["kv_cache"] == full.components["kv_cache"] * 15 // 32
    per_layer = half.extras["host_components"]["weights"] - (full.extras["host_components"]["weights"])
    assert per_layer > 0 and full.components["weights"] - half.components["weights"] == per_layer
    # the other 17 layers, their KV and the token embeddings are in host RAM
    host = half.extras["host_components"]
    assert host["kv_cache"] == full.components["kv_cache"] * 17 // 32
    assert host["weights"] > full.components["weights"] / 2


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


def test_transformers_release_policies():
    qwen = "Qwen/Qwen2.5-0.5B-Instruct"
    new = run(qwen, "transformers", context=32768, prompt_tokens=30720, dtype="auto")
    old = run(qwen, "transformers", context=32768, prompt_tokens=30720, dtype="auto", transformers_version="4.38")
    # before 4.45 the prefill computes every position's logits and upcasts them: 30720 x 151936 x (2 + 4) bytes
    # (26.1 GiB), which the 4.38 peak holds with the prompt's cache
    assert old.components["activations"] >= 30720 * 151936 * 6
    assert old.extras["peak_allocated_bytes"] - new.extras["peak_allocated_bytes"] > 24 * GiB
    # before 5.0 `from_pretrained` without a dtype loads float32: weights doubled
    fp32 = run(qwen, "transformers", transformers_version="4.57")
    auto = run(qwen, "transformers")
    assert fp32.components["weights"] == 2 * auto.components["weights"]
    # Qwen2 before 4.45 keeps cos/sin caches in every layer: 2 x 32768 positions x 64 x 2 bytes x 24 layers
    rope = run(qwen, "transformers", dtype="auto", transformers_version="4.44")
    assert rope.components["weights"] - auto.components["weights"] == 2 * 32768 * 64 * 2 * 24
    # before 4.42 a decode step holds the previous legacy tuple cache: the whole cache twice, not one of its 32
    # layers; and before 4.46 the model upcasts the last row itself (no second float32 copy in generate: 64 rows x
    # 32000 x 4 bytes less)
    legacy = run("meta-llama/Llama-2-7b-hf", "transformers", context=768, prompt_tokens=256, batch=64,
                 transformers_version="4.35", dtype="auto")
    current = run("meta-llama/Llama-2-7b-hf", "transformers", context=768, prompt_tokens=256, batch=64, dtype="auto")
    kv = 64 * 768 * 524288
    assert legacy.components["kv_cache"] == current.components["kv_cache"] == kv
    assert legacy.components["activations"] - current.components["activations"] == kv - kv // 32 - 64 * 32000 * 4
    assert legacy.engine["version"] == "4.35" and current.engine["version"] == "5.24"


def test_transformers_reports_allocator_peak_and_process_memory():
    e = run("meta-llama/Meta-Llama-3.1-8B", "transformers", context=8192)
    d = e.to_dict()
    c = e.components
    assert d["allocator_peak_bytes"] == c["weights"] + c["kv_cache"] + c["activations"]
    # nvidia-smi adds the CUDA context and the caching allocator's reserve
    assert d["nvidia_smi_bytes"] == d["allocator_peak_bytes"] + c["cuda_context"] + c["allocator_slack"]


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


def test_the_slack_search_answers_what_bisection_answers_in_fewer_trials():
    """largest_with_slack finds the same largest context as bisecting `slack >= 0` for lines, staircases (pages of
    16-256 tokens) and cliffs, in at most 5 trials for a line over [1, 131072] whose answer lies more than 512 tokens
    from the ends (bisection: 19), and never more than about twice bisection's trials."""
    import random

    from hfvram.estimate.base import largest_fitting, largest_with_slack

    rng = random.Random(7)
    worst = 0
    for case in range(3000):
        low, high = rng.choice([(1, 131072), (1, 4096), (1, 1 << 20), (0, 61)])
        cross = rng.randint(low - 2, high + 2)
        kind = case % 3
        page = rng.choice([1, 16, 32, 256])
        cliff = rng.randint(low, high)

        def slack(c, cross=cross, kind=kind, page=page, cliff=cliff):
            if kind == 0:  # a line: bytes per token
                return (cross - c) * 131072.0
            if kind == 1:  # a staircase: the context padded to a page
                padded = -(-c // page) * page
                return (-(-cross // page) * page - padded) * 1000.0 + 0.5
            return (cross - c) * 10.0 - (1e9 if c > cliff else 0)  # a cliff: something stops fitting at once

        trials = []
        counted = lambda c: trials.append(c) or slack(c)  # noqa: E731
        got = largest_with_slack(counted, low, high)
        assert got == largest_fitting(lambda c: slack(c) >= 0, low, high), (case, low, high, cross)
        if kind == 0 and low + 512 < cross < high - 512:  # (closer: bisection, see _STEP_WIDTH)
            assert len(trials) <= 5, (cross, trials)
        worst = max(worst, len(trials))
    assert worst <= 2 * math.ceil(math.log2(1 << 20)) + 2  # bisection: the two ends and log2(width)
