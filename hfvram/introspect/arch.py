"""From a config to the architecture facts: sizes, per-layer cache specs, MoE, context length."""

from __future__ import annotations

from dataclasses import field

from ..errors import MalformedInput
from ..lazyre import lazy
from ..record import record
from ..specs import MLA, ChunkedLocal, FullAttention, LayerSpec, LinearAttention, Mamba, SlidingWindow
from .config import View

# model_types whose every layer is bidirectional encoder attention (no KV cache at inference).
ENCODER_ONLY_TYPES = {
    "bert", "roberta", "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra", "albert", "mpnet",
    "camembert", "modernbert", "nomic_bert", "xlm", "ernie", "mobilebert", "squeezebert", "funnel", "layoutlm",
    "layoutlmv2", "layoutlmv3", "longformer", "big_bird", "rembert", "roformer", "convbert", "canine", "luke",
    "esm", "vit", "clip_vision_model", "siglip_vision_model", "dinov2", "whisper_encoder", "new", "jina_bert",
}

# torch dtype names (config `torch_dtype`/`dtype`) -> (safetensors dtype, bytes per element)
DTYPES = {
    "float32": ("F32", 4), "float": ("F32", 4), "fp32": ("F32", 4),
    "float16": ("F16", 2), "half": ("F16", 2), "fp16": ("F16", 2),
    "bfloat16": ("BF16", 2), "bf16": ("BF16", 2),
    "float64": ("F64", 8),
    "float8_e4m3fn": ("F8_E4M3", 1), "float8_e5m2": ("F8_E5M2", 1),
}


@record
class MoE:
    """A mixture-of-experts layout: experts, how many each token uses, shared experts."""

    num_experts: int
    experts_per_token: int
    shared_experts: int = 0
    expert_intermediate_size: int | None = None  # one routed expert's MLP width (None: the dense intermediate_size)


@record
class Architecture:
    """The model's shape: layers, widths, heads, and the per-layer cache specs."""

    model_type: str | None
    architectures: list[str]
    config_reader: str  # transformers | raw | params.json
    num_layers: int
    hidden_size: int | None
    num_attention_heads: int | None
    num_kv_heads: int | None
    head_dim: int | None
    vocab_size: int | None
    intermediate_size: int | None
    max_context: int | None
    sliding_window: int | None
    dtype: str | None  # torch dtype name from the config, e.g. "bfloat16"
    tie_word_embeddings: bool
    layers: list[LayerSpec]
    moe: MoE | None
    mtp_layers: int = 0
    is_encoder_decoder: bool = False
    notes: list[str] = field(default_factory=list)


# Aliases torch accepts for the same dtype (torch.float is float32, torch.half float16), folded to one name.
_CANONICAL = {"float": "float32", "fp32": "float32", "half": "float16", "fp16": "float16", "bf16": "bfloat16"}
# Short names, as --kv-dtype and the labels spell them.
SHORT_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def dtype_name(value) -> str | None:
    """The canonical torch name of a config's dtype (`torch.float16`, `half` -> `float16`), None if unknown."""
    if value is None:
        return None
    name = str(value).replace("torch.", "")
    return _CANONICAL.get(name, name) if name in DTYPES else None


