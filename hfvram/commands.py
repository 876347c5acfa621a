"""The subcommands other than `show` (`hfvram scan|check|explain|gpus|recommend|engines|snapshot`), registered on
`hfvram.cli.cli` when this module is imported: by `cli.get_command` when one of them is asked for, or by a help that
lists them. A single-model run does not build their options."""

from __future__ import annotations

import os
import sys

import click

from .cli import KV_CHOICES, checked, cli, estimate_options, refresh_option
from .options import DEFAULT_JOBS


_SCAN_EXAMPLES = """\b
Examples:
  hfvram scan models.txt --gpu L40S,H100,RTX-4090 --format matrix
  hfvram scan models.txt -f vllm --context 32k --format csv -o fit.csv
  hfvram scan models.txt --format jsonl -o rows.jsonl --resume rows.jsonl
"""


@cli.command("scan", epilog=_SCAN_EXAMPLES)
@click.argument("inputs", nargs=-1, metavar="[FILE|-]...")
@click.option("--search", default=None, help="Scan a Hub listing: models matching this text.")
@click.option("--author", default=None, help="Scan a Hub listing: models of this user or organisation.")
@click.option("--sort", default=None, type=click.Choice(["downloads", "likes", "trending_score", "created_at",
                                                           "last_modified"]), help="Order of the Hub listing.")
@click.option("--limit", type=int, default=None, help="At most this many models from the listing.")
@estimate_options(several_gpus=True)
@click.option("--jobs", "-j", type=int, default=DEFAULT_JOBS, show_default=True,
              help="Models analysed concurrently.")
@click.option("--processes", type=int, default=None, metavar="N",
              help="Worker processes sharing the --jobs (default: one per CPU when there are at least 16 models "
                   "per process; 1: none).")
@click.option("--format", "fmt", default="table", show_default=True,
              type=click.Choice(["table", "csv", "jsonl", "markdown", "json", "matrix", "matrix-markdown", "html"]),
              help="Rows (table, csv, jsonl, markdown, json), the model x GPU grid (matrix for a terminal, "
                   "matrix-markdown), or html: a self-contained page with the fit grid (written at the end).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--output", "-o", default=None, metavar="FILE", help="Write rows here instead of stdout.")
@click.option("--resume", default=None, metavar="FILE",
              help="Reuse the rows of this earlier jsonl, csv or json output that were answered with the same "
                   "settings; redo the rest (errors included). With -o FILE the file is rewritten in place.")
@click.option("--offline", is_flag=True, help="No network: metadata cache, then the bundled snapshot.")
@refresh_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]))
def scan_cmd(inputs, search, author, sort, limit, jobs, processes, fmt, as_json, output, resume, offline, refresh,
             quiet, units, gpu, **opts):
    """Analyse many models, on one or more GPUs: files (one model per line, `-` for stdin) and/or a Hub listing.

    One row per model, GPU and framework, in input order, with status ok, does-not-fit (with --gpu), unsupported or
    error (retryable or not). Exit 0 when every row is ok, 1 when some failed or do not fit, 2 on a usage error.
    csv, jsonl and markdown rows are written as they finish, so an interrupted scan keeps what it had; --resume
    picks up from such a file.

    \b
    hfvram scan models.txt --gpu L40S,H100,RTX-4090 -f vllm --format matrix
    hfvram scan models.txt --gpu H100 --context 32k --format csv -o fit.csv
    hfvram scan models.txt --gpu L40S --format jsonl -o rows.jsonl --resume rows.jsonl
    """
    from .batch import read_model_list, scan, scan_options
    from .report.output import Output
    from .errors import UsageError
    from .report.rows import RESUMABLE, Writer, read_rows
    from .sources.hub import HubSource

    if not inputs and not (search or author):
        raise UsageError("nothing to scan: give model list file(s), `-` for stdin, or --search/--author")
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if processes is not None and processes < 1:
        raise UsageError("--processes must be at least 1")
    settings = checked(opts)
    scan_options(settings, list(gpu))  # every GPU checked before the first row or request
    fmt = "json" if as_json else fmt
    rewrite = bool(resume and output and os.path.realpath(resume) == os.path.realpath(output))
    if rewrite and fmt not in RESUMABLE:
        raise UsageError(f"--resume {resume} -o {output}: the file is rewritten in --format {fmt}, which --resume "
                         f"cannot read back; use {', '.join(RESUMABLE)}")
    previous = read_rows(resume) if resume else None
    models = read_model_list(list(inputs)) if inputs else []
    hub = HubSource(speculate=False, max_age=0 if refresh else None)  # throughput, not latency (HubSource.speculate)
    if search or author:
        listed = hub.list_models(search=search, author=author, sort=sort or "downloads", limit=limit)
        models += [m for m in listed if m not in models]
    out = Output(output, rewrite=rewrite)
    if fmt == "html":
        from .report.html import HtmlWriter

        writer = HtmlWriter(out.stream, units)
    else:
        writer = Writer(fmt, out.stream, units)
    progress = not quiet and sys.stderr.isatty()
    try:
        summary = scan(models, settings, writer, gpus=list(gpu), jobs=jobs, hub=hub, offline=offline,
                       previous=previous, resume_path=resume, progress=progress, processes=processes)
    except BaseException:
        # interrupted: with --resume every model was accounted for (the rest kept their earlier rows) and the
        # rewritten file may replace the old one; otherwise the old file stays as it was
        if rewrite and writer.closed:
            out.commit()
        else:
            out.abort()
        raise
    out.commit()
    if not quiet:
        if summary.resume is not None:
            click.echo(summary.resume.line(), err=True)
        click.echo(summary.line(), err=True)
    sys.exit(summary.exit_code)


