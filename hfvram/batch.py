"""Many models at once: `hfvram scan` (a list or a Hub listing, on one or more GPUs, concurrently, rows in input
order) and the rows `hfvram check` gates on. The models are shared by worker processes (one per CPU, hfvram/workers.py)
or, for a short list, by threads in this one; each process has one Hub client, and all share the metadata cache's
folder. A failing model becomes an error row and the others go on.

A scan is a list of models x GPUs x frameworks. Each model is read and introspected once, then estimated on each GPU
(`hfvram.analysis.analyze_facts`). `--resume` reuses a model's rows on a GPU only when every framework's row was
answered (ok, does-not-fit, unsupported) under the same settings (the `settings_key` column); the rest is redone,
error rows included, and the output holds each model x framework x GPU exactly once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, field, fields
from itertools import islice

from .errors import HfvramError, NetworkError, NotAvailableOffline, UsageError
from .options import DEFAULT_JOBS
from .record import record
from .report.rows import Writer, error_row, gpu_label, rows_for

# Rows are written in input order, so a slow model holds back the ones after it: up to this many models per job may
# be submitted beyond the next one to write (their rows wait in memory, a few kB each). Measured with bench/bench.py's
# 500-repo scan (32 jobs, 50 ms per request, a loaded 2-core machine, runs interleaved): 4 x jobs 26.1-27.7 s,
# an unbounded window 25.1-29.3 s, rows written as they finish (the order before) 25.6-26.2 s: within the noise.
WINDOW_PER_JOB = 4
# A worker process pays for its start (a fresh interpreter importing hfvram and huggingface_hub, then transformers if a
# config needs its class) before its first model, and a model costs ~80 ms of CPU. Measured with bench/bench.py's
# scan set (50 ms per request, 32 jobs, this 2-CPU machine, the fake Hub on the same CPUs), one process against two:
# 16 repos 3.6 / 3.4 s, 32 repos 5.1 / 4.3 s, 64 repos 6.1 / 6.2 s, 100 repos 10.8 / 8.8 s, 500 repos 41.1 / 26.2 s
# (three processes on 2 CPUs: 30.9 s). So a second process pays from ~8 models each; 16 leaves a margin.
MODELS_PER_PROCESS = 16
ANSWERED = ("ok", "does-not-fit", "unsupported")  # statuses --resume may reuse; error rows are always retried


@record
class Summary:
    """Counts of a scan: models, GPUs, rows, and how they ended."""

    models: int = 0
    gpus: int = 1
    rows: int = 0
    ok: int = 0
    does_not_fit: int = 0
    errors: int = 0
    retryable: int = 0  # of the failed models, those whose error rows say a retry could help
    analysed: int = 0  # models read and estimated in this run (the others came whole from --resume)
    seconds: float = 0.0
    resume: "ResumeCounts | None" = None

    @property
    def exit_code(self) -> int:
        return 1 if (self.errors or self.does_not_fit) else 0

    def line(self) -> str:
        rate = self.analysed / self.seconds if self.seconds else 0.0
        models = f"{self.models} models" + (f" x {self.gpus} GPUs ({self.rows} rows)" if self.gpus > 1 else "")
        failed = f"{self.errors} failed" + (f" ({self.retryable} retryable)" if self.retryable else "")
        parts = [models, f"{self.ok} ok", f"{self.does_not_fit} do not fit or cannot run", failed]
        return f"hfvram: {', '.join(parts)} in {self.seconds:.1f} s ({rate:.1f} models/s)"


@record
class ResumeCounts:
    """What became of an earlier output's rows (`--resume FILE`), counted in rows."""

    path: str
    found: bool = True
    reused: int = 0
    settings_changed: int = 0  # redone: same model, framework and GPU, other settings (context, dtype, knobs, ...)
    errors_retried: int = 0
    left_out: int = 0  # a model, framework or GPU this scan does not ask for
    duplicates: int = 0  # the same row twice (an older hfvram appended on resume): written once

    def line(self) -> str:
        if not self.found:
            return f"hfvram: resume: {self.path} does not exist yet; every row is new"
        parts = [f"{self.reused} rows reused", f"{self.settings_changed} redone because their settings changed",
                 f"{self.errors_retried} error rows retried"]
        if self.left_out:
            parts.append(f"{self.left_out} left out (model, framework or GPU not in this scan)")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped")
        return f"hfvram: resume from {self.path}: {', '.join(parts)}"


