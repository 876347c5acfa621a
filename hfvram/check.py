"""`hfvram check`: a deployment gate for CI. Every model x framework must fit its GPU(s) with the headroom asked
for, at the high end of its error band (hfvram.estimate.bands); a model that cannot be analysed never passes, nor
one the engine cannot run, nor (unless --allow-estimated) one whose weights were not read from any file."""

from __future__ import annotations

import json
import os

import click

from .batch import model_rows
from .errors import UsageError
from .report.rows import ESTIMATED, MARKDOWN_HEADER, markdown_row
from .units import fmt_bytes


def verdict_line(row: dict, units: str = "GiB") -> str:
    if row["status"] == "error":
        return f"ERROR {row['model']}: {row['reason']}"
    engine = row.get("engine_version") or row["framework"]
    if row["status"] == "unsupported":
        return f"FAIL {row['framework']:<12} {row['model']}: {engine} cannot run it: {row['reason']}"
    word = "PASS" if row["status"] == "ok" else "FAIL"
    where = f" on {row['gpus']} x {row['gpu']}" if row.get("gpu") else ""
    at = f"at {row['context']:,} tokens x {row['batch']}"
    held = row.get("process_bytes") or row["per_gpu_bytes"]
    if row.get("budget_bytes"):  # the engine takes a budget of its own (vLLM: utilization x memory)
        use = (f"needs {fmt_bytes(row['per_gpu_bytes'], units)} {at} within its budget of {fmt_bytes(row['budget_bytes'], units)}"
               f" ({_budget_words(row)}); the process holds {fmt_bytes(held, units)} of {fmt_bytes(row['allowed_bytes'], units)}"
               f" allowed per GPU{where}")
    elif row.get("per_gpu_bytes") and held != row["per_gpu_bytes"]:  # takes a share of what is free (TensorRT-LLM)
        use = (f"needs {fmt_bytes(row['per_gpu_bytes'], units)} {at}; the process holds {fmt_bytes(held, units)} of "
               f"{fmt_bytes(row['allowed_bytes'], units)} allowed per GPU{where}")
    else:
        use = f"{fmt_bytes(held, units)} of {fmt_bytes(row['allowed_bytes'], units)} allowed per GPU{where} {at}"
    line = f"{word} {row['framework']:<12} {row['model']}: {engine}: {use}"
    if row["status"] == "ok":
        # a PASS holds at the high end of the error band (hfvram.estimate.bands), and says so
        high = row.get("high_bytes")
        fits = (f"high end {fmt_bytes(high, units)} fits{' its budget' if row.get('budget_bytes') else ''}; "
                if high is not None else "")
        line += f" ({fits}{fmt_bytes(row['headroom_bytes'], units)} spare)"
        if row.get("host_bytes"):  # what stays in host RAM (llama.cpp's CPU buffers), against --ram when given
            ram = f" of {fmt_bytes(row['ram_bytes'], units)} RAM" if row.get("ram_bytes") else ""
            line += f"; host RAM {fmt_bytes(row['host_bytes'], units)}{ram}"
        if row.get("estimated"):
            line += f"; {ESTIMATED}"
    elif row.get("reason"):
        line += f"; {row['reason']}"
    return line


def _budget_words(row: dict) -> str:
    settings = row.get("engine_settings") or {}
    util = settings.get("gpu_memory_utilization")
    return f"gpu_memory_utilization {util:g} of the GPU" if util else "the engine's own share"


def run_check(models: list[str], settings: dict, *, fmt: str, offline: bool = False,
              allow_estimated: bool = False, units: str = "GiB") -> int:
    from .options import parse
    from .sources.hub import HubSource

    options = parse(**settings)
    if options.gpu is None and options.limit_bytes is None:
        raise UsageError("check needs a target: --gpu NAME[:COUNT], --gpu-mem SIZE or --max-memory SIZE")
    hub = HubSource(max_age=0)  # a gate asks the Hub which commit it judges, every time (hub.REVISION_MAX_AGE_S)
    rows: list[dict] = []
    for model in models:
        notes: list[str] = []
        model_result = model_rows(model, settings, hub=hub, offline=offline, suggest=True, notes=notes,
                                  options=options)
        for row in model_result:
            if row["status"] == "ok" and row.get("estimated") and not allow_estimated:
                row["status"] = "does-not-fit"
                row["reason"] = f"{ESTIMATED}: not a verdict to gate on (pass --allow-estimated to accept it)"
        rows.extend(model_result)
        for note in notes:
            click.echo(f"hfvram: {note}", err=True)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "markdown":
        click.echo(markdown_table(rows, units))
    else:
        for row in rows:
            click.echo(verdict_line(row, units))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with open(summary_file, "a", encoding="utf-8") as fh:
                fh.write("### hfvram check\n\n" + markdown_table(rows) + "\n")
        except OSError as exc:
            click.echo(f"hfvram: cannot append to GITHUB_STEP_SUMMARY: {exc.strerror}", err=True)
    if any(r["status"] == "error" for r in rows):
        return 2
    return 1 if any(r["status"] in ("does-not-fit", "unsupported") for r in rows) else 0


def markdown_table(rows: list[dict], units: str = "GiB") -> str:
    return "\n".join([MARKDOWN_HEADER] + [markdown_row(r, units) for r in rows])


__all__ = ["run_check", "verdict_line"]
