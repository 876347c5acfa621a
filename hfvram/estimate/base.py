"""What every framework estimator shares: the settings, the result type, and the per-GPU view of the KV cache.

An estimator is a small policy: given a `Model` (the introspected facts, projected to the weight format the engine
will hold) and `Settings`, it returns an `Estimate` with the memory of the most loaded GPU, component by
component. Fit, headroom and the largest context that fits are worked out here, the same way for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from ..gpus import GPUChoice
from ..specs import MLA, FullAttention, LayerSpec, LinearAttention, Mamba
from ..units import GiB, MiB  # noqa: F401 - estimators import them from here
from .gguf import KV_CACHE_TYPES as GGML_KV_BYTES

# CUDA context of a process on recent drivers with lazy module loading (CUDA >= 11.7): "~300-400 MiB"
# (ptrblck in pytorch/pytorch#107667 and #109888; #20532 reports 300-400 MB). We take the top of that range.
CUDA_CONTEXT_BYTES = 400 * MiB

# ExLlamaV2's quantised caches (exllamav2/cache.py ExLlamaV2Cache_Q8/_Q6/_Q4): bytes per element with one fp16 scale
# per 32 elements; Q8 stores K and V in 8 bits, Q4 in 4, Q6 K in 8 and V in 4 bits (so 6 on average).
EXL2_KV_BYTES = {"q8": 1 + 2 / 32, "q6": (1 + 0.5) / 2 + 2 / 32, "q4": 0.5 + 2 / 32}

# --kv-dtype vocabulary -> bytes per element. fp8/int8 are one byte (vLLM fp8_e4m3/e5m2, TRT-LLM FP8/INT8 KV);
# q8_0 ... iq4_nl are llama.cpp's block types (ggml type traits, hfvram.estimate.gguf.KV_CACHE_TYPES); q8/q6/q4
# ExLlamaV2's caches.
KV_BYTES = {
    "fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0,
    **{name: b for name, b in GGML_KV_BYTES.items() if name not in ("f32", "f16", "bf16")},
    **EXL2_KV_BYTES,
}


@dataclass(frozen=True)
class Settings:
    """Everything a user can set. `None` means "this engine's default" (each estimator documents it)."""

    context: int = 4096
    batch: int = 1
    kv_dtype: str = "auto"
    tp: int = 1
    pp: int = 1
    gpu: GPUChoice | None = None
    kv_paging: str | None = None  # contiguous | paged | aggressive
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
    # llama.cpp
    n_ubatch: int | None = None
    flash_attn: bool | None = None
    gpu_layers: int | None = None  # -1/None: all
    n_parallel: int | None = None
    llamacpp_version: str | None = None
    # ExLlamaV2
    max_input_len: int | None = None
    # transformers
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

    def with_context(self, context: int) -> "Settings":
        return replace(self, context=context, prompt_tokens=None if self.prompt_tokens is None
                       else min(self.prompt_tokens, context))


@dataclass
class Estimate:
    framework: str
    components: dict[str, int]  # bytes on the most loaded GPU
    gpus: int = 1
    total_bytes: int = 0  # over all GPUs
    fits: bool | None = None
    headroom_bytes: int | None = None
    max_context: int | None = None
    notes: list[str] = field(default_factory=list)
    extras: dict = field(default_factory=dict)
    suggestions: list[str] = field(default_factory=list)

    @property
    def per_gpu_bytes(self) -> int:
        return int(sum(self.components.values()))

    def to_dict(self) -> dict:
        return {
            "total_bytes": int(self.total_bytes or self.per_gpu_bytes * self.gpus),
            "per_gpu_bytes": self.per_gpu_bytes,
            "gpus": self.gpus,
            "components": {k: int(v) for k, v in self.components.items()},
            "fits": self.fits,
            "headroom_bytes": self.headroom_bytes,
            "max_context": self.max_context,
            "notes": self.notes,
            "suggestions": self.suggestions,
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
