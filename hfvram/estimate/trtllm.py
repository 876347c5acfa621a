"""TensorRT-LLM: the KV pool is a fraction of the memory left *after* everything else, in paged blocks. Two runtimes:

PyTorch backend (the LLM API / trtllm-serve default since 1.0; tensorrt_llm/_torch/pyexecutor/_util.py
KvCacheCreator, resource_manager.py, llmapi/llm_args.py; docs/research/trtllm-exllama-hf-facts.md sections 1-3):
- load the weights, capture CUDA graphs (decode batch sizes up to 128 by default), run dummy context requests
  totalling `max_num_tokens` (8192), measure the peak = torch peak + memory used outside torch (CUDA context, NCCL,
  graph pools: `extra_cost` in _util.py);
- KV pool = free_gpu_memory_fraction (0.9) x (total - peak), 32-token blocks.

TensorRT engine path (`trtllm-build` engines run by the C++ executor; the default before 1.0):
- the engine (weights) is deserialised; TensorRT allocates the execution context's activation memory, sized at
  build time for the largest profile: about `max_num_tokens` tokens through one layer (docs/source/reference/
  memory.md: "activation size will be close to max number of input tokens * some constant factor", memory reused
  across layers); the runtime allocates its buffers (fp32 logits for `max_batch_size` sequences,
  batch_manager/runtimeBuffers.cpp) and the decoder's (sampling state for `max_batch_size` sequences);
- then `freeGpuMemoryFraction` (0.9) of what is free is the KV pool (kvCacheManager.cpp calculateFreeMemBytes); no
  profiling run; engine builds default to 64-token blocks.

Per-token KV: dtype x attention layers x head_dim x kv_heads / TP x 2 (MLA: kv_lora_rank + rope, x1); with several
window sizes (VSWA) the pool is split into equal shares per window (resource_manager.py
calculate_max_num_blocks_for_vswa) and each share must hold its layers' tokens.
"""

from __future__ import annotations

import math

from ..specs import MLA, FullAttention, LayerSpec, SlidingWindow
from ..units import fmt_bytes
from .base import (
    CUDA_CONTEXT_BYTES, GiB, KV_BYTES, Estimate, Settings, allowed_note, ceil_div, engine_info, fitted,
    largest_with_slack, per_token_per_gpu, spec_tokens, stage_layers, state_per_gpu,
)
from . import bands
from .model import Model
from .vllm import (
    CUDAGRAPH_L0, CUDAGRAPH_PER_LAYER, NT_TP_PCIE, NT_V111_TP1, NT_V111_TP_NVLINK, activation_peak,
)

NAME = "trtllm"
# Releases on PyPI: 0.5.0 (Oct 2023) to 1.2.1 (`pip index versions tensorrt-llm`); the LLM API's PyTorch backend
# became its default in 1.0 (before it, `trtllm-build` + the C++ executor ran every deployment).
DEFAULT_VERSION = "1.2"
PYTORCH_DEFAULT_SINCE = (1, 0)
# The earliest release a published log shows running the PyTorch backend (trtllm-bench, TensorRT-LLM#6294, 0.20.0);
# earlier releases are sized on the TensorRT engine path only.
PYTORCH_BACKEND_SEEN_SINCE = (0, 20)

FREE_GPU_MEMORY_FRACTION = 0.9  # KvCacheConfig.free_gpu_memory_fraction (llm_args.py); C++ kDefaultGpuMemFraction
# Build limits: BuildConfig defaults (tensorrt_llm/builder.py @008b2b8: max_input_len 1024, max_seq_len None = the
# model's max_position_embeddings, max_batch_size 2048, max_beam_width 1, max_num_tokens 8192); the LLM API has the
# same defaults (llmapi/llm_args.py, newest snapshot).
MAX_BATCH_SIZE = 2048
MAX_INPUT_LEN = 1024
MAX_NUM_TOKENS = 8192
# CudaGraphConfig default: batch sizes 1..31, 32, 64, 128 (_generate_cuda_graph_batch_sizes(128)) = 34 graphs.
CUDA_GRAPHS = 34
TOKENS_PER_BLOCK = 32  # KvCacheConfig tokens_per_block default (PyTorch backend)
TOKENS_PER_BLOCK_ENGINE = 64  # plugin config enable_paged_kv_cache(tokens_per_block=64) for trtllm-build engines
TRT_PROFILE_AS_VLLM = (1, 0)  # a vLLM version tuple newer than every policy switch in vllm.py

