"""ExLlamaV2 (EXL2 weights): a preallocated cache for the whole context in every layer, embeddings in system RAM.

Policy (turboderp-org/exllamav2 @ da07fac; ../shared/research/hub-and-engines.md B8):
- weights: EXL2 tensors as stored (or projected with --quantize exl2:BPW: decoder linears at BPW, the output layer
  at head_bits 6); the embedding table stays in system RAM (`embed_cpu=True`, model.py).
- cache (cache.py): K and V of (batch, max_seq_len, kv_heads, head_dim) in every layer, no sliding-window saving;
  FP16 2 bytes/element, 8-bit 1, Q8 1 + fp16 scale per 32, Q6 (K 1 byte, V 0.5) + scales, Q4 0.5 + scales;
  quantised and 8-bit caches also hold one full-size fp16 K/V pair per device as a conversion buffer.
- scratch for `max_input_len` (2048) tokens and the autosplit reserve: 192 MiB on the first device
  (model.py load_autosplit).
Not supported by ExLlamaV2: MLA, Mamba/linear-attention hybrids, encoders.
"""

from __future__ import annotations

from ..specs import MLA, FullAttention, LinearAttention, Mamba
from .base import CUDA_CONTEXT_BYTES, MiB, Estimate, Settings, largest_fitting
from .model import Model

NAME = "exllamav2"
LABEL = "ExLlamaV2"

MAX_INPUT_LEN = 2048  # ExLlamaV2Config.max_input_len default (config.py)
AUTOSPLIT_RESERVE = 192 * MiB  # model.py load_autosplit: reserve on the first device
# Cache bytes per element of K and V together / 2 (cache.py classes; scales fp16 per 32 elements):
#   FP16 2; 8-bit (FP8) 1; Q8 (1 + 2/32 + 1 + 2/32)/2; Q6 (1 + 0.5 + 2 x 2/32)/2; Q4 (0.5 + 0.5 + 2 x 2/32)/2
CACHE = {"fp16": 2.0, "fp8": 1.0, "q8": 2.125 / 2, "q6": 1.625 / 2, "q4": 1.125 / 2}
_FROM_KV_DTYPE = {"auto": "fp16", "fp16": "fp16", "bf16": "fp16", "fp32": "fp16", "fp8": "fp8", "int8": "q8",
                  "q8_0": "q8", "q8": "q8", "q6": "q6", "q4": "q4", "q4_0": "q4"}


def cache_type(s: Settings) -> str:
    return _FROM_KV_DTYPE.get(s.kv_dtype, "fp16")


def scratch(model: Model, s: Settings) -> int:
    """Per-forward temp buffers sized for max_input_len tokens: hidden state, attention q/k/v/o and the MLP
    gate/up intermediates (attn.py temp_*_size, mlp.py temp sizes), fp16; plus fp32 last-token logits."""
    tokens = (s.max_input_len or MAX_INPUT_LEN) * s.batch
    kv_heads = model.arch.num_kv_heads or model.heads
    attn = tokens * (model.heads + 2 * kv_heads) * model.head_dim * 2 + tokens * model.heads * model.head_dim * 2
    inter = model.moe_intermediate * model.arch.moe.experts_per_token if model.arch.moe else model.intermediate
    mlp = tokens * 2 * inter * 2
    return int(2 * tokens * model.hidden * 2 + max(attn, mlp) + s.batch * model.vocab * 4)


def estimate(model: Model, s: Settings) -> Estimate:
    notes: list[str] = []
    unsupported = [l for l in model.layers if isinstance(l, (MLA, Mamba, LinearAttention))]
    if unsupported or not any(isinstance(l, FullAttention) for l in model.layers):
        notes.append("architecture not supported by ExLlamaV2 (MLA, Mamba/linear-attention or encoder layers): "
                     "figures below are indicative only")
    if model.quant_method not in ("exl2", None, "gptq") and not model.exl2_bpw:
        notes.append(f"ExLlamaV2 loads EXL2, GPTQ and fp16 weights, not {model.quant_method}: pass "
                     f"--quantize exl2:BPW to size an EXL2 conversion")
    devices = max(1, s.tp * s.pp)
    weights = (model.loaded(mtp=False, vision=False) - model.weights.get("embeddings", 0)) / devices
    ctype = cache_type(s)
    b = CACHE[ctype]
    attn = [l for l in model.layers if isinstance(l, FullAttention)]

    def kv_at(ctx: int) -> float:
        per_token = sum(l.num_kv_heads * (l.head_dim + l.v_dim) for l in attn) * b  # every layer: full context
        temp = 0.0
        if ctype != "fp16" and attn:
            first = attn[0]
            temp = s.batch * ctx * first.num_kv_heads * (first.head_dim + first.v_dim) * 2  # fp16 K/V pair
        return (s.batch * ctx * per_token) / devices + temp

    if any(l.kind == "sliding_attention" for l in model.layers):
        notes.append("ExLlamaV2 allocates the full context for sliding-window layers too")
    kv = kv_at(s.context)
    sc = scratch(model, s)
    components = {"weights": int(weights), "kv_cache": int(kv), "scratch": sc, "reserve": AUTOSPLIT_RESERVE,
                  "cuda_context": CUDA_CONTEXT_BYTES}
    extras = {"cache_type": ctype, "host_bytes": int(model.weights.get("embeddings", 0))}
    if model.exl2_bpw:
        extras["exl2_bpw"] = model.exl2_bpw
    est = Estimate(framework=NAME, components=components, gpus=devices, notes=notes, extras=extras)
    if s.gpu is not None:
        usable = s.gpu.gpu.usable_bytes
        est.fits = est.per_gpu_bytes <= usable
        est.headroom_bytes = int(usable - est.per_gpu_bytes)
        fixed = weights + sc + AUTOSPLIT_RESERVE + CUDA_CONTEXT_BYTES
        ceiling = max(s.context, model.max_position or s.context)
        est.max_context = largest_fitting(lambda c: fixed + kv_at(c) <= usable, 1, ceiling)
    return est
