"""`make accuracy`: every usable published measurement in validation/ through the public API, with the case's own
settings, scored leave-one-source-out.

    python -m hfvram.accuracy [--cases FILE ...] [--markdown] [--sources] [--constants] [--json] [--verbose]

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
from dataclasses import dataclass, field
from pathlib import Path

from .gpus import GPU, GPUChoice, find
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
CACHE_MODES = {"FP16": "fp16", "Q4": "q4", "Q6": "q6", "Q8": "q8", "mixed": "q6"}

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


@dataclass
class Result:
    case: dict
    framework: str
    quantity: str
    measured: float
    predicted: float | None = None  # held out: fitted constants refitted without the case's source
    in_sample: float | None = None  # every observation in
    skipped: str | None = None
    constants: list[str] = field(default_factory=list)  # fitted constants the prediction used

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


def case_kwargs(case: dict) -> dict:
    """The case's settings as hfvram.analyze keywords."""
    s = case["settings"]
    fw = FRAMEWORK[case["framework"]]
    kw: dict = {"frameworks": [fw], "batch": _int(s.get("batch")) or 1, "offline": True, "projections": ()}
    gpu = _gpu(s, case)
    tp = _int(s.get("tp"))
    pp = _int(s.get("pp"))
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
        version = _version(case.get("framework_version"))
        if version and case["framework"] == "transformers":
            kw["transformers_version"] = version
        # the benchmarks load with torch_dtype="auto" (CASES.md 20); AutoAWQ runs float16
        kw.setdefault("dtype", "auto")
    elif fw == "llamacpp":
        kw["context"] = _int(s.get("n_ctx"))
        kw["n_ubatch"] = _int(s.get("n_ubatch")) or _int(s.get("n_batch"))
        kw["kv_dtype"] = {"f16": "fp16", "q8_0": "q8_0", "q4_0": "q4_0"}.get(s.get("cache_type_k") or "f16", "fp16")
        # ggml-org/ci logs of b1513 (2023): no flash attention, and that release's quantisation rules
        kw["flash_attn"] = bool(s.get("flash_attn", False))
        if re.search(r"\b(b|build )1513\b", str(case.get("framework_version"))):
            kw["llamacpp_version"] = "b1513"
        layers = _int(s.get("n_gpu_layers"))
        if layers is not None and 0 <= layers < 999:
            kw["gpu_layers"] = layers
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


def predicted_value(case: dict, analysis, fw: str) -> float | None:
    est = analysis.estimates[fw]
    if not est.supported:
        return None
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
        touched = any(source in FITTED[name].sources for name in used)
        if in_sample and touched:
            with holding_out(None):
                result.in_sample = predicted_value(case, analyze(model, **kwargs), fw)
        else:
            result.in_sample = result.predicted
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hfvram.accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=Path, action="append", help="case file(s) (default: validation/cases-*.jsonl)")
    ap.add_argument("--markdown", action="store_true", help="print the summaries as Markdown tables")
    ap.add_argument("--sources", action="store_true", help="also print the per-source table")
    ap.add_argument("--constants", action="store_true", help="print the fitted constants and their sources")
    ap.add_argument("--json", action="store_true", help="print per-case results as JSON lines")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case")
    args = ap.parse_args(argv)
    cases = [c for c in load_cases(args.cases) if c.get("usable")]
    results = [evaluate(c) for c in cases]
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
