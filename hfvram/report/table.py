"""The readable summary printed by `hfvram MODEL`."""

from __future__ import annotations

from dataclasses import field

from ..record import record
from ..units import fmt_bytes, fmt_count, fmt_tokens

_KIND_NAMES = {
    "full_attention": "full attention",
    "sliding_attention": "sliding window",
    "chunked_attention": "chunked local",
    "mla": "MLA",
    "linear_attention": "linear attention",
    "mamba": "Mamba",
    "none": "no cache",
}


def summary_rows(d: dict, units: str = "GiB") -> list[tuple[str, str]]:
    a, w, kv, p = d["architecture"], d["weights"], d["kv_cache"], d["parameters"]
    arch = [a["model_type"] or "?", f"{a['num_layers']} layers"]
    if a["hidden_size"]:
        arch.append(f"hidden {a['hidden_size']}")
    if a["num_attention_heads"]:
        arch.append(f"{a['num_attention_heads']} heads / {a['num_kv_heads']} KV")
    if a["head_dim"]:
        arch.append(f"head_dim {a['head_dim']}")
    if a["vocab_size"]:
        arch.append(f"vocab {a['vocab_size']:,}")
    arch.append(f"max context {fmt_tokens(a['max_context'])}")
    kinds = ", ".join(
        f"{n} {_KIND_NAMES[k]}" + (f" ({fmt_tokens(a['sliding_window'])})" if k == "sliding_attention" and
                                    a["sliding_window"] else "")
        for k, n in a["layer_kinds"].items() if n
    )
    rows = [("Architecture", " · ".join(arch)), ("Layers", kinds)]
    if a["moe"]:
        m = a["moe"]
        shared = f" + {m['shared_experts']} shared" if m["shared_experts"] else ""
        rows.append(("MoE", f"{m['num_experts']} experts, {m['experts_per_token']} per token{shared}"))
    if a["quantization"]:
        q = a["quantization"]
        bits = f" {q['bits']}-bit" if q["bits"] else ""
        group = f", group {q['group_size']}" if q["group_size"] else ""
        rows.append(("Quantization", f"{q['method']}{bits}{group}" + (f" ({q['format']})" if q["format"] else "")))
    params = fmt_count(p["total"])
    if p["active"] != p["total"]:
        params += f" total, {fmt_count(p['active'])} active per token"
    if not p["exact"]:
        params += " (estimated)"
    rows.append(("Parameters", params))
    dtypes = ", ".join(f"{k} {fmt_bytes(v, units)}" for k, v in list(w["by_dtype"].items())[:6])
    exact = {"safetensors-headers": "exact, from safetensors headers", "gguf-header": "exact, from the GGUF header"}.get(
        w["source"], f"from {w['source'].replace('-', ' ')}") if w["exact"] else f"from {w['source'].replace('-', ' ')}"
    rows.append(("Weights", f"{fmt_bytes(w['bytes'], units)} ({dtypes}; {exact})"))
    g = d.get("gguf")
    if g:
        size = f", {fmt_bytes(g['file_bytes'], units)}" if g["file_bytes"] else ""
        files = g["files"][0] + (f" + {len(g['files']) - 1} more splits" if len(g["files"]) > 1 else "")
        rows.append(("GGUF", f"{g['file_type'] or g['label']} ({files}{size}; {g['architecture']})"))
        if g["mmproj"]:
            rows.append(("  projector", f"{g['mmproj']} ({fmt_bytes(g['mmproj_bytes'] or 0, units)})"))
    vision = w["by_component"].get("vision")
    if vision:
        rows.append(("  vision tower", fmt_bytes(vision, units)))
    mtp = w["by_component"].get("mtp")
    if mtp:
        rows.append(("  MTP layers", f"{fmt_bytes(mtp, units)} (loaded only for speculative decoding)"))
    kv_line = (f"{fmt_bytes(kv['bytes'], units)} at {kv['context']:,} tokens x {kv['batch']} ({kv['dtype']}); "
               f"{fmt_bytes(kv['per_token_bytes'], units)} per token")
    if kv["state_bytes"]:
        kv_line += f"; fixed state {fmt_bytes(kv['state_bytes'], units)}"
    rows.append(("KV cache", kv_line))
    return rows