def build(top: View, text: View, reader: str) -> Architecture:
    model_type = text.get("model_type") or top.get("model_type")
    top_type = top.get("model_type")
    notes: list[str] = []

    hidden = text.int("hidden_size", "d_model", "n_embd", "dim", "model_dim", "n_embed")  # n_embed: BLOOM's
    heads = text.int("num_attention_heads", "n_head", "n_heads", "num_heads", "encoder_attention_heads")
    kv_heads = _kv_heads(text, heads)
    head_dim = text.int("head_dim", "attention_head_dim", "head_size", "kv_channels")
    if not head_dim and hidden and heads:
        head_dim = hidden // heads
    head_dim_v = text.int("v_head_dim") if text.has("kv_lora_rank") else None

    encoder_decoder = bool(top.get("is_encoder_decoder")) and top_type not in ("t5gemma",)
    num_layers = text.int("num_hidden_layers", "n_layer", "n_layers", "num_layers", "decoder_layers") or 0
    if encoder_decoder:
        num_layers = text.int("decoder_layers", "num_decoder_layers", "num_hidden_layers", "num_layers") or 0

    layers = _layer_specs(text, model_type, num_layers, kv_heads, head_dim, head_dim_v, notes)
    encoder_layers: list[LayerSpec] = []
    if encoder_decoder:
        n_enc = text.int("encoder_layers", "num_encoder_layers") or 0
        encoder_layers = [LayerSpec() for _ in range(n_enc)]
        notes.append(
            "encoder-decoder: cross-attention K/V (encoder length x decoder layers) is not included in kv_cache"
        )
    elif _encoder_only(top, model_type):
        layers = [LayerSpec() for _ in range(num_layers)]

    sliding = _sliding_window(text, max_pos=None)
    mla = next((l for l in layers if isinstance(l, MLA)), None)
    if mla is not None:
        # MLA caches one latent per token shared by all heads: report the cache layout as vLLM does
        # (ModelConfig.get_num_kv_heads() = 1, get_head_size() = kv_lora_rank + qk_rope_head_dim).
        kv_heads, head_dim = 1, mla.latent_dim
    arch = Architecture(
        model_type=top_type or model_type,
        architectures=list(top.get("architectures") or []),
        config_reader=reader,
        num_layers=len(encoder_layers) + len(layers),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=_representative_kv_heads(layers, kv_heads),
        head_dim=head_dim,
        vocab_size=text.int("vocab_size", "padded_vocab_size", "n_vocab") or top.int("vocab_size"),
        intermediate_size=_ff_width(text, text.int("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size",
                                                   "decoder_ffn_dim", "block_ff_dim"))
        # FalconConfig.__post_init__ (transformers 5.x configuration_falcon.py): ffn_hidden_size = 4 x hidden_size
        or (4 * hidden if model_type == "falcon" and hidden else None),
        max_context=max_context(text, model_type),
        sliding_window=sliding if any(l.kind == "sliding_attention" for l in layers) else None,
        dtype=dtype_name(top.get("dtype", "torch_dtype") or text.get("dtype", "torch_dtype")),
        tie_word_embeddings=_tied(top, text),
        layers=encoder_layers + layers,
        moe=_moe(text),
        mtp_layers=text.int("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_layers",
                            "n_mtp_layers") or 0,
        is_encoder_decoder=encoder_decoder,
        notes=notes,
    )
    return arch


def _kv_heads(text: View, heads: int | None) -> int | list[int] | None:
    if text.get("multi_query") is True and not text.get("new_decoder_architecture"):
        return 1  # Falcon-7B, StarCoder: one K/V head shared by all heads (vLLM get_total_num_kv_heads)
    value = text.get("num_key_value_heads", "num_kv_heads", "n_head_kv", "n_kv_heads", "multi_query_group_num",
                     "num_query_groups")
    if isinstance(value, list):
        return [int(v) for v in value]
    if value is not None and not isinstance(value, bool):
        return int(value)
    return heads


def _representative_kv_heads(layers: list[LayerSpec], kv_heads) -> int | None:
    attn = [l.num_kv_heads for l in layers if isinstance(l, FullAttention)]
    if attn:
        return max(attn)
    if isinstance(kv_heads, list):
        return max(kv_heads) if kv_heads else None
    return kv_heads


def _tied(top: View, text: View) -> bool:
    value = top.get("tie_word_embeddings")
    if value is None:
        value = text.get("tie_word_embeddings")
    return bool(True if value is None else value)


