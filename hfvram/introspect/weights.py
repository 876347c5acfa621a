"""What the stored tensors say: exact bytes, logical parameters, and which part of the model each one is.

Bytes are the tensors' stored byte spans (`data_offsets`), exact for any dtype. Parameters are *logical*
weights: packed 4-bit storage is unpacked (GPTQ/AWQ `qweight`, bitsandbytes NF4/FP4, MXFP4 `_blocks`,
compressed-tensors `weight_packed`), and quantisation side tensors (scales, zero points, group indices,
bitsandbytes quant state) and non-trainable buffers are not parameters.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import field

from ..gcpause import pausing
from ..lazyre import lazy
from ..record import record
from ..stformat import DTYPE_BITS, Tensor
from .arch import layer_index

# Which component a tensor belongs to, by name. Order matters: the first match wins.
_VISION = lazy(
    r"(^|\.)(vision_tower|vision_model|visual|vision_encoder|vision_backbone|image_encoder|mm_projector|"
    r"multi_modal_projector|vision_embed_tokens|img_processor|image_newline|vision_proj|audio_tower|audio_model|"
    r"audio_encoder|speech_encoder|embed_vision|embed_audio|vpm|resampler)(\.|$)"
)
_MTP = lazy(r"(^|\.)(mtp|nextn)(\.|_|$)")
_EXPERT = lazy(
    r"(\.experts\.\d+\.|\.local_experts\.\d+\.|"  # unfused: Mixtral, DeepSeek, Qwen-MoE
    r"\.experts\.(gate_up_proj|down_proj|gate_proj|up_proj|w1|w2|w3)(_blocks|_scales|_bias|_weight)?($|\.))"  # fused
)
SHARED_EXPERT = lazy(r"\.shared_experts?\.")
_EMBED = lazy(r"(embed_tokens|\.wte\.|^wte\.|word_embeddings|tok_embeddings|embeddings\.word|"
                    r"transformer\.wte|\.embed_in\.)")
_LM_HEAD = lazy(r"(^|\.)(lm_head|embed_out|output)\.(weight|qweight)$|^lm_head\.")

# Quantisation side tensors and buffers: stored bytes, not parameters.
_NOT_PARAMS = lazy(
    r"(\.(qzeros|scales|g_idx|absmax|quant_map|nested_absmax|nested_quant_map|quant_state\..*|weight_scale|"
    r"weight_scale_inv|weight_scale_2|input_scale|input_scale_inv|output_scale|k_scale|v_scale|q_scale|"
    r"weight_zero_point|weight_g_idx|weight_shape|SCB|weight_format|zeros|q_scale_max|q_groups|q_perm|"
    r"q_invperm|inv_freq|position_ids|masked_bias|suh|svh|su|sv|mcg|mul1)$|_scales$|\.rotary_emb\.inv_freq$|"
    r"\.attn\.bias$)"
)


# Every name _NOT_PARAMS can match ends with one of these (a cheap pre-filter before the regex).
_SIDE_SUFFIXES = ("qzeros", "scales", "g_idx", "absmax", "quant_map", "_absmax", "_quant_map", "bitsandbytes__nf4",
                  "bitsandbytes__fp4", "weight_scale", "weight_scale_inv", "weight_scale_2", "input_scale",
                  "input_scale_inv", "output_scale", "k_scale", "v_scale", "q_scale", "weight_zero_point",
                  "weight_g_idx", "weight_shape", "SCB", "weight_format", "zeros", "q_scale_max", "q_groups",
                  "q_perm", "q_invperm", "inv_freq", "position_ids", "masked_bias", ".bias",
                  ".suh", ".svh", ".su", ".sv", ".mcg", ".mul1")


@record
class WeightFacts:
    """The checkpoint's stored bytes: by dtype and component, and how exactly they are known."""

    bytes: int = 0
    by_dtype: dict[str, int] = field(default_factory=dict)
    exact: bool = False
    source: str = "none"  # safetensors-headers | index-total-size | file-sizes | none
    files: list[str] = field(default_factory=list)
    tensor_count: int = 0
    parameters: int = 0
    parameters_exact: bool = False
    # bytes and parameters per component: language (dense), experts, embeddings, lm_head, vision, mtp
    component_bytes: dict[str, int] = field(default_factory=dict)
    component_params: dict[str, int] = field(default_factory=dict)
    lm_head_tied: bool = False
    notes: list[str] = field(default_factory=list)


