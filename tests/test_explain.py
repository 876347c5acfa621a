"""`hfvram explain LOGFILE [MODEL]`: real published logs (validation/ excerpts) beside our estimate for the same
settings, the difference per component, what explains it, and out-of-memory failures. Models are answered from the
bundled snapshot (--offline), so nothing here needs the network."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import hfvram
from hfvram.accuracy import load_cases
from hfvram.errors import UsageError
from hfvram.explain import explain, render
from hfvram.units import GiB, MiB

SCHEMA = json.loads((Path(hfvram.__file__).parent / "data" / "explain.schema.json").read_text())


@pytest.fixture(scope="module")
def excerpts() -> dict:
    return {c["id"]: c for c in load_cases() if c.get("log_excerpt")}


def rows(ex) -> dict:
    return {r.component: r for r in ex.rows}


def test_vllm_v1_log_beside_the_estimate(excerpts):
    """vLLM 0.10.2, Qwen3-30B-A3B-Instruct-2507 on an H100 (mlops log): the log prints weights, activation peak,
    non-torch, graphs, the budget and the pool; ours for the same settings on the printed 79.18 GiB."""
    text = excerpts["vllm-mlopskol-qwen3-30b-a3b-bf16-h100-weights"]["log_excerpt"]
    ex = explain(text, "Qwen/Qwen3-30B-A3B", offline=True)
    assert ex.engine == "vllm" and ex.settings["vllm_version"] == "0.10" and ex.settings["context"] == 6144
    assert ex.gpu["usable_bytes"] == round(79.18 * GiB) and ex.gpu["source"] == "printed by the log"
    r = rows(ex)
    assert r["weights"].log == round(56.9342 * GiB) and abs(r["weights"].share) < 0.01  # "Model loading took"
    assert r["budget"].matches and r["activation peak"].matches
    assert r["KV bytes per token"].matches  # the layout agrees; the pool differs by the fixed terms
    assert r["non-torch memory"].log == round(0.07 * GiB) and r["non-torch memory"].matches is False
    pool = r["KV cache pool"]
    # "Current kv cache memory in use is 9318930329 bytes"; ours within 0.6% (the non-torch term is the rest)
    assert pool.log == 9318930329 and pool.matches and abs(pool.diff) < 0.006 * pool.log
    assert r["KV cache tokens"].matches and r["CUDA graphs (captured)"].matches
    assert ex.findings[0].startswith("non-torch memory: hfvram -51.20 MiB")
    assert ex.findings[-1].startswith("within print precision or 2%: weights")
    text_out = render(ex)
    assert "What explains the differences" in text_out and "56.93 GiB" in text_out


def test_vllm_out_of_memory_with_settings_from_the_command_line(excerpts):
    """vllm#13061: R1-Distill-Qwen-14B (Qwen2.5-14B's shapes) on 2 x RTX 4090 at 131072 tokens, V0: the log is the
    failure and one weights line; the settings the excerpt lacks come from the command line."""
    text = excerpts["vllm-13061-r1-distill-qwen-14b-2x4090-tp2-weights"]["log_excerpt"]
    ex = explain(text, "Qwen/Qwen2.5-14B-Instruct", offline=True, gpu="RTX-4090", tp=2,
                 gpu_memory_utilization=0.98, vllm_version="0.7")
    assert ex.log.oom.kind == "kv_cache_too_small" and ex.log.oom.kv_tokens == 81536
    assert ex.settings["context"] == 131072  # from the failure message
    assert rows(ex)["weights"].matches  # 13.9476 GB per rank at TP 2
    assert any("needs more tokens than the 81,536" in o for o in ex.oom)
    assert any(o.startswith("our estimate agrees it does not fit") for o in ex.oom)
    assert any(o.startswith("to fit:") for o in ex.oom)
    assert "the non-torch figure is the likeliest" in rows(ex)["KV cache tokens"].why


def test_a_missing_parallel_degree_is_named(excerpts):
    text = excerpts["vllm-13061-r1-distill-qwen-14b-2x4090-tp2-weights"]["log_excerpt"]
    ex = explain(text, "Qwen/Qwen2.5-14B-Instruct", offline=True)
    assert "give --tp 2" in rows(ex)["weights"].why


def test_llamacpp_log_phi3_without_its_sliding_window(excerpts):
    """Phi-3-mini Q4_K_M under text-generation-webui's llama-server: the log holds every layer at n_ctx (llama.cpp
    does not implement Phi-3's sliding window), and so does hfvram's llama.cpp policy."""
    text = excerpts["llamacpp-tgwui-phi3-mini-4k-q4km-c4096-weights"]["log_excerpt"]
    ex = explain(text, "microsoft/Phi-3-mini-4k-instruct", offline=True)
    assert ex.engine == "llamacpp" and ex.settings["quantize"] == "gguf:Q4_K_M" and ex.settings["context"] == 4096
    r = rows(ex)
    assert r["weights on the GPU(s)"].log == round(2228.82 * MiB) and r["weights on the GPU(s)"].matches
    kv = r["KV cache on the GPU(s)"]
    assert kv.log == 1536 * MiB and kv.matches and kv.ours == 1536 * MiB
    assert r["compute buffer (largest device)"].log == 150 * MiB


def test_llamacpp_swa_caches_match(excerpts):
    text = excerpts["llamacpp-metal-gptoss20b-c131072-ub2048-kv-full"]["log_excerpt"]
    ex = explain(text, "openai/gpt-oss-20b", offline=True)
    kv = rows(ex)["KV cache on the GPU(s)"]
    assert kv.log == (3072 + 54) * MiB and kv.matches  # non-SWA 131072 cells + SWA 2304 cells


def test_trtllm_engine_log(excerpts):
    """trtllm-bench's FP8 Llama-2-7B engine on an 80 GB card: the engine's runtime buffers have no term of ours,
    and MODEL (bf16) is not the format the engine was built in - explain says so, then matches with --quantize."""
    text = excerpts["trtllm-suite012-llama2-7b-fp8-weights"]["log_excerpt"]
    ex = explain(text, "meta-llama/Llama-2-7b-hf", offline=True)
    r = rows(ex)
    assert ex.log.settings["backend"] == "tensorrt"
    assert "8-bit" in r["weights"].why and "16-bit" in r["weights"].why
    assert r["runtime buffers (execution context, runtime, decoder)"].ours is None
    assert any("kv_cache_free_gpu_mem_fraction was about 0.99" in n for n in ex.notes)
    fp8 = explain(text, "meta-llama/Llama-2-7b-hf", offline=True, quantize="fp8",
                  free_gpu_memory_fraction=0.99)
    assert abs(rows(fp8)["weights"].share) < 0.08


def test_trtllm_pytorch_backend_log(excerpts):
    text = excerpts["trtllm-spark-gptoss120b-pyt-weights"]["log_excerpt"]
    ex = explain(text, "openai/gpt-oss-120b", offline=True)
    r = rows(ex)
    assert ex.gpu["usable_bytes"] == round(119.70 * GiB)  # "device total memory 119.70 GiB"
    assert r["weights"].log == round(63.52 * GiB) and abs(r["weights"].share) < 0.06
    assert "unified-memory" in r["memory outside torch (incl. CUDA graphs)"].why
    assert r["KV bytes per token"].log == 73728  # "kv size is 73728"


def test_sglang_log_against_the_models_facts():
    """SGLang has no estimator of ours: its weights and KV bytes per token are set beside the model's facts. The log
    lines are a published SGLang log (find_string id 53378181608, GLM-4.7-flash); Qwen3-30B-A3B stands in for the
    model, so only the mechanics are checked here: our side is the stored weights / TP and the per-token KV / TP."""
    text = ("[2026-03-11 13:53:21 TP0] Load weight end. elapsed=23.18 s, type=Glm4MoeLiteForCausalLM, avail "
            "mem=32.02 GB, mem usage=28.79 GB.\n"
            "[2026-03-11 13:53:23 TP0] KV Cache is allocated. #tokens: 383872, KV size: 19.36 GB\n"
            "[2026-03-11 13:53:32 TP0] Capture npu graph end. Time elapsed: 8.04 s. mem usage=0.80 GB. avail "
            "mem=10.30 GB.\n")
    ex = explain(text, "Qwen/Qwen3-30B-A3B", offline=True, tp=2)
    r = rows(ex)
    assert ex.engine == "sglang" and ex.estimate is None
    assert r["weights"].log == round(28.79 * GiB) and r["weights"].ours == ex.analysis.facts.weights.bytes / 2
    per = r["KV bytes per token"]
    assert per.log == round(19.36 * GiB) / 383872 and per.ours == ex.analysis.kv.per_token_bytes / 2
    assert r["graphs (captured)"].log == round(0.80 * GiB)
    assert any(f.startswith("KV bytes per token: hfvram") for f in ex.findings)


def test_json_document_validates(excerpts, cli, tmp_path):
    path = tmp_path / "vllm.log"
    path.write_text(excerpts["vllm-mlopskol-qwen3-30b-a3b-bf16-h100-weights"]["log_excerpt"])
    code, out, err = cli(["explain", str(path), "Qwen/Qwen3-30B-A3B", "--offline", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == "hfvram-explain/1" and doc["estimate"]["components"]["weights"] > 0
    weights = next(r for r in doc["rows"] if r["component"] == "weights")
    assert weights["log"] == round(56.9342 * GiB) and weights["matches"] is True
    code, out, _ = cli(["explain", str(path), "Qwen/Qwen3-30B-A3B", "--offline"])
    assert code == 0 and "KV cache pool" in out and "hfvram" in out


def test_json_with_out_of_memory_validates(excerpts, cli, tmp_path):
    path = tmp_path / "oom.log"
    path.write_text(excerpts["vllm-13061-r1-distill-qwen-14b-2x4090-tp2-weights"]["log_excerpt"])
    code, out, err = cli(["explain", str(path), "Qwen/Qwen2.5-14B-Instruct", "--offline", "--json", "--gpu",
                          "RTX-4090", "--tp", "2", "--vllm-version", "0.7"])
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["log"]["out_of_memory"]["kind"] == "kv_cache_too_small" and doc["out_of_memory"]


def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, excerpts):
    code, _, err = cli(["explain", str(tmp_path / "nope.log")])
    assert code == 2 and "no log file" in err and "Traceback" not in err
    junk = tmp_path / "junk.log"
    junk.write_text("hello\n")
    code, _, err = cli(["explain", str(junk), "Qwen/Qwen3-8B", "--offline"])
    assert code == 2 and "not a log" in err
    local = tmp_path / "local.log"  # a model served from a local folder: MODEL is needed
    local.write_text(excerpts["vllm-vediosifter-qwen3-30b-a3b-bf16-rtxpro6000-weights"]["log_excerpt"])
    code, _, err = cli(["explain", str(local), "--offline"])
    assert code == 2 and "give it" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="not a log"):
        explain("hello\n", "Qwen/Qwen3-8B", offline=True)