_CHECK_EXAMPLES = """\b
Examples:
  hfvram check meta-llama/Llama-2-7b-hf --gpu L40S -f vllm --context 32k --headroom 10% \\
      --gpu-memory-utilization 0.85
  hfvram check org/model --max-memory 40GiB -f llamacpp --format json
"""


@cli.command("check", epilog=_CHECK_EXAMPLES)
@click.argument("models", nargs=-1, required=True)
@estimate_options
@click.option("--allow-estimated", is_flag=True,
              help="Let a verdict pass whose weights were estimated from the config (no weight file read).")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json", "markdown"]))
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]),
              help="Binary (2^30) or decimal (10^9) sizes in the verdict lines.")
@click.option("--offline", is_flag=True, help="No network: metadata cache, then the bundled snapshot.")
def check_cmd(models, allow_estimated, fmt, as_json, units, offline, **opts):
    """The CI gate: does each MODEL fit, per framework? Exit 0 all fit, 1 any does not, 2 on any error.

    A PASS holds at the high end of the estimate's error band (from held-out measurements; README "Error bands").
    Needs --gpu (or --gpu-mem) or --max-memory. A verdict line per model and framework; an engine that cannot run
    the model fails; so does a verdict whose weights were guessed from the config, unless --allow-estimated. With
    GITHUB_STEP_SUMMARY set, a Markdown table is appended to it.
    """
    from .check import run_check

    sys.exit(run_check(list(models), checked(opts), fmt="json" if as_json else fmt, offline=offline,
                       allow_estimated=allow_estimated, units=units))


_EXPLAIN_EXAMPLES = """\b
Examples:
  hfvram explain vllm.log
  hfvram explain server.log Qwen/Qwen3-8B --gpu RTX-4090
  hfvram explain trtllm.log --json
"""


@cli.command("explain", epilog=_EXPLAIN_EXAMPLES)
@click.argument("logfile", metavar="LOGFILE")
@click.argument("model", required=False)
@click.option("--engine", type=click.Choice(["vllm", "llamacpp", "trtllm", "sglang"]), default=None,
              help="The engine that printed the log (default: detected).")
@click.option("--gpu", default=None, metavar="NAME[:COUNT]",
              help="The GPU it ran on, when the log prints no total (default: the log's device and total).")
@click.option("--gpu-mem", default=None, metavar="SIZE", help="Or the GPU's memory (24GiB).")
@click.option("--tp", type=int, default=None, help="Tensor parallelism, when the log does not print it.")
@click.option("--pp", type=int, default=None, help="Pipeline parallelism, when the log does not print it.")
@click.option("--context", default=None, metavar="N", help="Context (max_model_len / n_ctx), when not printed.")
@click.option("--quantize", default=None, metavar="FORMAT",
              help="The weight format the engine ran, when MODEL's checkpoint is not in it (fp8, awq, gguf:Q4_K_M).")
@click.option("--kv-dtype", default=None, type=click.Choice(KV_CHOICES),
              help="The KV cache dtype, when the log does not print it.")
@click.option("--vllm-version", default=None, metavar="X.Y", help="vLLM release, when the log does not print it.")
@click.option("--gpu-memory-utilization", type=float, default=None, help="vLLM, when the log does not print it.")
@click.option("--max-num-seqs", type=int, default=None, help="vLLM, when the log does not print it.")
@click.option("--max-num-batched-tokens", type=int, default=None, help="vLLM, when the log does not print it.")
@click.option("--free-gpu-memory-fraction", type=float, default=None,
              help="TensorRT-LLM kv_cache_free_gpu_mem_fraction, when the log does not print it.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON (schema hfvram-explain/1).")
