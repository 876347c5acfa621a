"""Flat rows (one per model and framework) for `scan` and `check`, and their writers: csv, jsonl, markdown, json and
a table for people. Writers that can stream (csv, jsonl, markdown) write each row as it arrives."""

from __future__ import annotations

import csv
import io
import json
from typing import IO

from ..units import fmt_bytes

FIELDS = ("model", "revision", "framework", "status", "reason", "gpu", "gpus", "context", "batch", "per_gpu_bytes",
          "process_bytes", "total_bytes", "weights_bytes", "kv_cache_bytes", "allowed_bytes", "headroom_bytes",
          "fits", "max_context", "estimated", "engine_version", "parameters", "source", "retryable")

# What an estimate resting on no weight file says (hfvram check fails it unless --allow-estimated).
ESTIMATED = "weights estimated from the config (no weight file was read)"


def rows_for(analysis, model: str) -> list[dict]:
    """One row per framework. Status: ok; does-not-fit (a GPU or limit was given and it does not fit, with the
    headroom and memory cap the analysis was run with); unsupported (the engine cannot run it)."""
    d = analysis.to_dict()
    gpu = d["gpu"]
    es = analysis.estimate_settings
    allowed = es.allowed_bytes if es is not None else None
    estimated = d["weights"]["source"] in ("config", "none")
    out = []
    for name, e in d["estimates"].items():
        status, reason = "ok", None
        if not e["supported"]:
            status, reason = "unsupported", "; ".join(e["unsupported_reasons"])
        elif e["fits"] is False:
            status = "does-not-fit"
            reason = e["fit_reason"] or "does not fit"
            if e["suggestions"]:
                reason += "; " + e["suggestions"][0]["text"]
        elif estimated:
            reason = ESTIMATED
        engine = e.get("engine") or {}
        out.append({
            "model": model, "revision": d["model"]["revision"], "framework": name, "status": status,
            "reason": reason, "gpu": gpu["name"] if gpu else None, "gpus": e["gpus"],
            "context": d["kv_cache"]["context"], "batch": d["kv_cache"]["batch"],
            "per_gpu_bytes": e["per_gpu_bytes"] if e["supported"] else None,
            "process_bytes": e["process_bytes"] if e["supported"] else None,
            "budget_bytes": e.get("budget_bytes"),
            "total_bytes": e["total_bytes"] if e["supported"] else None,
            "weights_bytes": e["components"].get("weights"), "kv_cache_bytes": e["components"].get("kv_cache"),
            "allowed_bytes": allowed, "headroom_bytes": e["headroom_bytes"], "fits": e["fits"],
            "max_context": e["max_context"], "estimated": estimated,
            "engine_version": f"{engine.get('label', name)} {engine.get('version', '')}".strip(),
            "engine_settings": engine.get("settings"), "engine_defaults": engine.get("defaults"),
            "suggestions": e["suggestions"], "parameters": d["parameters"]["total"],
            "source": d["model"]["source"], "retryable": None,
        })
    return out


def error_row(model: str, message: str, retryable: bool = False) -> dict:
    """A model that could not be analysed. `retryable`: a network fault or rate limit (trying again may help), not
    a bad repo, file or setting."""
    row = dict.fromkeys(FIELDS)
    row.update({"model": model, "status": "error", "reason": message, "retryable": retryable})
    return row


class Writer:
    """Streams rows in one format. `close()` finishes formats that need the whole set (json, table)."""

    def __init__(self, fmt: str, out: IO[str], units: str = "GiB", append: bool = False):
        self.fmt = fmt
        self.out = out
        self.units = units
        self.rows: list[dict] = []
        self.count = 0
        if fmt == "csv":
            self.csv = csv.DictWriter(out, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
            if not append:
                self.csv.writeheader()
        elif fmt == "markdown" and not append:
            out.write(MARKDOWN_HEADER + "\n")
        out.flush()

    def write(self, row: dict) -> None:
        self.count += 1
        if self.fmt == "jsonl":
            self.out.write(json.dumps(row) + "\n")
        elif self.fmt == "csv":
            self.csv.writerow(row)
        elif self.fmt == "markdown":
            self.out.write(markdown_row(row, self.units) + "\n")
        else:
            self.rows.append(row)  # json and table need the whole set
            return
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            json.dump(self.rows, self.out, indent=2)
            self.out.write("\n")
        elif self.fmt == "table":
            render_table(self.rows, self.out, self.units)
        self.out.flush()


MARKDOWN_HEADER = ("| model | framework | engine | status | per GPU | fits | max context | reason |\n"
                   "|---|---|---|---|---:|---|---:|---|")


def markdown_row(row: dict, units: str = "GiB") -> str:
    fits = {True: "yes", False: "**no**", None: "-"}[row.get("fits")]
    size = fmt_bytes(row["per_gpu_bytes"], units) if row.get("per_gpu_bytes") else "-"
    reason = (row.get("reason") or "").replace("|", "\\|")
    return (f"| {row['model']} | {row.get('framework') or '-'} | {row.get('engine_version') or '-'} | "
            f"{row['status']} | {size} | {fits} | {row.get('max_context') or '-'} | {reason} |")


def render_table(rows: list[dict], out: IO[str], units: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title_justify="left")
    for col in ("model", "framework", "status", "per GPU", "fits", "max ctx", "reason"):
        table.add_column(col, justify="right" if col in ("per GPU", "max ctx") else "left",
                         overflow="fold" if col in ("model", "reason") else "ellipsis")
    for r in rows:
        status = {"ok": "[green]ok[/green]", "does-not-fit": "[yellow]does-not-fit[/yellow]",
                  "unsupported": "[magenta]unsupported[/magenta]", "error": "[red]error[/red]"}[r["status"]]
        table.add_row(r["model"], r.get("framework") or "-", status,
                      fmt_bytes(r["per_gpu_bytes"], units) if r.get("per_gpu_bytes") else "-",
                      {True: "yes", False: "no", None: "-"}[r.get("fits")],
                      f"{r['max_context']:,}" if r.get("max_context") else "-", r.get("reason") or "")
    Console(file=out, width=160 if not getattr(out, "isatty", lambda: False)() else None).print(table)


def read_done(path: str) -> set[str]:
    """Models already answered (ok or does-not-fit) in a previous JSONL or CSV output, for --resume."""
    done: set[str] = set()
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return done
    if text.lstrip().startswith("{"):
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a row cut short by the interruption
            if row.get("status") in ("ok", "does-not-fit"):
                done.add(row["model"])
    else:
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("status") in ("ok", "does-not-fit"):
                done.add(row["model"])
    return done
