"""Command line: thin. Parses options, calls the API, hands the result to a formatter.

`hfvram MODEL [options]` (`show`) is the main job and lives here, with the options the subcommands share; the
subcommands (`scan`, `check`, `recommend`, `explain`, `gpus`, `engines`, `snapshot`) are in hfvram/commands.py,
imported when one of them is asked for. Nothing heavy is imported at module level, so `hfvram --help` stays fast (no
transformers, no torch, no Hub client). `entry` is the console script: `main`, then a hard exit.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .errors import HfvramError

_SUBCOMMANDS_HELP = """Subcommands: scan, check, recommend, explain, gpus, engines, snapshot (run `hfvram <subcommand> --help`).

\b
Examples:
  hfvram meta-llama/Llama-2-7b-hf --gpu RTX-4090
  hfvram check Qwen/Qwen3-8B --gpu L40S -f vllm --context 32k
  hfvram scan models.txt --gpu L40S,H100 --format matrix"""


# Subcommands defined in hfvram/commands.py, which is imported only when one of them runs or a help lists them:
# building their ~180 options (`estimate_options` on scan, check and recommend) took ~5 ms of a single-model run.
LATER = ("scan", "check", "explain", "gpus", "recommend", "engines", "snapshot")


class DefaultGroup(click.Group):
    """A group whose first argument may be a model instead of a subcommand: `hfvram org/name` runs `show`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in LATER and \
                args[0] not in ("--help", "-h", "--version"):
            args = ["show", *args]
        elif not args:
            args = ["--help"]
        return super().parse_args(ctx, args)

    def get_command(self, ctx, name):
        if name in LATER:
            from . import commands  # noqa: F401 - registers them on `cli`
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        from . import commands  # noqa: F401

        return super().list_commands(ctx)


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
    finally:
        cache = sys.modules.get("hfvram.sources.cache")
        if cache is not None:
            cache.flush()  # the metadata cache entries this run is writing are whole before the command returns


