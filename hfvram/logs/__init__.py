"""Engine startup logs -> the memory figures they printed.

    from hfvram import logs
    parsed = logs.parse(open("vllm.log").read())          # engine detected; or engine="vllm"
    parsed.figures                                        # [Figure(quantity="kv_cache_bytes", value=..., line=...)]
    logs.case_reading(case)                               # a validation case's excerpt -> its measured figure
    logs.cases_from_log(text, source=..., model=...)      # a pasted log -> validation case rows

One parser per engine (`vllm`, `llamacpp`, `trtllm`, `sglang`), each a `LogParser` with `score(text)` and
`parse(text)`. `hfvram explain` and `make accuracy` use the same parsers: a new measurement is a pasted log, and
the figure a case records is the one its excerpt printed (tests/test_logs.py checks every excerpt in validation/).

    python -m hfvram.logs LOGFILE [--engine E]            # the figures, as JSON
    python -m hfvram.logs LOGFILE --cases --source URL    # validation case rows (JSON lines)
"""

from __future__ import annotations

import re
from dataclasses import field

from ..errors import UsageError
from ..record import record
from .base import Figure, LogParser, OutOfMemory, ParsedLog, squash
from .llamacpp import LlamaCppParser
from .sglang import SglangParser
from .trtllm import TrtllmParser
from .vllm import VllmParser

PARSERS: dict[str, LogParser] = {p.name: p for p in (VllmParser(), LlamaCppParser(), TrtllmParser(), SglangParser())}
# validation case `framework` -> parser
CASE_ENGINES = {"vllm": "vllm", "llamacpp": "llamacpp", "trtllm": "trtllm", "sglang": "sglang"}

__all__ = ["PARSERS", "Figure", "LogParser", "OutOfMemory", "ParsedLog", "detect", "parse", "case_reading",
           "CaseReading", "cases_from_log"]


def detect(text: str) -> LogParser:
    """The parser whose markers the text holds most often."""
    scores = {name: p.score(text) for name, p in PARSERS.items()}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] == 0:
        raise UsageError("not a log hfvram can read: no vLLM, llama.cpp, TensorRT-LLM or SGLang lines in it "
                         "(pass --engine to say which engine printed it)")
    return PARSERS[best]


def parse(text: str, engine: str | None = None) -> ParsedLog:
    if engine is not None:
        if engine not in PARSERS:
            raise UsageError(f"--engine must be one of {', '.join(PARSERS)}, not {engine!r}")
        parser = PARSERS[engine]
    else:
        parser = detect(text)
    return parser.parse(text)


# -- validation cases ---------------------------------------------------------------------------------------------

@record
class CaseReading:
    """What a case's excerpt printed for the case's quantity."""

    value: float | None
    figure: Figure | None = None
    candidates: list[Figure] = field(default_factory=list)  # figures of the quantity before narrowing
    problem: str | None = None  # why no single figure was found

    def agrees(self, measured: float, rel: float = 1e-9) -> bool:
        """The case's `measured` is the printed figure (bytes rounded either way)."""
        if self.value is None:
            return False
        return abs(self.value - measured) <= max(1.0, rel * abs(measured))


def case_text(case: dict) -> str:
    return "\n".join(t for t in (case.get("log_header_excerpt"), case.get("log_excerpt")) if t)


