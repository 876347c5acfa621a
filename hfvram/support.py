"""Which engine can run what: one table, engine x architecture x weight format x KV-cache type.

Every estimator and every suggestion asks `check(engine, model, settings)` before producing a number: a pairing
the engine cannot load is answered as *unsupported*, with the reason, never sized. The lists (architectures each
engine implements, weight formats it loads, KV-cache types it accepts) are read from the engines' own sources into
`hfvram/data/engine_support.json` by `tools/engine_support.py`; `hfvram/data/ENGINE_SUPPORT.md` says where each
came from. The rules that combine them with a model's facts (layer kinds, the checkpoint's format, the GPU) live
here, each with its source. `hfvram engines` prints the table.
"""

from __future__ import annotations

import json
from dataclasses import field
from functools import lru_cache
from pathlib import Path

from .record import record

DATA = Path(__file__).resolve().parent / "data" / "engine_support.json"

ENGINES = ("transformers", "vllm", "trtllm", "llamacpp", "exllamav2")
LABELS = {"transformers": "Transformers", "vllm": "vLLM", "trtllm": "TensorRT-LLM", "llamacpp": "llama.cpp",
          "exllamav2": "ExLlamaV2", "ollama": "Ollama", "lmstudio": "LM Studio"}
# Front ends that run llama.cpp (hfvram.estimate.llamacpp profiles): llama.cpp's architecture list and KV-cache
# types, GGUF files only (Ollama pulls GGUF blobs and runs them with llama-server, llm/llama_server.go; LM Studio's
# llama.cpp engine loads GGUF, its MLX engine is not modelled).
PROFILES = {"ollama": "llamacpp", "lmstudio": "llamacpp"}

# Float formats every engine runs (llama.cpp after convert_hf_to_gguf.py at F16/BF16/F32; ExLlamaV2 loads
# unquantised checkpoints as FP16: exllamav2/linear.py).
FLOATS = ("fp32", "fp16", "bf16")
# --kv-dtype names that are formats of one engine family, checked strictly against the engine's own list; the float
# types are reached by every engine (vLLM and TensorRT-LLM through the model dtype, ExLlamaV2 as FP16).
QUANTISED_KV = ("fp8", "int8", "nvfp4", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "q8", "q6", "q4")

# hfvram's names for the quantisation methods configs and projections use.
_FORMAT_NAMES = {
    "fbgemm_fp8": "fp8", "fp8": "fp8", "gptq": "gptq", "gptqmodel": "gptq", "awq": "awq",
    "autoround": "auto-round", "auto-round": "auto-round", "bitsandbytes": "bitsandbytes",
    "compressed-tensors": "compressed-tensors", "modelopt": "modelopt", "mxfp4": "mxfp4", "exl2": "exl2",
    "exl3": "exl3", "gguf": "gguf", "hqq": "hqq", "torchao": "torchao", "quanto": "quanto", "eetq": "eetq",
    "nvfp4": "nvfp4",
}


# Which GPUs each engine runs on (a GPU known only by its memory, --gpu-mem, is not checked). TensorRT-LLM is NVIDIA's
# ("supports the full spectrum of NVIDIA GPU architectures",
# https://nvidia.github.io/TensorRT-LLM/supported-hardware.html).
# vLLM has CUDA, ROCm, TPU and XPU platforms and on macOS only its CPU platform (vllm 0.34.0
# vllm/platforms/__init__.py:174-235). ExLlamaV2 builds its extension with torch's CUDAExtension, for CUDA or HIP
# (turboderp-org/exllamav2@da07facd10b5c7f35b03664c41a3090c9f093de5:setup.py:29-40). llama.cpp has Metal, CUDA and
# HIP backends (ggml/src/ggml-metal.m, ggml-cuda.cu); transformers runs on CUDA, ROCm and MPS
# (transformers/utils/import_utils.py is_torch_mps_available).
PLATFORMS = {"transformers": ("nvidia", "amd", "apple"), "vllm": ("nvidia", "amd"), "trtllm": ("nvidia",),
             "llamacpp": ("nvidia", "amd", "apple"), "exllamav2": ("nvidia", "amd"),
             "ollama": ("nvidia", "amd", "apple"), "lmstudio": ("nvidia", "amd", "apple")}
_VENDOR_WORDS = {"nvidia": "NVIDIA", "amd": "AMD", "apple": "Apple silicon"}

_KIND_WORDS = {"mla": "multi-head latent attention (MLA)", "mamba": "Mamba state-space",
               "linear_attention": "linear-attention (Gated DeltaNet)"}


