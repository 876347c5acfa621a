"""Quantization facts from `quantization_config`, its side files, or the tensors themselves."""

from __future__ import annotations

from collections import Counter
from dataclasses import field

from ..record import record
from ..stformat import Tensor


@record
class QuantFacts:
    """The checkpoint's quantisation: method, bits, group size, format."""

    method: str  # gptq | awq | bitsandbytes | fp8 | mxfp4 | compressed-tensors | modelopt | exl2 | ...
    bits: float | None = None
    group_size: int | None = None
    format: str | None = None  # nf4/fp4, e4m3, gemm, nvfp4, ...
    unquantized_modules: list[str] = field(default_factory=list)
    kv_cache_scheme: str | None = None  # e.g. "fp8" when the checkpoint carries a quantized-KV scheme
    block_size: list[int] | None = None
    source: str = "config.json"


def detect(config: dict, texts: dict[str, str], tensors: list[Tensor], parse) -> QuantFacts | None:
    qc = config.get("quantization_config")
    if not isinstance(qc, dict) and isinstance(config.get("text_config"), dict):
        qc = config["text_config"].get("quantization_config")
    source = "config.json"
    if not isinstance(qc, dict):
        qc = None
        for side in ("quantize_config.json", "quant_config.json"):  # AutoGPTQ / AutoAWQ side files
            if side in texts:
                qc, source = parse(texts[side], side), side
                break
    modelopt = parse(texts["hf_quant_config.json"], "hf_quant_config.json") if "hf_quant_config.json" in texts else None
    if modelopt and (qc is None or qc.get("quant_method") in (None, "modelopt")):
        return _modelopt(modelopt)
    if qc is None:
        return _from_tensors(tensors)

    method = str(qc.get("quant_method") or ("gptq" if "bits" in qc and "desc_act" in qc else "unknown")).lower()
    facts = QuantFacts(method=method, source=source)
    if method in ("gptq", "awq", "autoround", "auto-round", "gptqmodel"):
        facts.bits = qc.get("bits") or qc.get("w_bit")
        facts.group_size = qc.get("group_size") or qc.get("q_group_size")
        facts.format = (qc.get("version") or qc.get("checkpoint_format") or "").lower() or None
        facts.unquantized_modules = list(qc.get("modules_to_not_convert") or [])
    elif method == "bitsandbytes":
        four = qc.get("load_in_4bit") or qc.get("_load_in_4bit")
        facts.bits = 4 if four else 8
        facts.format = qc.get("bnb_4bit_quant_type") if four else "int8"
        # bitsandbytes 4-bit blocksize is 64 (bitsandbytes functional.quantize_4bit default)
        facts.group_size = 64 if four else None
        facts.unquantized_modules = list(qc.get("llm_int8_skip_modules") or [])
    elif method in ("fp8", "fbgemm_fp8"):
        facts.bits = 8
        facts.format = qc.get("fmt") or "e4m3"
        facts.block_size = qc.get("weight_block_size")
        facts.unquantized_modules = list(qc.get("modules_to_not_convert") or qc.get("ignored_layers") or [])
    elif method == "mxfp4":
        facts.bits = 4
        facts.format = "mxfp4"
        facts.group_size = 32  # OCP MX: one E8M0 scale per 32 elements
        facts.unquantized_modules = list(qc.get("modules_to_not_convert") or [])
    elif method == "compressed-tensors":
        groups = qc.get("config_groups") or {}
        for group in groups.values():
            weights = (group or {}).get("weights") or {}
            facts.bits = weights.get("num_bits", facts.bits)
            facts.group_size = weights.get("group_size", facts.group_size)
            facts.format = qc.get("format")
            break
        facts.unquantized_modules = list(qc.get("ignore") or [])
        kv = qc.get("kv_cache_scheme")
        if isinstance(kv, dict) and kv.get("num_bits"):
            facts.kv_cache_scheme = f"{kv.get('type', 'float')}{kv['num_bits']}"
    elif method in ("exl2", "exl3"):
        # exllamav2 conversion/compile.py and exllamav3 conversion/compile.py write {"quant_method", "version",
        # "bits": the decoder's target bits per weight, "head_bits": the output layer's, ...}
        facts.bits = qc.get("bits")
        facts.format = method + (f", head {qc['head_bits']:g} bits" if isinstance(qc.get("head_bits"), (int, float))
                                 else "")
    else:
        facts.bits = qc.get("bits") or qc.get("w_bit")
        facts.group_size = qc.get("group_size")
    if facts.kv_cache_scheme is None and isinstance(qc.get("kv_cache_scheme"), (str, dict)):
        kv = qc["kv_cache_scheme"]
        facts.kv_cache_scheme = kv if isinstance(kv, str) else f"{kv.get('type', 'float')}{kv.get('num_bits', '')}"
    return facts


def _modelopt(doc: dict) -> QuantFacts:
    q = doc.get("quantization") or doc
    algo = str(q.get("quant_algo") or "").upper()
    bits = {"FP8": 8, "NVFP4": 4, "W4A16_AWQ": 4, "W4A8_AWQ": 4, "INT8_SQ": 8}.get(algo)
    kv = q.get("kv_cache_quant_algo")
    return QuantFacts(
        method="modelopt",
        bits=bits,
        format=algo.lower() or None,
        group_size=q.get("group_size"),
        unquantized_modules=list(q.get("exclude_modules") or []),
        kv_cache_scheme=str(kv).lower() if kv else None,
        source="hf_quant_config.json",
    )


def _from_tensors(tensors: list[Tensor]) -> QuantFacts | None:
    """No config says so, but the tensors are quantised (EXL2 `q_weight`, raw FP8 weights)."""
    if any(t.name.endswith(".q_weight") for t in tensors):
        return QuantFacts(method="exl2", format="exl2", source="tensors")
    if any(t.name.endswith(".trellis") for t in tensors):
        return QuantFacts(method="exl3", format="exl3", source="tensors")
    weights = Counter(t.dtype for t in tensors if t.name.endswith(".weight"))
    if weights and weights.most_common(1)[0][0] in ("F8_E4M3", "F8_E5M2"):
        return QuantFacts(method="fp8", bits=8, format="e4m3", source="tensors")
    return None
