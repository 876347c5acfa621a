"""`hfvram scan` studies against the fake Hub: several GPUs (rows in input order, one fetch per model), the model x
GPU matrix (terminal and Markdown, parsed back), csv human columns, --resume exactness (same settings reused,
changed settings redone, errors retried, each row exactly once, interrupted files), retryable error rows, and
option errors found before the first request."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from hfvram.fakehub import write_fixture

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen3-8B", "mistralai/Mistral-7B-v0.1"]
# as the catalog names them (hfvram/data/gpus.json): H100 is an alias of H100-SXM
GPU_NAMES = {"L40S": "L40S", "H100": "H100-SXM", "RTX-4090": "RTX-4090"}


@pytest.fixture
def hub(fake_hub_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HFVRAM_ALLOW_TORCH", "1")
    extra = tmp_path / "extra"
    llama = (ROOT / "fixtures/meta-llama--Llama-2-7b-hf/config.json").read_text()
    write_fixture(extra / "acme--gated", "acme/gated", gated="manual", files={"config.json": llama})
    # a header that says it is 100 bytes long and then is not JSON: a malformed file, not a network fault
    bad = (100).to_bytes(8, "little") + b"{not json" + b" " * 91
    write_fixture(extra / "acme--broken", "acme/broken", files={"config.json": llama, "model.safetensors": bad})
    h = fake_hub_factory([ROOT / "fixtures", extra], tokens={"hf_good": ["meta-llama/*", "google/*"]})
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    return h


def model_file(tmp_path, lines, name="models.txt") -> str:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def answers(rows) -> list[dict]:
    """Rows without `source` (hub on a first read, cache when the same commit is read again)."""
    return [{k: v for k, v in r.items() if k != "source"} for r in rows]


def keys(rows) -> list[tuple]:
    return [(r["model"], r.get("framework"), r.get("gpu_spec")) for r in rows]


def model_requests(hub, model: str) -> int:
    """The model-info requests of `model` (not its sharded-metadata route's)."""
    return len(hub.requests(path=f"^/api/models/{model}$"))


# -- several GPUs -------------------------------------------------------------------------------------------------

def test_several_gpus_rows_in_input_order_one_fetch_per_model(hub, tmp_path, cli):
    f = model_file(tmp_path, MODELS)
    hub.rate_limit_next(1, retry_after=0.5, path="Llama-2-7b-hf")  # the first model finishes last
    code, out, err = cli(["scan", f, "--gpu", "L40S,H100", "--gpu", "RTX-4090", "-f", "vllm,llamacpp",
                          "--format", "jsonl", "--jobs", "4"])
    assert code == 0, err
    rows = jsonl(out)
    assert keys(rows) == [(m, fw, GPU_NAMES[g]) for m in MODELS for g in ("L40S", "H100", "RTX-4090")
                          for fw in ("vllm", "llamacpp")]
    assert "3 models x 3 GPUs (18 rows), 3 ok" in err
    # read once per model (the 429 made Llama's first model_info call twice), not once per GPU
    assert [model_requests(hub, m) for m in MODELS] == [2, 1, 1]
    # each GPU's rows are what a one-GPU scan answers
    by_key = {(r["model"], r["framework"], r["gpu_spec"]): r for r in rows}
    code, out, _ = cli(["scan", f, "--gpu", "H100", "-f", "vllm,llamacpp", "--format", "jsonl"])
    for r in jsonl(out):
        multi = by_key[(r["model"], r["framework"], "H100-SXM")]
        assert {k: multi[k] for k in ("per_gpu_bytes", "fits", "max_context", "allowed_bytes", "settings_key")} == \
            {k: r[k] for k in ("per_gpu_bytes", "fits", "max_context", "allowed_bytes", "settings_key")}
    allowed = {r["gpu_spec"]: r["allowed_bytes"] for r in rows}
    assert allowed["H100-SXM"] > allowed["L40S"] > allowed["RTX-4090"]  # 80, 48 and 24 GB cards


def test_gpu_count_is_part_of_the_column_and_duplicates_run_once(hub, tmp_path, cli):
    code, out, err = cli(["scan", model_file(tmp_path, MODELS[:1]), "--gpu", "L40S,L40S:2,l40s", "-f", "vllm",
                          "--format", "jsonl"])
    rows = jsonl(out)
    assert code == 0, err
    assert [(r["gpu_spec"], r["gpu"], r["gpus"]) for r in rows] == [("L40S", "L40S", 1), ("L40S:2", "L40S", 2)]
    assert rows[1]["per_gpu_bytes"] < rows[0]["per_gpu_bytes"]  # two-way tensor parallel


# -- the matrix ---------------------------------------------------------------------------------------------------

def _expected_cell(row: dict | None) -> str:
    if row is None:
        return "error"
    if row["status"] == "unsupported":
        return "n/a"
    mark = "✓" if row["fits"] else "✗"
    return f"{mark} {row['max_context']:,}" if row["max_context"] else mark


def test_matrix_markdown_and_terminal_parse_back(hub, tmp_path, cli):
    models = [*MODELS[:2], "meta-llama/Llama-2-70b-hf", "org/does-not-exist"]
    f = model_file(tmp_path, models)
    argv = ["scan", f, "--gpu", "L40S,H100,RTX-4090", "-f", "vllm,llamacpp", "--context", "8k"]
    code, out, _ = cli([*argv, "--format", "jsonl"])
    assert code == 1
    rows = {(r["model"], r["framework"], r["gpu_spec"]): r for r in jsonl(out)}
    gpus = ["L40S", "H100-SXM", "RTX-4090"]
    expected = [[m, fw, *(_expected_cell(rows.get((m, fw, g))) for g in gpus)]
                for m in models[:3] for fw in ("vllm", "llamacpp")] + [[models[3], "-", "error", "error", "error"]]
    # the 70B model does not fit a 24 GB card at 8K, in any engine; the small ones fit an H100 with room to spare
    assert all(cell.startswith("✗") for line in expected[4:6] for cell in line[4:5])
    assert all(line[3].startswith("✓") for line in expected[:4])

    code, out, _ = cli([*argv, "--format", "matrix-markdown"])
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["model", "framework", *gpus]
    assert lines[1].startswith("|---|---|---:|")
    assert [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]] == expected
    assert "longest context that fits" in out and "8,192 tokens x batch 1" in out  # the legend

    code, out, _ = cli([*argv, "--format", "matrix"])
    assert code == 1 and "…" not in out  # nothing cut
    body = [line.replace("┃", "│") for line in out.splitlines()]  # rich draws the header row heavier
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in body if line.count("│") == 6]
    assert cells[0] == ["model", "framework", *gpus] and cells[1:] == expected