@record(frozen=True)
class Verdict:
    """Whether an engine can load a model as asked: why not, and caveats."""

    supported: bool
    reasons: tuple[str, ...] = ()  # why not (empty when supported)
    notes: tuple[str, ...] = ()  # caveats of a supported pairing


@record
class _Check:
    """The reasons and notes one support check collects."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def table() -> dict:
    """The engines' lists (engine_support.json), or empty lists when the data file is absent."""
    try:
        return json.loads(DATA.read_text()).get("engines", {})
    except (OSError, ValueError):
        return {}


def engine_data(engine: str) -> dict:
    return table().get(PROFILES.get(engine, engine), {})


def base(engine: str) -> str:
    """The engine whose lists and rules apply (a profile's engine, or the engine itself)."""
    return PROFILES.get(engine, engine)


def weight_format(model) -> str:
    """What the engine has to load: the projection when one was asked for, else the checkpoint's format."""
    if model.gguf_type:
        return "gguf"
    if model.exl2_bpw:
        return "exl2"
    if model.quant_method:
        method = str(model.quant_method).lower()
        return _FORMAT_NAMES.get(method, method)
    return source_format(model)


def source_format(model) -> str:
    """The checkpoint's own format (before any --quantize projection)."""
    facts = model.facts
    if getattr(facts.repo, "format", None) == "gguf":
        return "gguf"
    if facts.quant is not None:
        method = str(facts.quant.method).lower()
        return _FORMAT_NAMES.get(method, method)
    return facts.dtype_short if facts.dtype_short in FLOATS else "fp16"


def check(engine: str, model, settings) -> Verdict:
    c = _Check()
    _platform(engine, settings, c)
    if engine in PROFILES:
        _profile(engine, model, settings, c)
    else:
        _architecture(engine, model, settings, c)
        _weights(engine, model, settings, c)
        _kv_cache(engine, model, settings, c)
    _llamacpp_cache(engine, model, settings, c)
    _backend(engine, model, settings, c)
    _parallel(engine, model, settings, c)
    return Verdict(not c.reasons, tuple(dict.fromkeys(c.reasons)), tuple(dict.fromkeys(c.notes)))


def _profile(engine: str, model, s, c: _Check) -> None:
    """Ollama and LM Studio: llama.cpp's architectures and cache types, GGUF files only (a Hub checkpoint counts
    when it is sized as a GGUF conversion: --quantize gguf:TYPE)."""
    label = LABELS[engine]
    if weight_format(model) != "gguf":
        c.reasons.append(f"{label} loads GGUF files only: choose a GGUF repo (org/name-GGUF:Q4_K_M) or size a "
                         f"conversion with --quantize gguf:TYPE")
        return
    sub = _Check()
    _architecture("llamacpp", model, s, sub)
    _weights("llamacpp", model, s, sub)
    _kv_cache("llamacpp", model, s, sub)
    c.reasons += [r.replace("llama.cpp", label, 1) if r.startswith("llama.cpp") else r for r in sub.reasons]
    c.notes += [n for n in sub.notes if not n.startswith("as convert_hf_to_gguf.py")]


def _llamacpp_cache(engine: str, model, s, c: _Check) -> None:
    """llama.cpp's own refusals at context creation (src/llama-context.cpp llama_init_from_model): a quantized V
    cache with flash attention off ("quantized V cache requires flash_attn to be enabled"), different K and V types
    on an MLA model ("model does not support different K and V cache types"), and K/V block sizes that do not
    divide the head size."""
    if base(engine) != "llamacpp":
        return
    from .estimate.gguf import KV_CACHE_TYPES, TYPE_TRAITS
    from .estimate.llamacpp import PROFILES as LCPP, cache_type

    label = LABELS[engine]
    default = cache_type(s)
    tk, tv = s.cache_type_k or default, s.cache_type_v or default
    for name, t in (("--cache-type-k", tk), ("--cache-type-v", tv)):
        if t not in KV_CACHE_TYPES:
            c.reasons.append(f"{label} has no {t} KV cache ({name}: {', '.join(KV_CACHE_TYPES)})")
            return
    flash = s.flash_attn if s.flash_attn is not None else LCPP[engine].flash_attn
    if tv not in ("f32", "f16", "bf16") and not flash:
        why = "--no-flash-attn" if s.flash_attn is False else f"{label} turns flash attention off by default"
        c.reasons.append(f"{label} needs flash attention for a quantized V cache ({tv}), and {why} "
                         f"(llama-context.cpp: \"quantized V cache requires flash_attn to be enabled\")")
    kinds = {layer.kind for layer in model.layers}
    if "mla" in kinds and tk != tv:
        c.reasons.append(f"{label} caches MLA as one latent: K and V cache types must match ({tk} vs {tv})")
    if flash:
        from .specs import FullAttention

        attn = [layer for layer in model.layers if isinstance(layer, FullAttention) and layer.head_dim]
        for t, which, dims in ((tk, "K", {lay.head_dim for lay in attn}), (tv, "V", {lay.v_dim for lay in attn})):
            blck = TYPE_TRAITS[t.upper()][0]
            bad = sorted(h for h in dims if h % blck)
            if bad:
                c.reasons.append(f"{label}'s {which} cache type {t} needs the head size to be a multiple of "
                                 f"{blck} (this model's is {bad[0]})")


