"""llama.cpp (GGUF): model buffer, KV cache and compute buffer on each GPU; token embeddings stay in host RAM.

Policy (llama.cpp source as vendored in llama-cpp-python 0.3.36; ../shared/research/hub-and-engines.md B6):
- n_ctx padded to a multiple of 256 (llama-context.cpp); `--parallel N` shares n_ctx among N sequences, so serving
  `batch` sequences of `context` tokens needs n_ctx = batch x context.
- KV per layer: K rows of n_head_kv x head_dim_k and V rows of n_head_kv x head_dim_v in --cache-type-k/-v
  (f16 default; q8_0 / q4_0 ...; a quantised V needs flash attention); SWA layers keep
  PAD(min(n_ctx, n_swa x n_seq + n_ubatch), 256) cells (llama-kv-cache-iswa.cpp); MLA caches K only, 576 elements;
  recurrent layers hold an f32 state per sequence.
- weights: GGUF tensor sizes (hfvram.estimate.gguf, llama-quant.cpp rules); `token_embd` is always in host RAM
  (llama-model.cpp), the output layer goes to the GPU only with --gpu-layers > n_layer (all, by default);
  partial offload puts the last N layers (and their KV) on the GPU.
- compute buffer: the largest live set of the reserved worst-case graph (n_ubatch tokens, all KV cells).
"""

from __future__ import annotations

from ..specs import MLA, FullAttention, LayerSpec, SlidingWindow
from .base import CUDA_CONTEXT_BYTES, Estimate, Settings, engine_info, fit_allocating, rider_bytes, state_per_gpu
from .gguf import KV_CACHE_TYPES  # cache element sizes of --cache-type-k/-v (ggml type traits)
from .model import Model

NAME = "llamacpp"
# The llama.cpp whose rules these are: the commit vendored by llama-cpp-python 0.3.36 (hfvram.estimate.gguf).
LLAMA_CPP_VERSION = "0c1e570 (llama-cpp-python 0.3.36)"

N_CTX_PAD = 256  # llama-context.cpp: n_ctx = GGML_PAD(n_ctx, 256)
N_UBATCH = 512  # common/common.h n_ubatch default
# Flash attention: `-fa auto` turns it on for CUDA since ggml-org/llama.cpp#15434 (2025-08).
FLASH_ATTN_DEFAULT = True
_FROM_KV_DTYPE = {"auto": "f16", "fp16": "f16", "bf16": "bf16", "fp32": "f32", "fp8": "q8_0", "int8": "q8_0",
                  "q8_0": "q8_0", "q4_0": "q4_0", "q8": "q8_0", "q4": "q4_0", "q6": "q8_0"}
F32 = 4  # ggml compute tensors are f32


