"""Exact GGUF tensor sizes for a Hugging Face checkpoint, as llama.cpp would produce and load them.

Given a tensor table in Hugging Face naming (``hfvram.stformat.Tensor``: ``.name``, ``.shape``) and a llama.cpp
file type (``Q4_K_M``, ``Q8_0``, ``F16``...), this module reproduces, tensor by tensor,

1. ``convert_hf_to_gguf.py``: which HF tensors survive, their GGUF names and shapes (MoE experts stacked into
   3-D ``ffn_*_exps``, DeepSeek's ``kv_b_proj`` split, GPT-2's Conv1D transposed, gpt-oss MXFP4 repacked) and the
   type the converter writes (1-D tensors, norms, biases and routers in F32, the rest in the ``--outtype``);
2. ``llama-quantize``: ``llama_tensor_get_type`` with the per-ftype mixture rules (``use_more_bits``, the
   ``attn_v`` counter, the GQA / MoE / 70B bumps, output and token-embedding rules) and the fallback used when a
   row does not divide into whole blocks;

and sums ``n_rows * ggml_row_size(type, ne[0])`` per tensor (exactly what ``llama_model_quantize_impl`` writes).

Sources (cited next to every rule below):

- CURRENT = ggml-org/llama.cpp @ 0c1e57098bba43ac29e6e3b677cdceebdd22334f, as vendored by llama-cpp-python
  0.3.36 (``vendor/llama.cpp``): ``src/llama-quant.cpp``, ``ggml/src/ggml-common.h``, ``ggml/src/ggml.c``,
  ``conversion/*.py`` (the split-up ``convert_hf_to_gguf.py``), ``gguf-py/gguf/tensor_mapping.py``.
- B1513 = the late-2023 rules: llama.cpp @ 6bb4908a17150b49373b5f977685b2e180a04f6f as vendored by
  llama-cpp-python 0.2.18 (``llama.cpp``: ``get_k_quant_type`` / ``llama_model_quantize_internal``), a few commits
  after b1513 (bd90eca) with the same ``get_k_quant_type``. ``version="b1513"`` reproduces the ggml-org/ci
  open_llama_7b_v2 figures of that build exactly (see tests/test_gguf.py); the current rules differ for Q2_K
  (b1513 also bumped ffn_gate/ffn_up to Q3_K).
- MID2025 = llama.cpp @ 4227c9be4268ac844921b90f31595f81236bd317 as vendored by llama-cpp-python 0.3.16 (August
  2025): ``version="4227c9b"``. Its ``llama_tensor_get_type`` matched tensors by name, and a fused ``attn_qkv``
  (Phi-3, Phi-4, Falcon, GPT-2 ...) had a branch of its own (Q3_K_M/Q3_K_L/IQ3_M -> Q4_K, Q4_K_M -> Q5_K, Q5_K_M
  -> Q6_K, nothing else) after the ``attn_v.weight`` branch; CURRENT's ``tensor_get_category`` files ATTENTION_QKV
  under ``category_is_attn_v``, so the attn_v rules (Q2_K -> Q3_K/Q4_K, Q4_K_S -> Q5_K, IQ4_XS -> Q5_K with GQA,
  the low-bit IQ bumps ...) apply to it now and the old QKV branch is unreachable. Everything else that decides a
  type is the same in both (checked line by line; the fallback tables differ in name only: Q2_K/Q3_K fell back to
  IQ4_NL then, Q4_0 now, both 18 bytes per 32 weights). GGUFs published before August 2025 follow it.

Tensors the converter already writes quantized (gpt-oss's MXFP4 experts) keep their type under every file type:
llama-quantize refuses to re-quantize a quantized tensor unless ``--allow-requantize`` is given (CURRENT
llama-quant.cpp ``llama_model_quantize_impl``: "requantizing from type %s is disabled"), and every published
gpt-oss GGUF keeps its experts in MXFP4 whatever the file type says (unsloth/gpt-oss-20b-GGUF: 11.5-11.8 GB from
Q2_K to Q5_K_M, validation/gguf-sizes.jsonl). ``allow_requantize=True`` sizes the other kind (DevQuasar's Q8_0,
22.3 GB).

Shapes are given in PyTorch / numpy order (HF ``shape``); ggml's ``ne`` is the reverse, so ``ne[0]`` (the row
length that must divide into blocks) is ``shape[-1]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from typing import Iterable, Mapping

from ..introspect.config import text_section
from ..lazyre import lazy
from ..record import record

LLAMA_CPP_CURRENT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"  # llama-cpp-python 0.3.36 vendor/llama.cpp
LLAMA_CPP_B1513 = "6bb4908a17150b49373b5f977685b2e180a04f6f"  # llama-cpp-python 0.2.18 vendor/llama.cpp
LLAMA_CPP_MID2025 = "4227c9be4268ac844921b90f31595f81236bd317"  # llama-cpp-python 0.3.16 vendor/llama.cpp
VERSIONS = ("current", "4227c9b", "b1513")

# ---------------------------------------------------------------------------------------------------------------
# ggml types: (elements per block, bytes per block)
# ---------------------------------------------------------------------------------------------------------------
# Source: CURRENT ggml/src/ggml.c `type_traits[]` (.blck_size, .type_size = sizeof(block_*)) and
# ggml/src/ggml-common.h (QK_K = 256, QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK4_NL = QK_MXFP4 = 32, QK_NVFP4 = 64,
# QK1_0 = 128, QK2_0 = 64, K_SCALE_SIZE = 12, IQ3S_N_SCALE = QK_K/64, and the static_asserts on every block_*
# struct). The byte counts were checked by compiling sizeof(block_*) against that header.
TYPE_TRAITS: dict[str, tuple[int, int]] = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "F64": (1, 8),
    "I8": (1, 1),
    "I16": (1, 2),
    "I32": (1, 4),
    "I64": (1, 8),
    "Q4_0": (32, 18),  # ggml_half d + QK4_0/2
    "Q4_1": (32, 20),  # 2*ggml_half + QK4_1/2
    "Q5_0": (32, 22),  # ggml_half + uint32 qh + QK5_0/2
    "Q5_1": (32, 24),  # 2*ggml_half + uint32 qh + QK5_1/2
    "Q8_0": (32, 34),  # ggml_half + QK8_0
    "Q8_1": (32, 36),  # 2*ggml_half + QK8_1
    "Q2_K": (256, 84),  # 2*ggml_half + QK_K/16 + QK_K/4
    "Q3_K": (256, 110),  # ggml_half + QK_K/4 + QK_K/8 + 12
    "Q4_K": (256, 144),  # 2*ggml_half + K_SCALE_SIZE + QK_K/2
    "Q5_K": (256, 176),  # 2*ggml_half + K_SCALE_SIZE + QK_K/2 + QK_K/8
    "Q6_K": (256, 210),  # ggml_half + QK_K/16 + 3*QK_K/4
    "Q8_K": (256, 292),  # float + QK_K + QK_K/16*int16
    "IQ2_XXS": (256, 66),  # ggml_half + QK_K/8*uint16
    "IQ2_XS": (256, 74),  # ggml_half + QK_K/8*uint16 + QK_K/32
    "IQ2_S": (256, 82),  # ggml_half + QK_K/4 + QK_K/16
    "IQ3_XXS": (256, 98),  # ggml_half + 3*(QK_K/8)
    "IQ3_S": (256, 110),  # ggml_half + 13*(QK_K/32) + IQ3S_N_SCALE
    "IQ1_S": (256, 50),  # ggml_half + QK_K/8 + QK_K/16
    "IQ1_M": (256, 56),  # QK_K/8 + QK_K/16 + QK_K/32
    "IQ4_NL": (32, 18),  # ggml_half + QK4_NL/2
    "IQ4_XS": (256, 136),  # ggml_half + uint16 + QK_K/64 + QK_K/2
    "TQ1_0": (256, 54),  # ggml_half + QK_K/64 + (QK_K - 4*QK_K/64)/5
    "TQ2_0": (256, 66),  # ggml_half + QK_K/4
    "MXFP4": (32, 17),  # uint8 e + QK_MXFP4/2
    "NVFP4": (64, 36),  # uint8 scales[QK_NVFP4/16] + QK_NVFP4/2
    "Q1_0": (128, 18),  # ggml_half + QK1_0/8
    "Q2_0": (64, 18),  # ggml_half + QK2_0/4
}

# ggml.c type_traits[].is_quantized: false for the plain float/int types, true for every block type.
_UNQUANTIZED = {"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"}


def is_quantized(ggml_type: str) -> bool:
    return ggml_type not in _UNQUANTIZED


def row_bytes(ggml_type: str, n: int) -> int:
    """``ggml_row_size(type, n)``: bytes of ``n`` consecutive elements (ggml.c: ``type_size * n / blck_size``,
    which asserts ``n % blck_size == 0``)."""
    blck, size = TYPE_TRAITS[_norm_type(ggml_type)]
    if n % blck:
        raise ValueError(f"a row of {n} elements is not a whole number of {ggml_type} blocks ({blck})")
    return n // blck * size


def tensor_bytes(ggml_type: str, shape: Iterable[int]) -> int:
    """``ggml_nbytes`` of a contiguous tensor: rows x ``row_bytes(type, ne[0])``, ``ne[0] = shape[-1]``."""
    shape = tuple(int(s) for s in shape) or (1,)
    ne0 = shape[-1]
    rows = math.prod(shape[:-1])
    return rows * row_bytes(ggml_type, ne0)


def _norm_type(t: str) -> str:
    u = t.upper()
    return u if u in TYPE_TRAITS else t


# KV cache types llama.cpp accepts for --cache-type-k/-v: CURRENT common/arg.cpp `kv_cache_types`.
# Value: bytes per element = block bytes / block elements (TYPE_TRAITS).
KV_CACHE_TYPES: dict[str, float] = {
    name.lower(): TYPE_TRAITS[name][1] / TYPE_TRAITS[name][0]
    for name in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "IQ4_NL", "Q5_0", "Q5_1")
}


def kv_cache_bytes(cache_type: str, n_elements: int) -> int:
    """Exact bytes for ``n_elements`` cache elements (rows of a whole number of blocks, as llama.cpp requires)."""
    t = cache_type.upper()
    if t.lower() not in KV_CACHE_TYPES:
        raise ValueError(f"unsupported KV cache type {cache_type!r} (one of {', '.join(KV_CACHE_TYPES)})")
    blck, size = TYPE_TRAITS[t]
    return -(-n_elements // blck) * size


# ---------------------------------------------------------------------------------------------------------------
# llama-quantize file types -> default (base) ggml type
# ---------------------------------------------------------------------------------------------------------------
# Source: CURRENT src/llama-quant.cpp `llama_ftype_get_default_type`; names as tools/quantize/quantize.cpp
# QUANT_OPTIONS (incl. the aliases Q3_K/Q4_K/Q5_K -> *_M).
FILE_TYPES: dict[str, str] = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q4_0": "Q4_0",
    "Q4_1": "Q4_1",
    "Q5_0": "Q5_0",
    "Q5_1": "Q5_1",
    "Q2_K": "Q2_K",
    "Q2_K_S": "Q2_K",
    "Q3_K_S": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K",
    "Q4_K_M": "Q4_K",
    "Q5_K_S": "Q5_K",
    "Q5_K_M": "Q5_K",
    "Q6_K": "Q6_K",
    "IQ2_XXS": "IQ2_XXS",
    "IQ2_XS": "IQ2_XS",
    "IQ2_S": "IQ2_XS",  # sic: LLAMA_FTYPE_MOSTLY_IQ2_S -> GGML_TYPE_IQ2_XS
    "IQ2_M": "IQ2_S",
    "IQ3_XXS": "IQ3_XXS",
    "IQ3_XS": "IQ3_S",
    "IQ3_S": "IQ3_S",
    "IQ3_M": "IQ3_S",
    "IQ1_S": "IQ1_S",
    "IQ1_M": "IQ1_M",
    "IQ4_NL": "IQ4_NL",
    "IQ4_XS": "IQ4_XS",
    "TQ1_0": "TQ1_0",
    "TQ2_0": "TQ2_0",
    "MXFP4_MOE": "MXFP4",
    "Q1_0": "Q1_0",
    "Q2_0": "Q2_0",
}
FTYPE_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}  # quantize.cpp QUANT_OPTIONS

# Late-2023 llama_model_quantize_internal `switch (params->ftype)`: the only ftypes it accepted.
FILE_TYPES_B1513 = {k: FILE_TYPES[k] for k in ("F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K",
                                               "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S",
                                               "Q5_K_M", "Q6_K")}

# Outtypes written by convert_hf_to_gguf.py itself (no llama-quantize pass): conversion/base.py prepare_tensors.
CONVERTER_FTYPES = ("F32", "F16", "BF16")

# llama-quantize refuses these without an importance matrix (src/llama-quant.cpp `tensor_requires_imatrix`:
# IQ1_S/IQ1_M/IQ2_XXS/IQ2_XS/IQ2_S/IQ3_XXS targets, and Q2_K inside a Q2_K_S file), so their sizes assume one.
_NEEDS_IMATRIX = {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "Q2_K_S"}


def normalize_ftype(ftype: str, version: str = "current") -> str:
    f = str(ftype).strip().upper().replace("-", "_")
    if f.startswith("GGUF:"):
        f = f[5:]
    f = FTYPE_ALIASES.get(f, f)
    table = FILE_TYPES_B1513 if version == "b1513" else FILE_TYPES
    if f not in table:
        raise ValueError(f"unsupported llama.cpp file type {ftype!r} for version {version!r} "
                         f"(one of {', '.join(table)})")
    return f


def base_bpw(ftype: str) -> float:
    """Bits per weight of the ftype's base ggml type (the mixture rules make real files a little larger)."""
    blck, size = TYPE_TRAITS[FILE_TYPES[normalize_ftype(ftype)]]
    return size * 8 / blck


