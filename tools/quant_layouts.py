"""Checkpoint tensor layouts of quantization formats, for tools/build_fixtures.py (no torch needed here).

Every function takes the unquantized checkpoint table, a list of `(name, dtype, shape)` in module order, and returns
the table a real quantized checkpoint of that format stores. Sources (read through the code-search corpus):

GPTQ (AutoGPTQ QuantLinear, "cuda-old"/"exllama" kernels, checkpoint format v1):
    qweight I32 [in // 32 * bits, out]; qzeros I32 [ceil(in / group), out // 32 * bits];
    scales F16 [ceil(in / group), out]; g_idx I32 [in]; bias F16 [out].
    AutoGPTQ qlinear `register_buffer` calls (find_string ids 667812575, 45221491326, 93651632: qweight
    (infeatures // 32 * bits, outfeatures), qzeros (ceil(infeatures / group_size), outfeatures // 32 * bits), scales
    float16, g_idx int32, `if bias: register_buffer("bias", zeros(outfeatures, float16))`). Whether `bias` is written:
    AutoGPTQ <= 0.4 `make_quant` built `QuantLinear(bits, group_size, in, out, True, ...)` (bias always on;
    auto_gptq/modeling/_utils.py, find_string id 23122442341) -- TheBloke's 2023 repos carry a zero F16 bias for
    every quantized linear; AutoGPTQ >= 0.5 passes `bias = submodule.bias is not None` (find_string id 232081340),
    which is what the 2024 Qwen2.5 GPTQ releases were made with (bias only on q/k/v).
AWQ GEMM (AutoAWQ awq/modules/linear/gemm.py WQLinear_GEMM, find_string ids 16437250363, 46843053465):
    qweight I32 [in, out // (32 // bits)]; qzeros I32 [in // group, out // (32 // bits)]; scales F16 [in // group, out];
    bias F16 [out] when the linear has one.
bitsandbytes 4-bit (bitsandbytes functional.QuantState.as_dict(packed=True) + utils.pack_dict_to_tensor,
    find_string ids 53728525272, 1599440489): `weight` U8 [ceil(numel / 2), 1] (quant_storage uint8),
    `weight.absmax` F32 [ceil(numel / blocksize)] (blocksize 64 for 4-bit), `weight.quant_map` F32 [16],
    `weight.quant_state.bitsandbytes__nf4` U8 [len(json.dumps({"quant_type", "blocksize", "dtype", "shape"}))].
    Modules named in llm_int8_skip_modules (and non-Linear modules: embeddings, norms) stay in the compute dtype.
Block FP8 (DeepSeek-V3 / Kimi-K2 / Qwen3-FP8, quantization_config.weight_block_size [128, 128]): every quantized
    linear stores `weight` F8_E4M3 [out, in] + `weight_scale_inv` F32 [ceil(out / 128), ceil(in / 128)]; router
    `mlp.gate.weight`, norms, embeddings, lm_head stay BF16; DeepSeek's `e_score_correction_bias` is F32.
    Confirmed against the DeepSeek-V3 header dump in simpx/model-inspect README.md (q_a_proj [1536, 7168] F8_E4M3 +
    weight_scale_inv [12, 56] F32; eh_proj of the MTP layer stays BF16; 91,991 tensors, 688,574,839,360 bytes).
NVIDIA ModelOpt FP8 (hf_quant_config.json quant_algo FP8): `weight` F8_E4M3, `weight_scale` F32 [], `input_scale`
    F32 [] per quantized linear; with kv_cache_quant_algo FP8 also `self_attn.k_proj.k_scale` / `v_proj.v_scale` F32 []
    (names as vLLM/SGLang remap them: "self_attn.k_proj.k_scale" -> "self_attn.attn.k_scale", find_string hits in
    sglang RemapParamsMixin and vLLM weight_utils).
MXFP4 (gpt-oss, quantization_config.quant_method mxfp4): expert weights `*_blocks` U8 [E, out, in / 32, 16] and
    `*_scales` U8 [E, out, in / 32]; everything else BF16 (names and shapes as in the real gpt-oss-20b index).
"""

from __future__ import annotations

import json
import math
import re

Table = list  # list[tuple[str, str, tuple[int, ...]]]


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


# -- which tensors are "quantized linears" ---------------------------------------------------------------------------
def is_decoder_linear(name: str, shape, *, exclude=()) -> bool:
    """A 2-D `.weight` inside a decoder layer that a weight-only quantizer replaces (not norms, not routers)."""
    if not name.endswith(".weight") or len(shape) != 2:
        return False
    if ".layers." not in name and ".h." not in name and ".blocks." not in name:
        return False
    if re.search(r"\.(mlp\.gate|block_sparse_moe\.gate|mlp\.router)\.weight$", name):
        return False  # MoE routers stay unquantized in every format here
    if re.search(r"(embed_tokens|shared_head\.head|eh_proj)\.weight$", name):
        return False
    return not any(re.search(p, name) for p in exclude)


