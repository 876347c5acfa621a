"""`hfvram explain LOGFILE [MODEL]`: an engine's startup log beside our estimate for the same settings.

The log is read by `hfvram.logs` (the engine, the model, the settings and every memory figure it printed); the model
(MODEL, else the Hub id the log names) is estimated with those settings through `hfvram.analysis`, on the GPU the
log printed (its total as the usable memory) when it printed one; each figure is set beside the estimate's term for
it, with the difference and what drives that term (which constant, which setting). When the log ends in an
out-of-memory error, the explanation says what was being allocated, how that compares with our estimate, and what
our estimate says would fit.
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from pathlib import Path

from . import logs
from .errors import UsageError
from .gpus import GPU, GPUChoice, find
from .logs.base import ParsedLog
from .record import record
from .units import GiB, MiB, fmt_bytes

SCHEMA = "hfvram-explain/1"
# A difference smaller than this share of the larger figure (or than PRINT_SLACK) is "matches": every figure the
# engines print is rounded (vLLM GiB to 2 decimals = +-5 MiB; llama.cpp MiB to 2 decimals).
MATCH_SHARE = 0.02
PRINT_SLACK = 6 * MiB
ENGINE_FRAMEWORK = {"vllm": "vllm", "llamacpp": "llamacpp", "trtllm": "trtllm", "sglang": None}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@record
class Row:
    """One figure the log printed, beside ours."""

    component: str
    quantity: str
    log: float | None
    ours: float | None
    unit: str = "bytes"  # bytes | tokens | blocks | x
    term: str = ""  # what our figure is made of, and the settings it depends on
    why: str = ""  # what explains the difference, when there is one
    line_no: int | None = None

    @property
    def diff(self) -> float | None:
        if self.log is None or self.ours is None:
            return None
        return self.ours - self.log

    @property
    def share(self) -> float | None:
        if self.diff is None or not self.log:
            return None
        return self.diff / abs(self.log)

    @property
    def matches(self) -> bool | None:
        if self.diff is None:
            return None
        slack = PRINT_SLACK if self.unit == "bytes" else 0.5
        return abs(self.diff) <= max(slack, MATCH_SHARE * max(abs(self.log), abs(self.ours)))

    def to_dict(self) -> dict:
        return {"component": self.component, "quantity": self.quantity, "unit": self.unit, "log": self.log,
                "hfvram": self.ours, "difference": self.diff,
                "difference_share": None if self.share is None else round(self.share, 4), "matches": self.matches,
                "term": self.term, "why": self.why or None, "log_line": self.line_no}


@record
class Explanation:
    """A parsed engine log set against hfvram's estimate for the same model and settings."""

    log: ParsedLog
    engine: str
    model: str | None
    settings: dict  # hfvram.analyze keywords used
    analysis: object | None = None
    estimate: object | None = None
    rows: list[Row] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # the differences that matter, largest first
    oom: list[str] = field(default_factory=list)  # what the out-of-memory error means
    notes: list[str] = field(default_factory=list)
    gpu: dict | None = None  # the GPU the estimate used, and where its size came from

    def to_dict(self) -> dict:
        est = self.estimate
        return {
            "schema": SCHEMA,
            "engine": self.engine,
            "engine_label": logs.PARSERS[self.engine].label,
            "log": {"version": self.log.version, "model": self.log.model, "settings": _jsonable(self.log.settings),
                    "gpu_name": self.log.gpu_name, "gpu_total_bytes": self.log.gpu_total_bytes,
                    "devices": self.log.devices, "figures": [f.to_dict() for f in self.log.figures],
                    "out_of_memory": self.log.oom.to_dict() if self.log.oom else None},
            "model": self.model,
            "settings": _jsonable(self.settings),
            "gpu": self.gpu,
            "rows": [r.to_dict() for r in self.rows],
            "findings": self.findings,
            "out_of_memory": self.oom or None,
            "estimate": est.to_dict() if est is not None else None,
            "notes": self.notes,
        }


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, GPUChoice):
            v = f"{v.gpu.name}:{v.count}"
        out[k] = v
    return out


# -- entry point ----------------------------------------------------------------------------------------------------

def read_log(path: str) -> str:
    import sys

    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no log file {path!r}")
    data = p.read_bytes()
    if len(data) > 256 * MiB:
        raise UsageError(f"{path}: {len(data) / MiB:.0f} MiB is too large for a startup log (256 MiB at most)")
    return data.decode("utf-8", errors="replace")


def explain(text: str, model: str | None = None, *, engine: str | None = None, offline: bool = False,
            hub=None, **overrides) -> Explanation:
    """Parse the log, estimate the same deployment, and set the two side by side. `overrides` are hfvram.analyze
    settings that replace what the log says (gpu="H100", gpu_mem="80GiB", vllm_version="0.11", ...)."""
    from .analysis import analyze, analyze_facts
    from .options import parse as parse_options

    log = logs.parse(text, engine)
    eng = log.engine
    out = Explanation(log=log, engine=eng, model=None, settings={})
    out.notes.extend(log.notes)
    if not log.figures and log.oom is None:
        raise UsageError(f"the {logs.PARSERS[eng].label} log has no memory figure hfvram reads (is it the startup "
                         f"part of the log?)")
    model_id = _model(log, model, out.notes)
    out.model = model_id
    given = {k: v for k, v in overrides.items() if v is not None and k not in ("gpu", "gpu_mem")}
    kwargs = SETTINGS[eng](log, out.notes, given)
    for k, v in given.items():
        if k in kwargs and kwargs[k] != v:
            out.notes.append(f"{k} {v} from the command line (the log says {kwargs[k]})")
    kwargs.update(given)
    framework = ENGINE_FRAMEWORK[eng]
    kwargs.update(_gpu(log, kwargs, overrides, out))
    kwargs["frameworks"] = [framework or "transformers"]
    options = parse_options(**kwargs)
    analysis = analyze(model_id, offline=offline, hub=hub, projections=(), options=options)
    projected = _quantize_as_logged(log, analysis, kwargs, out.notes)
    if projected:
        kwargs["quantize"] = projected
        analysis = analyze_facts(analysis.facts, parse_options(**kwargs), offline=offline, hub=hub, projections=())
    out.settings = kwargs
    out.analysis = analysis
    out.notes.extend(n for n in analysis.notes if n not in out.notes)
    if framework is not None:
        out.estimate = analysis.estimates[framework]
        if not out.estimate.supported:
            out.notes.append(f"{logs.PARSERS[eng].label} cannot run this model in hfvram's support table: "
                             + "; ".join(out.estimate.unsupported))
    ROWS[eng](out)
    _findings(out)
    _out_of_memory(out)
    return out


# -- the model and the GPU ------------------------------------------------------------------------------------------