def _encoder_only(top: View, model_type: str | None) -> bool:
    if model_type in ENCODER_ONLY_TYPES or top.get("model_type") in ENCODER_ONLY_TYPES:
        return True
    archs = top.get("architectures") or []
    causal = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "ForSpeechSeq2Seq")
    if archs and not any(a.endswith(causal) for a in archs) and top.get("is_decoder") is False:
        return True
    return False


# -- per-layer specs -------------------------------------------------------------------------------------------

def _layer_specs(text: View, model_type, n: int, kv_heads, head_dim, head_dim_v, notes) -> list[LayerSpec]:
    def heads_at(i: int) -> int:
        if isinstance(kv_heads, list):
            return kv_heads[i] if i < len(kv_heads) else kv_heads[-1]
        return kv_heads or 0

    # MLA: DeepSeek-V2/V3/R1, Kimi-K2, MiniCPM3 ... (vLLM `is_deepseek_mla`: kv_lora_rank is set)
    if text.get("kv_lora_rank"):
        mla = MLA(kv_lora_rank=text.int("kv_lora_rank"), qk_rope_head_dim=text.int("qk_rope_head_dim", default=0))
        return [mla for _ in range(n)]

    kinds = _layer_kinds(text, model_type, n, notes)
    window = _sliding_window(text, max_pos=text.int("max_position_embeddings"))
    chunk = text.int("attention_chunk_size")
    mamba = _mamba_spec(text, model_type)
    linear = _linear_attention_spec(text)

    # One spec object per distinct layer (frozen dataclasses): a model has a handful of layer kinds however many
    # layers, and counting identical specs (Counter) then costs a hash of the same object.
    made: dict[tuple, LayerSpec] = {}

    def spec(kind: str, heads: int) -> LayerSpec:
        key = (kind, heads)
        found = made.get(key)
        if found is not None:
            return found
        full = dict(num_kv_heads=heads or 0, head_dim=head_dim or 0, head_dim_v=head_dim_v)
        if kind == "full_attention":
            made[key] = FullAttention(**full)
        elif kind == "sliding_attention":
            made[key] = SlidingWindow(**full, window=window) if window else FullAttention(**full)
        elif kind == "chunked_attention":
            made[key] = ChunkedLocal(**full, chunk=chunk) if chunk else FullAttention(**full)
        elif kind == "mamba":
            if mamba is None:
                notes.append("mamba layer without readable state sizes: state not counted")
            made[key] = mamba or LayerSpec()
        elif kind == "linear_attention":
            if linear is None:
                notes.append("linear-attention layer without readable state sizes: state not counted")
            made[key] = linear or LayerSpec()
        else:
            made[key] = LayerSpec()
        return made[key]

    return [spec(kind, heads_at(i) if kind in _ATTENTION_KINDS else 0) for i, kind in enumerate(kinds)]


_ATTENTION_KINDS = frozenset({"full_attention", "sliding_attention", "chunked_attention"})


# layer_types vocabulary of transformers configs -> our kinds
_LAYER_TYPE_NAMES = {
    "full_attention": "full_attention",
    "attention": "full_attention",
    "global_attention": "full_attention",
    "sliding_attention": "sliding_attention",
    "local_attention": "sliding_attention",
    "chunked_attention": "chunked_attention",
    "linear_attention": "linear_attention",
    "mamba": "mamba",
    "mamba2": "mamba",
    "mlp": "none",
    "moe": "none",
}
# Other layer types transformers accepts (configuration_utils.py ALLOWED_LAYER_TYPES, transformers 5.24) that we have
# no spec of our own for: attention variants keep at most the whole context, so they are counted as full attention
# (never less than the model holds); MLP kinds and LFM2's short convolution keep no per-token cache.
_AS_FULL_ATTENTION = ("window_attention", "indexed_attention", "compressed_sparse_attention",
                      "heavily_compressed_attention", "minimax_m3_sparse", "hybrid", "hybrid_sliding",
                      "reference_sliding_attention")
