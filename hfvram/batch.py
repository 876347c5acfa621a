"""Many models at once: `hfvram scan` (a list or a Hub listing, concurrently, rows as they finish) and
`hfvram check` (the CI gate). One Hub client and one metadata cache are shared by all workers; a failing model
becomes an error row and the others go on."""

from __future__ import annotations

import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from itertools import islice
from dataclasses import dataclass

from .errors import HfvramError, UsageError
from .report.rows import Writer, error_row, rows_for

# A cold model is 2-3 round trips of ~50-300 ms and ~25 ms of CPU: 32 in flight kept the CPU busy in bench/bench.py
# (500 repos at 50 ms per request: 15.0 s with 8 jobs, 12.9 s with 32).
DEFAULT_JOBS = 32


@dataclass
class Summary:
    models: int = 0
    ok: int = 0
    does_not_fit: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if (self.errors or self.does_not_fit) else 0

    def line(self) -> str:
        rate = self.models / self.seconds if self.seconds else 0.0
        parts = [f"{self.models} models", f"{self.ok} ok", f"{self.does_not_fit} do not fit or cannot run", f"{self.errors} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (--resume)")
        return f"hfvram: {', '.join(parts)} in {self.seconds:.1f} s ({rate:.1f} models/s)"


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


def model_rows(model: str, settings: dict, *, hub, offline: bool = False, suggest: bool = False,
               notes: list[str] | None = None, options=None) -> list[dict]:
    """One model's rows (one per framework), or a single error row: a failing model never stops a batch.
    `notes` collects what the source said about the repo (a fallback to the cache or the snapshot, say).
    `options`: the settings already checked by hfvram.options.parse (they were, before the first row)."""
    from .analysis import analyze
    from .errors import NetworkError

    try:
        result = analyze(model, offline=offline, hub=hub, projections=(), suggest=suggest, options=options,
                         **({} if options is not None else settings))
        if notes is not None:
            notes.extend(result.facts.repo.notes)
        return rows_for(result, model)
    except HfvramError as exc:
        return [error_row(model, exc.message, retryable=isinstance(exc, NetworkError))]
    except Exception as exc:  # noqa: BLE001 - one bad row never stops the batch
        first = " ".join(str(exc).split())[:200]
        return [error_row(model, f"internal error: {type(exc).__name__}: {first}")]


def scan(models: list[str], settings: dict, writer: Writer, *, jobs: int = DEFAULT_JOBS, hub=None,
         offline: bool = False, done: set[str] | None = None, progress: bool = False) -> Summary:
    from .options import parse
    from .sources.hub import HubSource

    options = parse(**settings)  # a bad setting is a usage error before the first row, not an error per row

    hub = hub or HubSource()
    summary = Summary()
    todo = [m for m in models if not (done and m in done)]
    summary.skipped = len(models) - len(todo)
    start = time.monotonic()
    bar = _progress(len(todo)) if progress else None

    def one(model: str) -> list[dict]:
        # no "what would make it fit" search per row: it re-runs the estimators several times
        return model_rows(model, settings, hub=hub, offline=offline, suggest=False, options=options)

    def results():
        if jobs <= 1:  # in order, in this thread
            for m in todo:
                yield one(m)
            return
        # A bounded window of submissions: memory stays flat however long the list is.
        pending = iter(todo)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="hfvram-scan") as pool:
            running = {pool.submit(one, m) for m in islice(pending, 2 * jobs)}
            try:
                while running:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield future.result()
                        nxt = next(pending, None)
                        if nxt is not None:
                            running.add(pool.submit(one, nxt))
            except BaseException:
                for f in running:
                    f.cancel()
                raise

    try:
        for rows in results():
            summary.models += 1
            status = "error" if rows[0]["status"] == "error" else (
                "does-not-fit" if any(r["status"] in ("does-not-fit", "unsupported") for r in rows) else "ok")
            if status == "error":
                summary.errors += 1
            elif status == "does-not-fit":
                summary.does_not_fit += 1
            else:
                summary.ok += 1
            for row in rows:
                writer.write(row)
            if bar is not None:
                bar.advance(status)
    finally:
        if bar is not None:
            bar.stop()
    writer.close()
    summary.seconds = time.monotonic() - start
    return summary


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

    def advance(self, status: str) -> None:
        self.done += 1
        self.failed += status == "error"
        rate = self.done / max(1e-9, time.monotonic() - self.start)
        self.progress.update(self.task, advance=1, failed=self.failed, rate=f"{rate:.1f}/s")

    def stop(self) -> None:
        self.progress.stop()
