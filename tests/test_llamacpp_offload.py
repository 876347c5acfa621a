"""llama.cpp's offload question answered: cells by llama.cpp's own arithmetic, K and V cache types, --no-kv-offload,
--parallel and --kv-unified, -ngl and --n-cpu-moe placement, host RAM as a figure and a verdict, and Ollama / LM
Studio as profiles with their own defaults. Measured figures come from validation/cases-community-b.jsonl (read by
id, never retyped)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import hfvram

MiB = 1 << 20
GiB = 1 << 30
ROOT = Path(__file__).resolve().parents[1]
QWEN_MOE_Q8 = "bartowski/Qwen_Qwen3-30B-A3B-GGUF:Q8_0"
LLAMA70_Q4 = "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF:Q4_K_M"


def run(model, fw="llamacpp", **kw):
    return hfvram.analyze(model, offline=True, projections=(), frameworks=[fw], **kw).estimates[fw]


def case(case_id: str) -> dict:
    for line in (ROOT / "validation" / "cases-community-b.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == case_id:
            return row
    raise KeyError(case_id)


# -- cells ----------------------------------------------------------------------------------------------------------

def test_cells_per_stream_unified_and_swa():
    """gpt-oss-20b: 12 full and 12 sliding (128) layers, 8 KV heads x 64, f16: 2048 bytes per layer-cell."""
    one = run("openai/gpt-oss-20b", context=1000)
    assert one.components["kv_cache"] == 12 * 1024 * 2048 + 12 * 768 * 2048  # SWA PAD(min(1024, 128 + 512))
    # 4 sequences, one stream each (common.h kv_unified = false): n_ctx_seq = PAD(4096 / 4) = 1024, and each stream
    # keeps its own SWA window PAD(min(1024, 128 + 512)) = 768
    four = run("openai/gpt-oss-20b", context=1000, batch=4)
    assert (four.extras["n_ctx"], four.extras["n_ctx_seq"], four.extras["n_seq"]) == (4096, 1024, 4)
    assert four.components["kv_cache"] == 12 * 4096 * 2048 + 12 * 4 * 768 * 2048
    # unified: one stream of 4096 cells, the SWA cache sized for 4 windows: PAD(min(4096, 128 x 4 + 512)) = 1024
    uni = run("openai/gpt-oss-20b", context=1000, batch=4, kv_unified=True)
    assert uni.extras["n_ctx_seq"] == 4096 and uni.components["kv_cache"] == 12 * 4096 * 2048 + 12 * 1024 * 2048
    # --parallel gives the slots; --context stays per sequence
    slots = run("openai/gpt-oss-20b", context=1000, n_parallel=4)
    assert slots.components["kv_cache"] == four.components["kv_cache"]


def test_separate_k_and_v_cache_types():
    base = dict(context=8192)
    f16 = run("meta-llama/Meta-Llama-3.1-8B", **base).components["kv_cache"]
    assert f16 == 32 * 8192 * 1024 * 2 * 2
    k8 = run("meta-llama/Meta-Llama-3.1-8B", cache_type_k="q8_0", **base)
    assert k8.components["kv_cache"] == int(32 * 8192 * 1024 * (34 / 32 + 2))
    assert k8.engine["settings"]["cache_type_k"] == "q8_0" and k8.engine["settings"]["cache_type_v"] == "f16"
    both = run("meta-llama/Meta-Llama-3.1-8B", kv_dtype="q4_0", cache_type_v="q8_0", **base)  # -ctv overrides
    assert both.components["kv_cache"] == int(32 * 8192 * 1024 * (18 / 32 + 34 / 32))
    # MLA caches one latent: llama.cpp refuses different K and V types there
    mla = run("deepseek-ai/DeepSeek-V2-Lite", cache_type_k="q8_0")
    assert not mla.supported and "must match" in mla.unsupported[0]


def test_no_kv_offload_moves_cache_and_attention_to_host():
    on = run("meta-llama/Meta-Llama-3.1-8B", context=32768, flash_attn=False)
    off = run("meta-llama/Meta-Llama-3.1-8B", context=32768, flash_attn=False, no_kv_offload=True)
    assert off.components["kv_cache"] == 0
    assert off.extras["host_components"]["kv_cache"] == on.components["kv_cache"]
    # without flash attention the f32 scores dominate the GPU's compute buffer; they go with the cache
    assert off.components["compute"] < on.components["compute"] / 4
    assert off.extras["host_components"]["compute"] >= on.components["compute"]


def test_host_compute_buffer_matches_logs():
    """n_ubatch x (n_embd + KV cells attended) x 4 bytes: phi-3-mini at 4096 tokens, n_ubatch 256."""
    c = case("llamacpp-tgwui-phi3-mini-4k-q4km-c4096-hostcompute")
    e = run("microsoft/Phi-3-mini-4k-instruct", quantize="gguf:Q4_K_M", context=4096, n_ubatch=256, flash_attn=False)
    assert e.extras["host_components"]["compute"] == c["measured"]


# -- placement ------------------------------------------------------------------------------------------------------

def test_gpu_layers_count_the_output_layer_first():
    n = 80
    full = run(LLAMA70_Q4, context=4096)
    one = run(LLAMA70_Q4, context=4096, gpu_layers=1)
    # -ngl 1: only the output layer (src/llama-model.cpp i_gpu_start = n_layer + 1 - n_gpu_layers)
    assert one.components["kv_cache"] == 0 and 0 < one.components["weights"] < full.components["weights"] / n * 2
    forty = run(LLAMA70_Q4, context=4096, gpu_layers=41)
    assert forty.components["kv_cache"] == full.components["kv_cache"] * 40 // n
    assert forty.extras["host_components"]["kv_cache"] == full.components["kv_cache"] * 40 // n


def test_expert_offload_reproduces_the_gpt_oss_log():
    """gpt-oss-20b MXFP4 on an RTX 3070 with --n-cpu-moe 99 at 131072 tokens (validation ik822 case)."""
    ids = "llamacpp-ik822-gptoss20b-mxfp4-3070-ncpumoe99-c131072-"
    s = case(ids + "weights")["settings"]
    e = run("openai/gpt-oss-20b", quantize="gguf:MXFP4_MOE", gpu="RTX-3070", context=s["n_ctx"],
            n_cpu_moe=s["n_cpu_moe"], n_ubatch=s["n_ubatch"], flash_attn=True)
    assert abs(e.components["weights"] - case(ids + "weights")["measured"]) < 0.001 * case(ids + "weights")["measured"]
    assert e.components["kv_cache"] == case(ids + "kv-full")["measured"] + case(ids + "kv-swa")["measured"]
    host_compute = case(ids + "compute-host")["measured"]
    assert abs(e.extras["host_components"]["compute"] - host_compute) < 0.001 * host_compute
    # the GPU compute buffer holds a copy of the host experts for prompt batches: conservative, within 10%
    measured = case(ids + "compute")["measured"]
    assert measured <= e.components["compute"] <= 1.1 * measured
    # the experts of all 24 layers are in host RAM (llama.cpp prints the mmap'd span, 11.5 GB; the pages are less)
    assert 10 * GiB < e.extras["host_components"]["weights"] < case(ids + "host")["measured"]
    assert any("--cpu-moe" in n for n in e.notes)


def test_n_cpu_moe_moves_the_first_layers_experts():
    full = run(QWEN_MOE_Q8, context=4096)
    some = run(QWEN_MOE_Q8, context=4096, n_cpu_moe=12)
    moved = full.components["weights"] - some.components["weights"]
    assert moved > 0 and some.extras["host_components"]["weights"] - full.extras["host_components"]["weights"] == moved
    assert some.components["kv_cache"] == full.components["kv_cache"]  # attention stays on the GPU
    dense = run("meta-llama/Meta-Llama-3.1-8B", context=4096, n_cpu_moe=4)
    assert any("no routed experts" in n for n in dense.notes)


# -- host RAM verdict -------------------------------------------------------------------------------------------------

def test_ram_is_a_verdict():
    ok = run(LLAMA70_Q4, gpu="RTX-4090", context=4096, gpu_layers=30, ram="64GiB")
    assert ok.fits is True and ok.extras["ram_bytes"] == 64 * GiB
    short = run(LLAMA70_Q4, gpu="RTX-4090", context=4096, gpu_layers=30, ram="16GiB")
    assert short.fits is False and "host RAM" in short.fit_reason and "--ram" in short.fit_reason
    # the largest context respects both memories
    assert short.max_context is None
    # every suggestion respects the RAM limit too
    base = dict(gpu="RTX-4090", context=32768, ram="24GiB")
    e = run(QWEN_MOE_Q8, **base)
    assert e.suggestions
    for sug in e.suggestions:
        again = run(QWEN_MOE_Q8, **{**base, **sug.settings})
        assert again.fits is True and again.extras["host_bytes"] <= 24 * GiB, sug.text


def test_check_and_rows_say_the_host_ram(cli):
    args = [LLAMA70_Q4, "--gpu", "RTX-4090", "--context", "4k", "-f", "llamacpp", "--offline", "--gpu-layers", "30"]
    code, out, _ = cli(["check", *args, "--ram", "64GiB"])
    e = run(LLAMA70_Q4, gpu="RTX-4090", context=4096, gpu_layers=30, ram="64GiB")
    host = e.extras["host_bytes"]
    assert code == 0 and out.startswith("PASS") and out.rstrip().endswith(
        f"; host RAM {host / GiB:.2f} GiB of 64.00 GiB RAM"), out
    code, out, _ = cli(["check", *args])  # no --ram: the figure without a limit
    assert code == 0 and out.rstrip().endswith(f"; host RAM {host / GiB:.2f} GiB"), out
    code, out, _ = cli(["scan", "-", *args[1:], "--ram", "16GiB", "--format", "jsonl"], stdin=LLAMA70_Q4 + "\n")
    row = json.loads(out)
    assert code == 1 and row["status"] == "does-not-fit" and (row["host_bytes"], row["ram_bytes"]) == (host, 16 * GiB)


def test_gpu_auto_sets_the_ram_limit(fake_machine):
    meminfo = "MemTotal:       65755140 kB\nMemFree:         1034660 kB\nMemAvailable:   50307724 kB\n"
    fake_machine(nvml={"devices": [{"name": "NVIDIA GeForce RTX 4080 SUPER", "total": 16376 * MiB,
                                    "reserved": 434 * MiB, "used": 0, "cc": [8, 9]}]}, meminfo=meminfo)
    e = run(LLAMA70_Q4, gpu="auto", context=4096)
    assert e.extras["ram_bytes"] == 50307724 * 1024  # MemAvailable
    e = run(LLAMA70_Q4, gpu="auto", context=4096, ram="8GiB")  # --ram wins
    assert e.extras["ram_bytes"] == 8 * GiB


# -- suggestions -------------------------------------------------------------------------------------------------------

def test_offload_suggestions_fit_and_say_the_host_ram(cli):
    e = run(QWEN_MOE_Q8, gpu="RTX-4090", context=32768)
    texts = [s.text for s in e.suggestions]
    moe = next(s for s in e.suggestions if "n_cpu_moe" in s.settings)
    layers = next(s for s in e.suggestions if "gpu_layers" in s.settings)
    assert "GiB of host RAM" in moe.text and "GiB of host RAM" in layers.text, texts
    # the largest GPU share: one layer's experts fewer on the CPU no longer fits
    k = moe.settings["n_cpu_moe"]
    assert run(QWEN_MOE_Q8, gpu="RTX-4090", context=32768, n_cpu_moe=k).fits is True
    assert run(QWEN_MOE_Q8, gpu="RTX-4090", context=32768, n_cpu_moe=k - 1).fits is False
    n = layers.settings["gpu_layers"]
    assert run(QWEN_MOE_Q8, gpu="RTX-4090", context=32768, gpu_layers=n + 1).fits is False
    # re-run as printed, through the CLI: the flags in the text pass `hfvram check`
    for sug in (moe, layers):
        flags = re.match(r"fits with (.*?) \(", sug.text).group(1).split()
        code, out, _ = cli(["check", QWEN_MOE_Q8, "--gpu", "RTX-4090", "--context", "32k", "-f", "llamacpp",
                            "--offline", *flags])
        assert code == 0 and out.startswith("PASS"), (sug.text, out)


def test_cpu_moe_flag(cli):
    code, out, _ = cli(["check", QWEN_MOE_Q8, "--gpu", "RTX-4090", "--context", "32k", "-f", "llamacpp",
                        "--offline", "--cpu-moe", "--json"])
    row = json.loads(out)[0]
    assert code == 0 and row["status"] == "ok"
    code, _, err = cli([QWEN_MOE_Q8, "--offline", "--cpu-moe", "--n-cpu-moe", "3"])
    assert code == 2 and "give one" in err
    code, _, err = cli([QWEN_MOE_Q8, "--offline", "--cache-type-k", "q3_k"])
    assert code == 2 and "--cache-type-k" in err


# -- Ollama and LM Studio ---------------------------------------------------------------------------------------------

def test_profiles_load_gguf_only():
    for fw in ("ollama", "lmstudio"):
        e = run("meta-llama/Meta-Llama-3.1-8B", fw, gpu="RTX-4090")
        assert not e.supported and "GGUF files only" in e.unsupported[0]
        q = run("meta-llama/Meta-Llama-3.1-8B", fw, gpu="RTX-4090", quantize="gguf:Q4_K_M")
        assert q.supported and q.fits is True
        assert q.engine["profile"] == fw and q.extras["profile"] == fw


def test_ollama_defaults():
    # the default num_ctx by the GPU's memory (server/routes.go): 32768 on a 24 GB card, 4096 below 23 GiB, the
    # model's own maximum (gpt-oss: 131072) on an 80 GB one; without a GPU the lowest tier
    assert run(LLAMA70_Q4, "ollama", gpu="RTX-4090").extras["n_ctx"] == 32768
    assert run(LLAMA70_Q4, "ollama", gpu="RTX-4080").extras["n_ctx"] == 4096
    assert run("openai/gpt-oss-20b", "ollama", gpu="H100", quantize="gguf:MXFP4_MOE").extras["n_ctx"] == 131072
    assert run(LLAMA70_Q4, "ollama").extras["n_ctx"] == 4096
    # --context replaces it; -c num_ctx x parallel with one stream per slot (no --kv-unified)
    two = run(LLAMA70_Q4, "ollama", context=8192, batch=2)
    assert (two.extras["n_ctx"], two.extras["n_ctx_seq"], two.extras["kv_unified"]) == (16384, 8192, False)
    # -b/-ub by the context (server/sched.go): 2048 above 32768 tokens when the memory has room
    big = run("meta-llama/Meta-Llama-3.1-8B", "ollama", quantize="gguf:Q4_K_M", gpu="H100", context=65536)
    assert big.extras["n_ubatch"] == 2048
    assert run("meta-llama/Meta-Llama-3.1-8B", "ollama", quantize="gguf:Q4_K_M", context=2048).extras["n_ubatch"] == 512


def test_ollama_keeps_a_gigabyte_free_and_places_layers_itself():
    plain = run(QWEN_MOE_Q8, "llamacpp", gpu="RTX-4090", context=32768)
    ollama = run(QWEN_MOE_Q8, "ollama", gpu="RTX-4090", context=32768)
    assert plain.per_gpu_bytes == ollama.per_gpu_bytes
    assert ollama.headroom_bytes == plain.headroom_bytes - GiB  # llama-server --fit keeps 1024 MiB free
    placed = ollama.extras["auto_placement"]
    assert placed["n_cpu_moe"] > 0 and any("does not fail to load" in n for n in ollama.notes)
    # Ollama has no expert setting: only num_gpu (-ngl) is suggested
    assert all("n_cpu_moe" not in s.settings for s in ollama.suggestions)
    assert any("num_gpu" in s.text for s in ollama.suggestions)


def test_lmstudio_defaults():
    e = run("openai/gpt-oss-20b", "lmstudio", quantize="gguf:MXFP4_MOE")
    # contextLength 2048, 4 slots sharing one unified cache: SWA PAD(min(2048, 128 x 4 + 512)) = 1024
    assert (e.extras["n_ctx"], e.extras["n_seq"], e.extras["kv_unified"]) == (2048, 4, True)
    assert e.components["kv_cache"] == 12 * 2048 * 2048 + 12 * 1024 * 2048
    assert e.extras["flash_attn"] is False
    # keepModelInMemory: the GPU's weights stay in RAM as well
    llama = run("openai/gpt-oss-20b", "llamacpp", quantize="gguf:MXFP4_MOE", context=2048)
    assert e.extras["host_components"]["weights"] - llama.extras["host_components"]["weights"] == \
        e.components["weights"]
    # its flash attention is off by default, so a quantized V cache does not load
    q = run("openai/gpt-oss-20b", "lmstudio", quantize="gguf:MXFP4_MOE", kv_dtype="q8_0")
    assert not q.supported and "flash attention" in q.unsupported[0]
    assert run("openai/gpt-oss-20b", "lmstudio", quantize="gguf:MXFP4_MOE", kv_dtype="q8_0",
               flash_attn=True).supported


def test_profiles_through_the_cli(cli):
    code, out, _ = cli([QWEN_MOE_Q8, "--offline", "--gpu", "RTX-4090", "-f", "llamacpp,ollama,lmstudio", "--json"])
    d = json.loads(out)
    assert set(d["estimates"]) == {"llamacpp", "ollama", "lmstudio"}
    assert d["estimates"]["ollama"]["engine"]["label"] == "Ollama"
    assert "0.32.15" in d["estimates"]["ollama"]["engine"]["version"]
    import jsonschema

    schema = json.loads((ROOT / "hfvram" / "data" / "schema.json").read_text())
    jsonschema.validate(d, schema)
    code, out, _ = cli([QWEN_MOE_Q8, "--offline", "--gpu", "RTX-4090", "-f", "ollama"], )
    assert code == 0 and "Ollama 0.32.15" in out.replace("\n", " ") and "host RAM" in out
    code, out, _ = cli(["engines", "--json"])
    rows = {r["engine"]: r for r in json.loads(out)}
    assert rows["ollama"]["architectures"] == rows["llamacpp"]["architectures"]
    assert "GGUF only" in rows["lmstudio"]["label"]


@pytest.mark.parametrize("fw", ["llamacpp", "ollama", "lmstudio"])
def test_listing_shows_the_profiles(fw):
    listing = hfvram.list_quants("bartowski/Qwen_Qwen3-30B-A3B-GGUF", offline=True, gpu="RTX-4090",
                                 frameworks=[fw])
    d = listing.to_dict()
    assert all(it["analysis"]["estimates"][fw]["supported"] for it in d["items"])
