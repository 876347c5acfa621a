"""What a config may claim: types and ranges, checked once before anything is built from it.

Every key the introspector or an estimator reads has a type and a range here. A value of the wrong type, NaN,
negative, zero where a count must be at least one, or beyond the bound is a `MalformedInput` naming the key and what
is wrong ("config.json: text_config.num_hidden_layers is 10000000, above 4,096 ..."); nothing downstream sees it.
Lengths of context are the one exception: a length above MAX_CONTEXT_CLAIM means "unbounded" (tokenizers write
1e30 for that), so the key is dropped with a note instead.

The bounds sit well above the largest real model (the measured maxima are those of fixtures/, a test keeps every
fixture inside them); they exist so a hostile or broken config cannot ask for hours of work or an absurd answer.
After the build, `check_facts` bounds what the facts add up to.
"""

from __future__ import annotations

import math

from ..errors import MalformedInput
from ..record import record

# -- bounds ----------------------------------------------------------------------------------------------------------
# Layers: the deepest transformer trained is DeepNet's 1,000 layers (arXiv 2203.00555, "Scaling Transformers to 1,000
# Layers"); the deepest in fixtures/ is Llama-3.1-405B (126). 4x DeepNet.
MAX_LAYERS = 4096
# Width: Llama-3.1-405B's hidden_size 16,384 is the widest in fixtures/; 16x.
MAX_HIDDEN = 1 << 18
# Heads (attention, KV, Mamba, linear-attention, groups): Falcon-180B's 232 attention heads are the most in fixtures/
# (Nemotron-H-56B 256 Mamba heads); 64x.
MAX_HEADS = 1 << 14
# Head size: 256 is the largest in fixtures/ (Qwen3-Next, Gemma); 64x.
MAX_HEAD_DIM = 1 << 14
# MLP width: Llama-3.1-405B's intermediate_size 53,248 is the widest in fixtures/; ~80x.
MAX_INTERMEDIATE = 1 << 22
# Vocabulary: MedGemma-27B's 262,208 is the largest in fixtures/; 64x.
MAX_VOCAB = 1 << 24
# Experts: Qwen3-Next's 512 routed experts are the most in fixtures/ (Kimi-K2 384); 32x.
MAX_EXPERTS = 1 << 14
# Context: Llama-4 Scout's max_position_embeddings 10,485,760 is the longest in fixtures/; 2^32 is ~400x.
MAX_CONTEXT_CLAIM = 1 << 32
# RoPE scaling factor: DeepSeek-V3/R1's yarn factor 40 is the largest in fixtures/; ~100x.
MAX_ROPE_FACTOR = 4096.0
# SSM state size: Nemotron-H-56B's ssm_state_size 256 is the largest in fixtures/; 256x. Convolution kernels: every
# Mamba / Mamba2 / gated-DeltaNet config in fixtures/ uses 4; 256x.
MAX_STATE = 1 << 16
MAX_CONV = 1024
# Multipliers (mamba expand, ffn_dim_multiplier): 2 is the usual expand, 1.3 Llama-3's ffn multiplier; 64 at most.
MAX_MULTIPLIER = 64.0
# Quantisation bits: 1 (binary/ternary formats) to 32 (an fp32 "quantisation" config).
MAX_BITS = 32

# What the facts may add up to (check_facts). The issue that added these called an answer above 100T parameters or
# 10 PB absurd; Kimi-K2 (1.03T parameters, 1.03 TB of weights) is the largest model in fixtures/.
MAX_PARAMETERS = 10 ** 14  # ~100x Kimi-K2
MAX_WEIGHT_BYTES = 10 ** 15  # 1 PB: 100T parameters in fp32 is 0.4 PB
# KV cache per token, all layers, in the model dtype: BLOOM-176B's 4.0 MB (70 layers x 112 KV heads x 128 x 2 x 2
# bytes; multi-head attention, no GQA) is the most in fixtures/; 1 GiB is ~270x.
MAX_KV_TOKEN_BYTES = 1 << 30


