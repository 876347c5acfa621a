"""Engine-log parsers (hfvram.logs): every log excerpt in validation/ yields its case's measured figure, engines are
told apart, settings are read as the cases record them, and out-of-memory messages as the libraries print them.

The out-of-memory and SGLang lines below are copies published in public repositories, found with the search tool's
string index (its ids given, as validation/NOTES-community-*.md cite them); nothing here is made up.
"""

from __future__ import annotations

import json

import pytest

from hfvram import logs
from hfvram.accuracy import load_cases
from hfvram.errors import UsageError
from hfvram.units import GiB, MiB


def excerpt_cases() -> list[dict]:
    return [c for c in load_cases() if c.get("log_excerpt")]


def test_every_excerpt_in_validation_yields_its_measured_figure():
    """The excerpt is the ground truth: the parser, narrowed to the case's quoted line, its component_detail and its
    per_gpu, must print exactly the case's `measured` (bytes as printed x unit, rounded)."""
    cases = excerpt_cases()
    assert len(cases) >= 250  # 264 when written (cases-community-a/-b)
    assert {c["framework"] for c in cases} >= {"vllm", "llamacpp", "trtllm"}
    wrong = []
    for case in cases:
        reading = logs.case_reading(case)
        if not reading.agrees(case["measured"]):
            wrong.append(f"{case['id']}: measured {case['measured']}, excerpt {reading.value} ({reading.problem})")
    assert not wrong, "\n".join(wrong)


def test_a_wrong_measured_value_or_quote_is_caught():
    case = next(c for c in excerpt_cases() if c["id"] == "vllm-mlopskol-qwen3-30b-a3b-bf16-h100-nontorch")
    reading = logs.case_reading(case)
    assert reading.value == case["measured"] == 75161928  # "0.07 GiB for non-torch memory"
    assert not reading.agrees(case["measured"] * 1.01)
    bad = dict(case, quote="INFO 06-16 14:14:04 [gpu_worker.py:391] a line the excerpt never printed")
    assert logs.case_reading(bad).value is None and "quoted line" in logs.case_reading(bad).problem
    swa = next(c for c in excerpt_cases() if c["id"] == "llamacpp-940m-gemma3-1b-q4km-ngl14-c1536-kv-swa")
    assert logs.case_reading(swa).figure.detail == "swa_kv"
    assert logs.case_reading(dict(swa, component_detail="non_swa_kv")).value is None


def test_each_excerpt_is_recognised_as_its_engines_log():
    seen = {}
    for case in excerpt_cases():
        seen.setdefault(logs.case_text(case), case["framework"])
    assert len(seen) >= 60
    wrong = {text[:60]: fw for text, fw in seen.items() if logs.detect(text).name != fw}
    assert not wrong


# Settings a log prints that the cases also record, under the same name and meaning. (Cases record the weight
# format as `dtype` and the -ngl flag as `n_gpu_layers`; the logs print the activation dtype and the layers actually
# offloaded, so those two are not compared.)
SETTINGS = {"vllm": ("tp", "pp", "max_model_len", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens",
                     "enforce_eager", "kv_dtype"),
            "llamacpp": ("n_ctx", "n_batch", "n_ubatch", "flash_attn", "cache_type_k", "cache_type_v", "n_seq_max"),
            "trtllm": ("max_num_tokens", "tokens_per_block", "kv_cache_free_gpu_mem_fraction", "backend")}


def test_settings_read_from_the_excerpts_match_the_cases():
    compared, wrong = 0, []
    seen = set()
    for case in excerpt_cases():
        text = logs.case_text(case)
        if text in seen:
            continue
        seen.add(text)
        read = logs.parse(text, case["framework"]).settings
        for key in SETTINGS[case["framework"]]:
            if key in read and case["settings"].get(key) is not None:
                compared += 1
                if str(read[key]).lower() != str(case["settings"][key]).lower():
                    wrong.append(f"{case['id']}: {key} {read[key]!r} in the log, {case['settings'][key]!r} in the case")
    assert compared >= 300 and not wrong, wrong