def case_reading(case: dict) -> CaseReading:
    """The figure a validation case's `log_excerpt` printed for its `quantity`: the figures of that quantity, narrowed
    to the one read from the case's quoted line, then by its `component_detail` and by `per_gpu` (totals over
    devices). The hook `make accuracy` calls to turn excerpts into measurements."""
    text = case_text(case)
    engine = CASE_ENGINES.get(case.get("framework", ""))
    if not text:
        return CaseReading(None, problem="no log_excerpt")
    if engine is None:
        return CaseReading(None, problem=f"no log parser for {case.get('framework')}")
    log = parse(text, engine)
    figs = [f for f in log.figures if f.quantity == case["quantity"]]
    reading = CaseReading(None, candidates=list(figs))
    if not figs:
        reading.problem = f"the excerpt has no {case['quantity']} line the {engine} parser reads"
        return reading
    quote = squash(case.get("quote") or "")
    if quote:
        quoted = [f for f in figs if quote in f.line or f.line in quote]
        if not quoted:  # a quote of a multi-line span: every quoted line must be one of the figure's lines
            parts = [squash(p) for p in (case.get("quote") or "").splitlines() if p.strip()]
            quoted = [f for f in figs if parts and all(p in f.line for p in parts)]
        if not quoted:
            reading.problem = "no figure was read from the quoted line"
            return reading
        figs = quoted
    detail = case.get("component_detail")
    if detail:
        same = [f for f in figs if f.detail == detail]
        if not same:
            reading.problem = (f"the quoted figure's detail is {sorted({str(f.detail) for f in figs})}, "
                               f"the case's {detail!r}")
            return reading
        figs = same
    if case.get("per_gpu") is False:
        totals = [f for f in figs if (f.detail or "").endswith("total_all_devices") or f.device is None]
        figs = totals or figs
    values = {f.value for f in figs}
    if len(values) > 1:
        reading.problem = f"{len(values)} different figures match: " + ", ".join(f.printed for f in figs)
        return reading
    reading.figure = figs[0]
    reading.value = figs[0].value
    return reading


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def case_settings(log: ParsedLog) -> dict:
    """The log's settings under the case-file names (validation/CASES.md)."""
    s = {k: v for k, v in log.settings.items() if not k.startswith("cmd_") and not k.endswith("_bytes")}
    s["gpu"] = log.gpu_name
    if log.gpu_total_bytes:
        s["gpu_total_bytes"] = log.gpu_total_bytes
    if log.engine == "llamacpp" and s.get("gguf_type"):
        s["dtype"] = "gguf"
    return s


def cases_from_log(text: str, *, engine: str | None = None, source: str = "", model: str | None = None,
                   base_model: str | None = None, arch_config: str | None = None, id_prefix: str | None = None,
                   framework_version: str | None = None) -> list[dict]:
    """Validation case rows for every figure a pasted log printed (one per quantity, detail and device; repeated
    identical figures of other ranks once). `usable` is left None: whether every setting that drives a figure is
    known is a judgment for the person adding the case (validation/CASES.md)."""
    log = parse(text, engine)
    model = model or log.model_hint or log.model
    prefix = id_prefix or f"{log.engine}-{_slug((model or 'model').rsplit('/', 1)[-1])}"
    settings = case_settings(log)
    seen: set = set()
    rows = []
    for fig in log.figures:
        key = (fig.quantity, fig.detail, fig.host, fig.value)
        if key in seen:
            continue
        seen.add(key)
        parts = [prefix, fig.quantity.replace("_bytes", "")]
        if fig.detail:
            parts.append(fig.detail)
        if fig.device:
            parts.append(fig.device)
        case_id = _slug("-".join(parts))
        n = 2
        while any(r["id"] == case_id for r in rows):
            case_id = _slug("-".join(parts)) + f"-{n}"
            n += 1
        rows.append({
            "id": case_id, "model": model, "base_model": base_model or model, "framework": log.engine,
            "framework_version": framework_version or log.version, "settings": settings, "defaults_assumed": [],
            "quantity": fig.quantity, "measured": fig.value,
            "unit_note": f"Printed {fig.printed}; read by hfvram.logs ({log.engine} parser), line {fig.line_no}.",
            "per_gpu": not (fig.detail or "").endswith("total_all_devices"), "source": source, "quote": fig.line,
            "usable": None, "why_unusable": None, "arch_config": arch_config, "arch_note": None,
            "log_excerpt": text, "component_detail": fig.detail,
        })
    return rows
