"""TensorRT-LLM (PyTorch backend / LLM API): the KV pool is a fraction of the memory left *after* weights and the
profiling run, in 32-token blocks.

Policy (tensorrt_llm/_torch/pyexecutor/_util.py KvCacheCreator, resource_manager.py, llmapi/llm_args.py; see
../shared/research/hub-and-engines.md B8 and docs/research/trtllm-exllama-hf-facts.md):
- load the weights, capture CUDA graphs (on by default: 34 decode batch sizes up to 128), run dummy context
  requests totalling `max_num_tokens` (8192), measure the peak (torch peak + memory used outside torch);
- KV pool = free_gpu_memory_fraction (0.9) x (total - peak): a fraction of what is left, not of the GPU;
- bytes per token = dtype x attention layers x head_dim x kv_heads / TP x 2 (MLA: kv_lora_rank + rope, x1);
- a sequence takes ceil(context / 32) blocks per layer; with several window sizes (VSWA: Gemma-2/3, gpt-oss) the
  pool is split into equal shares per distinct window (resource_manager.py calculate_max_num_blocks_for_vswa) and
  each share must hold its layers' tokens.
(Details: docs/research/trtllm-exllama-hf-facts.md sections 1-3.)
"""

from __future__ import annotations

import math

from ..specs import MLA, FullAttention, LayerSpec, SlidingWindow
from ..units import fmt_bytes
from .base import (
    CUDA_CONTEXT_BYTES, KV_BYTES, Estimate, Settings, allowed_note, ceil_div, engine_info, largest_fitting,
    per_token_per_gpu, spec_tokens, stage_layers, state_per_gpu,
)
from .model import Model
from .vllm import CUDAGRAPH_FIRST, CUDAGRAPH_PER_GRAPH, NON_TORCH, activation_peak

NAME = "trtllm"
# The release whose defaults these are: TensorRT-LLM 1.x LLM API / PyTorch backend (llmapi/llm_args.py read at the
# snapshot cited in docs/research/trtllm-exllama-hf-facts.md).
TRTLLM_VERSION = "1.x (PyTorch backend)"

FREE_GPU_MEMORY_FRACTION = 0.9  # KvCacheConfig.free_gpu_memory_fraction default (llmapi/llm_args.py)
MAX_NUM_TOKENS = 8192  # BaseLlmArgs.max_num_tokens default (llmapi/llm_args.py)
# CudaGraphConfig default: batch sizes 1..31, 32, 64, 128 (_generate_cuda_graph_batch_sizes(128)) = 34 graphs.
CUDA_GRAPHS = 34
TOKENS_PER_BLOCK = 32  # KvCacheConfig tokens_per_block default (engine builds before the PyTorch backend used 64)
TRT_PROFILE_AS_VLLM = (1, 0)  # a vLLM version tuple newer than every policy switch in vllm.py


def kv_dtype(model: Model, s: Settings) -> tuple[str, float]:
    if s.kv_dtype == "auto":
        return ("bf16" if model.facts.dtype == "bfloat16" else "fp16"), 2.0
    return s.kv_dtype, KV_BYTES.get(s.kv_dtype, 1.0)


def tokens_held(layer: LayerSpec, context: int, paging: str) -> int:
    if paging == "contiguous" and isinstance(layer, SlidingWindow):
        return context  # without VSWA every layer gets the full sequence
    held = layer.tokens_held(context)
    return ceil_div(held, TOKENS_PER_BLOCK) * TOKENS_PER_BLOCK if paging != "aggressive" else held


def window_groups(model: Model, s: Settings, layers) -> dict:
    """Layers grouped by the tokens they hold: window size, or None for full attention / MLA / states."""
    paging = s.kv_paging or "paged"
    out: dict = {}
    for layer in layers:
        key = layer.window if isinstance(layer, SlidingWindow) and paging != "contiguous" else None
        out.setdefault(key, []).append(layer)
    return out


def group_bytes(model: Model, s: Settings, layers, context: int) -> float:
    """Bytes one sequence of `context` tokens takes in these layers on one GPU."""
    _, b = kv_dtype(model, s)
    paging = s.kv_paging or "paged"
    total = 0.0
    for layer in layers:
        if isinstance(layer, (FullAttention, MLA)):
            total += tokens_held(layer, context, paging) * per_token_per_gpu(layer, b, s.tp, replicate=False)
        else:
            total += state_per_gpu(layer, min(2, model.compute_bytes), s.tp)
    return total


def kv_per_sequence(model: Model, s: Settings, layers, context: int) -> float:
    """One sequence's cache; a draft model's per-token cost is added to the target's (KvCacheCreator
    _get_kv_size_per_token), and each sequence reserves the speculative tokens."""
    context += spec_tokens(NAME, s)
    total = sum(group_bytes(model, s, members, context) for members in window_groups(model, s, layers).values())
    if s.draft is not None:
        draft_layers = stage_layers(s.draft.layers, s.pp)
        total += sum(group_bytes(s.draft, s, m, context) for m in window_groups(s.draft, s, draft_layers).values())
    return total


def fits_pool(model: Model, s: Settings, layers, context: int, pool: float) -> bool:
    """Every window group's equal share of the pool must hold `batch` sequences (VSWA); one group: the whole pool."""
    groups = window_groups(model, s, layers)
    share = pool / max(1, len(groups))
    return all(s.batch * group_bytes(model, s, members, context) <= share for members in groups.values())