_NO_CACHE = ("conv", "sparse", "dense")


def _kind_of(name: str, where: str, notes: list[str]) -> str:
    kind = _LAYER_TYPE_NAMES.get(name)
    if kind is not None:
        return kind
    if name in _AS_FULL_ATTENTION:
        notes.append(f"{where} {name!r}: counted as full attention (hfvram has no model of its own for it)")
        return "full_attention"
    if name in _NO_CACHE:
        return "none"
    known = sorted(set(_LAYER_TYPE_NAMES) | set(_AS_FULL_ATTENTION) | set(_NO_CACHE))
    raise MalformedInput(f"config.json: {where} has {name[:40]!r}, not a layer type (known: {', '.join(known)})")


def _kinds(names, where: str, notes: list[str]) -> list[str]:
    table: dict[str, str] = {}
    out = []
    for name in names:
        if name not in table:
            table[name] = _kind_of(name, where, notes)
        out.append(table[name])
    return out


_CLASS_PERIOD = {"gemma2": 2, "gemma3": 6, "gemma3_text": 6}


def _layer_kinds(text: View, model_type, n: int, notes: list[str] | None = None) -> list[str]:
    notes = [] if notes is None else notes
    if n <= 0:
        return []  # no layer count: hfvram.introspect says so
    # Nemotron-H: one character per block, M = Mamba2, * = attention, - = MLP, E = MoE (configuration_nemotron_h.py).
    pattern = text.get("hybrid_override_pattern")
    if isinstance(pattern, str) and pattern:
        table = {"M": "mamba", "*": "full_attention", "-": "none", "E": "none"}
        return [table.get(ch, "none") for ch in pattern[:n]] + ["none"] * max(0, n - len(pattern))

    if model_type in ("mamba", "falcon_mamba", "mamba2"):
        return ["mamba"] * n

    # Jamba / Bamba / GraniteMoeHybrid: "attention" / "mamba" per layer.
    block_types = text.get("layers_block_type")
    if isinstance(block_types, list) and block_types:
        kinds = _kinds([str(t) for t in block_types[:n]], "layers_block_type", notes)
        return kinds + [kinds[-1]] * max(0, n - len(kinds))
    if text.get("attn_layer_period") and model_type == "jamba":
        period, offset = text.int("attn_layer_period"), text.int("attn_layer_offset", default=0)
        return ["full_attention" if i % period == offset else "mamba" for i in range(n)]

    layer_types = text.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        kinds = _kinds([str(t) for t in layer_types[:n]], "layer_types", notes)
        return kinds + [kinds[-1]] * max(0, n - len(kinds))

    # Classes that derive layer_types when the config gives none (transformers 5.x, their __post_init__):
    # - LFM2 (configuration_lfm2.py): full attention at full_attn_idxs (default: every layer), short convolutions
    #   (no per-token cache) elsewhere;
    # - Llama-4 (configuration_llama4.py Llama4TextConfig): no_rope_layers[i] 1 is a RoPE layer, chunked when
    #   attention_chunk_size is set, 0 a NoPE layer with full attention; by default every no_rope_layer_interval-th
    #   (4) layer is NoPE.
    idxs = text.get("full_attn_idxs")
    if model_type == "lfm2" and (idxs is None or isinstance(idxs, list)):
        full = set(range(n)) if idxs is None else {i for i in idxs if isinstance(i, int)}
        return ["full_attention" if i in full else "none" for i in range(n)]
    if model_type in ("llama4", "llama4_text"):
        flags = text.get("no_rope_layers")
        if not isinstance(flags, list) or not flags:
            interval = text.int("no_rope_layer_interval") or 4
            flags = [int((i + 1) % interval != 0) for i in range(n)]
        chunked = text.get("attention_chunk_size") is not None
        kinds = ["chunked_attention" if f and chunked else "full_attention" for f in flags[:n]]
        return kinds + [kinds[-1]] * max(0, n - len(kinds))

    # Qwen3-Next without layer_types: every `full_attention_interval`-th layer is full attention.
    interval = text.int("full_attention_interval")
    if interval and text.has("linear_num_value_heads"):
        return ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n)]

    # Gemma-2/3, Cohere2 style patterns when layer_types is absent; a config that gives no period has its class's:
    # transformers' Gemma2Config alternates (`(i + 1) % 2`, configuration_gemma2.py __post_init__), Gemma3TextConfig
    # takes sliding_window_pattern 6 (configuration_gemma3.py).
    swp = text.int("sliding_window_pattern", "sliding_window_period") or _CLASS_PERIOD.get(model_type)
    if swp and text.has("sliding_window"):
        return ["full_attention" if (i + 1) % swp == 0 else "sliding_attention" for i in range(n)]

    if _sliding_window(text, max_pos=text.int("max_position_embeddings")):
        first_sliding = 0
        if text.get("use_sliding_window") and text.int("max_window_layers") is not None:
            first_sliding = text.int("max_window_layers")  # Qwen2: layers >= max_window_layers slide
        return ["sliding_attention" if i >= first_sliding else "full_attention" for i in range(n)]
    return ["full_attention"] * n


