"""The model as an engine will hold it: weight bytes per component (after an optional `--quantize` projection),
the layer specs, and the dimensions activation estimates need.

Components: `dense` (attention + dense MLP + norms of the decoder), `experts` (routed MoE experts), `embeddings`,
`lm_head` (0 when tied), `vision` (vision/audio towers and projectors), `mtp` (multi-token-prediction layers,
loaded only for speculative decoding).
"""

from __future__ import annotations

import re
from dataclasses import field

from ..errors import UsageError
from ..introspect import ModelFacts
from ..record import record
from ..specs import LayerSpec

COMPONENTS = ("dense", "experts", "embeddings", "lm_head", "vision", "mtp")

# Bytes per logical weight of each `--quantize` target, for the quantised matrices (embeddings, norms, vision
# towers and, except for exl2/gguf, the LM head stay in the model dtype, as those recipes leave them).
#  int8: bitsandbytes LLM.int8 - one int8 per weight + one F32 scale per output row (bitsandbytes Int8Params.SCB);
#        the row term is added per layer below (4 / in_features).
#  nf4:  bitsandbytes 4-bit - two weights per byte + one F32 absmax per 64-weight block
#        (bitsandbytes functional.quantize_4bit blocksize=64; transformers BitsAndBytesConfig default: no double
#        quantisation) = 0.5 + 4/64.
#  awq / gptq / int4: 4-bit, group 128 - packed int32 qweight (0.5 B) + F16 scale per group (2/128) + packed 4-bit
#        zero per group (0.5/128) (AutoAWQ GEMM and AutoGPTQ layouts; GPTQ adds an int32 g_idx per input row).
#  fp8:  one F8_E4M3 byte per weight + one F32 scale per 128x128 block (DeepSeek-V3 / Qwen3-FP8
#        `weight_block_size: [128, 128]`, `weight_scale_inv`) = 1 + 4/16384.
QUANT_BYTES = {
    "int8": 1.0,
    "nf4": 0.5 + 4 / 64,
    "int4": 0.5 + 2 / 128 + 0.5 / 128,
    "awq": 0.5 + 2 / 128 + 0.5 / 128,
    "gptq": 0.5 + 2 / 128 + 0.5 / 128,
    "fp8": 1.0 + 4 / (128 * 128),
}
# EXL2 output layer: `head_bits` 6 by default (exllamav2 convert.py -hb) is QParams(128, [8, 6], [0.15, 0.85], 4)
# (conversion/qparams.py qparams_headoptions); its total_bits on real head shapes is 6.33-6.34 bits per weight
# (docs/research/trtllm-exllama-hf-facts.md section 7).
EXL2_HEAD_BPW = 6.34


