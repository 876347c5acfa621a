"""The command line itself: --help is cheap, subcommands are listed, and the version is printed."""

from __future__ import annotations

import subprocess
import sys


def test_help_imports_neither_transformers_nor_torch_nor_the_hub_client():
    code = ("import sys\nfrom hfvram.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('transformers', 'torch', 'huggingface_hub', 'rich') if sys.modules.get(m) is not None]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "hfvram MODEL [options]" in out.stdout and "scan" in out.stdout and "check" in out.stdout


def test_version_and_subcommand_help(cli):
    code, out, _ = cli(["--version"])
    assert code == 0 and "hfvram" in out
    for sub in ("scan", "check", "gpus", "snapshot", "show"):
        code, out, _ = cli([sub, "--help"])
        assert code == 0 and "Usage" in out, sub


def test_snapshot_lists_bundled_models(cli):
    code, out, _ = cli(["snapshot"])
    ids = out.split()
    assert code == 0 and "meta-llama/Llama-2-7b-hf" in ids and len(ids) >= 90
