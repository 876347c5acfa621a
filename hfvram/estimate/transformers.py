"""HF Transformers `generate()`: the PyTorch-style baseline.

Policy (transformers 5.x, read in `generation/utils.py`, `cache_utils.py`, `modeling_llama.py`):
- weights in the checkpoint dtype (`dtype="auto"` since v5), quantised checkpoints as stored; MTP layers are not
  instantiated; vision towers are.
- KV: `DynamicCache` grows to prompt + new tokens per layer. A sliding layer (`DynamicSlidingWindowLayer`) keeps a
  *view* of the concatenated prompt K/V after prefill, so at the end of prefill it still holds the whole prompt; from
  the first decode step on it holds `window` tokens (verified on CPU, docs/research/trtllm-exllama-hf-facts.md 9).
  `StaticCache` (`cache_implementation="static"`) preallocates the whole context for every layer (sliding layers:
  min(window, context)). Each decode step `torch.cat`s one layer's K/V into a new tensor, so one layer's cache is
  briefly held twice. The peak is the larger of end-of-prefill (prompt-long cache + prefill transient) and
  end-of-decode (full cache + one layer's growth).
- prefill transient, the largest of one layer's attention and MLP intermediates for the whole prompt, plus the
  residual stream; `eager` attention materialises batch x heads x prompt^2 scores in the model dtype and a float32
  softmax copy; sdpa / flash are O(prompt).
- logits: `generate` keeps only the last position (`logits_to_keep=1`) and copies them to float32.
- CUDA context and caching-allocator slack on top of what torch allocates.
"""

from __future__ import annotations

from collections import Counter

from .base import (
    CUDA_CONTEXT_BYTES, KV_BYTES, Estimate, Settings, engine_info, rider_bytes, spec_tokens, state_per_gpu,
    stage_layers,
)
from .model import Model

NAME = "transformers"
TRANSFORMERS_VERSION = "5.x"  # the generate()/cache policy read in transformers 5.24.0 (module docstring)

# Caching-allocator slack (reserved - allocated) as a share of what is allocated beyond the weights: published
# peak-allocated vs peak-reserved pairs show +11.5% and +11.2% (pytorch/pytorch#40989) and 1-12% for steady
# inference (table in docs/research/trtllm-exllama-hf-facts.md section 11); DynamicCache's growing `torch.cat`
# sizes are the fragmenting case, so we take 10%.
ALLOCATOR_SLACK = 0.10

# Hidden-size tensors live at a layer's MLP peak: the residual, the normed MLP input (LlamaDecoderLayer.forward) and
# `inputs_embeds`, which LlamaModel.forward keeps referenced for the whole forward (modeling_llama.py).
RESIDUAL_COPIES = 3
# MLP intermediates live at its peak: act(gate), up and their product (LlamaMLP.forward:
# `down_proj(act_fn(gate_proj(x)) * up_proj(x))`; gate_proj's output is freed once act_fn has consumed it).
MLP_COPIES = 3


def kv_dtype_bytes(model: Model, s: Settings) -> tuple[str, float]:
    if s.kv_dtype == "auto":
        return model.facts.dtype_short, float(model.compute_bytes)
    return s.kv_dtype, KV_BYTES[s.kv_dtype]


def kv_cache(model: Model, s: Settings, layers, tokens: int | None = None, prefill: bool = False
             ) -> tuple[float, float]:
    """(cache bytes, one layer's cache) for `batch` sequences holding `tokens` (default: the context)."""
    _, b = kv_dtype_bytes(model, s)
    tokens = s.context if tokens is None else tokens
    static = s.cache_implementation == "static"
    total = biggest = 0.0
    for layer, count in Counter(layers).items():  # specs are frozen dataclasses: identical layers count once
        if static:
            held = layer.tokens_held(s.context)
        elif prefill and layer.is_attention:
            held = tokens  # sliding layers still reference the whole prompt's K/V
        else:
            held = layer.tokens_held(tokens)
        size = s.batch * held * layer.per_token_bytes(b) + s.batch * state_per_gpu(layer, model.compute_bytes, 1)
        total += size * count
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


def decode_activations(model: Model, s: Settings) -> float:
    """One token per sequence through a layer, plus the float32 logits copy and sampling probabilities."""
    d = model.compute_bytes
    return s.batch * (RESIDUAL_COPIES * model.hidden + MLP_COPIES * model.intermediate) * d + \
        s.batch * model.vocab * (d + 4 + 4)


def estimate(model: Model, s: Settings) -> Estimate:
    notes = []
    devices = max(1, s.tp * s.pp)
    if s.tp > 1:
        notes.append("transformers has no tensor parallelism for generate(); --tp is treated as a layer split "
                      "across GPUs (device_map=\"auto\")")
    weights = model.loaded(mtp=False, vision=True) / devices
    layers = stage_layers(model.layers, devices)
    prompt = min(s.prompt_tokens or s.context, s.context)
    kv_prefill, _ = kv_cache(model, s, layers, prompt, prefill=True)
    kv_end, biggest = kv_cache(model, s, layers)
    growth = 0.0 if s.cache_implementation == "static" or prompt >= s.context else biggest
    prefill_peak = kv_prefill + prefill_activations(model, s)
    decode_peak = kv_end + growth + decode_activations(model, s)
    if prefill_peak >= decode_peak:
        kv, act = kv_prefill, prefill_peak - kv_prefill
    else:
        kv, act = kv_end, decode_peak - kv_end
    slack = ALLOCATOR_SLACK * (kv + act)
    components = {
        "weights": int(weights),
        "kv_cache": int(kv),
        "activations": int(act),
        "cuda_context": CUDA_CONTEXT_BYTES,
        "allocator_slack": int(slack),
    }
    components.update(rider_bytes(NAME, model, s))
    if s.draft is not None:
        # assisted generation scores num_assistant_tokens + 1 positions per step: their logits, float32 copies
        k = spec_tokens(NAME, s)
        components["draft"] += int(s.batch * (k + 1) * model.vocab * (model.compute_bytes + 4))
        notes.append(f"assisted generation with {k} candidate tokens per step")
    if model.projected:
        notes.append(f"weights projected to {model.label}")
    full_kv = max(kv_cache(model, s, model.layers, prompt, prefill=True)[0], kv_cache(model, s, model.layers)[0])
    extras = {"peak_allocated_bytes": int(weights + kv + act),
              # summed over the GPUs of a device_map split (what multi-GPU benchmark tables print)
              "peak_allocated_total_bytes": int(model.loaded(mtp=False, vision=True) + full_kv + act)}
    est = Estimate(framework=NAME, components=components, gpus=devices, notes=notes, extras=extras)
    est.engine = engine_info("Transformers", TRANSFORMERS_VERSION, {
        "attn_implementation": (s.attn_implementation, s.attn_implementation == "sdpa"),
        "cache_implementation": (s.cache_implementation, s.cache_implementation == "dynamic"),
        "prompt_tokens": (prompt, s.prompt_tokens is None),
        "dtype": (model.facts.dtype_short if not model.projected else model.label, True),
    })
    return est