@record(frozen=True)
class Spec:
    """What a config key may hold: its kind and range."""

    kind: str  # int | num | bool | str | strlist | intlist | ints (int or list of ints)
    low: float = 0
    high: float = 0
    why: str = ""
    drop_above: bool = False  # above the bound means "no limit": drop the key with a note


def _ints(names, low, high, why, kind="int", drop_above=False):
    return {n: Spec(kind, low, high, why, drop_above) for n in names.split()}


KEYS: dict[str, Spec] = {
    **_ints("num_hidden_layers n_layer n_layers num_layers decoder_layers num_decoder_layers", 1, MAX_LAYERS,
            "4x the deepest transformer trained, DeepNet's 1,000 layers"),
    **_ints("encoder_layers num_encoder_layers first_k_dense_replace max_window_layers num_nextn_predict_layers "
            "mtp_num_hidden_layers num_mtp_layers n_mtp_layers attn_layer_offset", 0, MAX_LAYERS,
            "4x the deepest transformer trained, DeepNet's 1,000 layers"),
    **_ints("sliding_window_pattern sliding_window_period full_attention_interval attn_layer_period "
            "interleave_moe_layer_step decoder_sparse_step moe_layer_freq", 1, MAX_LAYERS, "a layer period"),
    **_ints("hidden_size d_model n_embd dim model_dim kv_lora_rank q_lora_rank", 1, MAX_HIDDEN,
            "16x the widest released model, Llama-3.1-405B"),
    **_ints("num_attention_heads n_head n_heads num_heads encoder_attention_heads linear_num_value_heads "
            "linear_num_key_heads mamba_num_heads mamba_n_heads n_groups mamba_n_groups multi_query_group_num "
            "num_query_groups", 1, MAX_HEADS, "64x the most heads of a released model"),
    # KV heads: one number, or one per layer (OpenELM-style lists)
    **_ints("num_key_value_heads num_kv_heads n_head_kv n_kv_heads", 1, MAX_HEADS,
            "64x the most heads of a released model", "ints"),
    **_ints("head_dim attention_head_dim head_size kv_channels linear_key_head_dim linear_value_head_dim "
            "mamba_head_dim mamba_d_head v_head_dim", 1, MAX_HEAD_DIM, "64x the largest head of a released model"),
    **_ints("qk_rope_head_dim qk_nope_head_dim", 0, MAX_HEAD_DIM, "64x the largest head of a released model"),
    **_ints("intermediate_size ffn_dim n_inner ffn_hidden_size decoder_ffn_dim moe_intermediate_size "
            "intermediate_size_mlp mamba_intermediate_size", 1, MAX_INTERMEDIATE,
            "80x the widest MLP of a released model, Llama-3.1-405B"),
    **_ints("shared_expert_intermediate_size", 0, MAX_INTERMEDIATE, "80x the widest MLP of a released model"),
    **_ints("vocab_size padded_vocab_size n_vocab", 1, MAX_VOCAB, "64x the largest vocabulary of a released model"),
    **_ints("num_local_experts num_experts n_routed_experts moe_num_experts num_experts_total n_shared_experts "
            "num_shared_experts moe_shared_expert_count top_k", 0, MAX_EXPERTS,
            "32x the most experts of a released model"),
    **_ints("num_experts_per_tok experts_per_token moe_top_k num_experts_per_token", 1, MAX_EXPERTS,
            "32x the most experts of a released model"),
    **_ints("max_position_embeddings n_positions max_seq_len seq_length model_max_length max_target_positions "
            "max_sequence_length max_seq_length seq_len", 0, MAX_CONTEXT_CLAIM, "2^32 tokens", drop_above=True),
    **_ints("attention_chunk_size", 1, MAX_CONTEXT_CLAIM, "2^32 tokens", drop_above=True),
    **_ints("ssm_state_size mamba_d_state state_size d_state", 1, MAX_STATE, "256x the largest SSM state"),
    **_ints("conv_kernel mamba_d_conv d_conv linear_conv_kernel_dim", 1, MAX_CONV, "256x the usual kernel of 4"),
    **{n: Spec("num", 0, MAX_MULTIPLIER, "a multiplier") for n in ("mamba_expand", "expand")},
    "partial_rotary_factor": Spec("num", 0, 1.0, "a share of the head"),
    **{n: Spec("bool") for n in ("multi_query", "new_decoder_architecture", "is_encoder_decoder",
                                 "tie_word_embeddings", "use_sliding_window", "is_decoder")},
    **{n: Spec("str") for n in ("model_type", "hidden_act", "mlp_hidden_act", "activation_function", "torch_dtype",
                                "dtype", "hybrid_override_pattern")},
    "architectures": Spec("strlist"),
    "layer_types": Spec("strlist"),
    "layers_block_type": Spec("strlist"),
    "mlp_only_layers": Spec("intlist", 0, MAX_LAYERS, "layer indices"),
}
# Sub-configs read as the language model (hfvram.introspect.config.TEXT_CONFIG_KEYS): these must be objects.
TEXT_SECTIONS = ("text_config", "language_config", "llm_config")
LOOSE_SECTIONS = ("text_model", "decoder")  # also names of other things: only objects are read
ROPE_KEYS = ("rope_scaling", "rope_parameters")
# Nemotron-H hybrid_override_pattern characters (configuration_nemotron_h.py): M Mamba2, * attention, - MLP, E MoE.
PATTERN_CHARS = frozenset("M*-E")