def test_vllm_v1_figures_and_settings():
    case = next(c for c in excerpt_cases() if c["id"] == "vllm-mlopskol-qwen3-30b-a3b-bf16-h100-weights")
    log = logs.parse(case["log_excerpt"])
    assert log.engine == "vllm" and log.version == "0.10.2" and log.model == "Qwen/Qwen3-30B-A3B-Instruct-2507"
    assert log.gpu_total_bytes == round(79.18 * GiB)  # "Free memory on device (78.57/79.18 GiB) on startup"
    assert log.settings["gpu_memory_utilization"] == 0.9 and log.settings["budget_bytes"] == round(71.26 * GiB)
    assert log.settings["max_model_len"] == 6144 and log.settings["max_num_batched_tokens"] == 8192
    assert log.first("kv_tokens").value == 94784 and log.first("max_concurrency").value == 15.43
    assert log.first("kv_cache_bytes", "exact").value == 9318930329  # "Current kv cache memory in use is ... bytes"


def test_vllm_v0_blocks_and_gb_weights():
    case = next(c for c in excerpt_cases() if c["framework"] == "vllm" and c["quantity"] == "gpu_blocks")
    log = logs.parse(case["log_excerpt"], "vllm")
    assert log.settings.get("engine_generation") == "V0"
    assert log.first("gpu_blocks").value == case["measured"]


def test_llamacpp_devices_buffers_and_sliding_window_caches():
    case = next(c for c in excerpt_cases() if c["id"] == "llamacpp-ik822-gptoss20b-mxfp4-3070-ncpumoe99-c131072-weights")
    log = logs.parse(case["log_excerpt"])
    assert log.engine == "llamacpp"
    kv = {f.detail: f.value for f in log.get("kv_cache_bytes") if f.device == "CUDA0"}
    assert kv == {"non_swa_kv": 3072 * MiB, "swa_kv": 18 * MiB}
    host = {f.detail: f.value for f in log.get("host_bytes", host=True)}
    assert host["cpu_mapped_model_buffer"] == round(10949.33 * MiB)
    assert host["cuda_host_compute_buffer"] == round(263.15 * MiB)
    assert log.settings["n_ctx"] == 131072 and log.settings["n_gpu_layers"] == 25


def test_llamacpp_multi_device_totals():
    case = next(c for c in excerpt_cases() if c["id"] == "llamacpp-ik394-deepseek-v3-0324-udq2kxl-4gpu-c16384-kv-total")
    log = logs.parse(case["log_excerpt"])
    per_device = sum(f.value for f in log.get("kv_cache_bytes") if f.device)
    total = log.first("kv_cache_bytes", "kv_total_all_devices").value
    assert per_device == total == (510 + 408 + 408 + 748) * MiB
    assert [d["device"] for d in log.devices] == ["CUDA0", "CUDA1", "CUDA2", "CUDA3"]
    assert log.settings["override_tensor"]  # -ot experts placement, read from the command line


def test_trtllm_engine_and_pytorch_backends():
    engine = next(c for c in excerpt_cases() if c["id"] == "trtllm-suite012-llama2-7b-fp8-weights")
    log = logs.parse(engine["log_excerpt"])
    assert log.engine == "trtllm" and log.settings["backend"] == "tensorrt"
    assert log.gpu_total_bytes == round(79.10 * GiB) and log.settings["free_before_kv_bytes"] == round(63.62 * GiB)
    assert {f.detail for f in log.get("runtime_buffer_bytes")} == {"execution_context", "runtime_buffers", "decoder"}
    pyt = next(c for c in excerpt_cases() if c["id"] == "trtllm-spark-gptoss120b-pyt-weights")
    log = logs.parse(pyt["log_excerpt"])
    assert log.settings["backend"] == "pytorch" and log.settings["kv_bytes_per_token"] == 73728
    pools = log.get("kv_cache_bytes")  # the temporary profiling pool first, then the real one
    assert [f.detail for f in pools] == ["profiling_pool", None] and pools[-1].value == round(5.95 * GiB)


def test_a_wrapped_trtllm_line_is_joined():
    text = ("[TensorRT-LLM][INFO] [MemUsageChange] Allocated 9.06 GiB for max tokens in paged\n"
            "  KV cache (422048).\n")  # as a documentation page wraps it (case trtllm-lm7-smollm2-135m-kv)
    log = logs.parse(text)
    assert log.first("kv_tokens").value == 422048 and log.first("kv_cache_bytes").value == round(9.06 * GiB)


# -- out of memory -------------------------------------------------------------------------------------------------