def estimate(model: Model, s: Settings) -> Estimate:
    notes: list[str] = []
    layers = stage_layers(model.layers, s.pp)
    name, _ = kv_dtype(model, s)
    weights = model.loaded(mtp=False, vision=False) / s.tp
    if s.pp > 1:
        weights = weights / s.pp
    max_tokens = s.max_num_tokens or MAX_NUM_TOKENS
    # The profiling requests are context requests with max_tokens=1: the forward over max_num_tokens dominates. The
    # same forward as vLLM's profile run, with its current accounting (a version past every vLLM switch: persistent
    # MoE workspaces on top, the one-row sampler at 15.5 bytes per logit).
    act = activation_peak(model, max_tokens, 1, s.tp, TRT_PROFILE_AS_VLLM)
    gpu = s.gpu.gpu if s.gpu else None
    # Memory outside torch (cuBLAS workspaces, NCCL buffers) enters the peak through `used - torch_allocated`; we
    # reuse vLLM's measured figures for the same libraries (0.25 GiB at TP1, ~2.1 GiB per GPU with TP, H100).
    nt = NON_TORCH["tp"] if s.tp > 1 else NON_TORCH["tp1"]
    # CUDA graphs are captured before the profiling forward, so their pools are inside the peak. TensorRT-LLM's
    # own note says "each CUDA graph can use up to 200 MB"; we size them like vLLM's measured estimate (a first
    # capture plus ~6 MiB per further graph) over the 34 default batch sizes.
    graphs = CUDAGRAPH_FIRST + CUDAGRAPH_PER_GRAPH * (CUDA_GRAPHS - 1)
    riders = {}
    if s.lora is not None:
        from .extras import lora_bytes

        riders["lora"], why = lora_bytes(NAME, s.lora, model, s.tp)  # the PEFT cache is inside the peak
        notes.append(why)
    if s.draft is not None:
        riders["draft"] = int(s.draft.loaded(mtp=False, vision=False) / s.tp / s.pp)  # loaded before profiling
    peak = weights + act + nt + graphs + CUDA_CONTEXT_BYTES + sum(riders.values())
    kv = s.batch * kv_per_sequence(model, s, layers, s.context)
    fraction = s.free_gpu_memory_fraction or FREE_GPU_MEMORY_FRACTION
    components = {"weights": int(weights), "kv_cache": int(kv), "activations": int(act), "non_torch": int(nt),
                  "cuda_graphs": int(graphs), "cuda_context": CUDA_CONTEXT_BYTES, **riders}
    extras: dict = {"free_gpu_memory_fraction": fraction, "max_num_tokens": max_tokens,
                    "tokens_per_block": TOKENS_PER_BLOCK, "kv_dtype": name,
                    # the pool must be kv, and it is `fraction` of what is free after the peak
                    "min_gpu_bytes": int(peak + kv / fraction)}
    if model.weights.get("vision"):
        notes.append("vision tower not counted: TensorRT-LLM runs the multimodal encoder as a separate engine")
    est = Estimate(framework=NAME, components=components, gpus=s.tp * s.pp, notes=notes, extras=extras)
    est.engine = engine_info("TensorRT-LLM", TRTLLM_VERSION, {
        "backend": ("pytorch", True),
        "free_gpu_memory_fraction": (fraction, s.free_gpu_memory_fraction is None),
        "max_num_tokens": (max_tokens, s.max_num_tokens is None),
        "tokens_per_block": (TOKENS_PER_BLOCK, True),
        "kv_cache_dtype": (name, s.kv_dtype == "auto"),
        "cuda_graph_batch_sizes": (CUDA_GRAPHS, True),
    })
    if gpu is not None:
        usable, allowed = s.usable_bytes, s.allowed_bytes
        free = usable - peak
        pool = max(0.0, fraction * free)
        held = peak + pool  # the pool is a fraction of what is free after the peak, whatever the model needs
        per_token_all = kv_per_sequence(model, s, layers, TOKENS_PER_BLOCK) / TOKENS_PER_BLOCK
        extras["kv_pool_bytes"] = int(pool)
        extras["kv_tokens"] = int(pool / per_token_all) if per_token_all else None
        extras["process_bytes"] = int(held)
        est.process_bytes = int(held)
        within = held <= allowed
        est.fits = fits_pool(model, s, layers, s.context, pool) and within
        est.headroom_bytes = int(allowed - held)
        if free <= 0:
            est.fit_reason = (f"weights and the profiling peak alone take {fmt_bytes(peak)}, "
                              f"{fmt_bytes(peak - usable)} more than the GPU's {fmt_bytes(usable)}")
        elif not within:
            est.fit_reason = (f"TensorRT-LLM holds {fmt_bytes(held)} (its peak {fmt_bytes(peak)} plus "
                              f"free_gpu_memory_fraction {fraction:g} of the {fmt_bytes(free)} left), more than the "
                              f"{fmt_bytes(allowed)} allowed{allowed_note(s)}")
        elif not est.fits:
            shares = len(window_groups(model, s, layers))
            est.fit_reason = (f"the KV pool ({fmt_bytes(pool)} = {fraction:g} x the {fmt_bytes(free)} left "
                              f"after a {fmt_bytes(peak)} peak) cannot hold {fmt_bytes(kv)}"
                              + (f" in {shares} equal shares, one per window size" if shares > 1 else
                                 f": {fmt_bytes(kv - pool)} short"))
        ceiling = max(s.context, model.max_position or s.context)
        est.max_context = largest_fitting(lambda c: fits_pool(model, s, layers, c, pool), 1, ceiling) \
            if pool > 0 and within else None
    return est


def fraction_within(s: Settings, peak: float, allowed: int) -> float | None:
    """The largest --free-gpu-memory-fraction (2 decimals) whose process stays within `allowed`, or None."""
    free = (s.usable_bytes or 0) - peak
    if free <= 0 or allowed <= peak:
        return None
    return math.floor((allowed - peak) / free * 100) / 100 or None