def _platform(engine: str, s, c: _Check) -> None:
    gpu = s.gpu.gpu if s.gpu is not None else None
    vendor = getattr(gpu, "vendor", None)
    if vendor in _VENDOR_WORDS and vendor not in PLATFORMS[engine]:
        on = " and ".join(_VENDOR_WORDS[v] for v in PLATFORMS[engine])
        c.reasons.append(f"{LABELS[engine]} runs on {on} GPUs, not {_VENDOR_WORDS[vendor]} ({gpu.name})")


# -- architectures ------------------------------------------------------------------------------------------------

def _architecture(engine: str, model, s, c: _Check) -> None:
    arch = model.arch
    names = list(arch.architectures or [])
    kinds = {layer.kind for layer in model.layers}
    label = LABELS[engine]
    data = engine_data(engine)
    known = data.get("architectures") or {}
    # llama.cpp's converter names a composite model by its text_config.architectures[0] (ENGINE_SUPPORT.md);
    # other engines by the top-level class. Both are tried.
    text_names = (model.facts.text_config or {}).get("architectures") or []
    names += [n for n in text_names if isinstance(n, str) and n not in names]
    if source_format(model) == "gguf":
        if engine != "llamacpp":
            c.reasons.append(f"{label} does not load GGUF files (llama.cpp, Ollama and LM Studio do)")
        return
    if engine == "exllamav2":
        # exllamav2/architecture.py implements attention + MLP decoders only: no latent attention, state-space or
        # linear-attention layers, no encoders.
        odd = sorted(kinds & set(_KIND_WORDS))
        if odd:
            c.reasons.append(f"ExLlamaV2 has no {' or '.join(_KIND_WORDS[k] for k in odd)} layers")
        if arch.is_encoder_decoder or not kinds & {"full_attention", "sliding_attention", "chunked_attention"}:
            c.reasons.append("ExLlamaV2 runs decoder-only models")
    if not names:
        if known:
            c.notes.append(f"the config names no architecture class; {label} support assumed from model_type "
                           f"{arch.model_type!r}")
        return
    if not known:
        return  # no list for this engine
    name = next((n for n in names if n in known), None)
    if name is not None:
        how = known[name]
        if engine == "vllm" and how == "transformers-backend":
            c.notes.append(f"vLLM runs {name} through its Transformers backend")
        if engine == "trtllm" and how in ("tensorrt", "pytorch"):
            # engine_support.json says per architecture which TensorRT-LLM runtime implements it
            from .estimate.trtllm import backend

            path = backend(s)
            if how != path:
                where = {"tensorrt": "TensorRT engine path (trtllm-build)", "pytorch": "PyTorch backend"}
                c.reasons.append(f"TensorRT-LLM implements {name} only on its {where[how]}, not the {where[path]} "
                                 f"(try --trtllm-backend {how})")
        return
    first = names[0]
    removed = data.get("removed") or {}
    plugin = data.get("plugin") or {}
    if engine == "vllm":
        from .estimate.vllm import version_tuple

        if first in removed:
            last = removed[first]
            if version_tuple(s.vllm_version) <= version_tuple(last):
                return
            c.reasons.append(f"vLLM dropped {first} after {last} (try --vllm-version {last})")
            return
        if first in plugin:
            c.reasons.append(f"vLLM runs {first} only through an out-of-tree plugin ({plugin[first]})")
            return
        if arch.is_encoder_decoder:
            c.reasons.append(f"vLLM's V1 engine has no encoder-decoder {first} (only Whisper)")
            return
        if data.get("fallback") == "transformers-backend" and arch.config_reader == "transformers":
            c.notes.append(f"{first} is not in vLLM's registry: it would run through vLLM's Transformers backend")
            return
        c.reasons.append(f"{first} is not in vLLM's model registry (read at vLLM {data.get('version', '?')})")
        return
    if engine == "transformers":
        if arch.config_reader != "transformers":
            c.notes.append(f"transformers does not know model_type {arch.model_type!r}: it runs the repo's own "
                           f"code (trust_remote_code), sized here as a standard decoder")
        return
    what = {"trtllm": "TensorRT-LLM has no", "llamacpp": "convert_hf_to_gguf.py has no converter for",
            "exllamav2": "ExLlamaV2 has no"}[engine]
    suffix = " implementation" if engine != "llamacpp" else ""
    c.reasons.append(f"{what} {first}{suffix} (read at {label} {data.get('version', '?')})")


