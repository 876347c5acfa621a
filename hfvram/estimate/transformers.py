"""HF Transformers `generate()`: the PyTorch-style baseline, by release (`--transformers-version`, default 5.24).

Policy (transformers 5.x, read in `generation/utils.py`, `cache_utils.py`, `modeling_llama.py`; older releases
differ where `RELEASE` below says so, each read in that release's wheel):
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
  residual stream; `eager` attention materialises batch x heads x prompt^2 scores in the model dtype, their float32
  copy and the float32 softmax; sdpa / flash are O(prompt).
- logits: `generate` keeps only the last position (`logits_to_keep=1`) and copies them to float32.
- CUDA context and caching-allocator slack on top of what torch allocates.
"""

from __future__ import annotations

from collections import Counter

from .base import (
    KV_BYTES, Estimate, Settings, cuda_context_bytes, engine_info, rider_bytes, spec_tokens, state_per_gpu,
    stage_layers,
)
from ..specs import LinearAttention, Mamba
from .model import Model

NAME = "transformers"
DEFAULT_VERSION = "5.24"  # the newest release read (5.24.0); --transformers-version picks another policy

# What changed between releases (each read in that release's wheel, `pip download transformers==X --no-deps`):
# - `from_pretrained` without a dtype loads float32 until 4.57 (modeling_utils.py 4.57.1 `_get_dtype`: "use default
#   torch.float32"); 5.0.0 sets `dtype = "auto"` when none is given (modeling_utils.py 5.0.0 l.3934-3935).
#   Quantised checkpoints (GPTQ/AWQ/bitsandbytes) run their non-quantised parts in float16 either way.
DTYPE_AUTO_SINCE = (5, 0)
# - Logits: before 4.45, `generate()` ran the prefill with logits for every prompt position and the model upcast
#   them (`logits = self.lm_head(hidden_states); logits = logits.float()`, modeling_qwen2.py 4.38.2 l.1186-1187):
#   batch x prompt x vocab in the model dtype and a float32 copy. 4.45 adds `num_logits_to_keep` (generate passes 1,
#   generation/utils.py 4.45.0 l.1900-1903) but still upcasts that row (modeling_qwen2.py 4.45.0 l.1187); 4.46
#   keeps the model dtype and generate copies the last row to float32.
LAST_LOGITS_SINCE = (4, 45)
NO_UPCAST_SINCE = (4, 46)
# - Rotary caches: each attention layer held its own `cos_cached`/`sin_cached` [max_position_embeddings, head_dim]
#   in the load dtype (modeling_qwen2.py 4.44.2 l.160-161 and 4.38.2 l.121-122; Llama `_cos_cached` 4.38.2-4.40.2
#   l.110-112, gone in 4.42.4; Mistral gone in 4.42.4; 4.41 not read). From 4.45 one model-level rotary module
#   keeps only `inv_freq`.
ROTARY_CACHE_UNTIL = {"qwen2": (4, 45), "qwen2_moe": (4, 45), "llama": (4, 42), "mistral": (4, 42)}
# - DynamicCache keeps every token of a sliding-window layer until 4.56 (DynamicSlidingWindowLayer appears in
#   cache_utils.py 4.56.0; absent in 4.55.4).
SLIDING_DYNAMIC_SINCE = (4, 56)
# - Before 4.42 generate() passed the legacy tuple cache between steps (4.42.4 generation/utils.py l.1775-1780:
#   "Use DynamicCache() instance by default. This will avoid back and forth from legacy format"; absent in 4.41.2),
#   so during a decode step the previous step's tuple (every layer) stays referenced while each layer's torch.cat
#   makes the new one: the whole cache is briefly held twice, not one layer.
DYNAMIC_CACHE_SINCE = (4, 42)

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
# Mamba-1 mixers (mamba, falcon_mamba, jamba, zamba) without compiled scan kernels, which a plain `pip install
# transformers torch` has (mamba-ssm or the `kernels` package would bring them): `mamba_selective_scan`
# (modeling_mamba.py 5.25; the same lines in modeling_falcon_mamba.py and modeling_jamba.py) discretises the whole
# prompt at once, `discrete_A`, `discrete_B` and `deltaB_u`, each batch x intermediate x prompt x d_state in float32,
# all three referenced while the step-by-step scan runs. Checked on our H200 runs of mamba-130m-hf (validation/
# cases-own-transformers-nvidia-h200.jsonl): at 8,192 prompt tokens the three are 2.42 GB of the 2.76 GB the
# prefill allocates beyond the weights.
REFERENCE_SCAN_COPIES = 3
REFERENCE_SCAN_BYTES = 4  # float32
# Gated DeltaNet layers (qwen3_next, qwen3_5, qwen3_5_moe, olmo_hybrid) without flash-linear-attention run
# `torch_chunk_gated_delta_rule` (modeling_qwen3_5.py 5.25): the whole prompt in float32, per value head. Alive in its
# chunk loop: query, key, k_beta, decayed_k_beta and k_cumdecay (head_k_dim each; query and key repeated to the
# value heads), value, v_beta, new_values and core_attn_out (head_v_dim each), and three chunk x chunk matrices a
# chunk (pairwise_decay, ut_system, intra_chunk_attn), in chunks of DELTA_CHUNK positions (its default chunk_size).
# Its caller (Qwen3_5GatedDeltaNet.forward) still holds, in the model's dtype, the convolved `mixed_qkv` (2 x key +
# value width a token), the query, key and value `reshape` copied out of its transposed view (the same width again),
# and the gate `z` (value width). Checked on our H200 runs of Qwen3.5-0.8B at 128 to 32,768 prompt tokens
# (validation/cases-own-transformers-nvidia-h200.jsonl).
DELTA_K_COPIES, DELTA_V_COPIES, DELTA_CHUNK_MATRICES, DELTA_CHUNK = 5, 4, 3, 64
DELTA_QKV_COPIES = 2  # mixed_qkv and the q / k / v copies
# Mamba-2 mixers (mamba2, nemotron_h, bamba, zamba2, falcon_h1, granitemoehybrid) without mamba-ssm run
# `mamba2_chunk_scan` on the whole prompt in float32, in chunks of the config's `chunk_size` (Mamba2Config's default
# 256). Its locals stay referenced to its end: per token, the hidden states and D residual (head_dim each, per head),
# B and C repeated to the heads (state each), L, G and M (chunk each), Y_diag, C_times_states, Y_off and the output
# (head_dim each) and B_decay (state); per chunk, the states before and after the inter-chunk pass (head_dim x state
# per head). Until 5.17 it multiplied broadcast tensors and summed them, each materialised first, the largest `C x B`
# over the state, tokens x chunk x heads x state floats, alive with what came before it (hidden states, D residual,
# B, C, L), and C_times_states was kept at tokens x heads x head_dim x state (modeling_nemotron_h.py 5.17.0
# `mamba2_chunk_scan`); 5.18.0 contracts them with einsum. Our H200 run of Nemotron-H-56B (transformers 5.17,
# validation/cases-own-transformers-nvidia-h200.jsonl) held 5.0 GiB above its weights at 128 prompt tokens, 4.1 GiB
# of it predicted so (the 1 GiB left is not explained), and ran out of memory at 2,048 asking for exactly the 64 GiB
# of `C x B`.
MAMBA2_EINSUM_SINCE = (5, 18)
MAMBA2_DEFAULT_CHUNK = 256


