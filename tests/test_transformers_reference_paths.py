"""HF Transformers' reference PyTorch paths for recurrent layers (what runs without mamba-ssm or flash-linear-attention):
their prefill transients, checked against our H200 runs (validation/cases-own-transformers-nvidia-h200.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hfvram
from hfvram.estimate.transformers import reference_delta_bytes, reference_scan_bytes

ROWS = [json.loads(line) for line in (Path(__file__).resolve().parent.parent / "validation" /
                                      "cases-own-transformers-nvidia-h200.jsonl").read_text().splitlines()]


def measured(model: str, batch: int, prompt: int, quantity: str) -> int:
    (row,) = [r for r in ROWS if r["model"] == model and r["settings"]["batch"] == batch
              and r["settings"]["prompt_tokens"] == prompt and r["quantity"] == quantity]
    return row["measured"]


def peak(model: str, batch: int, prompt: int) -> tuple[int, list[str]]:
    a = hfvram.analyze(model, offline=True, frameworks=["transformers"], projections=(), context=prompt + 16,
                       prompt_tokens=prompt, batch=batch, dtype="bfloat16")
    est = a.estimates["transformers"]
    return est.extras["peak_allocated_bytes"], est.notes


def test_mamba_prefill_holds_three_float32_copies_of_the_discretised_prompt():
    a = hfvram.analyze("state-spaces/mamba-130m-hf", offline=True, frameworks=["transformers"], projections=())
    # discrete_A, discrete_B, deltaB_u: 3 x tokens x d_inner (1536) x d_state (16) x 4 bytes
    assert reference_scan_bytes(a.model, 8192) == 3 * 8192 * 1536 * 16 * 4
    for batch, prompt in ((1, 8192), (4, 2048), (1, 2048)):
        got, notes = peak("state-spaces/mamba-130m-hf", batch, prompt)
        want = measured("state-spaces/mamba-130m-hf", batch, prompt, "peak_allocated_bytes")
        assert got / want - 1 == pytest.approx(-0.11, abs=0.04), (batch, prompt, got, want)
        assert any("reference scan" in n for n in notes)
    # without the term the 8K prefill would be a fifth of what was measured
    assert measured("state-spaces/mamba-130m-hf", 1, 8192, "peak_allocated_bytes") > 10 * 258_637_312 / 2


def test_gated_deltanet_prefill_holds_the_prompt_in_float32():
    a = hfvram.analyze("Qwen/Qwen3.5-0.8B", offline=True, frameworks=["transformers"], projections=())
    # 16 value heads x (5 x 128 key + 4 x 128 value + 3 x 64 chunk) floats a token
    assert reference_delta_bytes(a.model, 2048) == 2048 * 16 * 4 * (5 * 128 + 4 * 128 + 3 * 64)
    vision = a.facts.weights.component_bytes["vision"]  # our run built the text model alone
    got, notes = peak("Qwen/Qwen3.5-0.8B", 1, 2048)
    want = measured("Qwen/Qwen3.5-0.8B", 1, 2048, "peak_allocated_bytes")
    assert abs((got - vision) / want - 1) < 0.08, (got - vision, want)
    assert any("reference chunked rule" in n for n in notes)
    # an attention-only model has neither term and says nothing of them
    plain = hfvram.analyze("Qwen/Qwen3-0.6B", offline=True, frameworks=["transformers"], projections=())
    assert reference_scan_bytes(plain.model, 8192) == reference_delta_bytes(plain.model, 8192) == 0
    assert not any("reference" in n for n in plain.estimates["transformers"].notes)
