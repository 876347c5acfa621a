"""llama.cpp (GGUF), and Ollama and LM Studio as profiles of it: what each GPU and the host hold.

Policy: the llama.cpp vendored by llama-cpp-python 0.3.36 (ggml-org/llama.cpp@0c1e57098); file references below are
to that tree.

- Context (src/llama-context.cpp): n_ctx = GGML_PAD(n_ctx, 256); with a unified cache (`--kv-unified`) the
  n_seq_max sequences share one stream of n_ctx cells, otherwise each of them has its own stream of
  n_ctx_seq = GGML_PAD(n_ctx / n_seq_max, 256) cells. hfvram's `--context` is what each sequence holds and
  `--batch` how many hold it at once, so llama.cpp is run with `-np batch -c batch x context`; `--parallel N`
  gives more slots than sequences (each slot keeps its own stream unless unified).
- KV per layer (src/llama-kv-cache.cpp): K rows of n_embd_k_gqa in `--cache-type-k`, V rows of n_embd_v_gqa in
  `--cache-type-v` (f16 default, common/common.h), x kv_size x n_stream; SWA and chunked layers
  (src/llama-kv-cache-iswa.cpp) keep GGML_PAD(min(n_ctx_seq, n_swa x (unified ? n_seq_max : 1) + n_ubatch), 256)
  cells per stream; MLA caches K only (the 576-element latent); recurrent layers an f32 state per sequence. Each
  layer's cache sits with its layer (`model.dev_layer(il)`), in host RAM with `--no-kv-offload`.
- Weights (src/llama-model.cpp load_tensors): `token_embd` always in host RAM (the input layer is never
  offloaded); `-ngl N` puts the output layer and the last N - 1 repeating layers on the GPU (i_gpu_start =
  n_layer + 1 - N); `--n-cpu-moe N` keeps the routed experts (`\\.ffn_(up|down|gate|gate_up)_(ch|)exps`,
  common/common.h LLM_FFN_EXPS_REGEX) of the first N layers in host RAM, `--cpu-moe` all of them (`-ot exps=CPU`).
- Compute buffer: the largest live set of the reserved worst-case graph (n_ubatch tokens, every KV cell). A weight
  left in host RAM is still multiplied on the GPU for batches of 32 tokens or more (ggml-backend.cpp
  `op_offload`, ggml-cuda.cu GGML_OP_OFFLOAD_MIN_BATCH = 32): the scheduler copies it into the compute buffer, a
  full-size copy of each such input of a split (only the used experts are transferred), so one layer's
  host-resident weights join the FFN stage.
- Host RAM: token embeddings, the layers and experts left on the CPU (with mmap, pages of the file), their KV, the
  output logits (n_vocab x n_seq f32) and the host compute buffer: n_ubatch x (n_embd + the KV cells attended) x 4
  bytes (input embeddings and the KQ masks; 7.00, 71.01, 76.01 and 263.15 MiB in four logs of
  validation/cases-community-b.jsonl, each reproduced exactly), or the attention stage when attention runs there.
"""

from __future__ import annotations

import math
from dataclasses import field, replace
from typing import Callable

from ..lazyre import lazy
from ..record import record
from ..specs import MLA, ChunkedLocal, FullAttention, LayerSpec, SlidingWindow
from ..units import GiB, MiB
from .base import Estimate, Settings, context_ceiling, cuda_context_bytes, engine_info, largest_fitting, \
    largest_with_slack, rider_bytes, state_per_gpu
from .gguf import KV_CACHE_TYPES  # cache element sizes of --cache-type-k/-v (ggml type traits)
from .model import Model

NAME = "llamacpp"
# The llama.cpp whose rules these are: the commit vendored by llama-cpp-python 0.3.36 (hfvram.estimate.gguf).
LLAMA_CPP_VERSION = "0c1e570 (llama-cpp-python 0.3.36)"

N_CTX_PAD = 256  # llama-context.cpp: n_ctx = GGML_PAD(n_ctx, 256)
N_UBATCH = 512  # common/common.h n_ubatch default
# Flash attention: `-fa auto` (common/common.h flash_attn_type default) turns it on where the backend supports it
# (llama-context.cpp resolves the probe: CUDA, Metal, ROCm, Vulkan).
FLASH_ATTN_DEFAULT = True
OP_OFFLOAD_MIN_BATCH = 32  # ggml-cuda.cu: GGML_OP_OFFLOAD_MIN_BATCH default
_FROM_KV_DTYPE = {"auto": "f16", "fp16": "f16", "bf16": "bf16", "fp32": "f32", "fp8": "q8_0", "int8": "q8_0",
                  "q8_0": "q8_0", "q4_0": "q4_0", "q8": "q8_0", "q4": "q4_0", "q6": "q8_0"}
