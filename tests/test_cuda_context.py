"""The CUDA context by GPU (hfvram.estimate.base.cuda_context_bytes): local memory for every resident thread, plus the
kernels a torch process loads; the catalogue's SM counts it rests on; what the estimators count with and without a
GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hfvram
from hfvram.estimate.base import (CONTEXT_BYTES_PER_THREAD, CUDA_CONTEXT_BYTES, H200_BARE_CONTEXT_BYTES,
                                  TORCH_KERNEL_BYTES, Settings, cuda_context_bytes, holding_out)
from hfvram.gpus import CATALOG, RESIDENT_THREADS_PER_SM, GPUChoice, catalog, find

MiB = 1 << 20


def on(name: str, count: int = 1) -> Settings:
    return Settings(gpu=GPUChoice(find(name), count))


def test_every_nvidia_card_has_a_sourced_sm_count_and_a_known_thread_limit():
    entries = [e for e in json.loads(CATALOG.read_text()) if e["vendor"] == "nvidia"]
    # no source found for these three (GPUS.md, "SM counts"): they keep the 400 MiB figure
    assert sorted(e["name"] for e in entries if "sms" not in e) == ["A10G", "B300", "GH200-144GB"]
    assert cuda_context_bytes(on("A10G")) == CUDA_CONTEXT_BYTES
    for e in (e for e in entries if "sms" in e):
        assert isinstance(e.get("sms"), int) and 10 <= e["sms"] <= 200, e["name"]
        assert e.get("sms_source") and e.get("sms_quote") and str(e["sms"]) in e["sms_quote"], e["name"]
        assert e["compute_capability"] in RESIDENT_THREADS_PER_SM, e["name"]
    # the cards whose published bare contexts the model rests on
    sms = {g.name: g.sms for g in catalog()}
    assert (sms["RTX-4060-Ti-16GB"], sms["RTX-3090"], sms["RTX-6000-Ada"], sms["RTX-PRO-6000-Blackwell"],
            sms["B200"], sms["H200"]) == (34, 82, 142, 188, 148, 132)


def test_the_model_reproduces_the_published_bare_contexts():
    # validation/NOTES-cuda-context.md: MiB measured with nothing but a context, CUDA 12+, lazy loading
    published = {"RTX-4060-Ti-16GB": 107, "RTX-3090": 256, "RTX-6000-Ada": 426, "RTX-PRO-6000-Blackwell": 555,
                 "B200": 612}
    for name, mib in published.items():
        got = cuda_context_bytes(on(name)) / MiB
        assert abs(got / mib - 1) < 0.05, (name, got, mib)
    # ~2,080 bytes a thread (the median over the five sources, our H200 among them)
    assert 2040 < CONTEXT_BYTES_PER_THREAD() < 2150


def test_a_torch_process_adds_its_kernels_and_an_unknown_gpu_keeps_the_old_figure():
    h200 = on("H200")
    bare = 132 * 2048 * CONTEXT_BYTES_PER_THREAD()
    assert cuda_context_bytes(h200) == int(bare)
    # our H200 runs: 678-788 MiB outside torch's allocator, median 706; the model: the fitted bare context (537 MiB,
    # the six sources' median a thread) and the kernels (188 MiB, measured)
    assert 700 * MiB < cuda_context_bytes(h200, torch=True) < 740 * MiB
    assert cuda_context_bytes(Settings()) == cuda_context_bytes(Settings(), torch=True) == CUDA_CONTEXT_BYTES
    # a card grows the context with its SMs: an RTX 3090 holds less than the 400 MiB assumed, an H100 more
    assert cuda_context_bytes(on("RTX-3090")) < CUDA_CONTEXT_BYTES < cuda_context_bytes(on("H100-SXM"))
    # held out (the H200 runs are the kernel term's only source), no kernel term is assumed
    with holding_out("hfvram"):
        assert TORCH_KERNEL_BYTES() == 0
        assert cuda_context_bytes(h200, torch=True) == int(132 * 2048 * CONTEXT_BYTES_PER_THREAD())


@pytest.mark.parametrize("fw, torch", [("transformers", True), ("exllamav2", True), ("llamacpp", False)])
def test_the_engines_count_the_gpus_context(fw, torch):
    model = "meta-llama/Llama-2-7b-hf"
    kw = {"exllamav2": {"quantize": "exl2:4.0"}, "llamacpp": {"quantize": "gguf:Q4_K_M"}}.get(fw, {})
    big = hfvram.analyze(model, offline=True, frameworks=[fw], projections=(), gpu="H100-SXM", **kw).estimates[fw]
    small = hfvram.analyze(model, offline=True, frameworks=[fw], projections=(), gpu="RTX-3090", **kw).estimates[fw]
    none = hfvram.analyze(model, offline=True, frameworks=[fw], projections=(), **kw).estimates[fw]
    assert big.components["cuda_context"] == cuda_context_bytes(on("H100-SXM"), torch=torch)
    assert small.components["cuda_context"] == cuda_context_bytes(on("RTX-3090"), torch=torch)
    assert none.components["cuda_context"] == CUDA_CONTEXT_BYTES
    gap = big.components["cuda_context"] - small.components["cuda_context"]
    assert gap == pytest.approx((132 * 2048 - 82 * 1536) * CONTEXT_BYTES_PER_THREAD(), abs=2)


def test_the_json_document_names_the_gpus_sm_count():
    d = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, frameworks=["transformers"], projections=(),
                       gpu="L40S").to_dict()
    assert d["gpu"]["sms"] == 142
    d = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, frameworks=["transformers"], projections=(),
                       gpu="A10G").to_dict()
    assert d["gpu"]["sms"] is None and d["estimates"]["transformers"]["components"]["cuda_context"] == CUDA_CONTEXT_BYTES


def test_a_gpu_without_an_sm_count_says_the_context_is_a_guess():
    def notes(**kw):
        a = hfvram.analyze("meta-llama/Llama-2-7b-hf", offline=True, frameworks=["transformers", "vllm"],
                           projections=(), **kw)
        return {n: [x for x in e.notes if "CUDA context is counted as 400 MiB" in x] for n, e in a.estimates.items()}

    said = notes(gpu="A10G")
    assert len(said["transformers"]) == 1 and "A10G's SM count is not known" in said["transformers"][0]
    assert said["vllm"] == []  # vLLM's own figures do not use it
    assert notes(gpu="L40S")["transformers"] == []  # a known count: nothing to say
    assert notes()["transformers"] == []  # no GPU: no verdict to qualify
    assert len(notes(gpu_mem="24GiB")["transformers"]) == 1  # a GPU known only by its memory


def test_the_torch_kernel_term_is_what_our_h200_rows_hold_outside_the_allocator():
    import statistics

    from hfvram.estimate.base import H200_OUTSIDE_ALLOCATOR_BYTES

    rows = [json.loads(line) for line in (Path(__file__).resolve().parent.parent / "validation" /
                                          "cases-own-transformers-nvidia-h200.jsonl").read_text().splitlines()]
    outside = [r["measurement"]["raw"]["total_used_bytes"] - r["measurement"]["raw"]["peak_reserved_bytes"]
               for r in rows if r["quantity"] == "total_used_bytes"]
    assert len(outside) == 169 and statistics.median(outside) == H200_OUTSIDE_ALLOCATOR_BYTES
    assert TORCH_KERNEL_BYTES.in_sample == H200_OUTSIDE_ALLOCATOR_BYTES - H200_BARE_CONTEXT_BYTES == 188 * MiB


CONTEXT_RUN = json.loads((Path(__file__).resolve().parent.parent / "validation" / "own-h200" /
                          "context.json").read_text())["steps"]


def test_the_h200_bare_context_is_local_memory_for_every_resident_thread():
    driver = CONTEXT_RUN["driver"]
    threads = driver["sms"] * driver["threads_per_sm"]
    assert (driver["sms"], driver["threads_per_sm"]) == (find("H200").sms, RESIDENT_THREADS_PER_SM["9.0"])
    assert driver["process_bare_context"] == H200_BARE_CONTEXT_BYTES
    # each raise of the per-thread stack limit adds exactly resident threads x the raise
    before, stack = driver["process_bare_context"], driver["limits"]["stack"]
    for step in driver["stack_steps"]:
        assert step["process"] - before == threads * (step["stack_read"] - stack)
        before, stack = step["process"], step["stack_read"]
    # held out (the five published cards alone), the model puts the H200's bare context within 5% of the measurement
    with holding_out("hfvram"):
        predicted = cuda_context_bytes(on("H200"))
    assert 0.0 < predicted / H200_BARE_CONTEXT_BYTES - 1 < 0.05
    # torch.cuda.init() adds nothing to the bare context; the kernels a generate() loads are the torch term's size
    torch_steps = {p["step"]: p["outside_allocator"] for p in CONTEXT_RUN["torch"]["points"]}
    assert torch_steps["torch.cuda.init"] == H200_BARE_CONTEXT_BYTES
    first = CONTEXT_RUN["generate"]["points"][0]["outside_allocator"] - H200_BARE_CONTEXT_BYTES
    assert 150 * MiB < first <= TORCH_KERNEL_BYTES.in_sample
