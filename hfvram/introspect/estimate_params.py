"""Parameter count from the config alone, for a bare config.json (no weight files to measure).

Counts the weight matrices of a standard decoder: embeddings (+ an untied LM head), attention projections
(GQA, or MLA's low-rank projections), the MLP (gated SwiGLU-style: 3 matrices; otherwise 2), MoE experts and
router, and norms. Biases and architecture-specific extras are ignored, so this is an estimate, labelled as such;
whenever a checkpoint is available its headers are used instead.
"""

from __future__ import annotations

from .arch import Architecture

_GATED_ACTS = {"silu", "swiglu", "geglu", "gelu_pytorch_tanh", "swish"}
_UNGATED_TYPES = {"gpt2", "gpt_neox", "falcon", "bloom", "bert", "roberta", "opt", "gptj", "phi", "mpt", "starcoder2"}


def from_config(arch: Architecture, raw: dict) -> int:
    from collections import Counter

    from .config import text_section

    text = text_section(raw)  # checked by hfvram.introspect.validate: every number read here is a whole number

    def n(key: str, default: int = 0) -> int:
        value = text.get(key)
        return default if value is None else int(value)

    h = arch.hidden_size or 0
    vocab = arch.vocab_size or 0
    heads = arch.num_attention_heads or 0
    kv = arch.num_kv_heads or heads
    d = arch.head_dim or (h // heads if heads else 0)
    inter = arch.intermediate_size or 4 * h
    gated = (arch.model_type not in _UNGATED_TYPES
             and str(text.get("mlp_hidden_act") or text.get("hidden_act") or text.get("activation_function") or "silu")
             in _GATED_ACTS)
    mlp = (3 if gated else 2) * h * inter

    if text.get("kv_lora_rank"):
        rope, nope = n("qk_rope_head_dim"), n("qk_nope_head_dim")
        v = n("v_head_dim", nope)
        q_rank = n("q_lora_rank")
        rank = n("kv_lora_rank")
        q = (h * q_rank + q_rank * heads * (nope + rope)) if q_rank else h * heads * (nope + rope)
        attn = q + h * (rank + rope) + rank * heads * (nope + v) + heads * v * h
    else:
        attn = h * heads * d + 2 * h * kv * d + heads * d * h

    moe_mlp = None
    if arch.moe:
        moe_inter = n("moe_intermediate_size") or inter
        shared = arch.moe.shared_experts * 3 * h * (n("shared_expert_intermediate_size") or moe_inter)
        moe_mlp = arch.moe.num_experts * 3 * h * moe_inter + h * arch.moe.num_experts + shared
    dense_first = n("first_k_dense_replace")
    # Which layers are sparse: every `step`-th (Llama-4 interleave_moe_layer_step, Qwen-MoE decoder_sparse_step,
    # DeepSeek moe_layer_freq), minus Qwen's mlp_only_layers.
    step = n("interleave_moe_layer_step") or n("decoder_sparse_step") or n("moe_layer_freq") or 1
    dense_only = set(text.get("mlp_only_layers") or [])
    dense_mlp = (3 if gated else 2) * h * (n("intermediate_size_mlp") or inter)
    # Nemotron-H style patterns make each block one thing (mixer *or* MLP); elsewhere a layer is mixer + MLP.
    single_block = isinstance(text.get("hybrid_override_pattern"), str)
    # Work per distinct (layer spec, sparse or not), not per layer: specs are shared objects (introspect.arch).
    shapes = Counter((layer, moe_mlp is not None and i >= dense_first and (i + 1) % step == 0 and i not in dense_only)
                     for i, layer in enumerate(arch.layers))
    total = 0
    for (layer, sparse), count in shapes.items():
        ffn = moe_mlp if sparse else (dense_mlp if moe_mlp is not None else mlp)
        if layer.kind == "mamba":
            mixer = _mamba(layer, h)
        elif layer.kind == "linear_attention":
            mixer = _gdn(layer, h)
        elif layer.kind == "none":
            mixer = 0
        else:
            mixer = attn
        if single_block:
            total += count * ((mixer or ffn) + h)
        else:
            total += count * (mixer + ffn + 2 * h)
    total += vocab * h + h
    if not arch.tie_word_embeddings:
        total += vocab * h
    return int(total)


def _mamba(layer, h: int) -> int:
    # in_proj (z, x, B, C, dt), depthwise conv, out_proj: transformers MambaMixer / NemotronHMamba2Mixer shapes
    if layer.version == 1:
        return h * 2 * layer.intermediate + layer.intermediate * layer.conv_kernel + layer.intermediate * h
    conv_dim = layer.intermediate + 2 * layer.n_groups * layer.d_state
    return h * (layer.intermediate + conv_dim + layer.num_heads) + conv_dim * layer.conv_kernel + layer.intermediate * h


def _gdn(layer, h: int) -> int:
    key, value = layer.num_k_heads * layer.head_k_dim, layer.num_v_heads * layer.head_v_dim
    conv_dim = 2 * key + value
    return h * (conv_dim + value + 2 * layer.num_v_heads) + conv_dim * layer.conv_kernel + value * h
