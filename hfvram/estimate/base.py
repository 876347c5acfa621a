"""What every framework estimator shares: the settings, the result type, and the per-GPU view of the KV cache.

An estimator is a small policy: given a `Model` (the introspected facts, projected to the weight format the engine
will hold) and `Settings`, it returns an `Estimate` with the memory of the most loaded GPU, component by
component. Fit, headroom and the largest context that fits are worked out here, the same way for every engine.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import field, replace
from typing import Callable, Iterator

from ..gpus import GPUChoice
from ..record import record
from ..specs import MLA, FullAttention, LayerSpec, LinearAttention, Mamba
from ..units import GiB, MiB, median  # noqa: F401 - estimators import GiB and MiB from here
from .gguf import KV_CACHE_TYPES as GGML_KV_BYTES

# CUDA context of a process on recent drivers with lazy module loading (CUDA >= 11.7): "~300-400 MiB"
# (ptrblck in pytorch/pytorch#107667 and #109888; #20532 reports 300-400 MB). We take the top of that range. What
# the estimators count when the GPU's size is not known (no --gpu, or a card without an SM count): with one,
# `cuda_context_bytes` models it from the card.
CUDA_CONTEXT_BYTES = 400 * MiB

# ExLlamaV2's quantised caches (exllamav2/cache.py ExLlamaV2Cache_Q8/_Q6/_Q4): bytes per element with one fp16 scale
# per 32 elements; Q8 stores K and V in 8 bits, Q4 in 4, Q6 K in 8 and V in 4 bits (so 6 on average).
EXL2_KV_BYTES = {"q8": 1 + 2 / 32, "q6": (1 + 0.5) / 2 + 2 / 32, "q4": 0.5 + 2 / 32}

# -- fitted constants ---------------------------------------------------------------------------------------------
#
# A number read off published measurements (rather than from an engine's code) is a `Fitted`: it keeps each
# observation with the source it came from, and its value is the median of those observations. `make accuracy`
# scores every case with the constants refitted *without* that case's source (`holding_out`), so no figure counts
# as held out for a constant that was fitted to it; when a constant has no observation left it falls back to its
# `prior` (a value derived from an engine's code, or a neighbouring constant, itself refitted the same way).

_HELD_OUT: contextvars.ContextVar[str | None] = contextvars.ContextVar("hfvram_held_out", default=None)
_USED: contextvars.ContextVar[set | None] = contextvars.ContextVar("hfvram_fitted_used", default=None)
FITTED: dict[str, "Fitted"] = {}


@record(frozen=True)
class Fitted:
    """A constant fitted on published logs: the median over sources of what each one shows."""

    name: str
    observations: tuple[tuple[str, float], ...]  # (source key as hfvram.accuracy.source_key spells it, value)
    prior: "float | str | None" = None  # a number, or the name of another fitted constant
    unit: str = "bytes"
    note: str = ""

    def __call__(self, _seen: frozenset = frozenset()) -> float:
        held = _HELD_OUT.get()
        used = _USED.get()
        if used is not None:
            used.add(self.name)
        # the median over sources (each source's own median first), so that one log with many runs counts once
        by_source: dict[str, list[float]] = {}
        for src, v in self.observations:
            if src != held:
                by_source.setdefault(src, []).append(v)
        if by_source:
            return float(median([median(v) for v in by_source.values()]))
        if isinstance(self.prior, str):
            if self.prior in _seen or self.prior not in FITTED:
                raise ValueError(f"fitted constant {self.name}: prior {self.prior!r} is missing or circular")
            return FITTED[self.prior](_seen | {self.name})
        if self.prior is None:
            raise ValueError(f"fitted constant {self.name} has no observation outside {held!r} and no prior")
        return float(self.prior)

    @property
    def sources(self) -> list[str]:
        return sorted({src for src, _ in self.observations})

    @property
    def in_sample(self) -> float:
        """The value with every observation (what estimates use)."""
        token = _HELD_OUT.set(None)
        try:
            return self()
        finally:
            _HELD_OUT.reset(token)


def fitted(name: str, observations, prior: "float | str | None" = None, unit: str = "bytes",
           note: str = "") -> Fitted:
    """Register a fitted constant (hfvram.accuracy lists them with their sources)."""
    const = Fitted(name, tuple((str(s), float(v)) for s, v in observations), prior, unit, note)
    FITTED[name] = const
    return const


# -- the CUDA context, by GPU -------------------------------------------------------------------------------------
# A context reserves local memory for every thread the GPU can hold: "the local memory allocation is context wide
# and is calculated as MAX_THREADS_PER_SM x SMs x LOCAL_MEM_PER_THREAD" (NVIDIA staff, forums.developer.nvidia.com
# /t/local-memory-management/289339/9), so it grows with the card, not with the model. Bare contexts published for
# CUDA 12+ with lazy loading (nothing but the context; validation/NOTES-cuda-context.md), each divided by the card's
# SMs x resident threads per SM (hfvram.gpus.GPU.resident_threads): RTX 4060 Ti 107 MiB and RTX PRO 6000 Blackwell
# 555 MiB (ggml-org/llama.cpp#23604: 2,148 and 2,015 bytes a thread), RTX 3090 256 MiB (torch 2.7.1, invoke-ai/
# InvokeAI#9413: 2,131), RTX 6000 Ada 426 MiB (torch 2.10, unslothai/unsloth-zoo#1053: 2,048), B200 612 MiB (torch,
# unslothai/unsloth#8669: 2,117); and our H200, 518 MiB through the driver API alone (cuInit + the primary context,
# no runtime, no kernel; tools/measure_context.py, validation/own-h200/context.json: 2,009). Six cards from 107 to 612
# MiB within 7% of one figure a thread; held out, the other four sources put the H200 at 541 MiB (+4.5%). The same
# run shows what the bytes are: raising the per-thread stack limit (cuCtxSetLimit, default 1 KiB) to 2 and then 4
# KiB added exactly 132 x 2048 x 1 KiB and x 2 KiB, so the context is local memory for every resident thread,
# ~1 KiB of stack and ~1 KiB besides.
H200_BARE_CONTEXT_BYTES = 543_162_368  # context.json steps.driver.process_bare_context (NVML, per process)
CONTEXT_BYTES_PER_THREAD = fitted(
    "cuda.context.bytes_per_resident_thread",
    [("ggml-org/llama.cpp#23604", 107 * MiB / (34 * 1536)), ("ggml-org/llama.cpp#23604", 555 * MiB / (188 * 1536)),
     ("invoke-ai/InvokeAI#9413", 256 * MiB / (82 * 1536)), ("unslothai/unsloth-zoo#1053", 426 * MiB / (142 * 1536)),
     ("unslothai/unsloth#8669", 612 * MiB / (148 * 2048)), ("hfvram", H200_BARE_CONTEXT_BYTES / (132 * 2048))],
    unit="bytes per resident thread", note="bare contexts on six cards (validation/NOTES-cuda-context.md)")
# Kernel images a torch process loads on top (lazy loading loads each kernel when first used): our H200 runs of
# transformers' generate() (validation/cases-own-transformers-nvidia-h200.jsonl, torch 2.11, CUDA 13.0) hold 678-788
# MiB outside torch's allocator (NVML's per-process total - peak reserved), median 706 MiB, of which the bare context
# measured on the same card is 518 MiB: 188 MiB of kernels. Step by step in fresh processes (context.json, steps.torch):
# torch.cuda.init() adds nothing to the bare context, the first elementwise kernel 94 MiB, cuBLAS's first matmul 66
# MiB, scaled_dot_product_attention 8 MiB; one generate() 168 MiB in all; with every kernel of torch loaded up front
# (CUDA_MODULE_LOADING=EAGER) 732 MiB, the ceiling. One source, one GPU: checked on ExLlamaV2's totals (torch too) on
# RTX 3090 and A100 in `make accuracy`. Without it (held out), no kernel term.
H200_OUTSIDE_ALLOCATOR_BYTES = 706 * MiB  # the median over the 169 total_used rows (quote: total_used - peak_reserved)
TORCH_KERNEL_BYTES = fitted(
    "cuda.context.torch_kernels",
    [("hfvram", H200_OUTSIDE_ALLOCATOR_BYTES - H200_BARE_CONTEXT_BYTES)], prior=0,
    note="H200, torch 2.11: outside the allocator less the bare context, both measured")


def cuda_context_bytes(s: "Settings", torch: bool = False) -> int:
    """What a process holds on the GPU outside its allocators: the context (local memory for every resident thread,
    CONTEXT_BYTES_PER_THREAD) and, for an engine built on torch (`torch`), the kernels it loads (TORCH_KERNEL_BYTES).
    CUDA_CONTEXT_BYTES when the GPU is not named or its SM count is not recorded."""
    threads = s.gpu.gpu.resident_threads if s.gpu is not None else None
    if not threads:
        return CUDA_CONTEXT_BYTES
    return int(threads * CONTEXT_BYTES_PER_THREAD() + (TORCH_KERNEL_BYTES() if torch else 0))


@contextlib.contextmanager
def holding_out(source: str | None) -> Iterator[set]:
    """Evaluate with every fitted constant refitted without `source`; yields the names of the constants used."""
    used: set = set()
    t1, t2 = _HELD_OUT.set(source), _USED.set(used)
    try:
        yield used
    finally:
        _HELD_OUT.reset(t1)
        _USED.reset(t2)


# --kv-dtype vocabulary -> bytes per element. fp8/int8 are one byte (vLLM fp8_e4m3/e5m2, TRT-LLM FP8/INT8 KV);
# q8_0 ... iq4_nl are llama.cpp's block types (ggml type traits, hfvram.estimate.gguf.KV_CACHE_TYPES); q8/q6/q4
# ExLlamaV2's caches.
KV_BYTES = {
    "fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0,
    **{name: b for name, b in GGML_KV_BYTES.items() if name not in ("f32", "f16", "bf16")},
    **EXL2_KV_BYTES,
}


@record(frozen=True)
class Settings:
    """Everything a user can set. `None` means "this engine's default" (each estimator documents it)."""

    context: int = 4096
    batch: int = 1
    kv_dtype: str = "auto"
    tp: int = 1
    pp: int = 1
    gpu: GPUChoice | None = None
    kv_paging: str | None = None  # contiguous | paged | aggressive
    # What the deployment may use on each GPU: the smaller of the GPU and --max-memory, less --headroom. Every fit
    # verdict, largest context and suggestion is worked out against this (`allowed_bytes`).
    limit_bytes: int | None = None
    headroom: float = 0.0
    # vLLM
    gpu_memory_utilization: float | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    vllm_version: str | None = None
    vllm_server: bool = True  # `vllm serve` defaults (False: the offline LLM class)
    block_size: int | None = None
    max_loras: int | None = None
    dtype: str | None = None  # vLLM --dtype (auto: the checkpoint's; float32 checkpoints run in bf16)
    pp_rank: int | None = None  # one pipeline stage (default: the most loaded)
    # TensorRT-LLM
    free_gpu_memory_fraction: float | None = None
    max_num_tokens: int | None = None
    trtllm_backend: str | None = None  # pytorch (LLM API default since 1.0) | tensorrt (trtllm-build engines)
    trtllm_version: str | None = None
    max_batch_size: int | None = None  # TensorRT-LLM build/runtime limit on concurrent sequences
    max_seq_len: int | None = None  # TensorRT-LLM build limit on prompt + generated tokens
    # llama.cpp (and its Ollama / LM Studio profiles)
    n_ubatch: int | None = None
    flash_attn: bool | None = None
    gpu_layers: int | None = None  # -1/None: all
    n_parallel: int | None = None
    llamacpp_version: str | None = None
    cache_type_k: str | None = None  # None: from kv_dtype
    cache_type_v: str | None = None
    no_kv_offload: bool = False
    kv_unified: bool | None = None
    n_cpu_moe: int | None = None  # routed experts of the first N layers in host RAM (>= the layer count: all)
    # Host RAM the deployment may use (bytes): --ram, or what --gpu auto detects. None: no host verdict.
    ram: int | None = None
    # True when --context was not given (an engine profile with a default context of its own may use that)
    context_default: bool = False
    # ExLlamaV2 and TensorRT-LLM engine builds
    max_input_len: int | None = None
    # transformers
    transformers_version: str | None = None
    prompt_tokens: int | None = None  # prefill length; default: the whole context
    attn_implementation: str = "sdpa"
    cache_implementation: str = "dynamic"
    # riders
    lora: object | None = None  # hfvram.estimate.extras.LoRA
    draft: object | None = None  # hfvram.estimate.model.Model of the draft
    num_speculative_tokens: int | None = None

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def usable_bytes(self) -> int | None:
        """What CUDA reports on the GPU (engines that size from the device, like vLLM, start here)."""
        return self.gpu.gpu.usable_bytes if self.gpu is not None else None

    @property
    def allowed_bytes(self) -> int | None:
        """Memory the deployment may hold on each GPU: min(GPU, --max-memory) x (1 - --headroom)."""
        if self.gpu is None:
            return None
        cap = self.gpu.gpu.usable_bytes
        if self.limit_bytes is not None:
            cap = min(cap, self.limit_bytes)
        return int(cap * (1.0 - self.headroom))

    def with_context(self, context: int) -> "Settings":
        return replace(self, context=context, context_default=False, prompt_tokens=None if self.prompt_tokens is None
                       else min(self.prompt_tokens, context))


@record(frozen=True)
class Suggestion:
    """A change that makes the deployment fit, as words and as the settings to re-run with (`analyze` keywords)."""

    text: str
    settings: dict

    def to_dict(self) -> dict:
        return {"text": self.text, "settings": dict(self.settings)}


@record
class Estimate:
    """One engine's memory for one model at one setting, by component, and whether it fits."""

    framework: str
    components: dict[str, int]  # bytes on the most loaded GPU
    gpus: int = 1
    total_bytes: int = 0  # over all GPUs
    fits: bool | None = None
    headroom_bytes: int | None = None  # allowed - what the process holds (negative: short by that much)
    max_context: int | None = None
    notes: list[str] = field(default_factory=list)
    extras: dict = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)
    # The engine and release whose policy was applied, and the defaults it implies ({"gpu_memory_utilization": 0.92})
    engine: dict = field(default_factory=dict)
    supported: bool = True
    unsupported: list[str] = field(default_factory=list)  # why the engine cannot run this (when not supported)
    fit_reason: str | None = None  # why it does not fit, in words (when fits is False)
    # What the process holds on the GPU when that is not what it needs: vLLM takes its whole budget, TensorRT-LLM a
    # fraction of what is free. None: the process holds per_gpu_bytes.
    process_bytes: int | None = None
    budget_bytes: int | None = None  # the engine's own budget when it has one (vLLM: utilization x memory)
    # What users compare with. The allocator peak (torch.cuda.max_memory_allocated, or the engine's own buffers),
    # and the process's memory as nvidia-smi shows it (the allocator's reserve, the CUDA context, NCCL, graphs).
    # None: worked out from the components (allocator: without context, non-torch, graphs and slack; nvidia-smi:
    # what the process holds). An engine sets nvidia_smi_unknown when it depends on a GPU that was not given.
    allocator_peak_bytes: int | None = None
    nvidia_smi_bytes: int | None = None
    nvidia_smi_unknown: bool = False
    # The error band of per_gpu_bytes (hfvram.estimate.bands: the held-out error of each component). Verdicts hold
    # at the high end: fixed_components are what an engine sizes its KV pool after (vLLM: the parts inside its
    # budget; TensorRT-LLM: its peak), fixed_high_bytes their sum at the high end, held_high_bytes what the process
    # holds at the high end (None: high_bytes).
    low_bytes: int | None = None
    high_bytes: int | None = None
    fixed_components: dict | None = None
    fixed_high_bytes: int | None = None
    held_high_bytes: int | None = None

    @property
    def per_gpu_bytes(self) -> int:
        return int(sum(self.components.values()))

    @property
    def held_bytes(self) -> int:
        """What the process holds on the most loaded GPU (what must fit in the allowed memory)."""
        return int(self.per_gpu_bytes if self.process_bytes is None else self.process_bytes)

    @property
    def held_high(self) -> int:
        """What the process holds at the high end of the error band (what a verdict must fit)."""
        if self.held_high_bytes is not None:
            return int(self.held_high_bytes)
        if self.process_bytes is None and self.high_bytes is not None:
            return int(self.high_bytes)
        return self.held_bytes

    @property
    def allocator_peak(self) -> int:
        if self.allocator_peak_bytes is not None:
            return int(self.allocator_peak_bytes)
        outside = ("cuda_context", "non_torch", "cuda_graphs", "allocator_slack")
        return int(sum(v for k, v in self.components.items() if k not in outside))

    @property
    def nvidia_smi(self) -> int | None:
        if self.nvidia_smi_unknown:
            return None
        return int(self.held_bytes if self.nvidia_smi_bytes is None else self.nvidia_smi_bytes)

    def to_dict(self) -> dict:
        return {
            "supported": self.supported,
            "unsupported_reasons": self.unsupported,
            "engine": self.engine,
            "total_bytes": int(self.total_bytes or self.per_gpu_bytes * self.gpus),
            "per_gpu_bytes": self.per_gpu_bytes,
            "low_bytes": self.low_bytes if self.supported else None,
            "high_bytes": self.high_bytes if self.supported else None,
            "process_bytes": self.held_bytes,
            "budget_bytes": self.budget_bytes,
            "allocator_peak_bytes": self.allocator_peak if self.supported else None,
            "nvidia_smi_bytes": self.nvidia_smi if self.supported else None,
            "gpus": self.gpus,
            "components": {k: int(v) for k, v in self.components.items()},
            "fits": self.fits,
            "fit_reason": self.fit_reason,
            "headroom_bytes": self.headroom_bytes,
            "max_context": self.max_context,
            "notes": self.notes,
            "suggestions": [s.to_dict() for s in self.suggestions],
            **self.extras,
        }