def test_matrix_without_gpu_shows_sizes(hub, tmp_path, cli):
    code, out, _ = cli(["scan", model_file(tmp_path, MODELS[:1]), "-f", "vllm", "--format", "matrix-markdown"])
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert code == 0 and lines[0] == "| model | framework | no GPU |"
    assert lines[2].endswith("GiB |") and lines[2].startswith(f"| {MODELS[0]} | vllm | ")


# -- csv ----------------------------------------------------------------------------------------------------------

def test_csv_human_columns_beside_raw_bytes(hub, tmp_path, cli):
    f = model_file(tmp_path, MODELS[:2])
    code, out, _ = cli(["scan", f, "--gpu", "L40S", "-f", "vllm,llamacpp", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 4
    header = out.splitlines()[0].split(",")
    assert header[:11] == ["model", "framework", "gpu_spec", "status", "fits", "max_context", "per_gpu_gib",
                           "process_gib", "allowed_gib", "reason", "retryable"]
    for r in rows:
        assert r["per_gpu_gib"] == f"{int(r['per_gpu_bytes']) / 2**30:.2f}"
        assert r["process_gib"] == f"{int(r['process_bytes']) / 2**30:.2f}"
        assert r["allowed_gib"] == f"{int(r['allowed_bytes']) / 2**30:.2f}"
        assert int(r["max_context"]) >= 4096 and r["fits"] == "True" and len(r["settings_key"]) == 16
    code, out, _ = cli(["scan", f, "--gpu", "L40S", "-f", "vllm", "--format", "csv", "--units", "GB"])
    r = next(csv.DictReader(io.StringIO(out)))
    assert r["per_gpu_gb"] == f"{int(r['per_gpu_bytes']) / 1e9:.2f}" and "per_gpu_gib" not in r


# -- resume -------------------------------------------------------------------------------------------------------

def _scan(cli, f, out_file, *extra, fmt="jsonl"):
    return cli(["scan", f, "--format", fmt, "-o", str(out_file), "--resume", str(out_file), *extra])


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_resume_same_settings_reuses_every_row_without_a_request(hub, tmp_path, cli, fmt):
    f = model_file(tmp_path, MODELS)
    out_file = tmp_path / f"rows.{fmt}"
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S,H100", "-f", "vllm,llamacpp", fmt=fmt)
    assert code == 0 and "does not exist yet" in err
    first = out_file.read_text()
    hub.reset()
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S,H100", "-f", "vllm,llamacpp", fmt=fmt)
    assert code == 0, err
    assert "12 rows reused, 0 redone because their settings changed, 0 error rows retried" in err
    assert hub.requests() == []  # nothing fetched
    assert out_file.read_text() == first  # the same file, byte for byte
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_redoes_rows_whose_context_gpu_or_framework_changed(hub, tmp_path, cli):
    f = model_file(tmp_path, MODELS)
    out_file = tmp_path / "rows.jsonl"
    base = ["--gpu", "L40S", "-f", "vllm"]
    _scan(cli, f, out_file, *base)
    original = jsonl(out_file.read_text())

    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm", "--context", "8k")
    rows = jsonl(out_file.read_text())
    assert code == 0 and "0 rows reused, 3 redone because their settings changed" in err
    assert keys(rows) == keys(original) and {r["context"] for r in rows} == {8192}

    out_file.write_text("".join(json.dumps(r) + "\n" for r in original))
    hub.reset()
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S,H100", "-f", "vllm")  # a GPU added
    rows = jsonl(out_file.read_text())
    assert "3 rows reused, 0 redone" in err
    assert keys(rows) == [(m, "vllm", g) for m in MODELS for g in ("L40S", "H100-SXM")]
    assert rows[0] == original[0]

    code, _, err = _scan(cli, f, out_file, "--gpu", "H100", "-f", "vllm,llamacpp")  # L40S gone, llama.cpp added
    rows = jsonl(out_file.read_text())
    assert "3 rows reused, 0 redone because their settings changed, 0 error rows retried, 3 left out" in err
    assert keys(rows) == [(m, fw, "H100-SXM") for m in MODELS for fw in ("vllm", "llamacpp")]
    # a row computed alone equals the same row computed beside other frameworks (what makes reuse per row sound)
    code, out, _ = cli(["scan", f, "--gpu", "H100", "-f", "vllm,llamacpp", "--format", "jsonl"])
    assert [(r["per_gpu_bytes"], r["max_context"], r["settings_key"]) for r in jsonl(out)] == \
        [(r["per_gpu_bytes"], r["max_context"], r["settings_key"]) for r in rows]

    code, _, err = _scan(cli, f, out_file, "--gpu", "H100", "-f", "vllm,llamacpp", "--kv-dtype", "fp8")
    assert "0 rows reused, 6 redone because their settings changed" in err


def test_resume_retries_errors_and_writes_each_row_once(hub, tmp_path, cli):
    """The reported failure: --resume OUT -o OUT kept old error rows and appended new ones (an error row and five ok
    rows for one model). Now every model x framework x GPU is in the file once, and error rows are retried."""
    f = model_file(tmp_path, MODELS[:2])
    out_file = tmp_path / "rows.jsonl"
    _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm,llamacpp")
    good = jsonl(out_file.read_text())
    error = {"model": MODELS[1], "framework": None, "gpu_spec": "L40S", "status": "error", "reason": "HTTP 503",
             "retryable": True}
    # an old-style file: Qwen failed, then a resume appended its rows; Llama's rows twice
    out_file.write_text("".join(json.dumps(r) + "\n" for r in [error, *good, *good[:2]]))
    hub.reset()
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm,llamacpp")
    rows = jsonl(out_file.read_text())
    assert code == 0, err
    assert rows == good  # each row once, in input order, no error row
    assert "4 rows reused" in err and "1 error rows retried" in err and "2 duplicates dropped" in err
    assert hub.requests() == []  # Qwen's rows were there: the error row alone is no reason to fetch

    out_file.write_text(json.dumps({**error, "model": MODELS[0]}) + "\n" + "".join(json.dumps(r) + "\n"
                                                                                 for r in good[2:]))
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm,llamacpp")
    assert answers(jsonl(out_file.read_text())) == answers(good) and "1 error rows retried" in err
    assert model_requests(hub, MODELS[0]) == 1 and model_requests(hub, MODELS[1]) == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_after_an_interrupted_last_line(hub, tmp_path, cli, fmt):
    f = model_file(tmp_path, MODELS)
    out_file = tmp_path / f"rows.{fmt}"
    _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm", fmt=fmt)
    full = out_file.read_text()
    lines = full.splitlines()
    if fmt == "csv":  # cut inside a number, so the line still parses, with a wrong value
        cells = lines[-1].split(",")
        at = lines[0].split(",").index("per_gpu_bytes")
        cut = len(",".join(cells[:at])) + 1 + len(cells[at]) // 2
    else:
        cut = len(lines[-1]) // 2
    out_file.write_text(full[:len(full) - len(lines[-1]) - 1 + cut])
    assert not out_file.read_text().endswith("\n")
    hub.reset()
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm", fmt=fmt)
    assert code == 0 and "2 rows reused" in err
    # the last model redone; the file whole again
    if fmt == "csv":
        assert answers(csv.DictReader(io.StringIO(out_file.read_text()))) == answers(csv.DictReader(io.StringIO(full)))
    else:
        assert answers(jsonl(out_file.read_text())) == answers(jsonl(full))
    assert [model_requests(hub, m) for m in MODELS] == [0, 0, 1]


def test_resume_file_must_be_readable_back(hub, tmp_path, cli):
    f = model_file(tmp_path, MODELS[:1])
    out_file = tmp_path / "rows.md"
    code, _, err = cli(["scan", f, "--format", "markdown", "-o", str(out_file), "--resume", str(out_file)])
    assert code == 2 and "cannot read back" in err and not out_file.exists()
    out_file.write_text("| model | framework |\n|---|---|\n")
    code, _, err = cli(["scan", f, "--format", "jsonl", "--resume", str(out_file)])
    assert code == 2 and "not a jsonl, csv or json output" in err
    assert hub.requests() == []


def test_interrupted_resume_keeps_every_model_exactly_once(hub, tmp_path, cli, monkeypatch):
    """Ctrl-C during `--resume OUT -o OUT`: the file is replaced only by one that still holds every model once
    (rows written so far, then the earlier rows of the models not reached)."""
    from hfvram.report import rows as rows_module

    f = model_file(tmp_path, MODELS)
    out_file = tmp_path / "rows.jsonl"
    _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm")
    old = jsonl(out_file.read_text())
    real_write = rows_module.Writer.write
    calls = []

    def interrupted_write(self, row):  # the user presses Ctrl-C as the second row is written
        calls.append(row["model"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_write(self, row)

    monkeypatch.setattr(rows_module.Writer, "write", interrupted_write)
    code, _, err = _scan(cli, f, out_file, "--gpu", "L40S", "-f", "vllm", "--context", "8k")
    rows = jsonl(out_file.read_text())
    assert code == 130 and "interrupted" in err
    assert [r["model"] for r in rows] == MODELS  # once each
    # the rows answered (the one being written when Ctrl-C came included), then the earlier ones as they were
    assert [r["context"] for r in rows[:2]] == [8192, 8192] and rows[2] == old[2]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- error rows ---------------------------------------------------------------------------------------------------

def _api_scan(models, hub_source, **settings) -> list[dict]:
    from hfvram.batch import scan
    from hfvram.report.rows import Writer

    buf = io.StringIO()
    gpus = settings.pop("gpus", None)
    scan(models, {"frameworks": ["vllm"], **settings}, Writer("jsonl", buf), gpus=gpus, hub=hub_source, jobs=4)
    return jsonl(buf.getvalue())


def test_error_rows_say_whether_a_retry_could_help(hub, tmp_path):
    from hfvram.sources.hub import HubSource

    hub.rate_limit_next(10_000, retry_after=0, path="Qwen3-8B")
    hub.fail_next(10_000, 503, path="Mistral-7B-v0.1")
    hub.drop_next(10_000, path="Llama-2-7b-hf")
    source = HubSource(retries=1, sleep=lambda s: None)  # the real client, no waiting between its retries
    rows = _api_scan([*MODELS, "org/does-not-exist", "acme/gated", "acme/broken", "not a repo id"], source,
                     gpu="L40S")
    hub.clear_faults()
    got = {r["model"]: (r["status"], r["retryable"], r["gpu_spec"]) for r in rows}
    assert got == {
        MODELS[0]: ("error", True, "L40S"),  # connection dropped
        MODELS[1]: ("error", True, "L40S"),  # 429
        MODELS[2]: ("error", True, "L40S"),  # 503
        "org/does-not-exist": ("error", False, "L40S"),
        "acme/gated": ("error", False, "L40S"),  # the token is not approved for it
        "acme/broken": ("error", False, "L40S"),  # malformed safetensors header
        "not a repo id": ("error", False, "L40S"),
    }
    assert "rate limited" in rows[1]["reason"] and "503" in rows[2]["reason"] and "gated" in rows[4]["reason"]
    # answered rows carry no flag
    assert _api_scan(MODELS[:1], HubSource(), gpu="L40S")[0]["retryable"] is None


def test_unreachable_hub_is_retryable_offline_is_not(hub, tmp_path):
    from hfvram.batch import is_retryable
    from hfvram.errors import HfvramError
    from hfvram.sources.hub import HubSource

    down = HubSource(endpoint="http://127.0.0.1:9", retries=0)  # nothing listens on the discard port
    [row] = _api_scan(["org/not-in-the-snapshot"], down)
    assert row["status"] == "error" and row["retryable"] is True and "cannot reach" in row["reason"]
    from hfvram.batch import scan
    from hfvram.report.rows import Writer

    buf = io.StringIO()
    scan(["org/not-in-the-snapshot"], {"frameworks": ["vllm"]}, Writer("jsonl", buf), hub=HubSource(), offline=True)
    [row] = jsonl(buf.getvalue())
    assert row["retryable"] is False and "offline" in row["reason"]
    assert hub.requests() == []

    class Deadline(HfvramError):  # a per-row deadline states it itself
        retryable = True

    assert is_retryable(Deadline("took longer than 60 s")) and is_retryable(TimeoutError())
    assert not is_retryable(ValueError("a bug"))


def test_a_per_gpu_error_stays_on_its_gpu(hub, tmp_path, cli):
    # --tp 3 does not divide Llama-2-7B's 32 heads: a fault of that deployment, not of the model
    code, out, err = cli(["scan", model_file(tmp_path, MODELS[:1]), "--gpu", "L40S:3,H100:3", "--tp", "3",
                          "-f", "vllm", "--format", "jsonl"])
    rows = jsonl(out)
    assert code == 1 and [(r["gpu_spec"], r["status"], r["retryable"]) for r in rows] == \
        [("L40S:3", "error", False), ("H100-SXM:3", "error", False)]
    assert "does not divide" in rows[0]["reason"]


def test_faults_in_a_larger_scan_account_for_every_model_once(hub, tmp_path):
    """60 models, every tenth failing for good and every tenth-but-one failing once then recovering: each model's
    rows appear once, in input order, on each GPU."""
    from hfvram.sources.hub import HubSource

    names = []
    for i in range(60):
        name = f"study/model-{i:02d}"
        hub.add_alias(name, MODELS[i % 3], gated=False)
        names.append(name)
    for i in range(0, 60, 10):
        hub.fail_next(10_000, 500, path=f"{names[i]}$")
    for i in range(9, 60, 10):
        hub.fail_next(1, 503, path=f"{names[i]}$")
    rows = _api_scan(names, HubSource(retries=1, sleep=lambda s: None), gpu=None, gpus=["L40S", "RTX-4090"])
    hub.clear_faults()
    failed = set(names[::10])
    expected = [(n, None if n in failed else "vllm", g) for n in names for g in ("L40S", "RTX-4090")]
    assert keys(rows) == expected
    assert all(r["retryable"] is True for r in rows if r["status"] == "error")
    assert {r["status"] for r in rows if r["model"] not in failed} == {"ok"}


# -- option errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--gpu", "L40S,NOPE-9000"], "unknown GPU 'NOPE-9000'"),
    (["--gpu", "L40S", "--gpu", "H100", "--gpu", "bogus"], "unknown GPU 'bogus'"),
    (["--gpu", "L40S,,H100"], "empty GPU name"),
    (["--gpu", "L40S,H100", "--gpu-mem", "24GiB"], "--gpu-mem names one GPU"),
    (["-f", "vllm,nope"], "unknown framework 'nope'"),
    (["--quantize", "int3"], "int3"),
    (["--processes", "0"], "--processes must be at least 1"),
])
def test_option_errors_before_the_first_request(hub, tmp_path, cli, argv, message):
    for source in ([model_file(tmp_path, MODELS)], ["--author", "Qwen"]):
        code, out, err = cli(["scan", *source, *argv, "--format", "jsonl"])
        assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err
    assert hub.requests() == []


def test_show_and_check_take_one_gpu(hub, cli):
    for command in (["show"], ["check"]):
        code, out, err = cli([*command, MODELS[0], "--gpu", "L40S,H100"])
        assert code == 2 and "one GPU here (`hfvram scan` takes several)" in err
    assert hub.requests() == []
