"""`hfvram recommend`: the best setting per model and engine, and a command line that `hfvram check` passes.

The commands are run for real (in-process CLI), against the bundled snapshot (--offline) and against the fake Hub
with the real huggingface_hub client; `--gpu auto` runs on the fake NVML (tests/fake_nvml/pynvml.py).
"""

from __future__ import annotations

import json
import shlex

import pytest

import hfvram
from hfvram.estimate.fit import QUANT_OPTIONS
from hfvram.recommend import command, recommend

MiB = 1 << 20
L40S = {"name": "NVIDIA L40S", "total": 46068 * MiB, "reserved": 609 * MiB, "used": 0, "cc": [8, 9]}  # nvidia-smi -q


def check(cli, cmd: str) -> tuple[int, str, str]:
    argv = shlex.split(cmd)
    assert argv[:2] == ["hfvram", "check"]
    return cli(argv[1:])


def test_every_command_it_prints_passes_check(cli):
    code, out, err = cli(["recommend", "meta-llama/Llama-2-7b-hf", "Qwen/Qwen3-32B", "--gpu", "RTX-4090",
                          "--context", "32k", "--offline", "--json"])
    doc = json.loads(out)
    rows = doc["rows"]
    assert code == 0 and doc["schema"] == "hfvram-recommend/1" and len(rows) == 10
    commands = [r["command"] for r in rows if r["command"]]
    assert len(commands) >= 6
    for cmd in commands:
        code, out, err = check(cli, cmd)
        assert code == 0 and out.startswith("PASS"), (cmd, out, err)
    for r in rows:  # rows without a command say why
        assert r["command"] or r["reason"], r


def test_the_weights_are_the_most_precise_that_fit():
    # Llama-2-7B on a 12 GB RTX 3060 at 4K tokens: the fp16 checkpoint (12.6 GiB) cannot fit; each engine's first
    # fitting format in order of fidelity is the answer, and every format before it does not fit
    rows = recommend(["meta-llama/Llama-2-7b-hf"], {"gpu": "RTX-3060-12GB"}, offline=True)
    by = {r.framework: r for r in rows}
    for name, row in by.items():
        if row.status != "fits":
            continue
        ladder = [None] + QUANT_OPTIONS[name]
        assert row.quantize in ladder, (name, row.quantize)
        for earlier in ladder[:ladder.index(row.quantize)]:
            a = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, gpu="RTX-3060-12GB", frameworks=[name],
                               projections=(), quantize=earlier,
                               **{k: v for k, v in row.settings.items() if k in ("gpu_memory_utilization",
                                                                                "free_gpu_memory_fraction")})
            assert a.estimates[name].fits is not True, (name, earlier)
    assert by["llamacpp"].quantize == "gguf:Q8_0" and by["exllamav2"].quantize == "exl2:6.0"
    assert by["vllm"].quantize == "fp8"


def test_as_stored_when_it_fits():
    rows = recommend(["meta-llama/Llama-2-7b-hf"], {"gpu": "A100-80GB", "frameworks": ["vllm", "llamacpp"]},
                     offline=True)
    assert [(r.framework, r.status, r.quantize) for r in rows] == [("vllm", "fits", None), ("llamacpp", "fits", None)]
    assert rows[0].command == ("hfvram check meta-llama/Llama-2-7b-hf -f vllm --gpu A100-80GB --context 4k --offline")


def test_with_quantize_it_is_the_longest_context_that_fits():
    model = "meta-llama/Meta-Llama-3.1-8B"
    rows = recommend([model], {"gpu": "RTX-4090", "quantize": "gguf:Q4_K_M", "frameworks": ["llamacpp"]},
                     offline=True)
    (row,) = rows
    assert row.status == "fits" and row.quantize == "gguf:Q4_K_M"
    base = dict(offline=True, gpu="RTX-4090", quantize="gguf:Q4_K_M", frameworks=["llamacpp"], projections=())
    assert hfvram.analyze(model, context=row.context, **base).estimates["llamacpp"].fits is True
    max_ctx = hfvram.analyze(model, **base).facts.arch.max_context
    if row.context < max_ctx:  # one token more does not fit (or the model's own maximum was reached)
        assert hfvram.analyze(model, context=row.context + 1, **base).estimates["llamacpp"].fits is False
    assert row.context > 32768


