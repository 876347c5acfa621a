"""A scan with 10% of its repos behind injected faults (bench/faulty_scan.py: 429 and 503 storms, resets, dropped
connections, wrong Content-Range, whole-file answers, trickles, stalls, redirects, a bad config): every repo gets
exactly one row, each faulted repo the status its fault calls for and the others ok, and memory stays flat.

The test scans 300 repos (about 20 s on a 2-core machine; HFVRAM_SCAN_REPOS changes it); `python
bench/faulty_scan.py` scans 1,000 (README "Reliability")."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPOS = int(os.environ.get("HFVRAM_SCAN_REPOS") or 300)


def harness():
    spec = importlib.util.spec_from_file_location("faulty_scan", ROOT / "bench" / "faulty_scan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_scan_with_ten_percent_faults_accounts_for_every_repo_once(fake_hub_factory, tmp_path):
    fs = harness()
    hub = fake_hub_factory(ROOT / "fixtures")
    result = fs.run(repos=REPOS, share=0.1, jobs=32, deadline=10, workdir=tmp_path, hub=hub)
    assert fs.check(result) == []
    assert len(result.rows) == REPOS and result.exit_code == 1  # some rows failed, as they must
    assert len(result.faulted) == REPOS // 10 and set(result.faulted.values()) == set(fs.FAULTS)
    errors = {r["model"]: r["reason"] for r in result.rows if r["status"] == "error"}
    assert set(errors) == {m for m, k in result.faulted.items() if fs.FAULTS[k][1] == "error"}
    for model, kind in result.faulted.items():
        reason = errors.get(model, "")
        if kind in ("trickle-config", "stall-info"):
            assert reason.startswith("gave up after 10 s"), reason
        elif kind == "429-storm":
            assert "asks to wait 100 s" in reason, reason
        elif kind == "bad-range":
            # (the first read's length: 100 kB, or what a sharded repo's index sizes it to in a scan)
            assert re.search(r"asked for bytes 0-\d+, the server answered bytes 8-", reason), reason
        elif kind == "bad-config":
            assert "num_hidden_layers is -3" in reason, reason
    retryable = {r["model"] for r in result.rows if r.get("retryable")}
    assert retryable == {m for m, k in result.faulted.items() if k in ("429-storm", "503-storm", "trickle-config",
                                                                         "stall-info")}
    # flat memory: what the scan holds once a fifth of the rows are out is what it holds near the end; each worker
    # process warms up on its own (config classes imported as new model types come), so the bounds are per process
    assert result.rss_at(0.9) - result.rss_at(0.2) < 24 * 1024 * result.processes, result.rss_kib
    assert result.peak_kib < 160 * 1024 * result.processes