# ---------------------------------------------------------------------------------------------------------------
# HF name -> GGUF name (convert_hf_to_gguf.py + gguf-py/gguf/tensor_mapping.py)
# ---------------------------------------------------------------------------------------------------------------
# HF model_type (or llama.cpp arch name) -> llama.cpp LLM_ARCH name (src/llama-arch.cpp LLM_ARCH_NAMES). Mistral
# and Mixtral convert as "llama" (conversion/llama.py registers MistralForCausalLM/MixtralForCausalLM on
# LlamaModel); DeepSeek-V2/V3 as "deepseek2" (conversion/deepseek.py DeepseekV2Model); gpt-oss is "gpt-oss".
_ARCH = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
    "qwen2_moe": "qwen2moe", "qwen2moe": "qwen2moe", "qwen3_moe": "qwen3moe", "qwen3moe": "qwen3moe",
    "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3", "gemma3_text": "gemma3", "phi3": "phi3",
    "falcon": "falcon", "gpt2": "gpt2", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2",
    "deepseek2": "deepseek2", "kimi_k2": "deepseek2", "gpt_oss": "gpt-oss", "gpt-oss": "gpt-oss", "olmo": "olmo",
    "olmo2": "olmo2", "llama4": "llama4", "llama4_text": "llama4",
    "deci": "deci", "jais2": "jais2", "bailingmoe3": "bailingmoe3", "glm5-next": "glm5-next",
}


def llama_arch(model_type: str | None) -> str | None:
    if not model_type:
        return None
    m = str(model_type).lower()
    return _ARCH.get(m, m)


# Dropped by the converter.
# conversion/base.py ModelBase.prepare_tensors: `if name.endswith((".attention.masked_bias", ".attention.bias",
# ".rotary_emb.inv_freq")): continue`; conversion/gpt2.py GPT2Model.modify_tensors: ".attn.bias",
# ".attn.masked_bias" ("we don't need these"); FP8 block scales are folded in by ModelBase.dequant_model.
# ModelBase.dequant_model removes ".weight_scale_inv" (fp8), ".activation_scale", ".qscale_*" and, for modelopt,
# ".weight_scale", ".input_scale", ".k_scale", ".v_scale" after folding the scales into the weights.
_DROP_SUFFIXES = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq", ".attn.bias",
                  ".attn.masked_bias", ".weight_scale_inv", ".weight_scale", ".input_scale", ".k_scale", ".v_scale",
                  ".activation_scale", "_activation_scale", ".qscale_weight", ".qscale_act")
# conversion/base.py TextModel.filter_tensors: multimodal towers/projectors are skipped by the text converter
# (they go to a separate mmproj GGUF).
_MM_PREFIXES = ("mlp", "vit.", "vpm.", "siglip2.", "conformer.", "merger.", "resampler.", "sound_encoder.",
                "sound_projection.", "speech_embeddings.")
_MM_PARTS = ("visual.", "vision.", "audio.", "talker.", "vision_", "audio_", "token2wav.", "code2wav.",
             "projector.", "pre_mm_projector_norm", "image_newline", "view_seperator", "patch_embed",
             "patch_embedding", "patch_merger.", "patch_merge_mlp.", "model.connector.")

# Non-block tensors: gguf-py/gguf/tensor_mapping.py TensorNameMap.mappings_cfg (TOKEN_EMBD, POS_EMBD,
# TOKEN_TYPES, TOKEN_EMBD_NORM, OUTPUT, OUTPUT_NORM) -> gguf-py/gguf/constants.py TENSOR_NAMES.
_TOP = {
    "gpt_neox.embed_in": "token_embd", "transformer.wte": "token_embd", "transformer.word_embeddings": "token_embd",
    "word_embeddings": "token_embd", "model.embed_tokens": "token_embd", "embed_tokens": "token_embd",
    "tok_embeddings": "token_embd", "wte": "token_embd", "transformer.embd.wte": "token_embd",
    "model.tok_embeddings": "token_embd", "model.word_embeddings": "token_embd", "model.embed": "token_embd",
    "transformer.wpe": "position_embd", "wpe": "position_embd", "model.embed_positions": "position_embd",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types",
    "word_embeddings_layernorm": "token_embd_norm", "embeddings.LayerNorm": "token_embd_norm",
    "embed_out": "output", "lm_head": "output", "output": "output", "lm_head.linear": "output",
    "model.lm_head": "output",
    "gpt_neox.final_layer_norm": "output_norm", "transformer.ln_f": "output_norm", "model.norm": "output_norm",
    "norm": "output_norm", "transformer.norm_f": "output_norm", "ln_f": "output_norm",
    "model.final_layernorm": "output_norm", "lm_head.ln": "output_norm", "model.norm_f": "output_norm",
}

_LAYER_RE = lazy(r"^(?:model\.layers|layers|transformer\.h|h|gpt_neox\.layers|transformer\.blocks|"
                       r"model\.decoder\.layers|backbone\.layers)\.(\d+)\.(.+)$")

