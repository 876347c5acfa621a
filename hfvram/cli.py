"""Command line: thin. Parses options, calls the API, hands the result to a formatter.

`hfvram MODEL [options]` is the main job; `hfvram gpus|scan|check|snapshot` are subcommands. Nothing heavy is
imported at module level, so `hfvram --help` stays fast (no transformers, no torch, no Hub client).
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .errors import HfvramError

_SUBCOMMANDS_HELP = "Subcommands: gpus, scan, check, snapshot (run `hfvram <subcommand> --help`)."


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
            raise
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


def _context(value):
    if value is None:
        return None
    from .units import parse_tokens

    return parse_tokens(value)


@cli.command("show")
@click.argument("model")
@click.option("--context", "context", metavar="N", help="Tokens per sequence held in the KV cache "
              "(default 4096; 32k and 128K accepted).")
@click.option("--batch", default=1, show_default=True, type=int, help="Concurrent sequences.")
@click.option("--kv-dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "fp32", "fp16", "bf16", "fp8", "int8"]),
              help="KV cache element type; auto = the model's dtype.")
@click.option("--revision", default=None, help="Branch, tag or commit (same as MODEL@revision).")
@click.option("--offline", is_flag=True, help="Make no network request: metadata cache, then bundled snapshot.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema hfvram/1).")
@click.option("--units", default="GiB", show_default=True, type=click.Choice(["GiB", "GB"]),
              help="Binary (2^30) or decimal (10^9) sizes in tables.")
def show(model, context, batch, kv_dtype, revision, offline, as_json, units):
    """Analyse one model (the default command: `hfvram MODEL` is `hfvram show MODEL`)."""
    from .analysis import analyze

    result = analyze(model, revision=revision, context=_context(context), batch=batch, kv_dtype=kv_dtype,
                     offline=offline)
    for note in result.facts.repo.notes:
        click.echo(f"hfvram: {note}", err=True)
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        from .report.table import render

        render(result, units=units)


@cli.command("snapshot")
def snapshot_cmd():
    """List the models bundled with hfvram (answered with no network)."""
    from .sources import snapshot

    for repo_id in snapshot.ids():
        click.echo(repo_id)