def read_model_list(sources: list[str]) -> list[str]:
    """Models from files or `-` (stdin): one per line, blank lines and `#` comments ignored, duplicates once."""
    seen: dict[str, None] = {}
    for src in sources:
        if src == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(src, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                raise UsageError(f"cannot read model list {src}: {exc.strerror}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                seen.setdefault(line, None)
    return list(seen)


# -- settings -----------------------------------------------------------------------------------------------------

def scan_options(settings: dict, gpus=None) -> list:
    """The checked settings (`hfvram.options.Options`), one per GPU to scan, in order, duplicates once. `gpus`: names
    (`["L40S", "H100:2"]`, each may be a comma list) or None; a `gpu` in `settings` is the one-GPU form. Any bad
    setting or GPU name is a UsageError here, before the first row."""
    from .options import parse

    settings = dict(settings)
    single = settings.pop("gpu", None)
    specs = list(gpus or ())
    if single is not None:
        if specs:
            raise UsageError("give the GPUs either as gpu= or as gpus=, not both")
        specs = [single]
    names = []
    for spec in specs:
        for part in (spec.split(",") if isinstance(spec, str) else [spec]):
            if isinstance(part, str) and not part.strip():
                raise UsageError(f"--gpu {spec!r}: an empty GPU name (give NAME[:COUNT],NAME[:COUNT])")
            names.append(part.strip() if isinstance(part, str) else part)
    if not names:
        return [parse(**settings)]
    if len(names) > 1 and settings.get("gpu_mem") is not None:
        raise UsageError("--gpu-mem names one GPU by its memory: give it without --gpu, or list catalog GPUs with "
                         "--gpu")
    out: dict = {}
    for name in names:
        opts = parse(**settings, gpu=name)
        out.setdefault(gpu_label(opts.gpu), opts)
    return list(out.values())


def frameworks_of(options) -> tuple[str, ...]:
    from .estimate import NAMES

    return tuple(options.frameworks or NAMES)


def settings_key(options, framework: str | None) -> str:
    """A short hash of everything that shapes a row besides the model: the hfvram release, the framework, the GPU
    (catalog entry and count) and every field of the checked options (context with its default filled in, batch,
    dtypes, quantisation, parallelism, headroom, memory cap, LoRA, draft, engine knobs). New Options fields are
    included as they come, so a setting can never be silently left out of the comparison."""
    from . import __version__
    from .analysis import DEFAULT_CONTEXT

    doc: dict = {"hfvram": __version__, "framework": framework}
    for f in fields(options):
        if f.name == "frameworks":
            continue  # the row's own framework is what matters, not the list it was scanned with
        value = getattr(options, f.name)
        if f.name == "gpu":
            value = None if value is None else asdict(value)
        elif f.name == "context":
            value = value or DEFAULT_CONTEXT
        doc[f.name] = value
    import hashlib

    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- errors -------------------------------------------------------------------------------------------------------

def is_retryable(exc: BaseException, offline: bool = False) -> bool:
    """Could trying again help? Yes for network faults, rate limits and timeouts (and the Hub being unreachable with
    no cached copy); no for a bad repo id, a gated repo without access, malformed or missing files, a bad setting, or
    an internal error. An exception may state it itself with a `retryable` attribute (a per-row deadline does)."""
    flag = getattr(exc, "retryable", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(exc, NetworkError):  # RateLimited included
        return True
    if isinstance(exc, NotAvailableOffline):
        from .sources.hub import offline_env

        return not (offline or offline_env())  # online, the Hub could not be reached; offline, it was never asked
    return isinstance(exc, (TimeoutError, ConnectionError))


def error_message(exc: BaseException) -> str:
    if isinstance(exc, HfvramError):
        return exc.message
    first = " ".join(str(exc).split())[:200]
    return f"internal error: {type(exc).__name__}: {first}"


def model_rows(model: str, settings: dict, *, hub, offline: bool = False, suggest: bool = False,
               notes: list[str] | None = None, options=None) -> list[dict]:
    """One model's rows on one GPU (one per framework), or a single error row: a failing model never stops a batch.
    `notes` collects what the source said about the repo (a fallback to the cache or the snapshot, say).
    `options`: the settings already checked by hfvram.options.parse (they were, before the first row)."""
    from .analysis import analyze
    from .options import parse

    try:
        opts = options if options is not None else parse(**settings)
    except HfvramError as exc:
        return [error_row(model, exc.message, retryable=False)]
    try:
        result = analyze(model, offline=offline, hub=hub, projections=(), suggest=suggest, options=opts)
        if notes is not None:
            notes.extend(result.facts.repo.notes)
        return _keyed(rows_for(result, model), opts)
    except Exception as exc:  # noqa: BLE001 - one bad row never stops the batch
        return [error_row(model, error_message(exc), is_retryable(exc, offline), gpu=opts.gpu,
                          settings_key=settings_key(opts, None))]


def _keyed(rows: list[dict], opts) -> list[dict]:
    for row in rows:
        row["settings_key"] = settings_key(opts, row["framework"])
    return rows


# -- resume -------------------------------------------------------------------------------------------------------

def row_keys(gpu_opts: list) -> list[dict]:
    """Per GPU, {framework: settings_key} (None: the key of an error row)."""
    return [{fw: settings_key(o, fw) for fw in (*frameworks_of(o), None)} for o in gpu_opts]


@record
class Plan:
    """One model: per GPU, the rows reused from --resume, by framework (what is missing is analysed)."""

    model: str
    reused: list = field(default_factory=list)  # per GPU: {framework: row}
    missing: list = field(default_factory=list)  # per GPU: [framework, ...] to analyse

    @property
    def todo(self) -> bool:
        return any(self.missing)


def plan(models: list[str], gpu_opts: list, previous: list[dict] | None, counts: ResumeCounts | None,
         keys: list[dict] | None = None) -> list[Plan]:
    """What each model needs on each GPU, given the rows of an earlier output (`previous`): a row is reused when its
    model, framework and settings_key (which covers the GPU) are those this scan would write, and it was answered
    (ok, does-not-fit, unsupported). `counts` learns what became of every earlier row."""
    keys = keys or row_keys(gpu_opts)
    all_keys = {k for per_gpu in keys for k in per_gpu.values()}
    pairs = {(fw, gpu_label(o.gpu)) for o, per_gpu in zip(gpu_opts, keys) for fw in per_gpu}
    by_model: dict[str, list[dict]] = {}
    for row in previous or ():
        by_model.setdefault(row["model"], []).append(row)
    plans = []
    for model in models:
        old = by_model.pop(model, [])
        p = Plan(model)
        used: set[int] = set()
        for per_gpu in keys:
            found: dict[str, dict] = {}
            for row in old:
                fw = row.get("framework")
                if row["status"] in ANSWERED and fw and fw in per_gpu and row.get("settings_key") == per_gpu[fw]:
                    found[fw] = row  # a duplicate (an older hfvram appended them): the last one
            used.update(id(r) for r in found.values())
            p.reused.append(found)
            p.missing.append([fw for fw in per_gpu if fw is not None and fw not in found])
        if counts is not None:
            for row in old:
                if id(row) in used:
                    counts.reused += 1
                elif row["status"] == "error":
                    counts.errors_retried += 1
                elif row.get("settings_key") in all_keys:
                    counts.duplicates += 1
                elif (row.get("framework"), row.get("gpu_spec")) in pairs:
                    counts.settings_changed += 1
                else:
                    counts.left_out += 1
        plans.append(p)
    if counts is not None:
        counts.left_out += sum(len(rows) for rows in by_model.values())
    return plans


# -- the scan -----------------------------------------------------------------------------------------------------

def scan(models: list[str], settings: dict, writer: Writer, *, gpus=None, jobs: int = DEFAULT_JOBS, hub=None,
         offline: bool = False, previous: list[dict] | None = None, resume_path: str | None = None,
         progress: bool = False, processes: int | None = 1) -> Summary:
    """Analyse `models` on each of `gpus` (or the `gpu` in `settings`, or none) and write their rows to `writer`
    in input order: model, then GPU, then framework. `previous`: the rows of an earlier output (`--resume`;
    `hfvram.report.rows.read_rows`), reused where their settings match. If the scan is interrupted with
    `previous` given, the earlier rows of the models not reached are written as they were, so a rewritten output
    still holds every model exactly once. `processes`: how many worker processes share the models (`jobs` threads
    in all); None: `auto_processes` (what `hfvram scan` does); 1, the default for a program calling this: threads in
    this process only (worker processes are spawned: a calling script must guard its top level with
    `if __name__ == "__main__":`, as multiprocessing requires)."""
    from .sources.hub import HubSource

    gpu_opts = scan_options(settings, gpus)  # a bad setting is a usage error before the first row, not per row
    counts = ResumeCounts(resume_path or "", found=previous is not None) if resume_path is not None else None
    keys = row_keys(gpu_opts)
    plans = plan(models, gpu_opts, previous, counts, keys)

    hub = hub or HubSource(speculate=False)
    summary = Summary(gpus=len(gpu_opts), resume=counts)
    start = time.monotonic()
    todo = sum(p.todo for p in plans)
    bar = _progress(todo) if progress and todo else None

    if processes is None:
        processes = auto_processes(todo, jobs)
    replica = hub.replica() if processes > 1 else None
    if replica is not None:
        # The source's bound on requests in flight is the scan's, shared by the processes, not one per process: two
        # processes with 64 each kept twice the connections, and each request's turn through httpcore's pool grows
        # with them (bench/bench.py's 500-repo scan, 32 jobs, 2 processes, the fake Hub at 50 ms a request, 3 runs
        # interleaved: 17.5-18.2 s of CPU with 64 a process, 16.4-18.1 s with 32; one client thread-pool alone, a
        # 100 kB ranged read costs 1.73 ms of CPU with 64 in flight, 1.55 ms with 32, 1.30 ms with 8).
        replica = {**replica, "max_workers": max(1, replica["max_workers"] // processes)}
        from .workers import in_order

        # the workers keep torch out as this process does (hfvram.cli._block_torch), or each would import it
        torch_blocked = "torch" in sys.modules and sys.modules["torch"] is None
        results = in_order(plans, _plan_analyser, (replica, gpu_opts, keys, offline, torch_blocked),
                           processes=processes, jobs=jobs, window=WINDOW_PER_JOB * jobs)
    else:
        results = _in_order(plans, _plan_analyser(hub, gpu_opts, keys, offline), jobs)

    done = 0  # models whose rows are all written
    current: list[dict] = []  # the rows being written, and how many of them are
    position = 0
    try:
        for p, rows in zip(plans, results):
            current, position = rows, 0
            for row in rows:
                writer.write(row)
                position += 1
            current = []
            done += 1
            _tally(summary, rows)
            if p.todo:
                summary.analysed += 1
                if bar is not None:
                    bar.advance(rows)
    except BaseException:
        if previous is not None:  # interrupted: account for every model once, then let it stop
            for row in current[position:]:  # the model being written: the rest of its new rows
                writer.write(row)
            old: dict[str, list[dict]] = {}
            for row in previous:
                old.setdefault(row["model"], []).append(row)
            for p in plans[done + bool(current):]:  # the models not reached keep their earlier rows
                for row in _once(old.get(p.model, [])):
                    writer.write(row)
            writer.close()
        raise
    finally:
        if bar is not None:
            bar.stop()
    writer.close()
    summary.seconds = time.monotonic() - start
    return summary


def auto_processes(todo: int, jobs: int) -> int:
    """Worker processes for a scan of `todo` models: one per usable CPU, as long as each has MODELS_PER_PROCESS
    models to share its start-up cost and at least one of the `jobs` threads."""
    from .workers import usable_cpus

    return max(1, min(usable_cpus(), todo // MODELS_PER_PROCESS, jobs))


def _plan_analyser(hub, gpu_opts: list, keys: list[dict], offline: bool, torch_blocked: bool = False):
    """The function a scan applies to each Plan: its rows (reused ones and new ones). `hub`: a HubSource, or what
    `HubSource.replica()` said to build one in a worker process; there, `torch_blocked` keeps torch out of it as
    the command line keeps it out of the main process (transformers' config modules would import it)."""
    if isinstance(hub, dict):
        from .sources.hub import HubSource

        if torch_blocked and "torch" not in sys.modules:
            sys.modules["torch"] = None  # type: ignore[assignment]

        hub = HubSource.from_replica(hub)
    return functools.partial(analyse_plan, hub=hub, gpu_opts=gpu_opts, keys=keys, offline=offline)


def analyse_plan(p: Plan, *, hub, gpu_opts: list, keys: list[dict], offline: bool) -> list[dict]:
    """One model's rows on every GPU: those --resume reuses, and the rest analysed (read and introspected once,
    estimated per GPU). A failure becomes an error row per GPU, never an exception."""
    if not p.todo:
        return [row for found in p.reused for row in found.values()]
    from .analysis import analyze_facts
    from .introspect import introspect
    from .sources import open_model
    from .sources.hub import limits

    out: list[dict] = []
    try:
        # each model gets its own deadline and wait budget on the Hub (--deadline, --max-wait)
        with limits(gpu_opts[0].deadline, gpu_opts[0].max_wait):
            facts, failure = introspect(open_model(p.model, offline=offline, hub=hub)), None
    except Exception as exc:  # noqa: BLE001 - one bad row never stops the batch
        facts, failure = None, exc
    for g, opts in enumerate(gpu_opts):
        found, missing = p.reused[g], p.missing[g]
        try:
            if not missing:
                new = {}
            elif failure is not None:
                raise failure
            else:
                # no "what would make it fit" search per row: it re-runs the estimators several times
                result = analyze_facts(facts, opts.replace(frameworks=tuple(missing)) if found else opts,
                                       offline=offline, hub=hub, projections=(), suggest=False)
                new = {row["framework"]: row for row in rows_for(result, p.model)}
                for fw, row in new.items():
                    row["settings_key"] = keys[g][fw]
            out.extend(found.get(fw) or new[fw] for fw in frameworks_of(opts))
        except Exception as exc:  # noqa: BLE001
            # the frameworks answered earlier keep their rows; one error row stands for the rest
            out.extend(found[fw] for fw in frameworks_of(opts) if fw in found)
            out.append(error_row(p.model, error_message(exc), is_retryable(exc, offline), gpu=opts.gpu,
                                 settings_key=keys[g][None]))
    return out


def _once(rows: list[dict]) -> list[dict]:
    """A model's earlier rows, each framework x GPU once (the last written), an error row only for a GPU with no
    answered row."""
    last: dict = {}
    for row in rows:
        last[(row.get("framework"), row.get("gpu_spec"))] = row
    answered = {gpu for (fw, gpu), row in last.items() if row["status"] != "error"}
    return [row for (fw, gpu), row in last.items() if row["status"] != "error" or gpu not in answered]


def _tally(summary: Summary, rows: list[dict]) -> None:
    summary.models += 1
    summary.rows += len(rows)
    statuses = {r["status"] for r in rows}
    if "error" in statuses:
        summary.errors += 1
        summary.retryable += any(r.get("retryable") for r in rows if r["status"] == "error")
    elif statuses & {"does-not-fit", "unsupported"}:
        summary.does_not_fit += 1
    else:
        summary.ok += 1


def _in_order(items: list, fn, jobs: int):
    """fn(item) for every item, `jobs` at a time, yielded in input order. At most WINDOW_PER_JOB x jobs items are
    submitted beyond the next one to yield, so memory stays flat however long the list is."""
    if jobs <= 1:
        for item in items:
            yield fn(item)
        return
    window = WINDOW_PER_JOB * jobs
    pending = iter(items)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="hfvram-scan") as pool:
        queue = [pool.submit(fn, item) for item in islice(pending, window)]
        head = 0
        try:
            while head < len(queue):
                result = queue[head].result()
                queue[head] = None  # its rows are yielded: drop them here
                head += 1
                nxt = next(pending, None)
                if nxt is not None:
                    queue.append(pool.submit(fn, nxt))
                if head > window:  # keep the list short
                    del queue[:head]
                    head = 0
                yield result
        except BaseException:
            for f in queue[head:]:
                f.cancel()
            raise


# -- where the rows go --------------------------------------------------------------------------------------------

class _progress:
    """A rich progress bar on stderr: done / failed / rate / ETA."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.failed = 0
        self.progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("scan", total=total, failed=0, rate="")
        self.start = time.monotonic()
        self.done = 0
        self.progress.start()

    def advance(self, rows: list[dict]) -> None:
        self.done += 1
        self.failed += any(r["status"] == "error" for r in rows)
        rate = self.done / max(1e-9, time.monotonic() - self.start)
        self.progress.update(self.task, advance=1, failed=self.failed, rate=f"{rate:.1f}/s")

    def stop(self) -> None:
        self.progress.stop()
