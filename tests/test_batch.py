"""`hfvram scan` and `hfvram check` against the fake Hub: exit codes, every output format parsed back, resume, stdin,
Hub listings, bad repos in the middle of a batch, and a 429 storm."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from hfvram.fakehub import write_fixture

ROOT = Path(__file__).resolve().parent.parent
GOOD = ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen3-8B", "openai/gpt-oss-20b"]


@pytest.fixture
def hub(fake_hub_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    extra = tmp_path / "extra"
    write_fixture(extra / "acme--gated", "acme/gated", gated="manual",
                  files={"config.json": (ROOT / "fixtures/meta-llama--Llama-2-7b-hf/config.json").read_text()})
    # meta-llama and google repos are gated on the Hub (and in the fixtures): the token is approved for them only
    h = fake_hub_factory([ROOT / "fixtures", extra], tokens={"hf_good": ["meta-llama/*", "google/*"]})
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    return h


def model_file(tmp_path, lines) -> str:
    p = tmp_path / "models.txt"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_scan_all_ok_exit_0_and_csv_parses(hub, tmp_path, cli):
    f = model_file(tmp_path, ["# models to host", *GOOD, "", GOOD[0]])  # duplicate done once
    code, out, err = cli(["scan", f, "-f", "vllm,llamacpp", "--format", "csv"])
    assert code == 0, err + out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3 * 2
    assert {r["model"] for r in rows} == set(GOOD) and {r["status"] for r in rows} == {"ok"}
    assert all(int(r["per_gpu_bytes"]) > 0 for r in rows)
    assert "3 models, 3 ok, 0 do not fit or cannot run, 0 failed" in err


def test_scan_errors_in_the_middle_exit_1(hub, tmp_path, cli):
    f = model_file(tmp_path, [GOOD[0], "acme/gated", "org/does-not-exist", GOOD[1]])
    code, out, err = cli(["scan", f, "-f", "vllm", "--format", "jsonl", "--jobs", "2"])
    assert code == 1
    rows = [json.loads(line) for line in out.splitlines()]
    by_model = {r["model"]: r for r in rows}
    assert by_model["acme/gated"]["status"] == "error" and "gated" in by_model["acme/gated"]["reason"]
    assert by_model["org/does-not-exist"]["status"] == "error" and "not found" in by_model["org/does-not-exist"]["reason"]
    assert by_model[GOOD[0]]["status"] == by_model[GOOD[1]]["status"] == "ok"
    assert "2 failed" in err


def test_scan_does_not_fit_exit_1_markdown_and_json(hub, tmp_path, cli):
    f = model_file(tmp_path, ["meta-llama/Llama-2-70b-hf", GOOD[0]])
    code, out, _ = cli(["scan", f, "-f", "vllm", "--gpu", "RTX-4090", "--format", "markdown"])
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("| meta-llama")]
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in lines}
    assert cells["meta-llama/Llama-2-70b-hf"][3] == "does-not-fit" and cells[GOOD[0]][3] == "ok"
    assert cells[GOOD[0]][2] == "vLLM 0.33"  # the engine release the verdict assumes
    code, out, _ = cli(["scan", f, "-f", "vllm", "--gpu", "RTX-4090", "--format", "json"])
    data = json.loads(out)
    assert {r["model"]: r["fits"] for r in data} == {"meta-llama/Llama-2-70b-hf": False, GOOD[0]: True}


def test_scan_table_output_and_usage_error(hub, tmp_path, cli):
    code, out, _ = cli(["scan", model_file(tmp_path, [GOOD[0]]), "-f", "llamacpp"])
    assert code == 0 and "meta-llama/Llama-2-7b-hf" in out and "llamacpp" in out
    code, out, err = cli(["scan"])
    assert code == 2 and "nothing to scan" in err


def test_scan_stdin(hub, cli):
    code, out, _ = cli(["scan", "-", "-f", "vllm", "--format", "jsonl"], stdin="\n".join(GOOD[:2]) + "\n")
    assert code == 0 and {json.loads(line)["model"] for line in out.splitlines()} == set(GOOD[:2])


def test_scan_hub_listing(hub, cli):
    code, out, _ = cli(["scan", "--author", "Qwen", "--search", "Qwen3", "--sort", "downloads", "--limit", "3",
                        "-f", "vllm", "--format", "jsonl", "--offline"])
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and all(r["model"].startswith("Qwen/Qwen3") for r in rows)


def test_scan_resume_skips_rows_answered_with_the_same_settings(hub, tmp_path, cli):
    f = model_file(tmp_path, GOOD)
    out_file = tmp_path / "rows.jsonl"
    code, _, _ = cli(["scan", f, "-f", "vllm", "--format", "jsonl", "-o", str(out_file)])
    done = out_file.read_text().splitlines()
    # an interrupted earlier run: one complete row, one cut short, and one written by an hfvram with no settings key
    unkeyed = {**json.loads(done[2]), "settings_key": None}
    out_file.write_text(done[0] + "\n" + json.dumps(unkeyed) + "\n" + done[1][:40])
    hub.reset()
    code, _, err = cli(["scan", f, "-f", "vllm", "--format", "jsonl", "-o", str(out_file), "--resume",
                        str(out_file)])
    assert code == 0 and "1 rows reused, 1 redone because their settings changed, 0 error rows retried" in err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["model"] for r in rows] == GOOD  # input order, each once
    assert rows[0] == json.loads(done[0])
    assert not any(GOOD[0] in r.path for r in hub.requests())  # not fetched again


def test_scan_honours_retry_after_then_succeeds(hub, tmp_path, cli):
    hub.rate_limit_next(3, retry_after=0.2)
    start = time.monotonic()
    code, out, _ = cli(["scan", model_file(tmp_path, [GOOD[0]]), "-f", "vllm", "--format", "jsonl", "--jobs", "1"])
    assert code == 0 and json.loads(out.splitlines()[0])["status"] == "ok"
    assert time.monotonic() - start >= 0.6  # three Retry-After waits


def test_scan_survives_a_429_storm(hub, tmp_path, cli):
    hub.rate_limit_next(10_000, retry_after=0)
    code, out, err = cli(["scan", model_file(tmp_path, GOOD), "-f", "vllm", "--format", "jsonl"])
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(rows) == 3
    assert all(r["status"] == "error" and "rate limited" in r["reason"] for r in rows)
    hub.clear_faults()


# -- check --------------------------------------------------------------------------------------------------------

def test_check_pass_fail_error_and_headroom(hub, cli, tmp_path, monkeypatch):
    code, out, _ = cli(["check", GOOD[0], "--gpu", "RTX-4090", "-f", "vllm"])
    assert code == 0 and out.startswith("PASS vllm")
    code, out, _ = cli(["check", GOOD[0], "--gpu", "RTX-4090", "-f", "vllm", "--headroom", "40%"])
    assert code == 1 and out.startswith("FAIL vllm")
    code, out, _ = cli(["check", GOOD[0], "org/does-not-exist", "--gpu", "RTX-4090", "-f", "vllm"])
    assert code == 2 and "ERROR org/does-not-exist" in out
    code, _, err = cli(["check", GOOD[0], "-f", "vllm"])
    assert code == 2 and "needs a target" in err
    code, out, _ = cli(["check", GOOD[0], "-f", "llamacpp", "--max-memory", "10GiB"])
    assert code == 1


def test_check_json_markdown_and_step_summary(hub, cli, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = cli(["check", GOOD[0], "--gpu", "L40S:2", "-f", "vllm,trtllm", "--format", "json"])
    rows = json.loads(out)
    assert code == 0 and [r["framework"] for r in rows] == ["vllm", "trtllm"] and rows[0]["gpus"] == 2
    assert "| meta-llama/Llama-2-7b-hf | vllm | vLLM 0.33 | ok |" in summary.read_text()
    code, out, _ = cli(["check", GOOD[0], "--gpu", "L40S", "-f", "vllm", "--format", "markdown"])
    assert code == 0 and out.splitlines()[0].startswith("| model |")


def test_readme_pre_deploy_shell_example_runs(hub, tmp_path):
    """The README's pre-deploy script, end to end against the fake Hub."""
    import os
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    script = readme.split("<!-- pre-deploy-example -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HF_ENDPOINT": hub.url, "PATH": f"{bindir}:{os.environ['PATH']}",
           "HFVRAM_CACHE": str(tmp_path / "c"), "HF_HOME": str(tmp_path / "hf")}
    env.pop("HFVRAM_ALLOW_TORCH", None)
    ok = subprocess.run(["bash", "-c", script, "deploy", "meta-llama/Llama-2-7b-hf"], env=env, capture_output=True,
                        text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "deploying meta-llama/Llama-2-7b-hf" in ok.stdout
    bad = subprocess.run(["bash", "-c", script, "deploy", "meta-llama/Llama-2-70b-hf"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1 and "not deploying" in bad.stdout


def test_readme_github_actions_job_runs(hub, tmp_path):
    """The README's GitHub Actions job: its `run:` step, with the runner's GITHUB_STEP_SUMMARY."""
    import os
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    job = readme.split("<!-- github-actions-example -->", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    step = job.split("run: |", 1)[1]
    script = "\n".join(line[10:] if line.startswith(" " * 10) else line.strip() for line in step.splitlines())
    bindir = Path(sys.executable).parent
    summary = tmp_path / "summary.md"
    env = {**os.environ, "HF_ENDPOINT": hub.url, "PATH": f"{bindir}:{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(summary), "HFVRAM_CACHE": str(tmp_path / "c"), "HF_HOME": str(tmp_path / "hf")}
    env.pop("HFVRAM_ALLOW_TORCH", None)
    proc = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "| ok |" in summary.read_text()


def test_readme_github_actions_job_installs_from_the_repository():
    """hfvram is not on PyPI: the job installs the checked-out repository, the way it really can."""
    readme = (ROOT / "README.md").read_text()
    job = readme.split("<!-- github-actions-example -->", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    installs = [line.strip() for line in job.splitlines() if "pip install" in line]
    assert installs == ["- run: pip install ./hfvram"]
    assert "path: hfvram" in job and "actions/checkout" in job


def test_readme_lists_every_api_keyword():
    """The README's list of analyze() keywords is the set the API accepts (hfvram.options), no more, no less."""
    import re

    from hfvram import options

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- api-keywords -->", 1)[1].split("```python", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", block))
    assert listed == set(options.OPTION_NAMES) | set(options.KNOBS)
    example = readme.split("<!-- api-keywords -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert 'framework="vllm", gpu="L40S:2", context="32k", headroom="10%"' in example