# Every ASCII digit to "#": names that differ only in layer/expert numbers share a pattern (bytes.translate on the
# UTF-8 name: ~10x faster than a regex substitution or str.translate per name).
_DIGITS = bytes.maketrans(b"0123456789", b"##########")
_LAYERED = ("model.layers.", "layers.", "model.language_model.layers.")


def classify(name: str, num_layers: int | None, _cache: dict = {}) -> str:  # noqa: B006 - deliberate memo
    """Component of a tensor. Names differ only in layer/expert numbers across a checkpoint, so the regex work is
    done once per name pattern (DeepSeek/Kimi have 90k-140k tensors but a few dozen patterns)."""
    key = name.encode("utf-8", "surrogatepass").translate(_DIGITS)
    comp = _cache.get(key)
    if comp is None:
        comp = _cache[key] = _classify(name)
        if len(_cache) > 100_000:
            _cache.clear()
    if comp != "vision" and comp != "mtp" and num_layers is not None and name.startswith(_LAYERED):
        idx = _layer_number(name)
        if idx is not None and idx >= num_layers:
            return "mtp"  # DeepSeek-V3/R1 keep the MTP block as layer num_hidden_layers
    return comp


# `layer_index` for a name that starts with one of _LAYERED, where it matches first: the digits right after the
# prefix when a dot follows them (anchored, so cheaper than layer_index's search); anything else goes to layer_index.
_LAYER_AT = lazy(r"(?:model\.|model\.language_model\.)?layers\.([0-9]+)\.")


def _layer_number(name: str) -> int | None:
    m = _LAYER_AT.match(name)
    return int(m.group(1)) if m is not None else layer_index(name)


def _classify(name: str) -> str:
    if _VISION.search(name):
        return "vision"
    if _MTP.search(name):
        return "mtp"
    if _EXPERT.search(name) and not SHARED_EXPERT.search(name):
        return "experts"
    if _LM_HEAD.search(name):
        return "lm_head"
    if _EMBED.search(name):
        return "embeddings"
    return "dense"


