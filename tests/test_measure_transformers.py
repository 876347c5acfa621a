"""tools/measure_transformers.py on the CPU (`--device cpu --dry-run`): random-weight models built from the fixture
configs with no download, the run plan within its time budget, generate() run for real, and rows in the validation
case schema. No GPU measurement is made here (the rows are marked unusable); the CUDA and NVML calls are the only
part not exercised."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")  # the script's own dependency (pip install -e '.[measure]')

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("measure_transformers", ROOT / "tools" / "measure_transformers.py")
mt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mt)


def test_build_from_a_fixture_config_on_the_meta_device_then_materialised():
    model, config = mt.build("Qwen/Qwen3-0.6B", "bf16", "cpu", max_layers=2)
    fixture = json.loads((ROOT / "fixtures" / "Qwen--Qwen3-0.6B" / "config.json").read_text())
    assert config.hidden_size == fixture["hidden_size"] and config.num_hidden_layers == 2
    tensors = list(model.parameters()) + list(model.buffers())
    assert tensors and all(t.device.type == "cpu" for t in tensors)  # nothing left on meta
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    # tied embeddings stay one tensor, as the checkpoint loads them
    assert fixture["tie_word_embeddings"] and model.lm_head.weight is model.model.embed_tokens.weight
    emb = model.model.embed_tokens.weight.float()
    assert 0.015 < emb.std().item() < 0.025  # filled with N(0, 0.02), not left uninitialised
    n_params = sum(p.numel() for p in model.parameters())
    h, i, v = fixture["hidden_size"], fixture["intermediate_size"], fixture["vocab_size"]
    q = fixture["num_attention_heads"] * fixture["head_dim"]
    kv = fixture["num_key_value_heads"] * fixture["head_dim"]
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * i + 2 * h + 2 * fixture["head_dim"]  # + norms, q/k norms
    assert n_params == v * h + 2 * per_layer + h


def test_plan_orders_runs_and_says_what_it_leaves_out():
    runs, skipped = mt.plan(["m"], ["bf16"], [1, 4], [128, 2048, 32768], 16, {"m": 4096})
    assert [(r["batch"], r["prompt"]) for r in runs] == [(1, 128), (4, 128), (1, 2048), (4, 2048)]
    reasons = {(s["batch"], s["prompt"]): s["why"] for s in skipped}
    assert "4,096" in reasons[(1, 32768)] and "65,536" in reasons[(4, 32768)]


def test_dry_run_writes_case_rows(tmp_path):
    out, summary = tmp_path / "rows.jsonl", tmp_path / "summary.json"
    code = mt.main(["--device", "cpu", "--dry-run", "--models", "openai-community/gpt2", "--max-layers", "2",
                    "--prompts", "16,2048", "--batches", "1,2", "--dtypes", "bf16,fp32", "--new-tokens", "3",
                    "--out", str(out), "--summary", str(summary)])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    done = json.loads(summary.read_text())
    # gpt2's n_positions is 1024: the 2048-token prompts are left out, with the reason
    assert len(done["runs"]) == 4 and len(done["skipped"]) == 4 and not done["out_of_memory"]
    assert all("1,024" in s["why"] for s in done["skipped"])
    assert all(r["generated_tokens"] == 3 for r in done["runs"])
    assert len(rows) == 4 * len(mt.QUANTITIES) and len({r["id"] for r in rows}) == len(rows)
    cases = json.loads((ROOT / "validation" / "cases-public.jsonl").read_text().splitlines()[0])
    for row in rows:
        assert set(cases) <= set(row)  # every field of the case schema
        assert row["framework"] == "transformers" and row["source"].startswith("hfvram own measurement")
        assert row["usable"] is False and row["measured"] is None and "dry run" in row["why_unusable"]
        s = row["settings"]
        assert s["context"] == s["prompt_tokens"] + 3 and s["weights"] == "random (from_config)"
        assert row["framework_version"].startswith(done["versions"]["transformers"])
    assert {r["quantity"] for r in rows} == set(mt.QUANTITIES)


def test_time_budget_stops_before_a_run_that_would_not_finish(tmp_path):
    summary = tmp_path / "summary.json"
    assert mt.main(["--device", "cpu", "--dry-run", "--models", "openai-community/gpt2", "--max-layers", "1",
                    "--prompts", "16", "--batches", "1", "--dtypes", "bf16", "--budget-s", "1", "--out",
                    str(tmp_path / "rows.jsonl"), "--summary", str(summary)]) == 0
    done = json.loads(summary.read_text())
    assert not done["runs"] and "time budget" in done["skipped"][0]["why"]


def test_gpu_only_options_are_refused_without_a_dry_run(capsys):
    with pytest.raises(SystemExit) as exc:
        mt.main(["--device", "cpu"])
    assert exc.value.code == 2 and "--dry-run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mt.main(["--max-layers", "2"])
