"""vLLM (V1 engine): a budget of `gpu_memory_utilization` x GPU memory, of which the KV pool gets what weights,
non-torch memory, the profiled activation peak and the CUDA-graph estimate leave.

Policy (vLLM 0.33 unless noted; file references in ../shared/research/hub-and-engines.md B5 and
docs/research/vllm-facts.md):
- budget = total GPU memory x gpu_memory_utilization (config/cache.py; 0.92 today, 0.9 before);
  the CUDA context is created before the memory snapshot, outside the budget (worker/gpu_worker.py).
- weights per TP rank, plus the rotary `cos_sin_cache` (max_position x rotary_dim, model dtype; one per model) and
  vocab padding to a multiple of 64 (DEFAULT_VOCAB_PADDING_SIZE); MTP layers are not loaded without speculative
  decoding.
- activation peak of the profile run: `max_num_batched_tokens` tokens through one layer (the MLP dominates), or the
  dummy sampler over `max_num_seqs` rows, whichever is larger.
- KV pages: block_size tokens per page, per layer spec (kv_cache_interface.py): full attention and MLA hold the
  whole sequence, sliding layers window - 1 + in-flight tokens (+1 block), chunked layers chunk + in-flight tokens,
  Mamba/GDN layers a fixed state page (x2 with prefix caching). Layers are grouped by spec, every group shares one
  block pool (kv_cache_planning.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..specs import ChunkedLocal, FullAttention, LayerSpec, LinearAttention, Mamba, MLA, SlidingWindow
from .base import (
    CUDA_CONTEXT_BYTES, GiB, KV_BYTES, Estimate, Settings, ceil_div, largest_fitting, per_token_per_gpu,
    stage_layers, state_per_gpu,
)
from .model import Model

NAME = "vllm"
LABEL = "vLLM"

DEFAULT_VERSION = "0.33"
# config/cache.py `gpu_memory_utilization: float = 0.92` (0.33.0); 0.9 in releases before the change.
UTILIZATION = {"new": 0.92, "old": 0.9}
UTILIZATION_CHANGED_IN = (0, 11)  # TODO(vllm-facts): confirm the release that moved 0.9 -> 0.92
# CacheConfig.DEFAULT_BLOCK_SIZE = 16 (config/cache.py).
BLOCK_SIZE = 16
# The CUDA-graph memory estimate is subtracted from the budget by default since v0.21.0
# (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1); before, graphs were captured after the KV cache, outside it.
CUDAGRAPH_IN_BUDGET_SINCE = (0, 21)
# "Graph capturing finished ... took 0.36 GiB" (gpustack/runner#251): the one published figure we have.
CUDAGRAPH_BYTES = int(0.36 * GiB)
# async scheduling keeps 2 batches in flight (config/vllm.py max_concurrent_batches), so a sliding layer holds
# window - 1 + 2 x max_num_batched_tokens tokens (+1 block for the window straddling a page).
IN_FLIGHT_BATCHES = 2
# Mamba/GDN state pages per request: 2 in "align" mode, which prefix caching (on by default) switches on
# (MambaSpec.max_memory_usage_bytes; model_executor/models/config.py).
MAMBA_PAGES_PER_REQUEST = 2

# Non-torch memory (cuBLAS/cuDNN workspaces, NCCL, attention-backend buffers) from published profiler logs:
#   H100 80GB, Llama-3-8B, TP1: 1.79 GiB; TP2: 3.58 GiB per GPU (vllm-project/vllm#10511)
#   RTX 3090, Llama-3.1-8B, TP1: 0.35 GiB (vllm-project/vllm#10517)
NON_TORCH_HOPPER = int(1.79 * GiB)
NON_TORCH_OTHER = int(0.35 * GiB)
NCCL_PER_GPU_TP = int((3.58 - 1.79) * GiB)  # the TP2 - TP1 difference in #10511


def version_tuple(text: str | None) -> tuple[int, int]:
    parts = [int(p) for p in str(text or DEFAULT_VERSION).split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts)))  # type: ignore[return-value]


def batch_defaults(gpu_total: int | None, server: bool) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) by GPU class (engine/arg_utils.py get_batch_defaults, 0.33):
    >= 70 GiB (H100/H200/B200) 16384/1024 offline, 8192/1024 server; smaller GPUs 8192/256 offline, 2048/256
    server. (A100 and GB10 count as small there; we key on memory only.)"""
    big = gpu_total is not None and gpu_total >= 70 * GiB
    if big:
        return (8192 if server else 16384), 1024
    return (2048 if server else 8192), 256