# -- weights ------------------------------------------------------------------------------------------------------

def _weights(engine: str, model, s, c: _Check) -> None:
    label = LABELS[engine]
    fmt = weight_format(model)
    src = source_format(model)
    formats = engine_data(engine).get("weight_formats") or {}
    gpu = s.gpu.gpu if s.gpu is not None else None
    if engine == "llamacpp":
        # llama.cpp runs GGUF; a Hub checkpoint is converted first by convert_hf_to_gguf.py, which reads floats and
        # the quantisation formats listed in engine_support.json (dequantising or repacking them).
        readable = set(FLOATS) | {"gguf"} | {k for k in formats if k not in FLOATS}
        if src not in readable:
            c.reasons.append(f"convert_hf_to_gguf.py cannot read a {src} checkpoint (it reads "
                             f"{', '.join(sorted(readable - {'gguf'}))}): convert the unquantised model, then size "
                             f"it with --quantize gguf:TYPE")
        elif fmt != "gguf":
            c.notes.append("as convert_hf_to_gguf.py writes it (floats at their type; "
                           + ("quantised weights as the converter reads them)" if src not in FLOATS else
                              "pass --quantize gguf:TYPE for a quantised file)"))
        return
    if fmt == "gguf":
        c.reasons.append(f"{label} does not load GGUF files (llama.cpp does)")
        return
    if engine == "exllamav2":
        if fmt == "exl2" and model.projected and src not in FLOATS:
            c.reasons.append(f"EXL2 conversion (convert.py) reads an unquantised model, not this {src} checkpoint")
        elif fmt not in FLOATS + ("exl2", "gptq"):
            c.reasons.append(f"ExLlamaV2 loads EXL2, GPTQ and fp16 weights, not {fmt}; size an EXL2 conversion of "
                             f"the unquantised model with --quantize exl2:BPW")
        elif fmt == "gptq" and model.facts.quant is not None and model.facts.quant.bits not in (None, 4):
            c.reasons.append(f"ExLlamaV2 runs 4-bit GPTQ only (this checkpoint is {model.facts.quant.bits:g}-bit)")
        return
    if fmt == "exl2" or fmt == "exl3":
        c.reasons.append(f"{label} does not load {fmt.upper()} weights (ExLlamaV2/V3 do)")
        return
    if fmt in FLOATS:
        return
    if formats and fmt not in formats:
        removed = (engine_data(engine).get("notes") or {}).get("weight_formats_removed") or {}
        if engine == "vllm" and fmt in removed:
            from .estimate.vllm import version_tuple

            if version_tuple(s.vllm_version) <= version_tuple(removed[fmt]):
                return
            c.reasons.append(f"vLLM dropped its {fmt} loader after {removed[fmt]} (try --vllm-version "
                             f"{removed[fmt]})")
            return
        c.reasons.append(f"{label} has no {fmt} weight loader (read at {label} "
                         f"{engine_data(engine).get('version', '?')})")
        return
    if fmt == "fp8" and gpu is not None and gpu.sm:
        # TensorRT-LLM FP8 GEMMs need Ada/Hopper (SM 8.9+, docs/source/reference/precision.md); vLLM runs FP8
        # weights on Ampere through its weight-only Marlin kernel (SM 8.0+, quantization/fp8.py).
        if engine == "trtllm" and gpu.sm < 8.9:
            c.reasons.append(f"TensorRT-LLM's FP8 weights need SM 8.9+ ({gpu.name} is SM {gpu.compute_capability})")
        elif engine == "vllm" and gpu.sm < 8.0:
            c.reasons.append(f"vLLM's FP8 weights need SM 8.0+ ({gpu.name} is SM {gpu.compute_capability})")
        elif engine == "vllm" and gpu.sm < 8.9:
            c.notes.append(f"{gpu.name} has no FP8 tensor cores: vLLM runs FP8 weights weight-only (Marlin)")


