"""HF Transformers' reference PyTorch paths for recurrent layers (what runs without mamba-ssm or
flash-linear-attention): their prefill transients, checked against our H200 runs
(validation/cases-own-transformers-nvidia-h200.jsonl)."""

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
    # held out from those runs: Jamba-v0.1 (52B, attention + Mamba-1 + MoE), whose 8K prefill adds 14.7 GB, 12.9 GB
    # of it the three copies (28 Mamba layers one at a time: 3 x 8,192 x 8,192 x 16 x 4 bytes)
    for prompt in (2048, 8192):
        got, _ = peak("ai21labs/Jamba-v0.1", 1, prompt)
        want = measured("ai21labs/Jamba-v0.1", 1, prompt, "peak_allocated_bytes")
        assert abs(got / want - 1) < 0.02, (prompt, got, want)
    # without the term the 8K prefill would be a fifth of what was measured
    assert measured("state-spaces/mamba-130m-hf", 1, 8192, "peak_allocated_bytes") > 10 * 258_637_312 / 2


def test_gated_deltanet_prefill_holds_the_prompt_in_float32():
    a = hfvram.analyze("Qwen/Qwen3.5-0.8B", offline=True, frameworks=["transformers"], projections=())
    # 16 value heads x (5 x 128 key + 4 x 128 value + 3 x 64 chunk) float32 a token in the rule, and its caller's
    # bf16 mixed_qkv and q/k/v copies (2 x 6,144 wide) and gate (2,048)
    assert reference_delta_bytes(a.model, 2048, 2) == 2048 * (16 * 4 * (5 * 128 + 4 * 128 + 3 * 64) +
                                                              2 * (2 * 6144 + 2048))
    vision = a.facts.weights.component_bytes["vision"]  # our run built the text model alone
    for prompt in (2048, 8192, 32768):
        got, notes = peak("Qwen/Qwen3.5-0.8B", 1, prompt)
        want = measured("Qwen/Qwen3.5-0.8B", 1, prompt, "peak_allocated_bytes")
        assert abs((got - vision) / want - 1) < 0.05, (prompt, got - vision, want)
        assert any("reference chunked rule" in n for n in notes)


def test_the_deltanet_term_holds_on_models_it_was_not_written_from():
    # run after the term was written from Qwen3.5-0.8B: the 9B (16 key heads repeated to 32 value heads) and the
    # 35B-A3B MoE; without the term their 32K peaks would be 18.5% and 8.6% under what was measured
    for model in ("Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-35B-A3B"):
        a = hfvram.analyze(model, offline=True, frameworks=["transformers"], projections=())
        vision = a.facts.weights.component_bytes["vision"]
        for prompt in (2048, 8192, 32768):
            got, _ = peak(model, 1, prompt)
            want = measured(model, 1, prompt, "peak_allocated_bytes")
            assert abs((got - vision) / want - 1) < 0.025, (model, prompt, got - vision, want)


def test_lfm2_builds_two_thirds_of_its_configured_mlp_width():
    a = hfvram.analyze("LiquidAI/LFM2-1.2B", offline=True, frameworks=["transformers"], projections=())
    # block_ff_dim 12,288 with block_auto_adjust_ff_dim: int(2 x 12,288 / 3) = 8,192 (a multiple of 256 already)
    assert a.facts.arch.intermediate_size == 8192
    for prompt in (8192, 32768):
        got, _ = peak("LiquidAI/LFM2-1.2B", 1, prompt)
        want = measured("LiquidAI/LFM2-1.2B", 1, prompt, "peak_allocated_bytes")
        assert abs(got / want - 1) < 0.05, (prompt, got, want)  # +4% and +13% with the configured width


def test_attention_only_models_have_neither_term():
    plain = hfvram.analyze("Qwen/Qwen3-0.6B", offline=True, frameworks=["transformers"], projections=())
    assert reference_scan_bytes(plain.model, 8192) == reference_delta_bytes(plain.model, 8192, 2) == 0
    assert not any("reference" in n for n in plain.estimates["transformers"].notes)


def test_mamba2_reference_scan_by_release():
    from hfvram.estimate.transformers import reference_ssd_bytes

    model = "nvidia/Nemotron-H-56B-Base-8K"  # 256 heads x 64, state 256, chunk 128
    a = hfvram.analyze(model, offline=True, frameworks=["transformers"], projections=())
    # until 5.17 `C x B` is materialised before its sum: tokens x chunk x heads x state floats, 4 GiB at 128 tokens,
    # 64 GiB at 2,048 (what our 5.17 run asked for when it ran out of memory)
    assert reference_ssd_bytes(a.model, 2048, "5.17") > 2048 * 128 * 256 * 256 * 4 == 64 << 30
    summary = json.loads((Path(__file__).resolve().parent.parent / "validation" / "own-h200" /
                          "summary-11-nemotron-h.json").read_text())
    (oom,) = summary["out_of_memory"]
    assert oom["prompt"] == 2048 and "Tried to allocate 64.00 GiB" in oom["why"]
    # 5.18 contracts with einsum: the same prompt needs a sixteenth as much
    assert reference_ssd_bytes(a.model, 2048, "5.18") < reference_ssd_bytes(a.model, 2048, "5.17") / 16
    kw = dict(offline=True, frameworks=["transformers"], projections=(), dtype="bfloat16", gpu="H200",
              transformers_version="5.17")
    small = hfvram.analyze(model, context=144, prompt_tokens=128, **kw).estimates["transformers"]
    want = measured(model, 1, 128, "peak_allocated_bytes")
    assert abs(small.extras["peak_allocated_bytes"] / want - 1) < 0.01  # 1 GiB of its 5 GiB transient unexplained
    assert small.fits and any("Mamba-2 layers" in n for n in small.notes)
    assert hfvram.analyze(model, context=2064, prompt_tokens=2048, **kw).estimates["transformers"].fits is False


@pytest.mark.parametrize("model, gpu", [("state-spaces/mamba-130m-hf", "RTX-3060"), ("Qwen/Qwen3.5-9B", "L40S")])
def test_the_largest_context_it_advises_fits_and_one_more_does_not(model, gpu):
    # these prefills grow with the prompt in activations, not KV: the search takes each context's own components (and
    # their bands), so the advice is the edge; it used to be 39% short of it for Mamba-130M (19,415 of 31,815)
    kw = dict(offline=True, frameworks=["transformers"], projections=(), gpu=gpu)
    found = hfvram.analyze(model, context=131072, **kw).estimates["transformers"]
    assert found.fits is False and found.max_context
    assert hfvram.analyze(model, context=found.max_context, **kw).estimates["transformers"].fits is True
    assert hfvram.analyze(model, context=found.max_context + 1, **kw).estimates["transformers"].fits is False