# Table columns: components grouped so five frameworks fit a terminal; --json has every component.
COLUMNS = (
    ("weights", ("weights", "mmproj")),
    ("KV", ("kv_cache",)),
    ("act.", ("activations", "compute", "scratch")),
    ("other", ("non_torch", "cuda_graphs", "cuda_context", "allocator_slack")),
    ("LoRA", ("lora",)),
    ("draft", ("draft",)),
)

# What the grouped and short headers mean (the legend line under the table).
LEGEND = {
    "act.": "activations, compute and scratch buffers",
    "other": "CUDA context, CUDA graphs, memory outside PyTorch's allocator, allocator slack",
    "vs HF": "per-GPU memory against HF Transformers'",
    "±": "error band of the per-GPU memory, from held-out measurements (verdicts hold at its high end)",
    "host RAM": "system memory the process holds (llama.cpp: token embeddings, layers and experts kept on the CPU, "
                "host buffers; part of the verdict with --ram)",
    "max ctx": "largest context that fits",
}

# When the terminal is too narrow, columns are left out in this order (first = first to go); the framework, the
# per-GPU total, the verdict and the largest context always stay, and no number is ever cut short.
DROP_ORDER = ("vs HF", "other", "±", "act.", "LoRA", "draft", "host RAM", "KV", "weights")


SHORT_LABELS = {"transformers": "HF", "vllm": "vLLM", "trtllm": "TRT-LLM", "llamacpp": "llama.cpp",
                "exllamav2": "ExLlamaV2", "ollama": "Ollama", "lmstudio": "LM Studio"}


def short_tokens(n: int) -> str:
    """fmt_tokens, with large odd counts shortened to fit the column (36,532 -> 35.7K)."""
    return f"{n / 1024:.1f}K" if n >= 10240 and n % 1024 else fmt_tokens(n)


def num(n, units: str = "GiB") -> str:
    if n is None:
        return "-"
    return f"{n / (1e9 if units == 'GB' else 1 << 30):.2f}"


def band_cell(e: dict, units: str = "GiB") -> str:
    """`+1.3/-0.5`: how far above and below the per-GPU figure its error band reaches (hfvram.estimate.bands), to a
    tenth of a unit so that the column stays narrow; --json has the bytes."""
    if e.get("high_bytes") is None or e.get("low_bytes") is None:
        return "-"
    scale = 1e9 if units == "GB" else 1 << 30
    return f"+{(e['high_bytes'] - e['per_gpu_bytes']) / scale:.1f}/-{(e['per_gpu_bytes'] - e['low_bytes']) / scale:.1f}"


@record
class Col:
    """One column of a terminal table: its header, cells and layout."""

    header: str
    cells: list = field(default_factory=list)  # rich markup
    justify: str = "right"
    style: str | None = None


def _cell_width(markup: str) -> int:
    from rich.text import Text

    return Text.from_markup(markup).cell_len


def fit_columns(cols: list[Col], width: int, drop_order=()) -> tuple[list[Col], list[int], list[str]]:
    """The columns that fit `width` terminal cells, their widths, and the headers left out. Cells are never cut:
    headers wrap at spaces first ("per GPU" over two lines), then columns go in `drop_order`."""
    def need(cs, ws):  # rich's default box: one rule per column plus the edge, one cell of padding either side
        return sum(ws) + 3 * len(cs) + 1

    def widths(cs, wrap):
        out = []
        for c in cs:
            head = max((len(w) for w in c.header.split()), default=0) if wrap else len(c.header)
            out.append(max([head, *(_cell_width(x) for x in c.cells)]))
        return out

    cols = list(cols)
    dropped: list[str] = []
    for header in (None, *drop_order):
        if header is not None:
            if not any(c.header == header for c in cols):
                continue
            cols = [c for c in cols if c.header != header]
            dropped.append(header)
        for wrap in (False, True):
            ws = widths(cols, wrap)
            if need(cols, ws) <= width:
                return cols, ws, dropped
    return cols, ws, dropped  # as narrow as it goes: rich wraps the table, still without cutting a number