# Engine-path buffers that scale with max_batch_size x the padded vocabulary (bytes per sequence slot per token id):
#  runtime buffers: the fp32 logits [max_batch_size x beam, vocab_padded] (runtimeBuffers.cpp setMaxBufferSizes +
#    reshape) = 4 B (prior); measured 9.3 B: "Allocated 1.14 GB GPU memory for runtime buffers" at max_batch_size
#    4096, vocab 32000 (benchmarks/Suite.md, 0.12.0.dev).
#  decoder: the sampling layers' per-slot state over the vocabulary (top-k/top-p workspaces, penalties, logits
#    copies): 35.6 B in 0.12 ("4.35 GB ... for decoder", same log); 0.19 engines hold less (TensorRT-LLM#4275, RTX
#    5090: 14.01 GiB used before the pool, of which weights 8.46, execution context 0.11, CUDA context 0.39 and
#    runtime buffers 2.28 GiB by this model: 2.77 GiB for 2048 x 128256 = 11.3 B).
SUITE012 = "NVIDIA/TensorRT-LLM benchmarks/Suite.md"
RUNTIME_PER_LOGIT = fitted("trtllm.engine.runtime_bytes_per_logit", [(SUITE012, 9.3)], prior=4.0, unit="B")
DECODER_PER_LOGIT_OLD = fitted("trtllm.engine.decoder_bytes_per_logit.0.12", [(SUITE012, 35.6)],
                               prior="trtllm.engine.decoder_bytes_per_logit.0.19", unit="B")
DECODER_PER_LOGIT = fitted("trtllm.engine.decoder_bytes_per_logit.0.19", [("NVIDIA/TensorRT-LLM#4275", 11.3)],
                           prior="trtllm.engine.decoder_bytes_per_logit.0.12", unit="B")
DECODER_SMALLER_SINCE = (0, 19)  # the two logs bracket the change; the first release with it is not pinned
# What an engine process holds besides engine, activations, buffers and pool: the CUDA context, cuBLAS/TensorRT
# workspaces. memory.md FAQ log: 79.10 - 70.48 = 8.62 GiB used before the pool = engine 6.54 + execution context
# 1.11 + runtime buffers 0.04 + decoder 0.18 + 0.75 GiB; Suite.md 0.12 log: 79.10 - 63.62 = 15.48 = 6.07 + 0.91 +
# 1.06 + 4.05 + 3.39 GiB (five optimisation profiles).
# PyTorch backend: memory outside torch after loading ("Memory used after loading model weights (outside torch)",
# _util.py): the CUDA context, NCCL/MPI, cuBLAS and attention workspaces, JIT kernel modules. 2.52 GiB on an H200
# with TP1 (1.2.0rc4, faradawn/bench3 trtllm-serve log); prior: the CUDA context + vLLM's TP1 figure for the
# same libraries.
BENCH3 = "faradawn/bench3 logs/trtllm-serve-egine.log"  # @2d98d58
OUTSIDE_TORCH = fitted("trtllm.pytorch.outside_torch", [(BENCH3, 2.52 * GiB)],
                       prior=CUDA_CONTEXT_BYTES + 0.13 * GiB)
MEMORY_DOC = "NVIDIA/TensorRT-LLM docs/source/reference/memory.md"
ENGINE_OTHER = fitted("trtllm.engine.other", [(MEMORY_DOC, 0.75 * GiB), (SUITE012, 3.39 * GiB)],
                      prior=CUDA_CONTEXT_BYTES)


def version_tuple(text: str | None) -> tuple[int, int]:
    parts = [int(p) for p in str(text or DEFAULT_VERSION).split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts)))  # type: ignore[return-value]


def backend(s: Settings) -> str:
    if s.trtllm_backend:
        return s.trtllm_backend
    return "pytorch" if version_tuple(s.trtllm_version) >= PYTORCH_DEFAULT_SINCE else "tensorrt"


def kv_dtype(model: Model, s: Settings) -> tuple[str, float]:
    if s.kv_dtype == "auto":
        if model.facts.dtype == "float32" and backend(s) == "tensorrt":
            return "fp32", 4.0
        return ("bf16" if model.facts.dtype == "bfloat16" else "fp16"), 2.0
    return s.kv_dtype, KV_BYTES.get(s.kv_dtype, 1.0)