def test_pytorch_out_of_memory_messages():
    # PyTorch >= 2.1, as a PyTorch memory-management page quotes it (find_string id 70275235651)
    new = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.15 GiB. GPU 0 has a total capacity of "
           "39.56 GiB of which 6.80 GiB is free. Including non-PyTorch memory, this process has 36.61 GiB memory in "
           "use. Of the allocated memory 31.66 GiB is allocated by PyTorch, and 4.11 GiB is reserved by PyTorch but "
           "unallocated. If reserved but unallocated memory is large try setting "
           "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.")
    oom = logs.parse("INFO vLLM API server version 0.11.0\n" + new).oom
    assert oom.kind == "cuda_oom" and oom.tried_bytes == round(3.15 * GiB) and oom.total_bytes == round(39.56 * GiB)
    assert oom.free_bytes == round(6.80 * GiB) and oom.process_bytes == round(36.61 * GiB)
    assert oom.allocated_bytes == round(31.66 * GiB) and oom.reserved_unallocated_bytes == round(4.11 * GiB)
    # wrapped over lines, with another process named (find_string id 51936356176)
    wrapped = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.16 GiB.\n"
               "GPU 0 has a total capacity of 31.36 GiB of which 471.69 MiB is free.\n"
               "Including non-PyTorch memory, this process has 16.63 GiB memory in use.\n"
               "Process 19239 has 14.26 GiB memory in use.\n")
    oom = logs.parse("Available KV cache memory: 1.00 GiB\n" + wrapped, "vllm").oom
    assert oom.free_bytes == round(471.69 * MiB) and oom.process_bytes == round(16.63 * GiB)
    # PyTorch < 2.1 (find_string id 5175656359)
    old = ("RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 4; 31.75 GiB total capacity; 30.29 GiB "
           "already allocated; 3.75 MiB free; 30.40 GiB reserved in total by PyTorch)")
    oom = logs.parse(old, "vllm").oom
    assert oom.tried_bytes == 20 * MiB and oom.allocated_bytes == round(30.29 * GiB) and oom.device == "GPU 4"


def test_vllm_kv_cache_refusals():
    # v1/core/kv_cache_utils.py, wrapped as a README quotes it (find_string id 57574170897)
    text = ("ValueError: To serve at least one request with the model's max seq len (131072),\n"
            "52.66 GiB KV cache is needed, which is larger than the available KV cache memory (23.37 GiB).\n"
            "Estimated maximum model length is 58148.\n")
    oom = logs.parse(text).oom
    assert (oom.kind, oom.max_model_len, oom.estimated_max_len) == ("kv_cache_too_small", 131072, 58148)
    assert oom.needed_bytes == round(52.66 * GiB) and oom.available_bytes == round(23.37 * GiB)
    # the older spelling with "models's" and a parenthesis (find_string id 53780153125)
    text = ("To serve at least one request with the models's max seq len (65536), (7.0 GiB KV cache is needed, which "
            "is larger than the available KV cache memory (2.39 GiB). Based on the available memory, the estimated "
            "maximum model length is 22336.")
    oom = logs.parse(text, "vllm").oom
    assert oom.needed_bytes == 7 * GiB and oom.estimated_max_len == 22336


def test_llamacpp_and_trtllm_allocation_failures():
    # llama.cpp via a wrapper's error output (find_string id 69243352551)
    text = ("E ggml_backend_cuda_buffer_type_alloc_buffer: allocating 13285.50 MiB on device 0: cudaMalloc failed: "
            "out of memory\nE llama_init_from_model: failed to initialize the context: failed to allocate buffer for "
            "kv cache\n")
    oom = logs.parse(text).oom
    assert oom.tried_bytes == round(13285.50 * MiB) and oom.device == "CUDA0" and oom.what == "the KV cache"
    # (find_string id 61944835671): the weights did not fit
    text = ("ggml_backend_cuda_buffer_type_alloc_buffer: allocating 590.07 MiB on device 0:\n"
            "    cudaMalloc failed: out of memory\n"
            "llama_model_load: error loading model: unable to allocate CUDA0 buffer\n")
    oom = logs.parse(text, "llamacpp").oom
    assert oom is not None and oom.what == "model weights"
    # TensorRT-LLM's check() (find_string id 71322705288)
    text = ("[TensorRT-LLM][INFO] Memory usage when calculating max tokens in paged kv cache: total: 5.67 GiB, "
            "available: 0.03 GiB\nRuntimeError: [TensorRT-LLM][ERROR] CUDA runtime error in ::cudaMalloc(ptr, n): "
            "out of memory\n")
    log = logs.parse(text)
    assert log.engine == "trtllm" and log.oom.kind == "cuda_oom" and log.gpu_total_bytes == round(5.67 * GiB)


