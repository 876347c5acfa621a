"""HF Transformers `generate()`: the PyTorch-style baseline.

Policy (transformers 5.x, read in `generation/utils.py`, `cache_utils.py`, `modeling_llama.py`):
- weights in the checkpoint dtype (`dtype="auto"` since v5), quantised checkpoints as stored; MTP layers are not
  instantiated; vision towers are.
- KV: `DynamicCache` grows to prompt + new tokens per layer; sliding layers keep their window
  (`DynamicSlidingWindowLayer`); `StaticCache` (`cache_implementation="static"`) preallocates the whole context for
  every layer (sliding layers: min(window, context)). Each decode step `torch.cat`s one layer's K/V into a new
  tensor, so one layer's cache is briefly held twice.
- prefill transient, the largest of one layer's attention and MLP intermediates for the whole prompt, plus the
  residual stream; `eager` attention materialises batch x heads x prompt^2 scores in the model dtype and a float32
  softmax copy; sdpa / flash are O(prompt).
- logits: `generate` keeps only the last position (`logits_to_keep=1`) and copies them to float32.
- CUDA context and caching-allocator slack on top of what torch allocates.
"""

from __future__ import annotations

from .base import CUDA_CONTEXT_BYTES, KV_BYTES, Estimate, Settings, state_per_gpu, stage_layers
from .model import Model

NAME = "transformers"
LABEL = "HF Transformers"

# Caching-allocator slack (reserved - allocated) as a share of what is allocated beyond the weights. The caching
# allocator rounds blocks (512-byte / 2 MiB granularity, 20 MiB large-block rounding in
# c10/cuda/CUCachingAllocator.cpp) and keeps freed blocks; DynamicCache growth fragments it. 10% is the middle of the
# 5-15% range reported in the research notes (../shared/research/hub-and-engines.md B7); not yet measured here.
ALLOCATOR_SLACK = 0.10

# Live tensors of the residual stream during a layer's forward: the residual, the normed input and the layer
# output (modeling_llama.py LlamaDecoderLayer.forward: `residual = hidden_states`, norm, attn/mlp out).
RESIDUAL_COPIES = 3
# MLP intermediates live at its peak: gate, up and act(gate)*up (LlamaMLP.forward: `down_proj(act_fn(gate_proj(x))
# * up_proj(x))`).
MLP_COPIES = 3


def kv_dtype_bytes(model: Model, s: Settings) -> tuple[str, float]:
    if s.kv_dtype == "auto":
        return model.facts.dtype.replace("bfloat16", "bf16").replace("float16", "fp16").replace("float32", "fp32"), \
            float(model.compute_bytes)
    return s.kv_dtype, KV_BYTES[s.kv_dtype]


def kv_cache(model: Model, s: Settings, layers) -> tuple[float, float]:
    """(cache bytes, one layer's cache) for `batch` sequences of `context` tokens on one device."""
    _, b = kv_dtype_bytes(model, s)
    total = biggest = 0.0
    for layer in layers:
        held = layer.tokens_held(s.context)
        size = s.batch * held * layer.per_token_bytes(b) + s.batch * state_per_gpu(layer, model.compute_bytes, 1)
        total += size
        biggest = max(biggest, size)
    return total, biggest


def prefill_activations(model: Model, s: Settings) -> float:
    """Peak transient of the prefill forward (one layer at a time) plus the last-position logits."""
    d = model.compute_bytes
    tokens = s.batch * (s.prompt_tokens or s.context)
    hidden, inter = model.hidden, model.intermediate
    residual = RESIDUAL_COPIES * tokens * hidden * d
    heads, hd = model.heads, model.head_dim
    kv_heads = model.arch.num_kv_heads or heads
    qkv = tokens * (heads + 2 * kv_heads) * hd * d
    if s.attn_implementation == "eager":
        prompt = s.prompt_tokens or s.context
        scores = s.batch * heads * prompt * prompt * (d + 4)  # scores in dtype + float32 softmax copy
        attention = qkv + scores
    else:
        attention = qkv + tokens * heads * hd * d  # sdpa / flash: q, k, v and the output
    moe = model.arch.moe
    if moe:
        # every routed token runs gate, up and act in its experts (transformers' grouped expert kernels)
        mlp = tokens * moe.experts_per_token * MLP_COPIES * model.moe_intermediate * d
        mlp += tokens * moe.num_experts * 4  # router logits in float32
    else:
        mlp = tokens * MLP_COPIES * inter * d
    logits = s.batch * model.vocab * (d + 4 + 4)  # last-position logits, the float32 copy, softmax probabilities
    return residual + max(attention, mlp) + logits


def estimate(model: Model, s: Settings) -> Estimate:
    notes = []
    devices = max(1, s.tp * s.pp)
    if s.tp > 1:
        notes.append("transformers has no tensor parallelism for generate(); --tp is treated as a layer split "
                      "across GPUs (device_map=\"auto\")")
    weights = model.loaded(mtp=False, vision=True) / devices
    layers = stage_layers(model.layers, devices)
    if s.cache_implementation == "static":
        kv, biggest = kv_cache(model, s, layers)
        growth = 0.0
    else:
        kv, biggest = kv_cache(model, s, layers)
        growth = biggest  # torch.cat growth: one layer's K/V held twice while it is extended
    act = prefill_activations(model, s) + growth
    slack = ALLOCATOR_SLACK * (kv + act)
    components = {
        "weights": int(weights),
        "kv_cache": int(kv),
        "activations": int(act),
        "cuda_context": CUDA_CONTEXT_BYTES,
        "allocator_slack": int(slack),
    }
    if model.projected:
        notes.append(f"weights projected to {model.label}")
    full_kv, _ = kv_cache(model, s, model.layers)
    extras = {"peak_allocated_bytes": int(weights + kv + act),
              # summed over the GPUs of a device_map split (what multi-GPU benchmark tables print)
              "peak_allocated_total_bytes": int(model.loaded(mtp=False, vision=True) + full_kv + act)}
    return Estimate(framework=NAME, components=components, gpus=devices, notes=notes, extras=extras)