# Block tensors: tensor_mapping.py TensorNameMap.block_mappings_cfg (the llama-hf, gpt2, falcon, phi3, qwen2moe,
# deepseek2, mixtral, gemma2/3, gpt-oss entries) -> constants.py TENSOR_NAMES "blk.{bid}.*".
_BLOCK = {
    # attention norms (ATTN_NORM / ATTN_NORM_2)
    "input_layernorm": "attn_norm", "ln_1": "attn_norm", "ln_mlp": "attn_norm", "attention_norm": "attn_norm",
    "ln": "attn_norm", "ln1": "attn_norm", "ln_attn": "attn_norm_2",
    # FFN norms (FFN_NORM; gemma2/3 pre_feedforward_layernorm is FFN_PRE_NORM = "ffn_norm" too)
    "post_attention_layernorm": "ffn_norm", "ln_2": "ffn_norm", "ln2": "ffn_norm", "ffn_norm": "ffn_norm",
    "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
    # attention
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
    "self_attention.query_key_value": "attn_qkv", "self_attn.query_key_value": "attn_qkv",
    "attention.query_key_value": "attn_qkv", "attn.c_attn": "attn_qkv", "mixer.Wqkv": "attn_qkv",
    "self_attention.dense": "attn_output", "attn.c_proj": "attn_output", "self_attn.dense": "attn_output",
    "attention.dense": "attn_output", "mixer.out_proj": "attn_output",
    "attn.q_proj": "attn_q", "attn.k_proj": "attn_k", "attn.v_proj": "attn_v", "attn.out_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "self_attn.q_layernorm": "attn_q_norm", "self_attn.k_layernorm": "attn_k_norm",
    "self_attn.sinks": "attn_sinks",
    # DeepSeek-2/3 MLA
    "self_attn.q_a_proj": "attn_q_a", "self_attn.q_a_layernorm": "attn_q_a_norm", "self_attn.q_b_proj": "attn_q_b",
    "self_attn.kv_a_proj_with_mqa": "attn_kv_a_mqa", "self_attn.kv_a_layernorm": "attn_kv_a_norm",
    # dense FFN
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "mlp.gate_up_proj": "ffn_up",  # phi3: fused, kept fused as FFN_UP
    "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down", "mlp.dense_h_to_4h": "ffn_up", "mlp.dense_4h_to_h": "ffn_down",
    "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down", "mlp.fc_in": "ffn_up", "mlp.fc_out": "ffn_down",
    # llama4 / jamba / granite-hybrid "feed_forward.*"
    "feed_forward.gate_proj": "ffn_gate", "feed_forward.up_proj": "ffn_up", "feed_forward.down_proj": "ffn_down",
    "feed_forward.router": "ffn_gate_inp",
    "feed_forward.shared_expert.gate_proj": "ffn_gate_shexp", "feed_forward.shared_expert.up_proj": "ffn_up_shexp",
    "feed_forward.shared_expert.down_proj": "ffn_down_shexp",
    # MoE routers (FFN_GATE_INP, FFN_GATE_INP_SHEXP) and expert-selection bias (FFN_EXP_PROBS_B)
    "block_sparse_moe.gate": "ffn_gate_inp", "mlp.gate": "ffn_gate_inp", "mlp.router": "ffn_gate_inp",
    "mlp.shared_expert_gate": "ffn_gate_inp_shexp", "mlp.gate.e_score_correction": "exp_probs_b",
    # shared experts (FFN_*_SHEXP)
    "mlp.shared_expert.gate_proj": "ffn_gate_shexp", "mlp.shared_expert.up_proj": "ffn_up_shexp",
    "mlp.shared_expert.down_proj": "ffn_down_shexp", "mlp.shared_experts.gate_proj": "ffn_gate_shexp",
    "mlp.shared_experts.up_proj": "ffn_up_shexp", "mlp.shared_experts.down_proj": "ffn_down_shexp",
}
# gemma2/gemma3/olmo2: "post_attention_layernorm" is ATTN_POST_NORM ("post_attention_norm"), not FFN_NORM.
_POST_ATTN_NORM_ARCHS = {"gemma2", "gemma3", "olmo2"}

# Per-expert tensors, stacked into one 3-D tensor per layer: conversion/llama.py LlamaModel.modify_tensors
# (Mixtral block_sparse_moe.experts.{xid}.w1/w2/w3), conversion/qwen.py Qwen2MoeModel.modify_tensors and
# conversion/deepseek.py DeepseekV2Model.modify_tensors (mlp.experts.{xid}.{gate,up,down}_proj), then mapped by
# tensor_mapping.py FFN_{GATE,DOWN,UP}_EXP -> "blk.{bid}.ffn_{gate,down,up}_exps".
_EXPERT_RE = lazy(r"^(?:block_sparse_moe|mlp|feed_forward)\.experts\.(\d+)\."
                        r"(w1|w2|w3|gate_proj|up_proj|down_proj)$")
_EXPERT_KIND = {"w1": "ffn_gate_exps", "w2": "ffn_down_exps", "w3": "ffn_up_exps", "gate_proj": "ffn_gate_exps",
                "up_proj": "ffn_up_exps", "down_proj": "ffn_down_exps"}


@record(frozen=True)
class GGUFTensor:
    """One tensor of the converted GGUF (before merging the pieces of stacked experts)."""

    name: str  # e.g. "blk.3.attn_v.weight"
    layer: int | None
    shape: tuple[int, ...]  # numpy order; ggml ne = reversed
    src_type: str | None = None  # a type the converter writes regardless of --outtype (gpt-oss MXFP4 experts)
    stack: bool = False  # one expert of a stacked ffn_*_exps tensor (leading dim accumulates)


def _split_suffix(path: str) -> tuple[str, str]:
    for suffix in (".weight", ".bias"):
        if path.endswith(suffix):
            return path[: -len(suffix)], suffix
    return path, ""


def _dropped(name: str) -> bool:
    if name.endswith(_DROP_SUFFIXES):
        return True
    return name.startswith(_MM_PREFIXES) or any(p in name for p in _MM_PARTS)