@click.option("--offline", is_flag=True, help="No network: metadata cache, then the bundled snapshot.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]))
def explain_cmd(logfile, model, engine, as_json, offline, units, **overrides):
    """Set an engine's startup log beside hfvram's estimate for the same settings.

    LOGFILE is a vLLM, llama.cpp (llama-server, llama-cpp-python, Ollama), TensorRT-LLM or SGLang log (`-` for
    stdin). MODEL is the Hub model it ran (default: the one the log names). Every memory figure the log printed is
    set beside ours, with the difference and what drives it; a log that ends out of memory gets what failed and
    what would fit. Settings the log does not print can be given as options.
    """
    from .explain import explain, read_log, render

    text = read_log(logfile)
    result = explain(text, model, engine=engine, offline=offline, **overrides)
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(render(result, units=units))


_GPUS_EXAMPLES = """\b
Examples:
  hfvram gpus                  the catalog (* = usable memory derived, not printed)
  hfvram gpus --vendor apple   Apple silicon, one row per memory configuration
  hfvram gpus --local          this machine's GPUs, what --gpu auto means, host RAM
"""


@cli.command("gpus", epilog=_GPUS_EXAMPLES)
@click.option("--local", is_flag=True, help="Detect this machine's GPUs (NVML, rocm-smi or sysfs, Apple sysctl) "
              "and host RAM instead of listing the catalog.")
@click.option("--vendor", type=click.Choice(["nvidia", "amd", "apple"]), default=None,
              help="Only this vendor's catalog entries.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog (or, with --local, what was found) as JSON.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]))
def gpus_cmd(local, vendor, as_json, units):
    """List the GPU catalog: marketed and usable memory, FP8 support; or, with --local, this machine's GPUs."""
    if local:
        return _gpus_local(as_json, units)
    from .gpus import catalog
    from .units import fmt_bytes

    rows = [g for g in catalog() if vendor is None or g.vendor == vendor]
    if as_json:
        import json

        click.echo(json.dumps([{"name": g.name, "vendor": g.vendor, "class": g.klass, "memory_bytes": g.memory_bytes,
                                "usable_bytes": g.usable_bytes, "usable_derived": g.usable_derived, "fp8": g.fp8,
                                "compute_capability": g.compute_capability, "sms": g.sms} for g in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="GPU catalog (usable = what CUDA/HIP reports, or Metal's share of unified memory; "
                        "* = derived, no printed total found)")
    for col in ("GPU", "vendor", "class", "memory", "usable", "FP8", "SM"):
        table.add_column(col, justify="right" if col in ("memory", "usable") else "left")
    for g in rows:
        table.add_row(g.name, g.vendor or "-", g.klass, fmt_bytes(g.memory_bytes, units),
                      fmt_bytes(g.usable_bytes, units) + ("*" if g.usable_derived else ""), "yes" if g.fp8 else "no",
                      g.compute_capability or "-")
    Console().print(table)


def _gpus_local(as_json: bool, units: str) -> None:
    from .hardware import detect, summary
    from .units import fmt_bytes

    hw = detect()
    if as_json:
        import json

        click.echo(json.dumps(hw.to_dict(), indent=2))
        return
    ram = hw.ram
    ram_line = "host RAM: " + (fmt_bytes(ram.total_bytes, units) if ram.total_bytes else "unknown") + (
        f" ({fmt_bytes(ram.available_bytes, units)} available)" if ram.available_bytes else "") + f", from {ram.source}"
    if not hw.devices:
        click.echo("No GPU found on this machine: " + "; ".join(hw.searched) + ".")
        click.echo("Name one with --gpu NAME[:COUNT] (see `hfvram gpus`) or give its memory with --gpu-mem 24GiB.")
        for note in hw.notes:
            click.echo(f"note: {note}")
        click.echo(ram_line)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="GPUs on this machine")
    for col in ("#", "device", "catalog", "total", "usable", "in use"):
        table.add_column(col, justify="right" if col in ("#", "total", "usable", "in use") else "left",
                         overflow="fold", no_wrap=col != "device")
    for d in hw.devices:
        table.add_row(f"{d.vendor} {d.index}", d.name, d.catalog or "(custom)", fmt_bytes(d.total_bytes, units),
                      fmt_bytes(d.usable_bytes, units),
                      fmt_bytes(d.used_bytes, units) if d.used_bytes is not None else "-")
    console = Console()
    console.print(table)
    for d in hw.devices:
        console.print(f"{d.vendor} {d.index} usable: {d.how}", highlight=False)
    for line in summary(hw):
        console.print(line, highlight=False)
    console.print(ram_line, highlight=False)


_RECOMMEND_EXAMPLES = """\b
Examples:
  hfvram recommend meta-llama/Meta-Llama-3.1-8B       this machine (--gpu auto), 4K
  hfvram recommend Qwen/Qwen3-32B --gpu RTX-4090 --context 32k -f vllm,llamacpp
  hfvram recommend --from models.txt --gpu L40S --quantize awq --json
"""


@cli.command("recommend", epilog=_RECOMMEND_EXAMPLES)
@click.argument("models", nargs=-1)
@click.option("--from", "lists", multiple=True, metavar="FILE|-",
              help="Read models from this list (one per line, as `hfvram scan` reads them; `-` for stdin).")
@estimate_options
@click.option("--json", "as_json", is_flag=True, help="Print the recommendations as JSON.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]))
@click.option("--offline", is_flag=True, help="No network: metadata cache, then the bundled snapshot.")
@refresh_option
def recommend_cmd(models, lists, as_json, units, offline, refresh, **opts):
    """For each MODEL and engine, the best setting that fits: the highest-precision weights at the requested
    context (as stored, else the engine's quantised formats in order of fidelity), or, with --quantize, the longest
    context with those weights. Each comes with the `hfvram check` command that reproduces it.

    The target is --gpu (default: auto, this machine's GPUs), --gpu-mem or --max-memory. Exit 0 when every model
    has an engine that fits, 1 when some model has none, 2 on an error.
    """
    from .batch import read_model_list
    from .errors import UsageError
    from .recommend import document, exit_code, recommend, render

    names = list(dict.fromkeys([*models, *(read_model_list(list(lists)) if lists else [])]))
    if not names:
        raise UsageError("nothing to recommend for: give MODEL(s) or --from FILE")
    if opts.get("gpu") is None and opts.get("gpu_mem") is None and opts.get("max_memory") is None:
        opts["gpu"] = "auto"
    settings = checked(opts)
    hub = None
    if refresh:
        from .sources.hub import HubSource

        hub = HubSource(max_age=0)
    rows = recommend(names, settings, offline=offline, hub=hub)
    if as_json:
        import json

        from .options import parse

        choice = parse(**settings).gpu
        gpu = None if choice is None else {"name": choice.gpu.name, "count": choice.count,
                                           "usable_bytes": choice.gpu.usable_bytes, "vendor": choice.gpu.vendor}
        click.echo(json.dumps(document(rows, settings, gpu), indent=2))
    else:
        render(rows, units)
    sys.exit(exit_code(rows))


_ENGINES_EXAMPLES = """\b
Examples:
  hfvram engines                  versions, weight formats and KV types per engine
  hfvram engines --all            and every architecture each one runs
  hfvram engines --json
"""


@cli.command("engines", epilog=_ENGINES_EXAMPLES)
@click.option("--json", "as_json", is_flag=True, help="Print the support table as JSON.")
@click.option("--all", "show_all", is_flag=True, help="List every architecture, not only the counts.")
def engines_cmd(as_json, show_all):
    """What each engine can run: architectures, weight formats and KV-cache types, and where that was read.

    hfvram answers "unsupported" (never a size) for a model an engine cannot load; this is the table it consults.
    """
    from .support import rows

    table = rows()
    if as_json:
        import json

        click.echo(json.dumps(table, indent=2))
        return
    for r in table:
        click.echo(f"{r['label']} {r['version'] or '(no list)'}" + (f"  [read from {r['read_from']}]"
                                                                   if r["read_from"] else ""))
        click.echo(f"  weights:      {', '.join(r['weight_formats'])}")
        click.echo(f"  KV cache:     {', '.join(r['kv_cache_dtypes'])}")
        archs = r["architectures"]
        if show_all:
            click.echo(f"  architectures ({len(archs)}): {', '.join(archs)}")
        else:
            click.echo(f"  architectures: {len(archs)} (`hfvram engines --all` lists them)")


_SNAPSHOT_EXAMPLES = """\b
Examples:
  hfvram snapshot                 the models answered with no network
  hfvram snapshot --json
"""


@cli.command("snapshot", epilog=_SNAPSHOT_EXAMPLES)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def snapshot_cmd(as_json):
    """List the models bundled with hfvram (answered with no network)."""
    from .sources import snapshot

    ids = snapshot.ids()
    if as_json:
        import json

        click.echo(json.dumps(ids, indent=2))
        return
    for repo_id in ids:
        click.echo(repo_id)
