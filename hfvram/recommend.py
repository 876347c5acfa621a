"""`hfvram recommend`: for each model and engine, the best setting that fits the GPU(s), and the command that checks it.

Two questions, answered with the estimators and the fit machinery every verdict uses (`hfvram.analyze`, then
`hfvram.estimate.fit`'s verified suggestions), never a second model of memory:

- no `--quantize` given: the highest-precision weights that fit at the requested context (the checkpoint as stored,
  else the first of the engine's formats in `hfvram.estimate.fit.QUANT_OPTIONS`, in order of fidelity), with the
  engine's own memory share lowered when that alone is what keeps it within the allowed memory; when none fits, the
  longest context that fits with the most compressed of them;
- `--quantize FORMAT` given: the longest context that fits with those weights (up to the model's maximum).

Every recommendation is re-run as the settings it prints before it is offered (a trial with exactly those settings
must fit), and its command line is `hfvram check` with those settings, so running it is the proof.
"""

from __future__ import annotations

import shlex
from dataclasses import field

from .errors import HfvramError
from .estimate.fit import QUANT_OPTIONS
from .options import KNOBS, parse as parse_options
from .record import record

SCHEMA = "hfvram-recommend/1"
# Engine knobs a recommendation may set itself: the engine's own share of the GPU (fit.py's `_engine_knob`).
KNOB_KEYS = {"gpu_memory_utilization", "free_gpu_memory_fraction"}


@record
class Row:
    """One recommendation: the best setting that fits for one model and engine."""

    model: str
    framework: str
    status: str  # fits | shorter-context | does-not-fit | unsupported | error
    question: str = "best-weights"  # best-weights (at the asked context) | longest-context (at --quantize)
    engine: str | None = None  # "vLLM 0.33"
    weights: str | None = None  # what the weights are, as the engine holds them ("bf16", "gguf Q4_K_M (projected)")
    quantize: str | None = None  # the --quantize of the recommendation (None: as stored)
    context: int | None = None  # the recommendation's context
    asked_context: int | None = None  # the context asked for (--context, or 4096)
    batch: int | None = None
    max_context: int | None = None  # the longest context that fits with this setting
    per_gpu_bytes: int | None = None
    process_bytes: int | None = None
    allowed_bytes: int | None = None
    headroom_bytes: int | None = None
    gpu: str | None = None
    gpus: int | None = None
    settings: dict = field(default_factory=dict)  # hfvram.analyze keywords that reproduce it
    command: str | None = None  # `hfvram check ...` with those settings
    reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def recommend(models: list[str], settings: dict, *, offline: bool = False, hub=None) -> list[Row]:
    """Rows for every model x engine. `settings`: hfvram.analyze keywords (a GPU or memory limit among them)."""
    from .sources import open_model, parse_ref
    from .sources.hub import HubSource

    options = parse_options(**settings)  # a bad setting is a usage error before any model is read
    if options.gpu is None and options.limit_bytes is None:
        from .errors import UsageError

        raise UsageError("recommend needs a target: --gpu auto, --gpu NAME[:COUNT], --gpu-mem SIZE or --max-memory")
    from .estimate import NAMES

    names = list(options.frameworks or NAMES)
    user = {k: v for k, v in settings.items() if k not in ("frameworks", "framework")}
    hub = hub or HubSource()
    rows: list[Row] = []
    for model in models:
        try:
            repo = open_model(parse_ref(model), offline=offline, hub=hub)
            rows.extend(_Model(model, repo, user, offline).rows(names))
        except HfvramError as exc:
            rows.append(Row(model=model, framework="-", status="error", reason=exc.message))
    return rows


