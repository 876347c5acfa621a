"""Command line: thin. Parses options, calls the API, hands the result to a formatter.

`hfvram MODEL [options]` is the main job; `hfvram gpus|scan|check|snapshot` are subcommands. Nothing heavy is
imported at module level, so `hfvram --help` stays fast (no transformers, no torch, no Hub client).
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .batch import DEFAULT_JOBS
from .errors import HfvramError

_SUBCOMMANDS_HELP = "Subcommands: scan, check, gpus, engines, snapshot (run `hfvram <subcommand> --help`)."


class DefaultGroup(click.Group):
    """A group whose first argument may be a model instead of a subcommand: `hfvram org/name` runs `show`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["show", *args]
        elif not args:
            args = ["--help"]
        return super().parse_args(ctx, args)


def _block_torch() -> None:
    # The CLI never needs torch, but transformers' config modules import it eagerly when it is installed (about
    # 1.7 s of the 2.5 s a cold import takes, measured here). A None entry in sys.modules makes Python, and
    # therefore transformers' availability check, treat it as absent. Library users (`import hfvram`) keep torch.
    if "torch" not in sys.modules and not os.environ.get("HFVRAM_ALLOW_TORCH"):
        sys.modules["torch"] = None  # type: ignore[assignment]


def _fail(exc: HfvramError) -> None:
    if os.environ.get("HFVRAM_DEBUG"):
        import traceback

        traceback.print_exc()
    click.echo(f"hfvram: error: {exc.message}", err=True)
    sys.exit(exc.exit_code)