# -- KV cache -----------------------------------------------------------------------------------------------------

def _kv_cache(engine: str, model, s, c: _Check) -> None:
    kv = s.kv_dtype
    if kv == "auto" or kv in FLOATS:
        return
    label = LABELS[engine]
    accepted = engine_data(engine).get("kv_cache_dtypes") or {}
    if accepted and kv not in accepted:
        own = [k for k in accepted if k in QUANTISED_KV]
        c.reasons.append(f"{label} has no {kv} KV cache" + (f" (it has {', '.join(own)})" if own else ""))
        return
    # Per backend (engine_support.json notes; for INT8: the PyTorch backend's KV manager refuses it, "Cannot support
    # {dtype} KV cache.", _torch/pyexecutor/resource_manager.py get_cache_bytes_per_token).
    by_backend = (engine_data(engine).get("notes") or {}).get("kv_cache_dtypes_by_backend") or {}
    if engine == "trtllm" and by_backend.get(kv) == "tensorrt":
        from .estimate.trtllm import backend

        if backend(s) != "tensorrt":
            c.reasons.append(f"TensorRT-LLM's {kv} KV cache exists only on the TensorRT engine path, not the "
                             f"PyTorch backend (--trtllm-backend tensorrt)")
    gpu = s.gpu.gpu if s.gpu is not None else None
    if kv == "fp8" and gpu is not None and gpu.sm:
        # vLLM: no attention backend takes an fp8 cache below SM 8.0; TensorRT-LLM's FP8 KV needs SM 8.9+.
        if engine == "vllm" and gpu.sm < 8.0:
            c.reasons.append(f"vLLM has no fp8 KV cache below SM 8.0 ({gpu.name})")
        if engine == "trtllm" and gpu.sm < 8.9:
            c.reasons.append(f"TensorRT-LLM's FP8 KV cache needs SM 8.9+ ({gpu.name})")


def _backend(engine: str, model, s, c: _Check) -> None:
    """What one TensorRT-LLM runtime cannot do."""
    if engine != "trtllm":
        return
    from .estimate.trtllm import PYTORCH_BACKEND_SEEN_SINCE, backend, version_tuple

    path = backend(s)
    if path == "pytorch" and version_tuple(s.trtllm_version) < PYTORCH_BACKEND_SEEN_SINCE:
        c.reasons.append(f"TensorRT-LLM {s.trtllm_version} predates the PyTorch backend (no log of it before "
                         f"{'.'.join(map(str, PYTORCH_BACKEND_SEEN_SINCE))}): use --trtllm-backend tensorrt")


def _parallel(engine: str, model, s, c: _Check) -> None:
    heads = model.arch.num_attention_heads
    # vLLM and TensorRT-LLM shard attention heads evenly over tensor-parallel ranks (vLLM
    # ModelConfig.verify_with_parallel_config: "Total number of attention heads must be divisible by tensor
    # parallel size"); the others split layers.
    if engine in ("vllm", "trtllm") and s.tp > 1 and heads and heads % s.tp:
        c.reasons.append(f"{LABELS[engine]} shards the {heads} attention heads evenly: tensor parallel {s.tp} does "
                         f"not divide them")


def rows() -> list[dict]:
    """The table for `hfvram engines`: per engine its version and what it runs; the llama.cpp profiles with their
    own release and sources, llama.cpp's architectures and cache types, and GGUF as the only weight format."""
    out = []
    for engine in ENGINES + tuple(PROFILES):
        d = engine_data(engine)
        row = {
            "engine": engine, "label": LABELS[engine], "version": d.get("version"), "read_from": d.get("read_from"),
            "architectures": sorted(d.get("architectures") or {}),
            "weight_formats": sorted(set(FLOATS) | set(d.get("weight_formats") or {})),
            "kv_cache_dtypes": sorted({"auto", *FLOATS} | set(d.get("kv_cache_dtypes") or {})),
        }
        if engine in PROFILES:
            from .estimate.llamacpp import profile

            prof = profile(engine)
            row.update(label=f"{LABELS[engine]} (a llama.cpp profile: GGUF only)", version=prof.version,
                       read_from=f"{prof.source}; architectures and KV-cache types: llama.cpp's ({d.get('version')})",
                       weight_formats=["gguf"])
        out.append(row)
    return out
