"""ExLlamaV2 (EXL2 weights): a preallocated cache for the whole context in every layer, embeddings in system RAM.

Policy (turboderp-org/exllamav2 @ da07fac; ../shared/research/hub-and-engines.md B8):
- weights: EXL2 tensors as stored (or projected with --quantize exl2:BPW: decoder linears at BPW, the output layer
  at head_bits 6); the embedding table stays in system RAM (`embed_cpu=True`, model.py).
- cache (cache.py): K and V of (batch, max_seq_len, kv_heads, head_dim) in every layer, no sliding-window saving;
  FP16 2 bytes/element, 8-bit 1, Q8 1 + fp16 scale per 32, Q6 (K 1 byte, V 0.5) + scales, Q4 0.5 + scales;
  quantised and 8-bit caches also hold one full-size fp16 K/V pair per device as a conversion buffer.
- fixed scratch, one buffer per device: the largest module's need, where a linear layer's dequantisation buffer is
  2 x min(in x out, 512 Mi) bytes (linear.py temp_dq_size; the LM head's is ~1 GiB on 128K+ vocabularies) and the MLP
  adds max_input_len-token states (mlp.py); fp16 RoPE sin/cos tables of max_seq_len x head_dim (device.py).
- the autosplit reserve (192 MiB on the first device, model.py load_autosplit) is a guard freed after loading: it
  must be free, it is not resident.
- the dynamic generator pages the cache in 256-token pages (generator/dynamic.py PAGED_PAGE_SIZE), so the context
  rounds up to 256; its 8-bit (FP8) cache is not usable there.
- what nvidia-smi shows (`nvidia_smi_bytes`) adds what torch's caching allocator reserves beyond these tensors:
  each one's segment rounding (allocator_rounding), and the 256 MiB that load_autosplit leaves in torch's cache.
(Details and line numbers: docs/research/trtllm-exllama-hf-facts.md sections 5-7.)
What ExLlamaV2 cannot run (MLA, Mamba/linear-attention hybrids, encoders, other formats) is hfvram.support's.
"""

from __future__ import annotations

from collections import Counter

from ..specs import FullAttention
from .allocator import LARGE_BUFFER, MIN_LARGE_ALLOC, ROUND_LARGE, SMALL_SIZE
from .base import EXL2_KV_BYTES, MiB, Estimate, Settings, cuda_context_bytes, engine_info, fit_allocating, rider_bytes
from .model import EXL2_HEAD_BPW, Model

NAME = "exllamav2"
EXLLAMAV2_VERSION = "0.3 @ da07fac"  # turboderp-org/exllamav2 commit the policy was read at (2025-12-09)

MAX_INPUT_LEN = 2048  # ExLlamaV2Config.max_input_len default (config.py l.174)
MAX_DQ_ELEMENTS = 512 * 1024**2  # ExLlamaV2Config.max_dq_size: "Max number of elements to dequantize at once"
AUTOSPLIT_RESERVE = 192 * MiB  # model.py load_autosplit: guard on the first device while loading
PAGE = 256  # generator/dynamic.py PAGED_PAGE_SIZE: cache max_seq_len must be a multiple of it
# Cache bytes per element: FP16 2, 8-bit (FP8) 1, Q8/Q6/Q4 with their fp16 scales (cache.py; base.EXL2_KV_BYTES).
CACHE = {"fp16": 2.0, "fp8": 1.0, **EXL2_KV_BYTES}
_FROM_KV_DTYPE = {"auto": "fp16", "fp16": "fp16", "bf16": "fp16", "fp32": "fp16", "fp8": "fp8", "int8": "q8",
                  "q8_0": "q8", "q8": "q8", "q6": "q6", "q4": "q4", "q4_0": "q4"}


# torch's caching allocator (hfvram/estimate/allocator.py, from c10/cuda/CUDACachingAllocator.cpp): requests of at
# most 1 MiB share 2 MiB segments, those under 10 MiB share 20 MiB segments, larger ones get a segment of their own
# rounded up to 2 MiB. nvidia-smi shows segments, not tensors. ExLlamaV2 allocates every weight, cache and scratch
# tensor through torch (ext.py, cache.py, device.py), so this holds for any model it loads.
SMALL_REQUEST = SMALL_SIZE
LARGE_SEGMENT = LARGE_BUFFER
# load_autosplit_gen (model.py @ da07fac; the same in 0.0.19) takes a 256 MiB `minimum_reserve_tensor` on the device
# it loads onto and still holds it when its last torch.cuda.empty_cache() runs: when the generator returns, the block
# goes back to torch's cache, where it stays reserved (and takes the forward pass's transients). Loaded without
# autosplit (model.load with a gpu_split) it does not exist.
LOAD_MINIMUM_RESERVE = 256 * MiB


