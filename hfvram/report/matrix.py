"""The model x GPU grid of a scan (`hfvram scan --format matrix` / `matrix-markdown`): one line per model and
framework, one column per GPU scanned, each cell the verdict and the longest context that fits.

`grid(rows)` is the data (for any renderer, the HTML report included); `render_matrix` prints it for a terminal (rich)
or as Markdown. Cells:

    ✓ 131,072   fits at the scanned context; 131,072 tokens is the longest context that fits, up to the model's
                own maximum (✓ alone: fits, no longest context was computed)
    ✗ 2,048     does not fit at the scanned context; 2,048 tokens would (✗ alone: not even a short context fits)
    n/a         the engine cannot run this model (see the row's reason)
    error       the model could not be analysed on this GPU (see the row's reason)
    14.2 GiB    no GPU was given: what the engine needs per GPU
"""

from __future__ import annotations

from typing import IO

from ..units import fmt_bytes

FITS, NO_FIT, UNSUPPORTED, ERROR, SIZE = "fits", "does-not-fit", "unsupported", "error", "size"
NO_GPU = "no GPU"  # the column of a scan without --gpu


def cell(row: dict | None) -> dict | None:
    """One row's verdict as a cell: {"state", "max_context", "per_gpu_bytes", "reason"}; None for no row."""
    if row is None:
        return None
    status = row["status"]
    if status == "error":
        state = ERROR
    elif status == "unsupported":
        state = UNSUPPORTED
    elif row.get("fits") is True:
        state = FITS
    elif row.get("fits") is False or status == "does-not-fit":
        state = NO_FIT
    else:
        state = SIZE
    return {"state": state, "max_context": row.get("max_context"), "per_gpu_bytes": row.get("per_gpu_bytes"),
            "reason": row.get("reason")}


def cell_text(c: dict | None, units: str = "GiB") -> str:
    if c is None:
        return "-"
    state, longest = c["state"], c.get("max_context")
    if state == FITS:
        return f"✓ {longest:,}" if longest else "✓"
    if state == NO_FIT:
        return f"✗ {longest:,}" if longest else "✗"
    if state == UNSUPPORTED:
        return "n/a"
    if state == ERROR:
        return "error"
    return fmt_bytes(c["per_gpu_bytes"], units) if c.get("per_gpu_bytes") else "-"


def grid(rows: list[dict]) -> dict:
    """{"gpus": [column labels in scan order], "lines": [{"model", "framework", "cells": {label: cell}}],
    "context", "batch"}. An error row (no framework) fills every framework line of its model on its GPU; a model
    that failed on every GPU gets one line with framework None."""
    gpus: dict[str, None] = {}
    models: dict[str, dict] = {}
    context = batch = None
    for r in rows:
        label = r.get("gpu_spec") or NO_GPU
        gpus.setdefault(label, None)
        m = models.setdefault(r["model"], {"frameworks": {}, "errors": {}, "cells": {}})
        if r["status"] == "error" and not r.get("framework"):
            m["errors"][label] = r
            continue
        m["frameworks"].setdefault(r["framework"], None)
        m["cells"][(r["framework"], label)] = r
        if context is None and r.get("context"):
            context, batch = r["context"], r.get("batch")
    lines = []
    for model, m in models.items():
        for fw in list(m["frameworks"]) or [None]:
            lines.append({"model": model, "framework": fw,
                          "cells": {g: cell(m["cells"].get((fw, g)) or m["errors"].get(g)) for g in gpus}})
    return {"gpus": list(gpus), "lines": lines, "context": context, "batch": batch}


def legend(g: dict) -> str:
    at = f" at {g['context']:,} tokens x batch {g['batch']}" if g.get("context") else ""
    return (f"✓ N: fits{at}; N tokens is the longest context that fits (at most the model's own maximum); "
            f"✗ N: does not fit{at}, N tokens would; "
            f"✗: not even a short context fits; n/a: the engine cannot run the model; error: not analysed (see the "
            f"rows); a size: no GPU given, what the engine needs per GPU.")


def render_matrix(rows: list[dict], out: IO[str], units: str = "GiB", markdown: bool = False) -> None:
    g = grid(rows)
    if markdown:
        out.write(markdown_matrix(g, units))
        return
    from rich.console import Console
    from rich.table import Table

    styles = {FITS: "green", NO_FIT: "yellow", UNSUPPORTED: "magenta", ERROR: "red", SIZE: ""}
    table = Table(title_justify="left", caption=legend(g), caption_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column("framework", no_wrap=True)
    for label in g["gpus"]:
        table.add_column(label, justify="right", no_wrap=True)
    for line in g["lines"]:
        cells = []
        for label in g["gpus"]:
            c = line["cells"][label]
            text = cell_text(c, units)
            style = styles[c["state"]] if c else ""
            cells.append(f"[{style}]{text}[/{style}]" if style else text)
        table.add_row(line["model"], line["framework"] or "-", *cells)
    tty = getattr(out, "isatty", lambda: False)()
    # Off a terminal nothing may be cut: as wide as the longest line (rich folds a table to the console width).
    width = None if tty else max(80, _width(g, units))
    Console(file=out, width=width, highlight=False).print(table)


def _width(g: dict, units: str) -> int:
    cols = [max([5] + [len(ln["model"]) for ln in g["lines"]]),
            max([9] + [len(ln["framework"] or "-") for ln in g["lines"]])]
    for label in g["gpus"]:
        cols.append(max([len(label)] + [len(cell_text(ln["cells"][label], units)) for ln in g["lines"]]))
    return sum(cols) + 3 * len(cols) + 1


def markdown_matrix(g: dict, units: str = "GiB") -> str:
    head = ["model", "framework", *g["gpus"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(g["gpus"])]
    for line in g["lines"]:
        cells = [line["model"], line["framework"] or "-", *(cell_text(line["cells"][label], units)
                                                             for label in g["gpus"])]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + legend(g) + "\n"