# -- GPTQ -------------------------------------------------------------------------------------------------------------
def gptq(table: Table, bits: int, group_size: int, *, bias_always: bool) -> Table:
    out: Table = []
    have_bias = {n[: -len(".bias")] for n, _, _ in table if n.endswith(".bias")}
    for name, dtype, shape in table:
        if is_decoder_linear(name, shape):
            base = name[: -len(".weight")]
            o, i = shape
            g = group_size if group_size > 0 else i
            out.append((base + ".qweight", "I32", (i // 32 * bits, o)))
            out.append((base + ".qzeros", "I32", (_ceil(i, g), o // 32 * bits)))
            out.append((base + ".scales", "F16", (_ceil(i, g), o)))
            out.append((base + ".g_idx", "I32", (i,)))
            if bias_always and base not in have_bias:
                out.append((base + ".bias", "F16", (o,)))
        elif name.endswith(".bias") and dtype in ("BF16", "F32"):
            out.append((name, "F16", shape))
        else:
            out.append((name, "F16" if dtype in ("BF16", "F32") else dtype, shape))
    return out


# -- AWQ (GEMM) -------------------------------------------------------------------------------------------------------
def awq_gemm(table: Table, bits: int, group_size: int) -> Table:
    out: Table = []
    pack = 32 // bits
    for name, dtype, shape in table:
        if is_decoder_linear(name, shape):
            base = name[: -len(".weight")]
            o, i = shape
            out.append((base + ".qweight", "I32", (i, o // pack)))
            out.append((base + ".qzeros", "I32", (i // group_size, o // pack)))
            out.append((base + ".scales", "F16", (i // group_size, o)))
        else:
            out.append((name, "F16" if dtype in ("BF16", "F32") else dtype, shape))
    return out


# -- bitsandbytes NF4 -------------------------------------------------------------------------------------------------
def bnb_4bit_state(shape, quant_type: str = "nf4", blocksize: int = 64, dtype: str = "float16") -> Table:
    numel = math.prod(shape)
    packed = json.dumps({"quant_type": quant_type, "blocksize": blocksize, "dtype": dtype, "shape": list(shape)})
    return [
        ("", "U8", (_ceil(numel, 2), 1)),
        (".absmax", "F32", (_ceil(numel, blocksize),)),
        (".quant_map", "F32", (16,)),
        (f".quant_state.bitsandbytes__{quant_type}", "U8", (len(packed.encode()),)),
    ]


def bnb_4bit(table: Table, skip_prefixes, *, linear_names: set[str], quant_type="nf4", blocksize=64,
             dtype="float16") -> Table:
    out: Table = []
    for name, dt, shape in table:
        if name in linear_names and not any(name.startswith(p + ".") or name == p for p in skip_prefixes):
            for suffix, qdt, qshape in bnb_4bit_state(shape, quant_type, blocksize, dtype):
                out.append((name + suffix, qdt, qshape))
        else:
            out.append((name, dt, shape))
    return out


# -- block FP8 --------------------------------------------------------------------------------------------------------
def block_fp8(table: Table, block=(128, 128), *, not_converted=(), exclude=()) -> Table:
    """`not_converted`: module names from quantization_config.modules_to_not_convert (exact module paths)."""
    skip = set(not_converted)
    out: Table = []
    for name, dtype, shape in table:
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        if module and module not in skip and is_decoder_linear(name, shape, exclude=exclude):
            o, i = shape
            out.append((name, "F8_E4M3", shape))
            out.append((module + ".weight_scale_inv", "F32", (_ceil(o, block[0]), _ceil(i, block[1]))))
        else:
            out.append((name, dtype, shape))
    return out


# -- ModelOpt FP8 -----------------------------------------------------------------------------------------------------
def modelopt_fp8(table: Table, *, kv_cache_fp8: bool, exclude_modules=("lm_head",)) -> Table:
    out: Table = []
    for name, dtype, shape in table:
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        if module and module not in exclude_modules and is_decoder_linear(name, shape):
            out.append((name, "F8_E4M3", shape))
            out.append((module + ".input_scale", "F32", ()))
            out.append((module + ".weight_scale", "F32", ()))
            if kv_cache_fp8 and module.endswith("self_attn.k_proj"):
                out.append((module + ".k_scale", "F32", ()))
            if kv_cache_fp8 and module.endswith("self_attn.v_proj"):
                out.append((module + ".v_scale", "F32", ()))
        else:
            out.append((name, dtype, shape))
    return out


# -- MXFP4 (gpt-oss) --------------------------------------------------------------------------------------------------
def mxfp4_experts(table: Table) -> Table:
    """Replace the BF16 fused expert weights (`mlp.experts.gate_up_proj` [E, H, 2I], `down_proj` [E, I, H], as
    transformers builds them) by the checkpoint's `_blocks`/`_scales` pairs ([E, out, in/32, 16] / [E, out, in/32])."""
    out: Table = []
    for name, dtype, shape in table:
        m = re.search(r"\.mlp\.experts\.(gate_up_proj|down_proj)$", name)
        if m:
            e, i, o = shape  # transformers stores [E, in, out]
            out.append((name + "_blocks", "U8", (e, o, i // 32, 16)))
            out.append((name + "_scales", "U8", (e, o, i // 32)))
        else:
            out.append((name, dtype, shape))
    return out