def _sliding_window(text: View, max_pos: int | None) -> int | None:
    """The model's sliding window, or None when it is off or no smaller than the context it could ever see."""
    if text.get("use_sliding_window") is False:
        return None
    window = text.get("sliding_window")
    if isinstance(window, list):  # some configs give one per layer
        window = max((w for w in window if w), default=None)
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return None
    if max_pos and window >= max_pos:
        return None  # Phi-3-mini-128k (262144 > 131072), Phi-3.5-MoE (= 131072): never binds
    return window


def _mamba_spec(text: View, model_type) -> Mamba | None:
    d_state = text.int("ssm_state_size", "mamba_d_state", "state_size", "d_state")
    conv = text.int("conv_kernel", "mamba_d_conv", "d_conv", default=4)
    hidden = text.int("hidden_size", "d_model")
    expand = text.get("mamba_expand", "expand", default=2)
    # Mamba2 layers have heads: `mamba_num_heads` (Nemotron-H), `mamba_n_heads` (Bamba, GraniteMoeHybrid,
    # Falcon-H1), or `num_heads` next to `n_groups` (Mamba2Config); Mamba1 configs have neither.
    n_heads = text.int("mamba_num_heads", "mamba_n_heads") or (
        text.int("num_heads") if text.has("n_groups") and not text.has("num_attention_heads") else None)
    if n_heads:
        head = text.int("mamba_head_dim", "head_dim", "mamba_d_head")
        intermediate = text.int("mamba_intermediate_size") or (n_heads * head if head else None)
        if not (head and d_state and intermediate):
            return None
        return Mamba(version=2, intermediate=intermediate, d_state=d_state, conv_kernel=conv,
                     n_groups=text.int("n_groups", "mamba_n_groups", default=1), num_heads=n_heads, head_dim=head)
    if not (d_state and hidden):
        return None
    intermediate = text.int("mamba_intermediate_size")
    if not intermediate:
        intermediate = int(expand * hidden)
        if model_type in ("mamba", "falcon_mamba"):
            intermediate = text.int("intermediate_size") or intermediate
    return Mamba(version=1, intermediate=intermediate, d_state=d_state, conv_kernel=conv)