def logical_params(t: Tensor, names: set[str], quant_bits: int | None, bnb: set[str] = frozenset(),
                   shapes: dict | None = None) -> int:
    """Logical weights stored in tensor `t` (0 for quantisation side tensors and buffers). `bnb`: the names that
    have a bitsandbytes 4-bit quant state; `shapes`: every tensor's shape by name (EXL2 needs its neighbours)."""
    if t.name.endswith(_SIDE_SUFFIXES) and _NOT_PARAMS.search(t.name):
        return 0
    if t.name.endswith(".q_weight") and shapes:
        # EXL2 (exllamav2 conversion/adaptivegptq.py pack): q_weight int32 [packed rows, out] mixes bit widths per
        # group, so its rows say nothing of the input size; q_invperm int32 [in] has one entry per input row.
        inv = shapes.get(t.name[: -len(".q_weight")] + ".q_invperm")
        if inv:
            return math.prod(inv) * t.shape[-1]
    if t.name.endswith(".trellis") and len(t.shape) == 3:
        # EXL3 (exllamav3 modules/quant/exl3_lib/quantize.py pack_trellis): int16 [in / 16, out / 16, 256 K / 16],
        # one 16 x 16 tile of weights per [i, j]
        return t.shape[0] * t.shape[1] * 256
    bits = DTYPE_BITS[t.dtype]
    if t.name.endswith(".qweight") or t.name.endswith(".weight_packed"):
        # GPTQ / AWQ / compressed-tensors pack 32/bits weights per int32 (AutoGPTQ, AutoAWQ packing).
        return t.numel * (bits // (quant_bits or 4))
    if t.name.endswith("_blocks") and t.dtype == "U8":
        return t.numel * 2  # MXFP4: two 4-bit values per byte (gpt-oss, OCP MX spec)
    if t.dtype == "U8" and t.name in bnb:
        return t.numel * 2  # bitsandbytes 4-bit: two values per uint8
    if t.dtype == "U8" and t.name.endswith(".weight") and quant_bits == 4 and t.name + "_scale" in names:
        return t.numel * 2  # ModelOpt NVFP4: packed uint8 weight with weight_scale
    return t.numel


@pausing
def analyse(tensors: list[Tensor], num_layers: int | None, quant_bits: int | None) -> WeightFacts:
    facts = WeightFacts(exact=True, source="safetensors-headers")
    names = {t.name for t in tensors}
    bnb = {n.split(".quant_state.bitsandbytes__")[0] for n in names if ".quant_state.bitsandbytes__" in n}
    shapes = {t.name: t.shape for t in tensors} if any(n.endswith(".q_weight") for n in names) else None
    # Tensors by (name pattern, dtype, shape): names that differ only in layer/expert numbers share a pattern, so
    # the rules run once per group. A giant's 90k-140k tensors fall into under a hundred groups (95 in DeepSeek-V3,
    # 91 in Kimi-K2: their fixtures); this pass is the only work done per tensor for most of them.
    groups: dict[tuple, list[Tensor]] = {}
    for t in tensors:
        k = (t.name.encode("utf-8", "surrogatepass").translate(_DIGITS), t.dtype, t.shape)
        g = groups.get(k)
        if g is None:
            groups[k] = [t]
        else:
            g.append(t)
    by_dtype: Counter[str] = Counter()
    comp_bytes: Counter[str] = Counter()
    comp_params: Counter[str] = Counter()
    # logical_params reads only a tensor's name pattern, last name part, dtype and shape, except with bitsandbytes
    # states or EXL2 tensors (neighbours' names and shapes) and NVFP4's U8 rule (a neighbour's name): those take
    # the call per tensor.
    per_tensor_params = bool(bnb) or shapes is not None
    for (key, dtype, _shape), ts in groups.items():
        first = ts[0].name
        comp = classify(first, None)  # the rules by name pattern; the MTP rule (a layer number) is per tensor
        nbytes = [t.nbytes for t in ts]
        by_dtype[dtype] += sum(nbytes)
        # which of them sit in a layer past the last one: DeepSeek-V3/R1 keep the MTP block as layer
        # num_hidden_layers (classify's rule)
        past = None
        if comp != "vision" and comp != "mtp" and num_layers is not None and first.startswith(_LAYERED):
            m = _LAYER_AT.match(first)
            if m is not None:
                # one pattern: every name of the group has its layer number's digits where the first has them
                s, e = m.span(1)
                past = [int(t.name[s:e]) >= num_layers for t in ts]
            else:
                past = [(i := layer_index(t.name)) is not None and i >= num_layers for t in ts]
            if not any(past):
                past = None
        if per_tensor_params or dtype == "U8":
            params = [logical_params(t, names, quant_bits, bnb, shapes) for t in ts]
        elif b"#" not in key.rpartition(b".")[2]:
            params = [logical_params(ts[0], names, quant_bits, bnb, shapes)] * len(ts)
        else:  # the last name part has numbers (`w1`, `w2`, `mul1`): the rules may tell them apart
            memo: dict[str, int] = {}
            params = []
            for t in ts:
                last = t.name.rpartition(".")[2]
                p = memo.get(last)
                if p is None:
                    p = memo[last] = logical_params(t, names, quant_bits, bnb, shapes)
                params.append(p)
        for counter, values in ((comp_bytes, nbytes), (comp_params, params)):
            if past is None:
                counter[comp] += sum(values)
            else:
                for v, is_mtp in zip(values, past):
                    counter["mtp" if is_mtp else comp] += v
    total_params = sum(comp_params.values())
    facts.bytes = sum(by_dtype.values())
    facts.by_dtype = dict(sorted(by_dtype.items(), key=lambda kv: -kv[1]))
    facts.tensor_count = len(tensors)
    facts.files = sorted({t.file for t in tensors})
    facts.parameters = total_params
    facts.parameters_exact = True
    facts.component_bytes = dict(comp_bytes)
    facts.component_params = dict(comp_params)
    facts.lm_head_tied = comp_bytes.get("lm_head", 0) == 0
    return facts