@dataclass
class KVGroup:
    spec: LayerSpec
    layers: int  # layers in this group (padding layers included)


def kv_dtype(model: Model, s: Settings) -> tuple[str, float]:
    if s.kv_dtype == "auto":
        name = model.facts.dtype.replace("bfloat16", "bf16").replace("float16", "fp16")
        if name == "float32":
            name = "bf16"  # fp32 checkpoints run in bf16 (config/model.py _get_and_verify_dtype)
        return name, 2.0 if name in ("bf16", "fp16") else float(model.compute_bytes)
    return s.kv_dtype, KV_BYTES.get(s.kv_dtype, 1.0)


def _spec_key(layer: LayerSpec) -> tuple:
    return (type(layer).__name__, getattr(layer, "window", None), getattr(layer, "chunk", None))


def groups(layers: list[LayerSpec]) -> list[KVGroup]:
    """Group layers by spec like kv_cache_planning.py `_get_kv_cache_groups_uniform_page_size`: the group size is
    the smallest bucket (the largest when max < 1.5 x min); each bucket splits into ceil(n / size) groups."""
    buckets: dict[tuple, list[LayerSpec]] = {}
    for layer in layers:
        if layer.kind != "none":
            buckets.setdefault(_spec_key(layer), []).append(layer)
    if not buckets:
        return []
    sizes = [len(b) for b in buckets.values()]
    size = max(sizes) if max(sizes) < 1.5 * min(sizes) else min(sizes)
    out = []
    for members in buckets.values():
        for _ in range(ceil_div(len(members), size)):
            out.append(KVGroup(members[0], size))
    return out


def page_geometry(layers: list[LayerSpec], kv_b: float, state_b: float, tp: int, block: int) -> tuple[int, float]:
    """(attention block size, page bytes per layer). With recurrent layers the attention block grows until an
    attention page holds a state page (platforms/interface.py: smallest multiple of `block` with
    block x per-token >= state page), and every page is padded to the largest."""
    attn = [per_token_per_gpu(l, kv_b, tp) for l in layers if l.is_attention]
    states = [state_per_gpu(l, state_b, tp) for l in layers if l.is_recurrent]
    per_token = max(attn) if attn else 0.0
    if states and per_token:
        state = max(states)
        block = block * ceil_div(math.ceil(state), math.ceil(block * per_token))
    page = max([block * per_token] + states)
    return block, page


def blocks_per_request(spec: LayerSpec, context: int, block: int, mnbt: int) -> int:
    if isinstance(spec, SlidingWindow):
        held = min(spec.window - 1 + IN_FLIGHT_BATCHES * mnbt, context)
        return ceil_div(held, block) + 1
    if isinstance(spec, ChunkedLocal):
        return ceil_div(min(spec.chunk + IN_FLIGHT_BATCHES * mnbt, context), block)
    if isinstance(spec, (Mamba, LinearAttention)):
        return MAMBA_PAGES_PER_REQUEST
    if isinstance(spec, (FullAttention, MLA)):
        return ceil_div(context, block)
    return 0


def non_torch(model: Model, s: Settings) -> int:
    gpu = s.gpu.gpu if s.gpu else None
    base = NON_TORCH_HOPPER if gpu is not None and gpu.sm >= 9.0 else NON_TORCH_OTHER
    return base + (NCCL_PER_GPU_TP if s.tp > 1 else 0)