def _ff_width(text: View, width: int | None) -> int | None:
    """The MLP width a model builds: LFM2 (`block_auto_adjust_ff_dim`) takes two thirds of the configured width,
    scaled by `block_ffn_dim_multiplier` and rounded up to `block_multiple_of` (Lfm2MLP.__init__, transformers 5.25
    modeling_lfm2.py: LFM2-1.2B's 12,288 builds 8,192-wide w1/w3)."""
    if not width or text.get("block_auto_adjust_ff_dim") is not True:
        return width
    width = int(2 * width / 3)
    multiplier = text.get("block_ffn_dim_multiplier")
    if isinstance(multiplier, (int, float)) and not isinstance(multiplier, bool) and 0 < multiplier < 64:
        width = int(multiplier * width)
        step = max(1, text.int("block_multiple_of") or 1)
        width = step * ((width + step - 1) // step)
    return width


def _linear_attention_spec(text: View) -> LinearAttention | None:
    nv = text.int("linear_num_value_heads")
    if not nv:
        return None
    return LinearAttention(
        num_k_heads=text.int("linear_num_key_heads", default=nv),
        num_v_heads=nv,
        head_k_dim=text.int("linear_key_head_dim", default=0),
        head_v_dim=text.int("linear_value_head_dim", default=0),
        conv_kernel=text.int("linear_conv_kernel_dim", default=4),
    )


# -- MoE --------------------------------------------------------------------------------------------------------

def _moe(text: View) -> MoE | None:
    # Expert counts are read from the JSON itself, not class defaults: transformers' NemotronHConfig, for one,
    # defaults n_routed_experts=8 for its MoE variants, which a dense Nemotron-H checkpoint does not use.
    raw = View(None, text.raw)
    experts = raw.int("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", "num_experts_total")
    if not experts or experts <= 1:
        return None
    pattern = text.get("hybrid_override_pattern")
    if isinstance(pattern, str) and "E" not in pattern:
        return None
    per_token = text.int("num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token",
                         "top_k", default=1)
    shared = raw.int("n_shared_experts", "num_shared_experts", "moe_shared_expert_count")
    if shared is None and (text.int("shared_expert_intermediate_size") or 0) > 0:
        shared = 1  # Qwen2/3-MoE, Qwen3-Next: one shared expert when shared_expert_intermediate_size > 0
    # Qwen-MoE, DeepSeek, Nemotron-H: moe_intermediate_size; Mixtral, gpt-oss: the experts are intermediate_size wide
    inter = raw.int("moe_intermediate_size", "intermediate_size")
    return MoE(num_experts=experts, experts_per_token=per_token, shared_experts=shared or 0,
               expert_intermediate_size=inter)


# -- context length ---------------------------------------------------------------------------------------------

# Keys that bound the context, smallest wins (vLLM `_get_and_verify_max_len`, config/model.py).
_MAX_LEN_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
                 "max_target_positions", "max_sequence_length", "max_seq_length", "seq_len")


def max_context(text: View, model_type: str | None) -> int | None:
    """The model's maximum context, as vLLM derives it: the smallest of the length keys, then RoPE scaling
    (types other than longrope/su/llama3/default/mrope multiply by `factor`; yarn scales
    `original_max_position_embeddings`). Gemma-3's max already includes its scaling."""
    values = [text.int(k) for k in _MAX_LEN_KEYS]
    values = [v for v in values if v]
    if text.int("model_max_length"):
        derived = text.int("model_max_length")  # Cohere: model_max_length wins outright
    elif values:
        derived = min(values)
    else:
        return None
    rope = text.raw.get("rope_scaling") or text.raw.get("rope_parameters")
    if isinstance(rope, dict) and "gemma3" not in str(model_type):
        rope_type = rope.get("rope_type") or rope.get("type") or "default"
        if rope_type not in ("su", "longrope", "llama3", "default", "mrope"):
            factor = rope.get("factor") or 1.0
            if rope_type == "yarn" and rope.get("original_max_position_embeddings"):
                derived = rope["original_max_position_embeddings"]
            derived = int(derived * factor)
    return derived


_LAYER_INDEX = lazy(r"(?:^|\.)(?:layers|h|blocks|block|decoder\.layers)\.(\d+)\.")


def layer_index(name: str) -> int | None:
    m = _LAYER_INDEX.search(name)
    return int(m.group(1)) if m else None
