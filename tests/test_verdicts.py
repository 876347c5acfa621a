"""Verdicts you can gate on: advice that holds when followed, the engine's own budget in the verdict, unsupported
pairings answered as such, guessed weights never passed silently, and every setting checked before any work."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import hfvram
from hfvram.errors import HfvramError

FRAMEWORKS = ("transformers", "vllm", "trtllm", "llamacpp", "exllamav2")


def analyze(model: str, **kw):
    return hfvram.analyze(model, offline=True, projections=(), **kw)


# -- advice that holds when followed ------------------------------------------------------------------------------

MODELS = ["meta-llama/Llama-2-7b-hf", "meta-llama/Meta-Llama-3.1-70B", "Qwen/Qwen3-32B-FP8", "openai/gpt-oss-20b",
          "mistralai/Mixtral-8x7B-Instruct-v0.1", "google/gemma-2-9b-it", "Qwen/Qwen2.5-32B-Instruct-AWQ",
          "meta-llama/Meta-Llama-3.1-8B",
          # GGUF files, one of them MoE: llama.cpp's offload advice (--n-cpu-moe, --gpu-layers) is tried too
          "bartowski/Qwen_Qwen3-30B-A3B-GGUF:Q8_0", "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF:Q4_K_M"]
GPUS = ["RTX-4090", "L40S", "A100-80GB", "RTX-3090"]


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS),
       context=st.sampled_from([8192, 32768, 131072]), batch=st.sampled_from([1, 4]),
       headroom=st.sampled_from([None, "10%"]), util=st.sampled_from([None, 0.97]))
def test_every_suggestion_fits_when_followed(model, gpu, context, batch, headroom, util):
    base = dict(gpu=gpu, context=context, batch=batch, headroom=headroom, gpu_memory_utilization=util)
    a = analyze(model, **base)
    for name, est in a.estimates.items():
        for sug in est.suggestions:
            again = analyze(model, **{**base, **sug.settings}, frameworks=[name])
            assert again.estimates[name].fits is True, (model, name, base, sug.text)
        if est.max_context and est.fits is False:
            shorter = analyze(model, **{**base, "context": est.max_context}, frameworks=[name])
            assert shorter.estimates[name].fits is True, (model, name, base, est.max_context)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(model=st.sampled_from(["bartowski/Qwen_Qwen3-30B-A3B-GGUF:Q8_0",
                              "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF:Q4_K_M", "openai/gpt-oss-20b"]),
       framework=st.sampled_from(["llamacpp", "ollama", "lmstudio"]), gpu=st.sampled_from(["RTX-4090", "RTX-3070"]),
       context=st.sampled_from([None, 8192, 32768]), batch=st.sampled_from([1, 3]),
       ram=st.sampled_from([None, "32GiB", "96GiB"]), headroom=st.sampled_from([None, "10%"]),
       kv=st.sampled_from([{}, {"cache_type_k": "q8_0", "cache_type_v": "q8_0"}, {"no_kv_offload": True}]))
def test_llamacpp_family_suggestions_fit_when_followed(model, framework, gpu, context, batch, ram, headroom, kv):
    """llama.cpp and its Ollama / LM Studio profiles, with host RAM limits: every suggestion (partial offload,
    expert offload, cache type, context) passes when re-run with exactly its settings, host RAM included."""
    base = dict(gpu=gpu, context=context, batch=batch, ram=ram, headroom=headroom, frameworks=[framework], **kv)
    if model == "openai/gpt-oss-20b":
        base["quantize"] = "gguf:MXFP4_MOE"  # the profiles load GGUF only
    est = analyze(model, **base).estimates[framework]
    for sug in est.suggestions:
        again = analyze(model, **{**base, **sug.settings}).estimates[framework]
        assert again.fits is True, (model, framework, base, sug.text)
        if ram:
            assert again.extras["host_bytes"] <= hfvram.options.parse(ram=ram).engine["ram"]
    if est.max_context and est.fits is False:
        shorter = analyze(model, **{**base, "context": est.max_context}).estimates[framework]
        assert shorter.fits is True, (model, framework, base, est.max_context)


def test_headroom_advice_for_vllm_holds(cli):
    """check Qwen/Qwen3-32B-FP8 --gpu L40S -f vllm --context 32k --headroom 10%: vLLM's default 0.92 share of the
    GPU leaves less than 10% free, so it fails and says which utilisation keeps it within; that advice passes."""
    code, out, _ = cli(["check", "Qwen/Qwen3-32B-FP8", "--gpu", "L40S", "-f", "vllm", "--context", "32k",
                        "--headroom", "10%", "--offline", "--json"])
    row = json.loads(out)[0]
    assert code == 1 and row["status"] == "does-not-fit"
    assert "gpu_memory_utilization 0.92" in row["reason"]
    fix = row["suggestions"][0]["settings"]
    assert 0 < fix["gpu_memory_utilization"] < 0.9
    args = ["check", "Qwen/Qwen3-32B-FP8", "--gpu", "L40S", "-f", "vllm", "--headroom", "10%", "--offline"]
    for key, value in fix.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    if "context" not in fix:
        args += ["--context", "32k"]
    code, out, _ = cli(args)
    assert code == 0 and out.startswith("PASS vllm"), out


def test_vllm_verdict_states_its_own_budget(cli):
    code, out, _ = cli(["check", "meta-llama/Meta-Llama-3.1-8B", "--gpu", "L40S", "-f", "vllm", "--offline",
                        "--gpu-memory-utilization", "0.97", "--headroom", "5%"])
    # 0.97 x 44.39 GiB + the CUDA context leaves less than 5% free: never a PASS
    assert code == 1 and out.startswith("FAIL vllm")
    assert "gpu_memory_utilization 0.97" in out and "5% headroom" in out
    code, out, _ = cli(["check", "meta-llama/Meta-Llama-3.1-8B", "--gpu", "L40S", "-f", "vllm", "--offline"])
    assert code == 0 and "within its budget of" in out and "vLLM 0.33" in out


def test_a_model_that_does_not_fit_at_all_says_by_how_much():
    e = analyze("meta-llama/Meta-Llama-3.1-70B", gpu="RTX-4090", frameworks=["vllm"]).estimates["vllm"]
    assert e.fits is False and "more than vLLM's budget" in e.fit_reason and "GiB" in e.fit_reason
    hf = analyze("meta-llama/Meta-Llama-3.1-70B", gpu="RTX-4090", frameworks=["transformers"]).estimates
    assert "short" in hf["transformers"].fit_reason


# -- what an engine cannot run ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, framework, kw, words", [
    ("Qwen/Qwen2.5-7B-Instruct-AWQ", "llamacpp", {}, "cannot read a awq"),
    ("Qwen/Qwen2.5-7B-Instruct-AWQ", "exllamav2", {}, "not awq"),
    ("state-spaces/mamba-2.8b-hf", "exllamav2", {}, "Mamba"),
    ("facebook/bart-large-cnn", "exllamav2", {}, "decoder-only"),
    ("facebook/bart-large-cnn", "vllm", {}, "plugin"),
    ("openai/gpt-oss-20b", "exllamav2", {}, "GptOssForCausalLM"),
    ("meta-llama/Meta-Llama-3.1-8B", "vllm", {"kv_dtype": "q4_0"}, "no q4_0 KV cache"),
    ("meta-llama/Meta-Llama-3.1-8B", "trtllm", {"kv_dtype": "q4_0"}, "no q4_0 KV cache"),
    ("meta-llama/Meta-Llama-3.1-8B", "transformers", {"kv_dtype": "q4_0"}, "no q4_0 KV cache"),
    ("meta-llama/Meta-Llama-3.1-8B", "llamacpp", {"kv_dtype": "fp8"}, "no fp8 KV cache"),
    ("meta-llama/Meta-Llama-3.1-8B", "vllm", {"quantize": "exl2:4"}, "EXL2"),
    ("meta-llama/Meta-Llama-3.1-8B", "transformers", {"quantize": "gguf:Q4_K_M"}, "GGUF"),
    ("meta-llama/Meta-Llama-3.1-8B", "trtllm", {"kv_dtype": "fp8", "gpu": "A100-80GB"}, "SM 8.9"),
])
def test_unsupported_pairings_are_rows_that_say_so(model, framework, kw, words):
    kw = {"gpu": "H100", **kw}
    e = analyze(model, frameworks=[framework], **kw).estimates[framework]
    assert not e.supported and e.fits is False and e.per_gpu_bytes == 0
    assert any(words in r for r in e.unsupported), e.unsupported


def test_unsupported_is_a_failing_check_row(cli):
    code, out, _ = cli(["check", "Qwen/Qwen2.5-7B-Instruct-AWQ", "--gpu", "RTX-4090", "-f", "llamacpp,vllm",
                        "--offline"])
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("FAIL llamacpp") and "cannot run it" in lines[0]
    assert lines[1].startswith("PASS vllm")


def test_suggestions_never_advise_what_the_engine_cannot_do():
    a = analyze("meta-llama/Meta-Llama-3.1-70B", gpu="RTX-4090", context=32768)
    for name, est in a.estimates.items():
        for sug in est.suggestions:
            assert "q4_0" not in sug.text or name == "llamacpp"
            assert "exl2" not in sug.text or name == "exllamav2"
            assert "gguf" not in sug.text or name == "llamacpp"


# -- weights guessed from a config --------------------------------------------------------------------------------

def test_config_only_verdict_is_estimated_and_check_fails_it(cli, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                               "num_attention_heads": 32, "intermediate_size": 11008, "vocab_size": 32000}))
    code, out, _ = cli(["check", str(cfg), "--gpu", "H100", "-f", "vllm"])
    assert code == 1 and "weights estimated from the config" in out and "--allow-estimated" in out
    code, out, _ = cli(["check", str(cfg), "--gpu", "H100", "-f", "vllm", "--allow-estimated"])
    assert code == 0 and out.startswith("PASS") and "weights estimated" in out
    code, out, _ = cli(["check", str(cfg), "--gpu", "H100", "-f", "vllm", "--json", "--allow-estimated"])
    assert json.loads(out)[0]["estimated"] is True


# -- engine versions shown everywhere -----------------------------------------------------------------------------

def test_engine_version_in_text_json_and_markdown(cli):
    base = ["check", "meta-llama/Llama-2-7b-hf", "--gpu", "L40S", "--offline"]
    _, text, _ = cli(base)
    for label in ("Transformers 5.24", "vLLM 0.33", "TensorRT-LLM (PyTorch backend) 1.2", "llama.cpp 0c1e570",
                  "ExLlamaV2 0.3"):
        assert label in text
    _, md, _ = cli(base + ["--format", "markdown"])
    assert "| vLLM 0.33 |" in md
    rows = json.loads(cli(base + ["--json"])[1])
    assert rows[1]["engine_settings"]["gpu_memory_utilization"] == 0.92
    assert "gpu_memory_utilization" in rows[1]["engine_defaults"]
    _, show, _ = cli(["meta-llama/Llama-2-7b-hf", "--offline", "-f", "vllm"])
    assert "vLLM 0.33: gpu_memory_utilization 0.92*" in show.replace("\n", " ")


# -- every setting checked before any work ------------------------------------------------------------------------

BAD = [
    (["--vllm-version", "latest"], "--vllm-version"), (["--vllm-version", "abc"], "--vllm-version"),
    (["--vllm-version", "v0.11.0"], "--vllm-version"), (["--gpu-memory-utilization", "95"], "0.95 for 95%"),
    (["--n-ubatch", "0"], "--n-ubatch"), (["--gpu-mem", "0"], "--gpu-mem"), (["--gpu-layers", "-5"], "--gpu-layers"),
    (["--quantize", "exl2:9"], "2 to 8 bits"), (["--quantize", "exl2:1"], "2 to 8 bits"),
    (["--quantize", "exl2:-3"], "2 to 8 bits"), (["--gpu", "H100:2", "--tp", "4"], "has 2"),
    (["--quantize", "q4_k_m"], "did you mean gguf:Q4_K_M"), (["--headroom", "10"], "percentage (10%)"),
    (["--gpu", "Arc-A770"], "unknown GPU 'Arc-A770'"), (["--context", "1e20"], "number of tokens"),
    (["--context", "999999999"], "--context"), (["-f", "vlm"], "unknown framework 'vlm'"),
    (["--gpu", "L40S,H100"], "unknown GPU"), (["--max-memory", "lots"], "size"),
]


@pytest.mark.parametrize("args, words", BAD)
def test_bad_settings_one_line_exit_2_before_any_request(fake_hub, cli, args, words):
    for command in (["meta-llama/Llama-2-7b-hf"], ["check", "meta-llama/Llama-2-7b-hf", "--gpu-mem", "80GiB"]):
        fake_hub.reset()
        code, out, err = cli([*command, *args])
        assert code == 2 and err.count("\n") == 1 and words in err, (command, args, err)
        assert fake_hub.count() == 0


@pytest.mark.parametrize("args, words", [(["-f", "vlm"], "unknown framework"), (["--gpu", "Arc-A770"], "GPU"),
                                          (["--quantize", "q4_k_m"], "gguf:Q4_K_M")])
def test_scan_option_errors_are_usage_errors(fake_hub, cli, tmp_path, args, words):
    models = tmp_path / "m.txt"
    models.write_text("meta-llama/Llama-2-7b-hf\nQwen/Qwen3-8B\n")
    fake_hub.reset()
    code, out, err = cli(["scan", str(models), "--format", "jsonl", *args])
    assert code == 2 and out == "" and words in err and fake_hub.count() == 0


def test_tp_not_dividing_heads_is_a_usage_error(cli):
    code, _, err = cli(["meta-llama/Meta-Llama-3.1-70B", "--offline", "--tp", "3", "-f", "vllm"])
    assert code == 2 and "does not divide the 64 attention heads" in err and "try --tp 2" in err


def test_python_api_takes_what_the_cli_takes():
    a = analyze("meta-llama/Llama-2-7b-hf", context="32k", framework="vllm", gpu="L40S", headroom="10%",
                gpu_memory_utilization="0.85")
    assert list(a.estimates) == ["vllm"] and a.kv.context == 32768
    assert a.estimate_settings.headroom == 0.1
    for bad in ({"context": [1]}, {"contxt": 4096}, {"batch": "many"}, {"gpu": 3}, {"framework": 7},
                {"enforce_eager": "maybe"}):
        with pytest.raises(HfvramError):
            analyze("meta-llama/Llama-2-7b-hf", **bad)
    with pytest.raises(HfvramError, match="did you mean 'context'"):
        analyze("meta-llama/Llama-2-7b-hf", contxt=4096)


def test_json_and_units_on_every_printing_command(cli):
    for args in (["gpus", "--json"], ["snapshot", "--json"], ["engines", "--json"],
                 ["check", "meta-llama/Llama-2-7b-hf", "--gpu", "L40S", "--offline", "--json"]):
        code, out, _ = cli(args)
        assert code in (0, 1) and json.loads(out)
    code, out, _ = cli(["gpus", "--units", "GB"])
    assert code == 0 and " GB" in out
    code, out, _ = cli(["check", "meta-llama/Llama-2-7b-hf", "--gpu", "L40S", "--offline", "-f", "llamacpp",
                        "--units", "GB"])
    assert code == 0 and " GB of " in out