def activation_peak(model: Model, mnbt: int, max_seqs: int, tp: int) -> int:
    """Profile-run peak: one layer's MLP for `mnbt` tokens (residual, normed input, gate_up output, activation
    output, down output: 3 x hidden + 3 x intermediate elements per token, fitted to the #10517 logs within 1%),
    or the sampler over min(max_num_seqs, mnbt) rows (fp32 logits, probabilities, sorted copy, int64 indices)."""
    d = model.compute_bytes if model.compute_bytes <= 2 else 2
    moe = model.arch.moe
    if moe:
        # fused_moe intermediate caches [T, top_k, 2N], [T, top_k, N], [T, top_k, H] (fused_moe.py)
        per_token = moe.experts_per_token * (3 * model.moe_intermediate + model.hidden) / tp + 3 * model.hidden
    else:
        per_token = 3 * model.hidden + 3 * model.intermediate / tp
    forward = mnbt * per_token * d
    rows = min(max_seqs, mnbt)
    sampler = rows * model.vocab * (4 + 4 + 4 + 8)
    return int(max(forward, sampler))


def rope_cache(model: Model) -> int:
    """RotaryEmbedding.cos_sin_cache: [max_position, rotary_dim] in the model dtype, shared by all layers. Llama-3.1-8B:
    131072 x 128 x 2 B = 32 MiB, the gap between its checkpoint and vLLM's "model weights took" (#10517)."""
    raw = model.facts.raw_config
    text = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw
    rotary = model.head_dim
    if text.get("qk_rope_head_dim"):
        rotary = text["qk_rope_head_dim"]
    rotary = int(rotary * float(text.get("partial_rotary_factor") or 1.0))
    max_pos = text.get("max_position_embeddings") or 0
    if not any(l.is_attention for l in model.layers):
        return 0
    return int(max_pos * rotary * min(2, model.compute_bytes))


def vocab_padding(model: Model, tp: int) -> int:
    """Embedding rows padded to a multiple of 64 (vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE)."""
    v = model.vocab
    if not v:
        return 0
    padded = ceil_div(v, 64) * 64
    tables = 1 if model.facts.arch.tie_word_embeddings else 2
    return int((padded - v) * model.hidden * min(2, model.compute_bytes) * tables / tp)


def weights_per_gpu(model: Model, s: Settings) -> int:
    loaded = model.loaded(mtp=False, vision=True)
    if s.pp > 1:
        # embeddings on the first stage, LM head on the last; decoder layers split evenly
        body = loaded - model.weights.get("embeddings", 0) - model.weights.get("lm_head", 0)
        loaded = body / s.pp + max(model.weights.get("embeddings", 0), model.weights.get("lm_head", 0))
    return int(loaded / s.tp + rope_cache(model) + vocab_padding(model, s.tp))


