"""`python -m hfvram.logs LOGFILE`: the memory figures an engine log printed, as JSON; with `--cases`, validation case
rows (JSON lines) to review and append to validation/cases-*.jsonl: a new measurement is a pasted log."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import HfvramError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hfvram.logs", description=__doc__.split("\n\n")[0])
    ap.add_argument("logfile", help="the log (- for stdin)")
    ap.add_argument("--engine", choices=["vllm", "llamacpp", "trtllm", "sglang"], default=None)
    ap.add_argument("--cases", action="store_true", help="print validation case rows, one per figure")
    ap.add_argument("--source", default="", help="--cases: where the log was published (URL, issue)")
    ap.add_argument("--model", default=None, help="--cases: the Hub repo that ran (default: the log's)")
    ap.add_argument("--arch-config", default=None, help="--cases: the bundled model with its architecture")
    ap.add_argument("--id-prefix", default=None, help="--cases: case id prefix (default: engine-model)")
    args = ap.parse_args(argv)
    from . import cases_from_log, parse
    from ..explain import read_log

    try:
        text = read_log(args.logfile)
        if args.cases:
            for row in cases_from_log(text, engine=args.engine, source=args.source, model=args.model,
                                      arch_config=args.arch_config, id_prefix=args.id_prefix):
                print(json.dumps(row))
        else:
            print(json.dumps(parse(text, args.engine).to_dict(), indent=2))
    except HfvramError as exc:
        print(f"hfvram.logs: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