def _model(log: ParsedLog, model: str | None, notes: list[str]) -> str:
    if model:
        if log.model and log.model != model:
            notes.append(f"the log runs {log.model}; estimated as {model} (MODEL)")
        return model
    name = log.model
    if name and _HUB_ID.match(name) and not Path(name).exists():
        return name
    if name and Path(name).is_dir() and (Path(name) / "config.json").is_file():
        return name
    if log.model_hint:
        notes.append(f"MODEL not given: the log's GGUF names its base model, {log.model_hint}; estimated as that "
                     f"architecture with the log's quantisation")
        return log.model_hint
    where = f"it loads {name}" if name else "it names no model"
    raise UsageError(f"cannot tell which Hub model the log runs ({where}): give it, "
                     f"`hfvram explain LOGFILE org/name`")


def _gpu(log: ParsedLog, kwargs: dict, overrides: dict, out: Explanation) -> dict:
    """The GPU to estimate on: --gpu/--gpu-mem, else the log's device with the total it printed (what CUDA reports,
    the figure engines budget from), else the total its budget implies, else the catalog entry of the device it
    names."""
    count = (kwargs.get("tp") or 1) * (kwargs.get("pp") or 1)
    if overrides.get("gpu") or overrides.get("gpu_mem"):
        out.gpu = {"name": overrides.get("gpu") or overrides.get("gpu_mem"), "source": "command line"}
        return {k: overrides[k] for k in ("gpu", "gpu_mem") if overrides.get(k)}
    named = None
    if log.gpu_name:
        try:
            named = find(log.gpu_name)
        except UsageError:
            named = None
    total, source = log.gpu_total_bytes, "printed by the log"
    util, budget = log.settings.get("gpu_memory_utilization"), log.settings.get("budget_bytes")
    if total is None and util and budget:
        total, source = int(budget / util), f"budget {fmt_bytes(budget)} / gpu_memory_utilization {util:g}"
    if total is None and named is None:
        out.notes.append("the log prints no GPU total and names no GPU in hfvram's catalog: pools and fit are not "
                         "compared (give --gpu or --gpu-mem)")
        return {}
    if named is not None and total is None:
        total, source = named.usable_bytes, f"hfvram's catalog ({named.name}; the log names the device)"
    base = named or GPU(name=log.gpu_name or f"{total / GiB:.2f} GiB GPU", memory_bytes=total, usable_bytes=total,
                        fp8=True, bf16=True, compute_capability=log.settings.get("compute_capability"),
                        klass="custom")
    gpu = GPU(**{**base.__dict__, "usable_bytes": int(total)})
    out.gpu = {"name": gpu.name, "usable_bytes": int(total), "source": source,
               "catalog": named.name if named else None, "count": count}
    return {"gpu": GPUChoice(gpu, count)}


def _quantize_as_logged(log: ParsedLog, analysis, kwargs: dict, notes: list[str]) -> str | None:
    """A quantisation the engine applies at load (vLLM --quantization fp8 on a bf16 checkpoint), or the log's GGUF
    type, when MODEL's checkpoint is not already in that format."""
    if "quantize" in kwargs:
        return None
    q = str(log.settings.get("quantization") or "").lower()
    facts_q = analysis.facts.quant
    if log.engine == "vllm" and q and facts_q is None:
        target = {"fp8": "fp8", "fbgemm_fp8": "fp8", "bitsandbytes": "nf4", "awq": "awq", "awq_marlin": "awq",
                  "gptq": "gptq", "gptq_marlin": "gptq"}.get(q)
        if target:
            notes.append(f"the log loads with quantization={q} and MODEL's checkpoint is unquantised: estimated with "
                         f"--quantize {target}")
            return target
        notes.append(f"the log loads with quantization={q}, which hfvram cannot project from MODEL's unquantised "
                     f"checkpoint: give the quantised repo as MODEL")
    return None


# -- settings per engine ----------------------------------------------------------------------------------------------

def _vllm_settings(log: ParsedLog, notes: list[str], given: dict) -> dict:
    from .estimate.vllm import NEWEST_VERSION, version_tuple
    from .options import VLLM_OLDEST

    s = log.settings
    kw: dict = {}
    version = log.version or ""
    m = re.match(r"v?(\d+)\.(\d+)", version)
    if m and not re.match(r"v?0\.1\.dev", version):
        v = (int(m.group(1)), int(m.group(2)))
        if v > version_tuple(NEWEST_VERSION):
            notes.append(f"vLLM {version} is newer than the newest release hfvram has read ({NEWEST_VERSION}): "
                         f"estimated with {NEWEST_VERSION}'s policy")
            kw["vllm_version"] = NEWEST_VERSION
        elif v < VLLM_OLDEST:
            notes.append(f"vLLM {version} is older than the releases hfvram models: estimated with "
                         f"{'.'.join(map(str, VLLM_OLDEST))}'s policy")
            kw["vllm_version"] = ".".join(map(str, VLLM_OLDEST))
        else:
            kw["vllm_version"] = f"{v[0]}.{v[1]}"
    elif "vllm_version" not in given:
        notes.append(f"vLLM version {version or 'not printed'} is not a release number: estimated with hfvram's "
                     f"default vLLM policy (give --vllm-version)")
    context = s.get("max_model_len") or (log.oom.max_model_len if log.oom else None)
    if context:
        kw["context"] = context
    for key in ("tp", "pp", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "block_size"):
        if s.get(key) is not None:
            kw[key] = s[key]
    if s.get("enforce_eager"):
        kw["enforce_eager"] = True
    kv = str(s.get("kv_dtype") or "auto").lower()
    if kv.startswith("fp8"):
        kw["kv_dtype"] = "fp8"
    elif kv in ("bfloat16", "bf16"):
        kw["kv_dtype"] = "bf16"
    elif kv in ("float16", "half", "fp16"):
        kw["kv_dtype"] = "fp16"
    dtype = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}.get(str(s.get("dtype")))
    if dtype:
        kw["dtype"] = dtype
    if s.get("api_server") is False:  # the offline LLM class has larger batch defaults
        kw["vllm_server"] = False
    if s.get("dp", 1) and s.get("dp", 1) > 1:
        notes.append(f"data parallel {s['dp']}: each replica is estimated on its own GPUs")
    if s.get("decode_context_parallel_size", 1) > 1:
        notes.append(f"decode context parallel {s['decode_context_parallel_size']}: vLLM multiplies its KV token "
                     f"capacity by it; hfvram does not model DCP")
    return kw