# -- KV per GPU ---------------------------------------------------------------------------------------------------

def kv_heads_per_rank(heads: int, tp: int, replicate: bool = True) -> float:
    """vLLM: max(1, heads // tp), K/V heads are replicated when tp > heads (config/model.py
    get_num_kv_heads). TRT-LLM divides exactly (replicate=False)."""
    if tp <= 1:
        return heads
    return max(1, heads // tp) if replicate else heads / tp


def per_token_per_gpu(layer: LayerSpec, kv_bytes: float, tp: int, replicate: bool = True) -> float:
    """Bytes one token adds to `layer` on one tensor-parallel rank."""
    if isinstance(layer, MLA):
        return layer.per_token_bytes(kv_bytes)  # the latent is not split across ranks (vLLM max_tp_shards=1)
    if isinstance(layer, FullAttention):
        heads = kv_heads_per_rank(layer.num_kv_heads, tp, replicate)
        return heads * (layer.head_dim + layer.v_dim) * kv_bytes
    return 0.0


def state_per_gpu(layer: LayerSpec, state_bytes: float, tp: int) -> float:
    """Recurrent state per sequence on one rank (Mamba/GDN states are split by heads, vLLM mamba_utils)."""
    if isinstance(layer, (Mamba, LinearAttention)):
        return layer.state_bytes(state_bytes) / max(1, tp)
    return 0.0


def stage_bounds(n: int, pp: int, rank: int) -> tuple[int, int]:
    """Layers [start, end) of pipeline stage `rank`: vLLM distributed/utils.py get_pp_indices splits evenly and
    gives the remainder to the stages before the last, one each, from the second-last backwards."""
    sizes = [n // pp] * pp
    for i in range(2, n % pp + 2):
        sizes[-i] += 1
    start = sum(sizes[:rank])
    return start, start + sizes[rank]


def stage_layers(layers: list[LayerSpec], pp: int, rank: int | None = None) -> list[LayerSpec]:
    """The layers of pipeline stage `rank` (default: the largest stage)."""
    if pp <= 1:
        return list(layers)
    if rank is None:
        sizes = [stage_bounds(len(layers), pp, r) for r in range(pp)]
        rank = max(range(pp), key=lambda r: sizes[r][1] - sizes[r][0])
    start, end = stage_bounds(len(layers), pp, rank)
    return list(layers[start:end])


# -- fit and max context ------------------------------------------------------------------------------------------

def fit_allocating(est: "Estimate", s: Settings, model, need_at: Callable[[int], "float | dict"], extra: int = 0,
                   what: str = "", search: bool = True) -> None:
    """The verdict for engines that allocate what they need (transformers, llama.cpp, ExLlamaV2): the process holds
    `need_at(context)` (+ `extra` that must be free while loading) and it must be within the allowed memory at the
    high end of its error band (hfvram.estimate.bands), so that a verdict errs on the safe side. Sets fits,
    headroom (against the estimate itself), the largest context that fits (up to the model's maximum) and the
    reason in words (`search=False`: the verdict only, no largest context)."""
    from . import bands

    allowed = s.allowed_bytes
    if allowed is None:
        return
    base = dict(est.components)
    at = sum(base.values())

    def at_context(c: int) -> tuple[float, float]:
        """(need, its high end) at context `c`, `extra` included. `need_at` gives the components there (each with
        its own band) or their sum, whose change from the asked context is then taken as KV cache: an activation
        that grows with the prompt (a reference scan, eager scores) would otherwise keep its size at the asked
        context, and its band, while the KV term went negative and lost its band."""
        got = need_at(c)
        comps = got if isinstance(got, dict) else {**base, "kv_cache": base.get("kv_cache", 0) + got - at}
        return sum(comps.values()) + extra, bands.high(est.framework, comps, s.tp) + extra

    need, high = at_context(s.context)
    est.fits = high <= allowed
    est.headroom_bytes = int(allowed - need)
    est.held_high_bytes = int(high - extra)
    if not est.fits:
        est.fit_reason = shortfall_reason(need, high, allowed, s, what)
    if search:
        est.max_context = largest_with_slack(lambda c: allowed - at_context(c)[1], 1, context_ceiling(model, s))


def shortfall_reason(need: float, high: float, allowed: float, s: Settings, what: str = "", kept: float = 0) -> str:
    """Why an allocating engine does not fit, in words: `need` per GPU (`what` says what it adds) and its `high` end,
    each plus `kept` (memory the engine leaves free besides), against the allowed memory; when the estimate itself
    fits, the shortfall is the high end's."""
    if need + kept <= allowed:
        return (f"needs {_gib(need)}{what} per GPU, {_gib(high)} at the high end of its error band, {_gib(allowed)} "
                f"allowed{allowed_note(s)}: {_gib(high + kept - allowed)} short at the high end")
    return (f"needs {_gib(need)}{what} per GPU, {_gib(allowed)} allowed{allowed_note(s)}: "
            f"{_gib(need + kept - allowed)} short")


def engine_info(label: str, version: str, settings: dict[str, tuple]) -> dict:
    """What an estimate assumed: the engine, its release, and each setting's value with whether it was the
    engine's default (True) or given (False)."""
    return {"label": label, "version": version,
            "settings": {k: v for k, (v, _) in settings.items()},
            "defaults": [k for k, (_, default) in settings.items() if default]}


def context_ceiling(model, s: Settings) -> int:
    """The largest context worth searching: the model's maximum (or the asked context when it is larger)."""
    return max(s.context, model.max_position or s.context)


def allowed_note(s: Settings) -> str:
    """How the allowed memory was derived, when it is not simply the GPU: `(40.00 GiB cap, 10% headroom)`."""
    parts = []
    if s.limit_bytes is not None and s.gpu is not None and s.limit_bytes < s.gpu.gpu.usable_bytes:
        parts.append(f"--max-memory {_gib(s.limit_bytes)}")
    if s.headroom:
        parts.append(f"{100 * s.headroom:g}% headroom")
    return f" ({', '.join(parts)})" if parts else ""


def _gib(n: float) -> str:
    from ..units import fmt_bytes

    return fmt_bytes(n)


def largest_fitting(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    """Largest integer in [low, high] for which `fits` holds (monotone), or None when even `low` does not fit."""
    if not fits(low):
        return None
    if fits(high):
        return high
    while high - low > 1:
        mid = (low + high) // 2
        if fits(mid):
            low = mid
        else:
            high = mid
    return low


# Below two of the largest pages an engine allocates the context in (llama.cpp pads n_ctx to 256, llama-context.cpp
# llama_n_ctx_padding; ExLlamaV2's cache pages are 256 tokens), the slack is a staircase, not a line: bisect there.
_STEP_WIDTH = 512


def largest_with_slack(slack: Callable[[int], float], low: int, high: int) -> int | None:
    """Largest integer in [low, high] whose `slack` (allowed bytes minus what it needs: >= 0 fits; non-increasing)
    is >= 0, or None when even `low`'s is negative: what `largest_fitting(lambda c: slack(c) >= 0, ...)` answers,
    in fewer trials. Memory grows about linearly with the context (the KV cache), so each trial is where the line
    through the two ends of the bracket crosses zero. A slack in steps (pages, padding) is bisected in brackets under
    _STEP_WIDTH, and a guess that does not halve the bracket is followed by a bisection, so it takes at most about
    twice bisection's trials. Each trial of an allocating engine is a whole estimate: the searches were ~60% of a
    scan's estimating (cProfile, 142 fixture models on one GPU); on the engines' own slack this takes 27% fewer
    trials than bisection (every fixture, 4 GPUs, 2 contexts: the same answers)."""
    s_low = slack(low)
    if s_low < 0:
        return None
    s_high = slack(high)
    if s_high >= 0:
        return high
    bisect = False
    while high - low > 1:
        width = high - low
        if bisect or width <= _STEP_WIDTH:
            mid = (low + high) // 2
        else:  # where the line through the bracket's ends crosses zero (s_low >= 0 > s_high)
            mid = min(max(low + int(s_low * width / (s_low - s_high)), low + 1), high - 1)
        s_mid = slack(mid)
        if s_mid >= 0:
            low, s_low = mid, s_mid
        else:
            high, s_high = mid, s_mid
        bisect = not bisect and 2 * (high - low) > width  # a guess that did not halve the bracket: bisect next
    return low


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# Speculative tokens proposed per step when a draft model is given and --num-speculative-tokens is not:
# vLLM's examples use num_speculative_tokens=5 (docs/features/spec_decode.md; SpeculativeConfig has no default);
# TensorRT-LLM's DraftTargetDecodingConfig needs max_draft_len, examples/llm-api/quickstart_advanced.py defaults
# --spec_decode_max_draft_len to 1; llama.cpp --draft-max 16 (common/common.h); transformers assisted generation
# num_assistant_tokens=20 (generation/configuration_utils.py); ExLlamaV2DynamicGenerator num_draft_tokens=4
# (exllamav2/generator/dynamic.py).
SPEC_TOKENS = {"vllm": 5, "trtllm": 1, "llamacpp": 16, "transformers": 20, "exllamav2": 4}


def draft_estimate(name: str, s: Settings) -> "Estimate | None":
    """The draft model through the same engine policy, alone (no GPU verdict, no riders)."""
    if s.draft is None:
        return None
    from . import module

    return module(name).estimate(s.draft, replace(s, gpu=None, draft=None, lora=None))


def spec_tokens(name: str, s: Settings) -> int:
    return 0 if s.draft is None else (s.num_speculative_tokens or SPEC_TOKENS[name])


def rider_bytes(name: str, model, s: Settings) -> dict[str, int]:
    """LoRA and draft components for the simple engines (weights + cache of the draft as that engine holds it)."""
    out: dict[str, int] = {}
    if s.lora is not None:
        from .extras import lora_bytes

        out["lora"], _ = lora_bytes(name, s.lora, model, s.tp)
    d = draft_estimate(name, s)
    if d is not None:
        keep = ("weights", "kv_cache", "compute", "scratch")
        out["draft"] = int(sum(v for k, v in d.components.items() if k in keep))
    return out
