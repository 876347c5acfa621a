"""Self-contained HTML reports: `hfvram MODEL --format html` and `hfvram scan ... --format html`.

One file, no network: inline CSS and hand-written SVG, no script but the data. Every plotted number is the JSON
document's own (`Analysis.to_dict()` for a model, the scan rows for a scan), embedded in the page as
`<script type="application/json" id="hfvram-data">`, and each chart element carries the value it draws in a data
attribute (`data-bytes`, `data-context`, ...), so a test can read the rendered page and compare the two.
"""

from __future__ import annotations

import json
import math
import re
from html import escape
from typing import IO

from ..units import fmt_bytes
from .table import DEFAULT_MARK, SHORT_LABELS, note_lines, short_tokens, summary_rows

# Okabe & Ito's colour-blind-safe palette (Color Universal Design, jfly.uni-koeln.de/color); every colour is paired
# with a label, a dash pattern or a text verdict, so nothing is told by colour alone (and it prints in grey).
ENGINE_STYLE = {  # framework -> (colour, SVG dash pattern)
    "transformers": ("#E69F00", ""),
    "vllm": ("#0072B2", "8 4"),
    "trtllm": ("#009E73", "2 3"),
    "llamacpp": ("#D55E00", "10 3 2 3"),
    "exllamav2": ("#CC79A7", "4 2"),
    "ollama": ("#D55E00", "1 3"),  # llama.cpp profiles: llama.cpp's colour, their own dashes
    "lmstudio": ("#D55E00", "6 2 1 2"),
}
COMPONENTS = {  # component key (Estimate.components) -> (label, colour)
    "weights": ("weights", "#0072B2"),
    "kv_cache": ("KV cache", "#56B4E9"),
    "activations": ("activations", "#E69F00"),
    "compute": ("compute buffer", "#E69F00"),
    "scratch": ("scratch buffers", "#E69F00"),
    "cuda_graphs": ("CUDA graphs", "#CC79A7"),
    "non_torch": ("outside PyTorch's allocator", "#D55E00"),
    "cuda_context": ("CUDA context", "#8C8C8C"),
    "allocator_slack": ("allocator slack", "#F0E442"),
    "lora": ("LoRA", "#009E73"),
    "draft": ("draft model", "#3D3D3D"),
}
OTHER_COMPONENT = ("other", "#BBBBBB")


def chart_contexts(context: int, max_context: int | None) -> list[int]:
    """Contexts for the memory-against-context chart: powers of two from 1K (or the requested context, if smaller)
    up to the larger of 32K, the model's maximum and the requested context, plus those two exactly."""
    top = max(32768, context, max_context or 0)
    top = min(top, max(context, 1 << 24))  # up to 16M tokens (Llama 4 Scout's 10M included), or the context
    low = min(1024, context)
    points = {context}
    n = 1 << max(0, (low - 1).bit_length())
    points.add(low)
    while n <= top:
        points.add(n)
        n <<= 1
    if max_context and max_context <= top:
        points.add(max_context)
    return sorted(points)


def add_chart_projections(result) -> None:
    """Fill `result.projections` (context -> framework -> per-GPU bytes, what `--json` carries under
    "projections") at `chart_contexts`, the way `analyze(projections=...)` does, from the analysis's own model
    and settings: the chart then plots the document's numbers."""
    from .. import estimate as est

    es = result.estimate_settings
    if es is None or not result.estimates:
        return
    names = list(result.estimates)
    for ctx in chart_contexts(es.context, result.facts.arch.max_context):
        if ctx != es.context and ctx not in result.projections:
            result.projections[ctx] = {n: (e.per_gpu_bytes if e.supported else None) for n, e in
                                       est.run(result.model, es.with_context(ctx), names, suggest=False).items()}


# -- pieces ---------------------------------------------------------------------------------------------------------

def _e(text) -> str:
    return escape("" if text is None else str(text), quote=True)