def build_table(title: str, cols: list[Col], width: int, drop_order=()):
    """A rich Table of `cols` fitted to `width` (see fit_columns), and the headers left out."""
    from rich.table import Table

    cols, ws, dropped = fit_columns(cols, width, drop_order)
    table = Table(title=title, title_justify="left")
    for c, w in zip(cols, ws):
        table.add_column(c.header, justify=c.justify, style=c.style, width=w)
    for i in range(len(cols[0].cells) if cols else 0):
        table.add_row(*(c.cells[i] for c in cols))
    return table, dropped


def estimate_table(d: dict, es, units: str = "GiB", width: int = 80):
    """One row per framework: components of the most loaded GPU, total, fit, largest context. Returns the table
    and the headers left out to fit `width` (None, [] when there is no estimate)."""
    estimates = d["estimates"]
    if not estimates:
        return None, []
    used = [(label, keys) for label, keys in COLUMNS
            if any(e["components"].get(k) for e in estimates.values() for k in keys)]
    gpu = d["gpu"]
    title = f"Per-GPU memory ({units}) at {d['kv_cache']['context']:,} tokens x {d['kv_cache']['batch']}"
    if es is not None and (es.tp > 1 or es.pp > 1):
        title += f", tp {es.tp} pp {es.pp}"
    if gpu:
        title += f" on {gpu['count']} x {gpu['name']}, {fmt_bytes(gpu['usable_bytes'], units)} usable"
    # host RAM: a column when it is part of the answer (layers, experts or KV kept in RAM, LM Studio's copy, --ram)
    host = any(e.get("host_offload") or e.get("ram_bytes") for e in estimates.values())
    verdict = gpu or any(e.get("ram_bytes") for e in estimates.values())
    cols = [Col("framework", justify="left")] + [Col(label) for label, _ in used]
    cols += [Col("per GPU", style="bold"), Col("±")] + ([Col("host RAM")] if host else []) + [Col("vs HF")]
    if verdict:
        cols += [Col("fits", justify="center"), Col("max ctx")]
    for name, e in estimates.items():
        row = [SHORT_LABELS.get(name, name)]
        if not e["supported"]:
            row += ["-"] * len(used) + ["[magenta]unsupported[/magenta]", "-"] + (["-"] if host else []) + ["-"]
            if verdict:
                row += ["[red]no[/red]", "-"]
        else:
            for _, keys in used:
                value = sum(e["components"].get(k, 0) for k in keys)
                row.append(num(value, units) if value else "-")
            row.append(num(e["per_gpu_bytes"], units))
            row.append(band_cell(e, units))
            if host:
                row.append(num(e.get("host_bytes"), units))
            vs = e.get("vs_transformers")
            row.append("-" if vs is None else f"{100 * vs:+.0f}%")
            if verdict:
                row.append("[green]yes[/green]" if e["fits"] else "[red]no[/red]" if e["fits"] is False else
                           "-" if e["fits"] is None else "?")
                row.append(short_tokens(e["max_context"]) if e["max_context"] else "-")
        for col, cell in zip(cols, row):
            col.cells.append(cell)
    return build_table(title, cols, width, DROP_ORDER)


def legend_line(headers: list[str], dropped: list[str], width: int) -> str:
    """`act. = activations, ...; other = ...; vs HF = ...`, and which columns the terminal width left out."""
    parts = [f"{h} = {LEGEND[h]}" for h in headers if h in LEGEND]
    line = "; ".join(parts)
    if dropped:
        line += (f"{'; ' if line else ''}left out at {width} columns: {', '.join(dropped)} (a wider terminal or "
                 f"--json shows them)")
    return line