def main(argv=None) -> None:
    _block_torch()
    try:
        cli.main(args=argv, prog_name="hfvram", standalone_mode=False)
    except HfvramError as exc:
        _fail(exc)
    except click.exceptions.Abort:
        click.echo("hfvram: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"hfvram: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("hfvram: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback, unless asked for
        if os.environ.get("HFVRAM_DEBUG"):
            import traceback

            traceback.print_exc()  # asked for; the exit code stays our error's
        first = " ".join(str(exc).split())[:300]
        click.echo(f"hfvram: internal error: {type(exc).__name__}: {first} (set HFVRAM_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(2)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_SUBCOMMANDS_HELP)
@click.version_option(__version__, prog_name="hfvram")
def cli():
    """How much GPU memory a Hugging Face model needs, and whether it fits.

    \b
    hfvram MODEL [options]     MODEL is org/name, org/name@revision, a local folder or a config.json
    """


def estimate_options(f):
    """Options shared by `show`, `scan` and `check` (one definition, so they cannot drift)."""
    options = [
        click.option("--context", "context", metavar="N", help="Tokens per sequence held in the KV cache "
                     "(default 4096; 32k and 128K accepted)."),
        click.option("--batch", default=1, show_default=True, type=int, help="Concurrent sequences."),
        click.option("--kv-dtype", default="auto", show_default=True, type=click.Choice(KV_CHOICES),
                     help="KV cache element type; auto = the model's dtype. q8_0/q4_0: llama.cpp cache types; "
                          "q8/q6/q4: ExLlamaV2 quantised caches."),
        click.option("--framework", "-f", "frameworks", multiple=True, metavar="NAME[,NAME]",
                     help="transformers, vllm, trtllm, llamacpp, exllamav2 (default: all)."),
        click.option("--gpu", default=None, metavar="NAME[:COUNT]",
                     help="GPU to fit on, from `hfvram gpus` (e.g. RTX-4090, L40S:2, 8xH100)."),
        click.option("--gpu-mem", default=None, metavar="SIZE", help="Or a GPU known by its memory (24GiB, 80GB)."),
        click.option("--headroom", default=None, metavar="PCT",
                     help="Memory to keep free on each GPU (10% or 0.1): fit, largest context and advice leave it."),
        click.option("--max-memory", default=None, metavar="SIZE",
                     help="Per-GPU memory the deployment may use (40GiB); with --gpu the smaller of the two."),
        click.option("--tp", type=int, default=None, help="Tensor-parallel degree (default: the --gpu count)."),
        click.option("--pp", type=int, default=None, help="Pipeline-parallel degree."),
        click.option("--quantize", default=None, metavar="FORMAT",
                     help="Project the weights: int8, int4, awq, gptq, nf4, fp8, gguf:TYPE (e.g. gguf:Q4_K_M), "
                          "exl2:BPW (e.g. exl2:4.65)."),
        click.option("--lora", default=None, metavar="ADAPTER|rank=R[,targets=a+b][,count=N]",
                     help="LoRA adapter(s): a PEFT adapter repo (exact size), or a rank spec."),
        click.option("--draft", default=None, metavar="MODEL", help="Speculative decoding: the draft model."),
        click.option("--num-speculative-tokens", type=int, default=None,
                     help="Tokens the draft proposes per step (default per engine)."),
        click.option("--kv-paging", type=click.Choice(["contiguous", "paged", "aggressive"]), default=None,
                     help="contiguous: full context in every layer; paged: engine pages (vLLM 16, TRT-LLM 32 "
                          "tokens) with its sliding-window policy; aggressive: paged, windows held exactly."),
        click.option("--gpu-memory-utilization", type=float, default=None, help="vLLM budget share (default 0.92)."),
        click.option("--max-num-batched-tokens", type=int, default=None, help="vLLM (default by GPU class)."),
        click.option("--max-num-seqs", type=int, default=None, help="vLLM (default by GPU class)."),
        click.option("--enforce-eager", is_flag=True, default=None, help="vLLM: no CUDA graphs."),
        click.option("--vllm-version", default=None, metavar="X.Y",
                     help="vLLM release whose policy and defaults apply (default 0.33)."),
        click.option("--free-gpu-memory-fraction", type=float, default=None,
                     help="TensorRT-LLM KV share of free memory (default 0.9)."),
        click.option("--max-num-tokens", type=int, default=None, help="TensorRT-LLM (default 8192)."),
        click.option("--n-ubatch", type=int, default=None, help="llama.cpp physical batch (default 512)."),
        click.option("--flash-attn/--no-flash-attn", default=None, help="llama.cpp flash attention (default on)."),
        click.option("--gpu-layers", type=int, default=None, help="llama.cpp layers offloaded (default: all)."),
        click.option("--attn-implementation", type=click.Choice(["sdpa", "eager", "flash_attention_2"]),
                     default="sdpa", show_default=True, help="transformers attention."),
        click.option("--cache-implementation", type=click.Choice(["dynamic", "static"]), default="dynamic",
                     show_default=True, help="transformers KV cache."),
        click.option("--prompt-tokens", type=int, default=None,
                     help="transformers: prompt length of the prefill (default: the whole context)."),
        click.option("--deadline", default=None, metavar="SECONDS",
                     help="Give up on a model after this long on the Hub (default 30; in a scan, per model)."),
        click.option("--max-wait", default=None, metavar="SECONDS",
                     help="Most time to spend waiting before retries: rate limits (429 Retry-After) and backoff "
                          "(default 20; 0 never waits)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


KV_CHOICES = ["auto", "fp32", "fp16", "bf16", "fp8", "int8", "q8_0", "q4_0", "q8", "q6", "q4"]  # options.KV_CHOICES


def analysis_kwargs(opts: dict) -> dict:
    """CLI option values -> hfvram.analyze keywords (checked by hfvram.options.parse before any work)."""
    out = {k: v for k, v in opts.items() if v is not None}
    frameworks = out.pop("frameworks", ())
    if frameworks:
        out["frameworks"] = list(frameworks)
    if out.get("attn_implementation") == "sdpa":
        out.pop("attn_implementation")
    if out.get("cache_implementation") == "dynamic":
        out.pop("cache_implementation")
    if out.get("batch") == 1:
        out.pop("batch")
    if out.get("kv_dtype") == "auto":
        out.pop("kv_dtype")
    return out


def checked(opts: dict) -> dict:
    """The analyze keywords, after hfvram.options.parse has refused any bad one (one line, exit 2)."""
    from .options import parse

    kwargs = analysis_kwargs(opts)
    parse(**kwargs)
    return kwargs


@cli.command("show")
@click.argument("model")
@estimate_options
@click.option("--revision", default=None, help="Branch, tag or commit (same as MODEL@revision).")
@click.option("--offline", is_flag=True, help="Make no network request: metadata cache, then bundled snapshot.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema hfvram/2).")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]),
              help="Binary (2^30) or decimal (10^9) sizes in tables.")
def show(model, revision, offline, as_json, units, **opts):
    """Analyse one model (the default command: `hfvram MODEL` is `hfvram show MODEL`)."""
    from .analysis import analyze

    result = analyze(model, revision=revision, offline=offline, **checked(opts))
    for note in result.facts.repo.notes:
        click.echo(f"hfvram: {note}", err=True)
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        from .report.table import render

        render(result, units=units)


def _writer_target(output: str | None, append: bool):
    if not output:
        return sys.stdout, False
    try:
        fh = open(output, "a" if append else "w", encoding="utf-8")
        if append and fh.tell() > 0:
            with open(output, "rb") as existing:  # an interrupted run may have cut its last row short
                existing.seek(-1, 2)
                if existing.read(1) != b"\n":
                    fh.write("\n")
        return fh, True
    except OSError as exc:
        from .errors import UsageError

        raise UsageError(f"cannot write {output}: {exc.strerror}") from None


@cli.command("scan")
@click.argument("inputs", nargs=-1, metavar="[FILE|-]...")
@click.option("--search", default=None, help="Scan a Hub listing: models matching this text.")
@click.option("--author", default=None, help="Scan a Hub listing: models of this user or organisation.")
@click.option("--sort", default=None, type=click.Choice(["downloads", "likes", "trending_score", "created_at",
                                                           "last_modified"]), help="Order of the Hub listing.")
@click.option("--limit", type=int, default=None, help="At most this many models from the listing.")
@estimate_options
@click.option("--jobs", "-j", type=int, default=DEFAULT_JOBS, show_default=True,
              help="Models analysed concurrently.")
@click.option("--format", "fmt", default="table", show_default=True,
              type=click.Choice(["table", "csv", "jsonl", "markdown", "json"]))
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--output", "-o", default=None, metavar="FILE", help="Write rows here instead of stdout.")
@click.option("--resume", default=None, metavar="FILE",
              help="Skip models already answered (ok / does-not-fit) in this earlier JSONL or CSV output.")
@click.option("--offline", is_flag=True, help="No network: metadata cache, then the bundled snapshot.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]))
def scan_cmd(inputs, search, author, sort, limit, jobs, fmt, as_json, output, resume, offline, quiet, units, **opts):
    """Analyse many models: files (one model per line, `-` for stdin) and/or a Hub listing.

    One row per model and framework with status ok, does-not-fit (with --gpu) or error. Exit 0 when every row is
    ok, 1 when some failed or do not fit, 2 on a usage error. csv, jsonl and markdown rows are written as they
    finish, so an interrupted scan keeps what it had; --resume picks up from such a file.
    """
    from .batch import read_model_list, scan
    from .errors import UsageError
    from .report.rows import Writer, read_done
    from .sources.hub import HubSource

    if not inputs and not (search or author):
        raise UsageError("nothing to scan: give model list file(s), `-` for stdin, or --search/--author")
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    settings = checked(opts)
    fmt = "json" if as_json else fmt
    hub = HubSource()
    models = read_model_list(list(inputs)) if inputs else []
    if search or author:
        listed = hub.list_models(search=search, author=author, sort=sort or "downloads", limit=limit)
        models += [m for m in listed if m not in models]
    done = read_done(resume) if resume else set()
    append = bool(resume and output and resume == output)
    target, close = _writer_target(output, append)
    writer = Writer(fmt, target, units, append=append)
    progress = not quiet and sys.stderr.isatty()
    try:
        summary = scan(models, settings, writer, jobs=jobs, hub=hub, offline=offline, done=done,
                       progress=progress)
    finally:
        if close:
            target.close()
    if not quiet:
        click.echo(summary.line(), err=True)
    sys.exit(summary.exit_code)


@cli.command("check")
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

    Needs --gpu (or --gpu-mem) or --max-memory. A verdict line per model and framework; an engine that cannot run
    the model fails; so does a verdict whose weights were guessed from the config, unless --allow-estimated. With
    GITHUB_STEP_SUMMARY set, a Markdown table is appended to it.
    """
    from .check import run_check

    sys.exit(run_check(list(models), checked(opts), fmt="json" if as_json else fmt, offline=offline,
                       allow_estimated=allow_estimated, units=units))


@cli.command("gpus")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]))
def gpus_cmd(as_json, units):
    """List the GPU catalog: marketed and usable memory, FP8 support."""
    from .gpus import catalog
    from .units import fmt_bytes

    rows = catalog()
    if as_json:
        import json

        click.echo(json.dumps([{"name": g.name, "class": g.klass, "memory_bytes": g.memory_bytes,
                                "usable_bytes": g.usable_bytes, "usable_derived": g.usable_derived, "fp8": g.fp8,
                                "compute_capability": g.compute_capability} for g in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="GPU catalog (usable = what CUDA reports; * = derived, no printed total found)")
    for col in ("GPU", "class", "memory", "usable", "FP8", "SM"):
        table.add_column(col, justify="right" if col in ("memory", "usable") else "left")
    for g in rows:
        table.add_row(g.name, g.klass, fmt_bytes(g.memory_bytes, units), fmt_bytes(g.usable_bytes, units) +
                      ("*" if g.usable_derived else ""), "yes" if g.fp8 else "no", g.compute_capability or "-")
    Console().print(table)


@cli.command("engines")
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


@cli.command("snapshot")
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