def pad(n: int, to: int = N_CTX_PAD) -> int:
    return -(-n // to) * to


def cache_type(s: Settings) -> str:
    return _FROM_KV_DTYPE.get(s.kv_dtype, "f16")


def cells(layer: LayerSpec, n_ctx: int, n_seq: int, n_ubatch: int) -> int:
    if isinstance(layer, SlidingWindow):
        return pad(min(n_ctx, layer.window * n_seq + n_ubatch))
    return n_ctx


def kv_layer_bytes(layer: LayerSpec, n_ctx: int, n_seq: int, n_ubatch: int, t: float) -> float:
    if isinstance(layer, MLA):
        return cells(layer, n_ctx, n_seq, n_ubatch) * layer.latent_dim * t  # K only (llama.cpp PR #19067)
    if isinstance(layer, FullAttention):
        return cells(layer, n_ctx, n_seq, n_ubatch) * layer.num_kv_heads * (layer.head_dim + layer.v_dim) * t
    return n_seq * state_per_gpu(layer, F32, 1)  # recurrent state in f32


def compute_buffer(model: Model, n_ctx: int, n_ubatch: int, flash: bool) -> int:
    """Largest live set of the reserved graph. Without flash attention the attention stage holds the f32 scores
    n_head x n_kv x n_ubatch, three n_embd x n_ubatch activations and the f32 mask n_kv x n_ubatch: exactly the
    156.0 MiB ggml-org/ci printed for open_llama_7b_v2 at n_ctx 2048, n_batch 512 (validation
    llamacpp-openllama-7b-v2-f16-compute). With flash attention the scores are not materialised (f16 mask)."""
    t, e = n_ubatch, model.hidden
    if flash:
        attention = 3 * e * t * F32 + n_ctx * t * 2 + model.heads * model.head_dim * t * F32
    else:
        attention = model.heads * n_ctx * t * F32 + 3 * e * t * F32 + n_ctx * t * F32
    moe = model.arch.moe
    if moe:
        ffn = t * (2 * e + 3 * moe.experts_per_token * model.moe_intermediate + moe.num_experts) * F32
    else:
        ffn = t * (2 * e + 2 * model.intermediate) * F32
    output = t * (model.vocab + 2 * e) * F32
    return int(max(attention, ffn, output))


def layer_weights(model: Model) -> list[float]:
    n = len(model.layers)
    if model.gguf is not None and getattr(model.gguf, "per_layer", None):
        return list(model.gguf.per_layer)
    body = model.weights.get("dense", 0) + model.weights.get("experts", 0)
    return [body / n] * n


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


def estimate(model: Model, s: Settings) -> Estimate:
    model = converted(model)
    notes: list[str] = list(model.notes) if model.label.endswith("(as converted)") else []
    n_seq = max(1, s.n_parallel or s.batch)
    n_ctx = pad(s.context * (s.batch if s.n_parallel is None else 1))
    n_ubatch = s.n_ubatch or N_UBATCH
    flash = FLASH_ATTN_DEFAULT if s.flash_attn is None else s.flash_attn
    ctype = cache_type(s)
    if ctype not in ("f16", "bf16", "f32") and not flash:
        notes.append("llama.cpp refuses a quantised V cache without flash attention (-fa): V kept at f16")
    t = KV_CACHE_TYPES[ctype]
    gguf_file = getattr(model.facts, "gguf", None)  # a GGUF file as input: its own tensors (model.gguf)
    mmproj = int(model.weights.get("vision", 0)) if gguf_file is not None and gguf_file.mmproj else 0
    if mmproj:
        # mtmd loads the projector on the GPU unless --no-mmproj-offload (common/common.h mmproj_use_gpu = true)
        notes.append(f"vision projector {gguf_file.mmproj} on the GPU (llama.cpp --mmproj; its image-encoding "
                     f"compute buffer is not modelled)")
    elif model.weights.get("vision"):
        notes.append("vision tower not counted: llama.cpp loads it from a separate mmproj GGUF")

    layers = model.layers
    n_layer = len(layers)
    per_layer = layer_weights(model)
    gpu_layers = n_layer + 1 if s.gpu_layers is None or s.gpu_layers < 0 else min(s.gpu_layers, n_layer + 1)
    on_gpu = set(range(max(0, n_layer - gpu_layers), n_layer))  # the last N layers are offloaded
    weights = sum(w for i, w in enumerate(per_layer) if i in on_gpu)
    head = model.weights.get("lm_head") or model.weights.get("embeddings", 0)  # tied: token_embd duplicated
    if gpu_layers > n_layer:
        weights += head
    host = model.weights.get("embeddings", 0) + sum(w for i, w in enumerate(per_layer) if i not in on_gpu)

    def kv_at(ctx: int) -> float:
        nc = pad(ctx)
        return sum(kv_layer_bytes(layer, nc, n_seq, n_ubatch, t) for i, layer in enumerate(layers) if i in on_gpu)

    kv = kv_at(n_ctx)
    compute = compute_buffer(model, n_ctx, n_ubatch, flash) if on_gpu else 0
    components = {"weights": int(weights), "kv_cache": int(kv), "compute": int(compute),
                  "cuda_context": CUDA_CONTEXT_BYTES}
    riders = rider_bytes(NAME, model, s)  # -md draft: its own context (KV + compute buffer); --lora: f16 adapter
    if mmproj and on_gpu:
        riders["mmproj"] = mmproj
    components.update(riders)
    extras = {"n_ctx": n_ctx, "cache_type": ctype, "flash_attn": flash, "n_ubatch": n_ubatch,
              "gpu_layers": min(gpu_layers, n_layer + 1), "host_bytes": int(host + model.vocab * n_seq * F32)}
    if model.gguf_type:
        extras["gguf_type"] = model.gguf_type
    est = Estimate(framework=NAME, components=components, gpus=max(1, s.tp * s.pp), notes=notes, extras=extras)
    devices = max(1, s.tp * s.pp)
    if devices > 1:
        # --split-mode layer (default): layers and their KV spread over the GPUs in proportion to memory
        for key in ("weights", "kv_cache"):
            components[key] = int(components[key] / devices)
        notes.append(f"--split-mode layer over {devices} GPUs: weights and KV divided evenly, compute buffer on each")
    est.engine = engine_info("llama.cpp", LLAMA_CPP_VERSION, {
        "n_ctx": (n_ctx, True), "n_ubatch": (n_ubatch, s.n_ubatch is None),
        "flash_attn": ("on" if flash else "off", s.flash_attn is None),
        "cache_type_k": (ctype, s.kv_dtype == "auto"), "cache_type_v": (ctype, s.kv_dtype == "auto"),
        "n_gpu_layers": ("all" if gpu_layers > n_layer else gpu_layers, s.gpu_layers is None),
        "parallel": (n_seq, s.n_parallel is None),
    })
    if s.gpu is not None:
        fixed = weights / devices + CUDA_CONTEXT_BYTES + sum(riders.values())

        def need_at(ctx: int) -> float:
            nc = pad(ctx * (s.batch if s.n_parallel is None else 1))
            return fixed + kv_at(nc) / devices + compute_buffer(model, nc, n_ubatch, flash)

        fit_allocating(est, s, model, need_at)
    return est