def version_tuple(text: str | None) -> tuple[int, int]:
    parts = [int(p) for p in str(text or DEFAULT_VERSION).split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts)))  # type: ignore[return-value]


def load_bytes(model: Model, s: Settings) -> tuple[str, int]:
    """(dtype name, bytes per element) the model is loaded and run in: --dtype, else the release's default
    (float32 before 5.0, the checkpoint's since; quantised checkpoints float16)."""
    if s.dtype in ("float32", "fp32", "float"):
        return "float32", 4
    if s.dtype in ("float16", "half", "fp16"):
        return "float16", 2
    if s.dtype in ("bfloat16", "bf16"):
        return "bfloat16", 2
    if model.quant_method is not None and model.quant_method not in ("fp8", "fbgemm_fp8", "compressed-tensors"):
        return "float16", 2
    if s.dtype is None and version_tuple(s.transformers_version) < DTYPE_AUTO_SINCE and model.facts.dtype_bytes < 4 \
            and model.quant_method is None:
        return "float32", 4
    return model.facts.dtype_short, model.facts.dtype_bytes


def kv_dtype_bytes(model: Model, s: Settings) -> tuple[str, float]:
    if s.kv_dtype == "auto":
        name, d = load_bytes(model, s)
        return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(name, name), float(d)
    return s.kv_dtype, KV_BYTES[s.kv_dtype]


