"""What would make it fit: the smallest change, tried for real with the same estimator."""

from __future__ import annotations

from dataclasses import replace

from ..gpus import GPUChoice
from ..units import fmt_bytes, fmt_tokens
from .base import Settings
from .model import build

# Smaller KV element types each engine accepts, tried in order.
KV_OPTIONS = {
    "transformers": ["fp8"], "vllm": ["fp8"], "trtllm": ["fp8"], "llamacpp": ["q8_0", "q4_0"],
    "exllamav2": ["q8", "q4"],
}
# Weight formats each engine runs, tried in order of fidelity.
QUANT_OPTIONS = {
    "transformers": ["fp8", "int8", "nf4"], "vllm": ["fp8", "awq"], "trtllm": ["fp8", "int4"],
    "llamacpp": ["gguf:Q8_0", "gguf:Q5_K_M", "gguf:Q4_K_M", "gguf:Q3_K_M"], "exllamav2": ["exl2:6.0", "exl2:4.65",
                                                                                          "exl2:3.5"],
}
TP_OPTIONS = (2, 4, 8)


def suggestions(name: str, model, settings: Settings, est) -> list[str]:
    """`est`: this framework's estimate at `settings` (which does not fit). Trials only need a verdict."""
    from functools import partial

    from . import estimate_one

    trial_of = partial(estimate_one, name, max_context=False)
    out: list[str] = []
    if est.max_context and est.max_context < settings.context:
        out.append(f"fits at --context {fmt_tokens(est.max_context)} or less")
    for kv in KV_OPTIONS[name]:
        if kv == settings.kv_dtype:
            continue
        trial = trial_of(model, replace(settings, kv_dtype=kv))
        if trial.fits:
            out.append(f"fits with --kv-dtype {kv} (KV {fmt_bytes(trial.components.get('kv_cache', 0))})")
            break
    if not model.projected:
        for q in QUANT_OPTIONS[name]:
            trial_model = build(model.facts, q)
            trial = trial_of(trial_model, settings)
            if trial.fits:
                out.append(f"fits with --quantize {q} (weights {fmt_bytes(trial.components.get('weights', 0))} "
                           f"per GPU)")
                break
    gpu = settings.gpu
    heads = model.arch.num_attention_heads or 1
    for tp in TP_OPTIONS:
        if tp <= settings.tp * settings.pp or heads % tp:
            continue
        trial = trial_of(model, replace(settings, tp=tp, pp=1, gpu=GPUChoice(gpu.gpu, tp)))
        if trial.fits:
            flag = "--tp" if name in ("vllm", "trtllm") else "--tp (layer split)"
            out.append(f"fits on {tp} x {gpu.gpu.name} with {flag} {tp}")
            break
    return out
