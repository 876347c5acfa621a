"""Flat rows (one per model, framework and GPU) for `scan` and `check`, and their writers: csv, jsonl, markdown, json,
a table for people and the model x GPU matrix (terminal and Markdown). Writers that can stream (csv, jsonl,
markdown) write each row as it arrives.

A row is a dict with these keys (the jsonl/json documents; csv has the FIELDS subset plus human columns). They are
stable: the HTML report and other tools read them.

    model           the model as given (org/name, org/name@rev, a path)
    revision        the commit the answer was read at
    framework       transformers | vllm | trtllm | llamacpp | exllamav2 (None on an error row)
    gpu_spec        the GPU as scanned, one matrix column: "L40S", "L40S:2", "24GiB GPU" (None without a GPU)
    gpu, gpus       the catalog name of that GPU, and how many the engine uses (tp x pp)
    status          ok | does-not-fit | unsupported | error
    fits            True / False with a GPU or --max-memory, else None
    max_context     the longest context (tokens) that fits the GPU at this batch, or None
    per_gpu_bytes   what the engine needs on its most loaded GPU; process_bytes: what the process holds there;
                    budget_bytes: the engine's own budget (vLLM, TensorRT-LLM); allowed_bytes: what the deployment
                    may use per GPU (GPU, --max-memory, --headroom); headroom_bytes: allowed - held
    low_bytes, high_bytes  the error band of per_gpu_bytes (hfvram.estimate.bands: each component's held-out
                    error); a verdict holds at the high end
    reason          why it does not fit / cannot run / failed (one line), or a caveat
    retryable       on an error row: True when retrying could help (network fault, rate limit, timeout), False
                    when it cannot (bad repo id, gated without a token, malformed files, a bad setting)
    settings_key    a hash of every setting that shapes the row (hfvram release, framework, GPU, context, batch,
                    dtypes, quantisation, parallelism, headroom, memory cap, LoRA, draft, engine knobs):
                    `scan --resume` reuses a row only when its key is the one it would compute now
    context, batch, total_bytes, weights_bytes, kv_cache_bytes, estimated, engine_version, engine_settings,
    engine_defaults, suggestions, parameters, source: as in the single-model JSON document
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO

from ..units import fmt_bytes

FIELDS = ("model", "revision", "framework", "gpu_spec", "status", "reason", "gpu", "gpus", "context", "batch",
          "per_gpu_bytes", "low_bytes", "high_bytes", "process_bytes", "budget_bytes", "total_bytes", "weights_bytes",
          "kv_cache_bytes", "host_bytes", "allowed_bytes", "ram_bytes", "headroom_bytes", "fits", "max_context",
          "estimated", "engine_version", "parameters", "source", "retryable", "settings_key")
INT_FIELDS = ("gpus", "context", "batch", "per_gpu_bytes", "low_bytes", "high_bytes", "process_bytes", "budget_bytes",
              "total_bytes", "weights_bytes", "kv_cache_bytes", "host_bytes", "allowed_bytes", "ram_bytes",
              "headroom_bytes", "max_context", "parameters")
BOOL_FIELDS = ("fits", "estimated", "retryable")
STATUSES = ("ok", "does-not-fit", "unsupported", "error")
# Columns a person reads first in a spreadsheet (sizes in --units, 2 decimals), then the raw values.
HUMAN = (("per_gpu", "per_gpu_bytes"), ("process", "process_bytes"), ("allowed", "allowed_bytes"))


def csv_fields(units: str = "GiB") -> list[str]:
    human = [f"{name}_{units.lower()}" for name, _ in HUMAN]
    first = ["model", "framework", "gpu_spec", "status", "fits", "max_context", *human, "reason", "retryable"]
    return first + [f for f in FIELDS if f not in first]


def gpu_label(choice) -> str | None:
    """A GPU choice as a scan names it: the catalog name, with `:COUNT` when there is more than one."""
    if choice is None:
        return None
    return choice.gpu.name if choice.count == 1 else f"{choice.gpu.name}:{choice.count}"

# What an estimate resting on no weight file says (hfvram check fails it unless --allow-estimated).
ESTIMATED = "weights estimated from the config (no weight file was read)"


def rows_for(analysis, model: str) -> list[dict]:
    """One row per framework. Status: ok; does-not-fit (a GPU or limit was given and it does not fit, with the
    headroom and memory cap the analysis was run with); unsupported (the engine cannot run it)."""
    d = analysis.to_dict()
    gpu = d["gpu"]
    es = analysis.estimate_settings
    allowed = es.allowed_bytes if es is not None else None
    spec = gpu_label(es.gpu) if es is not None else None
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
            "reason": reason, "gpu_spec": spec, "gpu": gpu["name"] if gpu else None, "gpus": e["gpus"],
            "context": d["kv_cache"]["context"], "batch": d["kv_cache"]["batch"],
            "per_gpu_bytes": e["per_gpu_bytes"] if e["supported"] else None,
            "low_bytes": e.get("low_bytes"), "high_bytes": e.get("high_bytes"),
            "process_bytes": e["process_bytes"] if e["supported"] else None,
            "budget_bytes": e.get("budget_bytes"),
            "total_bytes": e["total_bytes"] if e["supported"] else None,
            "weights_bytes": e["components"].get("weights"), "kv_cache_bytes": e["components"].get("kv_cache"),
            # host RAM the engine holds (llama.cpp's CPU buffers, ExLlamaV2's embedding table) and the limit it was
            # checked against (--ram, or what --gpu auto detected; None: no host verdict)
            "host_bytes": e.get("host_bytes") if e["supported"] else None,
            "ram_bytes": es.ram if es is not None else None,
            "allowed_bytes": allowed, "headroom_bytes": e["headroom_bytes"], "fits": e["fits"],
            "max_context": e["max_context"], "estimated": estimated,
            "engine_version": f"{engine.get('label', name)} {engine.get('version', '')}".strip(),
            "engine_settings": engine.get("settings"), "engine_defaults": engine.get("defaults"),
            "suggestions": e["suggestions"], "parameters": d["parameters"]["total"],
            "source": d["model"]["source"], "retryable": None, "settings_key": None,
        })
    return out


def error_row(model: str, message: str, retryable: bool = False, *, gpu=None, settings_key: str | None = None) -> dict:
    """A model that could not be analysed (on this GPU, when `gpu`, a GPUChoice, is given). `retryable`: a network
    fault, rate limit or timeout (trying again may help), not a bad repo, file or setting."""
    row = dict.fromkeys(FIELDS)
    row.update({"model": model, "status": "error", "reason": message, "retryable": bool(retryable),
                "gpu_spec": gpu_label(gpu), "gpu": gpu.gpu.name if gpu is not None else None,
                "settings_key": settings_key})
    return row


FORMATS = ("table", "csv", "jsonl", "markdown", "json", "matrix", "matrix-markdown")
STREAMED = ("csv", "jsonl", "markdown")  # written row by row; the others need the whole set
RESUMABLE = ("csv", "jsonl", "json")  # what `scan --resume` can read back


class Writer:
    """Writes rows in one format. csv, jsonl and markdown stream; `close()` finishes the formats that need the
    whole set (json, table, matrix, matrix-markdown)."""

    def __init__(self, fmt: str, out: IO[str], units: str = "GiB", append: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown row format {fmt!r}")
        self.fmt = fmt
        self.out = out
        self.units = units
        self.rows: list[dict] = []
        self.count = 0
        self.closed = False
        if fmt == "csv":
            self.csv = csv.DictWriter(out, fieldnames=csv_fields(units), extrasaction="ignore", lineterminator="\n")
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
            self.csv.writerow(with_human_columns(row, self.units))
        elif self.fmt == "markdown":
            self.out.write(markdown_row(row, self.units) + "\n")
        else:
            self.rows.append(row)  # json, table and the matrix need the whole set
            return
        self.out.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.fmt == "json":
            json.dump(self.rows, self.out, indent=2)
            self.out.write("\n")
        elif self.fmt == "table":
            render_table(self.rows, self.out, self.units)
        elif self.fmt in ("matrix", "matrix-markdown"):
            from .matrix import render_matrix

            render_matrix(self.rows, self.out, self.units, markdown=self.fmt == "matrix-markdown")
        self.out.flush()


def with_human_columns(row: dict, units: str = "GiB") -> dict:
    """The csv row: raw values plus sizes in `units` (GiB = 2^30, GB = 10^9 bytes) rounded to 2 decimals."""
    scale = (1 << 30) if units == "GiB" else 10**9
    out = dict(row)
    for name, raw in HUMAN:
        value = row.get(raw)
        out[f"{name}_{units.lower()}"] = None if value is None else f"{value / scale:.2f}"
    return out


MARKDOWN_HEADER = ("| model | framework | engine | status | GPU | per GPU | fits | max context | reason |\n"
                   "|---|---|---|---|---|---:|---|---:|---|")


def markdown_row(row: dict, units: str = "GiB") -> str:
    fits = {True: "yes", False: "**no**", None: "-"}[row.get("fits")]
    size = fmt_bytes(row["per_gpu_bytes"], units) if row.get("per_gpu_bytes") else "-"
    reason = (row.get("reason") or "").replace("|", "\\|")
    return (f"| {row['model']} | {row.get('framework') or '-'} | {row.get('engine_version') or '-'} | "
            f"{row['status']} | {row.get('gpu_spec') or '-'} | {size} | {fits} | {row.get('max_context') or '-'} | "
            f"{reason} |")


def render_table(rows: list[dict], out: IO[str], units: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title_justify="left")
    with_gpu = any(r.get("gpu_spec") for r in rows)
    columns = ("model", "framework", *(("GPU",) if with_gpu else ()), "status", "per GPU", "fits", "max ctx", "reason")
    for col in columns:
        table.add_column(col, justify="right" if col in ("per GPU", "max ctx") else "left",
                         overflow="fold" if col in ("model", "reason") else "ellipsis")
    for r in rows:
        status = {"ok": "[green]ok[/green]", "does-not-fit": "[yellow]does-not-fit[/yellow]",
                  "unsupported": "[magenta]unsupported[/magenta]", "error": "[red]error[/red]"}[r["status"]]
        table.add_row(r["model"], r.get("framework") or "-", *((r.get("gpu_spec") or "-",) if with_gpu else ()),
                      status, fmt_bytes(r["per_gpu_bytes"], units) if r.get("per_gpu_bytes") else "-",
                      {True: "yes", False: "no", None: "-"}[r.get("fits")],
                      f"{r['max_context']:,}" if r.get("max_context") else "-", r.get("reason") or "")
    Console(file=out, width=160 if not getattr(out, "isatty", lambda: False)() else None).print(table)


# -- reading an earlier output back (scan --resume) ---------------------------------------------------------------

def read_rows(path: str) -> list[dict] | None:
    """The complete rows of an earlier jsonl, csv or json output of `hfvram scan`, in file order; None when the file
    does not exist. A last line cut short by an interruption is left out (a csv line without its newline could
    otherwise read as a complete row with a truncated number). Anything else is a UsageError."""
    from ..errors import UsageError

    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --resume file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    head = text.lstrip()[:1]
    if not head:
        return []
    if head == "[":
        try:
            data = json.loads(text)
        except ValueError:
            raise UsageError(f"--resume {path}: not a complete json document (a json output is written at the end; "
                             f"an interrupted scan leaves jsonl or csv to resume from)") from None
        rows = [r for r in data if _valid(r)] if isinstance(data, list) else []
    elif head == "{":
        rows = []
        lines = text.split("\n")
        for line in lines[:-1] if not text.endswith("\n") else lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a row cut short by an interruption (or a stray line): not an answer
            if _valid(row):
                rows.append(row)
    else:
        complete = text if text.endswith("\n") else text[:text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(complete, newline=""))
        if not reader.fieldnames or not {"model", "status"} <= set(reader.fieldnames):
            raise UsageError(f"--resume {path}: not a jsonl, csv or json output of `hfvram scan` (formats "
                             f"{', '.join(RESUMABLE)} can be resumed)")
        rows = [r for r in map(_typed, reader) if _valid(r)]
    return rows


_HUMAN_NAMES = {f"{name}_{units}" for name, _ in HUMAN for units in ("gib", "gb")}


def _valid(row) -> bool:
    return isinstance(row, dict) and isinstance(row.get("model"), str) and row.get("status") in STATUSES


def _typed(row: dict) -> dict:
    """A csv row's strings back to the values a jsonl row holds (numbers, booleans, None for empty)."""
    out: dict = {}
    for key, value in row.items():
        if key is None or key in _HUMAN_NAMES:
            continue  # more cells than the header (a damaged line), or a human column (derived when written)
        if value in ("", None):
            out[key] = None
        elif key in INT_FIELDS:
            try:
                out[key] = int(value)
            except ValueError:
                return {}  # not a row this program wrote
        elif key in BOOL_FIELDS:
            if value not in ("True", "False"):
                return {}
            out[key] = value == "True"
        else:
            out[key] = value
    return out