def entry() -> None:
    """The `hfvram` command and `python -m hfvram`: `main`, then a hard exit. Once the answer is out and the cache
    written (`main` joins its writers), what Python's own exit would still do is free every object of the ~400
    modules a Hub run has loaded, collecting cycles first: 80-120 ms of a 0.6 s cold run on the 2-core machine
    `make bench` uses (timestamps around the exit), more than the run's own estimating. The handlers registered with
    atexit run (worker processes are reaped, new compiled methods kept), the streams are flushed, and the process
    leaves with `os._exit`, as mypy does (mypy/util.py `hard_exit`: "quite a bit faster than a normal exit() since
    objects are not freed"). `main` itself returns normally, for callers in the same process."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import atexit

    try:
        atexit._run_exitfuncs()
    except Exception:  # noqa: BLE001 - a failing handler must not change the answer's exit code
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing left to say
            pass
    os._exit(code)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_SUBCOMMANDS_HELP)
@click.version_option(__version__, prog_name="hfvram")
def cli():
    """How much GPU memory a Hugging Face model needs, and whether it fits.

    \b
    hfvram MODEL [options]     MODEL is org/name, org/name@revision, org/name:Q4_K_M (a GGUF quant),
                               a local folder, a .gguf file or a config.json
    """


def estimate_options(f=None, *, several_gpus: bool = False):
    """Options shared by `show`, `scan` and `check` (one definition, so they cannot drift). `several_gpus`: `--gpu`
    may be repeated and take a comma list (scan); elsewhere it names one GPU."""
    if f is None:
        return lambda g: estimate_options(g, several_gpus=several_gpus)
    gpu_help = ("GPU(s) to fit on, from `hfvram gpus`: repeat it or give a comma list (L40S,H100,RTX-4090); one row "
                "per GPU; auto = this machine's GPUs." if several_gpus else
                "GPU to fit on, from `hfvram gpus` (e.g. RTX-4090, L40S:2, 8xH100), or auto: this machine's GPUs "
                "(`hfvram gpus --local`).")
    options = [
        click.option("--context", "context", metavar="N", help="Tokens per sequence held in the KV cache "
                     "(default 4096; 32k and 128K accepted)."),
        click.option("--batch", default=1, show_default=True, type=int, help="Concurrent sequences."),
        click.option("--kv-dtype", default="auto", show_default=True, type=click.Choice(KV_CHOICES),
                     help="KV cache element type; auto = the model's dtype. q8_0/q4_0: llama.cpp cache types; "
                          "q8/q6/q4: ExLlamaV2 quantised caches."),
        click.option("--framework", "-f", "frameworks", multiple=True, metavar="NAME[,NAME]",
                     help="transformers, vllm, trtllm, llamacpp, exllamav2 (default: all five); ollama, lmstudio: "
                          "llama.cpp with their defaults."),
        click.option("--gpu", default=None, metavar="NAME[:COUNT]|auto", multiple=several_gpus, help=gpu_help),
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
        click.option("--trtllm-backend", type=click.Choice(["pytorch", "tensorrt"]), default=None,
                     help="TensorRT-LLM: the PyTorch backend (LLM API, default since 1.0) or a trtllm-build engine."),
        click.option("--trtllm-version", default=None, metavar="X.Y",
                     help="TensorRT-LLM release whose defaults apply (default 1.2; tensorrt before 1.0)."),
        click.option("--max-batch-size", type=int, default=None,
                     help="TensorRT-LLM max_batch_size (engine build / LLM API; default by release)."),
        click.option("--max-input-len", type=int, default=None,
                     help="TensorRT-LLM engine build max_input_len; ExLlamaV2 max_input_len (chunk)."),
        click.option("--max-seq-len", type=int, default=None,
                     help="TensorRT-LLM max_seq_len (default: the context)."),
        click.option("--n-ubatch", type=int, default=None, help="llama.cpp physical batch (default 512)."),
        click.option("--flash-attn/--no-flash-attn", default=None, help="llama.cpp flash attention (default on)."),
        click.option("--gpu-layers", type=int, default=None,
                     help="llama.cpp -ngl: layers on the GPU, the output layer counted first (default: all)."),
        click.option("--n-cpu-moe", type=int, default=None, metavar="N",
                     help="llama.cpp: keep the routed experts of the first N layers in host RAM."),
        click.option("--cpu-moe", is_flag=True, default=None,
                     help="llama.cpp: every layer's routed experts in host RAM (-ot exps=CPU)."),
        click.option("--cache-type-k", default=None, type=click.Choice(LLAMACPP_CACHE_TYPES),
                     help="llama.cpp K cache type (default: from --kv-dtype, else f16)."),
        click.option("--cache-type-v", default=None, type=click.Choice(LLAMACPP_CACHE_TYPES),
                     help="llama.cpp V cache type (a quantized one needs flash attention)."),
        click.option("--no-kv-offload", is_flag=True, default=None,
                     help="llama.cpp: KV cache (and attention) in host RAM."),
        click.option("--parallel", "n_parallel", type=int, default=None, metavar="N",
                     help="llama.cpp -np: sequence slots (default: --batch; LM Studio 4). --context stays per "
                          "sequence."),
        click.option("--kv-unified/--no-kv-unified", default=None,
                     help="llama.cpp: one KV stream shared by the slots (default off; LM Studio on)."),
        click.option("--llamacpp-version", default=None, type=click.Choice(["current", "4227c9b", "b1513"]),
                     help="llama-quantize rules for --quantize gguf:TYPE: current (0c1e570), 4227c9b (Aug 2025) or "
                          "b1513 (late 2023)."),
        click.option("--ram", default=None, metavar="SIZE",
                     help="Host RAM the deployment may use (64GiB): a verdict on what llama.cpp keeps there "
                          "(default with --gpu auto: this machine's available memory)."),
        click.option("--transformers-version", default=None, metavar="X.Y",
                     help="Transformers release whose generate() policy applies (default 5.24, the newest read)."),
        click.option("--dtype", default=None, type=click.Choice(["auto", "float16", "bfloat16", "float32"]),
                     help="Model dtype: vLLM --dtype; transformers torch_dtype (default: auto since 5.0, float32 "
                          "before)."),
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
# options.LLAMACPP_CACHE_TYPES (repeated so that --help imports nothing)
LLAMACPP_CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]


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
    if out.pop("cpu_moe", None):
        if out.get("n_cpu_moe") is not None:
            from .errors import UsageError

            raise UsageError("--cpu-moe and --n-cpu-moe both say where the experts go: give one")
        out["n_cpu_moe"] = 1 << 20  # options.CPU_MOE_ALL
    return out


def checked(opts: dict) -> dict:
    """The analyze keywords, after hfvram.options.parse has refused any bad one (one line, exit 2)."""
    from .options import parse

    kwargs = analysis_kwargs(opts)
    if isinstance(kwargs.get("gpu"), str) and "," in kwargs["gpu"]:
        from .errors import UsageError

        raise UsageError(f"unknown GPU {kwargs['gpu']!r}: one GPU here (`hfvram scan` takes several)")
    parse(**kwargs)
    if str(kwargs.get("gpu", "")).strip().lower() == "auto":
        from .hardware import summary

        for line in summary():
            click.echo(f"hfvram: {line}", err=True)
    return kwargs


_SHOW_EXAMPLES = """\b
Examples:
  hfvram meta-llama/Llama-2-7b-hf                      facts + every engine at 4K tokens
  hfvram Qwen/Qwen3-32B --gpu L40S:2 -f vllm --context 32k --batch 8
  hfvram bartowski/Meta-Llama-3.1-8B-Instruct-GGUF --gpu RTX-4090 --context 32k