def kv_cache(model: Model, s: Settings, layers, tokens: int | None = None, prefill: bool = False
             ) -> tuple[float, float]:
    """(cache bytes, one layer's cache) for `batch` sequences holding `tokens` (default: the context)."""
    _, b = kv_dtype_bytes(model, s)
    tokens = s.context if tokens is None else tokens
    static = s.cache_implementation == "static"
    windows = version_tuple(s.transformers_version) >= SLIDING_DYNAMIC_SINCE
    total = biggest = 0.0
    for layer, count in Counter(layers).items():  # specs are frozen dataclasses: identical layers count once
        if static:
            held = layer.tokens_held(s.context)
        elif layer.is_attention and (prefill or not windows):
            held = tokens  # sliding layers still reference the whole prompt's K/V (or keep everything < 4.56)
        else:
            held = layer.tokens_held(tokens)
        _, d = load_bytes(model, s)
        size = s.batch * held * layer.per_token_bytes(b) + s.batch * state_per_gpu(layer, d, 1)
        total += size * count
        biggest = max(biggest, size)
    return total, biggest


def logits_bytes(model: Model, s: Settings, rows: int) -> float:
    """The logits a forward over `rows` positions per sequence leaves, by release: the model-dtype logits and the
    float32 copy (upcast in the model before 4.46, by generate() since), plus the sampling probabilities."""
    _, d = load_bytes(model, s)
    version = version_tuple(s.transformers_version)
    if version < NO_UPCAST_SINCE:
        return s.batch * rows * model.vocab * (d + 4)  # lm_head output + logits.float()
    return s.batch * rows * model.vocab * (d + 4 + 4)  # + generate's float32 copy of the row and softmax probs


def rotary_bytes(model: Model, s: Settings) -> float:
    """Per-layer rotary caches of releases that kept them: 2 x max_position_embeddings x head_dim per layer."""
    until = ROTARY_CACHE_UNTIL.get(model.arch.model_type or "")
    if until is None or version_tuple(s.transformers_version) >= until:
        return 0.0
    _, d = load_bytes(model, s)
    rows = int(model.facts.text_config.get("max_position_embeddings") or 0)
    layers = sum(1 for layer in model.layers if layer.is_attention)
    return 2.0 * rows * model.head_dim * d * layers


def prefill_activations(model: Model, s: Settings, layer_only: bool = False) -> float:
    """Peak transient of the prefill forward (one layer at a time), or of its logits when every position's are
    computed (before 4.45). `layer_only`: one layer's transient without the logits (what every GPU of a device_map
    split allocates while its layers run)."""
    _, d = load_bytes(model, s)
    prompt = s.prompt_tokens or s.context
    tokens = s.batch * prompt
    hidden, inter = model.hidden, model.intermediate
    residual = RESIDUAL_COPIES * tokens * hidden * d
    heads, hd = model.heads, model.head_dim
    kv_heads = model.arch.num_kv_heads or heads
    qkv = tokens * (heads + 2 * kv_heads) * hd * d
    if s.attn_implementation == "eager":
        # eager_attention_forward (modeling_llama.py and its copies): `softmax(scores, dim=-1, dtype=torch.float32)`
        # casts the scores to float32 first (aten SoftMax.cpp: `input_.toType(dtype)`), then writes a float32 result:
        # the scores in the model's dtype, their float32 copy and the float32 softmax are alive at once (no copy when
        # the dtype is float32 already). Measured on an H200 (validation/cases-own-transformers-nvidia-h200.jsonl):
        # ~10.7 bytes a score element for bf16 Qwen2.5-0.5B and Llama-3.2-1B at 4096 tokens, against 6 before.
        scores = s.batch * heads * prompt * prompt * (d + (4 if d < 4 else 0) + 4)
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
    layer = residual + max(attention, mlp, *(size for _, size in reference_paths(model, s, tokens)))
    if layer_only:
        return layer
    if version_tuple(s.transformers_version) < LAST_LOGITS_SINCE:
        # after the last layer: the final hidden states (normed and not) and every position's logits
        return max(layer, 2 * tokens * hidden * d + logits_bytes(model, s, prompt))
    return layer + logits_bytes(model, s, 1)


