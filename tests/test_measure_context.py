"""tools/measure_context.py where there is no GPU (the machines the tests run on): each step runs in its own process
and a step that cannot run is recorded with its error, not raised; the file it writes is the one
validation/own-h200/context.json was written as (that file's figures are checked in test_cuda_context.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_step_that_cannot_run_is_recorded_and_the_rest_go_on(tmp_path):
    out = tmp_path / "context.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "measure_context.py"), "--steps", "driver,nonesuch",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc) == {"when", "steps", "nvidia_smi"} and list(doc["steps"]) == ["driver", "nonesuch"]
    for step in doc["steps"].values():
        assert step["error"] and step["seconds"] >= 0  # no libcuda / no NVML here; an unknown step says so
    assert "unknown step nonesuch" in doc["steps"]["nonesuch"]["error"]


def test_the_committed_run_has_every_step():
    doc = json.loads((ROOT / "validation" / "own-h200" / "context.json").read_text())
    assert list(doc["steps"]) == ["driver", "torch", "generate", "eager"]
    assert not any("error" in step for step in doc["steps"].values())
    assert "H200" in doc["nvidia_smi"]