CACHE_TYPES = tuple(KV_CACHE_TYPES)  # common/arg.cpp kv_cache_types
F32 = 4  # ggml compute tensors are f32
_EXPS = lazy(r"\.ffn_(up|down|gate|gate_up)_(ch|)exps")  # common/common.h LLM_FFN_EXPS_REGEX


def pad(n: int, to: int = N_CTX_PAD) -> int:
    return -(-n // to) * to


def cache_type(s: Settings) -> str:
    """--kv-dtype as a llama.cpp cache type (both K and V unless --cache-type-k/-v say otherwise)."""
    return _FROM_KV_DTYPE.get(s.kv_dtype, "f16")


def _is_quantized(t: str) -> bool:
    return t not in ("f32", "f16", "bf16")


# -- profiles -----------------------------------------------------------------------------------------------------

@record(frozen=True)
class Profile:
    """How a front end runs llama.cpp: its own defaults where it sets them, llama.cpp's elsewhere."""

    name: str
    label: str
    version: str
    source: str  # where the defaults were read
    flash_attn: bool = FLASH_ATTN_DEFAULT
    kv_unified: bool = False  # common/common.h kv_unified = false (llama-server turns it on only for -np auto)
    min_parallel: int = 1
    fit_margin: int = 0  # memory the front end's layer placement keeps free when it places the layers itself
    auto_layers: bool = False  # places the layers itself (no -ngl), partially offloading what does not fit
    keep_in_memory: bool = False  # the whole model stays in host RAM too
    placement: str = ""  # how it places the layers itself (auto_layers), in words
    default_context: Callable[[Settings, Model], int] | None = None
    ubatch: Callable[[Settings, Model, int, Callable[[int], float]], int] | None = None
    notes: tuple[str, ...] = ()

    def estimate(self, model: Model, s: Settings) -> Estimate:
        return estimate(model, s, self)


LLAMACPP = Profile("llamacpp", "llama.cpp", LLAMA_CPP_VERSION, "llama-cpp-python 0.3.36 vendor/llama.cpp")

# Ollama 0.32.15 (ollama/ollama@b7871fc, the newest stable tag read) runs llama.cpp's llama-server (build b10488,
# its LLAMA_CPP_VERSION file) with `-c num_ctx x parallel -np parallel` and no --kv-unified (llm/llama_server.go),
# `--flash-attn auto` where ml.FlashAttentionSupported holds (CUDA compute capability >= 6.0 except 7.2, Metal,
# ROCm, Vulkan), --cache-type-k/-v only when OLLAMA_KV_CACHE_TYPE is set (default f16, envconfig/config.go),
# OLLAMA_NUM_PARALLEL 1 (envconfig), no -ngl unless num_gpu is set: llama-server's --fit (on by default,
# common/common.h fit_params) then places the layers, keeping fit_params_target = 1024 MiB free per device.
OLLAMA_FIT_MARGIN = 1024 * MiB
# server/routes.go: the default num_ctx by the GPUs' total memory (less OLLAMA_GPU_OVERHEAD, default 0): 262144 from
# 47 GiB, 32768 from 23 GiB, else 4096; llm/server.go caps num_ctx at the model's training context.
OLLAMA_CONTEXT_TIERS = ((47 * GiB, 262144), (23 * GiB, 32768), (0, 4096))
# server/sched.go automaticGenerationBatch: -b/-ub of 2048 above 32768 tokens (num_ctx x parallel), 1024 above 4096,
# else 512; a larger batch only while the predicted VRAM leaves 60% (2048) / 75% (1024) of the free memory and the
# surcharge (2 GiB / 768 MiB) fits under 80% of it; 512 (256 on CUDA GPUs of 8 GiB or less above 4096 tokens) with
# flash attention off.
OLLAMA_BATCHES = ((2048, 32768, 0.60, 2 * GiB), (1024, 4096, 0.75, 768 * MiB))


def _ollama_context(s: Settings, model: Model) -> int:
    total = s.gpu.gpu.usable_bytes * s.gpu.count if s.gpu is not None else 0
    ctx = next(c for floor, c in OLLAMA_CONTEXT_TIERS if total >= floor)
    return min(ctx, model.max_position) if model.max_position else ctx


def _ollama_ubatch(s: Settings, model: Model, effective_ctx: int, predicted_at: Callable[[int], float]) -> int:
    gpu = s.gpu.gpu if s.gpu is not None else None
    flash = s.flash_attn if s.flash_attn is not None else _ollama_flash(s)
    if not flash:
        small = gpu is not None and gpu.vendor == "nvidia" and gpu.usable_bytes <= 8 * GiB
        return 256 if small and effective_ctx > 4096 else 512
    available = s.allowed_bytes or 0
    for batch, above, share, surcharge in OLLAMA_BATCHES:
        if effective_ctx <= above:
            continue
        if not available:
            return batch
        predicted = predicted_at(512)
        threshold = available * 0.8
        if predicted <= threshold and predicted <= available * share and surcharge <= threshold - predicted:
            return batch
    return 512


def _ollama_flash(s: Settings) -> bool:
    gpu = s.gpu.gpu if s.gpu is not None else None
    if gpu is None or gpu.vendor != "nvidia" or not gpu.sm:
        return True
    return gpu.sm >= 6.0 and round(gpu.sm, 1) != 7.2


OLLAMA = Profile(
    "ollama", "Ollama", "0.32.15 (llama.cpp b10488)", "ollama/ollama v0.32.15 llm/llama_server.go, "
    "server/sched.go, server/routes.go, envconfig/config.go", fit_margin=OLLAMA_FIT_MARGIN, auto_layers=True,
    default_context=_ollama_context, ubatch=_ollama_ubatch,
    placement="llama-server's --fit (keeping 1 GiB free)",
    notes=("num_ctx is per request: -c num_ctx x OLLAMA_NUM_PARALLEL; a Modelfile's num_ctx or OLLAMA_CONTEXT_LENGTH "
           "replaces the VRAM-based default",))

# LM Studio: the load-config defaults of its SDK schema, lmstudio-ai/lmstudio-js@6ec11db (lms-client 1.5.0)
# packages/lms-kv-config/src/schema.ts "llm.load": contextLength 2048 (machine-dependent: the app may choose
# another), numParallelSessions 4 ("Max Concurrent Predictions ... set to 4", lmstudio.ai/docs/app/advanced/
# parallel-requests), useUnifiedKvCache true, llama.flashAttention false, k/vCacheQuantizationType f16 (off),
# physicalBatchSize 512, offloadKVCacheToGpu true, acceleration.offloadRatio "max" with autoFit true,
# keepModelInMemory true ("Reserves RAM even when portions are on GPU", LLMLoadModelConfig.ts).
LMSTUDIO = Profile(
    "lmstudio", "LM Studio", "lmstudio-js 6ec11db (lms-client 1.5.0)",
    "lmstudio-ai/lmstudio-js packages/lms-kv-config/src/schema.ts", flash_attn=False, kv_unified=True,
    min_parallel=4, auto_layers=True, keep_in_memory=True, default_context=lambda s, m: min(2048, m.max_position or
                                                                                             2048),
    placement="LM Studio's autoFit (on by default, it lowers the GPU offload until the model fits)",
    notes=("contextLength default 2048 in its SDK schema (machine-dependent in the app); 4 concurrent predictions "
           "share one unified KV cache",))

PROFILES = {p.name: p for p in (LLAMACPP, OLLAMA, LMSTUDIO)}


def profile(name: str) -> Profile:
    return PROFILES[name]


# -- the arithmetic -----------------------------------------------------------------------------------------------

def swa_honoured(model: Model) -> bool:
    """Whether llama.cpp keeps sliding/chunked layers at their window. A GGUF file's layer specs already follow
    llama.cpp (hfvram.introspect.gguf); for a Hub checkpoint, only the architectures whose src/models/*.cpp set a
    SWA pattern (hfvram.introspect.gguf._SWA, llama4's chunked attention) do: phi3.cpp, for one, turns SWA off
    ("Phi SWA is currently disabled") and llama.cpp's llama arch (Mistral v0.1) has none."""
    if getattr(model.facts, "gguf", None) is not None:
        return True
    from ..introspect.gguf import _CHUNKED, _SWA
    from .gguf import llama_arch

    return llama_arch(model.arch.model_type) in set(_SWA) | set(_CHUNKED)


def swa_cells(window: int, n_ctx_seq: int, n_seq: int, unified: bool, n_ubatch: int) -> int:
    """llama-kv-cache-iswa.cpp: size_swa = GGML_PAD(min(size_base, n_swa x (unified ? n_seq_max : 1) + n_ubatch),
    256), per stream."""
    return pad(min(n_ctx_seq, window * (n_seq if unified else 1) + n_ubatch))


def layer_cells(layer: LayerSpec, n_ctx_seq: int, n_seq: int, unified: bool, n_ubatch: int, swa: bool = True) -> int:
    """KV cells of one layer over all its streams (`swa`: llama.cpp honours the model's windows)."""
    streams = 1 if unified else n_seq
    if not swa:
        return n_ctx_seq * streams
    if isinstance(layer, SlidingWindow):
        return swa_cells(layer.window, n_ctx_seq, n_seq, unified, n_ubatch) * streams
    if isinstance(layer, ChunkedLocal) and layer.chunk:
        return swa_cells(layer.chunk, n_ctx_seq, n_seq, unified, n_ubatch) * streams
    return n_ctx_seq * streams


def kv_layer_bytes(layer: LayerSpec, n_ctx_seq: int, n_seq: int, unified: bool, n_ubatch: int, tk: float,
                   tv: float, swa: bool = True) -> float:
    if isinstance(layer, MLA):  # K only: the latent (llama-kv-cache.cpp has_v = !is_mla)
        return layer_cells(layer, n_ctx_seq, n_seq, unified, n_ubatch) * layer.latent_dim * tk
    if isinstance(layer, FullAttention):
        cells = layer_cells(layer, n_ctx_seq, n_seq, unified, n_ubatch, swa)
        return cells * layer.num_kv_heads * (layer.head_dim * tk + layer.v_dim * tv)
    return n_seq * state_per_gpu(layer, F32, 1)  # recurrent state in f32 (rs_size = n_seq_max)


def compute_stages(model: Model, n_kv: int, n_ubatch: int, flash: bool) -> dict[str, float]:
    """Live sets of the reserved graph by stage. Without flash attention the attention stage holds the f32 scores
    n_head x n_kv x n_ubatch, three n_embd x n_ubatch activations and the f32 mask n_kv x n_ubatch: exactly the
    156.0 MiB ggml-org/ci printed for open_llama_7b_v2 at n_ctx 2048, n_batch 512 (validation
    llamacpp-openllama-7b-v2-f16-compute). With flash attention the scores are not materialised (f16 mask)."""
    t, e = n_ubatch, model.hidden
    if flash:
        attention = 3 * e * t * F32 + n_kv * t * 2 + model.heads * model.head_dim * t * F32
    else:
        attention = model.heads * n_kv * t * F32 + 3 * e * t * F32 + n_kv * t * F32
    moe = model.arch.moe
    if moe:
        ffn = t * (2 * e + 3 * moe.experts_per_token * model.moe_intermediate + moe.num_experts) * F32
    else:
        ffn = t * (2 * e + 2 * model.intermediate) * F32
    output = t * (model.vocab + 2 * e) * F32
    return {"attention": attention, "ffn": ffn, "output": output}


def compute_buffer(model: Model, n_ctx: int, n_ubatch: int, flash: bool) -> int:
    return int(max(compute_stages(model, n_ctx, n_ubatch, flash).values()))


def layer_weights(model: Model) -> tuple[list[float], list[float]]:
    """Bytes of each repeating layer, and of its routed experts (the tensors --n-cpu-moe keeps on the CPU)."""
    n = len(model.layers)
    g = model.gguf
    if g is not None and getattr(g, "per_layer", None):
        per = [float(x) for x in g.per_layer][:n] + [0.0] * max(0, n - len(g.per_layer))
        exps = [0.0] * n
        for t in g.tensors:
            if t.layer is not None and t.layer < n and _EXPS.search(t.name):
                exps[t.layer] += t.nbytes
        return per, exps
    dense, experts = model.weights.get("dense", 0), model.weights.get("experts", 0)
    return [(dense + experts) / n] * n, [experts / n] * n


def converted(model: Model) -> Model:
    """A quantised Hub checkpoint as llama.cpp loads it: convert_hf_to_gguf.py (default --outtype f16) dequantises
    GPTQ / FP8 weights to F16 and repacks gpt-oss MXFP4 experts as MXFP4 (hfvram.estimate.gguf reproduces it)."""
    if model.gguf_type or model.projected or model.facts.quant is None:
        return model
    from .model import build

    out = build(model.facts, "gguf:F16")
    out.label = "gguf F16 (as converted)"
    out.notes = [f"a {model.facts.quant.method} checkpoint, as convert_hf_to_gguf.py --outtype f16 writes it"]
    return out


@record
class Layout:
    """Everything one configuration puts on the GPU (per device) and in host RAM, at one context."""

    n_ctx: int
    n_ctx_seq: int
    n_seq: int
    unified: bool
    n_ubatch: int
    gpu_layers: int  # as -ngl counts them: the output layer + repeating layers
    n_cpu_moe: int
    gpu: dict[str, float] = field(default_factory=dict)  # weights, kv_cache, compute
    host: dict[str, float] = field(default_factory=dict)  # weights, kv_cache, compute, output
    # The KV cache by where it sits and by the cache llama.cpp prints it under (all devices together): "non_swa" (the
    # whole cache, or the non-SWA half of an ISWA cache), "swa" (sliding / chunked layers of an ISWA cache,
    # llama-kv-cache-iswa.cpp), "recurrent" (the RS buffer of recurrent layers, llama-memory-recurrent.cpp).
    kv_parts: dict[str, dict[str, float]] = field(default_factory=dict)
    # host["weights"] by llama.cpp buffer (see estimate's extras "host_weight_buffers")
    host_weight_buffers: dict[str, float] = field(default_factory=dict)

    @property
    def host_bytes(self) -> int:
        return int(sum(self.host.values()))


def _context_total(s: Settings, context: int, n_seq: int, unified: bool) -> int:
    """llama.cpp's -c for `batch` sequences of `context` tokens on n_seq slots."""
    return context * (max(1, s.batch) if unified else n_seq)


def layout(model: Model, s: Settings, prof: Profile, context: int, *, n_ubatch: int, flash: bool, tk: str,
           tv: str, gpu_layers: int | None = None, n_cpu_moe: int | None = None) -> Layout:
    per, exps = layer_weights(model)
    layers = model.layers
    n = len(layers)
    n_seq = max(prof.min_parallel, s.n_parallel or s.batch or 1)
    unified = prof.kv_unified if s.kv_unified is None else s.kv_unified
    n_ctx = pad(_context_total(s, context, n_seq, unified))
    n_ctx_seq = n_ctx if unified else pad(n_ctx // n_seq)
    if not unified:
        n_ctx = n_ctx_seq * n_seq  # llama-context.cpp: "n_ctx is not divisible by n_seq_max - rounding down"
    ngl = n + 1 if gpu_layers is None or gpu_layers < 0 else min(gpu_layers, n + 1)
    start = n + 1 - ngl  # src/llama-model.cpp: i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)
    on_gpu = [i >= start for i in range(n)]
    output_gpu = ngl >= 1
    cpu_moe = max(0, min(n_cpu_moe or 0, n))
    w = model.weights
    g = model.gguf
    emb = w.get("embeddings", 0)
    head = w.get("lm_head") or emb  # tied: llama.cpp duplicates token_embd as the output (TENSOR_DUPLICATED)
    tied = bool(g.tied) if g is not None else not w.get("lm_head")
    other = (g.other - g.other_host) if g is not None else 0  # output_norm, rope_freqs: with the output layer
    other_host = g.other_host if g is not None else 0
    gpu_w = sum(per[i] - (exps[i] if i < cpu_moe else 0) for i in range(n) if on_gpu[i])
    host_w = emb + other_host + sum(per[i] for i in range(n) if not on_gpu[i])
    host_w += sum(exps[i] for i in range(cpu_moe) if on_gpu[i])
    if output_gpu:
        gpu_w += head + other
    elif not tied:
        host_w += head + other
    else:
        host_w += other
    # the experts the --n-cpu-moe / -ot patterns name go to the CPU buffer type (common/common.h
    # llm_add_n_cpu_ffn_overrides: ggml_backend_cpu_buffer_type()), wherever their layer is
    overridden = sum(exps[i] for i in range(cpu_moe))
    ktype, vtype = KV_CACHE_TYPES[tk], KV_CACHE_TYPES[tv]
    kv_gpu = kv_host = 0.0
    swa_on = swa_honoured(model)
    kv_parts: dict[str, dict[str, float]] = {"gpu": {}, "host": {}}
    for i, layer in enumerate(layers):
        b = kv_layer_bytes(layer, n_ctx_seq, n_seq, unified, n_ubatch, ktype, vtype, swa_on)
        place = "gpu" if on_gpu[i] and not s.no_kv_offload else "host"
        if place == "gpu":
            kv_gpu += b
        else:
            kv_host += b
        if not isinstance(layer, (FullAttention, MLA)):
            kind = "recurrent"
        elif swa_on and (isinstance(layer, SlidingWindow) or (isinstance(layer, ChunkedLocal) and layer.chunk)):
            kind = "swa"
        else:
            kind = "non_swa"
        kv_parts[place][kind] = kv_parts[place].get(kind, 0.0) + b
    n_tokens = min(n_ctx, n_ubatch)
    stages = compute_stages(model, n_ctx_seq, n_tokens, flash)
    attention_on_host = s.no_kv_offload or not all(on_gpu)
    host_layer_weights = [per[i] if not on_gpu[i] else (exps[i] if i < cpu_moe else 0) for i in range(n)]
    copies = max(host_layer_weights, default=0) if n_tokens >= OP_OFFLOAD_MIN_BATCH else 0
    gpu_stages = dict(stages)
    if s.no_kv_offload:
        gpu_stages.pop("attention")  # attention runs where its KV is
    gpu_stages["ffn"] = stages["ffn"] + copies
    compute = max(gpu_stages.values()) if (any(on_gpu) or output_gpu) else 0
    swa = [layer_cells(lay, n_ctx_seq, n_seq, unified, n_ubatch) // (1 if unified else n_seq)
           for lay in layers if swa_on and isinstance(lay, (SlidingWindow, ChunkedLocal)) and
           (not isinstance(lay, ChunkedLocal) or lay.chunk)]
    masks = n_ctx_seq + (max(swa) if swa else 0)
    host_compute = n_tokens * (model.hidden + masks) * F32
    if attention_on_host:
        host_compute = max(host_compute, stages["attention"])
    host = {"weights": host_w, "kv_cache": kv_host, "compute": host_compute,
            "output": model.vocab * n_seq * F32}  # llama-context.cpp output_reserve(n_seq_max): f32 logits
    buffers = {"cpu_overrides": overridden, "host": host_w - overridden}
    if prof.keep_in_memory:
        host["weights"] += gpu_w  # LM Studio keepModelInMemory: the GPU's share stays in RAM as well
        buffers["kept_in_memory"] = gpu_w
    return Layout(n_ctx=n_ctx, n_ctx_seq=n_ctx_seq, n_seq=n_seq, unified=unified, n_ubatch=n_ubatch,
                  gpu_layers=ngl, n_cpu_moe=cpu_moe, gpu={"weights": gpu_w, "kv_cache": kv_gpu, "compute": compute},
                  host=host, kv_parts=kv_parts, host_weight_buffers=buffers)


# -- the estimate -------------------------------------------------------------------------------------------------

def _cache_types(s: Settings) -> tuple[str, str]:
    base = cache_type(s)
    return (s.cache_type_k or base), (s.cache_type_v or base)


def estimate(model: Model, s: Settings, prof: Profile = LLAMACPP) -> Estimate:
    model = converted(model)
    notes: list[str] = list(model.notes) if model.label.endswith("(as converted)") else []
    context_default = prof.default_context is not None and s.context_default
    context = prof.default_context(s, model) if context_default else s.context
    tk, tv = _cache_types(s)
    flash = s.flash_attn
    if flash is None:
        flash = _ollama_flash(s) if prof is OLLAMA else prof.flash_attn
        if _is_quantized(tv) and not flash:
            # llama-context.cpp llama_init_from_model: "enabling flash_attn since it is required for quantized V
            # cache" when it is auto; LM Studio sets it off, and then the load fails (hfvram.support says so)
            flash = prof is not LMSTUDIO
    devices = max(1, s.tp * s.pp)
    gpu_mmproj = 0
    gguf_file = getattr(model.facts, "gguf", None)  # a GGUF file as input: its own tensors (model.gguf)
    mmproj = int(model.weights.get("vision", 0)) if gguf_file is not None and gguf_file.mmproj else 0
    if mmproj:
        # mtmd loads the projector on the GPU unless --no-mmproj-offload (common/common.h mmproj_use_gpu = true)
        notes.append(f"vision projector {gguf_file.mmproj} on the GPU (llama.cpp --mmproj; its image-encoding "
                     f"compute buffer is not modelled)")
        gpu_mmproj = mmproj
    elif model.weights.get("vision"):
        notes.append("vision tower not counted: llama.cpp loads it from a separate mmproj GGUF")
    riders = rider_bytes(NAME, model, s)  # -md draft: its own context (KV + compute buffer); --lora: f16 adapter
    context_bytes = cuda_context_bytes(s)  # ggml's kernels: no measurement of their own yet (NOTES-cuda-context.md)
    margin = prof.fit_margin if (prof.auto_layers and s.gpu_layers is None and s.n_cpu_moe is None) else 0

    def ubatch_for(ctx: int) -> int:
        if s.n_ubatch:
            return s.n_ubatch
        if prof.ubatch is None:
            return N_UBATCH
        n_seq = max(prof.min_parallel, s.n_parallel or s.batch or 1)

        def predicted_at(ub: int) -> float:
            lay = layout(model, s, prof, ctx, n_ubatch=ub, flash=flash, tk=tk, tv=tv)
            return sum(lay.gpu.values()) / devices + context_bytes

        return prof.ubatch(s, model, ctx * n_seq, predicted_at)

    def at(ctx: int, gpu_layers=s.gpu_layers, n_cpu_moe=s.n_cpu_moe) -> Layout:
        return layout(model, s, prof, ctx, n_ubatch=ubatch_for(ctx), flash=flash, tk=tk, tv=tv,
                      gpu_layers=gpu_layers, n_cpu_moe=n_cpu_moe)

    def gpu_need(lay: Layout) -> float:
        on = lay.gpu_layers > 0
        extra = sum(riders.values()) + (gpu_mmproj if on else 0)
        return (lay.gpu["weights"] + lay.gpu["kv_cache"]) / devices + lay.gpu["compute"] + context_bytes + extra

    lay = at(context)
    components = {"weights": int(lay.gpu["weights"] / devices), "kv_cache": int(lay.gpu["kv_cache"] / devices),
                  "compute": int(lay.gpu["compute"]), "cuda_context": context_bytes}
    if gpu_mmproj and lay.gpu_layers > 0:
        riders["mmproj"] = gpu_mmproj
    components.update(riders)
    if devices > 1:
        # --split-mode layer (default): layers and their KV spread over the GPUs in proportion to memory
        notes.append(f"--split-mode layer over {devices} GPUs: weights and KV divided evenly, compute buffer on each")
    n = len(model.layers)
    extras = {"n_ctx": lay.n_ctx, "n_ctx_seq": lay.n_ctx_seq, "n_seq": lay.n_seq, "kv_unified": lay.unified,
              "cache_type": tk if tk == tv else f"{tk}/{tv}", "cache_type_k": tk, "cache_type_v": tv,
              "flash_attn": flash, "n_ubatch": lay.n_ubatch, "gpu_layers": lay.gpu_layers,
              "n_cpu_moe": lay.n_cpu_moe, "kv_offload": not s.no_kv_offload,
              "host_bytes": lay.host_bytes, "host_components": {k: int(v) for k, v in lay.host.items()},
              # What the startup log prints apart (hfvram.logs.llamacpp reads the same buffers):
              # - kv_parts: the KV cache on the GPUs / in host RAM, all devices together, split as the log splits it
              #   ("non_swa", "swa": the two caches of an ISWA model; "recurrent": the RS buffer);
              # - host_weight_buffers: host_components["weights"] by buffer. Without mmap llama.cpp keeps
              #   "cpu_overrides" (the experts --n-cpu-moe / -ot name) in the CPU buffer and "host" (token
              #   embeddings, layers left on the CPU) in the GPU backend's pinned host buffer (CUDA_Host: the host
              #   buffer type heads llama-model.cpp make_cpu_buft_list); with mmap both are one CPU_Mapped buffer
              #   (llama-model-loader.cpp: "avoid using a host buffer when using mmap"), printed as the span of the
              #   file from the first to the last such tensor, which can exceed their sum.
              "kv_parts": {place: {k: int(v) for k, v in kinds.items()} for place, kinds in lay.kv_parts.items()},
              "host_weight_buffers": {k: int(v) for k, v in lay.host_weight_buffers.items()},
              "ram_bytes": s.ram,
              # more than the token embeddings and host buffers in RAM: layers, experts, KV or a copy of the model
              "host_offload": bool(lay.gpu_layers <= n or lay.n_cpu_moe or s.no_kv_offload or prof.keep_in_memory)}
    if prof is not LLAMACPP:
        extras["profile"] = prof.name
        if context_default:
            extras["profile_context"] = context
    if model.gguf_type:
        extras["gguf_type"] = model.gguf_type
    if s.no_kv_offload:
        notes.append("--no-kv-offload: the KV cache and attention stay in host RAM")
    if lay.n_cpu_moe and not any(layer_weights(model)[1]):
        notes.append("--n-cpu-moe: the model has no routed experts, nothing moves")
    elif lay.n_cpu_moe:
        notes.append(f"routed experts of the first {lay.n_cpu_moe} of {n} layers in host RAM "
                     f"({'--cpu-moe, -ot exps=CPU' if lay.n_cpu_moe >= n else f'--n-cpu-moe {lay.n_cpu_moe}'}); the "
                     f"GPU multiplies them from a copy in its compute buffer for prompt batches")
    if lay.gpu_layers <= n:
        notes.append(f"{lay.gpu_layers} of {n + 1} layers on the GPU (-ngl {lay.gpu_layers}: the output layer and the "
                     f"last {max(0, lay.gpu_layers - 1)} repeating layers); the rest run from host RAM")
    notes.extend(prof.notes)
    label = prof.label
    est = Estimate(framework=prof.name, components=components, gpus=devices, notes=notes, extras=extras)
    defaults = {"n_ctx": (lay.n_ctx, True)}
    if lay.n_ctx_seq != lay.n_ctx:
        defaults["n_ctx_seq"] = (lay.n_ctx_seq, True)
    defaults.update({
        "n_ubatch": (lay.n_ubatch, s.n_ubatch is None),
        "flash_attn": ("on" if flash else "off", s.flash_attn is None),
        "cache_type_k": (tk, s.cache_type_k is None and s.kv_dtype == "auto"),
        "cache_type_v": (tv, s.cache_type_v is None and s.kv_dtype == "auto"),
        "n_gpu_layers": ("all" if lay.gpu_layers > n else lay.gpu_layers, s.gpu_layers is None),
        "parallel": (lay.n_seq, s.n_parallel is None),
    })
    if lay.n_seq > 1 or s.kv_unified is not None:
        defaults["kv_unified"] = ("on" if lay.unified else "off", s.kv_unified is None)
    if lay.n_cpu_moe:
        defaults["n_cpu_moe"] = (lay.n_cpu_moe, False)
    if s.no_kv_offload:
        defaults["kv_offload"] = ("off", False)
    if context_default:
        defaults["context"] = (context, True)
    est.engine = engine_info(label, prof.version, defaults)
    est.engine["profile"] = prof.name
    if prof.keep_in_memory:
        notes.append("keeps the whole model in RAM as well (keepModelInMemory, on by default)")

    if s.gpu is None and s.ram is None:
        return est
    allowed = s.allowed_bytes
    ram = s.ram
    from . import bands

    base = dict(est.components)
    at0 = sum(base.values())

    def high(need_: float) -> float:
        """The GPU need at the high end of its error band (verdicts hold there, as in base.fit_allocating); what
        differs from this estimate's layout is taken as KV cache."""
        return bands.high(prof.name, {**base, "kv_cache": base.get("kv_cache", 0) + need_ - at0}, s.tp)

    def slack(lay_: Layout) -> float:
        """Bytes to spare on the GPU (at the high end) and in host RAM, the smaller (>= 0: it fits)."""
        gpu = math.inf if allowed is None else allowed - (high(gpu_need(lay_)) + margin)
        return min(gpu, math.inf if ram is None else ram - lay_.host_bytes)

    need = gpu_need(lay)
    need_high = high(need)
    gpu_ok = allowed is None or need_high + margin <= allowed
    host_ok = ram is None or lay.host_bytes <= ram
    est.fits = gpu_ok and host_ok
    est.held_high_bytes = int(need_high)
    if allowed is not None:
        est.headroom_bytes = int(allowed - need - margin)
    from .base import _gib, shortfall_reason

    if not gpu_ok:
        kept = f" + {_gib(margin)} that {prof.label}'s layer placement keeps free (llama-server --fit)" if margin \
            else ""
        est.fit_reason = shortfall_reason(need, need_high, allowed, s, kept, margin)
    elif not host_ok:
        est.fit_reason = (f"needs {_gib(lay.host_bytes)} of host RAM, {_gib(ram)} given (--ram): "
                          f"{_gib(lay.host_bytes - ram)} short")
    ceiling = context_ceiling(model, replace(s, context=context))
    est.max_context = largest_with_slack(lambda c: slack(at(c)), 1, ceiling)
    if prof.auto_layers and not gpu_ok and allowed is not None and s.gpu_layers is None and s.n_cpu_moe is None:
        placed = auto_placement(model, lambda gl, cm: at(context, gl, cm), gpu_need, allowed - margin)
        if placed is not None:
            gl, cm, placed_lay = placed
            where = (f"the routed experts of the first {cm} of {n} layers in host RAM" if cm else
                     f"{gl - 1} of {n} repeating layers and the output on the GPU")
            notes.append(f"does not fail to load: {prof.placement} would put {where}, needing "
                         f"{_gib(placed_lay.host_bytes)} of host RAM, and run slower")
            est.extras["auto_placement"] = {"gpu_layers": gl, "n_cpu_moe": cm, "host_bytes": placed_lay.host_bytes}
    return est


def auto_placement(model: Model, at: Callable[[int | None, int | None], Layout], gpu_need: Callable[[Layout], float],
                   limit: float) -> tuple[int, int, Layout] | None:
    """What llama.cpp's --fit (common/fit.cpp) arrives at, in its order: for MoE models the dense weights on the GPU
    and as few layers' experts in host RAM as fit (`--n-cpu-moe N`); otherwise (or when even that does not fit)
    the most layers, output first, that fit (`-ngl N`). None when not even the output layer fits."""
    n = len(model.layers)
    if model.arch.moe:
        def ok(k: int) -> bool:
            return gpu_need(at(None, k)) <= limit

        if ok(n):
            k = n - (largest_fitting(lambda m: ok(n - m), 0, n) or 0)
            return n + 1, k, at(None, k)

    def ok_layers(gl: int) -> bool:
        return gpu_need(at(gl, None)) <= limit

    best = largest_fitting(ok_layers, 1, n)
    if best is None:
        return None
    return best, 0, at(best, None)