def reference_paths(model: Model, s: Settings, tokens: int) -> list[tuple[str, float]]:
    """(what, bytes) of each reference PyTorch path this model's recurrent layers run in a prefill of `tokens`
    positions (batch x prompt), the largest layer of each kind; none for a model without such layers."""
    _, d = load_bytes(model, s)
    paths = [("Mamba layers counted with transformers' reference scan (what runs without mamba-ssm kernels): the "
              "prefill holds the prompt's discretised state in float32", reference_scan_bytes(model, tokens)),
             ("Mamba-2 layers counted with transformers' reference chunked scan (what runs without mamba-ssm "
              "kernels): the prefill holds the prompt's working set in float32",
              reference_ssd_bytes(model, tokens, s.transformers_version)),
             ("Gated DeltaNet layers counted with transformers' reference chunked rule (what runs without "
              "flash-linear-attention): the prefill holds the prompt's working set, mostly float32",
              reference_delta_bytes(model, tokens, d))]
    return [(what, size) for what, size in paths if size]


def reference_scan_bytes(model: Model, tokens: int) -> float:
    """The largest Mamba-1 layer's discretised prompt in transformers' reference scan (REFERENCE_SCAN_COPIES)."""
    return max((REFERENCE_SCAN_COPIES * tokens * layer.intermediate * layer.d_state * REFERENCE_SCAN_BYTES
                for layer in set(model.layers) if isinstance(layer, Mamba) and layer.version == 1), default=0.0)


def reference_delta_bytes(model: Model, tokens: int, d: float) -> float:
    """The largest Gated DeltaNet layer's working set in transformers' reference chunked rule: its float32 tensors
    and what its caller holds in the model's dtype (`d` bytes)."""
    def one(layer: LinearAttention) -> float:
        rule = layer.num_v_heads * REFERENCE_SCAN_BYTES * (
            DELTA_K_COPIES * layer.head_k_dim + DELTA_V_COPIES * layer.head_v_dim + DELTA_CHUNK_MATRICES * DELTA_CHUNK)
        values = layer.num_v_heads * layer.head_v_dim
        qkv = 2 * layer.num_k_heads * layer.head_k_dim + values
        return tokens * (rule + d * (DELTA_QKV_COPIES * qkv + values))
    return max((one(layer) for layer in set(model.layers) if isinstance(layer, LinearAttention)), default=0.0)