"""


refresh_option = click.option(
    "--refresh", is_flag=True,
    help="Ask the Hub which commit a branch or tag names now, even if it answered less than "
         "HFVRAM_REVISION_MAX_AGE seconds ago (default 600; `check` always asks).")


@cli.command("show", epilog=_SHOW_EXAMPLES)
@click.argument("model")
@estimate_options
@click.option("--revision", default=None, help="Branch, tag or commit (same as MODEL@revision).")
@click.option("--offline", is_flag=True, help="Make no network request: metadata cache, then bundled snapshot.")
@refresh_option
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json", "html"]),
              help="table for a terminal; json: the JSON document (schema hfvram/2); html: a self-contained page "
                   "with charts (use -o report.html).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--output", "-o", default=None, metavar="FILE", help="Write the report here instead of stdout.")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]),
              help="Binary (2^30) or decimal (10^9) sizes in tables.")
@click.option("--file", "gguf_file", default=None, metavar="NAME.gguf",
              help="GGUF repos: the file to size (or the first of its splits); same as MODEL:QUANT.")
@click.option("--mmproj", default=None, is_flag=False, flag_value="auto", metavar="[FILE]",
              help="GGUF repos: add the vision projector (mmproj*.gguf; the f16 one, or FILE).")
def show(model, revision, offline, refresh, fmt, as_json, output, units, gguf_file, mmproj, **opts):
    """Analyse one model (the default command: `hfvram MODEL` is `hfvram show MODEL`).

    A GGUF repo with several quants (or an EXL2 repo with one bit-rate per branch) and none chosen is listed: one
    row per file or branch with its size, and per engine its memory, fit and largest context.
    """
    from .analysis import analyze, list_quants
    from .errors import UsageError

    fmt = "json" if as_json else fmt
    kwargs = checked(opts)
    if refresh:
        from .sources.hub import HubSource

        kwargs["hub"] = HubSource(max_age=0)
    try:
        # html: the chart's contexts are projected below, from this analysis
        result = analyze(model, revision=revision, offline=offline, file=gguf_file, mmproj=mmproj, **kwargs,
                         **({"projections": ()} if fmt == "html" else {}))
    except UsageError as exc:
        # a repo of several models (sources.gguf.ChooseQuant, sources.exl.ChooseVariant; told by kind, so that a
        # safetensors run imports neither module)
        if exc.kind not in ("choose-quant", "choose-variant") or mmproj:
            raise
        if fmt == "html":
            raise UsageError(f"{model} holds several models: choose one (MODEL:QUANT, --file or @branch) for an "
                             f"HTML report") from None
        listing = list_quants(model, revision=revision, offline=offline, repo=getattr(exc, "repo", None),
                              branches=getattr(exc, "branches", None), **kwargs)
        for note in listing.notes:
            click.echo(f"hfvram: {note}", err=True)
        if fmt == "json":
            import json

            click.echo(json.dumps(listing.to_dict(), indent=2))
        else:
            from .report.table import render_listing

            render_listing(listing, units=units)
        return
    for note in result.facts.repo.notes:
        click.echo(f"hfvram: {note}", err=True)
    from .report.output import Output

    out = Output(output)  # opened once there is a report: a failed run clobbers nothing
    target, close = out.stream, bool(output)
    try:
        if fmt == "json":
            import json

            target.write(json.dumps(result.to_dict(), indent=2) + "\n")
        elif fmt == "html":
            from .report.html import add_chart_projections, render_model

            add_chart_projections(result)
            target.write(render_model(result.to_dict(), units=units, skip_notes=result.facts.repo.notes))
        else:
            from .report.table import render

            render(result, units=units, file=target if close else None)
    finally:
        out.commit()
    if output:
        click.echo(f"hfvram: wrote {output}", err=True)
