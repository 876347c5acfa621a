"""The accuracy command: published measurements through the public API with each case's own settings."""

from __future__ import annotations

import json
from pathlib import Path

from hfvram import accuracy

ROOT = Path(__file__).resolve().parent.parent
IDS = {
    "vllm-10517-llama31-8b-3090-29k-blocks": 0.01,  # vLLM 0.6.4 block count on an RTX 3090
    "vllm-10511-llama3-8b-tp1-kv": 0.01,  # KV pool on an H100
    "llamacpp-openllama-7b-v2-q4-k-m-weights": 0.001,  # GGUF Q4_K_M bytes by llama.cpp's b1513 rules
    "hf-qwen25bench-qwen2.5-7b-instruct-bf16-in30720-peak": 0.03,  # transformers peak at a 30720-token prompt
    "vllm-llmd019-gemma2-9b-it-tp1-kvtok": 0.01,  # sliding-window model, vLLM v0.19 token capacity
}


def test_cases_within_their_error(tmp_path):
    cases = [c for c in accuracy.load_cases() if c["id"] in IDS]
    assert {c["id"] for c in cases} == set(IDS)
    for case in cases:
        result = accuracy.evaluate(case)
        assert result.skipped is None, (case["id"], result.skipped)
        assert abs(result.error) <= IDS[case["id"]], (case["id"], result.error)


def test_command_prints_the_table(tmp_path, capsys):
    subset = tmp_path / "cases-subset.jsonl"
    lines = [line for line in (ROOT / "validation" / "cases-public.jsonl").read_text().splitlines()
             if json.loads(line)["id"] in IDS]
    subset.write_text("\n".join(lines) + "\n")
    assert accuracy.main(["--cases", str(subset), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| vllm | gpu_blocks | 1 |" in out and "| llamacpp | weights_bytes | 1 | 0.0% |" in out