def reference_ssd_bytes(model: Model, tokens: int, version: str | None = None) -> float:
    """The largest Mamba-2 layer's float32 working set in transformers' reference chunked scan, by release."""
    chunk = int(model.facts.text_config.get("chunk_size") or MAMBA2_DEFAULT_CHUNK)
    broadcast = version_tuple(version) < MAMBA2_EINSUM_SINCE

    def one(layer: Mamba) -> float:
        h, p, n = layer.num_heads, layer.head_dim, layer.d_state
        padded = -(-tokens // chunk) * chunk
        states = 2 * (padded // chunk + 1) * h * p * n
        if broadcast:
            at_cb = padded * h * (2 * p + 2 * n + chunk + chunk * n)
            at_end = padded * h * (3 * n + 3 * chunk + 6 * p + p * n) + states
            return REFERENCE_SCAN_BYTES * max(at_cb, at_end)
        return REFERENCE_SCAN_BYTES * (padded * h * (3 * n + 3 * chunk + 7 * p) + states)
    return max((one(layer) for layer in set(model.layers) if isinstance(layer, Mamba) and layer.version == 2
                and layer.num_heads and layer.head_dim), default=0.0)


def decode_activations(model: Model, s: Settings) -> float:
    """One token per sequence through a layer, plus the float32 logits copy and sampling probabilities."""
    _, d = load_bytes(model, s)
    return s.batch * (RESIDUAL_COPIES * model.hidden + MLP_COPIES * model.intermediate) * d + \
        logits_bytes(model, s, 1)


def estimate(model: Model, s: Settings) -> Estimate:
    notes = []
    devices = max(1, s.tp * s.pp)
    if s.tp > 1:
        notes.append("transformers has no tensor parallelism for generate(); --tp is treated as a layer split "
                      "across GPUs (device_map=\"auto\")")
    version = version_tuple(s.transformers_version)
    dtype_name, d = load_bytes(model, s)
    scale = 1.0
    if not model.projected and model.quant_method is None and d != model.facts.dtype_bytes:
        scale = d / model.facts.dtype_bytes  # floats are loaded in the load dtype
        notes.append(f"transformers {'.'.join(map(str, version))} loads this {model.facts.dtype_short} checkpoint "
                     f"in {dtype_name}" + (" (no dtype given: float32 until 5.0)" if s.dtype is None else ""))
    elif model.quant_method is not None and not model.projected and d == 2 and model.facts.dtype_bytes == 4:
        scale = 0.5
    weights = model.loaded(mtp=False, vision=True) * scale / devices
    rotary = rotary_bytes(model, s) / devices
    layers = stage_layers(model.layers, devices)
    prompt = min(s.prompt_tokens or s.context, s.context)
    kv_prefill, _ = kv_cache(model, s, layers, prompt, prefill=True)
    kv_end, biggest = kv_cache(model, s, layers)
    growth = 0.0 if s.cache_implementation == "static" or prompt >= s.context else biggest
    if growth and version < DYNAMIC_CACHE_SINCE:
        growth = kv_end  # the previous step's legacy tuple, every layer
    prefill_peak = kv_prefill + prefill_activations(model, s)
    decode_peak = kv_end + growth + decode_activations(model, s)
    if prefill_peak >= decode_peak:
        kv, act = kv_prefill, prefill_peak - kv_prefill
    else:
        kv, act = kv_end, decode_peak - kv_end
    slack = ALLOCATOR_SLACK * (kv + act)
    components = {
        "weights": int(weights + rotary),
        "kv_cache": int(kv),
        "activations": int(act),
        "cuda_context": cuda_context_bytes(s, torch=True),
        "allocator_slack": int(slack),
    }
    if prefill_peak >= decode_peak:  # the reference paths' prefill transients, when they set the peak
        notes.extend(f"{what}, {size / 2**30:,.2f} GiB at its peak"
                     for what, size in reference_paths(model, s, s.batch * prompt))
    if rotary:
        notes.append(f"transformers {'.'.join(map(str, version))} keeps a rotary cos/sin cache in every attention "
                     f"layer ({rotary / (1 << 20):,.0f} MiB on this GPU, counted with the weights)")
    components.update(rider_bytes(NAME, model, s))
    if s.draft is not None:
        # assisted generation scores num_assistant_tokens + 1 positions per step: their logits, float32 copies
        k = spec_tokens(NAME, s)
        components["draft"] += int(s.batch * (k + 1) * model.vocab * (d + 4))
        notes.append(f"assisted generation with {k} candidate tokens per step")
    if model.projected:
        notes.append(f"weights projected to {model.label}")
    full_kv = max(kv_cache(model, s, model.layers, prompt, prefill=True)[0], kv_cache(model, s, model.layers)[0])
    # summed over the GPUs of a device_map split (what multi-GPU benchmark tables print): each GPU runs its own
    # layers' prefill transient, the last one also the logits
    others = (devices - 1) * prefill_activations(model, s, layer_only=True) if prefill_peak >= decode_peak else 0.0
    extras = {"peak_allocated_bytes": int(weights + rotary + kv + act),
              "peak_allocated_total_bytes": int((weights + rotary) * devices + full_kv + act + others),
              "transformers_version": ".".join(map(str, version))}
    est = Estimate(framework=NAME, components=components, gpus=devices, notes=notes, extras=extras)
    est.engine = engine_info("Transformers", ".".join(map(str, version)), {
        "attn_implementation": (s.attn_implementation, s.attn_implementation == "sdpa"),
        "cache_implementation": (s.cache_implementation, s.cache_implementation == "dynamic"),
        "prompt_tokens": (prompt, s.prompt_tokens is None),
        "dtype": (dtype_name if not model.projected else model.label, s.dtype is None),
    })
    # torch.cuda.max_memory_allocated; nvidia-smi adds the context and the caching allocator's reserve
    est.allocator_peak_bytes = int(weights + rotary + kv + act)
    return est