def _llamacpp_settings(log: ParsedLog, notes: list[str], given: dict) -> dict:
    from .estimate.gguf import normalize_ftype

    s = log.settings
    kw: dict = {}
    n_seq = s.get("n_seq_max") or 1
    n_ctx = s.get("n_ctx")
    if n_ctx:
        kw["context"] = max(1, n_ctx // n_seq)
        if n_seq > 1:
            kw["batch"] = n_seq
    if s.get("n_ubatch"):
        kw["n_ubatch"] = s["n_ubatch"]
    if s.get("flash_attn") is not None:
        kw["flash_attn"] = bool(s["flash_attn"])
    ctk = s.get("cache_type_k")
    kv = {"f16": None, "bf16": "bf16", "f32": "fp32", "q8_0": "q8_0", "q4_0": "q4_0"}.get(str(ctk), None)
    if kv:
        kw["kv_dtype"] = kv
    if ctk and ctk not in ("f16", "bf16", "f32", "q8_0", "q4_0"):
        notes.append(f"cache type {ctk} is not one hfvram models: estimated with f16")
    if s.get("cache_type_v") and ctk and s["cache_type_v"] != ctk:
        notes.append(f"K cache {ctk}, V cache {s['cache_type_v']}: hfvram uses one type for both ({ctk})")
    layers, total = s.get("n_gpu_layers"), s.get("n_layer_total")
    if layers is not None and total and layers < total:
        kw["gpu_layers"] = layers
    gguf = s.get("gguf_type")
    if gguf:
        name = gguf[3:] if gguf.upper().startswith("UD-") else gguf
        try:
            kw["quantize"] = f"gguf:{normalize_ftype(name)}"
        except ValueError:
            notes.append(f"GGUF type {gguf} is not one hfvram's GGUF rules reproduce: weights estimated from MODEL's "
                         f"checkpoint as stored")
        if gguf.upper().startswith("UD-") or "XL" in gguf.upper():
            notes.append(f"{gguf} is a dynamic mixture (per-tensor types chosen by its maker): hfvram applies "
                         f"llama-quantize's {name} rules, so weights differ by the mixture")
    devices = [d for d in log.devices if not d["device"].upper().startswith("CPU")]
    gpu_bufs = {f.device for f in log.figures if f.quantity in ("weights_bytes", "kv_cache_bytes") and f.device}
    count = max(len(devices), len(gpu_bufs), 1)
    if count > 1:
        kw["pp"] = count  # --split-mode layer over the devices
    if s.get("override_tensor"):
        notes.append("--override-tensor keeps some tensors in host RAM (" + ", ".join(s["override_tensor"][:4])
                     + "): hfvram puts every offloaded layer on the GPU, so its GPU weights are higher by what the "
                       "log's CPU buffers hold beyond the token embeddings")
    return kw


def _trtllm_settings(log: ParsedLog, notes: list[str], given: dict) -> dict:
    s = log.settings
    kw: dict = {}
    if s.get("max_seq_len"):
        kw["context"] = s["max_seq_len"]
    if s.get("max_num_tokens"):
        kw["max_num_tokens"] = s["max_num_tokens"]
    if s.get("kv_cache_free_gpu_mem_fraction"):
        kw["free_gpu_memory_fraction"] = min(1.0, float(s["kv_cache_free_gpu_mem_fraction"]))
    if s.get("tp"):
        kw["tp"] = s["tp"]
    if s.get("backend") == "tensorrt":
        notes.append("a TensorRT engine (trtllm-build): hfvram models the PyTorch backend, so the engine's runtime "
                     "buffers (execution context, decoder) have no term of ours, and the pool is estimated as the "
                     "PyTorch backend would size it")
    if s.get("max_tokens_in_paged_kv_cache"):
        notes.append(f"max_tokens_in_paged_kv_cache {s['max_tokens_in_paged_kv_cache']:,} is set: TensorRT-LLM takes "
                     f"the smaller of it and the free-memory fraction; hfvram sizes the pool by the fraction only")
    return kw


def _sglang_settings(log: ParsedLog, notes: list[str], given: dict) -> dict:
    s = log.settings
    kw: dict = {}
    if s.get("context_len") or s.get("context_length"):
        kw["context"] = s.get("context_len") or s.get("context_length")
    if s.get("tp"):
        kw["tp"] = s["tp"]
    notes.append("hfvram has no SGLang estimator: the weights and the KV bytes per token are compared with the "
                 "model's facts")
    return kw


SETTINGS = {"vllm": _vllm_settings, "llamacpp": _llamacpp_settings, "trtllm": _trtllm_settings,
            "sglang": _sglang_settings}


# -- rows per engine ----------------------------------------------------------------------------------------------

def _pick(log: ParsedLog, quantity: str, details=(None,), how: str = "first"):
    """The log's figure for a quantity: the first with one of `details` (in that order of preference); over ranks
    or devices `how` = "max" (the most loaded), "min" (vLLM sizes the pool by the smallest), "sum" (all devices)."""
    for detail in details:
        figs = log.get(quantity, detail)
        if not figs:
            continue
        if how == "sum":
            by_dev = {}
            for f in figs:
                by_dev.setdefault(f.device, f)
            return float(sum(f.value for f in by_dev.values())), figs[0].line_no
        if how == "max":
            f = max(figs, key=lambda f: f.value)
        elif how == "min":
            f = min(figs, key=lambda f: f.value)
        else:
            f = figs[0]
        return float(f.value), f.line_no
    return None, None


def _vllm_rows(out: Explanation) -> None:
    from .estimate import vllm as V

    log, est = out.log, out.estimate
    if est is None or not est.supported:
        return
    c, x = est.components, est.extras
    model = out.analysis.model
    tp = est.gpus // max(1, out.settings.get("pp") or 1)
    version = V.version_tuple(x.get("vllm_version"))
    mnbt, seqs = x.get("max_num_batched_tokens"), x.get("max_num_seqs")
    graphs_in = version >= V.CUDAGRAPH_IN_BUDGET_SINCE
    add = out.rows.append

    w, n = _pick(log, "weights_bytes", how="max")
    add(Row("weights", "weights_bytes", w, c.get("weights"), line_no=n,
            term=f"{model.label} tensors as stored / TP {tp} + rotary cache + vocab padding to 64 "
                 f"(hfvram/estimate/vllm.py weights_per_gpu)"))
    nt, n = _pick(log, "non_torch_bytes", how="max")
    add(Row("non-torch memory", "non_torch_bytes", nt, c.get("non_torch"), line_no=n,
            term=f"a measured constant for vLLM {x.get('vllm_version')} at TP {tp}"
                 + (" / PP" if (out.settings.get('pp') or 1) > 1 else "")
                 + " (NON_TORCH in hfvram/estimate/vllm.py, H100 logs)"))
    a, n = _pick(log, "activation_peak_bytes", how="max")
    sampler_rows = min(seqs or 0, mnbt or 0)
    add(Row("activation peak", "activation_peak_bytes", a, c.get("activations"), line_no=n,
            term=f"max(one MLP layer over max_num_batched_tokens {mnbt:,}, the sampler over {sampler_rows:,} rows "
                 f"(max_num_seqs {seqs:,}) x vocab {model.vocab:,}) + MoE workspaces (activation_peak)"))
    p, n = _pick(log, "peak_allocated_bytes", how="max")
    if p is not None:
        add(Row("torch peak (incl. weights)", "peak_allocated_bytes", p, c.get("weights", 0) + c.get("activations", 0),
                line_no=n, term="weights + activation peak (vLLM 0.6.4's peak_torch_memory includes the weights)"))
    g_est, n_est = _pick(log, "cuda_graph_bytes", ("estimated",))
    g_cap, n_cap = _pick(log, "cuda_graph_bytes", ("captured", None), how="max")
    graph_term = ("0: --enforce-eager" if out.settings.get("enforce_eager") else
                  "first capture 260 MiB + 6 MiB per further graph over the capture sizes for max_num_seqs "
                  f"{seqs:,} (CUDAGRAPH_FIRST/PER_GRAPH in hfvram/estimate/vllm.py, one model's log)")
    if g_est is not None:
        add(Row("CUDA graphs (vLLM's estimate)", "cuda_graph_bytes", g_est, c.get("cuda_graphs"), line_no=n_est,
                term=graph_term))
    if g_cap is not None or g_est is None:
        add(Row("CUDA graphs (captured)", "cuda_graph_bytes", g_cap, c.get("cuda_graphs"), line_no=n_cap,
                term=graph_term + ("" if graphs_in else "; captured after the pool is sized, outside the budget")))
    budget = log.settings.get("budget_bytes")
    if budget is not None or x.get("budget_bytes") is not None:
        add(Row("budget", "budget_bytes", budget, x.get("budget_bytes"),
                term=f"ceil(gpu_memory_utilization {x.get('gpu_memory_utilization'):g} x the GPU's total)"))
    kv, n = _pick(log, "kv_cache_bytes", ("exact", None), how="min")
    fixed = "weights + non-torch + activation peak" + (" + CUDA graphs" if graphs_in else "")
    add(Row("KV cache pool", "kv_cache_bytes", kv, x.get("kv_pool_bytes"), line_no=n,
            term=f"budget - ({fixed})"))
    tok, n = _pick(log, "kv_tokens", how="min")
    add(Row("KV cache tokens", "kv_tokens", tok, x.get("kv_tokens"), unit="tokens", line_no=n,
            term=f"pool / bytes per token in {x.get('block_size')}-token blocks (kv_cache_dtype {x.get('kv_dtype')})"))
    context = out.settings.get("context")
    if kv and tok and context:
        add(Row("KV bytes per token", "kv_bytes_per_token", kv / tok, c.get("kv_cache", 0) / context, unit="B/token",
                term=f"one request of {context:,} tokens in {x.get('block_size')}-token blocks, every cache layer "
                     f"(sliding layers their window), kv_cache_dtype {x.get('kv_dtype')}, / context"))
    blocks, n = _pick(log, "gpu_blocks", how="min")
    if blocks is not None:
        add(Row("GPU blocks", "gpu_blocks", blocks, x.get("num_blocks"), unit="blocks", line_no=n,
                term=f"pool // block bytes - 1 (a null block)"))
    conc, n = _pick(log, "max_concurrency", how="min")
    if conc is not None:
        add(Row("maximum concurrency", "max_concurrency", conc, x.get("max_concurrency"), unit="x", line_no=n,
                term=f"blocks / blocks one request of {out.settings.get('context', 0):,} tokens needs"))
    _vllm_why(out, graphs_in)


def _weights_why(out: Explanation, row: Row, ranks: int) -> str:
    """Why the weights differ: a parallel degree the log did not print, a checkpoint in another format than MODEL
    (bytes per parameter), or the engine's loaded layout."""
    if row.log is None or row.ours is None or not row.log:
        return ""
    ratio = row.ours / row.log
    for k in (2, 4, 8, 16):
        if abs(ratio - k) <= 0.03 * k and ranks == 1:
            return (f"ours is {k} x the log's: the log's rank holds 1/{k} of the model, so it ran with tensor or "
                    f"pipeline parallelism {k} that the excerpt does not print (give --tp {k})")
    params = out.analysis.facts.params_total if out.analysis is not None else None
    q = out.log.settings.get("quantization")
    facts_q = out.analysis.facts.quant if out.analysis is not None else None
    if q and facts_q is None and "quantize" not in out.settings:
        return (f"the log loads quantization={q} but MODEL's checkpoint is unquantised: give the quantised repo the "
                f"log ran as MODEL (or --quantize)")
    if params:
        per_log = row.log * ranks / params
        per_ours = row.ours * ranks / params
        if abs(per_log - per_ours) > 0.15 * per_ours:
            return (f"{per_log:.2f} bytes per parameter in the log ({_format_of(per_log)}), {per_ours:.2f} ours "
                    f"({_format_of(per_ours)}): the engine ran a checkpoint in another format than MODEL; give that "
                    f"repo as MODEL, or --quantize")
    if q:
        return (f"the log loads quantization={q}: the engine's loaded layout (repacked or padded for its kernel, "
                f"some modules kept unquantised) is not the stored one we count")
    return ("we count the checkpoint's stored tensors: a different checkpoint than MODEL, tensors the engine does not "
            "load (vision tower, MTP layers), or a dtype change at load would show here")


def _format_of(bytes_per_param: float) -> str:
    """A weight format from its bytes per parameter (2 = 16-bit, 1 = 8-bit, ~0.55 = 4-bit with group scales)."""
    for low, high, name in ((3.5, 4.5, "32-bit"), (1.7, 2.3, "16-bit"), (0.85, 1.25, "8-bit"),
                            (0.6, 0.85, "5-6 bits"), (0.4, 0.6, "4-bit"), (0.2, 0.4, "2-3 bits")):
        if low <= bytes_per_param < high:
            return name
    return "an unusual size"


def _vllm_why(out: Explanation, graphs_in: bool) -> None:
    rows = {r.component: r for r in out.rows}
    log, est = out.log, out.estimate
    x = est.extras
    w = rows.get("weights")
    if w and w.matches is False:
        w.why = _weights_why(out, w, 1)
    nt = rows.get("non-torch memory")
    if nt and nt.matches is False:
        nt.why = (f"non-torch memory (CUDA/cuBLAS workspaces, NCCL and custom all-reduce buffers) depends on the GPU, "
                  f"driver, TP size and interconnect; ours is modelled from the release's profiler era, the TP size, the "
                  f"interconnect and the GPU class (hfvram.estimate.vllm), each term fitted on published logs")
    a = rows.get("activation peak")
    if a and a.matches is False:
        seqs_known = "max_num_seqs" in log.settings
        a.why = ("the profile run's peak is the larger of the MLP over the batched tokens and the sampler's logits"
                 + ("" if seqs_known else f"; max_num_seqs is not printed, so vLLM's default "
                    f"{x.get('max_num_seqs'):,} for this GPU class is assumed")
                 + "; MoE and quantised kernels hold workspaces of their own")
    for name in ("CUDA graphs (vLLM's estimate)", "CUDA graphs (captured)"):
        g = rows.get(name)
        if g and g.matches is False:
            g.why = ("graph memory grows with the model (layers, hidden size) and the capture sizes; our figure is a "
                     "first capture plus a per-graph, per-layer increment over the release's capture sizes, fitted on "
                     "other models' logs")
    pool = rows.get("KV cache pool")
    if pool and pool.diff is not None and pool.matches is False:
        parts = []
        accounted = 0.0
        for name in ("weights", "non-torch memory", "activation peak") + (("CUDA graphs (vLLM's estimate)",)
                                                                           if graphs_in else ()):
            r = rows.get(name)
            if r and r.diff is not None and abs(r.diff) >= PRINT_SLACK:
                accounted -= r.diff
                parts.append(f"{name} {_signed(-r.diff)}")
        b = rows.get("budget")
        if b and b.diff is not None and abs(b.diff) >= PRINT_SLACK:
            accounted += b.diff
            parts.append(f"budget {_signed(b.diff)}")
        if parts:
            rest = pool.diff - accounted
            pool.why = ("the pool is what the budget leaves, so our terms move it by: " + ", ".join(parts)
                        + f" (together {_signed(accounted)} of the {_signed(pool.diff)})"
                        + (f"; {_signed(rest)} is not accounted for by a printed figure"
                           if abs(rest) >= PRINT_SLACK else ""))
    per = rows.get("KV bytes per token")
    if per and per.matches is False:
        per.why = ("the KV cache dtype, the sliding-window / hybrid page layout, or the block rounding of one request "
                   "differs (vLLM before 0.21 counts tokens as blocks x block size)")
    tok = rows.get("KV cache tokens")
    if tok and tok.matches is False and (pool is None or pool.log is None) and tok.ours:
        per_token = (x.get("kv_pool_bytes") or 0) / tok.ours
        fixed = [r for r in out.rows if r.component in ("weights", "non-torch memory", "activation peak")
                 or (graphs_in and r.component.startswith("CUDA graphs"))]
        terms = ", ".join(f"{r.component} {fmt_bytes(r.ours)}" for r in fixed if r.ours)
        tok.why = (f"the log prints no pool: at {per_token:,.0f} B per token the difference is "
                   f"{_signed(tok.diff * per_token)} of pool, which our budget less {terms} leaves"
                   + ("" if log.get("non_torch_bytes") else "; the non-torch figure is the likeliest: the log "
                      "does not print it, and it varies with the driver and GPU beyond what hfvram models"))
    elif tok and tok.matches is False:
        if per and per.matches:
            tok.why = "the bytes per token agree: the difference is the pool's"
        elif per and per.matches is False:
            tok.why = "the bytes per token differ (row above)"


def _llamacpp_rows(out: Explanation) -> None:
    log, est = out.log, out.estimate
    if est is None or not est.supported:
        return
    c, x = est.components, est.extras
    devices = max(1, est.gpus)
    add = out.rows.append
    label = out.analysis.model.label if out.analysis is not None else ""
    w, n = _pick(log, "weights_bytes", how="sum")
    add(Row("weights on the GPU(s)", "weights_bytes", w, c.get("weights", 0) * devices, line_no=n,
            term=f"{x.get('gguf_type') or label} tensors of the {x.get('gpu_layers')} offloaded layers (the output "
                 f"layer counts as one) by llama.cpp's quantisation rules; token embeddings in host RAM"))
    kv, n = _pick(log, "kv_cache_bytes", ("non_swa_kv", "swa_kv", None, "recurrent_state"), how="sum")
    if kv is not None:
        kv = float(sum(f.value for f in log.get("kv_cache_bytes") if f.device and not (f.detail or "").endswith(
            "total_all_devices")))
    else:
        kv, n = _pick(log, "kv_cache_bytes", ("kv_total_all_devices", "non_swa_kv_total_all_devices"), how="first")
        swa_total, _ = _pick(log, "kv_cache_bytes", ("swa_kv_total_all_devices",))
        if kv is not None and swa_total is not None:
            kv += swa_total
    add(Row("KV cache on the GPU(s)", "kv_cache_bytes", kv, c.get("kv_cache", 0) * devices, line_no=n,
            term=f"n_ctx {x.get('n_ctx'):,} cells x KV heads x head dim x {x.get('cache_type')} per offloaded layer; "
                 f"sliding-window layers min(n_ctx, window x seqs + n_ubatch) cells, padded to 256"))
    comp, n = _pick(log, "compute_buffer_bytes", how="max")
    add(Row("compute buffer (largest device)", "compute_buffer_bytes", comp, c.get("compute"), line_no=n,
            term=f"the worst-case graph's largest live set for n_ubatch {x.get('n_ubatch')} x n_ctx "
                 f"{x.get('n_ctx'):,}, flash attention {'on' if x.get('flash_attn') else 'off'}"))
    host = [f for f in log.get("host_bytes", host=True) if (f.detail or "").endswith("model_buffer")]
    if host:
        add(Row("model in host RAM", "host_bytes", float(sum(f.value for f in host)), x.get("host_bytes"),
                line_no=host[0].line_no, term="token embeddings + layers not offloaded (+ logits buffer)"))
    total, n = _pick(log, "total_reserved_bytes")
    if total is not None:
        add(Row("total VRAM (llama.cpp's count)", "total_reserved_bytes", total,
                c.get("weights", 0) + c.get("kv_cache", 0) + c.get("compute", 0), line_no=n,
                term="weights + KV + compute buffer"))
    ollama = log.settings.get("ollama_estimate")
    if ollama:
        parts = [f"{name} {fmt_bytes(ollama[key])}" for key, name in (
            ("memory.weights.total", "weights"), ("memory.required.kv", "KV"), ("memory.graph.full", "graph"),
            ("memory.required.full", "required in all"), ("memory.available", "free")) if key in ollama]
        out.notes.append("Ollama's own estimate before it started llama.cpp: " + ", ".join(parts)
                         + f"; hfvram: weights {fmt_bytes(c.get('weights', 0) * devices)}, KV "
                           f"{fmt_bytes(c.get('kv_cache', 0) * devices)}, compute {fmt_bytes(c.get('compute', 0))}")
    rows = {r.component: r for r in out.rows}
    w = rows["weights on the GPU(s)"]
    if w.matches is False:
        reasons = []
        if log.settings.get("override_tensor"):
            reasons.append("--override-tensor keeps tensors in host RAM that we count on the GPU")
        if devices > 1:
            reasons.append("llama.cpp splits layers by free memory, we split evenly")
        if not x.get("gguf_type"):
            reasons.append("the log's GGUF type is not known to us: weights are MODEL's stored tensors")
        w.why = "; ".join(reasons) or ("the GGUF's per-tensor types differ from llama-quantize's rules for this "
                                       "type (an imatrix or a hand-made mixture), or MODEL is another checkpoint")
    k = rows["KV cache on the GPU(s)"]
    if k.matches is False and k.log and k.ours:
        k.why = _llamacpp_kv_why(out, k)
    h = rows.get("model in host RAM")
    if h is not None and h.matches is False:
        h.why = ("what --override-tensor moves to the CPU" if log.settings.get("override_tensor") else
                 "the layers left on the CPU and the token embeddings; the GGUF's per-tensor types set their size")
    cb = rows["compute buffer (largest device)"]
    if cb.matches is False:
        cb.why = ("the compute buffer depends on the graph llama.cpp reserves (n_ubatch, n_ctx, flash attention, "
                  "the model's widest op) and on the build: ours reproduces one build's formula")


def _llamacpp_kv_why(out: Explanation, row: Row) -> str:
    log, x, a = out.log, out.estimate.extras, out.analysis
    n_ctx = log.settings.get("n_ctx_kv") or log.settings.get("n_ctx")
    if n_ctx and n_ctx != x.get("n_ctx"):
        return f"n_ctx {n_ctx:,} in the log, {x.get('n_ctx'):,} ours"
    ctk = log.settings.get("cache_type_k")
    if ctk and ctk != x.get("cache_type"):
        return f"cache type {ctk} in the log, {x.get('cache_type')} ours"
    kinds = a.kv.by_kind if a is not None else {}
    sliding = kinds.get("sliding_attention", {}).get("layers", 0)
    if sliding and n_ctx and a is not None and a.kv.per_token_bytes:
        from .estimate.base import KV_BYTES

        elem = KV_BYTES.get({"f16": "fp16", "f32": "fp32"}.get(str(x.get("cache_type")), str(x.get("cache_type"))),
                            2.0)
        full = a.kv.per_token_bytes / KV_BYTES.get(a.kv.dtype, 2.0) * elem * n_ctx
        layers = x.get("gpu_layers")
        if abs(full - row.log) <= 0.02 * row.log and (layers is None or layers > len(a.facts.arch.layers)):
            return (f"the log holds all {len(a.facts.arch.layers)} layers at n_ctx ({fmt_bytes(full)}): llama.cpp "
                    f"runs this architecture without its sliding window, hfvram holds the {sliding} sliding layers "
                    f"at their window")
    return "the cache layout differs (layers offloaded, sliding-window cells, or the cache types)"


def _trtllm_rows(out: Explanation) -> None:
    log, est = out.log, out.estimate
    if est is None or not est.supported:
        return
    c, x = est.components, est.extras
    add = out.rows.append
    backend = log.settings.get("backend")
    w, n = _pick(log, "weights_bytes", (None, "engine_size", "trt_build_total_weights_memory", "checkpoint_estimate"))
    add(Row("weights", "weights_bytes", w, c.get("weights"), line_no=n,
            term="the checkpoint's tensors / TP (the engine file adds its TensorRT plan)"))
    if backend == "tensorrt" or log.get("runtime_buffer_bytes"):
        rb = [f for f in log.get("runtime_buffer_bytes") if f.detail in ("execution_context", "runtime_buffers",
                                                                          "decoder")]
        if rb:
            add(Row("runtime buffers (execution context, runtime, decoder)", "runtime_buffer_bytes",
                    float(sum(f.value for f in rb)), None, line_no=rb[0].line_no,
                    term="no term of ours: sized at build by max_batch_size, max_input_len and max_num_tokens",
                    why="hfvram models the PyTorch backend; a TensorRT engine's buffers are not estimated"))
    a, n = _pick(log, "activation_peak_bytes")
    if a is not None:
        add(Row("activation peak", "activation_peak_bytes", a, c.get("activations"), line_no=n,
                term=f"the profiling forward over max_num_tokens {x.get('max_num_tokens'):,} (vLLM's MLP formula)"))
    nt, n = _pick(log, "non_torch_bytes", ("outside_torch_after_profiling", "outside_torch_after_weights"))
    if nt is not None:
        add(Row("memory outside torch (incl. CUDA graphs)", "non_torch_bytes", nt,
                c.get("non_torch", 0) + c.get("cuda_graphs", 0) + c.get("cuda_context", 0), line_no=n,
                term="vLLM's measured non-torch constant + 34 CUDA graphs at vLLM's per-graph cost + CUDA context"))
    pk, n = _pick(log, "total_used_bytes", ("profiling_peak_torch_plus_nontorch", None))
    if pk is not None:
        ours = sum(v for k, v in c.items() if k != "kv_cache")
        add(Row("profiling peak (torch + non-torch)", "total_used_bytes", pk, ours, line_no=n,
                term="weights + activations + non-torch + CUDA graphs + CUDA context"))
    kv, n = _pick(log, "kv_cache_bytes", (None,))
    add(Row("KV cache pool", "kv_cache_bytes", kv, x.get("kv_pool_bytes"), line_no=n,
            term=f"free_gpu_memory_fraction {x.get('free_gpu_memory_fraction'):g} x (GPU total - profiling peak)"))
    tok, n = _pick(log, "kv_tokens", (None,))
    add(Row("KV cache tokens", "kv_tokens", tok, x.get("kv_tokens"), unit="tokens", line_no=n,
            term="pool / bytes per token"))
    bpt = log.settings.get("kv_bytes_per_token") or (kv / tok if kv and tok else None)
    if bpt and x.get("kv_pool_bytes") and x.get("kv_tokens"):
        add(Row("KV bytes per token", "kv_bytes_per_token", float(bpt), x["kv_pool_bytes"] / x["kv_tokens"],
                unit="B/token", term=f"every attention layer's K and V per token / TP, kv dtype {x.get('kv_dtype')}"))
    blocks, n = _pick(log, "gpu_blocks")
    tpb = log.settings.get("tokens_per_block") or x.get("tokens_per_block")
    if blocks is not None and x.get("kv_tokens") is not None:
        add(Row("KV blocks", "gpu_blocks", blocks, x["kv_tokens"] // tpb, unit="blocks", line_no=n,
                term=f"tokens / {tpb}-token blocks"))
    total = out.gpu.get("usable_bytes") if out.gpu else None
    if total:
        free_log = log.settings.get("free_before_kv_bytes")
        if free_log is None and pk is not None and log.gpu_total_bytes:
            free_log = log.gpu_total_bytes - pk
        peak_ours = sum(v for k, v in c.items() if k != "kv_cache")
        at = next(i for i, r in enumerate(out.rows) if r.component == "KV cache pool")
        out.rows.insert(at, Row("free memory the pool is a share of", "free_before_kv_bytes", free_log,
                            total - peak_ours, term="GPU total - profiling peak (weights, activations, non-torch, "
                                                    "CUDA graphs, CUDA context)"))
    rows = {r.component: r for r in out.rows}
    w = rows["weights"]
    if w.matches is False:
        w.why = _weights_why(out, w, 1)
        if w.log and w.ours and log.get("weights_bytes", "engine_size") and abs(w.diff) < 0.05 * w.log:
            w.why = "the engine file holds the TensorRT plan beside the weights"
    outside = rows.get("memory outside torch (incl. CUDA graphs)")
    after_load, _ = _pick(log, "non_torch_bytes", ("outside_torch_after_weights",))
    if outside is not None and outside.matches is False and after_load and after_load > 4 * GiB:
        outside.why = (f"{fmt_bytes(after_load)} was already outside torch right after the weights loaded: on a "
                       f"unified-memory device (DGX Spark, Jetson) that counts host-side allocations, on a discrete "
                       f"GPU another process's memory; our term is libraries and graphs only")
    pool = rows["KV cache pool"]
    if pool.matches is False:
        if backend == "tensorrt":
            pool.why = ("the engine's runtime buffers and its free-memory rule are not our PyTorch-backend peak; "
                        "a fixed max_tokens_in_paged_kv_cache also caps it" if
                        log.settings.get("max_tokens_in_paged_kv_cache") else
                        "the engine's runtime buffers take memory our PyTorch-backend peak does not have")
        else:
            pool.why = "the pool is a fraction of what the profiling peak leaves: the rows above move it"
    free = rows.get("free memory the pool is a share of")
    if free is not None and free.log and pool.log:
        share = pool.log / free.log
        ours = x.get("free_gpu_memory_fraction")
        if ours and abs(share - ours) > 0.015 and "free_gpu_memory_fraction" not in out.settings:
            out.notes.append(f"the log's pool is {share:.2f} of the memory it had free, ours {ours:g}: "
                             f"kv_cache_free_gpu_mem_fraction was about {share:.2f} (give --free-gpu-memory-fraction "
                             f"{share:.2f})")
    if free is not None and free.matches is False:
        rb = next((r for r in out.rows if r.component.startswith("runtime buffers")), None)
        free.why = ((f"the engine's runtime buffers ({fmt_bytes(rb.log)}) are not in our peak, which has the "
                     f"PyTorch backend's activations, graphs and non-torch memory instead") if rb and rb.log else
                    "what the profiling peak takes differs (rows above)")
    tok = rows["KV cache tokens"]
    per = rows.get("KV bytes per token")
    if per is not None and per.matches is False:
        ratio = per.ours / per.log if per.log else 0
        per.why = ("the log's cache takes " + (f"{1 / ratio:.2f} x " if ratio else "") + "our bytes per token: "
                   + ("an 8-bit KV cache (give --kv-dtype fp8)" if 1.8 <= ratio <= 2.2 else
                      "the KV dtype, the layers that hold a cache, or the engine's block accounting differ"))
    if tok.matches is False and per is not None:
        tok.why = ("the bytes per token agree: the difference is the pool's" if per.matches else
                   "the bytes per token differ (row above)")


def _sglang_rows(out: Explanation) -> None:
    log, a = out.log, out.analysis
    tp = out.settings.get("tp") or 1
    w, n = _pick(log, "weights_bytes", how="max")
    out.rows.append(Row("weights", "weights_bytes", w, a.facts.weights.bytes / tp, line_no=n,
                        term="the checkpoint's tensors as stored / TP (measured by SGLang as the drop in free memory)"))
    kv, n = _pick(log, "kv_cache_bytes")
    tok, _ = _pick(log, "kv_tokens")
    if kv and tok:
        per_tok_ours = a.kv.per_token_bytes / tp
        out.rows.append(Row("KV bytes per token", "kv_bytes_per_token", kv / tok, per_tok_ours, unit="B/token",
                            line_no=n,
                            term="every cache-holding layer's K and V per token, in the model dtype, / TP"))
        if out.rows[-1].matches is False:
            out.rows[-1].why = ("the log's kv_cache_dtype, or layers that hold no cache in SGLang (sliding windows "
                                "are held in full unless its SWA pool is on), or MODEL is another model than the log's")
        out.rows.append(Row("KV cache pool", "kv_cache_bytes", kv, None, line_no=n,
                            term="no SGLang estimator: mem_fraction_static of the GPU minus weights and graphs"))
        out.rows.append(Row("KV cache tokens", "kv_tokens", tok, None, unit="tokens", term="pool / bytes per token"))
    g, n = _pick(log, "cuda_graph_bytes", ("captured",), how="max")
    if g is not None:
        out.rows.append(Row("graphs (captured)", "cuda_graph_bytes", g, None, line_no=n,
                            term="no SGLang estimator: the free-memory drop over graph capture"))


ROWS = {"vllm": _vllm_rows, "llamacpp": _llamacpp_rows, "trtllm": _trtllm_rows, "sglang": _sglang_rows}


# -- findings and out-of-memory ----------------------------------------------------------------------------------

def _signed(n: float) -> str:
    return ("+" if n >= 0 else "-") + fmt_bytes(abs(n))


def _findings(out: Explanation) -> None:
    compared = [r for r in out.rows if r.diff is not None and r.unit == "bytes"]
    off = sorted((r for r in compared if r.matches is False), key=lambda r: -abs(r.diff))
    ok = [r.component for r in compared if r.matches]
    for r in off:
        share = f" ({100 * r.share:+.0f}%)" if r.share is not None else ""
        out.findings.append(f"{r.component}: hfvram {_signed(r.diff)}{share} against the log" + (f" - {r.why}"
                                                                                                 if r.why else ""))
    for r in out.rows:
        if r.unit != "bytes" and r.matches is False:
            out.findings.append(f"{r.component}: hfvram {r.ours:,.2f} against {r.log:,.2f}".replace(".00 ", " ")
                                .replace(".00", "") + (f" - {r.why}" if r.why else ""))
    if ok:
        out.findings.append("within print precision or 2%: " + ", ".join(ok))
    missing = [r.component for r in out.rows if r.log is None and r.ours is not None]
    if missing:
        out.notes.append("not printed in this log: " + ", ".join(missing))


def _out_of_memory(out: Explanation) -> None:
    oom, est, log = out.log.oom, out.estimate, out.log
    if oom is None:
        return
    say = out.oom.append
    say(f"the log ends in an out-of-memory failure (line {oom.line_no}): {oom.message[:300]}")
    if oom.kind == "kv_cache_too_small":
        if oom.needed_bytes and oom.available_bytes:
            say(f"one request of max_model_len {oom.max_model_len:,} needs {fmt_bytes(oom.needed_bytes)} of KV cache; "
                f"vLLM had {fmt_bytes(oom.available_bytes)} after weights, activations and graphs"
                + (f" (vLLM's own estimate of the longest that fits: {oom.estimated_max_len:,} tokens)"
                   if oom.estimated_max_len else ""))
        elif oom.kv_tokens:
            say(f"max_model_len {oom.max_model_len:,} needs more tokens than the {oom.kv_tokens:,} the KV cache holds")
    elif oom.kind == "no_kv_memory":
        say("weights and the profiled activations filled the whole gpu_memory_utilization budget before any KV cache")
    elif oom.kind == "startup_free_memory":
        share = math.floor(oom.free_bytes / oom.total_bytes * 100) / 100 if oom.total_bytes else None
        say(f"only {fmt_bytes(oom.free_bytes)} of {fmt_bytes(oom.total_bytes)} was free when vLLM started (other "
            f"processes hold the rest): gpu_memory_utilization must be at most {share:g} here, or free the GPU"
            if share else "too little memory was free when vLLM started")
    elif oom.kind == "cuda_oom":
        parts = []
        if oom.tried_bytes:
            parts.append(f"an allocation of {fmt_bytes(oom.tried_bytes)}" + (f" for {oom.what}" if oom.what else ""))
        elif oom.what:
            parts.append(f"allocating {oom.what}")
        if oom.free_bytes is not None and oom.total_bytes:
            parts.append(f"with {fmt_bytes(oom.free_bytes)} free of {fmt_bytes(oom.total_bytes)}")
        if oom.process_bytes:
            parts.append(f"this process holding {fmt_bytes(oom.process_bytes)}")
        phase = _phase(log)
        say("it failed at " + ", ".join(parts) + (f", {phase}" if phase else "") if parts else
            "it failed allocating GPU memory" + (f", {phase}" if phase else ""))
        if oom.process_bytes and oom.total_bytes and oom.process_bytes < 0.9 * oom.total_bytes:
            say(f"this process held only {fmt_bytes(oom.process_bytes)} of {fmt_bytes(oom.total_bytes)}: other "
                f"processes on the GPU took the rest")
    if est is None or not est.supported:
        return
    ours = _ours_for(oom.what, est) if oom.what else None
    if ours is not None and oom.tried_bytes:
        say(f"our estimate of {oom.what}: {fmt_bytes(ours)} (the log tried {fmt_bytes(oom.tried_bytes)})")
    if est.fits is True:
        say(f"our estimate says it fits ({fmt_bytes(est.held_bytes)} held of {fmt_bytes(est.held_bytes + (est.headroom_bytes or 0))} "
            f"allowed): the difference is in the rows above, or in memory other processes held")
    elif est.fits is False:
        say(f"our estimate agrees it does not fit: {est.fit_reason}")
        if est.max_context:
            say(f"the longest context that fits by our estimate: {est.max_context:,} tokens")
        for sug in est.suggestions[:4]:
            say(f"to fit: {sug.text}")


def _ours_for(what: str, est) -> float | None:
    c = est.components
    if "KV cache" in what:
        return c.get("kv_cache")
    if "weights" in what:
        return c.get("weights")
    if "compute" in what:
        return c.get("compute")
    return None


def _phase(log: ParsedLog) -> str | None:
    """Where a log stopped: the last milestone before the failure."""
    line = log.oom.line_no if log.oom else None
    seen = [f for f in log.figures if line is None or f.line_no < line]
    qs = {f.quantity for f in seen}
    if log.engine == "vllm":
        if "kv_tokens" in qs or "kv_cache_bytes" in qs:
            return "after the KV cache was sized (CUDA graph capture or the first requests)"
        if "weights_bytes" in qs:
            return "after the weights loaded, in the profile run (activations)"
        return "while loading the weights"
    if log.engine == "llamacpp":
        if "compute_buffer_bytes" in qs:
            return "after the compute buffers were reserved"
        if "kv_cache_bytes" in qs:
            return "reserving the compute buffers"
        if "weights_bytes" in qs:
            return "allocating the KV cache"
        return "loading the model"
    return None


# -- text -------------------------------------------------------------------------------------------------------

def render(ex: Explanation, units: str = "GiB") -> str:
    log = ex.log
    label = logs.PARSERS[ex.engine].label
    head = [f"{label} {log.version or '(version not printed)'} log"]
    s = ex.settings
    bits = [f"{k} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k} {v}"
            for k, v in s.items() if k not in ("frameworks", "gpu", "gpu_mem") and v is not None]
    lines = [f"{head[0]}: {ex.model}", "  settings: " + (", ".join(bits) or "(none printed)")]
    if ex.gpu:
        size = fmt_bytes(ex.gpu["usable_bytes"], units) if ex.gpu.get("usable_bytes") else ""
        name = ex.gpu["name"] if ex.gpu.get("catalog") or not size or ex.log.gpu_name else ""
        count = f"{ex.gpu['count']} x " if (ex.gpu.get("count") or 1) > 1 else ""
        lines.append(f"  GPU: {count}{' '.join(p for p in (name, size) if p)} ({ex.gpu['source']})")
    if ex.estimate is not None and ex.estimate.engine:
        e = ex.estimate.engine
        lines.append(f"  hfvram: {e.get('label', label)} {e.get('version', '')} policy, the same settings")
    lines.append("")
    if ex.rows:
        w = max(len(r.component) for r in ex.rows)
        lines.append(f"  {'component':<{w}}  {'log':>12}  {'hfvram':>12}  {'difference':>18}")
        for r in ex.rows:
            lines.append(f"  {r.component:<{w}}  {_val(r.log, r.unit, units):>12}  {_val(r.ours, r.unit, units):>12}  "
                         f"{_diff(r, units):>18}")
        lines.append("")
        lines.append("What hfvram's terms are:")
        for r in ex.rows:
            if r.term:
                lines.append(f"  {r.component}: {r.term}")
    if ex.findings:
        lines.append("")
        lines.append("What explains the differences (largest first):")
        lines.extend(f"  - {f}" for f in ex.findings)
    if ex.oom:
        lines.append("")
        lines.append("Out of memory:")
        lines.extend(f"  - {o}" for o in ex.oom)
    if ex.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {n}" for n in ex.notes)
    return "\n".join(lines)


def _val(v: float | None, unit: str, units: str) -> str:
    if v is None:
        return "-"
    if unit == "bytes":
        return fmt_bytes(v, units)
    if unit == "x":
        return f"{v:,.2f}x"
    return f"{v:,.0f}"


def _diff(r: Row, units: str) -> str:
    if r.diff is None:
        return "-"
    share = f" ({100 * r.share:+.1f}%)" if r.share is not None else ""
    if r.unit == "bytes":
        text = ("+" if r.diff >= 0 else "-") + fmt_bytes(abs(r.diff), units)
    elif r.unit == "x":
        text = f"{r.diff:+,.2f}x"
    else:
        text = f"{r.diff:+,.0f}"
    return text + share
