"""`hfvram check`: a deployment gate for CI. Every model x framework must fit its GPU(s) with the headroom asked
for; a model that cannot be analysed never passes."""

from __future__ import annotations

import json
import os

import click

from .batch import model_rows, parse_headroom
from .errors import UsageError
from .report.rows import MARKDOWN_HEADER, markdown_row
from .units import fmt_bytes, parse_size


def verdict_line(row: dict) -> str:
    if row["status"] == "error":
        return f"ERROR {row['model']}: {row['reason']}"
    word = "PASS" if row["status"] == "ok" else "FAIL"
    where = f" on {row['gpus']} x {row['gpu']}" if row.get("gpu") else ""
    line = (f"{word} {row['framework']:<12} {row['model']}: {fmt_bytes(row['per_gpu_bytes'])} of "
            f"{fmt_bytes(row['usable_bytes'])} allowed per GPU{where} at {row['context']:,} tokens x {row['batch']}")
    if row["status"] == "ok":
        line += f" ({fmt_bytes(row['headroom_bytes'])} spare)"
    elif row.get("reason") and ";" in row["reason"]:
        line += f"; {row['reason'].split(';', 1)[1].strip()}"
    return line


def run_check(models: list[str], settings: dict, *, headroom: str | None, max_memory: str | None, fmt: str,
              offline: bool = False) -> int:
    from .sources.hub import HubSource

    share = parse_headroom(headroom)
    limit = parse_size(max_memory) if max_memory else None
    if not (settings.get("gpu") or settings.get("gpu_mem") or limit):
        raise UsageError("check needs a target: --gpu NAME[:COUNT], --gpu-mem SIZE or --max-memory SIZE")
    if limit and not (settings.get("gpu") or settings.get("gpu_mem")):
        settings = {**settings, "gpu_mem": max_memory}
    hub = HubSource()
    rows: list[dict] = []
    for model in models:
        notes: list[str] = []
        rows.extend(model_rows(model, settings, hub=hub, offline=offline, limit_bytes=limit, headroom=share,
                               suggest=True, notes=notes))
        for note in notes:
            click.echo(f"hfvram: {note}", err=True)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "markdown":
        click.echo(markdown_table(rows))
    else:
        for row in rows:
            click.echo(verdict_line(row))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with open(summary_file, "a", encoding="utf-8") as fh:
                fh.write("### hfvram check\n\n" + markdown_table(rows) + "\n")
        except OSError as exc:
            click.echo(f"hfvram: cannot append to GITHUB_STEP_SUMMARY: {exc.strerror}", err=True)
    if any(r["status"] == "error" for r in rows):
        return 2
    return 1 if any(r["status"] == "does-not-fit" for r in rows) else 0


def markdown_table(rows: list[dict]) -> str:
    return "\n".join([MARKDOWN_HEADER] + [markdown_row(r) for r in rows])


__all__ = ["run_check", "verdict_line"]