def test_too_big_for_any_weights_tried_gives_the_longest_context_it_can():
    rows = recommend(["meta-llama/Llama-2-7b-hf"], {"gpu": "RTX-4090", "context": "128k",
                                                    "frameworks": ["llamacpp"]}, offline=True)
    (row,) = rows
    assert row.status == "shorter-context" and row.quantize == QUANT_OPTIONS["llamacpp"][-1]
    assert 0 < row.context < 128 * 1024 and "the longest context that fits" in row.reason


def test_engines_the_gpu_cannot_run_are_rows_that_say_so(cli):
    code, out, _ = cli(["recommend", "meta-llama/Llama-2-7b-hf", "--gpu", "m3max", "--offline", "--json"])
    rows = {r["framework"]: r for r in json.loads(out)["rows"]}
    assert code == 0
    assert rows["vllm"]["status"] == "unsupported" and "not Apple silicon (M3-Max-36GB)" in rows["vllm"]["reason"]
    assert rows["vllm"]["command"] is None
    assert rows["llamacpp"]["status"] == "fits" and "--gpu m3max" in rows["llamacpp"]["command"]


def test_gpu_auto_by_default_and_its_commands_pass_check_through_the_hub(fake_hub, fake_machine, cli, tmp_path):
    fake_machine(nvml={"devices": [L40S, L40S]})
    listing = tmp_path / "models.txt"
    listing.write_text("# a scan's list file\nQwen/Qwen2.5-7B-Instruct\n\nQwen/Qwen3-8B\n")
    code, out, err = cli(["recommend", "--from", str(listing), "-f", "vllm,llamacpp", "--context", "32k",
                          "--headroom", "10%", "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["gpu"] == {"name": "L40S", "count": 2, "usable_bytes": (46068 - 609) * MiB,
                                        "vendor": "nvidia"}
    assert "--gpu auto: 2 x L40S" in err
    assert [r["model"] for r in doc["rows"]] == ["Qwen/Qwen2.5-7B-Instruct"] * 2 + ["Qwen/Qwen3-8B"] * 2
    for r in doc["rows"]:
        assert r["status"] == "fits" and "--gpu auto" in r["command"] and "--headroom 10%" in r["command"]
        code, out, err = check(cli, r["command"])
        assert code == 0 and out.startswith("PASS"), (r["command"], out, err)


def test_terminal_table_and_exit_codes(cli):
    code, out, _ = cli(["recommend", "meta-llama/Llama-2-7b-hf", "--gpu", "RTX-4090", "-f", "llamacpp",
                        "--offline"])
    assert code == 0 and "llamacpp   fp16 (stored)" in out and "reproduce (each passes `hfvram check`)" in out
    assert "hfvram check meta-llama/Llama-2-7b-hf -f llamacpp --gpu RTX-4090 --context 4k --offline" in out
    # nothing fits at all: exit 1
    code, out, _ = cli(["recommend", "meta-llama/Meta-Llama-3.1-405B", "--gpu", "RTX-3060-12GB", "-f", "vllm",
                        "--offline", "--json"])
    assert code == 1 and json.loads(out)["rows"][0]["status"] == "does-not-fit"
    # a model that cannot be read: exit 2, the row says why
    code, out, _ = cli(["recommend", "no-such-org/no-such-model", "--gpu", "RTX-4090", "--offline", "--json"])
    assert code == 2 and json.loads(out)["rows"][0]["status"] == "error"


@pytest.mark.parametrize("args, words", [
    (["recommend", "--gpu", "RTX-4090"], "nothing to recommend for"),
    (["recommend", "meta-llama/Llama-2-7b-hf", "--gpu", "RTX-9999"], "unknown GPU"),
])
def test_usage_errors(cli, args, words):
    code, _, err = cli(args)
    assert code == 2 and words in err and err.count("\n") == 1


def test_command_renders_every_kind_of_setting():
    cmd = command("org/m", "llamacpp", {"gpu": "auto", "context": 5000, "flash_attn": False, "enforce_eager": True,
                                        "headroom": "10%", "quantize": "gguf:Q4_K_M", "kv_dtype": "q8_0"},
                  allow_estimated=True)
    assert cmd == ("hfvram check org/m -f llamacpp --gpu auto --headroom 10% --context 5000 --kv-dtype q8_0 "
                   "--quantize gguf:Q4_K_M --enforce-eager --no-flash-attn --allow-estimated")
