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


def summary_rows(result, units: str = "GiB") -> list[tuple[str, str]]:
    d = result.to_dict()
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
    dtypes = ", ".join(f"{k} {fmt_bytes(v, units)}" for k, v in w["by_dtype"].items())
    exact = "exact, from safetensors headers" if w["exact"] else f"from {w['source'].replace('-', ' ')}"
    rows.append(("Weights", f"{fmt_bytes(w['bytes'], units)} ({dtypes}; {exact})"))
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
    for key, value in summary_rows(result, units):
        table.add_row(key, value)
    console.print(table)
    for note in d["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