def gguf_tensors(hf_name: str, shape: Iterable[int] | None = None, *, arch: str | None = None,
                 config: Mapping | None = None, conv1d: bool | None = None,
                 hidden: int | None = None) -> list[GGUFTensor]:
    """Every GGUF tensor that ``convert_hf_to_gguf.py`` writes for one HF tensor ([] when it drops it).

    ``shape`` is the HF shape; ``config`` the HF config (DeepSeek ``kv_b_proj`` split dims); ``conv1d`` forces
    GPT-2's Conv1D transpose (default: ``arch == "gpt2"``); ``hidden`` (the hidden size) tells the layout of
    aggregated expert tensors apart when the arch does not. Unknown names are kept under a best-effort name
    (``blk.N.<hf path>`` / the HF name) so their bytes are not lost; ``gguf_weights`` notes them.
    """
    arch = llama_arch(arch)
    shape_t = tuple(int(s) for s in shape) if shape is not None else ()
    name = hf_name
    # conversion/base.py ModelBase.filter_tensors: "e_score_correction_bias" -> ".bias"; drop "language_model.".
    if name.endswith("e_score_correction_bias"):
        name = name.replace("e_score_correction_bias", "e_score_correction.bias")
    name = name.replace("language_model.", "")
    if _dropped(name):
        return []
    # conversion/gpt_oss.py: "mlp.experts.*_scales" are folded into the MXFP4 blocks (repack_mxfp4).
    if name.endswith(("_scales",)) and ".experts." in name:
        return []

    m = _LAYER_RE.match(name)
    if not m:
        base, suffix = _split_suffix(name)
        if arch in ("gemma", "gemma2", "gemma3") and base in ("lm_head", "model.lm_head"):
            return []  # conversion/gemma.py filter_tensors: "lm_head is not used in llama.cpp"
        g = _TOP.get(base)
        if g is None:
            return [GGUFTensor(name, None, shape_t)]  # unknown: keep bytes under the HF name
        return [GGUFTensor(g + (suffix or ".weight"), None, shape_t)]

    bid = int(m.group(1))
    path = m.group(2)
    pre = f"blk.{bid}."

    # gpt-oss attention sinks: conversion/gpt_oss.py filter_tensors appends ".weight" to "sinks".
    if path == "self_attn.sinks":
        return [GGUFTensor(pre + "attn_sinks.weight", bid, shape_t)]

    # gpt-oss MXFP4 experts (conversion/gpt_oss.py generate_extra_tensors + repack_mxfp4): blocks
    # [E, rows, ne0/32, 16] -> MXFP4 tensor [E, rows, ne0]; gate_up rows are interleaved gate/up (::2, 1::2).
    gm = re.match(r"^(?:mlp|feed_forward)\.experts\.(gate_up_proj|down_proj)(_blocks|_bias|\.weight)?$", path)
    if gm:
        kind, part = gm.group(1), gm.group(2)
        if part == "_blocks":
            logical = shape_t[:-2] + (shape_t[-2] * 32,) if len(shape_t) >= 4 else shape_t
            if kind == "down_proj":
                return [GGUFTensor(pre + "ffn_down_exps.weight", bid, logical, "MXFP4")]
            half = logical[:1] + (logical[1] // 2,) + logical[2:] if logical else ()
            return [GGUFTensor(pre + "ffn_gate_exps.weight", bid, half, "MXFP4"),
                    GGUFTensor(pre + "ffn_up_exps.weight", bid, half, "MXFP4")]
        if part == "_bias":  # [E, 2I] split ::2 / 1::2; down [E, H]
            if kind == "down_proj":
                return [GGUFTensor(pre + "ffn_down_exps.bias", bid, shape_t)]
            half = shape_t[:-1] + (shape_t[-1] // 2,) if shape_t else ()
            return [GGUFTensor(pre + "ffn_gate_exps.bias", bid, half),
                    GGUFTensor(pre + "ffn_up_exps.bias", bid, half)]
        # Aggregated expert tensors (one [E, ., .] tensor per layer).
        # gpt-oss dequantised and Llama-4 store them [E, in, out]: gate_up [E, H, 2I] is transposed to [E, 2I, H]
        # and split, down [E, I, H] transposed to [E, H, I] (conversion/gpt_oss.py modify_tensors,
        # conversion/llama.py Llama4Model.modify_tensors). The Qwen2Moe family (transformers v5) stores them
        # [E, out, in]: gate_up [E, 2I, H] split on dim -2, down [E, H, I] as is (conversion/qwen.py
        # Qwen2MoeModel.modify_tensors). Without the arch, the hidden size tells the layouts apart.
        in_out = arch in ("gpt-oss", "llama4")
        if not in_out and hidden and len(shape_t) == 3:
            in_out = (shape_t[1] == hidden and shape_t[2] != hidden) if kind == "gate_up_proj" else \
                (shape_t[2] == hidden and shape_t[1] != hidden)
        if kind == "down_proj":
            if in_out and len(shape_t) == 3:
                shape_t = (shape_t[0], shape_t[2], shape_t[1])
            return [GGUFTensor(pre + "ffn_down_exps.weight", bid, shape_t)]
        if len(shape_t) == 3:
            if in_out:
                shape_t = (shape_t[0], shape_t[2], shape_t[1])
            half = (shape_t[0], shape_t[1] // 2, shape_t[2])
        else:
            half = shape_t
        return [GGUFTensor(pre + "ffn_gate_exps.weight", bid, half),
                GGUFTensor(pre + "ffn_up_exps.weight", bid, half)]

    base, suffix = _split_suffix(path)
    suffix = suffix or ".weight"

    em = _EXPERT_RE.match(base)
    if em:
        return [GGUFTensor(pre + _EXPERT_KIND[em.group(2)] + suffix, bid, (1,) + shape_t, stack=True)]

    # DeepSeek MLA: conversion/deepseek.py DeepseekV2Model.modify_tensors splits kv_b_proj
    # [n_head_kv*(qk_nope+v), kv_lora_rank] into k_b = [n_head_kv, kv_lora_rank, qk_nope] (transposed) and
    # v_b = [n_head_kv, v_head_dim, kv_lora_rank]; the fused kv_b is not written.
    if base == "self_attn.kv_b_proj":
        cfg = text_section(dict(config or {}))
        rows, rank = (shape_t + (0, 0))[:2] if len(shape_t) == 2 else (0, 0)
        nope = int(cfg.get("qk_nope_head_dim") or 0)
        v = int(cfg.get("v_head_dim") or 0)
        heads = int(cfg.get("num_key_value_heads") or cfg.get("num_attention_heads") or 0)
        if not (nope and v and heads) and rows:
            # Without the config assume qk_nope_head_dim == v_head_dim (DeepSeek-V2/V2-Lite/V3: 128/128).
            nope = v = nope or v or 128
            heads = rows // (nope + v) if rows % (nope + v) == 0 else 0
            if not heads:
                return [GGUFTensor(pre + "attn_kv_b" + suffix, bid, shape_t)]
        if not rows:
            return [GGUFTensor(pre + "attn_k_b" + suffix, bid, ()), GGUFTensor(pre + "attn_v_b" + suffix, bid, ())]
        return [GGUFTensor(pre + "attn_k_b" + suffix, bid, (heads, rank, nope)),
                GGUFTensor(pre + "attn_v_b" + suffix, bid, (heads, v, rank))]

    g = _BLOCK.get(base)
    if g is None:
        return [GGUFTensor(pre + path, bid, shape_t)]  # unknown block tensor: keep it, bytes count
    if base == "post_attention_layernorm" and arch in _POST_ATTN_NORM_ARCHS:
        g = "post_attention_norm"
    # GPT-2 Conv1D weights are [in, out]; conversion/gpt2.py transposes c_attn/c_proj/c_fc to [out, in].
    if (conv1d if conv1d is not None else arch == "gpt2") and suffix == ".weight" and len(shape_t) == 2 and \
            base in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
        shape_t = (shape_t[1], shape_t[0])
    return [GGUFTensor(pre + g + suffix, bid, shape_t)]


def gguf_name(hf_name: str, arch: str | None = None) -> tuple[str, int | None] | None:
    """GGUF name and layer index of an HF tensor, or None when the converter drops it.

    Per-expert tensors map to their stacked ``ffn_*_exps`` tensor; a tensor the converter splits in two
    (DeepSeek ``kv_b_proj``, fused expert ``gate_up_proj``) maps to the first piece (see ``gguf_tensors``).
    """
    out = gguf_tensors(hf_name, None, arch=arch)
    if not out:
        return None
    return out[0].name, out[0].layer


# ---------------------------------------------------------------------------------------------------------------
# convert_hf_to_gguf.py output types (conversion/base.py ModelBase.prepare_tensors)
# ---------------------------------------------------------------------------------------------------------------
# "Some tensor types are always in float32": FFN_GATE_INP, FFN_GATE_INP_SHEXP, POS_EMBD, TOKEN_TYPES, SSM_CONV1D,
# SHORTCONV_CONV, TIME_MIX_FIRST/W1/W2/DECAY_W1/DECAY_W2/LERP_FUSED, POSNET_NORM1/2, V/A_ENC_EMBD_POS,
# ALTUP_CORRECT/PREDICT_COEF, SSM_CONV1D_Q/K/V, INDEXER_PROJ.
_CONVERT_F32 = lazy(r"(^|\.)(ffn_gate_inp|ffn_gate_inp_shexp|position_embd|token_types|ssm_conv1d|"
                          r"shortconv\.conv|time_mix_first|time_mix_w1|time_mix_w2|time_mix_decay_w1|"
                          r"time_mix_decay_w2|time_mix_lerp_fused|altup_correct_coef|altup_predict_coef|"
                          r"ssm_conv1d_q|ssm_conv1d_k|ssm_conv1d_v|indexer\.proj)\.weight$")


def converter_type(gguf_name: str, shape: Iterable[int], outtype: str = "F16", src_type: str | None = None) -> str:
    """The ggml type ``convert_hf_to_gguf.py --outtype <outtype>`` writes for this tensor.

    conversion/base.py ModelBase.prepare_tensors: ``n_dims <= 1 or new_name.endswith("_norm.weight")`` -> F32;
    the always-F32 list above and any name not ending in ".weight" (biases) -> F32; TQ1_0/TQ2_0 keep
    token_embd/output in F16; otherwise the outtype, and a ``gguf.QuantError`` (row not a whole number of
    blocks, gguf-py/gguf/quants.py) "falling back to F16".
    """
    shape = tuple(shape)
    out = _norm_type(outtype)
    if src_type:  # written raw by the converter (gpt-oss MXFP4 experts: raw_dtype=MXFP4)
        return src_type
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight"):
        return "F32"
    if _CONVERT_F32.search(gguf_name) or not gguf_name.endswith((".weight", ".lora_a", ".lora_b")):
        return "F32"
    if out in ("TQ1_0", "TQ2_0") and gguf_name in ("token_embd.weight", "output.weight"):
        return "F16"
    blck = TYPE_TRAITS[out][0]
    if shape and shape[-1] % blck:
        return "F16"
    return out


# ---------------------------------------------------------------------------------------------------------------
# llama-quantize: CURRENT src/llama-quant.cpp
# ---------------------------------------------------------------------------------------------------------------

def _ne(shape: tuple[int, ...]) -> list[int]:
    ne = [int(s) for s in reversed(shape)] or [1]
    return ne + [1] * (4 - len(ne))


def _ggml_n_dims(ne: list[int]) -> int:
    """ggml.c ggml_n_dims: index of the last dimension > 1, plus one (a [1, n] matrix is 1-D)."""
    for i in range(3, 0, -1):
        if ne[i] > 1:
            return i + 1
    return 1


def tensor_allows_quantization(gguf_name: str, shape: Iterable[int], arch: str | None = None,
                               quantize_output_tensor: bool = True) -> bool:
    """CURRENT src/llama-quant.cpp ``tensor_allows_quantization``."""
    name = gguf_name
    if _ggml_n_dims(_ne(tuple(shape))) < 2:  # "quantize only 2D and 3D tensors (experts)"
        return False
    q = name.endswith("weight")
    q &= "_norm.weight" not in name  # "do not quantize norm tensors"
    q &= quantize_output_tensor or name != "output.weight"
    q &= "ffn_gate_inp.weight" not in name  # "do not quantize expert gating tensors"
    q &= "ffn_gate_tid2eid.weight" not in name
    q &= "altup" not in name and "laurel" not in name  # "these are very small (e.g. 4x4)"
    q &= "per_layer_model_proj" not in name
    q &= name not in ("position_embd.weight", "token_types.weight")  # LLM_TN(POS_EMBD / TOKEN_TYPES)
    q &= "ssm_conv1d" not in name and "shortconv.conv.weight" not in name
    q &= "indexer.k_proj.weight" not in name and "indexer.q_proj.weight" not in name
    if llama_arch(arch) == "glm5-next":
        for part in ("hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate",
                     "indexer_compressor_ape", "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight",
                     "ssm_g_b.weight", "ssm_beta.weight", "attn_kv_a_mqa.weight", "attn_k_b.weight",
                     "attn_v_b.weight"):
            q &= part not in name
    for part in ("time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
                 "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
                 "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
                 "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
                 "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
                 ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"):
        q &= part not in name
    return q


def tensor_category(gguf_name: str) -> str:
    """CURRENT src/llama-quant.cpp ``tensor_get_category`` (first match wins)."""
    n = gguf_name
    if n == "output.weight":
        return "OUTPUT"
    if n in ("token_embd.weight", "per_layer_token_embd.weight"):  # tensor_name_match_token_embd
        return "TOKEN_EMBD"
    for part, cat in (("attn_qkv.weight", "ATTENTION_QKV"), ("attn_kv_b.weight", "ATTENTION_KV_B"),
                      ("attn_v.weight", "ATTENTION_V"), ("attn_k.weight", "ATTENTION_K"),
                      ("attn_q.weight", "ATTENTION_Q"), ("attn_output.weight", "ATTENTION_OUTPUT"),
                      ("ffn_up", "FFN_UP"), ("ffn_gate", "FFN_GATE"), ("ffn_down", "FFN_DOWN")):
        if part in n:
            return cat
    return "OTHER"


def _is_attn_v(cat: str) -> bool:  # category_is_attn_v
    return cat in ("ATTENTION_V", "ATTENTION_QKV", "ATTENTION_KV_B")


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """``use_more_bits`` lambda (identical in CURRENT llama_tensor_get_type_impl and B1513 get_k_quant_type).
    C++ integer division / remainder: operands here are non-negative except (i - n/8) for i < n/8, which the
    first clause already covers."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


@record
class QuantState:
    """``quantize_state_impl`` plus the hparams the rules read (CURRENT llama-quant.cpp)."""

    arch: str | None = None
    n_layer: int = 0  # hparams.n_layer_all (n_ffn_down = n_ffn_gate = n_ffn_up)
    n_head: int = 0
    n_head_kv: int = 0
    n_expert: int = 0
    is_70b: bool = False  # qs.model.type == LLM_TYPE_70B
    has_imatrix: bool = False
    has_tied_embeddings: bool = True  # "assume tied until we see output.weight"
    n_attention_wv: int = 0
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0
    n_fallback: int = 0
    fallbacks: list = field(default_factory=list)
    kept: list = field(default_factory=list)  # (name, kept type, the type the rules would pick): not requantized

    def n_gqa(self) -> int:  # src/llama-hparams.cpp n_gqa(): n_head / n_head_kv, 0 when n_head_kv == 0
        return self.n_head // self.n_head_kv if self.n_head_kv else 0


def is_llm_type_70b(arch: str | None, n_layers: int, n_heads: int, n_kv_heads: int) -> bool:
    """qs.model.type == LLM_TYPE_70B: CURRENT src/models/llama.cpp (80 layers and n_head != n_head_kv, else 65B),
    src/models/qwen2.cpp, deci.cpp, olmo.cpp (80 layers), jais2.cpp (68 layers). B1513 llm_load_hparams: LLaMA
    80 layers and n_head != n_head_kv."""
    a = llama_arch(arch) or "llama"
    if a == "llama":
        return n_layers == 80 and n_heads != n_kv_heads
    if a in ("qwen2", "deci", "olmo"):
        return n_layers == 80
    if a == "jais2":
        return n_layers == 68
    return False


def _layer_from_name(name: str) -> int | None:
    m = re.match(r"^blk\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def _get_type_impl(qs: QuantState, new_type: str, name: str, ne: list[int], ftype: str, category: str,
                   version: str = "current") -> str:
    """CURRENT src/llama-quant.cpp ``llama_tensor_get_type_impl``, line by line; ``version="4227c9b"`` takes the
    MID2025 name-matched branches for fused attn_qkv (and attn_kv_b, which no branch named then)."""
    arch = llama_arch(qs.arch)
    n_expert = max(1, qs.n_expert)
    if version == "4227c9b" and category in ("ATTENTION_QKV", "ATTENTION_KV_B"):
        # MID2025 llama-quant.cpp: `name.find("attn_v.weight")` picked the attn_v rules, so neither tensor took
        # them; attn_qkv had its own branch further down, attn_kv_b none. (The low-bit IQ branch named attn_v,
        # attn_k, ffn_down and attn_output only.)
        low_bit = ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
        if category == "ATTENTION_QKV" and not low_bit and not ftype == "MXFP4_MOE":
            if ftype in ("Q3_K_M", "Q3_K_L", "IQ3_M"):
                return "Q4_K"
            if ftype == "Q4_K_M":
                return "Q5_K"
            if ftype == "Q5_K_M":
                return "Q6_K"
        if ftype == "MXFP4_MOE":
            return "MXFP4" if ne[2] > 1 else "Q8_0"
        return new_type

    def layer_info(i_layer: int, n_layer: int) -> tuple[int, int]:
        # "experts in the FFN of Mixtral-8x7B are not consecutive": with n_expert > 1 the layer is parsed from
        # the name (sscanf "blk.%d."), otherwise the running counter is used.
        if n_expert > 1:
            parsed = _layer_from_name(name)
            if parsed is None or not 0 <= parsed < n_layer:
                raise ValueError(f"cannot determine the layer of {name} (n_layer {n_layer})")
            i_layer = parsed
        return i_layer, n_layer

    # glm5-next: attn_q_a/attn_q_b/nextn.eh_proj never below Q8_0
    if arch == "glm5-next" and any(p in name for p in ("attn_q_a", "attn_q_b", "nextn.eh_proj")):
        if new_type not in ("F32", "BF16", "F16"):
            return "Q8_0"

    if category == "OUTPUT" or (qs.has_tied_embeddings and category == "TOKEN_EMBD"):
        # "for arches that share the same tensor between the token embeddings and the output, we quantize the
        # token embeddings with the quantization of the output tensor" (no --output-tensor-type given)
        nx = ne[0]
        qk_k = TYPE_TRAITS[new_type][0]
        if ftype == "MXFP4_MOE":
            new_type = "Q8_0"
        elif arch == "falcon" or nx % qk_k != 0:
            new_type = "Q8_0"
        elif ftype in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
            new_type = "Q5_K"
        elif new_type != "Q8_0":
            new_type = "Q6_K"
    elif ftype == "MXFP4_MOE":
        # "MoE tensors -> MXFP4, other tensors -> Q8_0" (3-D = ne[2] > 1; bailingmoe3 only for FFN experts)
        is_bailing_expert = arch == "bailingmoe3" and category in ("FFN_UP", "FFN_GATE", "FFN_DOWN")
        if ne[2] > 1 and (arch != "bailingmoe3" or is_bailing_expert):
            new_type = "MXFP4"
        else:
            new_type = "Q8_0"
    elif category == "TOKEN_EMBD":
        # no --token-embedding-type given
        if ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            new_type = "Q2_K"
        elif ftype in ("IQ2_S", "IQ2_M"):
            new_type = "IQ3_S"
        elif ftype == "IQ3_XXS":
            new_type = "IQ3_S"
        elif ftype in ("TQ1_0", "TQ2_0", "Q2_0"):
            new_type = "Q4_K"
    elif ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
        if _is_attn_v(category):
            if qs.n_gqa() >= 4 or qs.n_expert >= 4:
                new_type = "Q4_K"
            else:
                new_type = "IQ3_S" if ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
            qs.i_attention_wv += 1
        elif qs.n_expert == 8 and category == "ATTENTION_K":
            new_type = "Q4_K"
        elif category == "FFN_DOWN":
            if qs.i_ffn_down < qs.n_layer // 8:
                new_type = "IQ3_S" if ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
            qs.i_ffn_down += 1
        elif category == "ATTENTION_OUTPUT":
            if qs.n_expert == 8:
                new_type = "Q5_K"
            elif ftype in ("IQ1_S", "IQ1_M"):
                new_type = "IQ2_XXS"
            elif ftype in ("IQ2_S", "IQ2_M"):
                new_type = "IQ3_S"
    elif _is_attn_v(category):
        if ftype == "Q2_K":
            new_type = "Q4_K" if qs.n_gqa() >= 4 else "Q3_K"
        elif ftype == "Q2_K_S" and qs.n_gqa() >= 4:
            new_type = "Q4_K"
        elif ftype == "IQ3_XXS":
            new_type = "Q4_K" if qs.n_gqa() >= 4 else ("IQ3_S" if not qs.has_imatrix else "IQ3_XXS")
        elif ftype in ("IQ3_XS", "IQ3_S") and qs.n_gqa() >= 4:
            new_type = "Q4_K"
        elif ftype == "IQ3_M":
            new_type = "Q4_K"
        elif ftype == "Q3_K_M":
            new_type = "Q5_K" if qs.i_attention_wv < 2 else "Q4_K"
        elif ftype == "Q3_K_L":
            new_type = "Q5_K"
        elif ftype in ("IQ4_NL", "IQ4_XS") and qs.n_gqa() >= 4:
            new_type = "Q5_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(qs.i_attention_wv, qs.n_attention_wv):
            new_type = "Q6_K"
        elif ftype == "Q4_K_S" and qs.i_attention_wv < 4:
            new_type = "Q5_K"
        if qs.is_70b:
            # "In the 70B model we have 8 heads sharing the same attn_v weights ... quantizing this tensor with
            # more bits"
            if new_type in ("Q3_K", "Q4_K"):
                new_type = "Q5_K"
        if qs.n_expert == 8:
            new_type = "Q8_0"  # "for the 8-expert model, bumping this to Q8_0 trades just ~128MB"
        qs.i_attention_wv += 1
    elif category == "ATTENTION_K":
        if qs.n_expert == 8:
            new_type = "Q8_0"
        elif ftype == "IQ3_XS":
            new_type = "IQ3_XXS"
        elif ftype == "IQ3_XXS":
            new_type = "IQ2_S"
    elif category == "ATTENTION_Q":
        if ftype == "IQ3_XS":
            new_type = "IQ3_XXS"
        elif ftype == "IQ3_XXS":
            new_type = "IQ2_S"
    elif category == "FFN_DOWN":
        i_layer, n_layer = layer_info(qs.i_ffn_down, qs.n_layer)
        if ftype == "Q2_K":
            new_type = "Q3_K"
        elif ftype == "Q2_K_S":
            if i_layer < n_layer // 8:
                new_type = "Q4_K"
        elif ftype == "IQ3_XXS" and not qs.has_imatrix:
            new_type = "Q4_K" if i_layer < n_layer // 8 else "Q3_K"
        elif ftype == "Q3_K_M":
            new_type = ("Q5_K" if i_layer < n_layer // 16
                        else "Q4_K" if arch != "falcon" or use_more_bits(i_layer, n_layer) else "Q3_K")
        elif ftype == "IQ3_M" and (i_layer < n_layer // 8 or (qs.n_expert == 8 and use_more_bits(i_layer, n_layer))):
            new_type = "Q4_K"
        elif ftype == "Q3_K_L":
            new_type = "Q4_K" if arch == "falcon" else "Q5_K"
        elif ftype == "Q4_K_M":
            if arch == "falcon":
                new_type = ("Q6_K" if i_layer < n_layer // 16
                            else "Q5_K" if use_more_bits(i_layer, n_layer) else "Q4_K")
            elif use_more_bits(i_layer, n_layer):
                new_type = "Q6_K"
        elif i_layer < n_layer // 8 and ftype in ("IQ4_NL", "IQ4_XS") and not qs.has_imatrix:
            new_type = "Q5_K"
        elif ftype == "Q5_K_M" and use_more_bits(i_layer, n_layer):
            new_type = "Q6_K"
        elif ftype == "Q4_K_S" and arch != "falcon" and i_layer < n_layer // 8:
            new_type = "Q5_K"
        elif ftype in ("Q4_0", "Q5_0") and qs.has_imatrix and i_layer < n_layer // 8:
            # "Guard against craziness in the first few ffn_down layers" (only with an imatrix)
            new_type = "Q4_1" if ftype == "Q4_0" else "Q5_1"
        qs.i_ffn_down += 1
    elif category == "ATTENTION_OUTPUT":
        if arch != "falcon":
            if qs.n_expert == 8:
                if ftype in ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M",
                             "IQ3_S", "IQ3_M", "IQ4_XS"):
                    new_type = "Q5_K"
            else:
                if ftype == "Q2_K":
                    new_type = "Q3_K"
                elif ftype == "IQ3_XXS":
                    new_type = "IQ3_S"
                elif ftype == "Q3_K_M":
                    new_type = "Q4_K"
                elif ftype == "Q3_K_L":
                    new_type = "Q5_K"
                elif ftype == "IQ3_M":
                    new_type = "Q4_K"
        elif ftype == "Q3_K_L":
            new_type = "Q4_K"
    elif category == "FFN_GATE":
        i_layer, n_layer = layer_info(qs.i_ffn_gate, qs.n_layer)
        if ftype == "IQ3_XS" and n_layer // 8 <= i_layer < 7 * n_layer // 8:
            new_type = "IQ3_XXS"
        qs.i_ffn_gate += 1
    elif category == "FFN_UP":
        i_layer, n_layer = layer_info(qs.i_ffn_up, qs.n_layer)
        if ftype == "IQ3_XS" and n_layer // 8 <= i_layer < 7 * n_layer // 8:
            new_type = "IQ3_XXS"
        qs.i_ffn_up += 1
    return new_type


# tensor_type_fallback: "types on the left: block size 256 ... types on the right: block size 32".
_FALLBACK = {"IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL",
             "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q2_0": "Q4_0", "Q2_K": "Q4_0",
             "Q3_K": "Q4_0", "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def _fallback(qs: QuantState, name: str, ne0: int, target: str) -> str:
    """CURRENT src/llama-quant.cpp ``tensor_type_fallback``: a row (ne[0]) that is not a whole number of blocks
    demotes a 256-block type to a 32-block one; if that still does not fit (ne[0] % 32), F16."""
    blck = TYPE_TRAITS[target][0]
    if ne0 % blck == 0:
        return target
    qs.n_fallback += 1
    ret = _FALLBACK.get(target)
    if ret is None:
        if blck <= 32:
            ret = target
        else:
            raise ValueError(f"llama.cpp defines no tensor type fallback for {target} ({name}: ne[0] = {ne0})")
    if ne0 % TYPE_TRAITS[ret][0] != 0:
        ret = "F16"  # "WARNING: must use F16 due to unusual shape"
    qs.fallbacks.append((name, target, ret))
    return ret


def _get_type_current(qs: QuantState, ftype: str, name: str, shape: tuple[int, ...], src_type: str,
                      version: str = "current", allow_requantize: bool = False) -> str:
    """CURRENT src/llama-quant.cpp ``llama_tensor_get_type`` (no --tensor-type / --output-tensor-type /
    --token-embedding-type overrides, not --pure), then the requantize rule: a tensor that is already quantized
    keeps its type (llama_model_quantize_impl: "requantizing from type %s is disabled") unless
    ``allow_requantize``. The counters advance either way: the preliminary loop picks every target first."""
    if not tensor_allows_quantization(name, shape, qs.arch):
        return src_type
    default_type = FILE_TYPES[ftype]
    new_type = default_type
    if is_quantized(default_type):
        ne = _ne(shape)
        new_type = _get_type_impl(qs, new_type, name, ne, ftype, tensor_category(name), version)
        new_type = _fallback(qs, name, ne[0], new_type)
    if is_quantized(src_type) and new_type != src_type and not allow_requantize:
        qs.kept.append((name, src_type, new_type))
        return src_type
    return new_type


# ---------------------------------------------------------------------------------------------------------------
# llama-quantize, late 2023 (B1513): llama.cpp `get_k_quant_type` + `llama_model_quantize_internal`
# ---------------------------------------------------------------------------------------------------------------

def _get_type_b1513(qs: QuantState, ftype: str, name: str, shape: tuple[int, ...], src_type: str) -> str:
    # llama_model_quantize_internal: quantize = name ends with "weight" && n_dims == 2
    # (&& quantize_output_tensor || name != "output.weight"); new_type = quantized_type; get_k_quant_type(...)
    if not (name.endswith("weight") and len(shape) == 2):
        return src_type
    new_type = FILE_TYPES_B1513[ftype]
    if new_type in ("F32", "F16"):
        return new_type
    arch = llama_arch(qs.arch)
    nx = shape[-1]
    if name == "output.weight":
        if arch == "falcon" or nx % 256 != 0:
            new_type = "Q8_0"
        elif new_type != "Q8_0":
            new_type = "Q6_K"
    elif "attn_v.weight" in name:
        if ftype == "Q2_K":
            new_type = "Q3_K"
        elif ftype == "Q3_K_M":
            new_type = "Q5_K" if qs.i_attention_wv < 2 else "Q4_K"
        elif ftype == "Q3_K_L":
            new_type = "Q5_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(qs.i_attention_wv, qs.n_attention_wv):
            new_type = "Q6_K"
        elif ftype == "Q4_K_S" and qs.i_attention_wv < 4:
            new_type = "Q5_K"
        # (the QK_K == 64 branch is not taken in the default QK_K = 256 build)
        if qs.is_70b and new_type in ("Q3_K", "Q4_K"):
            new_type = "Q5_K"
        qs.i_attention_wv += 1
    elif "ffn_down.weight" in name:
        i, n = qs.i_ffn_down, qs.n_layer  # i_feed_forward_w2 / n_feed_forward_w2
        if ftype == "Q2_K":
            new_type = "Q3_K"
        elif ftype == "Q3_K_M":
            new_type = "Q5_K" if i < 2 else ("Q4_K" if arch != "falcon" or use_more_bits(i, n) else "Q3_K")
        elif ftype == "Q3_K_L":
            new_type = "Q4_K" if arch == "falcon" else "Q5_K"
        elif ftype == "Q4_K_M":
            if arch == "falcon":
                new_type = "Q6_K" if i < 2 else ("Q5_K" if use_more_bits(i, n) else "Q4_K")
            elif use_more_bits(i, n):
                new_type = "Q6_K"
        elif ftype == "Q5_K_M" and use_more_bits(i, n):
            new_type = "Q6_K"
        elif ftype == "Q4_K_S" and arch != "falcon" and i < 4:
            new_type = "Q5_K"
        qs.i_ffn_down += 1
    elif "attn_output.weight" in name:
        if arch != "falcon":
            if ftype == "Q2_K":
                new_type = "Q3_K"
            elif ftype == "Q3_K_M":
                new_type = "Q4_K"
            elif ftype == "Q3_K_L":
                new_type = "Q5_K"
        elif ftype == "Q3_K_L":
            new_type = "Q4_K"
    elif "attn_qkv.weight" in name:
        if ftype in ("Q3_K_M", "Q3_K_L"):
            new_type = "Q4_K"
        elif ftype == "Q4_K_M":
            new_type = "Q5_K"
        elif ftype == "Q5_K_M":
            new_type = "Q6_K"
    elif "ffn_gate.weight" in name or "ffn_up.weight" in name:
        if ftype == "Q2_K":
            new_type = "Q3_K"  # removed later (the current rules leave ffn_gate/ffn_up at the Q2_K default)
    # "convert_incompatible_tensor": only the k-quants have a fallback then
    if new_type in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K") and nx % 256 != 0:
        new_type = {"Q2_K": "Q4_0", "Q3_K": "Q4_1", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}[new_type]
        qs.n_fallback += 1
        qs.fallbacks.append((name, "k-quant", new_type))
    if nx % TYPE_TRAITS[new_type][0]:
        raise ValueError(f"llama.cpp b1513 cannot quantize {name} (ne[0] = {nx}) to {new_type}")
    return new_type


# ---------------------------------------------------------------------------------------------------------------
# Public: one tensor
# ---------------------------------------------------------------------------------------------------------------

def tensor_type(ftype: str, gguf_name: str, shape: Iterable[int], layer_index: int | None, n_layers: int,
                arch_info: Mapping | None = None) -> str:
    """The ggml type of one GGUF tensor in a file of type ``ftype``.

    ``shape`` is the GGUF tensor shape in numpy order (``ne`` reversed). ``arch_info`` (all optional): ``arch``,
    ``n_heads``/``n_kv_heads`` (or ``n_gqa``), ``n_experts``, ``tied`` (no output.weight in the file),
    ``has_imatrix``, ``is_70b``, ``version`` ("current" | "4227c9b" | "b1513"), ``source_type`` (the converter
    outtype the quantizer reads, default F16), ``src_type`` (a type the converter forces, e.g. MXFP4; kept unless
    ``allow_requantize``), and the counters
    ``i_attention_wv`` / ``n_attention_wv`` (default: ``layer_index`` / ``n_layers``, which is what llama.cpp
    counts for a model with one attn_v-like tensor per layer).
    """
    info = dict(arch_info or {})
    version = info.get("version", "current")
    f = normalize_ftype(ftype, version)
    shape_t = tuple(int(s) for s in shape)
    qs = _state_from_info(info, f, n_layers)
    i = layer_index if layer_index is not None else 0
    qs.i_attention_wv = int(info.get("i_attention_wv", i))
    qs.n_attention_wv = int(info.get("n_attention_wv", n_layers))
    qs.i_ffn_down = qs.i_ffn_gate = qs.i_ffn_up = i
    return _choose_type(qs, f, version, gguf_name, shape_t, info.get("src_type"), info.get("source_type", "F16"),
                        bool(info.get("allow_requantize")))


def _state_from_info(info: Mapping, ftype: str, n_layers: int) -> QuantState:
    n_heads = int(info.get("n_heads") or 0)
    n_kv = int(info.get("n_kv_heads") or n_heads or 0)
    if "n_gqa" in info and not n_heads:
        n_kv, n_heads = 1, int(info["n_gqa"])
    arch = llama_arch(info.get("arch"))
    has_imatrix = info.get("has_imatrix")
    return QuantState(
        arch=arch, n_layer=int(n_layers), n_head=n_heads, n_head_kv=n_kv, n_expert=int(info.get("n_experts") or 0),
        is_70b=bool(info["is_70b"]) if "is_70b" in info else is_llm_type_70b(arch, int(n_layers), n_heads, n_kv),
        has_imatrix=(ftype in _NEEDS_IMATRIX) if has_imatrix is None else bool(has_imatrix),
        has_tied_embeddings=bool(info.get("tied", False)),
    )


def _choose_type(qs: QuantState, ftype: str, version: str, name: str, shape: tuple[int, ...],
                 src_type: str | None, source_type: str, allow_requantize: bool = False) -> str:
    if ftype in CONVERTER_FTYPES:
        return converter_type(name, shape, ftype, src_type)
    current = converter_type(name, shape, source_type, src_type)  # what llama-quantize reads
    if version == "b1513":
        return _get_type_b1513(qs, ftype, name, shape, current)
    return _get_type_current(qs, ftype, name, shape, current, version, allow_requantize)


# ---------------------------------------------------------------------------------------------------------------
# Public: whole model
# ---------------------------------------------------------------------------------------------------------------

@record
class TensorSize:
    """One tensor as llama.cpp would store it: its GGML type and bytes."""

    name: str
    layer: int | None
    shape: tuple[int, ...]  # numpy order
    type: str
    nbytes: int


@record
class GGUFWeights:
    """Tensor bytes of the GGUF, split the way llama.cpp places them.

    ``total == token_embd + output + sum(per_layer) + other``: the bytes llama.cpp loads. With tied embeddings
    there is no output.weight in the file; llama.cpp then uses token_embd as the output matrix too
    (TENSOR_DUPLICATED) and, when the output layer is offloaded, loads a second copy on the GPU, so ``output``
    equals ``token_embd`` and ``file_bytes`` (the .gguf tensor data, 32-byte alignment padding excluded) is
    ``total - output``.
    """

    ftype: str
    version: str
    total: int
    token_embd: int  # input layer: stays in host RAM in llama.cpp
    output: int  # lm_head (a copy of token_embd when tied)
    per_layer: list[int]  # blk.N.* bytes, index N (offloaded with --gpu-layers, last layers first)
    other: int  # everything else: output_norm, position_embd, rope_freqs, ...
    other_host: int = 0  # part of `other` on the input layer (position_embd, token_types): host RAM too
    file_bytes: int = 0
    tied: bool = False
    by_type: dict[str, int] = field(default_factory=dict)
    tensors: list[TensorSize] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def gpu_bytes_all_layers(self) -> int:
        """Weights on the GPU with every layer and the output offloaded (-ngl 999): all but the input layer."""
        return self.total - self.token_embd - self.other_host


def _dequantized(items: list[tuple[str, tuple]], notes: list[str]) -> list[tuple[str, tuple]]:
    """The logical (dequantised) tensors of a GPTQ / AWQ checkpoint.

    conversion/base.py ModelBase.dequant_model, quant_method "gptq": ``<base>.qweight`` + ``.qzeros`` + ``.scales``
    + ``.g_idx`` become ``<base>.weight`` = dequant_gptq(...) = [out, in] (qweight is [in / pack, out], g_idx [in]).
    AWQ (qweight [in, out / pack], scales [in / group, out], no g_idx) is refused by the converter
    ("Quant method is not yet supported"); it is sized here as its dequantised [out, in] weights.
    """
    by_name = dict(items)
    bases = [n[: -len(".qweight")] for n, s in items if n.endswith(".qweight")]
    if not bases:
        return items
    drop: set[str] = set()
    add: dict[str, tuple] = {}
    awq = 0
    for b in bases:
        qw, g_idx, scales = by_name.get(b + ".qweight"), by_name.get(b + ".g_idx"), by_name.get(b + ".scales")
        if qw is None or len(qw) != 2:
            continue
        if g_idx is not None:  # GPTQ
            add[b + ".weight"] = (qw[1], g_idx[0])
        elif scales is not None and len(scales) == 2:  # AWQ
            add[b + ".weight"] = (scales[1], qw[0])
            awq += 1
        else:
            continue
        drop.update(b + x for x in (".qweight", ".qzeros", ".scales", ".g_idx"))
    if awq:
        notes.append("AWQ checkpoint: convert_hf_to_gguf.py does not dequantise AWQ; sized as its dequantised "
                     "weights")
    out = [(n, s) for n, s in items if n not in drop]
    return out + [(n, s) for n, s in add.items() if n not in by_name]


# Converters that skip a stored lm_head.weight when tie_word_embeddings is true: conversion/deepseek.py
# DeepseekV2Model, conversion/glm.py Glm5NextModel, conversion/hunyuan.py HunYuanModel/HunYuanMoEModel,
# conversion/pangu.py PanguEmbeddedModel (gemma/gemma2/gemma3 skip it always, in gguf_tensors). Every other
# converter writes a stored lm_head as output.weight even for a tied model.
_TIED_SKIP_LM_HEAD = {"deepseek2", "glm5-next", "hunyuan_v1_moe", "hunyuan_v1_dense", "hunyuan-moe",
                      "hunyuan-dense", "pangu_embedded", "pangu-embedded"}


@record
class Conversion:
    """What convert_hf_to_gguf.py writes for a tensor table, before llama-quantize: the same for every target type,
    so a model sized at several types (the quantisation suggestions) converts once."""

    merged: dict[str, list]  # GGUF name -> [layer, shape, type the converter writes regardless of --outtype]
    names: list[str]  # in llama_model_loader::weights_map order (weight_name_comparer: layer, then name)
    tied: bool  # no output.weight: llama.cpp reuses token_embd
    notes: list[str] = field(default_factory=list)


def convert(tensors, n_layers: int, tied: bool = False, *, arch: str | None = None, config: Mapping | None = None,
            n_kv_heads: int = 0) -> Conversion:
    """Step 1 of `gguf_weights`: the tensors convert_hf_to_gguf.py writes for an HF tensor table (see there).
    ``n_kv_heads``: the HF KV heads, for DeepSeek's kv_b_proj split when there is no config."""
    arch = llama_arch(arch)
    if config is None and arch == "deepseek2" and n_kv_heads:
        config = {"num_key_value_heads": n_kv_heads}
    notes: list[str] = []
    items = [(t.name, tuple(t.shape)) if hasattr(t, "name") else (t[0], tuple(t[1])) for t in tensors]
    items = _dequantized(items, notes)
    hidden = next((s[-1] for n, s in items if len(s) == 2 and
                   _TOP.get(_split_suffix(n.replace("language_model.", ""))[0]) == "token_embd"), None)

    # GPT-2 Conv1D detection when the arch is not given: c_attn stored [H, 3H].
    conv1d = arch == "gpt2" or any(n.endswith("attn.c_attn.weight") and len(s) == 2 and s[1] == 3 * s[0]
                                   for n, s in items)

    merged: dict[str, list] = {}  # name -> [layer, shape(list), src_type]
    order: list[str] = []
    unknown: list[str] = []
    dropped_layers = 0
    lm_head_dropped = False
    # What the converter makes of a block tensor depends on its name apart from the layer number, and its shape:
    # worked out once per (name pattern, shape) and renamed for the other layers. Every layer repeats the same
    # tensors, so the rules run ~num_layers times less often (MiniMax-M2.7: 480k tensors -> 7.8k calls).
    memo: dict[tuple, list] = {}
    skip_lm_head = tied and arch in _TIED_SKIP_LM_HEAD
    for hf, shape in items:
        for name, layer, out_shape, src_type, stack, known in _converted(hf, shape, memo, arch=arch, config=config,
                                                                         conv1d=conv1d, hidden=hidden):
            if name == "output.weight" and skip_lm_head:
                lm_head_dropped = True
                continue
            if layer is not None and layer >= n_layers:
                dropped_layers += 1  # MTP / nextn layers (DeepseekV2Model.modify_tensors skip_mtp)
                continue
            if not known:
                unknown.append(hf)
            entry = merged.get(name)
            if entry is None:
                merged[name] = [layer, list(out_shape), src_type]
                order.append(name)
            elif stack:
                entry[1][0] += out_shape[0]
            else:
                entry[1] = list(out_shape)
    if lm_head_dropped:
        notes.append("tied embeddings: the converter skips lm_head; llama.cpp reuses token_embd as the output")
    elif tied and "output.weight" in merged:
        notes.append("tie_word_embeddings, but the checkpoint stores lm_head: the converter writes it as "
                     "output.weight (e.g. Qwen3-0.6B)")
    if dropped_layers:
        notes.append(f"{dropped_layers} tensors of layers >= {n_layers} (MTP / next-token layers) not counted")
    if unknown:
        shown = ", ".join(unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        notes.append(f"{len(unknown)} tensors with no known GGUF mapping counted as-is ({shown})")

    is_tied = "output.weight" not in merged
    if is_tied and not tied and "token_embd.weight" in merged:
        notes.append("no lm_head tensor: treated as tied to token_embd")

    def sort_key(n: str):
        lay = _layer_from_name(n)
        return (-1 if lay is None else lay, n)

    return Conversion(merged=merged, names=sorted(order, key=sort_key), tied=is_tied, notes=notes)


def gguf_weights(tensors, ftype: str, n_layers: int, n_kv_heads: int | None, n_heads: int | None,
                 n_experts: int = 0, tied: bool = False, *, arch: str | None = None, config: Mapping | None = None,
                 version: str = "current", has_imatrix: bool | None = None, source_type: str = "F16",
                 is_70b: bool | None = None, allow_requantize: bool = False,
                 conversion: Conversion | None = None) -> GGUFWeights:
    """Exact GGUF weight bytes of an HF tensor table converted and quantized to ``ftype``.

    ``tensors``: objects with ``.name`` and ``.shape`` (``hfvram.stformat.Tensor``) or (name, shape) pairs.
    ``tied``: the model ties lm_head to embed_tokens (an lm_head in the table is then not converted);
    ``arch``: HF model_type or llama.cpp arch (selects the Falcon / 70B / gpt-oss / GPT-2 rules);
    ``config``: the HF config (DeepSeek MLA dims); ``version``: "current" or "b1513"; ``source_type``: the
    converter outtype llama-quantize reads (F16 or BF16 give the same sizes; F32 keeps unquantizable 2-D
    tensors in F32); ``conversion``: `convert()` of the same table, arch, config, layers and tying, done already.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, not {version!r}")
    f = normalize_ftype(ftype, version)
    arch = llama_arch(arch)
    n_heads = int(n_heads or 0)
    hf_kv_heads = int(n_kv_heads or n_heads or 0)
    n_kv_heads = hf_kv_heads
    if arch == "deepseek2":
        # conversion/deepseek.py DeepseekV2Model.set_gguf_parameters: "deepseek2 using MLA converts into MQA (ie:
        # GQA with 1 group)" -> head_count_kv = 1 in the GGUF, so llama.cpp's n_gqa() is n_head.
        n_kv_heads = 1

    # 1. convert_hf_to_gguf.py
    if conversion is None:
        conversion = convert(tensors, n_layers, tied, arch=arch, config=config, n_kv_heads=hf_kv_heads)
    merged, names, is_tied = conversion.merged, conversion.names, conversion.tied
    notes = list(conversion.notes)

    # 2. llama-quantize, in llama_model_loader::weights_map order
    qs = QuantState(
        arch=arch, n_layer=int(n_layers), n_head=n_heads, n_head_kv=n_kv_heads, n_expert=int(n_experts or 0),
        is_70b=is_llm_type_70b(arch, int(n_layers), n_heads, n_kv_heads) if is_70b is None else bool(is_70b),
        has_imatrix=(f in _NEEDS_IMATRIX) if has_imatrix is None else bool(has_imatrix),
        has_tied_embeddings=is_tied,
    )
    if version == "b1513":
        # n_attention_wv counted over names containing attn_v.weight or attn_qkv.weight
        qs.n_attention_wv = sum(1 for n in names if "attn_v.weight" in n or "attn_qkv.weight" in n)
    else:
        # init_quantize_state_counters: every attn_v / attn_qkv / attn_kv_b tensor (category_is_attn_v)
        qs.n_attention_wv = sum(1 for n in names if _is_attn_v(tensor_category(n)))

    sizes: list[TensorSize] = []
    per_layer = [0] * int(n_layers)
    token_embd = output = other = other_host = 0
    by_type: dict[str, int] = {}
    requant = False
    for n in names:
        layer, shape_l, src = merged[n]
        shape_t = tuple(int(x) for x in shape_l)
        t = _choose_type(qs, f, version, n, shape_t, src, source_type, allow_requantize)
        if src and t != src and f not in CONVERTER_FTYPES:
            requant = True
        nb = tensor_bytes(t, shape_t)
        sizes.append(TensorSize(n, layer, shape_t, t, nb))
        by_type[t] = by_type.get(t, 0) + nb
        if n == "token_embd.weight":
            token_embd += nb
        elif n == "output.weight":
            output += nb
        elif layer is not None:
            per_layer[layer] += nb
        else:
            other += nb
            if n.split(".")[0] in ("position_embd", "token_types"):  # LLM_TENSOR_LAYER_INPUT (llama-arch.cpp)
                other_host += nb
    file_bytes = token_embd + output + sum(per_layer) + other
    if is_tied:
        output = token_embd
    if qs.fallbacks:
        ex = qs.fallbacks[0]
        notes.append(f"{len(qs.fallbacks)} tensors fell back to another type because ne[0] is not a whole number "
                     f"of blocks (e.g. {ex[0]}: {ex[1]} -> {ex[2]})")
    if requant:
        notes.append("MXFP4 experts re-quantized: llama-quantize needs --allow-requantize for this")
    if qs.kept:
        kinds = sorted({k[1] for k in qs.kept})
        notes.append(f"{len(qs.kept)} tensors the converter writes in {', '.join(kinds)} (the experts) keep that type: "
                     f"llama-quantize does not re-quantize a quantized tensor without --allow-requantize, and the "
                     f"published {f} files keep them")
    if f in _NEEDS_IMATRIX and has_imatrix is None:
        notes.append(f"{f} needs an importance matrix (llama-quantize refuses without one); sizes assume one")
    if f in CONVERTER_FTYPES:
        notes.append(f"{f}: as written by convert_hf_to_gguf.py --outtype {f.lower()} (1-D tensors, norms, "
                     f"biases and routers in F32)")
    return GGUFWeights(ftype=f, version=version, total=file_bytes + (output if is_tied else 0),
                       token_embd=token_embd, output=output, per_layer=per_layer, other=other,
                       other_host=other_host, file_bytes=file_bytes, tied=is_tied, by_type=by_type, tensors=sizes,
                       notes=notes)


def _converted(hf: str, shape: tuple, memo: dict, **rules) -> list[tuple]:
    """`gguf_tensors(hf, shape, **rules)` as (name, layer, shape, src_type, stack, known) tuples (`_known`), from
    `memo` when a tensor of another layer with the same name pattern and shape was converted already (the rules of
    one conversion are the same for all its tensors)."""
    m = _LAYER_RE.match(hf.replace("language_model.", ""))
    if m is None:
        return _rows(gguf_tensors(hf, shape, **rules))
    bid = int(m.group(1))
    pre = f"blk.{bid}."
    key = (m.string[:m.start(1)], m.group(2), shape)
    pieces = memo.get(key)
    if pieces is None:
        outs = gguf_tensors(hf, shape, **rules)
        if not all(gt.layer == bid and gt.name.startswith(pre) for gt in outs):  # not a plain block tensor
            return _rows(outs)
        memo[key] = pieces = [(name[len(pre):], *rest) for name, _, *rest in _rows(outs)]
    return [(pre + rest, bid, out_shape, src_type, stack, known) for rest, out_shape, src_type, stack, known in pieces]


def _rows(outs: list[GGUFTensor]) -> list[tuple]:
    return [(gt.name, gt.layer, gt.shape, gt.src_type, gt.stack, _known(gt.name)) for gt in outs]


def _known(name: str) -> bool:
    """A GGUF tensor name llama.cpp's tensor maps know (else the tensor is counted as-is, and noted)."""
    return (name.startswith("blk.") and name.split(".", 2)[2] in _KNOWN_BLOCK_LEAVES) or \
        name.split(".")[0] in _KNOWN_TOP


_KNOWN_TOP = set(_TOP.values()) | {"rope_freqs"}
_KNOWN_BLOCK_LEAVES = {v + s for v in set(_BLOCK.values()) | set(_EXPERT_KIND.values()) |
                       {"post_attention_norm", "attn_sinks", "attn_k_b", "attn_v_b", "attn_kv_b"}
                       for s in (".weight", ".bias")}


def weights_for(facts, ftype: str, version: str = "current", **kw) -> GGUFWeights | None:
    """``gguf_weights`` from ``hfvram.introspect.ModelFacts`` (None when there is no tensor table)."""
    tensors = facts.tensors  # the selected weight files only (not a repo's original/ or consolidated copy)
    if not tensors:
        return None
    a = facts.arch
    moe = getattr(a, "moe", None)
    model = dict(n_layers=a.num_layers, tied=bool(a.tie_word_embeddings), arch=a.model_type,
                 config=getattr(facts, "raw_config", None))
    n_kv_heads = a.num_kv_heads or a.num_attention_heads
    # One conversion per model, whatever types it is sized at, kept with the facts next to the sizes per type that
    # estimate.model keeps there: converting is most of the work, ~1.3 s of MiniMax-M2.7's 480k tensors before.
    memo = facts.__dict__.setdefault("_gguf", {})
    conversion = memo.get("conversion")
    if conversion is None:
        conversion = memo["conversion"] = convert(tensors, n_kv_heads=int(n_kv_heads or 0), **model)
    return gguf_weights(tensors, ftype, n_kv_heads=n_kv_heads, n_heads=a.num_attention_heads,
                        n_experts=moe.num_experts if moe else 0, version=version, conversion=conversion, **model,
                        **kw)