class _Model:
    """One model's recommendations: every trial goes through hfvram.analyze with the user's settings + changes."""

    def __init__(self, model: str, repo, user: dict, offline: bool):
        self.model, self.repo, self.user, self.offline = model, repo, user, offline
        self.asked: int | None = None
        self.question = "longest-context" if user.get("quantize") else "best-weights"

    def run(self, changes: dict, frameworks: list[str], suggest: bool = False):
        from .analysis import analyze

        return analyze(self.model, repo=self.repo, projections=(), suggest=suggest, frameworks=frameworks,
                       **{**self.user, **changes})

    def rows(self, names: list[str]) -> list[Row]:
        first = self.run({}, names, suggest=True)
        self.asked = first.context
        if self.user.get("quantize"):
            # the longest context at these weights: ask at the model's own maximum, the search runs below it
            ceiling = first.facts.arch.max_context or 0
            if ceiling > first.context:
                first = self.run({"context": ceiling}, names, suggest=True)
            return [self.longest(name, first) for name in names]
        return [self.best_weights(name, first) for name in names]

    def best_weights(self, name: str, first) -> Row:
        """No --quantize: the checkpoint as stored if it fits, else the first format (in order of fidelity) that
        does, else the longest context with the most compressed one."""
        est = first.estimates[name]
        if not est.supported:
            return self.unsupported(name, first)
        if est.fits:
            return self.verified(name, {"context": first.context}, "fits", result=first)
        others = [f"or, keeping the weights as stored: {s.text}" for s in est.suggestions if "kv_dtype" in s.settings]
        for sug in est.suggestions:  # fit.py tried the engine's formats in order of fidelity, with the engine's knob
            if set(sug.settings) <= KNOB_KEYS | {"quantize"}:
                row = self.verified(name, {"context": first.context, **sug.settings}, "fits")
                if row.status == "fits":
                    row.notes[:0] = others
                    return row
        ladder = [None] + (QUANT_OPTIONS[name] if not first.model.projected else [])
        for quant in reversed(ladder):  # the most compressed weights this engine runs for this model
            changes = {"quantize": quant} if quant else {}
            trial = self.run(changes, [name], suggest=True).estimates[name]
            if not trial.supported:
                continue
            for sug in trial.suggestions:
                if "context" in sug.settings and set(sug.settings) <= KNOB_KEYS | {"context"}:
                    row = self.verified(name, {**changes, **sug.settings}, "shorter-context")
                    if row.status == "shorter-context":
                        row.reason = (f"no weights tried fit {first.context:,} tokens; {row.context:,} is the "
                                      f"longest context that fits with {quant or 'the weights as stored'}")
                        return row
            break
        row = self.row(name, first, {}, "does-not-fit")
        row.reason = est.fit_reason or "does not fit"
        row.notes[:0] = [s.text for s in est.suggestions if "gpu_layers" in s.settings][:1]
        return row

    def longest(self, name: str, first) -> Row:
        """--quantize given: the longest context that fits with those weights."""
        est = first.estimates[name]
        if not est.supported:
            return self.unsupported(name, first)
        if est.fits:
            return self.verified(name, {"context": first.context}, "fits", result=first)
        candidates = [{"context": est.max_context}] if est.max_context else []
        for sug in est.suggestions:
            if "context" in sug.settings and set(sug.settings) <= KNOB_KEYS | {"context"}:
                candidates.append(dict(sug.settings))
            elif set(sug.settings) <= KNOB_KEYS:  # the engine's share alone: the longest context with it
                knobbed = self.run(dict(sug.settings), [name]).estimates[name]
                longest = first.context if knobbed.fits else knobbed.max_context
                if longest:
                    candidates.append({**sug.settings, "context": longest})
        for changes in sorted(candidates, key=lambda c: -c["context"]):
            row = self.verified(name, changes, "fits")
            if row.status == "fits":
                return row
        row = self.row(name, first, {}, "does-not-fit")
        row.reason = (est.fit_reason or "does not fit") + " (at any context)"
        return row

    def verified(self, name: str, changes: dict, status: str, result=None) -> Row:
        """The row for `changes`, after a trial with exactly those settings (`result` when it is that trial)."""
        result = result or self.run(changes, [name])
        est = result.estimates[name]
        if not est.fits:
            row = self.row(name, result, changes, "does-not-fit")
            row.reason = f"the trial of {_flags(changes)} did not fit: {est.fit_reason}"
            return row
        return self.row(name, result, changes, status)

    def unsupported(self, name: str, result) -> Row:
        row = self.row(name, result, {}, "unsupported")
        row.reason = "; ".join(result.estimates[name].unsupported)
        return row

    def row(self, name: str, result, changes: dict, status: str) -> Row:
        est = result.estimates[name]
        es = result.estimate_settings
        estimated = result.facts.weights.source in ("config", "none")
        settings = {**self.user, **changes}
        engine = est.engine or {}
        ok = status in ("fits", "shorter-context")
        row = Row(model=self.model, framework=name, status=status, question=self.question,
                  engine=f"{engine.get('label', name)} {engine.get('version', '')}".strip(),
                  weights=result.model.label, quantize=settings.get("quantize"), context=result.context,
                  asked_context=self.asked, batch=es.batch, max_context=est.max_context if est.supported else None,
                  per_gpu_bytes=est.per_gpu_bytes if est.supported else None,
                  process_bytes=est.held_bytes if est.supported else None, allowed_bytes=es.allowed_bytes,
                  headroom_bytes=est.headroom_bytes, gpu=es.gpu.gpu.name if es.gpu else None, gpus=est.gpus,
                  settings={**settings, "frameworks": [name]} if ok else {})
        if ok:
            row.command = command(self.model, name, settings, offline=self.offline, allow_estimated=estimated)
            if estimated:
                row.notes.append("weights estimated from the config (no weight file was read): the command "
                                 "passes --allow-estimated")
        row.notes.extend(n for n in est.notes if n not in row.notes)
        return row


