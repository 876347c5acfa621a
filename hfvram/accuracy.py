"""`make accuracy`: every usable published measurement in validation/ through the public API, with the case's own
settings, and the median and worst absolute percentage error per framework and quantity.

    python -m hfvram.accuracy [--cases validation/cases-public.jsonl] [--json] [--verbose]

A case names the checkpoint that was measured and, in `arch_config`, the corpus model whose config has its
architecture (a fine-tune's base, for one). That model is read from the bundled snapshot (no network); a quantised
measurement of an unquantised architecture is projected with `--quantize`. Cases whose architecture is not bundled
are listed as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .gpus import GPU, GPUChoice, find
from .units import GiB

VALIDATION = Path(__file__).resolve().parent.parent / "validation"
# Figures a constant was fitted to (in-sample): reported, but kept out of the medians. Case files may also carry
# "calibration": true themselves.
CALIBRATION = {
    "vllm-10511-llama3-8b-tp1-nontorch",  # V0 Hopper non-torch 1.79 GiB
    "vllm-10511-llama3-8b-tp2-nontorch",  # V0 NCCL increment
    "vllm-10517-llama31-8b-3090-20k-nontorch",  # V0 non-Hopper non-torch 0.35 GiB
    "vllm-10517-llama31-8b-3090-29k-nontorch",
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
GPU_NAMES = {"H100 80GB": "H100-SXM", "RTX 3090": "RTX-3090", "RTX 4090": "RTX-4090", "A10 24GB": "A10",
             "A100 80GB": "A100-80GB", "Tesla V100-PCIE-16GB": "V100-16GB"}
CACHE_MODES = {"FP16": "fp16", "Q4": "q4", "Q6": "q6", "Q8": "q8", "mixed": "q6"}


@dataclass
class Result:
    case: dict
    framework: str
    quantity: str
    measured: float
    predicted: float | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def error(self) -> float | None:
        if self.predicted is None or not self.measured:
            return None
        return (self.predicted - self.measured) / self.measured


def load_cases(paths: list[Path] | None = None) -> list[dict]:
    paths = paths or sorted(VALIDATION.glob("cases-*.jsonl"))
    cases = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                case = json.loads(line)
                case["calibration"] = bool(case.get("calibration")) or case["id"] in CALIBRATION
                cases.append(case)
    return cases


def _version(text: str | None) -> str | None:
    m = re.search(r"(\d+)\.(\d+)", text or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def case_kwargs(case: dict) -> dict:
    """The case's settings as hfvram.analyze keywords."""
    s = case["settings"]
    fw = FRAMEWORK[case["framework"]]
    kw: dict = {"frameworks": [fw], "batch": s.get("batch") or 1, "offline": True, "projections": ()}
    gpu = None
    if s.get("gpu") in GPU_NAMES:
        gpu = find(GPU_NAMES[s["gpu"]])
    if s.get("gpu_total_bytes"):
        base = gpu or GPU(name=str(s.get("gpu")), memory_bytes=s["gpu_total_bytes"], usable_bytes=0, fp8=False,
                          bf16=True, compute_capability=None, klass="custom")
        gpu = GPU(**{**base.__dict__, "usable_bytes": int(s["gpu_total_bytes"])})
    if gpu is not None:
        kw["gpu"] = GPUChoice(gpu, int(s.get("tp") or s.get("num_gpus") or 1))
    if s.get("tp"):
        kw["tp"] = int(s["tp"])
    if s.get("pp"):
        kw["pp"] = int(s["pp"])
    elif s.get("num_gpus") and not s.get("tp"):
        kw["pp"] = int(s["num_gpus"])
    if s.get("pp_rank") is not None:
        kw["pp_rank"] = int(s["pp_rank"])
    dtype = s.get("dtype")
    bits = s.get("bits")
    if dtype in ("gptq", "awq"):
        kw["quantize"] = "int8" if bits == 8 else dtype
    elif dtype == "fp8":
        kw["quantize"] = "fp8"
    elif dtype == "int8":
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
        kw["context"] = s.get("max_model_len")
        for key in ("gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens"):
            if s.get(key) is not None:
                kw[key] = s[key]
        if s.get("enforce_eager"):
            kw["enforce_eager"] = True
        kw["vllm_version"] = _version(case.get("framework_version"))
        if s.get("kv_dtype") not in (None, "auto"):
            kw["kv_dtype"] = s["kv_dtype"]
    elif fw == "transformers":
        kw["context"] = s.get("context")
        kw["prompt_tokens"] = s.get("prompt_tokens")
        if s.get("flash_attn"):
            kw["attn_implementation"] = "flash_attention_2"
    elif fw == "llamacpp":
        kw["context"] = s.get("n_ctx")
        kw["n_ubatch"] = s.get("n_ubatch") or s.get("n_batch")
        kw["kv_dtype"] = {"f16": "fp16", "q8_0": "q8_0", "q4_0": "q4_0"}.get(s.get("cache_type_k") or "f16", "fp16")
        # ggml-org/ci logs of b1513 (2023): no flash attention, and that release's quantisation rules
        kw["flash_attn"] = bool(s.get("flash_attn", False))
        if re.search(r"\b(b|build )1513\b", str(case.get("framework_version"))):
            kw["llamacpp_version"] = "b1513"
        if s.get("n_gpu_layers") is not None and s["n_gpu_layers"] < 999:
            kw["gpu_layers"] = s["n_gpu_layers"]
    elif fw == "trtllm":
        kw["context"] = (s.get("max_input_len") or 0) + (s.get("max_output_len") or 0) or None
        kw["batch"] = s.get("max_batch_size") or 1
    elif fw == "exllamav2":
        kw["context"] = s.get("context") or s.get("max_model_len")
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
    c, x = est.components, est.extras
    q = case["quantity"]
    if q == "weights_bytes":
        # TensorRT-LLM #698 read nvidia-smi right after loading the engine: weights + CUDA context (CASES.md 12)
        return c["weights"] + (c["cuda_context"] if fw == "trtllm" else 0)
    if q == "non_torch_bytes":
        return c.get("non_torch")
    if q == "activation_peak_bytes":
        return c.get("activations")
    if q == "kv_cache_bytes":
        return x.get("kv_pool_bytes") if fw == "vllm" else c.get("kv_cache")
    if q == "gpu_blocks":
        return x.get("num_blocks")
    if q == "kv_tokens":
        return x.get("kv_tokens")
    if q == "cuda_graph_bytes":
        return c.get("cuda_graphs")
    if q == "compute_buffer_bytes":
        return c.get("compute")
    if q == "total_reserved_bytes":
        return c["weights"] + c["kv_cache"] + c.get("compute", 0)
    if q == "total_used_bytes":
        return est.per_gpu_bytes
    if q == "peak_allocated_bytes":
        if fw == "vllm":  # vLLM 0.6.4 peak_torch_memory includes the weights (CASES.md 5)
            return c["weights"] + c["activations"]
        if not case.get("per_gpu", True):
            return x.get("peak_allocated_total_bytes")
        return x.get("peak_allocated_bytes")
    return None