def estimate(model: Model, s: Settings) -> Estimate:
    notes: list[str] = []
    version = version_tuple(s.vllm_version)
    gpu_total = s.gpu.gpu.usable_bytes if s.gpu else None
    util = s.gpu_memory_utilization or (UTILIZATION["new"] if version >= UTILIZATION_CHANGED_IN else UTILIZATION["old"])
    d_mnbt, d_seqs = batch_defaults(gpu_total, s.vllm_server)
    mnbt = s.max_num_batched_tokens or d_mnbt
    max_seqs = s.max_num_seqs or d_seqs
    block = s.block_size or BLOCK_SIZE
    name, kv_b = kv_dtype(model, s)
    if name == "fp8" and s.gpu and not s.gpu.gpu.fp8:
        notes.append(f"{s.gpu.gpu.name} has no FP8 tensor cores; vLLM stores an fp8 KV cache there but "
                     f"dequantises it in software")
    state_b = float(min(2, model.compute_bytes))
    layers = stage_layers(model.layers, s.pp)
    block, page = page_geometry(layers, kv_b, state_b, s.tp, block)
    kv_groups = groups(layers)
    paging = s.kv_paging or "paged"
    if paging == "contiguous":
        notes.append("--kv-paging contiguous: every layer reserves the full context (vLLM's "
                     "--disable-hybrid-kv-cache-manager promotes sliding layers to full attention)")
        kv_groups = [KVGroup(FullAttention(num_kv_heads=1, head_dim=1), g.layers)
                     if isinstance(g.spec, (SlidingWindow, ChunkedLocal)) else g for g in kv_groups]

    def request_blocks(context: int) -> int:
        if paging == "aggressive":
            # the model's own minimum, in pages: windows without in-flight slack
            return sum(ceil_div(g.spec.tokens_held(context), block) if g.spec.is_attention
                       else MAMBA_PAGES_PER_REQUEST - 1 for g in kv_groups)
        return sum(blocks_per_request(g.spec, context, block, mnbt) for g in kv_groups)

    group_size = kv_groups[0].layers if kv_groups else 0
    bytes_per_block = group_size * page

    def kv_need(context: int) -> float:
        return s.batch * request_blocks(context) * bytes_per_block

    weights = weights_per_gpu(model, s)
    act = activation_peak(model, mnbt, max_seqs, s.tp)
    nt = non_torch(model, s)
    graphs = 0 if s.enforce_eager else CUDAGRAPH_BYTES
    graphs_in_budget = version >= CUDAGRAPH_IN_BUDGET_SINCE
    fixed = weights + nt + act + (graphs if graphs_in_budget else 0)
    need = kv_need(s.context)
    components = {
        "weights": weights,
        "kv_cache": int(need),
        "activations": act,
        "non_torch": nt,
        "cuda_graphs": graphs,
        "cuda_context": CUDA_CONTEXT_BYTES,
    }
    extras: dict = {
        "gpu_memory_utilization": util,
        "max_num_batched_tokens": mnbt,
        "max_num_seqs": max_seqs,
        "block_size": block,
        "kv_dtype": name,
        # The budget must hold everything but the context, and the context must fit in what the budget leaves.
        "min_gpu_bytes": int(math.ceil(max((fixed + need) / util, CUDA_CONTEXT_BYTES / (1 - util)))),
    }
    est = Estimate(framework=NAME, components=components, gpus=s.tp * s.pp, notes=notes, extras=extras)
    if s.gpu is not None:
        budget = gpu_total * util
        pool = budget - fixed
        extras["budget_bytes"] = int(budget)
        extras["kv_pool_bytes"] = int(max(0, pool))
        blocks = int(pool // bytes_per_block) if bytes_per_block and pool > 0 else 0
        extras["num_blocks"] = blocks
        per_req = request_blocks(s.context)
        extras["max_concurrency"] = round(blocks / per_req, 2) if per_req else None
        extras["kv_tokens"] = int(blocks / per_req * s.context) if per_req else None
        # What the process holds: the whole budget (vLLM grabs it whatever the model needs) plus the context.
        extras["process_bytes"] = int(budget + CUDA_CONTEXT_BYTES)
        est.fits = pool >= need and CUDA_CONTEXT_BYTES <= gpu_total * (1 - util) + 1
        est.headroom_bytes = int(pool - need)
        ceiling = max(s.context, model.max_position or s.context)
        est.max_context = largest_fitting(lambda c: kv_need(c) <= pool, 1, ceiling) if pool > 0 else None
        if not graphs_in_budget and graphs:
            notes.append("CUDA graphs are captured after the KV cache in this vLLM version: they use the memory "
                         "left outside gpu_memory_utilization")
    if any(isinstance(l, (Mamba, LinearAttention)) for l in layers) and block != (s.block_size or BLOCK_SIZE):
        notes.append(f"hybrid model: attention block size raised to {block} tokens so a page holds a state")
    return est