@record
class Model:
    """The model an engine loads: its facts, weights by component, and what they are."""

    facts: ModelFacts
    weights: dict[str, int]
    label: str  # what the weights are: "bf16", "awq 4-bit (projected)", "gguf Q4_K_M", ...
    quant_method: str | None = None
    projected: bool = False
    gguf_type: str | None = None
    exl2_bpw: float | None = None
    gguf: object | None = None  # hfvram.estimate.gguf.GGUFWeights when projected to GGUF
    notes: list[str] = field(default_factory=list)

    # -- dimensions --------------------------------------------------------------------------------------------
    @property
    def arch(self):
        return self.facts.arch

    @property
    def layers(self) -> list[LayerSpec]:
        return self.facts.arch.layers

    @property
    def decoder_layers(self) -> int:
        return max(1, sum(1 for layer in self.layers if layer.kind != "none") or len(self.layers))

    @property
    def hidden(self) -> int:
        return self.arch.hidden_size or 0

    @property
    def intermediate(self) -> int:
        return self.arch.intermediate_size or 4 * self.hidden

    @property
    def vocab(self) -> int:
        return self.arch.vocab_size or 0

    @property
    def heads(self) -> int:
        return self.arch.num_attention_heads or 1

    @property
    def head_dim(self) -> int:
        return self.arch.head_dim or (self.hidden // max(1, self.heads))

    @property
    def compute_bytes(self) -> int:
        """Activation element size: the model dtype (fp32 checkpoints compute in fp32)."""
        return self.facts.dtype_bytes

    @property
    def moe_intermediate(self) -> int:
        moe = self.arch.moe
        return (moe.expert_intermediate_size if moe else None) or self.intermediate

    @property
    def max_position(self) -> int:
        return self.arch.max_context or 0

    @property
    def total_weights(self) -> int:
        return sum(self.weights.values())

    def loaded(self, *, mtp: bool = False, vision: bool = True, embeddings: bool = True) -> int:
        w = dict(self.weights)
        if not mtp:
            w.pop("mtp", None)
        if not vision:
            w.pop("vision", None)
        if not embeddings:
            w.pop("embeddings", None)
        return sum(w.values())


def build(facts: ModelFacts, quantize: str | None = None, gguf_version: str | None = None) -> Model:
    w = facts.weights
    if w.component_bytes:
        weights = {c: int(w.component_bytes.get(c, 0)) for c in COMPONENTS}
    else:  # sizes only (pickles, params.json, bare config): split off the embeddings by the architecture
        emb = (facts.arch.vocab_size or 0) * (facts.arch.hidden_size or 0) * facts.dtype_bytes
        emb = min(emb, w.bytes // 2)
        head = 0 if facts.arch.tie_word_embeddings else emb
        weights = {"dense": w.bytes - emb - head, "experts": 0, "embeddings": emb, "lm_head": head, "vision": 0,
                   "mtp": 0}
    q = facts.quant
    label = facts.dtype_short
    if q is not None:
        label = f"{q.method}" + (f" {q.bits:g}-bit" if q.bits else "")
    model = Model(facts=facts, weights=weights, label=label, quant_method=q.method if q else None)
    if getattr(facts, "gguf", None) is not None:
        # a GGUF file: its own tensors, as llama.cpp places them (no projection)
        info = facts.gguf
        if quantize:
            raise UsageError(f"--quantize does not apply to a GGUF file ({info.label}); choose another quant of the "
                             f"repo instead (org/name:Q4_K_M)")
        model.gguf = gguf_file_weights(info)
        model.gguf_type = info.file_type or info.label
        model.label = f"gguf {info.label}"
        return model
    if q is not None and q.method in ("exl2", "exl3") and q.bits:
        model.exl2_bpw = float(q.bits)  # the checkpoint's own target bit-rate (its bytes are the tensors')
    if quantize:
        project(model, quantize, gguf_version=gguf_version)
    return model


def gguf_file_weights(info):
    """hfvram.estimate.gguf.GGUFWeights from a GGUF file's own tensor table (hfvram.introspect.gguf.GGUFFacts):
    token_embd, output (token_embd again when the file has none: llama.cpp's TENSOR_DUPLICATED), blk.N per layer,
    the rest; MTP/nextn blocks (blk.N, N >= n_layer) are left out, as llama.cpp's decoder does not run them."""
    from .gguf import GGUFWeights, TensorSize

    per_layer = [0] * info.n_layer
    token_embd = output = other = other_host = 0
    by_type: dict[str, int] = {}
    sizes = []
    for t in info.tensors:
        layer = None
        if t.name.startswith("blk."):
            part = t.name.split(".", 2)[1]
            layer = int(part) if part.isdigit() else None
        if layer is not None and layer >= info.n_layer:
            continue
        sizes.append(TensorSize(t.name, layer, tuple(t.shape), t.type, t.nbytes))
        by_type[t.type] = by_type.get(t.type, 0) + t.nbytes
        if t.name == "token_embd.weight":
            token_embd += t.nbytes
        elif t.name == "output.weight":
            output += t.nbytes
        elif layer is not None:
            per_layer[layer] += t.nbytes
        else:
            other += t.nbytes
            if t.name.split(".")[0] in ("position_embd", "token_types"):  # LLM_TENSOR_LAYER_INPUT (llama-arch.cpp)
                other_host += t.nbytes
    file_bytes = token_embd + output + sum(per_layer) + other
    tied = output == 0
    return GGUFWeights(ftype=info.file_type or info.label, version="file", total=file_bytes + (token_embd if tied else 0),
                       token_embd=token_embd, output=token_embd if tied else output, per_layer=per_layer, other=other,
                       other_host=other_host, file_bytes=file_bytes, tied=tied, by_type=by_type, tensors=sizes)


def _params(facts: ModelFacts) -> dict[str, int]:
    p = facts.weights.component_params
    if p:
        return {c: int(p.get(c, 0)) for c in COMPONENTS}
    emb = (facts.arch.vocab_size or 0) * (facts.arch.hidden_size or 0)
    head = 0 if facts.arch.tie_word_embeddings else emb
    return {"dense": max(0, facts.params_total - emb - head), "experts": 0, "embeddings": emb, "lm_head": head,
            "vision": 0, "mtp": 0}


def parse_quantize(text: str) -> tuple[str, str | float | None]:
    from .gguf import FILE_TYPES, normalize_ftype

    text = text.strip().lower()
    if text.startswith("gguf:"):
        try:
            return "gguf", normalize_ftype(text.split(":", 1)[1])
        except ValueError:
            raise UsageError(f"--quantize {text}: unknown llama.cpp file type (one of {', '.join(FILE_TYPES)})") \
                from None
    if text.startswith(("exl2:", "exl3:")):
        try:
            bpw = float(text.split(":", 1)[1])
        except ValueError:
            raise UsageError(f"--quantize exl2:BPW needs a number of bits per weight, not {text!r}") from None
        if text.startswith("exl3:"):
            raise UsageError("--quantize exl3 is not modelled (ExLlamaV3 checkpoints are read as they are)")
        return "exl2", bpw
    if text in QUANT_BYTES:
        return text, None
    hint = ""
    if text.upper().replace("-", "_") in FILE_TYPES:
        hint = f" (did you mean gguf:{text.upper().replace('-', '_')}?)"
    elif re.fullmatch(r"\d+(\.\d+)?bpw|\d+\.\d+", text):
        hint = f" (did you mean exl2:{text.replace('bpw', '')}?)"
    raise UsageError(f"--quantize must be one of {', '.join(QUANT_BYTES)}, gguf:TYPE or exl2:BPW, not {text!r}{hint}")


def project(model: Model, quantize: str, gguf_version: str | None = None) -> None:
    """Re-size the weights for another format, from the logical parameter counts."""
    method, arg = parse_quantize(quantize)
    facts = model.facts
    params = _params(facts)
    dtype_bytes = facts.dtype_bytes
    if facts.quant is not None:
        model.notes.append(f"projecting a {facts.quant.method} checkpoint to {quantize} from its logical parameters")
    w = dict(model.weights)
    if method == "gguf":
        model.gguf_type = str(arg)
        result = gguf_weights(facts, str(arg), gguf_version or "current")
        if result is not None:
            model.gguf = result
            w = {"dense": result.total - result.token_embd - result.output, "experts": 0,
                 "embeddings": result.token_embd, "lm_head": result.output, "vision": 0, "mtp": 0}
        else:
            bpw = effective_bpw(str(arg))
            w = {c: int(params[c] * bpw / 8) for c in COMPONENTS}
            model.notes.append(f"gguf {arg}: {bpw} bits per weight on every tensor (no tensor table to apply "
                               f"llama.cpp's per-tensor rules)")
        w["vision"] = 0
        w["mtp"] = 0
        model.label = f"gguf {arg}"
    elif method == "exl2":
        bpw = float(arg)
        model.exl2_bpw = bpw
        w["dense"] = int(params["dense"] * bpw / 8)
        w["experts"] = int(params["experts"] * bpw / 8)
        head_params = params["lm_head"] or params["embeddings"]
        w["lm_head"] = int(head_params * EXL2_HEAD_BPW / 8)
        w["embeddings"] = int(params["embeddings"] * 2)  # fp16 (kept in system RAM by ExLlamaV2)
        w["mtp"] = 0
        model.label = f"exl2 {bpw:g} bpw"
    else:
        per = QUANT_BYTES[method]
        extra = 4 / max(1, facts.arch.hidden_size or 1) if method in ("int8", "gptq") else 0.0
        for c in ("dense", "experts", "mtp"):
            w[c] = int(params[c] * (per + extra))
        for c in ("embeddings", "lm_head", "vision"):
            w[c] = int(params[c] * dtype_bytes)
        model.label = {"nf4": "nf4 4-bit", "int8": "int8", "fp8": "fp8"}.get(method, f"{method} 4-bit")
        model.quant_method = {"nf4": "bitsandbytes", "int8": "bitsandbytes", "int4": "gptq"}.get(method, method)
    model.weights = w
    model.projected = True
    model.label += " (projected)"


# Effective bits per weight of llama-quantize file types over a whole model, from the sizes printed in
# tools/quantize/quantize.cpp QUANT_OPTIONS for Llama-3-8B (8.03 B parameters), used only when there is no tensor
# table to apply llama.cpp's per-tensor rules to.
GGUF_EFFECTIVE_BPW = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.51, "Q6_K": 6.57, "Q5_K_M": 5.70, "Q5_K_S": 5.57,
    "Q5_1": 6.04, "Q5_0": 5.57, "Q4_K_M": 4.90, "Q4_K_S": 4.67, "Q4_1": 5.11, "Q4_0": 4.64, "Q3_K_L": 4.31,
    "Q3_K_M": 4.00, "Q3_K_S": 3.65, "Q2_K": 3.17,
}


def effective_bpw(ftype: str) -> float:
    if ftype not in GGUF_EFFECTIVE_BPW:
        raise UsageError(f"unknown GGUF type {ftype!r} (known: {', '.join(GGUF_EFFECTIVE_BPW)})")
    return GGUF_EFFECTIVE_BPW[ftype]


def gguf_weights(facts, ftype: str, version: str = "current"):
    """Exact GGUF tensor sizes by llama.cpp's per-tensor rules (llama-quant.cpp), when a tensor table is known."""
    if not facts.weights.files:
        return None
    from . import gguf

    memo = facts.__dict__.setdefault("_gguf", {})  # suggestions try several types on the same model
    if (ftype, version) not in memo:
        try:
            memo[(ftype, version)] = gguf.weights_for(facts, ftype, version=version)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"--quantize gguf:{ftype}: {exc}") from None
    return memo[(ftype, version)]