def allocator_waste(size: float, exact: bool) -> float:
    """What torch reserves for one tensor of `size` bytes beyond its size: nothing for a small one (packed with others
    in 2 MiB segments); a medium one's share of the tail of a 20 MiB segment filled with tensors of its size; a large
    one's rounding up to 2 MiB, exactly when the size is known to the byte, else 1 MiB (a quantised tensor's size
    modulo 2 MiB is as good as uniform: EXL2 picks bits per layer)."""
    if size <= SMALL_REQUEST:
        return 0.0
    if size < MIN_LARGE_ALLOC:
        k = int(LARGE_SEGMENT // size)
        return (LARGE_SEGMENT - k * size) / k
    return float(-int(size) % ROUND_LARGE) if exact else ROUND_LARGE / 2


def allocator_rounding(model: Model, s: Settings, context: int, ctype: str) -> int:
    """What torch's segments hold beyond ExLlamaV2's resident tensors, over all devices: every linear layer's weight
    (an EXL2 q_weight at the layer's bits; its scale, group and permutation tensors are small), the LM head (EXL2 head
    bits), each layer's K and V cache, the scratch buffer and the RoPE tables."""
    bits = model.exl2_bpw or (model.facts.quant.bits if model.facts.quant is not None else None)
    exact = bits is None  # unquantised: sizes known to the byte
    per = (bits / 8) if bits else model.facts.dtype_bytes
    h, inter = model.hidden, (model.moe_intermediate if model.arch.moe else model.intermediate)
    experts = model.arch.moe.num_experts if model.arch.moe else 1
    tensors: Counter[tuple[float, bool]] = Counter()  # (size, exact) -> how many tensors of that size
    b = CACHE[ctype]
    for lay in model.layers:
        if not isinstance(lay, FullAttention):
            continue
        q, kv = model.heads * lay.head_dim, lay.num_kv_heads * lay.head_dim
        tensors.update([(h * q * per, exact), (h * kv * per, exact), (h * lay.num_kv_heads * lay.v_dim * per, exact),
                        (q * h * per, exact)])
        tensors[(h * inter * per, exact)] += 3 * experts
        # the cache: K and V of (batch, max_seq_len, kv_heads, head_dim) per layer (cache.py)
        tensors.update([(s.batch * context * lay.num_kv_heads * lay.head_dim * b, True),
                        (s.batch * context * lay.num_kv_heads * lay.v_dim * b, True)])
    head_bytes = (EXL2_HEAD_BPW / 8) if model.exl2_bpw else per
    tensors[(h * model.vocab * head_bytes, exact)] += 1
    tensors[(scratch(model, s), True)] += 1
    tensors[(rope_tables(model, context) / 2, True)] += 2
    return int(sum(allocator_waste(size, ex) * n for (size, ex), n in tensors.items()))


def cache_type(s: Settings) -> str:
    return _FROM_KV_DTYPE.get(s.kv_dtype, "fp16")


def scratch(model: Model, s: Settings) -> int:
    """The per-device fixed scratch (device.py: one buffer of the largest module's scratch_space_fixed()):
    attention = state (max_input_len x batch x max(heads x head_dim, hidden) x 2) + the largest q/k/v/o dequant
    buffer; MLP = state + two intermediates (each max_input_len x batch x max(hidden, intermediate) x 2) + its
    largest dequant buffer; LM head = its dequant buffer. Dequant buffer = 2 x min(in x out, max_dq_size) bytes."""
    tokens = (s.max_input_len or MAX_INPUT_LEN) * s.batch
    h, heads, hd = model.hidden, model.heads, model.head_dim

    def dq(n_in: int, n_out: int) -> int:
        return 2 * min(n_in * n_out, MAX_DQ_ELEMENTS)

    inter = model.moe_intermediate if model.arch.moe else model.intermediate
    attn = tokens * max(heads * hd, h) * 2 + dq(h, heads * hd)
    mlp = tokens * h * 2 + 2 * tokens * max(h, inter) * 2 + dq(h, inter)
    head = dq(h, model.vocab)
    return int(max(attn, mlp, head))


def rope_tables(model: Model, context: int) -> int:
    """fp16 sin and cos of (max_seq_len, head_dim) per device (device.py prepare_sincos)."""
    return 2 * context * model.head_dim * 2


def estimate(model: Model, s: Settings) -> Estimate:
    notes: list[str] = []
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
    context = -(-s.context // PAGE) * PAGE
    kv = kv_at(context)
    sc = scratch(model, s) + rope_tables(model, context)
    if ctype == "fp8":
        notes.append("ExLlamaV2's 8-bit (FP8) cache does not work with its dynamic generator (dynamic.py)")
    context_bytes = cuda_context_bytes(s, torch=True)  # ExLlamaV2 runs on torch
    components = {"weights": int(weights), "kv_cache": int(kv), "scratch": sc, "cuda_context": context_bytes}
    riders = rider_bytes(NAME, model, s)  # draft model: its own weights, cache and scratch; LoRA in fp16
    components.update(riders)
    extras = {"cache_type": ctype, "host_bytes": int(model.weights.get("embeddings", 0)),
              "load_headroom_bytes": AUTOSPLIT_RESERVE, "cache_tokens": context}
    if model.exl2_bpw:
        extras["exl2_bpw"] = model.exl2_bpw
    rounding = allocator_rounding(model, s, context, ctype) // devices
    # nvidia-smi: the tensors, the CUDA context, torch's segment rounding and the load reserve torch keeps cached
    extras["nvidia_smi_extra"] = {"allocator_rounding": rounding, "load_reserve": LOAD_MINIMUM_RESERVE}
    est = Estimate(framework=NAME, components=components, gpus=devices, notes=notes, extras=extras)
    est.nvidia_smi_bytes = int(sum(components.values())) + rounding + LOAD_MINIMUM_RESERVE
    est.engine = engine_info("ExLlamaV2", EXLLAMAV2_VERSION, {
        "cache": (ctype, s.kv_dtype == "auto"), "max_seq_len": (context, True),
        "max_input_len": (s.max_input_len or MAX_INPUT_LEN, s.max_input_len is None),
    })
    if s.gpu is not None:
        fixed = weights + scratch(model, s) + context_bytes + sum(riders.values())

        def need_at(c: int) -> float:
            c = -(-c // PAGE) * PAGE
            return fixed + rope_tables(model, c) + kv_at(c)

        # loading needs the autosplit guard free on top of what stays resident
        fit_allocating(est, s, model, need_at, extra=AUTOSPLIT_RESERVE, what=" (with the 192 MiB load reserve)")
    return est