def _json_script(doc) -> str:
    # JSON with <, > and & as \u escapes is still the same JSON, and cannot close the script element early.
    text = json.dumps(doc, indent=1, sort_keys=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="hfvram-data">\n{text}\n</script>'


def _breakable(model: str) -> str:
    """A model id, escaped, that may break after `/`, `-`, `_` and `.` in a narrow column (not inside a word)."""
    return re.sub(r"([/_.-])", r"\1<wbr>", _e(model))


def _label(name: str | None) -> str:
    return SHORT_LABELS.get(name or "", name or "-")


def _tokens(n: int) -> str:
    """4K, 32K, 35.7K, 1M, 10M: context labels (short_tokens, with millions)."""
    return f"{n >> 20}M" if n >= 1 << 20 and n % (1 << 20) == 0 else short_tokens(n)


def _gib(n, units: str) -> str:
    return fmt_bytes(n, units) if n is not None else "-"


def _nice_step(top: float, ticks: int = 5) -> float:
    """A 1/2/5 x 10^k step giving about `ticks` ticks up to `top`."""
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _unit_size(units: str) -> int:
    return 10**9 if units == "GB" else 1 << 30


def _allowed_bytes(d: dict) -> int | None:
    """Memory the deployment may hold per GPU (the GPU, --max-memory and --headroom together)."""
    return (d["gpu"] or {}).get("allowed_bytes")


CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #ffffff; --bg: #f6f8fa;
  --fit: #1a7f37; --fit-bg: #dafbe1; --nofit: #cf222e; --nofit-bg: #ffebe9; --na: #59636e; --na-bg: #eef1f4;
  --err: #9a6700; --err-bg: #fff8c5; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
header h1 { font-size: 1.35rem; margin: 0 0 4px; overflow-wrap: anywhere; }
header p { margin: 2px 0; color: var(--muted); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin: 14px 0; break-inside: avoid; page-break-inside: avoid; }
h2 { font-size: 1.05rem; margin: 0 0 10px; }
.caption { color: var(--muted); font-size: .85rem; margin: 8px 0 0; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-weight: 600; background: var(--bg); }
td.r, th.r { text-align: right; }
.fits { background: var(--fit-bg); color: var(--fit); }
.does-not-fit { background: var(--nofit-bg); color: var(--nofit); }
.unsupported { background: var(--na-bg); color: var(--na); }
.error { background: var(--err-bg); color: var(--err); }
.unknown { color: var(--muted); }
.short { color: var(--nofit); font-weight: 600; }
.verdict { font-weight: 600; white-space: nowrap; }
.bars { display: grid; gap: 10px; }
.bar-row .bar-label { display: flex; flex-wrap: wrap; gap: 2px 10px; align-items: baseline; margin-bottom: 3px; }
.bar-row .engine { font-weight: 600; min-width: 6.5em; }
.bar-row svg.bar { display: block; width: 100%; height: 26px; }
.bar-row.unsupported { padding: 6px 8px; border-radius: 6px; }
.axis { position: relative; height: 1.3em; font-size: .75rem; color: var(--muted); margin-top: 2px; }
.axis span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.axis span:first-child { transform: none; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 10px 0 0; padding: 0; list-style: none;
  font-size: .85rem; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; border: 1px solid rgba(0,0,0,.15); }
.legend svg { width: 30px; height: 12px; }
svg.chart { display: block; width: 100%; height: auto; max-width: 760px; font-size: 12px; }
svg.chart text { fill: var(--fg); }
svg.chart .grid { stroke: #e4e8ec; }
svg.chart .axis-line { stroke: #8c959f; }
svg.chart .allowed { stroke: var(--nofit); stroke-width: 2; }
svg.chart .max-context { stroke: #59636e; stroke-dasharray: 3 3; }
svg.chart .requested { stroke: #8c959f; stroke-dasharray: 1 3; }
svg.chart .budget { stroke-width: 1.5; stroke-dasharray: 6 3; opacity: .8; }
ul.notes { margin: 0; padding-left: 1.1em; }
ul.notes li { margin: 3px 0; overflow-wrap: anywhere; }
ul.notes .who { font-weight: 600; }
li.cannot-run .who { color: var(--na); }
li.does-not-fit .who { color: var(--nofit); }
li.suggestion .who { color: #0969da; }
table.matrix td.cell { min-width: 7.5em; }
table.matrix td.cell .ctx { font-weight: 600; display: block; }
table.matrix td.cell .need { font-size: .78rem; display: block; white-space: nowrap; }
.meter { display: block; height: 5px; background: rgba(0,0,0,.08); border-radius: 3px; margin: 3px 0 1px;
  overflow: hidden; }
.meter > span { display: block; height: 100%; background: currentColor; }
table.matrix th.model { min-width: 6em; max-width: 22em; overflow-wrap: break-word; font-weight: 600;
  background: none; }
footer { color: var(--muted); font-size: .8rem; margin: 18px 0 6px; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  main { padding: 8px; }
  section { padding: 10px; border-radius: 6px; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: 6px; }
  svg.chart { font-size: 21px; }
  th, td { padding: 4px 5px; }
}
@media print {
  body { background: #fff; font-size: 10pt; }
  main { max-width: none; padding: 0; }
  section { border: 1px solid #bbb; border-radius: 0; margin: 8pt 0; }
  .scroll { overflow: visible; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
"""


def _page(title: str, kind: str, body: str, doc) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request: the page asks for nothing
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f'<body data-kind="{kind}">\n<main>\n{body}\n'
        f'<footer>Made by hfvram (schema {_e(_schema())}). Sizes are per GPU; {_e(_units_words())}. '
        "The numbers in this page are in the embedded JSON document (id hfvram-data).</footer>\n"
        f"</main>\n{_json_script(doc)}\n</body>\n</html>\n"
    )


def _schema() -> str:
    from ..analysis import SCHEMA

    return SCHEMA


def _units_words() -> str:
    return "GiB = 2^30 bytes, GB = 10^9 bytes"


# -- one model --------------------------------------------------------------------------------------------------

def _verdict(e: dict) -> tuple[str, str]:
    """(css class, words) for one estimate."""
    if not e["supported"]:
        return "unsupported", "cannot run it"
    if e["fits"] is True:
        return "fits", "fits"
    if e["fits"] is False:
        return "does-not-fit", "does not fit"
    return "unknown", "no GPU given"


def _bars(d: dict, units: str) -> str:
    """Stacked bars: each engine's per-GPU components, on one scale, with the allowed memory as a line."""
    est = d["estimates"]
    allowed = _allowed_bytes(d)
    top = max([e["per_gpu_bytes"] for e in est.values() if e["supported"]] +
              [e["process_bytes"] for e in est.values() if e["supported"]] +
              [e.get("high_bytes") or 0 for e in est.values() if e["supported"]] + [allowed or 0, 1])
    step = _nice_step(top / _unit_size(units)) * _unit_size(units)
    top = math.ceil(top / step) * step
    width = 1000.0
    rows, used = [], []
    for name, e in est.items():
        cls, words = _verdict(e)
        label = _label(name)
        engine = e.get("engine") or {}
        if not e["supported"]:
            reasons = "; ".join(e["unsupported_reasons"]) or "not supported"
            rows.append(f'<div class="bar-row unsupported" data-framework="{_e(name)}" data-supported="false">'
                        f'<div class="bar-label"><span class="engine">{_e(label)}</span>'
                        f'<span class="verdict">cannot run it</span></div><div>{_e(reasons)}</div></div>')
            continue
        x, segs = 0.0, []
        for key, value in e["components"].items():
            if not value:
                continue
            name_, colour = COMPONENTS.get(key, OTHER_COMPONENT)
            if key not in used:
                used.append(key)
            w = value / top * width
            segs.append(f'<rect class="seg" x="{x:.2f}" y="3" width="{w:.2f}" height="20" fill="{colour}" '
                        f'data-component="{_e(key)}" data-bytes="{int(value)}"><title>{_e(label)}: {_e(name_)} '
                        f'{_e(_gib(value, units))}</title></rect>')
            x += w
        low, high = e.get("low_bytes"), e.get("high_bytes")
        if low is not None and high is not None and high > low:  # the error band (hfvram.estimate.bands)
            lx, hx = low / top * width, high / top * width
            segs.append(f'<path class="band" d="M{lx:.2f} 8V18M{lx:.2f} 13H{hx:.2f}M{hx:.2f} 8V18" fill="none" '
                        f'stroke="#1f2328" stroke-width="1.5" vector-effect="non-scaling-stroke" '
                        f'data-low-bytes="{int(low)}" data-high-bytes="{int(high)}"><title>{_e(label)}: error band '
                        f'{_e(_gib(low, units))} to {_e(_gib(high, units))}</title></path>')
        held = e["process_bytes"]
        if held and held > e["per_gpu_bytes"]:
            hx = held / top * width
            segs.append(f'<rect class="held" x="0.5" y="1" width="{hx - 1:.2f}" height="24" fill="none" '
                        f'stroke="#59636e" stroke-dasharray="4 3" vector-effect="non-scaling-stroke" '
                        f'data-bytes="{int(held)}"><title>{_e(label)} holds {_e(_gib(held, units))}</title></rect>')
        if allowed:
            ax = allowed / top * width
            segs.append(f'<line class="allowed" x1="{ax:.2f}" x2="{ax:.2f}" y1="0" y2="26" stroke="#cf222e" '
                        f'stroke-width="2" vector-effect="non-scaling-stroke" data-bytes="{allowed}">'
                        f'<title>allowed per GPU {_e(_gib(allowed, units))}</title></line>')
        verdict = f'<span class="verdict {cls}">{_e(words)}</span>' if e["fits"] is not None else ""
        held_words = (f' <span class="num">holds {_e(_gib(held, units))}</span>'
                      if held and held > e["per_gpu_bytes"] else "")
        if low is not None and high is not None:
            held_words = (f' <span class="num band">{_e(_gib(low, units))} to {_e(_gib(high, units))}</span>'
                          + held_words)
        rows.append(
            f'<div class="bar-row" data-framework="{_e(name)}" data-supported="true" '
            f'data-per-gpu-bytes="{e["per_gpu_bytes"]}" data-process-bytes="{int(held)}">'
            f'<div class="bar-label"><span class="engine">{_e(label)}</span>'
            f'<span>{_e(engine.get("label", ""))} {_e(engine.get("version", ""))}</span>'
            f'<span class="num"><b>{_e(_gib(e["per_gpu_bytes"], units))}</b></span>{held_words}{verdict}</div>'
            f'<svg class="bar" viewBox="0 0 {width:.0f} 26" preserveAspectRatio="none" role="img" '
            f'aria-label="{_e(label)}: {_e(_gib(e["per_gpu_bytes"], units))} per GPU">{"".join(segs)}</svg></div>')
    ticks = []
    v = 0.0
    while v <= top + 1:
        ticks.append(f'<span style="left:{v / top * 100:.2f}%" data-bytes="{int(v)}">'
                     f'{v / _unit_size(units):g}{"" if v else " " + units}</span>')
        v += step
    by_colour: dict[str, list[str]] = {}  # activations, compute and scratch buffers share a colour: one entry
    for k in used:
        name_, colour = COMPONENTS.get(k, OTHER_COMPONENT)
        by_colour.setdefault(colour, []).append(name_)
    legend = "".join(f'<li><span class="swatch" style="background:{c}"></span>{_e(", ".join(names))}</li>'
                     for c, names in by_colour.items())
    if allowed:
        legend += ('<li><svg viewBox="0 0 30 12"><line x1="15" x2="15" y1="0" y2="12" stroke="#cf222e" '
                   f'stroke-width="2"/></svg>allowed per GPU ({_e(_gib(allowed, units))})</li>')
    if any(e["supported"] and e.get("high_bytes") is not None for e in est.values()):
        legend += ('<li><svg viewBox="0 0 30 12"><path d="M2 2V10M2 6H28M28 2V10" fill="none" stroke="#1f2328" '
                   'stroke-width="1.5"/></svg>error band, from held-out measurements (verdicts hold at its high '
                   'end)</li>')
    if any(e["supported"] and e["process_bytes"] > e["per_gpu_bytes"] for e in est.values()):
        legend += ('<li><svg viewBox="0 0 30 12"><rect x="1" y="1" width="28" height="10" fill="none" '
                   'stroke="#59636e" stroke-dasharray="4 3"/></svg>what the process holds (its own budget)</li>')
    ctx, batch = d["kv_cache"]["context"], d["kv_cache"]["batch"]
    return (f'<section id="components"><h2>Memory per GPU, by component, at {ctx:,} tokens x {batch}</h2>'
            f'<div class="bars" data-scale-bytes="{int(top)}">{"".join(rows)}</div>'
            f'<div class="axis">{"".join(ticks)}</div><ul class="legend">{legend}</ul>'
            '<p class="caption">The most loaded GPU. Engines that reserve a budget of their own (vLLM: '
            'gpu_memory_utilization x the GPU; TensorRT-LLM: a share of the free memory for its KV cache) hold '
            'more than the request needs: the dashed box.</p></section>')


def _series(d: dict) -> tuple[list[int], dict[str, dict[int, int | None]]]:
    """Per framework, per context: per-GPU bytes from the document (the estimate at its context and the
    projections)."""
    ctx = d["kv_cache"]["context"]
    series: dict[str, dict[int, int | None]] = {
        n: {ctx: (e["per_gpu_bytes"] if e["supported"] else None)} for n, e in d["estimates"].items()}
    for c, p in d["projections"].items():
        for n, v in p["per_gpu_bytes"].items():
            series.setdefault(n, {})[int(c)] = v
    contexts = sorted({c for s in series.values() for c in s})
    return contexts, series


def _line_chart(d: dict, units: str) -> str:
    contexts, series = _series(d)
    if len(contexts) < 2:
        return ""
    allowed = _allowed_bytes(d)
    max_ctx = d["architecture"]["max_context"]
    W, H, L, R, T, B = 640, 380, 58, 26, 14, 50
    lo, hi = math.log2(contexts[0]), math.log2(contexts[-1])
    values = [v for s in series.values() for v in s.values() if v is not None]
    budgets = {n: e.get("budget_bytes") for n, e in d["estimates"].items() if e["supported"] and e.get("budget_bytes")}
    top = max(values + [allowed or 0] + list(budgets.values()) + [1])
    step = _nice_step(top / _unit_size(units)) * _unit_size(units)
    top = math.ceil(top / step) * step

    def X(c):
        return L + (math.log2(c) - lo) / (hi - lo) * (W - L - R)

    def Y(b):
        return T + (1 - b / top) * (H - T - B)

    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="per-GPU memory against context" '
             f'data-scale-bytes="{int(top)}" data-min-context="{contexts[0]}" data-max-context="{contexts[-1]}">']
    v = 0.0
    while v <= top + 1:
        y = Y(v)
        parts.append(f'<line class="grid" x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v / _unit_size(units):g}</text>')
        v += step
    parts.append(f'<text x="14" y="{(T + H - B) / 2:.0f}" transform="rotate(-90 14 {(T + H - B) / 2:.0f})" '
                 f'text-anchor="middle">{units} per GPU</text>')
    # x ticks: powers of two, thinned so labels do not collide (at most ~8)
    pows = [c for c in contexts if c & (c - 1) == 0]
    every = max(1, math.ceil(len(pows) / 8))
    for i, c in enumerate(pows):
        if i % every:
            continue
        x = X(c)
        parts.append(f'<line class="axis-line" x1="{x:.1f}" x2="{x:.1f}" y1="{H - B}" y2="{H - B + 4}"/>'
                     f'<text x="{x:.1f}" y="{H - B + 17}" text-anchor="middle">{_tokens(c)}</text>')
    parts.append(f'<line class="axis-line" x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}"/>'
                 f'<line class="axis-line" x1="{L}" x2="{L}" y1="{T}" y2="{H - B}"/>'
                 f'<text x="{(L + W - R) / 2:.0f}" y="{H - 6}" text-anchor="middle">context (tokens per sequence, '
                 f'x {d["kv_cache"]["batch"]} sequences)</text>')
    if max_ctx and contexts[0] <= max_ctx <= contexts[-1]:
        x = X(max_ctx)
        parts.append(f'<line class="max-context" x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{H - B}" '
                     f'data-context="{max_ctx}"><title>the model\'s maximum context: {max_ctx:,}</title></line>'
                     f'<text x="{x - 4:.1f}" y="{T + 12}" text-anchor="end">model max {_tokens(max_ctx)}</text>')
    req = d["kv_cache"]["context"]
    xr = X(req)
    parts.append(f'<line class="requested" x1="{xr:.1f}" x2="{xr:.1f}" y1="{T}" y2="{H - B}" data-context="{req}">'
                 f'<title>requested context {req:,}</title></line>')
    if allowed:
        y = Y(allowed)
        parts.append(f'<line class="allowed" x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" data-bytes="{allowed}">'
                     f'<title>allowed per GPU {_e(_gib(allowed, units))}</title></line>'
                     f'<text x="{L + 4}" y="{y - 5:.1f}">allowed {_e(_gib(allowed, units))}</text>')
    for n, b in budgets.items():
        colour = ENGINE_STYLE.get(n, ("#555", ""))[0]
        y = Y(b)
        parts.append(f'<line class="budget" x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
                     f'data-framework="{_e(n)}" data-bytes="{int(b)}"><title>{_e(_label(n))} budget '
                     f'{_e(_gib(b, units))}</title></line>')
    for n, s in series.items():
        colour, dash = ENGINE_STYLE.get(n, ("#555", ""))
        pts = [(c, v) for c, v in sorted(s.items()) if v is not None]
        if not pts:
            continue
        path = " ".join(f"{X(c):.1f},{Y(v):.1f}" for c, v in pts)
        parts.append(f'<g class="series" data-framework="{_e(n)}"><polyline points="{path}" fill="none" '
                     f'stroke="{colour}" stroke-width="2.2"' + (f' stroke-dasharray="{dash}"' if dash else "") + '/>')
        for c, v in pts:
            parts.append(f'<circle cx="{X(c):.1f}" cy="{Y(v):.1f}" r="3.2" fill="{colour}" data-context="{c}" '
                         f'data-bytes="{int(v)}"><title>{_e(_label(n))} at {c:,} tokens: {_e(_gib(v, units))}'
                         f'</title></circle>')
        parts.append("</g>")
    parts.append("</svg>")
    legend = []
    for n, e in d["estimates"].items():
        colour, dash = ENGINE_STYLE.get(n, ("#555", ""))
        if not e["supported"]:
            legend.append(f'<li class="unsupported" data-framework="{_e(n)}">{_e(_label(n))}: cannot run it</li>')
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        legend.append(f'<li data-framework="{_e(n)}"><svg viewBox="0 0 30 12"><line x1="0" x2="30" y1="6" y2="6" '
                      f'stroke="{colour}" stroke-width="2.5"{dash_attr}/></svg>{_e(_label(n))}</li>')
    if allowed:
        legend.append('<li><svg viewBox="0 0 30 12"><line x1="0" x2="30" y1="6" y2="6" stroke="#cf222e" '
                      f'stroke-width="2"/></svg>allowed per GPU</li>')
    if budgets:
        legend.append('<li><svg viewBox="0 0 30 12"><line x1="0" x2="30" y1="6" y2="6" stroke="#0072B2" '
                      'stroke-width="1.5" stroke-dasharray="6 3"/></svg>an engine\'s own budget</li>')
    if max_ctx:
        legend.append('<li><svg viewBox="0 0 30 12"><line x1="15" x2="15" y1="0" y2="12" stroke="#59636e" '
                      f'stroke-dasharray="3 3"/></svg>the model\'s maximum context ({_tokens(max_ctx)})</li>')
    return (f'<section id="by-context"><h2>Memory per GPU against context</h2><div class="scroll">{"".join(parts)}'
            f'</div><ul class="legend">{"".join(legend)}</ul><p class="caption">Per-GPU memory each engine needs '
            f'at each context (log scale), {d["kv_cache"]["batch"]} sequence(s). Beyond the model\'s maximum the '
            'numbers are computed anyway (RoPE scaling can extend it). The dotted line is the context asked for.'
            '</p></section>')


def _spare(spare: int | None, units: str) -> str:
    if spare is None:
        return "-"
    return _e(_gib(spare, units)) if spare >= 0 else f'<span class="short">{_e(_gib(-spare, units))} short</span>'


def _verdict_table(d: dict, units: str) -> str:
    gpu = d["gpu"]
    ctx = d["kv_cache"]["context"]
    head = ('<tr><th>framework</th><th>verdict</th><th class="r">max context</th><th class="r">per GPU</th>'
            '<th class="r">held</th><th class="r">spare</th></tr>')
    rows = []
    for name, e in d["estimates"].items():
        cls, words = _verdict(e)
        attrs = (f'data-framework="{_e(name)}" data-status="{cls}" data-fits="{json.dumps(e["fits"])}" '
                 f'data-max-context="{e["max_context"] if e["max_context"] is not None else ""}"')
        if not e["supported"]:
            rows.append(f'<tr {attrs}><th>{_e(_label(name))}</th><td class="cell unsupported" colspan="5">'
                        f'cannot run it: {_e("; ".join(e["unsupported_reasons"]))}</td></tr>')
            continue
        spare = e.get("headroom_bytes")
        rows.append(
            f'<tr {attrs}><th>{_e(_label(name))}</th><td class="cell {cls}"><span class="verdict">{_e(words)}'
            f'</span></td><td class="r num">{_e(_tokens(e["max_context"]) if e["max_context"] else "-")}</td>'
            f'<td class="r num" data-bytes="{e["per_gpu_bytes"]}">{_e(_gib(e["per_gpu_bytes"], units))}</td>'
            f'<td class="r num" data-bytes="{e["process_bytes"]}">{_e(_gib(e["process_bytes"], units))}</td>'
            f'<td class="r num">{_spare(spare, units)}</td></tr>')
    where = (f'on {gpu["count"]} x {_e(gpu["name"])}' if gpu else "no GPU given (pass --gpu for verdicts)")
    caption = (f"Verdict at {ctx:,} tokens x {d['kv_cache']['batch']}. max context: the largest context that fits "
               "(up to the model's maximum); per GPU: what the request needs on the most loaded GPU; held: what the "
               "process holds there (engines with a budget of their own hold all of it); spare: allowed - held, "
               "or how much is missing.")
    return (f'<section id="fit"><h2>Does it fit? {where}</h2><div class="scroll"><table class="verdicts">{head}'
            f'{"".join(rows)}</table></div><p class="caption">{_e(caption)}</p></section>')


def render_model(d: dict, units: str = "GiB", skip_notes=()) -> str:
    """The HTML report of one analysis document (`Analysis.to_dict()`)."""
    m = d["model"]
    rev = (m["revision"] or "")[:12]
    gpu = d["gpu"]
    kv = d["kv_cache"]
    setting = f"{kv['context']:,} tokens x {kv['batch']} sequence{'s' if kv['batch'] != 1 else ''}"
    if gpu:
        setting += f" on {gpu['count']} x {gpu['name']} ({_gib(gpu['usable_bytes'], units)} usable each)"
    allowed = _allowed_bytes(d)
    if allowed and gpu and allowed != gpu["usable_bytes"]:
        setting += f", {_gib(allowed, units)} allowed per GPU"
    header = (f'<header><h1>{_e(m["id"])}</h1><p>{"revision " + _e(rev) + " · " if rev else ""}read from '
              f'{_e(m["source"])}</p><p>{_e(setting)}</p></header>')
    facts = "".join(f"<dt>{_e(k.strip())}</dt><dd>{_e(v)}</dd>" for k, v in summary_rows(d, units))
    body = [header]
    if d["estimates"]:
        body.append(_verdict_table(d, units))
        body.append(_bars(d, units))
        body.append(_line_chart(d, units))
    body.append(f'<section id="facts"><h2>The model</h2><dl class="facts">{facts}</dl></section>')
    notes = note_lines(d, units, skip=skip_notes)
    if notes:
        items = "".join(f'<li class="{_e(kind)}" data-kind="{_e(kind)}"><span class="who">{_e(who)}:</span> '
                        f'{_e(text)}</li>' for who, kind, text in notes)
        body.append(f'<section id="notes"><h2>Engines and notes</h2><ul class="notes">{items}</ul>'
                    f'<p class="caption">{_e(DEFAULT_MARK)}.</p></section>')
    return _page(f"{m['id']}: GPU memory (hfvram)", "model", "\n".join(body), d)


# -- a scan ---------------------------------------------------------------------------------------------------------

def _gpu_label(row: dict) -> str:
    gpu = row.get("gpu")
    if not gpu:
        return "no GPU given"
    count = row.get("gpus")
    return f"{count} x {gpu}" if count and count > 1 and ":" not in str(gpu) and "x" not in str(gpu) else str(gpu)


def _cell(row: dict | None, units: str) -> str:
    if row is None:
        return '<td class="cell unknown">-</td>'
    status = row.get("status") or "error"
    fits = row.get("fits")
    per_gpu, allowed, held = row.get("per_gpu_bytes"), row.get("allowed_bytes"), row.get("process_bytes")
    attrs = (f'data-model="{_e(row.get("model"))}" data-framework="{_e(row.get("framework") or "")}" '
             f'data-gpu="{_e(row.get("gpu") or "")}" data-status="{_e(status)}" '
             f'data-fits="{json.dumps(fits)}" data-max-context="{row.get("max_context") or ""}" '
             f'data-per-gpu-bytes="{per_gpu if per_gpu is not None else ""}" '
             f'data-allowed-bytes="{allowed if allowed is not None else ""}" '
             f'data-process-bytes="{held if held is not None else ""}"')
    title = f' title="{_e(row.get("reason"))}"' if row.get("reason") else ""
    if status == "error":
        return f'<td class="cell error" {attrs}{title}><span class="ctx">error</span></td>'
    if status == "unsupported":
        return f'<td class="cell unsupported" {attrs}{title}><span class="ctx">cannot run</span></td>'
    cls = {True: "fits", False: "does-not-fit"}.get(fits, "unknown")
    if fits is True:
        head = _tokens(row["max_context"]) if row.get("max_context") else "fits"
    elif fits is False:
        head = "does not fit"
    else:
        head = _gib(per_gpu, units)
    meter = need = ""
    if per_gpu is not None and allowed:
        share = min(1.0, per_gpu / allowed)
        meter = f'<span class="meter"><span style="width:{share * 100:.1f}%"></span></span>'
        need = f'<span class="need num">{_e(_gib(per_gpu, units))} of {_e(_gib(allowed, units))}</span>'
    return f'<td class="cell {cls}" {attrs}{title}><span class="ctx">{_e(head)}</span>{meter}{need}</td>'


def render_scan(rows: list[dict], units: str = "GiB") -> str:
    """The HTML report of a scan: a model x GPU grid per framework (largest context that fits, or the verdict, and
    how full the GPU is), with the rows themselves embedded."""
    models: list[str] = []
    gpus: list[str] = []
    frameworks: list[str] = []
    cells: dict[tuple, dict] = {}
    errors: dict[str, str] = {}
    for r in rows:
        model = r.get("model")
        if model not in models:
            models.append(model)
        if r.get("status") == "error" and not r.get("framework"):
            errors[model] = r.get("reason") or "error"
            continue
        g = _gpu_label(r)
        if g not in gpus:
            gpus.append(g)
        fw = r.get("framework")
        if fw not in frameworks:
            frameworks.append(fw)
        cells[(model, fw, g)] = r
    gpus = gpus or ["no GPU given"]
    counts: dict[str, int] = {}
    for r in cells.values():
        status = r.get("status") or "error"
        kind = "fit" if status == "ok" and r.get("fits") else status
        counts[kind] = counts.get(kind, 0) + 1
    contexts = sorted({r["context"] for r in rows if r.get("context")})
    batches = sorted({r["batch"] for r in rows if r.get("batch")})
    head = "".join(f"<th>{_e(g)}</th>" for g in gpus)
    body = []
    for model in models:
        if model in errors:
            body.append(f'<tr data-model="{_e(model)}"><th class="model">{_breakable(model)}</th><td></td>'
                        f'<td class="cell error" colspan="{len(gpus)}" data-model="{_e(model)}" data-status="error">'
                        f'error: {_e(errors[model])}</td></tr>')
            continue
        fws = [fw for fw in frameworks if any((model, fw, g) in cells for g in gpus)]
        for i, fw in enumerate(fws):
            th = (f'<th class="model" rowspan="{len(fws)}">{_breakable(model)}</th>' if i == 0 else "")
            tds = "".join(_cell(cells.get((model, fw, g)), units) for g in gpus)
            body.append(f'<tr data-model="{_e(model)}" data-framework="{_e(fw)}">{th}<th>{_e(_label(fw))}</th>'
                        f'{tds}</tr>')
    allowed_by_gpu = {}
    for r in rows:
        if r.get("allowed_bytes") and _gpu_label(r) not in allowed_by_gpu:
            allowed_by_gpu[_gpu_label(r)] = r["allowed_bytes"]
    setting = []
    if contexts:
        setting.append("context " + ", ".join(f"{c:,}" for c in contexts) + " tokens")
    if batches:
        setting.append("batch " + ", ".join(map(str, batches)))
    gpu_words = ", ".join(f"{g} ({_gib(allowed_by_gpu[g], units)} allowed)" if g in allowed_by_gpu else g
                          for g in gpus)
    words = {"fit": "fit", "ok": "answered (no GPU given)", "does-not-fit": "do not fit", "unsupported": "cannot run",
             "error": "failed"}
    summary = ", ".join(f"{counts[k]} {w}" for k, w in words.items() if counts.get(k))
    summary = f"{len(cells)} answers (model x framework x GPU): {summary or 'none'}"
    if errors:
        summary += f"; {len(errors)} model{'s' if len(errors) != 1 else ''} could not be analysed"
    header = (f'<header><h1>hfvram scan: {len(models)} model{"s" if len(models) != 1 else ""} x {len(gpus)} '
              f'GPU{"s" if len(gpus) != 1 else ""}</h1><p>{_e("; ".join(setting))}</p><p>GPUs: {_e(gpu_words)}</p>'
              f'<p>{_e(summary)}</p></header>')
    legend = ('<ul class="legend"><li><span class="swatch fits"></span>fits: the largest context that fits</li>'
              '<li><span class="swatch does-not-fit"></span>does not fit at the requested context</li>'
              '<li><span class="swatch unsupported"></span>the engine cannot run the model</li>'
              '<li><span class="swatch error"></span>the model could not be analysed</li></ul>')
    matrix = (f'<section id="matrix"><h2>Fit matrix</h2><div class="scroll"><table class="matrix">'
              f'<tr><th>model</th><th>framework</th>{head}</tr>{"".join(body)}</table></div>{legend}'
              '<p class="caption">Each cell: the verdict at the requested context, then the per-GPU memory the '
              'request needs against what is allowed on that GPU (the bar). Hover a cell for the reason.</p>'
              '</section>')
    reasons = []
    seen = set()
    for r in rows:
        if r.get("status") in ("unsupported", "error") and r.get("reason"):
            key = (r.get("model"), r.get("framework"), r.get("reason"))
            if key in seen:
                continue
            seen.add(key)
            who = r["model"] + (f" · {_label(r.get('framework'))}" if r.get("framework") else "")
            reasons.append(f'<li class="{_e(r["status"])}"><span class="who">{_e(who)}:</span> {_e(r["reason"])}</li>')
    parts = [header, matrix]
    if reasons:
        parts.append(f'<section id="reasons"><h2>Cannot run or could not analyse</h2><ul class="notes">'
                     f'{"".join(reasons)}</ul></section>')
    doc = {"schema": _schema(), "kind": "scan", "rows": rows}
    return _page(f"hfvram scan: {len(models)} models", "scan", "\n".join(parts), doc)


class HtmlWriter:
    """A scan writer (the interface of hfvram.report.rows.Writer): keeps the rows, writes the page at close()."""

    def __init__(self, out: IO[str], units: str = "GiB"):
        self.out = out
        self.units = units
        self.rows: list[dict] = []
        self.count = 0

    def write(self, row: dict) -> None:
        self.count += 1
        self.rows.append(row)

    def close(self) -> None:
        self.out.write(render_scan(self.rows, self.units))
        self.out.flush()
