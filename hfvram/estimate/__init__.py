"""Estimators: one module per framework, each a small policy over the per-layer specs.

    transformers  HF Transformers generate(): the PyTorch-style baseline
    vllm          vLLM V1: gpu_memory_utilization budget, paged KV pool
    trtllm        TensorRT-LLM: fraction of the memory free after weights and profiling
    llamacpp      llama.cpp: GGUF weights, padded n_ctx, compute buffer, embeddings on the host
    exllamav2     ExLlamaV2: EXL2 weights, preallocated (optionally quantised) cache

and two profiles of the llama.cpp policy, each with its front end's own defaults (hfvram.estimate.llamacpp):

    ollama        Ollama: num_ctx by VRAM tier, -c num_ctx x parallel, llama-server --fit placement
    lmstudio      LM Studio: 4 concurrent predictions on a unified KV cache, the model kept in RAM too

`-f all` (and the default) is the five engines; the profiles run when named (`-f ollama,lmstudio`).

`run()` applies the chosen ones, then the parts every framework shares: fit and largest context (for estimators
that do not work them out themselves), the difference to the PyTorch baseline, and what would make it fit.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import import_module

from ..errors import UsageError
from . import bands
from .base import CUDA_CONTEXT_BYTES, Estimate, Settings, Suggestion, fit_allocating, largest_fitting
from .model import Model, build

NAMES = ("transformers", "vllm", "trtllm", "llamacpp", "exllamav2")
PROFILES = {"ollama": "llamacpp", "lmstudio": "llamacpp"}  # profile -> the engine whose policy it runs
ALL_NAMES = NAMES + tuple(PROFILES)
ALIASES = {"hf": "transformers", "tensorrt-llm": "trtllm", "tensorrt_llm": "trtllm", "trt": "trtllm",
           "llama.cpp": "llamacpp", "llama-cpp": "llamacpp", "gguf": "llamacpp", "exl2": "exllamav2",
           "exllama": "exllamav2", "lm-studio": "lmstudio", "lms": "lmstudio"}
BASELINE = "transformers"


def framework_names(spec: str | list[str] | tuple | None) -> list[str]:
    if not spec:
        return list(NAMES)
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    out = []
    for item in items:
        key = ALIASES.get(item.strip().lower(), item.strip().lower())
        if key == "all":
            return list(NAMES)
        if key not in ALL_NAMES:
            raise UsageError(f"unknown framework {item!r} (choose from {', '.join(ALL_NAMES)})")
        if key not in out:
            out.append(key)
    return out


def base_engine(name: str) -> str:
    """The engine whose policy a framework name runs (a profile's engine, or the name itself)."""
    return PROFILES.get(name, name)


def module(name: str):
    """The estimator of a framework: its module, or for a profile the llama.cpp policy with that profile's
    defaults (an object with the same `estimate(model, settings)`)."""
    if name in PROFILES:
        return import_module(f"{__name__}.{PROFILES[name]}").profile(name)
    return import_module(f"{__name__}.{name}")


# What --kv-paging means where the engine has no such choice.
PAGING_NOTES = {
    "transformers": "transformers has no paged cache: --kv-paging contiguous is --cache-implementation static",
    "llamacpp": "llama.cpp allocates its cells contiguously (n_ctx padded to 256): --kv-paging does not apply",
    "exllamav2": "ExLlamaV2 preallocates the whole context in 256-token pages: --kv-paging does not apply",
}


def estimate_one(name: str, model: Model, settings: Settings, max_context: bool = True) -> Estimate:
    """One framework's estimate with the fit verdict, or an unsupported one when the engine cannot run this model
    with these settings (hfvram.support). `max_context=False` skips the search for the largest context that fits
    (a trial that only needs the verdict)."""
    from ..support import LABELS, check

    verdict = check(name, model, settings)
    if not verdict.supported:
        est = Estimate(framework=name, components={}, gpus=max(1, settings.tp * settings.pp), supported=False,
                       unsupported=list(verdict.reasons), engine={"label": LABELS[name]})
        if settings.gpu is not None:
            est.fits = False
            est.fit_reason = f"{LABELS[name]} cannot run it: {verdict.reasons[0]}"
        return est
    if name == "transformers" and settings.kv_paging == "contiguous":
        settings = replace(settings, cache_implementation="static")
    est = module(name).estimate(model, settings)
    bands.apply(est, settings.tp)  # low_bytes / high_bytes from each component's held-out error
    card = settings.gpu.gpu if settings.gpu is not None else None
    if card is not None and card.vendor not in ("amd", "apple") and not card.resident_threads and \
            est.components.get("cuda_context") == CUDA_CONTEXT_BYTES:
        # (the context grows with the card: 86 MiB bare on an RTX 3060, 541 MiB on an H100; base.cuda_context_bytes)
        est.notes.append(f"the CUDA context is counted as {CUDA_CONTEXT_BYTES >> 20} MiB, a guess: {card.name}'s SM "
                         f"count is not known")
    est.notes[:0] = [n for n in verdict.notes if n not in est.notes]
    paging = PAGING_NOTES.get(base_engine(name))
    if settings.kv_paging and paging and paging not in est.notes:
        est.notes.append(paging)
    gpu = settings.gpu
    if gpu is not None and est.fits is None:
        asked = dict(est.components)

        def need_at(c: int) -> dict:
            if c == settings.context:
                return asked
            return dict(module(name).estimate(model, settings.with_context(c)).components)

        fit_allocating(est, settings, model, need_at, search=max_context)
    if gpu is not None and max_context and est.max_context:
        est.max_context = _verified_max_context(name, model, settings, est.max_context)
    if gpu is not None and est.fits is not None:
        devices = settings.tp * settings.pp
        if devices != gpu.count:
            est.notes.append(f"--gpu asks for {gpu.count} GPU(s) but the layout uses {devices} (--tp x --pp)")
    return est


def _verified_max_context(name: str, model: Model, settings: Settings, found: int) -> int | None:
    """The largest context is searched with the settings' other figures held; engines whose defaults move with the
    context (vLLM's batched-token default, say) can disagree at the edge. Re-run the estimate there, and search
    with whole re-runs when it does not fit, so that advice to use it holds."""
    def fits(c: int) -> bool:
        return bool(estimate_one(name, model, settings.with_context(c), max_context=False).fits)

    if found == settings.context or fits(found):
        return found
    return largest_fitting(fits, 1, found)


def run(model: Model, settings: Settings, names: list[str], suggest: bool = True) -> dict[str, Estimate]:
    results = {name: estimate_one(name, model, settings) for name in names}
    base = results.get(BASELINE) or (estimate_one(BASELINE, model, settings) if len(names) > 1 else None)
    if base is not None and base.supported:
        for name, est in results.items():
            if name != BASELINE and base.per_gpu_bytes and est.supported:
                est.extras["vs_transformers"] = round(est.per_gpu_bytes / base.per_gpu_bytes - 1, 4)
    if suggest and settings.gpu is not None:
        from .fit import suggestions

        for name, est in results.items():
            if est.fits is False:
                est.suggestions = suggestions(name, model, settings, est)
    return results


__all__ = ["ALL_NAMES", "Estimate", "Model", "NAMES", "PROFILES", "Settings", "Suggestion", "base_engine", "build",
           "framework_names", "run", "replace"]
