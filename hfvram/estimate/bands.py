"""Error bands: how far the memory an engine really takes may lie from our estimate, from the held-out error of each
component for that engine (README, "Error bands").

`hfvram/data/error_bands.json` is written by `python -m hfvram.accuracy --write-bands` from the published
measurements in validation/, scored leave-one-source-out (a figure never counts as held out for a constant that
was fitted to it). For every engine and component it holds two margins:

- `above`: the 90th percentile (nearest rank), over the held-out cases whose measured value came out *above* our
  estimate, of how far above (the high end of the band), and `below` the same over the cases that came out below;
- as a share of the estimate (`scale` "relative": weights, KV cache, activations, compute and runtime buffers grow
  with the model) or in bytes (`scale` "bytes": non-torch memory, CUDA graphs, the CUDA context and the allocator's
  slack are fixed overheads whose held-out error is which neighbouring constant stood in, not a share of their size);
- non-torch memory apart for one GPU and for tensor parallelism (NCCL and all-reduce buffers exist only with TP).

An engine's `total` is its allocator peaks and nvidia-smi figures and, for vLLM and TensorRT-LLM, the fixed parts a
measured KV pool leaves. A component with fewer than MIN_CASES held-out cases, or cases from fewer than MIN_SOURCES
sources, takes its engine's total error instead (an engine without enough totals: every engine's totals), widened to
its own largest deviations when it has any (`below_bytes` / `above_bytes`: a fixed overhead's, in bytes, as a floor);
the file says which (`basis`). The margins of the components add up (errors are not assumed to cancel): the band of
a sum is the sum of the bands.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "error_bands.json"
SCHEMA = "hfvram/error-bands/1"

# Fewer cases than this, or from fewer sources, and a component takes its engine's total error instead: below four
# even the largest deviation says little about the next case, and one source cannot be held out from itself. From
# 4 to 9 cases the 90th percentile (nearest rank) is the largest of them, which errs on the safe side.
MIN_CASES = 4
MIN_SOURCES = 2
# The band covers nine in ten held-out cases on each side of the estimate (issue 9: "cover most held-out cases");
# the coverage actually reached is measured and written with the table.
PERCENTILE = 0.9
# Components whose error is a number of bytes rather than a share of their size (module docstring).
ABSOLUTE = frozenset({"non_torch", "cuda_graphs", "cuda_context", "allocator_slack"})
# Components whose error depends on tensor parallelism: keyed `non_torch@tp1` / `non_torch@tp>1`.
BY_TP = frozenset({"non_torch"})
# Engines run as profiles of another (Ollama and LM Studio are llama.cpp with other defaults): they share its bands.
PROFILE_OF = {"ollama": "llamacpp", "lmstudio": "llamacpp"}
# What each engine's estimate is made of (hfvram.estimate.<engine>); the data file has an entry for each.
COMPONENTS = {
    "transformers": ("weights", "kv_cache", "activations", "cuda_context", "allocator_slack", "lora", "draft"),
    "vllm": ("weights", "kv_cache", "activations", "non_torch@tp1", "non_torch@tp>1", "cuda_graphs",
             "cuda_context", "lora", "draft"),
    "trtllm": ("weights", "kv_cache", "activations", "runtime_buffers", "non_torch@tp1", "non_torch@tp>1",
               "cuda_graphs", "cuda_context", "lora", "draft"),
    "llamacpp": ("weights", "kv_cache", "compute", "cuda_context", "lora", "draft", "mmproj"),
    "exllamav2": ("weights", "kv_cache", "scratch", "cuda_context", "lora", "draft"),
}


@functools.lru_cache(maxsize=1)
def table() -> dict:
    """The bands file (an empty table, hence zero-width bands, when it has not been written yet)."""
    try:
        data = json.loads(DATA.read_text())
    except FileNotFoundError:
        return {"schema": SCHEMA, "engines": {}}
    return data


def key(component: str, tp: int = 1) -> str:
    if component in BY_TP:
        return f"{component}@tp>1" if tp > 1 else f"{component}@tp1"
    return component


def entry(engine: str, component: str, tp: int = 1, data: dict | None = None) -> dict | None:
    """The band entry for one component of one engine: its own, else the engine's total, else every engine's."""
    data = table() if data is None else data
    engine = PROFILE_OF.get(engine, engine)
    eng = data.get("engines", {}).get(engine) or {}
    comps = eng.get("components") or {}
    return comps.get(key(component, tp)) or eng.get("total") or data.get("every_engine_total")


def margin(engine: str, component: str, value: float, tp: int = 1, data: dict | None = None) -> tuple[float, float]:
    """(below, above) in bytes for one component whose estimate is `value` bytes. A component estimated at zero
    (no CUDA graphs under --enforce-eager, no NCCL without TP) has no band: nothing is allocated."""
    if value <= 0:
        return 0.0, 0.0
    e = entry(engine, component, tp, data)
    if not e:
        return 0.0, 0.0
    if e.get("scale") == "bytes":
        return min(float(value), float(e["below"])), float(e["above"])
    below = max(float(e["below"]) * value, float(e.get("below_bytes", 0.0)))
    return min(float(value), below), max(float(e["above"]) * value, float(e.get("above_bytes", 0.0)))


def margins(engine: str, components: dict, tp: int = 1, data: dict | None = None) -> tuple[float, float]:
    """(below, above) of a sum of components: the sum of their margins."""
    lo = hi = 0.0
    for name, value in components.items():
        b, a = margin(engine, name, value, tp, data)
        lo += b
        hi += a
    return lo, hi


def band(engine: str, components: dict, tp: int = 1, data: dict | None = None) -> tuple[int, int]:
    """(low, high) bytes of the sum of `components`."""
    total = sum(components.values())
    lo, hi = margins(engine, components, tp, data)
    return int(max(0.0, total - lo)), int(total + hi)


def high(engine: str, components: dict, tp: int = 1) -> int:
    return band(engine, components, tp)[1]


def apply(est, tp: int = 1) -> None:
    """Set the estimate's per-GPU band (low_bytes, high_bytes) from its components."""
    if not est.supported or not est.components:
        return
    est.low_bytes, est.high_bytes = band(est.framework, est.components, tp)