def check_config(raw: dict, what: str = "config.json") -> tuple[dict, list[str]]:
    """(the config with integral floats made ints and unbounded lengths dropped, notes), or MalformedInput."""
    notes: list[str] = []
    clean = _section(raw, what, "", notes)
    for key in TEXT_SECTIONS + LOOSE_SECTIONS:
        sub = raw.get(key)
        if key in TEXT_SECTIONS and sub is not None and not isinstance(sub, dict):
            raise MalformedInput(f"{what}: {key} is {_type(sub)}, not an object")
        if isinstance(sub, dict):
            clean[key] = _section(sub, what, f"{key}.", notes)
    return clean, notes


def _section(raw: dict, what: str, prefix: str, notes: list[str]) -> dict:
    out = dict(raw)
    for key, spec in KEYS.items():
        if key in raw and raw[key] is not None:
            value = _value(raw[key], spec, what, prefix + key)
            if value is _DROP:
                notes.append(f"{what}: {prefix}{key} {raw[key]!r} read as no limit (above {int(spec.high):,})")
                del out[key]
            else:
                out[key] = value
    if out.get("kv_lora_rank") is not None and isinstance(out.get("num_key_value_heads"), list):
        raise MalformedInput(f"{what}: {prefix}num_key_value_heads is a list, but an MLA model (kv_lora_rank) has one "
                             f"number of heads")
    pattern = out.get("hybrid_override_pattern")
    if isinstance(pattern, str):
        bad = sorted(set(pattern) - PATTERN_CHARS)
        if bad or len(pattern) > MAX_LAYERS:
            raise MalformedInput(f"{what}: {prefix}hybrid_override_pattern must be at most {MAX_LAYERS:,} of the "
                                 f"characters M * - E, not {pattern[:40]!r}")
    for key in ("sliding_window",):
        if key in raw and raw[key] is not None:
            out[key] = _window(raw[key], what, prefix + key, notes)
            if out[key] is None:
                del out[key]
    for key in ROPE_KEYS:
        if key in raw and raw[key] is not None:
            out[key] = _rope(raw[key], what, prefix + key)
    if "quantization_config" in raw and raw["quantization_config"] is not None:
        out["quantization_config"] = check_quant(raw["quantization_config"], f"{what}: {prefix}quantization_config")
    return out


_DROP = object()


