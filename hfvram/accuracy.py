"""`make accuracy`: every usable published measurement in validation/ through the public API, with the case's own
settings, scored leave-one-source-out.

    python -m hfvram.accuracy [--cases FILE ...] [--markdown] [--sources] [--constants] [--json] [--verbose]
    python -m hfvram.accuracy --write-bands [FILE] [--markdown]    # the error bands (hfvram.estimate.bands)

A case names the checkpoint that was measured and, in `arch_config`, the bundled model whose config has its
architecture (a fine-tune's base, for one). That model is read from the bundled snapshot (no network); a quantised
measurement of an unquantised architecture is projected with `--quantize`. Cases whose architecture is not bundled
are listed as skipped, with the reason.

Held out: every number an estimator read off published measurements is a `Fitted` constant that keeps each
observation with its source (hfvram.estimate.base). Each case is scored with those constants refitted *without the
case's own source*, so a figure never counts as held out for a constant that was fitted to it. The in-sample error
(every observation in) is reported next to it. Cases flagged `calibration` (a structural formula was chosen to
match them) are counted apart.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from dataclasses import field
from pathlib import Path

from .gpus import GPU, GPUChoice, find
from .record import record
from .units import GiB

VALIDATION = Path(__file__).resolve().parent.parent / "validation"
# Cases a structural formula (not a fitted number) was chosen to match: reported, kept out of the medians. Case
# files may also carry "calibration": true themselves.
CALIBRATION = {
    "vllm-10517-llama31-8b-3090-20k-peak",  # MLP activation per token (3 x hidden + 3 x intermediate)
    "vllm-10517-llama31-8b-3090-29k-peak",
    "llamacpp-openllama-7b-v2-f16-compute",  # compute-buffer formula without flash attention
    "llamacpp-openllama-7b-v2-q4-k-m-compute",  # the same run's other quant: same graph, same figure
}

# Frameworks of the cases -> our estimators. AutoAWQ runs PyTorch modules with a preallocated fused cache, so the
# PyTorch-style estimator is the one that applies; ExLlamaV3 is sized with the ExLlamaV2 policy (same design: EXL
# weights, preallocated quantisable cache, embeddings on the host).
FRAMEWORK = {"vllm": "vllm", "transformers": "transformers", "autoawq": "transformers", "llamacpp": "llamacpp",
             "trtllm": "trtllm", "exllamav2": "exllamav2", "exllamav3": "exllamav2"}
# Case GPU names the catalog spells differently (hfvram.gpus.find is tried first).
GPU_NAMES = {"H100 80GB": "H100-SXM", "H100": "H100-SXM", "A100 80GB": "A100-80GB", "A10 24GB": "A10",
             "Tesla V100-PCIE-16GB": "V100-16GB", "H20 96GB": None}
# ExLlamaV2/V3 cache modes -> --kv-dtype ("FP8": ExLlamaV2Cache_8bit, text-generation-webui's --cache_8bit)
CACHE_MODES = {"FP16": "fp16", "FP8": "fp8", "Q4": "q4", "Q6": "q6", "Q8": "q8", "mixed": "q6"}

# Sources a case file spells in several ways, and the one source they are (each a data set of one author/harness).
SOURCE_GROUPS = (
    (r"llm-d-planner.*accuracy/results/v0\.19", "llm-d-planner v0.19.0 logs"),
    (r"llm-d-planner.*empirical-vllm-memory", "llm-d-planner empirical-vllm-memory-results"),
    (r"llm-d-planner.*blog-gpu-capacity", "llm-d-planner blog-gpu-capacity"),
    (r"QwenLM/Qwen2\.5", "QwenLM speed benchmarks"),
    (r"premAI-io/benchmarks", "premAI-io/benchmarks"),
    (r"oobabooga/oobabooga\.github\.io", "oobabooga blog"),
    (r"ggml-org/ci", "ggml-org/ci"),
    (r"AutoAWQ", "casper-hansen/AutoAWQ"),
)


def source_key(source: str | None) -> str:
    """One name per independent source: a repository issue (`vllm-project/vllm#10511`), a repository, a search-
    index file (`index:21240355802`), or one of SOURCE_GROUPS."""
    text = (source or "unknown").strip()
    for pattern, name in SOURCE_GROUPS:
        if re.search(pattern, text):
            return name
    m = re.match(r"(?:https?://github\.com/)?([\w.-]+/[\w.-]+)", text)
    if m:
        rest = text[m.end():]
        issue = re.match(r"#\d+", rest)
        if issue:
            return m.group(1).split("@")[0] + issue.group(0)
        path = re.match(r" ([\w./-]+\.(?:md|rst|log|txt|json|html))\b", rest)  # a file of the repository
        return m.group(1).split("@")[0] + (f" {path.group(1)}" if path else "")
    m = re.search(r"(?:search-index|find_string|index) id (\d+)", text)
    if m:
        return f"index:{m.group(1)}"
    return text.split()[0][:80]


@record
class Result:
    """One measured quantity of one case, against what hfvram estimates for it."""

    case: dict
    framework: str
    quantity: str
    measured: float
    predicted: float | None = None  # held out: fitted constants refitted without the case's source
    in_sample: float | None = None  # every observation in
    skipped: str | None = None
    constants: list[str] = field(default_factory=list)  # fitted constants the prediction used
    estimate: dict | None = None  # what the held-out estimate was made of (error bands: band_inputs)

    @property
    def error(self) -> float | None:
        if self.predicted is None or not self.measured:
            return None
        return (self.predicted - self.measured) / self.measured

    @property
    def error_in_sample(self) -> float | None:
        if self.in_sample is None or not self.measured:
            return None
        return (self.in_sample - self.measured) / self.measured

    @property
    def source(self) -> str:
        return source_key(self.case.get("source"))


def load_cases(paths: list[Path] | None = None) -> list[dict]:
    paths = paths or sorted(VALIDATION.glob("cases-*.jsonl"))
    cases, seen = [], set()
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                case = json.loads(line)
                if case["id"] in seen:  # the same case in two files (a copy being merged) counts once
                    continue
                seen.add(case["id"])
                # A case file's own "calibration" flag marked figures a constant was fitted to; those constants are
                # now refitted without the case's source (leave-one-source-out), so only the structural choices
                # in CALIBRATION are kept apart.
                case["calibration"] = case["id"] in CALIBRATION
                cases.append(case)
    return cases


def _version(text: str | None) -> str | None:
    """`0.6.4.x (V0 ...)` -> 0.6; dev builds numbered 0.1.devN say their release elsewhere in the text."""
    found = [m for m in re.finditer(r"(?<![\d.])(\d+)\.(\d+)(\.\d+|\.x)?(\.dev)?", text or "")]
    found = [m for m in found if not (m.group(4) and m.group(1) == "0" and m.group(2) == "1")]
    if not found:
        return None
    return f"{found[0].group(1)}.{found[0].group(2)}"


def _vllm_version(text: str | None) -> str | None:
    v = _version(text)
    if v is None:
        return None
    # a V0-engine run of a release that defaults to V1 follows V0's policy (the last V0-default release is 0.7)
    if re.search(r"\bV0\b", text or "") and tuple(map(int, v.split("."))) >= (0, 8):
        return "0.7"
    return v


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _gpu(s: dict, case: dict) -> GPU | None:
    from .errors import UsageError

    name = s.get("gpu")
    gpu = None
    if isinstance(name, str) and name:
        clean = re.sub(r"\s*\(.*?\)\s*", " ", name).strip()
        mapped = GPU_NAMES.get(name, GPU_NAMES.get(clean, clean))
        if mapped:
            try:
                gpu = find(mapped)
            except UsageError:
                gpu = None
    total = s.get("gpu_total_bytes")
    if total:
        base = gpu or GPU(name=str(name or "GPU"), memory_bytes=int(total), usable_bytes=0, fp8=False, bf16=True,
                          compute_capability=None, klass="custom")
        gpu = GPU(**{**base.__dict__, "usable_bytes": int(total)})
    if gpu is not None and case.get("interconnect"):
        gpu = GPU(**{**gpu.__dict__, "interconnect": "nvswitch" if case["interconnect"] == "nvlink" else
                     case["interconnect"]})
    return gpu


class Unexpressible(Exception):
    """A case whose settings hfvram's settings cannot say (or whose figure our estimate has no part for): it is listed
    as skipped with this reason, not scored."""


# llama.cpp: the quantities where a weight's placement matters. The KV cache is not one of them: each layer's cache
# sits with its layer (llama-kv-cache.cpp: model.dev_layer(il)) whatever --override-tensor does with its weights.
LLAMACPP_PLACED = ("weights_bytes", "host_bytes", "compute_buffer_bytes", "total_used_bytes", "total_reserved_bytes")
# Per-layer and global tensor names (src/llama-arch.cpp LLM_TENSOR_NAMES, the names of the common dense, GQA, MLA and
# MoE layers) that --override-tensor patterns are tried on, to tell whether a set of patterns moves exactly the
# routed experts of every layer or of the first N (what --cpu-moe / --n-cpu-moe write, common/common.h).
_LAYER_TENSORS = tuple(f"{n}.{kind}" for n in (
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "attn_qkv", "attn_sinks",
    "attn_q_a", "attn_q_a_norm", "attn_q_b", "attn_kv_a_mqa", "attn_kv_a_norm", "attn_kv_b", "attn_k_b", "attn_v_b",
    "post_attention_norm", "ffn_norm", "ffn_gate_inp", "ffn_gate", "ffn_up", "ffn_down", "ffn_gate_exps",
    "ffn_up_exps", "ffn_down_exps", "ffn_gate_up_exps", "ffn_gate_inp_shexp", "ffn_gate_shexp", "ffn_up_shexp",
    "ffn_down_shexp", "exp_probs_b", "post_ffw_norm") for kind in ("weight", "bias"))
_GLOBAL_TENSORS = ("token_embd.weight", "output.weight", "output_norm.weight", "rope_freqs.weight")
_OT_LAYERS = 1024  # more layers than any model has: a pattern set that catches the experts of all of these is --cpu-moe
# n_gpu_layers as logs and front ends write "every layer": "all", "all (29/29 offloaded)", -1 (llama-cpp-python)
_ALL_LAYERS = re.compile(r"^\s*(all\b|-1$)", re.I)


def override_to_cpu_moe(value) -> int:
    """--override-tensor patterns ("regex=BUFFER", comma-separated or a list; first match wins, llama-model-loader.cpp)
    as the --n-cpu-moe they amount to (options.CPU_MOE_ALL for every layer's experts). Unexpressible when they move
    more than the routed experts (whole FFNs: norms, routers, dense or shared-expert weights), the experts of other
    than the first N layers, or pin tensors to more than one GPU."""
    from .estimate.llamacpp import _EXPS  # common/common.h LLM_FFN_EXPS_REGEX
    from .options import CPU_MOE_ALL

    items = value if isinstance(value, list) else [value]
    rules = []
    for item in items:
        for part in str(item).split(","):  # common/arg.cpp parse_tensor_buffer_overrides splits on ','
            pattern, _, buft = part.rpartition("=")
            if not pattern:
                raise Unexpressible(f"--override-tensor {part!r} is not PATTERN=BUFFER")
            rules.append((re.compile(pattern), buft.strip()))
    cpu: dict[int, set[str]] = {}
    devices = set()
    names = [(None, g) for g in _GLOBAL_TENSORS] + [(i, f"blk.{i}.{n}") for i in range(_OT_LAYERS)
                                                     for n in _LAYER_TENSORS]
    for layer, name in names:
        buft = next((b for rx, b in rules if rx.search(name)), None)
        if buft is None:
            continue
        if buft.upper() != "CPU":
            devices.add(buft)
            continue
        if layer is None or not _EXPS.search(name):
            raise Unexpressible(f"--override-tensor moves {name} to the CPU: more than the routed experts (whole "
                                f"FFNs or other tensors of some layers), which --n-cpu-moe cannot say")
        cpu.setdefault(layer, set()).add(name)
    if len(devices) > 1:
        raise Unexpressible(f"--override-tensor spreads tensors over {len(devices)} GPUs "
                            f"({', '.join(sorted(devices))}) by pattern; hfvram splits layers evenly")

    def whole(i: int, got: set[str]) -> bool:  # down and up+gate experts, or down and the fused gate_up ones
        has = {n.split(".")[2] for n in got if n.endswith(".weight")}
        return "ffn_down_exps" in has and ({"ffn_up_exps", "ffn_gate_exps"} <= has or "ffn_gate_up_exps" in has)

    partial = [i for i, got in cpu.items() if not whole(i, got)]
    if partial:
        raise Unexpressible(f"--override-tensor moves only some of layer {min(partial)}'s experts")
    layers = sorted(cpu)
    if not layers:
        return 0
    if layers != list(range(len(layers))):
        raise Unexpressible(f"--override-tensor moves the experts of layers {layers[0]}-{layers[-1]}, not of the first "
                            f"N layers (--n-cpu-moe N)")
    return CPU_MOE_ALL if len(layers) == _OT_LAYERS else len(layers)


def _llama_ftype(name: str, version: str) -> bool:
    from .estimate.gguf import normalize_ftype

    try:
        normalize_ftype(name, version)
        return True
    except ValueError:
        return False


def llamacpp_kwargs(case: dict) -> dict:
    """A llama.cpp case's settings (its log's or command line's) as hfvram.analyze keywords. Raises Unexpressible."""
    from .options import CPU_MOE_ALL, LLAMACPP_CACHE_TYPES

    s, q = case["settings"], case["quantity"]
    kw: dict = {}
    parallel = _int(s.get("parallel")) or _int(s.get("n_seq_max")) or 1
    unified = s.get("kv_unified")
    n_ctx = _int(s.get("n_ctx"))
    # hfvram's --context is what each sequence holds: llama.cpp's -c is shared by the slots unless --kv-unified
    kw["context"] = n_ctx // parallel if n_ctx and parallel > 1 and not unified else n_ctx
    if parallel > 1:
        kw["n_parallel"] = parallel
    if unified is not None:
        kw["kv_unified"] = bool(unified)
    old = bool(re.search(r"\b(b|build )1513\b", str(case.get("framework_version"))))
    if old:  # ggml-org/ci logs of b1513 (2023): that release's quantisation rules
        kw["llamacpp_version"] = "b1513"
    n_batch = _int(s.get("n_batch"))
    # -ub (the physical batch) defaults to 512 and never exceeds -b (llama-context.cpp: n_ubatch = min(n_batch,
    # n_ubatch)); before the split (b1513's time) -b was the physical batch
    kw["n_ubatch"] = _int(s.get("n_ubatch")) or (n_batch if old or not n_batch else min(n_batch, 512))
    for key in ("cache_type_k", "cache_type_v"):
        value = str(s.get(key) or "f16").lower()
        if value not in LLAMACPP_CACHE_TYPES:
            raise Unexpressible(f"--{key.replace('_', '-')} {value} is not a cache type hfvram knows")
        kw[key] = value
    # flash attention: as the log says; the 2023 logs that do not say predate it (llama.cpp added -fa in 2024)
    kw["flash_attn"] = bool(s.get("flash_attn", False))
    ngl = s.get("n_gpu_layers")
    if ngl is not None and not (isinstance(ngl, str) and _ALL_LAYERS.match(ngl)) and _int(ngl) != -1:
        if _int(ngl) is None:
            raise Unexpressible(f"n_gpu_layers {ngl!r} not understood")
        kw["gpu_layers"] = _int(ngl)
    cpu_moe = CPU_MOE_ALL if s.get("cpu_moe") else (_int(s.get("n_cpu_moe")) or 0)
    if s.get("override_tensor"):
        try:
            cpu_moe = max(cpu_moe, override_to_cpu_moe(s["override_tensor"]))
        except Unexpressible:
            if q in LLAMACPP_PLACED:
                raise
    if cpu_moe:
        kw["n_cpu_moe"] = min(cpu_moe, CPU_MOE_ALL)
    if s.get("no_kv_offload") or s.get("kv_offload") is False:
        kw["no_kv_offload"] = True
    if s.get("swa_full") and q != "weights_bytes" and q != "host_bytes":
        raise Unexpressible("--swa-full keeps sliding-window layers at the whole context: not modelled")
    split = str(s.get("split_mode") or "layer").lower()
    gpus = _int(s.get("num_gpus")) or 1
    if gpus > 1:
        if not split.startswith("layer"):
            raise Unexpressible(f"--split-mode {split}: hfvram models the layer split")
        kw["pp"] = gpus  # the estimator spreads layers evenly over tp x pp devices (--split-mode layer)
    gguf_type = s.get("gguf_type") or case.get("gguf_type")
    if gguf_type and _llama_ftype(str(gguf_type), kw.get("llamacpp_version", "current")):
        kw["quantize"] = f"gguf:{gguf_type}"
    elif q in ("kv_cache_bytes", "compute_buffer_bytes") and not cpu_moe:
        # the KV cache, and the compute buffer of a model wholly on the GPU (llamacpp_value checks that), do not
        # depend on the weights' types: the model as convert_hf_to_gguf.py writes it (F16) stands in for a GGUF
        # that is not named
        pass
    else:
        raise Unexpressible(f"GGUF type {gguf_type or 'not named'}" + (": not a llama-quantize type hfvram can size"
                                                                        if gguf_type else ""))
    return kw


def case_kwargs(case: dict) -> dict:
    """The case's settings as hfvram.analyze keywords."""
    s = case["settings"]
    fw = FRAMEWORK[case["framework"]]
    kw: dict = {"frameworks": [fw], "batch": _int(s.get("batch")) or 1, "offline": True, "projections": ()}
    gpu = _gpu(s, case)
    tp = _int(s.get("tp"))
    pp = _int(s.get("pp"))
    llama = llamacpp_kwargs(case) if fw == "llamacpp" else {}
    pp = llama.pop("pp", pp)
    if tp:
        kw["tp"] = tp
    if pp and pp > 1:
        kw["pp"] = pp
    elif s.get("num_gpus") and not tp and fw != "llamacpp":
        kw["pp"] = int(s["num_gpus"])
    if gpu is not None:
        kw["gpu"] = GPUChoice(gpu, (kw.get("tp") or 1) * (kw.get("pp") or 1))
    if s.get("pp_rank") is not None:
        kw["pp_rank"] = int(s["pp_rank"])
    dtype = s.get("dtype")
    bits = s.get("bits")
    if dtype in ("gptq", "awq"):
        kw["quantize"] = "int8" if bits == 8 else dtype
    elif dtype == "fp8":
        kw["quantize"] = "fp8"
    elif dtype in ("int8", "int8-weight-only"):
        kw["quantize"] = "int8"
    elif dtype == "fp32":
        kw["dtype"] = "float32"
    elif dtype == "bnb-4bit":
        kw["quantize"] = "nf4"
    elif dtype == "bnb-8bit":
        kw["quantize"] = "int8"
    elif dtype == "gguf":
        kw["quantize"] = f"gguf:{s.get('gguf_type') or case.get('gguf_type')}"
    elif dtype in ("exl2", "exl3"):
        kw["quantize"] = f"exl2:{s['exl2_bpw']}"
    if fw == "vllm":
        kw["context"] = _int(s.get("max_model_len"))
        for key in ("gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "block_size"):
            if s.get(key) is not None:
                kw[key] = s[key]
        if s.get("enforce_eager"):
            kw["enforce_eager"] = True
        kw["vllm_version"] = _vllm_version(case.get("framework_version"))
        if s.get("kv_dtype") not in (None, "auto"):
            kw["kv_dtype"] = s["kv_dtype"]
        if dtype == "fp16" and "quantize" not in kw:
            kw["dtype"] = "float16"
    elif fw == "transformers":
        kw["context"] = _int(s.get("context"))
        kw["prompt_tokens"] = _int(s.get("prompt_tokens"))
        if s.get("flash_attn"):
            kw["attn_implementation"] = "flash_attention_2"
        elif s.get("attn_implementation") in ("eager", "sdpa", "flash_attention_2"):
            kw["attn_implementation"] = s["attn_implementation"]  # our own measurements say which they ran
        version = _version(case.get("framework_version"))
        if version and case["framework"] == "transformers":
            kw["transformers_version"] = version
        if dtype in ("bf16", "fp16") and "quantize" not in kw and s.get("weights") == "random (from_config)":
            # our own runs build the model in the dtype they name (tools/measure_transformers.py `build`), whatever
            # the checkpoint's dtype (mamba-130m-hf is stored float32)
            kw["dtype"] = "bfloat16" if dtype == "bf16" else "float16"
        # the benchmarks load with torch_dtype="auto" (CASES.md 20); AutoAWQ runs float16
        kw.setdefault("dtype", "auto")
    elif fw == "llamacpp":
        kw.pop("quantize", None)
        kw.update(llama)
    elif fw == "trtllm":
        backend = s.get("backend")
        if backend in ("pytorch", "tensorrt"):
            kw["trtllm_backend"] = backend
        version = _version(case.get("framework_version"))
        if version:
            kw["trtllm_version"] = version
        for key in ("max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens"):
            if _int(s.get(key)):
                kw[key] = _int(s[key])
        if s.get("kv_cache_free_gpu_mem_fraction"):
            kw["free_gpu_memory_fraction"] = float(s["kv_cache_free_gpu_mem_fraction"])
        if _int(s.get("tokens_per_block")):
            kw["block_size"] = _int(s["tokens_per_block"])
        context = (_int(s.get("max_input_len")) or 0) + (_int(s.get("max_output_len")) or 0)
        kw["context"] = _int(s.get("max_seq_len")) or context or None
        kw["batch"] = _int(s.get("runtime_max_batch_size")) or _int(s.get("batch")) or 1
        if s.get("kv_dtype") in ("fp8", "int8", "fp32", "fp16", "bf16"):
            kw["kv_dtype"] = s["kv_dtype"]
    elif fw == "exllamav2":
        kw["context"] = _int(s.get("context")) or _int(s.get("max_model_len"))
        kw["kv_dtype"] = CACHE_MODES.get(s.get("cache_mode") or "FP16", "fp16")
    return {k: v for k, v in kw.items() if v is not None}


def bundled(repo_id: str | None) -> str | None:
    """A case without arch_config can still use its `base_model` when that repo is in the snapshot."""
    from .sources import snapshot

    if repo_id and snapshot.lookup(repo_id) is not None:
        return repo_id
    return None


# llama.cpp host buffers (the cases' component_detail, hfvram.logs.llamacpp) -> the part of the estimate's host RAM
_HOST_BUFFERS = (
    (r"cpu_mapped_model_buffer", ("host_components", "weights")),  # mmap: every host-resident weight, one buffer
    (r"cpu_model_buffer|cpu_repack_model_buffer", ("host_weight_buffers", "cpu_overrides")),  # no mmap: -ot / -ncmoe
    (r"_host_model_buffer", ("host_weight_buffers", "host")),  # no mmap: the GPU backend's pinned host buffer
    (r"_compute_buffer", ("host_components", "compute")),
    (r"_output_buffer", ("host_components", "output")),
    (r"_kv_buffer", ("host_components", "kv_cache")),
)


def llamacpp_value(case: dict, analysis) -> float | None:
    """The part of a llama.cpp estimate a case measured, by its quantity and `component_detail` (the buffer names
    hfvram.logs.llamacpp gives: non_swa_kv, swa_kv, *_total_all_devices, cpu_mapped_model_buffer, ...). Raises
    Unexpressible when the figure is of a build whose layout hfvram does not model."""
    from .specs import MLA

    est = analysis.estimates["llamacpp"]
    c, x = est.components, est.extras
    q, detail = case["quantity"], str(case.get("component_detail") or "")
    devices = max(1, est.gpus)
    whole = detail.endswith("total_all_devices") or not case.get("per_gpu", True)
    if q == "weights_bytes":
        return c["weights"] * (devices if whole else 1)
    if q == "kv_cache_bytes":
        v = re.search(r"\bV \(\w+\):\s*([\d.]+) MiB", str(case.get("quote")))
        if v and float(v.group(1)) > 0 and any(isinstance(lay, MLA) for lay in analysis.model.layers):
            # llama.cpp cached MLA's V (the 512-wide latent again) beside K until ggml-org/llama.cpp#19067
            # ("kv-cache : support V-less cache", 2026-01-24); the estimator follows the K-only cache since
            raise Unexpressible("this build caches MLA's V beside its latent K (the log prints V > 0), which "
                                "llama.cpp stopped with #19067 (2026-01); hfvram models the K-only cache")
        kind = "swa" if detail.startswith("swa_kv") else "non_swa" if detail.startswith("non_swa_kv") else None
        parts = x["kv_parts"]
        places = ("gpu", "host") if detail.endswith("total_all_devices") else ("gpu",)
        total = sum(v for p in places for k, v in parts.get(p, {}).items() if kind is None or k == kind)
        return total if whole else total / devices
    if q == "compute_buffer_bytes":
        typed = case["settings"].get("gguf_type") or case.get("gguf_type")
        all_on_gpu = x.get("gpu_layers", 0) > len(analysis.model.layers) and not x.get("n_cpu_moe")
        if not (typed and _llama_ftype(str(typed), "current")) and not all_on_gpu:
            # a layer left on the CPU is copied into the compute buffer for prompt batches: its size needs the type
            raise Unexpressible("GGUF type not named, and layers stay on the CPU (their weights join the compute "
                                "buffer)")
        return c.get("compute")
    if q == "host_bytes":
        for pattern, (table, key) in _HOST_BUFFERS:
            if re.search(pattern, detail):
                return (x.get(table) or {}).get(key)
        return x.get("host_bytes")
    if q == "total_reserved_bytes":  # b1513's "total VRAM used": model + KV + scratch (CASES.md)
        return c["weights"] + c["kv_cache"] + c.get("compute", 0)
    if q == "total_used_bytes":
        return est.nvidia_smi
    return None


def _unbuilt_bytes(case: dict, analysis, fw: str) -> float:
    """The vision tower's bytes when the measured run did not build it (settings `vision_tower: "not built"`: our own
    runs build AutoModelForCausalLM from the config, which for some multimodal configs is the text model alone, e.g.
    Qwen3.5), in the dtype the estimate loads; estimates always count the tower."""
    s = case.get("settings") or {}
    if s.get("vision_tower") != "not built" or fw != "transformers":
        return 0.0
    facts = analysis.facts
    vision = (facts.weights.component_bytes or {}).get("vision", 0)
    load = {"bf16": 2, "fp16": 2, "fp32": 4}.get(s.get("dtype"), facts.dtype_bytes)
    return vision * load / facts.dtype_bytes  # in the run's dtype


# The tensors our own builds (tools/measure_transformers.py `build`) allocate, in their order, per model: recorded on
# the meta device by tools/probe_allocator.py --orders (transformers 5.17, the release of the runs)
BUILT_TENSORS = VALIDATION / "own-h200" / "built-tensors.jsonl.gz"


def _build_rounding_bytes(case: dict, fw: str) -> float:
    """What the caching allocator holds above the bytes of a model our own runs built tensor by tensor (settings
    `weights: "random (from_config)"`): each tensor was allocated on its own, in module order, so blocks are rounded
    as hfvram.estimate.allocator models (allocated: Gemma-3-1B +52.8 MB, DeepSeek-V2-Lite +81.8 MB), and for what the
    process holds (total_used), whole segments are reserved (Qwen2.5-1.5B +198 MB, Mistral-7B +136 MB: 20 MiB
    segments' tails that a 1-10 MiB tensor did not fill). Estimates assume from_pretrained onto the device, whose
    warm-up block leaves no such rounding."""
    s = case.get("settings") or {}
    if fw != "transformers" or s.get("weights") != "random (from_config)":
        return 0.0
    sizes = _built_sizes().get(case["model"])
    if sizes is None:
        return 0.0
    from .estimate.allocator import allocated_bytes

    allocator = allocated_bytes(sizes)
    held = allocator.reserved if case["quantity"] == "total_used_bytes" else allocator.allocated
    return float(held - allocator.requested)


_BUILT: dict[str, list[int]] | None = None


def _built_sizes() -> dict[str, list[int]]:
    global _BUILT
    if _BUILT is None:
        import gzip

        _BUILT = {}
        if BUILT_TENSORS.is_file():
            with gzip.open(BUILT_TENSORS, "rt") as f:
                for line in f:
                    entry = json.loads(line)
                    _BUILT[entry["model"]] = [t[2] for t in entry["tensors"]]
    return _BUILT


def predicted_value(case: dict, analysis, fw: str) -> float | None:
    """The estimate's figure for the case's quantity, less what the measured run did not build, plus what its
    allocator rounded up building it tensor by tensor."""
    value = _predicted(case, analysis, fw)
    if value is not None and case["quantity"] in ("weights_bytes", "peak_allocated_bytes", "total_used_bytes"):
        value += _build_rounding_bytes(case, fw) - _unbuilt_bytes(case, analysis, fw)
    return value


def _predicted(case: dict, analysis, fw: str) -> float | None:
    est = analysis.estimates[fw]
    if not est.supported:
        return None
    if fw == "llamacpp":
        return llamacpp_value(case, analysis)
    c, x = est.components, est.extras
    q = case["quantity"]
    if q == "weights_bytes":
        # TensorRT-LLM #698 read nvidia-smi right after loading the engine: weights + CUDA context (CASES.md 12)
        from .estimate.base import CUDA_CONTEXT_BYTES

        return c["weights"] + (CUDA_CONTEXT_BYTES if fw == "trtllm" and "#698" in str(case.get("source")) else 0)
    if q == "non_torch_bytes":
        if fw == "trtllm":  # "Memory used outside torch" includes the CUDA context (_util.py)
            return c.get("non_torch", 0) + c.get("cuda_context", 0)
        return c.get("non_torch")
    if q == "activation_peak_bytes":
        return c.get("activations")
    s = case.get("settings") or {}
    if fw == "trtllm" and q in ("kv_cache_bytes", "kv_tokens") and x.get("kv_bytes_per_token"):
        # a token count the pool was capped at (KvCacheConfig max_tokens, or the profiling run's temporary pool)
        cap = _int(s.get("kv_tokens_requested")) or _int(s.get("max_tokens_in_paged_kv_cache"))
        if cap:
            tokens = min(cap, x.get("kv_tokens") or cap)
            return tokens * x["kv_bytes_per_token"] if q == "kv_cache_bytes" else tokens
    if q == "kv_cache_bytes":
        return x.get("kv_pool_bytes") if fw in ("vllm", "trtllm") and x.get("kv_pool_bytes") is not None \
            else c.get("kv_cache")
    if q == "gpu_blocks":
        return x.get("num_blocks")
    if q == "kv_tokens":
        return x.get("kv_tokens")
    if q == "max_concurrency":
        return x.get("max_concurrency")
    if q == "cuda_graph_bytes":
        return c.get("cuda_graphs")
    if q == "compute_buffer_bytes":
        return c.get("compute")
    if q == "runtime_buffer_bytes":
        detail = str(case.get("quote", "")) + str(case.get("id", ""))
        if re.search(r"Total Activation Memory", detail):
            detail += " execution context"
        buffers = x.get("runtime_buffers") or {}
        for key, pattern in (("execution_context", r"execution context|execctx"),
                             ("runtime_buffers", r"runtime buffers|runtimebuf"), ("decoder", r"decoder")):
            if re.search(pattern, detail) and key in buffers:
                return buffers[key]
        return None
    if q == "total_reserved_bytes":
        return c["weights"] + c["kv_cache"] + c.get("compute", 0)
    if q == "total_used_bytes":
        if fw == "trtllm" and "Peak memory during memory usage profiling" in str(case.get("quote")):
            return x.get("profile_peak_bytes")
        return est.nvidia_smi if est.nvidia_smi is not None else est.per_gpu_bytes
    if q == "peak_allocated_bytes":
        if fw == "vllm":  # vLLM 0.6.4 peak_torch_memory includes the weights (CASES.md 5)
            return c["weights"] + c["activations"]
        if not case.get("per_gpu", True):
            return x.get("peak_allocated_total_bytes")
        return x.get("peak_allocated_bytes")
    return None


def evaluate(case: dict, in_sample: bool = True) -> Result:
    from .analysis import analyze
    from .errors import HfvramError
    from .estimate.base import FITTED, holding_out

    fw = FRAMEWORK.get(case["framework"])
    result = Result(case=case, framework=case["framework"], quantity=case["quantity"], measured=case["measured"])
    if fw is None:
        result.skipped = f"no estimator for {case['framework']}"
        return result
    model = case.get("arch_config") or bundled(case.get("base_model"))
    if not model:
        result.skipped = "no bundled architecture (arch_config null, base model not in the snapshot)"
        return result
    source = result.source
    try:
        kwargs = case_kwargs(case)
        with holding_out(source) as used:
            analysis = analyze(model, **kwargs)
            result.predicted = predicted_value(case, analysis, fw)
        result.constants = sorted(used)
        result.estimate = band_inputs(analysis, fw)
        touched = any(source in FITTED[name].sources for name in used)
        if in_sample and touched:
            with holding_out(None):
                result.in_sample = predicted_value(case, analyze(model, **kwargs), fw)
        else:
            result.in_sample = result.predicted
    except Unexpressible as exc:
        result.skipped = f"settings not expressible: {exc}"
        return result
    except HfvramError as exc:
        result.skipped = f"{model}: {exc}"
        return result
    except (KeyError, TypeError, ValueError) as exc:
        result.skipped = f"{model}: settings not understood ({type(exc).__name__}: {exc})"
        return result
    if result.predicted is None:
        result.skipped = f"{fw} estimate has no {case['quantity']}"
    return result


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def summarise(results: list[Result]) -> list[dict]:
    """Median, p90 and worst |error| per framework and quantity over held-out cases (leave-one-source-out), the
    in-sample median next to it; calibration cases counted apart."""
    rows: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        if r.error is not None:
            rows.setdefault((r.framework, r.quantity), []).append(r)
    out = []
    for (fw, q), items in sorted(rows.items()):
        held_out = [r for r in items if not r.case.get("calibration")]
        base = held_out or items
        errs = [abs(r.error) for r in base]
        worst = max(base, key=lambda r: abs(r.error))
        ins = [abs(r.error_in_sample) for r in base if r.error_in_sample is not None]
        out.append({"framework": fw, "quantity": q, "cases": len(held_out), "calibration": len(items) - len(held_out),
                    "sources": len({r.source for r in base}),
                    "median_abs_pct": 100 * statistics.median(errs), "p90_abs_pct": 100 * _p90(errs),
                    "worst_abs_pct": 100 * abs(worst.error), "worst_case": worst.case["id"],
                    "median_in_sample_pct": 100 * statistics.median(ins) if ins else None,
                    "in_sample_only": not held_out})
    return out


def by_source(results: list[Result]) -> list[dict]:
    """Median |error| per source (held out), with its frameworks and quantities."""
    rows: dict[str, list[Result]] = {}
    for r in results:
        if r.error is not None and not r.case.get("calibration"):
            rows.setdefault(r.source, []).append(r)
    out = []
    for src, items in sorted(rows.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        errs = [abs(r.error) for r in items]
        out.append({"source": src, "cases": len(items),
                    "frameworks": sorted({r.framework for r in items}),
                    "quantities": sorted({r.quantity for r in items}),
                    "median_abs_pct": 100 * statistics.median(errs), "p90_abs_pct": 100 * _p90(errs),
                    "worst_abs_pct": 100 * max(errs)})
    return out


def constants_table(results: list[Result]) -> list[dict]:
    """Every fitted constant: its value, the sources it was fitted to, and how many scored cases used it."""
    from .estimate.base import FITTED

    uses: dict[str, int] = {}
    for r in results:
        for name in r.constants:
            uses[name] = uses.get(name, 0) + 1
    def shown(value: float, unit: str) -> str:
        if unit == "bytes":
            return f"{value / GiB:.3f} GiB" if value >= 1 << 28 else f"{value / (1 << 20):.3f} MiB"
        return f"{value:g} {unit}"

    out = []
    for name, const in sorted(FITTED.items()):
        if name.startswith("test."):
            continue
        prior = const.prior if isinstance(const.prior, str) or const.prior is None else shown(const.prior, const.unit)
        out.append({"name": name, "value": shown(const.in_sample, const.unit), "sources": const.sources,
                    "prior": prior, "cases_using": uses.get(name, 0), "note": const.note})
    return out


def _markdown(table: list[dict], sources: list[dict], verbose_sources: bool) -> None:
    print("| framework | quantity | cases (sources) | held-out median | held-out p90 | in-sample median | worst | "
          "worst case |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for row in table:
        n = f"{row['cases']} ({row['sources']})" + (f" +{row['calibration']} calibration" if row["calibration"]
                                                     else "")
        flag = " (in-sample)" if row["in_sample_only"] else ""
        ins = f"{row['median_in_sample_pct']:.1f}%" if row["median_in_sample_pct"] is not None else "-"
        print(f"| {row['framework']} | {row['quantity']} | {n} | {row['median_abs_pct']:.1f}%{flag} | "
              f"{row['p90_abs_pct']:.1f}% | {ins} | {row['worst_abs_pct']:.1f}% | `{row['worst_case']}` |")
    if verbose_sources:
        print()
        print("| source | cases | frameworks | held-out median | p90 | worst |")
        print("|---|---:|---|---:|---:|---:|")
        for row in sources:
            print(f"| {row['source']} | {row['cases']} | {', '.join(row['frameworks'])} | "
                  f"{row['median_abs_pct']:.1f}% | {row['p90_abs_pct']:.1f}% | {row['worst_abs_pct']:.1f}% |")


# -- error bands (python -m hfvram.accuracy --write-bands; hfvram.estimate.bands reads them) -----------------------

BANDS_FILE = Path(__file__).resolve().parent / "data" / "error_bands.json"
# Measured quantity -> the estimate's components it is (one: its held-out error is that component's; several: the
# case only checks the band's coverage). Pool quantities and totals are handled apart (band_case).
QUANTITY_COMPONENTS = {
    "weights_bytes": ("weights",), "activation_peak_bytes": ("activations",), "cuda_graph_bytes": ("cuda_graphs",),
    "compute_buffer_bytes": ("compute",), "runtime_buffer_bytes": ("runtime_buffers",),
    "non_torch_bytes": ("non_torch",),
}
TOTALS = ("peak_allocated_bytes", "total_used_bytes", "total_reserved_bytes")
# vLLM and TensorRT-LLM size a KV pool from what the fixed parts leave: these measure the pool, not a component.
POOL_QUANTITIES = ("kv_cache_bytes", "kv_tokens", "gpu_blocks", "max_concurrency")
POOL_ENGINES = ("vllm", "trtllm")


def band_inputs(analysis, fw: str) -> dict | None:
    """What the error band of a case's estimate is worked out from: its components, the fixed parts its KV pool is
    sized after (vLLM, TensorRT-LLM), the pool and the tensor-parallel size."""
    est = analysis.estimates[fw]
    if not est.supported:
        return None
    s = analysis.estimate_settings
    return {"components": dict(est.components), "fixed": dict(est.fixed_components or {}),
            "pool": est.extras.get("kv_pool_bytes"), "fraction": est.extras.get("free_gpu_memory_fraction"),
            "budget": est.budget_bytes, "usable": s.usable_bytes if s is not None else None,
            "tp": s.tp if s is not None else 1}


def _fixed_total(r: Result, engine: str) -> tuple[float, float] | None:
    """(measured, estimated) fixed parts of a measured KV pool: what vLLM's budget holds besides the pool
    (budget - pool), or TensorRT-LLM's peak (usable - pool / free_gpu_memory_fraction). The engine's total
    besides the KV cache, measured by every log that prints its pool."""
    x = r.estimate or {}
    pool = x.get("pool")
    if r.quantity != "kv_cache_bytes" or not pool or abs(float(r.predicted) - pool) > 1:
        return None  # a pool capped at a token count (predicted_value) is not what the fixed parts leave
    if engine == "vllm" and x.get("budget"):
        whole, share = x["budget"], 1.0
    elif engine == "trtllm" and x.get("usable") and x.get("fraction"):
        whole, share = x["usable"], x["fraction"]
    else:
        return None
    measured, estimated = whole - r.measured / share, whole - pool / share
    return (measured, estimated) if measured > 0 and estimated > 0 else None


def _band_engine(r: Result) -> str | None:
    """The engine a case's band belongs to: only cases measured on that engine itself (AutoAWQ's and ExLlamaV3's
    are sized with another engine's policy, and say nothing about that engine's error)."""
    fw = FRAMEWORK.get(r.framework)
    return fw if fw == r.framework else None


def _components_of(r: Result, engine: str) -> tuple[str, ...] | None:
    q = r.quantity
    if q == "non_torch_bytes" and engine == "trtllm":
        return ("non_torch", "cuda_context")  # "Memory used outside torch" includes the context (predicted_value)
    if q == "kv_cache_bytes" and engine not in POOL_ENGINES:
        return ("kv_cache",)
    return QUANTITY_COMPONENTS.get(q)


def _verdict_base(r: Result) -> float:
    """What a total's band is a band of. An nvidia-smi figure of an engine without a pool is held against the
    per-GPU figure the verdicts hold at their high end (the components), not against `nvidia_smi_bytes`: ExLlamaV2's
    adds torch's segment rounding and cached load reserve, which its components do not count, so a band fitted to
    nvidia_smi_bytes would leave the verdict short by them. Other totals: the predicted figure itself."""
    comps = (r.estimate or {}).get("components") or {}
    if r.quantity == "total_used_bytes" and comps and FRAMEWORK.get(r.framework) not in POOL_ENGINES:
        return float(sum(comps.values()))
    return float(r.predicted)


def _pool_inclusive(r: Result, engine: str) -> bool:
    """A total of vLLM or TensorRT-LLM that holds the KV pool (nvidia-smi's figure): the pool is a share of what
    the fixed parts left, so the total moves by (1 - share) x their error."""
    if engine == "trtllm":
        return r.quantity == "total_used_bytes" and "Peak memory during memory usage profiling" not in \
            str(r.case.get("quote"))
    return engine == "vllm" and r.quantity == "total_used_bytes"


def deviations(results: list[Result]) -> list[dict]:
    """Each held-out case's deviation from our estimate, per engine and component key: measured / estimate - 1
    (relative components and totals) or measured - estimate in bytes (hfvram.estimate.bands.ABSOLUTE)."""
    from .estimate import bands

    out = []
    for r in results:
        engine = _band_engine(r)
        if engine is None or r.error is None or r.case.get("calibration") or not r.predicted or r.predicted < 0:
            continue
        tp = (r.estimate or {}).get("tp", 1)
        fixed = _fixed_total(r, engine) if engine in POOL_ENGINES else None
        if fixed is not None:
            out.append({"engine": engine, "key": "total", "source": r.source, "quantity": f"{r.quantity} (fixed parts)",
                        "value": fixed[0] / fixed[1] - 1, "scale": "relative", "rel": fixed[0] / fixed[1] - 1})
            continue
        base = r.predicted
        if r.quantity in TOTALS:
            if _pool_inclusive(r, engine):
                continue  # mostly the pool the engine sized from what was free, not an error of ours
            comp = "total"
            base = _verdict_base(r)
        else:
            comps = _components_of(r, engine)
            if comps and len(comps) > 1:  # a sum whose other parts are nil here measures the one that is not
                comps = tuple(c for c in comps if (r.estimate or {}).get("components", {}).get(c))
            if not comps or len(comps) != 1:
                continue
            comp = comps[0]
        absolute = comp in bands.ABSOLUTE
        value = r.measured - base if absolute else r.measured / base - 1
        out.append({"engine": engine, "key": bands.key(comp, tp) if comp != "total" else "total",
                    "source": r.source, "quantity": r.quantity, "value": value,
                    "scale": "bytes" if absolute else "relative", "rel": r.measured / base - 1})
    return out + per_token_deviations(results)


def per_token_deviations(results: list[Result]) -> list[dict]:
    """The KV cache a token takes in vLLM's and TensorRT-LLM's pools: a log that prints both its pool's bytes and
    its token capacity measures bytes per token (pool / tokens), against our estimate's own ratio. That is the KV
    cache component's error; the pool's own error is the fixed parts' (_fixed_total)."""
    pairs: dict[tuple, dict[str, Result]] = {}
    for r in results:
        engine = _band_engine(r)
        if engine in POOL_ENGINES and r.quantity in ("kv_cache_bytes", "kv_tokens") and r.error is not None \
                and r.predicted and not r.case.get("calibration"):
            c = r.case
            k = (engine, c.get("model"), json.dumps(c.get("settings"), sort_keys=True), r.source,
                 c.get("framework_version"))
            pairs.setdefault(k, {})[r.quantity] = r
    out = []
    for (engine, *_), pair in pairs.items():
        if len(pair) == 2:
            b, t = pair["kv_cache_bytes"], pair["kv_tokens"]
            if b.measured and t.measured:
                value = (b.measured / t.measured) / (b.predicted / t.predicted) - 1
                out.append({"engine": engine, "key": "kv_cache", "source": b.source,
                            "quantity": "kv_cache_bytes / kv_tokens", "value": value, "scale": "relative",
                            "rel": value})
    return out


def _up(value: float, scale: str) -> float:
    """A margin rounded up (to a byte, or to 0.001%): the case at the percentile stays inside its band."""
    return int(math.ceil(value)) if scale == "bytes" else math.ceil(value * 1e5) / 1e5


def _entry(devs: list[dict], scale: str) -> dict:
    from .estimate import bands

    above = [d["value"] for d in devs if d["value"] > 0]
    below = [-d["value"] for d in devs if d["value"] < 0]

    def pct(values):
        return _up(_p90(values) if values else 0.0, scale)

    assert bands.PERCENTILE == 0.9  # _p90
    return {"below": pct(below), "above": pct(above), "scale": scale, "cases": len(devs),
            "cases_above": len(above), "cases_below": len(below),
            "sources": sorted({d["source"] for d in devs}), "quantities": sorted({d["quantity"] for d in devs})}


def _enough(devs: list[dict]) -> bool:
    from .estimate import bands

    return len(devs) >= bands.MIN_CASES and len({d["source"] for d in devs}) >= bands.MIN_SOURCES


def _fallback(own: list[dict], to: dict, words: str) -> dict:
    """An entry with too few cases of its own takes `to`'s margins, widened to its own cases' largest deviations
    when it has any: a fallback never claims more precision than what was seen of the thing itself. A fixed
    overhead's own deviations are bytes: they widen a relative fallback as a floor in bytes (below_bytes,
    above_bytes), not as a share of whatever size the overhead has."""
    from .estimate import bands

    n_src = len({d["source"] for d in own})
    basis = (f"fallback: {words} ({len(own)} held-out cases of its own from {n_src} sources; {bands.MIN_CASES} from "
             f"{bands.MIN_SOURCES} needed)")
    entry = {k: v for k, v in to.items() if k not in ("basis", "own_cases", "own_sources")}
    in_bytes = bool(own) and all(d["scale"] == "bytes" for d in own)
    field = "value" if in_bytes else "rel"
    above = max([d[field] for d in own if d[field] > 0], default=0.0)
    below = max([-d[field] for d in own if d[field] < 0], default=0.0)
    if in_bytes and to["scale"] == "relative":
        if above or below:
            entry["below_bytes"], entry["above_bytes"] = _up(below, "bytes"), _up(above, "bytes")
            basis += ", with its own largest deviations in bytes as a floor"
    elif above > to["above"] or below > to["below"]:
        entry["below"] = max(_up(below, "relative"), to["below"])
        entry["above"] = max(_up(above, "relative"), to["above"])
        basis += ", widened to its own largest deviations"
    return {**entry, "own_cases": len(own), "own_sources": sorted({d["source"] for d in own}), "basis": basis}


def bands_table(devs: list[dict]) -> dict:
    """The error-band table (hfvram/data/error_bands.json without its coverage) from these deviations."""
    from .estimate import bands

    totals = [d for d in devs if d["key"] == "total"]
    every = {**_entry(totals, "relative"), "basis": "every engine's totals (allocator peaks, nvidia-smi figures, "
                                                   "the fixed parts a measured KV pool leaves)"}
    engines = {}
    for engine, comps in bands.COMPONENTS.items():
        mine = [d for d in devs if d["engine"] == engine]
        own_total = [d for d in mine if d["key"] == "total"]
        if _enough(own_total):
            total = {**_entry(own_total, "relative"), "basis": "measured"}
        else:
            total = _fallback(own_total, every, "every engine's totals")
        entries = {}
        for comp in comps:
            own = [d for d in mine if d["key"] == comp]
            base = comp.split("@")[0]
            if _enough(own):
                entries[comp] = {**_entry(own, "bytes" if base in bands.ABSOLUTE else "relative"), "basis": "measured"}
            else:
                entries[comp] = _fallback(own, total, "the engine's total error")
        engines[engine] = {"total": total, "components": entries}
    return {"schema": bands.SCHEMA, "engines": engines, "every_engine_total": every}


def band_case(r: Result, data: dict) -> tuple[float, float] | None:
    """The band [low, high] of the quantity a case measured, from its held-out estimate and the table `data`."""
    from .estimate import bands

    engine = _band_engine(r)
    x = r.estimate
    if engine is None or x is None or r.predicted is None:
        return None
    p, tp, comps = float(r.predicted), x["tp"], x["components"]
    if r.quantity in POOL_QUANTITIES and engine in POOL_ENGINES:
        pool = x.get("pool")
        if not pool or pool <= 0 or not x["fixed"]:
            return None
        if r.quantity == "kv_cache_bytes" and abs(p - pool) > 1:  # a pool capped at a token count: tokens x size
            lo, hi = bands.margin(engine, "kv_cache", p, tp, data)
            return p - lo, p + hi
        lo, hi = bands.margins(engine, x["fixed"], tp, data)
        share = (x.get("fraction") or 1.0) if engine == "trtllm" else 1.0
        low, high = p * max(0.0, pool - share * hi) / pool, p * (pool + share * lo) / pool
        if r.quantity != "kv_cache_bytes":  # tokens, blocks, concurrency: the pool over what a token takes
            kv_lo, kv_hi = bands.margin(engine, "kv_cache", 1.0, tp, data)
            low, high = low / (1 + kv_hi), high / max(1e-9, 1 - kv_lo)
        return low, high
    if r.quantity in TOTALS and engine in POOL_ENGINES and x["fixed"]:
        if engine == "trtllm":  # its peak; with the pool, (1 - fraction) x the peak's margins
            lo, hi = bands.margins(engine, x["fixed"], tp, data)
            if _pool_inclusive(r, engine):
                keep = 1 - (x.get("fraction") or 1.0)
                lo, hi = lo * keep, hi * keep
        elif _pool_inclusive(r, engine):  # vLLM's whole budget, plus what it holds outside it
            outside = {"cuda_context": comps.get("cuda_context", 0)}
            if "cuda_graphs" not in x["fixed"]:
                outside["cuda_graphs"] = comps.get("cuda_graphs", 0)
            lo, hi = bands.margins(engine, outside, tp, data)
        else:  # vLLM 0.6's peak_torch_memory: weights + the profile's activations (predicted_value)
            lo, hi = bands.margins(engine, {k: comps.get(k, 0) for k in ("weights", "activations")}, tp, data)
        return p - lo, p + hi
    if r.quantity in TOTALS:
        total = sum(comps.values())
        if not total:
            return None
        lo, hi = bands.margins(engine, comps, tp, data)
        p = _verdict_base(r)
        return p * (1 - lo / total), p * (1 + hi / total)
    names = _components_of(r, engine)
    if not names:
        return None
    if len(names) == 1:
        lo, hi = bands.margin(engine, names[0], p, tp, data)
    else:
        lo, hi = bands.margins(engine, {n: comps.get(n, 0) for n in names}, tp, data)
    return p - lo, p + hi


def coverage(results: list[Result], devs: list[dict]) -> dict:
    """Per engine, the share of held-out cases whose measured value lies inside the band: with the bands as written
    (`share`), and with each case's band refitted without the case's own source (`share_source_held_out`: what to
    expect of a source the bands have not seen)."""
    whole = bands_table(devs)
    tables: dict[str, dict] = {}
    out: dict[str, dict] = {}
    for r in results:
        engine = _band_engine(r)
        if engine is None or r.error is None or r.case.get("calibration"):
            continue
        if r.source not in tables:
            tables[r.source] = bands_table([d for d in devs if d["source"] != r.source])
        b, b_held = band_case(r, whole), band_case(r, tables[r.source])
        if b is None or b_held is None:
            continue
        row = out.setdefault(engine, {"cases": 0, "inside": 0, "inside_source_held_out": 0, "by_quantity": {}})
        q = row["by_quantity"].setdefault(r.quantity, {"cases": 0, "inside": 0, "inside_source_held_out": 0})
        for item in (row, q):
            item["cases"] += 1
            item["inside"] += int(b[0] * (1 - 1e-9) <= r.measured <= b[1] * (1 + 1e-9))
            item["inside_source_held_out"] += int(b_held[0] * (1 - 1e-9) <= r.measured <= b_held[1] * (1 + 1e-9))
    for row in out.values():
        row["share"] = round(row["inside"] / row["cases"], 4)
        row["share_source_held_out"] = round(row["inside_source_held_out"] / row["cases"], 4)
    return out


def write_bands(results: list[Result], path: Path) -> dict:
    from .estimate import bands

    devs = deviations(results)
    data = bands_table(devs)
    cov = coverage(results, devs)
    for engine, row in data["engines"].items():
        row["coverage"] = cov.get(engine, {"cases": 0, "inside": 0, "share": None, "inside_source_held_out": 0,
                                           "share_source_held_out": None, "by_quantity": {}})
    data = {"schema": data["schema"],
            "generated_by": "python -m hfvram.accuracy --write-bands",
            "statistic": (f"per engine and component, p{round(100 * bands.PERCENTILE)} of the held-out deviation "
                          f"(measured / estimate - 1, or measured - estimate in bytes for "
                          f"{', '.join(sorted(bands.ABSOLUTE))}), separately over the cases above the estimate "
                          f"(above: the high end) and below it (below: the low end); components with fewer than "
                          f"{bands.MIN_CASES} held-out cases or {bands.MIN_SOURCES} sources take the engine's total "
                          f"error; coverage: the share of held-out cases whose measured value lies in [low, high], "
                          f"each case's band refitted without its own source"),
            "min_cases": bands.MIN_CASES, "min_sources": bands.MIN_SOURCES,
            **{k: v for k, v in data.items() if k != "schema"}}
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    if path.resolve() == bands.DATA.resolve():
        bands.table.cache_clear()
    return data


def _margin_text(e: dict, side: str) -> str:
    if e["scale"] == "bytes":
        return f"{e[side] / GiB:.2f} GiB"
    floor = e.get(f"{side}_bytes")
    return f"{100 * e[side]:.1f}%" + (f", >= {floor / GiB:.2f} GiB" if floor else "")


def print_bands(data: dict, markdown: bool = False) -> None:
    if markdown:
        print("| engine | component | below | above | cases | sources | basis |")
        print("|---|---|---:|---:|---:|---:|---|")
    else:
        print(f"{'engine':<13} {'component':<16} {'below':>10} {'above':>10} {'cases':>6} {'sources':>7}  basis")
    for engine, row in data["engines"].items():
        for comp, e in [("total", row["total"]), *row["components"].items()]:
            cells = (engine, comp, _margin_text(e, "below"), _margin_text(e, "above"),
                     e["cases"], len(e["sources"]), e["basis"])
            if markdown:
                print("| " + " | ".join(map(str, cells)) + " |")
            else:
                print(f"{cells[0]:<13} {cells[1]:<16} {cells[2]:>10} {cells[3]:>10} {cells[4]:>6} {cells[5]:>7}  "
                      f"{cells[6]}")
    print()
    if markdown:
        print("| engine | held-out cases | inside the band | coverage | source held out too | "
              "by quantity (inside / cases) |")
        print("|---|---:|---:|---:|---:|---|")
    for engine, row in data["engines"].items():
        cov = row["coverage"]
        if not cov["cases"]:
            continue
        detail = ", ".join(f"{q} {v['inside']}/{v['cases']}" for q, v in sorted(cov["by_quantity"].items()))
        if markdown:
            print(f"| {engine} | {cov['cases']} | {cov['inside']} | {100 * cov['share']:.0f}% | "
                  f"{100 * cov['share_source_held_out']:.0f}% | {detail} |")
        else:
            print(f"coverage {engine:<13} {cov['inside']:>4}/{cov['cases']:<4} {100 * cov['share']:5.1f}% "
                  f"(source held out too: {100 * cov['share_source_held_out']:.1f}%)  {detail}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hfvram.accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=Path, action="append", help="case file(s) (default: validation/cases-*.jsonl)")
    ap.add_argument("--markdown", action="store_true", help="print the summaries as Markdown tables")
    ap.add_argument("--sources", action="store_true", help="also print the per-source table")
    ap.add_argument("--constants", action="store_true", help="print the fitted constants and their sources")
    ap.add_argument("--json", action="store_true", help="print per-case results as JSON lines")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case")
    ap.add_argument("--write-bands", nargs="?", const=str(BANDS_FILE), metavar="FILE",
                    help=f"write the error bands derived from the held-out errors (default {BANDS_FILE.name} in "
                         f"hfvram/data) and print them with their measured coverage")
    args = ap.parse_args(argv)
    cases = [c for c in load_cases(args.cases) if c.get("usable")]
    results = [evaluate(c) for c in cases]
    if args.write_bands:
        data = write_bands(results, Path(args.write_bands))
        print_bands(data, args.markdown)
        print(f"\nwritten to {args.write_bands}")
        return 0
    if args.json:
        for r in results:
            print(json.dumps({"id": r.case["id"], "source": r.source, "framework": r.framework,
                              "quantity": r.quantity, "measured": r.measured, "predicted": r.predicted,
                              "in_sample": r.in_sample, "error": r.error, "constants": r.constants,
                              "skipped": r.skipped}))
        return 0
    if args.verbose:
        for r in results:
            if r.skipped:
                print(f"  skip  {r.case['id']}: {r.skipped}")
            elif r.quantity.endswith("bytes"):
                print(f"  {100 * r.error:+7.1f}%  {r.case['id']}  measured {r.measured / GiB:.3f} GiB "
                      f"predicted {r.predicted / GiB:.3f} GiB")
            else:
                print(f"  {100 * r.error:+7.1f}%  {r.case['id']}  measured {r.measured:,.2f} predicted "
                      f"{r.predicted:,.2f}")
    table = summarise(results)
    sources = by_source(results)
    if args.markdown:
        _markdown(table, sources, args.sources)
    else:
        print(f"{'framework':<13} {'quantity':<22} {'cases':>9} {'median':>8} {'p90':>8} {'in-smp':>8} "
              f"{'worst':>8}  worst case")
        for row in table:
            n = f"{row['cases']}+{row['calibration']}c" if row["calibration"] else str(row["cases"])
            flag = "*" if row["in_sample_only"] else " "
            ins = f"{row['median_in_sample_pct']:.1f}%" if row["median_in_sample_pct"] is not None else "-"
            print(f"{row['framework']:<13} {row['quantity']:<22} {n:>9} {row['median_abs_pct']:>7.1f}%{flag}"
                  f"{row['p90_abs_pct']:>7.1f}% {ins:>8} {row['worst_abs_pct']:>7.1f}%  {row['worst_case']}")
        print("(held out: fitted constants refitted without the case's source; in-smp: every observation in; "
              "c = calibration cases, * = calibration only)")
        if args.sources:
            print(f"\n{'source':<48} {'cases':>6} {'median':>8} {'p90':>8}  frameworks")
            for row in sources:
                print(f"{row['source'][:48]:<48} {row['cases']:>6} {row['median_abs_pct']:>7.1f}% "
                      f"{row['p90_abs_pct']:>7.1f}%  {', '.join(row['frameworks'])}")
    if args.constants:
        print()
        if args.markdown:
            print("| fitted constant | value | cases using it | fitted to | held out: falls back to |")
            print("|---|---:|---:|---|---|")
        for row in constants_table(results):
            if args.markdown:
                print(f"| `{row['name']}` | {row['value']} | {row['cases_using']} | {', '.join(row['sources'])} | "
                      f"{row['prior'] if row['prior'] is not None else '-'} |")
            else:
                print(f"{row['name']:<44} {row['value']:>12}  cases {row['cases_using']:>4}  fitted to "
                      f"{', '.join(row['sources']) or '-'}" + (f"; prior {row['prior']}" if row["prior"] is not None
                                                                 else ""))
    used = sum(1 for r in results if r.error is not None)
    skipped = [r for r in results if r.skipped]
    n_sources = len({r.source for r in results if r.error is not None})
    print(f"\n{used} of {len(cases)} usable cases evaluated from {n_sources} sources; {len(skipped)} skipped"
          + (" (run with -v for the reasons)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