# -- the command line ---------------------------------------------------------------------------------------------

# analyze keyword -> CLI flag where the flag is not the keyword with dashes.
_FLAG_NAMES = {"kv_dtype": "--kv-dtype", "gpu_mem": "--gpu-mem", "max_memory": "--max-memory"}
_ORDER = ("gpu", "gpu_mem", "max_memory", "headroom", "tp", "pp", "context", "batch", "kv_dtype", "quantize")


def command(model: str, framework: str, settings: dict, *, offline: bool = False,
            allow_estimated: bool = False) -> str:
    """`hfvram check MODEL -f FRAMEWORK ...` with exactly `settings` (analyze keywords)."""
    parts = ["hfvram", "check", model, "-f", framework]
    keys = [k for k in _ORDER if k in settings] + sorted(k for k in settings if k not in _ORDER)
    for key in keys:
        value = settings[key]
        if value is None or key in ("frameworks", "framework"):
            continue
        flag = _FLAG_NAMES.get(key, "--" + key.replace("_", "-"))
        if isinstance(value, bool):
            if key == "flash_attn":
                parts.append("--flash-attn" if value else "--no-flash-attn")
            elif value:
                parts.append(flag)
            continue
        if key == "context":
            value = _tokens(int(value))
        parts += [flag, str(value)]
    if allow_estimated:
        parts.append("--allow-estimated")
    if offline:
        parts.append("--offline")
    return " ".join(shlex.quote(p) for p in parts)


def _tokens(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 and n >= 1024 else str(n)


def _flags(changes: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changes.items())


# -- output -------------------------------------------------------------------------------------------------------

def exit_code(rows: list[Row]) -> int:
    """0: every model has an engine with a setting that fits; 1: some model has none; 2: some model failed."""
    if any(r.status == "error" for r in rows):
        return 2
    by_model: dict[str, bool] = {}
    for r in rows:
        by_model[r.model] = by_model.get(r.model, False) or r.status in ("fits", "shorter-context")
    return 0 if all(by_model.values()) else 1


def document(rows: list[Row], settings: dict, gpu: dict | None) -> dict:
    return {"schema": SCHEMA, "gpu": gpu, "asked": {k: v for k, v in settings.items() if k in KNOBS or k in
                                                    ("context", "batch", "kv_dtype", "quantize", "headroom",
                                                     "max_memory", "gpu", "gpu_mem", "tp", "pp")},
            "rows": [r.to_dict() for r in rows]}


def render(rows: list[Row], units: str = "GiB", console=None) -> None:
    """Per model: a line saying the target, a table of engines (fits in 80 columns), why the others do not fit, and
    the commands that reproduce each recommendation."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from .units import fmt_bytes, fmt_tokens

    console = console or Console()
    words = {"fits": "fits", "shorter-context": "shorter context", "does-not-fit": "does not fit",
             "unsupported": "cannot run it"}
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        if mine[0].status == "error":
            console.print(f"{model}: error: {mine[0].reason}", highlight=False)
            continue
        ref = next((r for r in mine if r.allowed_bytes), mine[0])
        asked = ref.asked_context
        target = (f"{ref.gpus or 1} x {ref.gpu}, {fmt_bytes(ref.allowed_bytes, units)} allowed per GPU"
                  if ref.gpu and ref.allowed_bytes else "")
        what = (f", the longest context with {ref.quantize}" if ref.question == "longest-context" else
                f", {fmt_tokens(asked)} tokens asked" if asked else "")
        console.print(f"[bold]{model}[/bold]" + (f" on {target}" if target else "") + what, highlight=False)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("engine", "weights", "context", "per GPU", "longest", "verdict"):
            table.add_column(col, justify="right" if col in ("context", "per GPU", "longest") else "left",
                             no_wrap=True)
        for r in mine:
            fits = r.status in ("fits", "shorter-context")
            weights = r.quantize or (f"{r.weights} (stored)" if r.weights else "as stored")
            table.add_row(r.framework, weights if r.status != "unsupported" else "-",
                          fmt_tokens(r.context) if fits and r.context else "-",
                          fmt_bytes(r.process_bytes, units) if fits and r.process_bytes is not None else "-",
                          fmt_tokens(r.max_context) if fits and r.max_context else "-", words.get(r.status, r.status))
        console.print(table)
        for r in mine:
            if r.status in ("does-not-fit", "unsupported", "shorter-context") and r.reason:
                console.print(f"  {r.framework}: {r.reason}", highlight=False)
        commands = [r.command for r in mine if r.command]
        if commands:
            console.print("  reproduce (each passes `hfvram check`):", highlight=False)
            for cmd in commands:
                console.print(f"    {cmd}", highlight=False, soft_wrap=True)
        console.print()


__all__ = ["Row", "command", "document", "exit_code", "recommend", "render"]