def test_sglang_lines():
    # an SGLang server log as a deployment note quotes it (find_string id 53378181608)
    text = ("[2026-03-11 13:53:21 TP0] Load weight end. elapsed=23.18 s, type=Glm4MoeLiteForCausalLM, avail "
            "mem=32.02 GB, mem usage=28.79 GB.\n"
            "[2026-03-11 13:53:23 TP0] KV Cache is allocated. #tokens: 383872, KV size: 19.36 GB\n"
            "[2026-03-11 13:53:32 TP0] Capture npu graph end. Time elapsed: 8.04 s. mem usage=0.80 GB. avail "
            "mem=10.30 GB.\n")
    log = logs.parse(text)
    assert log.engine == "sglang"
    assert log.first("weights_bytes").value == round(28.79 * GiB) and log.first("kv_tokens").value == 383872
    assert log.first("kv_cache_bytes").value == round(19.36 * GiB) and log.first("weights_bytes").device == "TP0"


def test_ollamas_own_offload_plan():
    """Ollama prints its plan before llama.cpp's lines; its figures are estimates, kept apart from the measured
    buffers (the line as a README quotes it, find_string id 37039760191)."""
    text = ('time=2024-08-14T16:27:00.222+08:00 level=INFO source=memory.go:309 msg="offload to metal" '
            'layers.requested=-1 layers.model=29 layers.offload=29 layers.split="" memory.available="[21.3 GiB]" '
            'memory.required.full="5.4 GiB" memory.required.partial="5.4 GiB" memory.required.kv="448.0 MiB" '
            'memory.required.allocations="[5.4 GiB]" memory.weights.total="3.9 GiB" memory.weights.repeating="3.4 '
            'GiB" memory.weights.nonrepeating="426.4 MiB" memory.graph.full="478.0 MiB" memory.graph.partial="478.0 '
            'MiB"\n')
    log = logs.parse(text)
    assert log.engine == "llamacpp" and not log.figures
    est = log.settings["ollama_estimate"]
    assert est["memory.required.kv"] == 448 * MiB and est["memory.weights.total"] == round(3.9 * GiB)
    assert log.settings["n_gpu_layers"] == 29 and log.settings["ollama_library"] == "metal"


def test_not_a_log_is_a_usage_error():
    with pytest.raises(UsageError, match="not a log"):
        logs.parse("hello\nworld\n")
    with pytest.raises(UsageError, match="--engine must be one of"):
        logs.parse("x", engine="ollama")


# -- a pasted log becomes cases ------------------------------------------------------------------------------------

def test_a_pasted_log_becomes_the_cases_that_were_typed_by_hand():
    """cases_from_log over a community excerpt yields, for every quantity its hand-made cases recorded, the same
    measured figure from the same line."""
    mine = [c for c in excerpt_cases() if c["id"].startswith("vllm-mlopskol-qwen3-30b-a3b-bf16-h100-")]
    assert len(mine) >= 7
    rows = logs.cases_from_log(mine[0]["log_excerpt"], source=mine[0]["source"])
    for case in mine:
        match = [r for r in rows if r["quantity"] == case["quantity"] and r["measured"] == case["measured"]]
        assert match, case["id"]
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["framework"] == "vllm" and r["framework_version"] == "0.10.2" for r in rows)
    assert rows[0]["settings"]["max_model_len"] == 6144 and rows[0]["usable"] is None


def test_module_command_prints_cases(tmp_path, capsys):
    from hfvram.logs.__main__ import main

    case = next(c for c in excerpt_cases() if c["id"] == "trtllm-bench3-llama3-8b-pyt-h200-weights")
    path = tmp_path / "trt.log"
    path.write_text(case["log_excerpt"])
    assert main([str(path), "--cases", "--source", "test"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(r["quantity"] == "weights_bytes" and r["measured"] == case["measured"] for r in rows)
    assert main([str(tmp_path / "missing.log")]) == 2
