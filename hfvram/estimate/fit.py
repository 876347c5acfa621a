"""What would make it fit: the smallest changes, each tried for real with the same estimator and settings.

Every suggestion is a `Suggestion(text, settings)`: `settings` are the `hfvram.analyze` keywords to re-run with
(the CLI flags in `text`), and a suggestion is only offered after a trial with exactly those settings fits. When
the engine itself takes more than the allowed memory (vLLM's gpu_memory_utilization, TensorRT-LLM's
free_gpu_memory_fraction), the knob that keeps it within goes into every suggestion.
"""

from __future__ import annotations

from dataclasses import replace

from ..gpus import GPUChoice
from ..units import fmt_bytes, fmt_tokens
from .base import Settings, Suggestion, largest_fitting
from .model import build

# Smaller KV element types each engine accepts, tried in order (unsupported ones are skipped by hfvram.support).
KV_OPTIONS = {
    "transformers": [], "vllm": ["fp8"], "trtllm": ["fp8"], "llamacpp": ["q8_0", "q4_0"],
    "exllamav2": ["q8", "q4"],
}
# Weight formats each engine runs, tried in order of fidelity.
QUANT_OPTIONS = {
    "transformers": ["fp8", "int8", "nf4"], "vllm": ["fp8", "awq"], "trtllm": ["fp8", "int4"],
    "llamacpp": ["gguf:Q8_0", "gguf:Q5_K_M", "gguf:Q4_K_M", "gguf:Q3_K_M"],
    "exllamav2": ["exl2:6.0", "exl2:4.65", "exl2:3.5"],
}
TP_OPTIONS = (2, 4, 8)
for _profile in ("ollama", "lmstudio"):  # profiles of llama.cpp: its cache types and GGUF types
    KV_OPTIONS[_profile] = KV_OPTIONS["llamacpp"]
    QUANT_OPTIONS[_profile] = QUANT_OPTIONS["llamacpp"]

# analyze() keyword -> CLI flag, for the words of a suggestion.
FLAGS = {"context": "--context", "kv_dtype": "--kv-dtype", "quantize": "--quantize", "tp": "--tp", "gpu": "--gpu",
         "gpu_memory_utilization": "--gpu-memory-utilization",
         "free_gpu_memory_fraction": "--free-gpu-memory-fraction", "gpu_layers": "--gpu-layers",
         "n_cpu_moe": "--n-cpu-moe"}


def flags(changes: dict) -> str:
    parts = []
    for key, value in changes.items():
        if key == "context":
            value = fmt_tokens(value) if value % 1024 == 0 else str(value)
        parts.append(f"{FLAGS[key]} {value}")
    return " ".join(parts)


def suggestions(name: str, model, settings: Settings, est) -> list[Suggestion]:
    """`est`: this framework's estimate at `settings` (which does not fit)."""
    from . import estimate_one

    if not est.supported:
        return []
    out: list[Suggestion] = []
    knob = _engine_knob(name, model, settings, est)
    base = replace(settings, **knob)

    def trial(changes: dict, trial_model=model, trial_settings: Settings | None = None):
        s = trial_settings or replace(base, **{k: v for k, v in changes.items() if k in _SETTINGS_FIELDS})
        return estimate_one(name, trial_model, s, max_context=False)

    def offer(changes: dict, detail: str = "") -> None:
        text = f"fits with {flags({**knob, **changes})}" + (f" ({detail})" if detail else "")
        out.append(Suggestion(text, {**knob, **changes}))

    if knob and trial({}).fits:
        offer({}, f"keeps {name}'s own share within the allowed memory")
        return out
    # A shorter context (with the knob, if one is needed).
    longest = estimate_one(name, model, base).max_context
    if longest and longest < settings.context:
        offer({"context": longest}, "or less")
    for kv in KV_OPTIONS[name]:
        if kv == settings.kv_dtype:
            continue
        t = trial({"kv_dtype": kv})
        if t.fits:
            offer({"kv_dtype": kv}, f"KV {fmt_bytes(t.components.get('kv_cache', 0))}")
            break
    if not model.projected and getattr(model.facts, "gguf", None) is None:  # a GGUF file is not re-quantised
        for q in QUANT_OPTIONS[name]:
            t = trial({"quantize": q}, trial_model=build(model.facts, q), trial_settings=base)
            if t.fits:
                offer({"quantize": q}, f"weights {fmt_bytes(t.components.get('weights', 0))} per GPU")
                break
    gpu = settings.gpu
    heads = model.arch.num_attention_heads or 1
    for tp in TP_OPTIONS:
        if tp <= settings.tp * settings.pp or (name in ("vllm", "trtllm") and heads % tp):
            continue
        tp_settings = replace(base, tp=tp, pp=1, gpu=GPUChoice(gpu.gpu, tp))
        if trial({}, trial_settings=tp_settings).fits:
            changes = {"tp": tp}
            if gpu.gpu.klass != "custom":
                changes["gpu"] = f"{gpu.gpu.name}:{tp}"
            offer(changes, "tensor parallel" if name in ("vllm", "trtllm") else "layers split over the GPUs")
            break
    if name in ("llamacpp", "ollama", "lmstudio"):
        _offload(name, model, base, offer)
    return out


