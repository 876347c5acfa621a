"""The readable summary printed by `hfvram MODEL`."""

from __future__ import annotations

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


SHORT_LABELS = {"transformers": "HF", "vllm": "vLLM", "trtllm": "TRT-LLM", "llamacpp": "llama.cpp",
                "exllamav2": "ExLlamaV2"}


def short_tokens(n: int) -> str:
    """fmt_tokens, with large odd counts shortened to fit the column (36,532 -> 35.7K)."""
    return f"{n / 1024:.1f}K" if n >= 10240 and n % 1024 else fmt_tokens(n)


def num(n, units: str = "GiB") -> str:
    if n is None:
        return "-"
    return f"{n / (1e9 if units == 'GB' else 1 << 30):.2f}"


def estimate_table(d: dict, es, units: str = "GiB"):
    """One row per framework: components of the most loaded GPU, total, fit, largest context."""
    from rich.table import Table

    estimates = d["estimates"]
    if not estimates:
        return None
    used = [(label, keys) for label, keys in COLUMNS
            if any(e["components"].get(k) for e in estimates.values() for k in keys)]
    gpu = d["gpu"]
    title = f"Per-GPU memory at {d['kv_cache']['context']:,} tokens x {d['kv_cache']['batch']}"
    if es is not None and (es.tp > 1 or es.pp > 1):
        title += f", tp {es.tp} pp {es.pp}"
    if gpu:
        title += f" on {gpu['count']} x {gpu['name']} ({fmt_bytes(gpu['usable_bytes'], units)} usable)"
    title += f" ({units})"
    table = Table(title=title, title_justify="left")
    table.add_column("framework", no_wrap=True)
    for label, _ in used:
        table.add_column(label, justify="right")
    table.add_column("per GPU", justify="right", style="bold")
    table.add_column("vs HF", justify="right")
    if gpu:
        table.add_column("fits", justify="center")
        table.add_column("max ctx", justify="right")
    for name, e in estimates.items():
        row = [SHORT_LABELS.get(name, name)]
        if not e["supported"]:
            row += ["-"] * len(used) + ["[magenta]unsupported[/magenta]", "-"]
            if gpu:
                row += ["[red]no[/red]", "-"]
            table.add_row(*row)
            continue
        for _, keys in used:
            value = sum(e["components"].get(k, 0) for k in keys)
            row.append(num(value, units) if value else "-")
        row.append(num(e["per_gpu_bytes"], units))
        vs = e.get("vs_transformers")
        row.append("-" if vs is None else f"{100 * vs:+.0f}%")
        if gpu:
            row.append("[green]yes[/green]" if e["fits"] else "[red]no[/red]" if e["fits"] is False else "?")
            row.append(short_tokens(e["max_context"]) if e["max_context"] else "-")
        table.add_row(*row)
    return table


def projection_table(d: dict, units: str = "GiB"):
    from rich.table import Table

    if not d["projections"] or not d["estimates"]:
        return None
    contexts = [(str(d["kv_cache"]["context"]), {k: v["per_gpu_bytes"] for k, v in d["estimates"].items()},
                 bool(d["architecture"]["max_context"] and d["kv_cache"]["context"] > d["architecture"]["max_context"]))]
    contexts += [(ctx, p["per_gpu_bytes"], p["beyond_max_context"]) for ctx, p in d["projections"].items()]
    contexts.sort(key=lambda c: int(c[0]))
    table = Table(title=f"Per-GPU memory by context ({units}; * beyond the model's maximum context)",
                  title_justify="left")
    table.add_column("framework")
    for ctx, _, beyond in contexts:
        table.add_column(fmt_tokens(int(ctx)) + ("*" if beyond else ""), justify="right")
    for name in d["estimates"]:
        table.add_row(SHORT_LABELS.get(name, name), *[num(per.get(name), units) for _, per, _ in contexts])
    return table


def engine_line(e: dict) -> str:
    """`vLLM 0.33: gpu_memory_utilization 0.92*, max_num_seqs 256*, ...` (* = the engine's default)."""
    engine = e.get("engine") or {}
    defaults = set(engine.get("defaults") or ())
    settings = ", ".join(f"{k} {v}{'*' if k in defaults else ''}" for k, v in (engine.get("settings") or {}).items())
    return f"{engine.get('label', '?')} {engine.get('version', '')}: {settings} (* default)"


def render(result, units: str = "GiB") -> None:
    from rich.console import Console
    from rich.table import Table

    d = result.to_dict()
    console = Console()
    m = d["model"]
    rev = (m["revision"] or "")[:12]
    title = f"{m['id']}" + (f" @ {rev}" if rev else "") + f"  [dim]({m['source']})[/dim]"
    table = Table(title=title, show_header=False, box=None, title_justify="left", pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary_rows(d, units):
        table.add_row(key, value)
    console.print(table)
    for extra in (estimate_table(d, result.estimate_settings, units), projection_table(d, units)):
        if extra is not None:
            console.print()
            console.print(extra)
    console.print()
    for name, e in d["estimates"].items():
        label = SHORT_LABELS.get(name, name)
        if not e["supported"]:
            for reason in e["unsupported_reasons"]:
                console.print(f"[magenta]{label}:[/magenta] cannot run it: {reason}")
            continue
        console.print(f"[dim]{label}:[/dim] {engine_line(e)}")
        if e.get("fit_reason"):
            console.print(f"[red]{label}:[/red] does not fit: {e['fit_reason']}")
        for line in e["notes"]:
            console.print(f"[dim]{label}:[/dim] {line}")
        for sug in e["suggestions"]:
            console.print(f"[cyan]{label}:[/cyan] {sug['text']}")
        if name == "vllm" and e.get("kv_pool_bytes") is not None:
            console.print(f"[dim]{label}:[/dim] KV pool {fmt_bytes(e['kv_pool_bytes'], units)}, "
                          f"{e['num_blocks']:,} blocks of {e['block_size']} tokens, GPU KV cache size "
                          f"{e.get('kv_tokens') or 0:,} tokens, maximum concurrency {e['max_concurrency'] or 0}x; "
                          f"needs {fmt_bytes(e['min_gpu_bytes'], units)} of GPU memory for this request")
    for note in d["notes"]:
        if note not in result.facts.repo.notes:  # those went to stderr already
            console.print(f"[yellow]note:[/yellow] {note}")


def render_listing(listing, units: str = "GiB") -> None:
    """`hfvram REPO` for a repo holding several models (hfvram.analysis.Listing): one row per GGUF quant file or EXL2
    branch, with its size and, per engine that can load it, per-GPU memory, fit and largest context."""
    from rich.console import Console
    from rich.table import Table

    d = listing.to_dict()
    console = Console()
    rows = [it for it in d["items"]]
    engines = [name for name in ("llamacpp", "exllamav2", "transformers", "vllm", "trtllm")
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