def evaluate(case: dict) -> Result:
    from .analysis import analyze
    from .errors import HfvramError

    fw = FRAMEWORK.get(case["framework"])
    result = Result(case=case, framework=case["framework"], quantity=case["quantity"], measured=case["measured"])
    if fw is None:
        result.skipped = f"no estimator for {case['framework']}"
        return result
    model = case.get("arch_config") or bundled(case.get("base_model"))
    if not model:
        result.skipped = "no bundled architecture (arch_config null, base model not in the snapshot)"
        return result
    try:
        analysis = analyze(model, **case_kwargs(case))
    except HfvramError as exc:
        result.skipped = f"{model}: {exc}"
        return result
    result.predicted = predicted_value(case, analysis, fw)
    if result.predicted is None:
        result.skipped = f"{fw} estimate has no {case['quantity']}"
    return result


def summarise(results: list[Result]) -> list[dict]:
    """Median and worst |error| per framework and quantity over out-of-sample cases; calibration cases counted
    apart."""
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
        out.append({"framework": fw, "quantity": q, "cases": len(held_out), "calibration": len(items) - len(held_out),
                    "median_abs_pct": 100 * statistics.median(errs), "worst_abs_pct": 100 * abs(worst.error),
                    "worst_case": worst.case["id"], "in_sample_only": not held_out})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hfvram.accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=Path, action="append", help="case file(s) (default: validation/cases-*.jsonl)")
    ap.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    ap.add_argument("--json", action="store_true", help="print per-case results as JSON lines")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case")
    args = ap.parse_args(argv)
    cases = [c for c in load_cases(args.cases) if c.get("usable")]
    results = [evaluate(c) for c in cases]
    if args.json:
        for r in results:
            print(json.dumps({"id": r.case["id"], "framework": r.framework, "quantity": r.quantity,
                              "measured": r.measured, "predicted": r.predicted, "error": r.error,
                              "skipped": r.skipped}))
        return 0
    if args.verbose:
        for r in results:
            if r.skipped:
                print(f"  skip  {r.case['id']}: {r.skipped}")
            else:
                print(f"  {100 * r.error:+7.1f}%  {r.case['id']}  measured {r.measured / GiB:.3f} GiB "
                      f"predicted {r.predicted / GiB:.3f} GiB" if r.quantity.endswith("bytes") else
                      f"  {100 * r.error:+7.1f}%  {r.case['id']}  measured {r.measured:,.0f} predicted "
                      f"{r.predicted:,.0f}")
    table = summarise(results)
    if args.markdown:
        print("| framework | quantity | cases | median abs. error | worst abs. error | worst case |")
        print("|---|---|---:|---:|---:|---|")
        for row in table:
            n = f"{row['cases']}" + (f" (+{row['calibration']} calibration)" if row["calibration"] else "")
            flag = " (in-sample)" if row["in_sample_only"] else ""
            print(f"| {row['framework']} | {row['quantity']} | {n} | {row['median_abs_pct']:.1f}%{flag} | "
                  f"{row['worst_abs_pct']:.1f}% | `{row['worst_case']}` |")
    else:
        print(f"{'framework':<13} {'quantity':<22} {'cases':>9} {'median |err|':>13} {'worst |err|':>12}  worst case")
        for row in table:
            n = f"{row['cases']}+{row['calibration']}c" if row["calibration"] else str(row["cases"])
            flag = "*" if row["in_sample_only"] else " "
            print(f"{row['framework']:<13} {row['quantity']:<22} {n:>9} {row['median_abs_pct']:>11.1f}%{flag} "
                  f"{row['worst_abs_pct']:>11.1f}%  {row['worst_case']}")
        print("(cases: held-out + calibration; medians over held-out cases; * = calibration cases only)")
    used = sum(1 for r in results if r.error is not None)
    skipped = [r for r in results if r.skipped]
    print(f"\n{used} of {len(cases)} usable cases evaluated; {len(skipped)} skipped"
          + (" (run with -v for the reasons)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