def tokens_per_block(s: Settings) -> int:
    return s.block_size or (TOKENS_PER_BLOCK_ENGINE if backend(s) == "tensorrt" else TOKENS_PER_BLOCK)


def tokens_held(layer: LayerSpec, context: int, paging: str, block: int) -> int:
    if paging == "contiguous" and isinstance(layer, SlidingWindow):
        return context  # without VSWA every layer gets the full sequence
    held = layer.tokens_held(context)
    return ceil_div(held, block) * block if paging != "aggressive" else held


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
    block = tokens_per_block(s)
    total = 0.0
    for layer in layers:
        if isinstance(layer, (FullAttention, MLA)):
            total += tokens_held(layer, context, paging, block) * per_token_per_gpu(layer, b, s.tp, replicate=False)
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
    return pool_slack(model, s, layers, context, pool) >= 0


def pool_slack(model: Model, s: Settings, layers, context: int, pool: float) -> float:
    """The bytes the tightest window group's share of the pool has to spare (>= 0: `fits_pool`)."""
    groups = window_groups(model, s, layers)
    share = pool / max(1, len(groups))
    return min((share - s.batch * group_bytes(model, s, members, context) for members in groups.values()),
               default=math.inf)


def comm_bytes(s: Settings) -> int:
    """NCCL / all-reduce buffers per GPU with TP: vLLM's measured increments for the same libraries (the TP1 figure
    subtracted), over NVLink or PCIe by the GPU's interconnect."""
    if s.tp <= 1:
        return 0
    gpu = s.gpu.gpu if s.gpu else None
    if gpu is not None and gpu.link == "pcie":
        return int(NT_TP_PCIE())
    return int(max(0.0, NT_V111_TP_NVLINK() - NT_V111_TP1()))


def engine_buffers(model: Model, s: Settings) -> dict[str, int]:
    """The TensorRT engine path's fixed allocations besides the weights, per GPU."""
    version = version_tuple(s.trtllm_version)
    batch = s.max_batch_size or MAX_BATCH_SIZE
    max_input = s.max_input_len or MAX_INPUT_LEN
    tokens = min(s.max_num_tokens or MAX_NUM_TOKENS, batch * max_input)
    d = 4 if model.facts.dtype == "float32" else 2
    # one layer's activations for `tokens` packed tokens: the same forward as a profile run (vLLM's MLP accounting),
    # with no sampler (the runtime's buffers hold the logits)
    activations = activation_peak(model, tokens, 1, s.tp, TRT_PROFILE_AS_VLLM, d, last_stage=False, pp=s.pp)
    vocab = ceil_div(model.vocab or 0, 64 * s.tp) * 64 * s.tp if model.vocab else 0  # vocabSizePadded
    last = 1.0  # logits live on the last pipeline stage only
    runtime = batch * vocab * RUNTIME_PER_LOGIT() * last
    decoder = batch * vocab * (DECODER_PER_LOGIT if version >= DECODER_SMALLER_SINCE else DECODER_PER_LOGIT_OLD)()
    return {"execution_context": int(activations), "runtime_buffers": int(runtime), "decoder": int(decoder)}