def projection_table(d: dict, units: str = "GiB", width: int = 80):
    if not d["projections"] or not d["estimates"]:
        return None, []
    contexts = [(str(d["kv_cache"]["context"]),
                 {k: v["per_gpu_bytes"] if v["supported"] else None for k, v in d["estimates"].items()},
                 bool(d["architecture"]["max_context"] and d["kv_cache"]["context"] > d["architecture"]["max_context"]))]
    contexts += [(ctx, p["per_gpu_bytes"], p["beyond_max_context"]) for ctx, p in d["projections"].items()]
    contexts.sort(key=lambda c: int(c[0]))
    title = f"Per-GPU memory ({units}) by context; * beyond the model's maximum context"
    cols = [Col("framework", [SHORT_LABELS.get(n, n) for n in d["estimates"]], justify="left")]
    cols += [Col(fmt_tokens(int(ctx)) + ("*" if beyond else ""), [num(per.get(n), units) for n in d["estimates"]])
             for ctx, per, beyond in contexts]
    # too narrow for every context: the largest go first
    return build_table(title, cols, width, [c.header for c in reversed(cols[2:])])


DEFAULT_MARK = "* = the engine's default setting"


def engine_line(e: dict) -> str:
    """`vLLM 0.33: gpu_memory_utilization 0.92*, max_num_seqs 256*, ...` (* = the engine's default, DEFAULT_MARK)."""
    engine = e.get("engine") or {}
    defaults = set(engine.get("defaults") or ())
    settings = ", ".join(f"{k} {v}{'*' if k in defaults else ''}" for k, v in (engine.get("settings") or {}).items())
    return f"{engine.get('label', '?')} {engine.get('version', '')}: {settings}"


def kv_pool_line(e: dict, units: str = "GiB") -> str:
    """vLLM's own startup figures: the KV pool, its blocks, and the tokens and concurrency they hold."""
    return (f"KV pool {fmt_bytes(e['kv_pool_bytes'], units)}, {e['num_blocks']:,} blocks of {e['block_size']} tokens, "
            f"GPU KV cache size {e.get('kv_tokens') or 0:,} tokens, maximum concurrency {e['max_concurrency'] or 0}x; "
            f"needs {fmt_bytes(e['min_gpu_bytes'], units)} of GPU memory for this request")


def note_lines(d: dict, units: str = "GiB", skip=()) -> list[tuple[str, str, str]]:
    """What the report says under its tables, as (framework label or "note", kind, text); kind is one of engine,
    cannot-run, does-not-fit, note, suggestion. `skip`: general notes already shown elsewhere (stderr)."""
    out = []
    for name, e in d["estimates"].items():
        label = SHORT_LABELS.get(name, name)
        if not e["supported"]:
            out += [(label, "cannot-run", f"cannot run it: {reason}") for reason in e["unsupported_reasons"]]
            continue
        out.append((label, "engine", engine_line(e)))
        if e.get("fit_reason"):
            out.append((label, "does-not-fit", f"does not fit: {e['fit_reason']}"))
        out += [(label, "note", line) for line in e["notes"]]
        out += [(label, "suggestion", sug["text"]) for sug in e["suggestions"]]
        if name == "vllm" and e.get("kv_pool_bytes") is not None:
            out.append((label, "engine", kv_pool_line(e, units)))
    out += [("note", "general", note) for note in d["notes"] if note not in skip]
    return out


_NOTE_STYLE = {"cannot-run": "magenta", "does-not-fit": "red", "suggestion": "cyan", "general": "yellow"}