def _type(value) -> str:
    """`a string`, `an object`, `null`: what the JSON value is, with its article."""
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object",
            type(None): "null"}.get(type(value), f"a {type(value).__name__}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(value, spec: Spec, what: str, key: str, allow_drop: bool = True):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedInput(f"{what}: {key} is {_type(value)} ({_show(value)}), not a whole number")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise MalformedInput(f"{what}: {key} is {_show(value)}, not a whole number")
        value = int(value)
    if value < spec.low:
        raise MalformedInput(f"{what}: {key} is {value:,}, below {int(spec.low)}")
    if value > spec.high:
        if spec.drop_above and allow_drop:
            return _DROP
        raise MalformedInput(f"{what}: {key} is {value:,}, above {int(spec.high):,} ({spec.why})")
    return value


def _value(value, spec: Spec, what: str, key: str):
    kind = spec.kind
    if kind == "int":
        return _int(value, spec, what, key)
    if kind == "ints":
        if isinstance(value, list):
            if not value or len(value) > MAX_LAYERS:
                raise MalformedInput(f"{what}: {key} is a list of {len(value)}, not one entry per layer")
            return [_int(v, spec, what, f"{key}[{i}]", False) for i, v in enumerate(value)]
        return _int(value, spec, what, key)
    if kind == "intlist":
        if not isinstance(value, list) or len(value) > MAX_LAYERS:
            raise MalformedInput(f"{what}: {key} is {_type(value)}, not a list of layer indices")
        return [_int(v, spec, what, f"{key}[{i}]", False) for i, v in enumerate(value)]
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise MalformedInput(f"{what}: {key} is {_show(value)}, not a finite number")
        if not spec.low < value <= spec.high:
            raise MalformedInput(f"{what}: {key} is {value:g}, outside ({spec.low:g}, {spec.high:g}] ({spec.why})")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if type(value) is int and value in (0, 1):
            return bool(value)
        raise MalformedInput(f"{what}: {key} is {_type(value)} ({_show(value)}), not true or false")
    if kind == "str":
        if not isinstance(value, str):
            raise MalformedInput(f"{what}: {key} is {_type(value)} ({_show(value)}), not a string")
        return value
    if kind == "strlist":
        if not isinstance(value, list) or len(value) > MAX_LAYERS or not all(isinstance(v, str) for v in value):
            raise MalformedInput(f"{what}: {key} must be a list of strings (at most {MAX_LAYERS:,}), not "
                                 f"{_show(value)}")
        return value
    raise AssertionError(kind)


def _window(value, what: str, key: str, notes: list[str]):
    """sliding_window: a number of tokens (0 / false: none), or one per layer (Gemma-style lists, nulls allowed)."""
    spec = KEYS["max_position_embeddings"]
    if isinstance(value, bool):
        return None if value is False else _int(value, spec, what, key)
    if isinstance(value, list):
        if len(value) > MAX_LAYERS:
            raise MalformedInput(f"{what}: {key} is a list of {len(value):,}, more than {MAX_LAYERS:,} layers")
        out = [None if v is None else _int(v, spec, what, f"{key}[{i}]", False) for i, v in enumerate(value)]
        return out
    result = _int(value, spec, what, key)
    if result is _DROP:
        notes.append(f"{what}: {key} {value!r} read as no window (above {MAX_CONTEXT_CLAIM:,} tokens)")
        return None
    return result


def _rope(value, what: str, key: str):
    """rope_scaling / rope_parameters: an object (or, in transformers 5, one object per layer type)."""
    if not isinstance(value, dict):
        raise MalformedInput(f"{what}: {key} is {_type(value)} ({_show(value)}), not an object")
    if value and all(isinstance(v, dict) for v in value.values()):
        return {k: _rope(v, what, f"{key}.{k}") for k, v in value.items()}
    out = dict(value)
    for name in ("rope_type", "type"):
        if out.get(name) is not None and not isinstance(out[name], str):
            raise MalformedInput(f"{what}: {key}.{name} is {_type(out[name])}, not a string")
    if out.get("factor") is not None:
        out["factor"] = _value(out["factor"], Spec("num", 0, MAX_ROPE_FACTOR, "~100x the largest RoPE factor "
                                                   "released, DeepSeek-V3's 40"), what, f"{key}.factor")
    if out.get("original_max_position_embeddings") is not None:
        out["original_max_position_embeddings"] = _int(out["original_max_position_embeddings"],
                                                        Spec("int", 1, MAX_CONTEXT_CLAIM, "2^32 tokens"), what,
                                                        f"{key}.original_max_position_embeddings", False)
    if out.get("mrope_section") is not None:
        section = out["mrope_section"]
        if not isinstance(section, list) or len(section) > 16:
            raise MalformedInput(f"{what}: {key}.mrope_section is {_show(section)}, not a short list")
    return out


# -- quantisation configs --------------------------------------------------------------------------------------------

_QUANT_LISTS = ("modules_to_not_convert", "ignored_layers", "ignore", "llm_int8_skip_modules", "exclude_modules")
_QUANT_STRS = ("quant_method", "version", "checkpoint_format", "fmt", "format", "bnb_4bit_quant_type", "quant_algo",
               "kv_cache_quant_algo")


def check_quant(qc, what: str) -> dict:
    """A quantization_config (or AutoGPTQ/AutoAWQ side file, or ModelOpt's hf_quant_config.json)."""
    if not isinstance(qc, dict):
        raise MalformedInput(f"{what} is {_type(qc)}, not an object")
    out = dict(qc)
    bits = Spec("num", 0, MAX_BITS, "bits per weight")
    for key in ("bits", "w_bit"):
        if out.get(key) is not None:
            out[key] = _value(out[key], bits, what, key)
            if out[key] < 1:
                raise MalformedInput(f"{what}: {key} is {out[key]:g}, below 1 bit")
    group = Spec("int", -1, MAX_INTERMEDIATE, "a group of input channels")
    for key in ("group_size", "q_group_size"):
        if out.get(key) is not None:
            out[key] = _int(out[key], group, what, key, False)
    for key in ("load_in_4bit", "_load_in_4bit", "load_in_8bit", "_load_in_8bit"):
        if out.get(key) is not None:
            out[key] = _value(out[key], Spec("bool"), what, key)
    for key in _QUANT_STRS:
        if out.get(key) is not None and not isinstance(out[key], str):
            raise MalformedInput(f"{what}: {key} is {_type(out[key])}, not a string")
    for key in _QUANT_LISTS:
        if out.get(key) is not None and not (isinstance(out[key], list) and all(isinstance(v, str) for v in out[key])):
            raise MalformedInput(f"{what}: {key} must be a list of module names, not {_show(out[key])}")
    if out.get("weight_block_size") is not None:
        out["weight_block_size"] = _value(out["weight_block_size"], Spec("intlist", 1, MAX_INTERMEDIATE, "a block"),
                                          what, "weight_block_size")
    if out.get("config_groups") is not None:
        groups = out["config_groups"]
        if not isinstance(groups, dict) or not all(isinstance(g, dict) for g in groups.values()):
            raise MalformedInput(f"{what}: config_groups must be an object of objects")
        for name, group_ in groups.items():
            weights = group_.get("weights")
            if weights is None:
                continue
            if not isinstance(weights, dict):
                raise MalformedInput(f"{what}: config_groups.{name}.weights is not an object")
            if weights.get("num_bits") is not None:
                _int(weights["num_bits"], Spec("int", 1, MAX_BITS, "bits per weight"), what,
                     f"config_groups.{name}.weights.num_bits", False)
            if weights.get("group_size") is not None:
                _int(weights["group_size"], group, what, f"config_groups.{name}.weights.group_size", False)
    kv = out.get("kv_cache_scheme")
    if kv is not None and not isinstance(kv, (str, dict)):
        raise MalformedInput(f"{what}: kv_cache_scheme is {_type(kv)}, not an object or a string")
    if isinstance(kv, dict):
        if kv.get("num_bits") is not None:
            _int(kv["num_bits"], Spec("int", 1, MAX_BITS, "bits"), what, "kv_cache_scheme.num_bits", False)
        if kv.get("type") is not None and not isinstance(kv["type"], str):
            raise MalformedInput(f"{what}: kv_cache_scheme.type is not a string")
    if isinstance(out.get("quantization"), dict):  # ModelOpt: {"producer": ..., "quantization": {...}}
        out["quantization"] = check_quant(out["quantization"], f"{what}: quantization")
    elif out.get("quantization") is not None:
        raise MalformedInput(f"{what}: quantization is {_type(out['quantization'])}, not an object")
    return out


# -- Meta's params.json ------------------------------------------------------------------------------------------------

_PARAMS = {
    "dim": KEYS["hidden_size"], "n_layers": KEYS["num_hidden_layers"], "n_heads": KEYS["num_attention_heads"],
    "n_kv_heads": KEYS["num_attention_heads"], "head_dim": KEYS["head_dim"], "hidden_dim": KEYS["intermediate_size"],
    "multiple_of": Spec("int", 1, MAX_INTERMEDIATE, "a rounding step of the MLP width"),
    "ffn_dim_multiplier": Spec("num", 0, MAX_MULTIPLIER, "a multiplier"),
    "vocab_size": Spec("int", -1, MAX_VOCAB, "64x the largest vocabulary of a released model"),
    "max_seq_len": KEYS["max_position_embeddings"], "sliding_window": KEYS["max_position_embeddings"],
}


def check_params(params: dict, what: str = "params.json") -> dict:
    out = dict(params)
    for key, spec in _PARAMS.items():
        if params.get(key) is not None:
            value = _int(params[key], spec, what, key, False) if spec.kind == "int" else _value(params[key], spec,
                                                                                                  what, key)
            out[key] = value
    moe = params.get("moe")
    if moe is not None:
        if not isinstance(moe, dict):
            raise MalformedInput(f"{what}: moe is {_type(moe)}, not an object")
        out["moe"] = {**moe, **{k: _int(moe[k], KEYS["num_experts_per_tok"], what, f"moe.{k}", False)
                                for k in ("num_experts", "num_experts_per_tok") if moe.get(k) is not None}}
    return out


# -- what the facts add up to ------------------------------------------------------------------------------------------

def check_facts(facts, what: str) -> None:
    """An answer is never negative and never absurd without saying why."""
    arch = facts.arch
    for layer in set(arch.layers):
        if layer.is_attention and layer.per_token_bytes(1) <= 0:
            raise MalformedInput(f"{what}: attention layers without a size: the config gives no usable "
                                 f"num_attention_heads / num_key_value_heads / head_dim")
    if arch.moe is not None and not 1 <= arch.moe.experts_per_token <= arch.moe.num_experts:
        raise MalformedInput(f"{what}: {arch.moe.experts_per_token} experts per token out of {arch.moe.num_experts}")
    if arch.max_context is not None and not 0 < arch.max_context <= MAX_CONTEXT_CLAIM:
        raise MalformedInput(f"{what}: the maximum context comes to {arch.max_context:,} tokens (with RoPE "
                             f"scaling), outside 1 to {MAX_CONTEXT_CLAIM:,}")
    per_token = sum(layer.per_token_bytes(facts.dtype_bytes) * n for layer, n in _counts(arch.layers))
    if per_token > MAX_KV_TOKEN_BYTES:
        raise MalformedInput(f"{what}: one token of KV cache would take {per_token:,.0f} bytes, above "
                             f"{MAX_KV_TOKEN_BYTES:,} (~270x BLOOM-176B's 4 MB)")
    state = sum(layer.state_bytes(facts.dtype_bytes) * n for layer, n in _counts(arch.layers))
    if state > MAX_WEIGHT_BYTES:
        raise MalformedInput(f"{what}: the recurrent state of one sequence would take {state:,.0f} bytes")
    w = facts.weights
    if not 0 <= facts.params_total <= MAX_PARAMETERS or not 0 <= facts.params_active <= facts.params_total:
        raise MalformedInput(f"{what}: {facts.params_total:,} parameters ({facts.params_active:,} active) is "
                             f"outside 0 to {MAX_PARAMETERS:,} (~100x the largest released model, Kimi-K2)"
                             + (" as estimated from the config" if w.source == "config" else ""))
    if not 0 <= w.bytes <= MAX_WEIGHT_BYTES or any(b < 0 for b in w.by_dtype.values()):
        raise MalformedInput(f"{what}: {w.bytes:,} bytes of weights is outside 0 to {MAX_WEIGHT_BYTES:,} (1 PB)")


def _counts(layers):
    from collections import Counter

    return Counter(layers).items()