def estimate(model: Model, s: Settings) -> Estimate:
    notes: list[str] = []
    version = version_tuple(s.trtllm_version)
    path = backend(s)
    layers = stage_layers(model.layers, s.pp)
    name, _ = kv_dtype(model, s)
    weights = model.loaded(mtp=False, vision=False) / s.tp
    if s.pp > 1:
        weights = weights / s.pp
    if model.facts.dtype == "float32" and path == "pytorch" and not model.quant_method:
        weights = weights / 2  # the LLM API loads float32 checkpoints in bf16 (torch_dtype auto -> bf16)
    block = tokens_per_block(s)
    fraction = s.free_gpu_memory_fraction or FREE_GPU_MEMORY_FRACTION
    riders: dict[str, int] = {}
    if s.lora is not None:
        from .extras import lora_bytes

        riders["lora"], why = lora_bytes(NAME, s.lora, model, s.tp)  # the PEFT cache is inside the peak
        notes.append(why)
    if s.draft is not None:
        riders["draft"] = int(s.draft.loaded(mtp=False, vision=False) / s.tp / s.pp)  # loaded before profiling
    comm = comm_bytes(s)
    extras: dict = {"free_gpu_memory_fraction": fraction, "tokens_per_block": block, "kv_dtype": name,
                    "backend": path}
    settings: dict = {"backend": (path, s.trtllm_backend is None),
                      "free_gpu_memory_fraction": (fraction, s.free_gpu_memory_fraction is None),
                      "tokens_per_block": (block, s.block_size is None)}
    if path == "pytorch":
        max_tokens = s.max_num_tokens or MAX_NUM_TOKENS
        # The profiling requests are context requests with max_tokens=1: the forward over max_num_tokens dominates;
        # the same forward as vLLM's profile run with its current accounting (persistent MoE workspaces on top, the
        # one-row sampler).
        act = activation_peak(model, max_tokens, 1, s.tp, TRT_PROFILE_AS_VLLM)
        # Memory outside torch enters the peak through `used - torch_allocated` (_util.py): OUTSIDE_TORCH (context
        # included, in the cuda_context component) and NCCL's buffers with TP.
        nt = comm
        # Graphs are captured before the profiling forward, so their pools are inside the peak; sized like vLLM's
        # (one graph holds CUDAGRAPH_PER_LAYER x (layers + CUDAGRAPH_L0)).
        n_layers = sum(1 for layer in layers if layer.kind != "none") or len(layers)
        graphs = int(CUDA_GRAPHS * CUDAGRAPH_PER_LAYER() * (n_layers + CUDAGRAPH_L0()))
        components = {"weights": int(weights), "kv_cache": 0, "activations": int(act), "non_torch": nt,
                      "cuda_graphs": graphs, "cuda_context": int(OUTSIDE_TORCH()), **riders}
        extras["max_num_tokens"] = max_tokens
        settings["max_num_tokens"] = (max_tokens, s.max_num_tokens is None)
        settings["cuda_graph_batch_sizes"] = (CUDA_GRAPHS, True)
        allocator = int(weights + act + sum(riders.values()))
    else:
        buffers = engine_buffers(model, s)
        other = int(ENGINE_OTHER())
        components = {"weights": int(weights), "kv_cache": 0, "activations": buffers["execution_context"],
                      "runtime_buffers": buffers["runtime_buffers"] + buffers["decoder"],
                      "non_torch": comm, "cuda_context": other, **riders}
        extras["runtime_buffers"] = buffers
        extras["max_num_tokens"] = min(s.max_num_tokens or MAX_NUM_TOKENS,
                                       (s.max_batch_size or MAX_BATCH_SIZE) * (s.max_input_len or MAX_INPUT_LEN))
        extras["max_batch_size"] = s.max_batch_size or MAX_BATCH_SIZE
        settings["max_batch_size"] = (s.max_batch_size or MAX_BATCH_SIZE, s.max_batch_size is None)
        settings["max_input_len"] = (s.max_input_len or MAX_INPUT_LEN, s.max_input_len is None)
        settings["max_num_tokens"] = (extras["max_num_tokens"], s.max_num_tokens is None)
        allocator = int(weights + sum(buffers.values()) + sum(riders.values()))
        if s.batch > (s.max_batch_size or MAX_BATCH_SIZE):
            notes.append(f"--batch {s.batch} exceeds the engine's max_batch_size "
                         f"{s.max_batch_size or MAX_BATCH_SIZE}: the scheduler runs at most that many at once")
    peak = sum(components.values())
    fixed_parts = dict(components)  # what the pool is sized after (error bands)
    extras["profile_peak_bytes" if path == "pytorch" else "fixed_bytes"] = int(peak)
    kv = s.batch * kv_per_sequence(model, s, layers, s.context)
    components["kv_cache"] = int(kv)
    settings["kv_cache_dtype"] = (name, s.kv_dtype == "auto")
    extras["min_gpu_bytes"] = int(peak + kv / fraction)  # the pool must be kv, and it is `fraction` of what is free
    if model.weights.get("vision"):
        notes.append("vision tower not counted: TensorRT-LLM runs the multimodal encoder as a separate engine")
    est = Estimate(framework=NAME, components=components, gpus=s.tp * s.pp, notes=notes, extras=extras)
    label = "TensorRT-LLM (PyTorch backend)" if path == "pytorch" else "TensorRT-LLM (TensorRT engine)"
    est.engine = engine_info(label, ".".join(map(str, version)), settings)
    est.allocator_peak_bytes = int(allocator + kv)
    gpu = s.gpu.gpu if s.gpu else None
    if gpu is None:
        est.nvidia_smi_unknown = True  # the pool is a fraction of whatever the GPU leaves free
        return est
    usable, allowed = s.usable_bytes, s.allowed_bytes
    free = usable - peak
    pool = max(0.0, fraction * free)
    held = peak + pool  # the pool is a fraction of what is free after the peak, whatever the model needs
    # The verdict holds at the high end of the error band (hfvram.estimate.bands): the peak at its high end leaves
    # a smaller pool, which must hold the request at its high end, and the process must stay within `allowed`.
    peak_high = peak + bands.margins(NAME, fixed_parts, s.tp)[1]
    pool_low = max(0.0, fraction * (usable - peak_high))
    held_high = peak_high + pool_low
    kv_share = bands.margin(NAME, "kv_cache", kv, s.tp)[1] / kv if kv else 0.0
    pool_safe = pool_low / (1 + kv_share)  # a request at its high end in pool_low <=> the request in pool_safe
    est.fixed_components = fixed_parts
    est.fixed_high_bytes = int(peak_high)
    est.held_high_bytes = int(held_high)
    per_token_all = kv_per_sequence(model, s, layers, block) / block
    extras["kv_bytes_per_token"] = per_token_all
    extras["kv_pool_bytes"] = int(pool)
    extras["kv_tokens"] = int(pool / per_token_all) if per_token_all else None
    per_block = per_token_all * block
    if per_block and len(window_groups(model, s, layers)) == 1:
        extras["num_blocks"] = int(pool // per_block)
    extras["process_bytes"] = int(held)
    est.process_bytes = int(held)
    est.allocator_peak_bytes = int(allocator + pool)
    within = held_high <= allowed
    est.fits = fits_pool(model, s, layers, s.context, pool_safe) and within
    est.headroom_bytes = int(allowed - held)
    high_words = f" ({fmt_bytes(peak_high)} at the high end of its error band)" if peak_high > peak else ""
    if usable - peak_high <= 0:
        est.fit_reason = (f"weights and the {'profiling peak' if path == 'pytorch' else 'engine buffers'} "
                          f"alone take {fmt_bytes(peak)}{high_words}, {fmt_bytes(peak_high - usable)} more than the "
                          f"GPU's {fmt_bytes(usable)}" + (" at the high end" if peak < usable else ""))
    elif not within:
        est.fit_reason = (f"TensorRT-LLM holds {fmt_bytes(held)} (its peak {fmt_bytes(peak)} plus "
                          f"free_gpu_memory_fraction {fraction:g} of the {fmt_bytes(free)} left)"
                          + (f", {fmt_bytes(held_high)} at the high end of its error band" if held <= allowed else "")
                          + f", more than the {fmt_bytes(allowed)} allowed{allowed_note(s)}")
    elif not est.fits:
        shares = len(window_groups(model, s, layers))
        if fits_pool(model, s, layers, s.context, pool):
            est.fit_reason = (f"the KV pool ({fmt_bytes(pool)} = {fraction:g} x the {fmt_bytes(free)} left after "
                              f"{fmt_bytes(peak)}) holds {fmt_bytes(kv)}, but at the high end of the error band the "
                              f"peak is {fmt_bytes(peak_high)}, the pool {fmt_bytes(pool_low)} and the request "
                              f"{fmt_bytes(kv * (1 + kv_share))}"
                              + (f" in {shares} equal shares, one per window size" if shares > 1 else ""))
        else:
            est.fit_reason = (f"the KV pool ({fmt_bytes(pool)} = {fraction:g} x the {fmt_bytes(free)} left "
                              f"after {fmt_bytes(peak)}) cannot hold {fmt_bytes(kv)}"
                              + (f" in {shares} equal shares, one per window size" if shares > 1 else
                                 f": {fmt_bytes(kv - pool)} short"))
    ceiling = max(s.context, model.max_position or s.context)
    est.max_context = largest_with_slack(lambda c: pool_slack(model, s, layers, c, pool_safe), 1, ceiling) \
        if pool_safe > 0 and within else None
    return est


def fraction_within(s: Settings, peak: float, allowed: int) -> float | None:
    """The largest --free-gpu-memory-fraction (2 decimals) whose process stays within `allowed`, or None."""
    free = (s.usable_bytes or 0) - peak
    if free <= 0 or allowed <= peak:
        return None
    return math.floor((allowed - peak) / free * 100) / 100 or None