def render(result, units: str = "GiB", file=None) -> None:
    """The terminal report, to stdout (or `file`), at the terminal's width (COLUMNS when it is not a terminal)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    d = result.to_dict()
    console = Console(file=file)
    m = d["model"]
    rev = (m["revision"] or "")[:12]
    title = f"{escape(m['id'])}" + (f" @ {rev}" if rev else "") + f"  [dim]({m['source']})[/dim]"
    table = Table(title=title, show_header=False, box=None, title_justify="left", pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary_rows(d, units):
        table.add_row(key, escape(value))
    console.print(table)
    width = console.width
    main, dropped = estimate_table(d, result.estimate_settings, units, width)
    if main is not None:
        console.print()
        console.print(main)
        shown = [c.header for c in main.columns]
        console.print(f"[dim]{escape(legend_line(shown, dropped, width))}[/dim]")
    by_context, dropped = projection_table(d, units, width)
    if by_context is not None:
        console.print()
        console.print(by_context)
        if dropped:
            console.print(f"[dim]{escape(legend_line([], dropped, width))}[/dim]")
    console.print()
    lines = note_lines(d, units, skip=result.facts.repo.notes)  # repo notes went to stderr
    for label, kind, text in lines:
        console.print(f"[{_NOTE_STYLE.get(kind, 'dim')}]{label}:[/] {escape(text)}")
    if any(kind == "engine" for _, kind, _ in lines):
        console.print(f"[dim]{escape(DEFAULT_MARK)}[/dim]")


def render_listing(listing, units: str = "GiB") -> None:
    """`hfvram REPO` for a repo holding several models (hfvram.analysis.Listing): one row per GGUF quant file or EXL2
    branch, with its size and, per engine that can load it, per-GPU memory, fit and largest context."""
    from rich.console import Console
    from rich.table import Table

    d = listing.to_dict()
    console = Console()
    rows = [it for it in d["items"]]
    engines = [name for name in ("llamacpp", "ollama", "lmstudio", "exllamav2", "transformers", "vllm", "trtllm")
               if any(it["analysis"] and (it["analysis"]["estimates"].get(name) or {}).get("supported")
                      for it in rows)]
    gpu = next((it["analysis"]["gpu"] for it in rows if it["analysis"] and it["analysis"]["gpu"]), None)
    what = {"gguf": "GGUF files", "exl2": "EXL2 branches"}[d["format"]]
    title = f"{d['model']['id']}: {len(rows)} {what} at {d['context']:,} tokens x {d['batch']}"
    if gpu:
        title += f" on {gpu['count']} x {gpu['name']} ({fmt_bytes(gpu['usable_bytes'], units)} usable)"
    table = Table(title=title + f" ({units})", title_justify="left")
    table.add_column("quant" if d["format"] == "gguf" else "branch", no_wrap=True)
    table.add_column("type")
    table.add_column("file size" if d["format"] == "gguf" else "size", justify="right")
    for name in engines:
        label = SHORT_LABELS.get(name, name)
        table.add_column(f"{label} per GPU", justify="right", style="bold")
        if gpu:
            table.add_column("fits", justify="center")
            table.add_column("max ctx", justify="right")
    for it in rows:
        a = it["analysis"]
        if a is None:
            table.add_row(it["label"], "-", num(it["bytes"], units), *(["-"] * (len(engines) * (3 if gpu else 1))))
            continue
        g = a.get("gguf") or {}
        q = a.get("quantization") or {}
        bits = g.get("bits_per_weight") if g else q.get("bits")
        kind = (g.get("file_type") or g.get("label") or "?") if g else (q.get("format") or q.get("method") or "?")
        if bits:
            kind += f", {bits:g} bpw" if g else f", {bits:g} bpw target"
        if len(it["files"]) > 1:
            kind += f" ({len(it['files'])} files)"
        cells = [it["label"], kind, num(it["bytes"], units)]
        for name in engines:
            e = a["estimates"].get(name)
            if not e or not e["supported"]:
                cells += ["-"] + (["-", "-"] if gpu else [])
                continue
            cells.append(num(e["per_gpu_bytes"], units))
            if gpu:
                cells.append("[green]yes[/green]" if e["fits"] else "[red]no[/red]" if e["fits"] is False else "?")
                cells.append(short_tokens(e["max_context"]) if e["max_context"] else "-")
        table.add_row(*cells)
    console.print(table)
    for it in rows:
        if it["error"]:
            console.print(f"[red]{it['label']}:[/red] {it['error']}")
    if d["mmproj"]:
        console.print(f"[dim]vision projectors:[/dim] {', '.join(d['mmproj'])} (add one with --mmproj)")
    labels = [it["label"] for it in rows if it["analysis"]]
    first = next((x for x in labels if x.upper() == "Q4_K_M"), labels[0] if labels else None)
    if first:
        sep = ":" if d["format"] == "gguf" else "@"
        console.print(f"[dim]one of them in full:[/dim] hfvram {d['model']['id']}{sep}{first}")
    for note in d["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