# Fields of Settings a suggestion may change directly (quantize changes the model, not the settings).
_SETTINGS_FIELDS = {"context", "kv_dtype", "tp", "gpu_memory_utilization", "free_gpu_memory_fraction", "gpu_layers",
                    "n_cpu_moe"}


def _offload(name: str, model, settings: Settings, offer) -> None:
    """llama.cpp's answer when the model does not fit: keep part of it in host RAM. For an MoE model first the
    expert offload people use (`--n-cpu-moe N`: attention, shared weights and the other layers' experts on the GPU;
    `--cpu-moe` / `-ot exps=CPU` when every layer's experts go), then partial offload (`--gpu-layers N`, the output
    layer and the last N - 1 layers on the GPU). Each is the largest GPU share that fits, tried for real with the
    same settings (host RAM included when --ram or --gpu auto gives a limit). Ollama has no expert setting (its
    llama-server --fit moves experts itself, which the estimate's notes say); it takes num_gpu, llama.cpp's -ngl."""
    from . import estimate_one

    if settings.gpu_layers is not None or settings.n_cpu_moe is not None:
        return  # the user placed the layers already
    n = len(model.layers)

    def trial(**changes):
        return estimate_one(name, model, replace(settings, **changes), max_context=False)

    def gpu_fits(**changes) -> bool:
        # the GPU side alone: it only improves as more stays in host RAM, while the host side only worsens, so the
        # best placement is the one with the most on the GPU that fits there; then it is tried with the RAM limit
        return bool(estimate_one(name, model, replace(settings, ram=None, **changes), max_context=False).fits)

    def host(est) -> str:
        return fmt_bytes(est.extras.get("host_bytes", 0))

    if model.arch.moe and name != "ollama":
        def fits_moe(k: int) -> bool:  # k = layers whose experts stay in host RAM
            return gpu_fits(n_cpu_moe=k)

        t = None
        if fits_moe(n):
            k = n - (largest_fitting(lambda m: fits_moe(n - m), 0, n) or 0)
            t = trial(n_cpu_moe=k)
        if t is not None and t.fits:
            what = "every layer's routed experts in host RAM, = --cpu-moe / -ot exps=CPU" if k >= n else \
                f"the routed experts of the first {k} of {n} layers in host RAM"
            lms = f"; LM Studio numCpuExpertLayersRatio {k / n:.2f}" if name == "lmstudio" else ""
            offer({"n_cpu_moe": k}, f"{what}: {host(t)} of host RAM, {fmt_bytes(t.per_gpu_bytes)} per GPU{lms}; "
                                    f"slower")
    best = largest_fitting(lambda k: gpu_fits(gpu_layers=k), 1, n)
    t = trial(gpu_layers=best) if best is not None else None
    if t is not None and t.fits:
        runs = "Ollama num_gpu" if name == "ollama" else "-ngl"
        offer({"gpu_layers": best}, f"{runs} {best}: the output and the last {best - 1} of {n} layers on the GPU, "
                                    f"the rest from {host(t)} of host RAM, much slower")


def _engine_knob(name: str, model, settings: Settings, est) -> dict:
    """The engine's own share setting that keeps its process within the allowed memory, when it is the problem."""
    allowed = settings.allowed_bytes
    if allowed is None or est.held_high <= allowed:  # at the high end of the error band, as the verdict
        return {}
    if name == "vllm":
        from .vllm import utilization_within

        graphs_outside = est.held_bytes - (est.budget_bytes or 0) - est.components.get("cuda_context", 0)
        util = utilization_within(settings, allowed, max(0, graphs_outside))
        return {"gpu_memory_utilization": util} if util else {}
    if name == "trtllm":
        from .trtllm import fraction_within

        peak = est.fixed_high_bytes or est.held_bytes - est.extras.get("kv_pool_bytes", 0)  # peak at the high end
        fraction = fraction_within(settings, peak, allowed)
        return {"free_gpu_memory_fraction": fraction} if fraction else {}
    return {}
