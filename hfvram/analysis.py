"""The public API: `analyze(model, **settings)` -> Analysis, whose `.to_dict()` is the `--json` document."""

from __future__ import annotations

from dataclasses import field, replace

from .errors import UsageError
from .options import Options, parse as parse_options
from .record import record
# --kv-dtype names -> bytes per element ("auto" = the model's dtype: vLLM `cache_dtype="auto"`, transformers
# DynamicCache in the model dtype). The table and its sources live with the estimators.
from .estimate.base import KV_BYTES as KV_DTYPES
from .introspect import ModelFacts, introspect
from .sources import open_model, parse_ref
from .specs import count_kinds

SCHEMA = "hfvram/2"

# Our defaults when --context / --batch are not given (a choice, stated in the README): one sequence of 4K tokens,
# Llama-2's whole window.
DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 1


@record(frozen=True)
class Settings:
    """The run's settings that shape the KV cache (context, batch, cache dtype)."""

    context: int | None = None  # None: DEFAULT_CONTEXT
    batch: int = DEFAULT_BATCH
    kv_dtype: str = "auto"


@record
class KVCache:
    """The KV cache at the run's settings, as every engine's estimate starts from it."""

    dtype: str
    context: int
    batch: int
    bytes: int
    per_token_bytes: int
    state_bytes: int
    by_kind: dict[str, dict] = field(default_factory=dict)


def kv_cache(facts: ModelFacts, context: int, batch: int, kv_dtype: str = "auto") -> KVCache:
    """The model's own minimum cache: full-attention and MLA layers hold `context` tokens, sliding/chunked layers
    min(context, window), linear/Mamba layers their fixed state (in the model dtype)."""
    name = kv_dtype
    if kv_dtype == "auto":  # the model's dtype; float64 / float8 checkpoints run their cache in fp32 / fp16
        name = facts.dtype_short if facts.dtype_short in KV_DTYPES else ("fp32" if facts.dtype_bytes > 4 else "fp16")
    kv_bytes = KV_DTYPES[name]
    state_dtype_bytes = float(facts.dtype_bytes)
    by_kind: dict[str, dict] = {}
    total = per_token = state = 0.0
    for layer in facts.arch.layers:
        if layer.kind == "none":
            continue
        entry = by_kind.setdefault(layer.kind, {"layers": 0, "per_token_bytes": 0, "tokens_held": 0, "bytes": 0})
        entry["layers"] += 1
        entry["per_token_bytes"] += int(layer.per_token_bytes(kv_bytes))
        entry["tokens_held"] = layer.tokens_held(context)
        layer_bytes = layer.cache_bytes(context, batch, kv_bytes, state_dtype_bytes)
        entry["bytes"] += int(layer_bytes)
        total += layer_bytes
        per_token += layer.per_token_bytes(kv_bytes)
        state += batch * layer.state_bytes(state_dtype_bytes)
    return KVCache(dtype=name, context=context, batch=batch, bytes=int(total), per_token_bytes=int(per_token),
                   state_bytes=int(state), by_kind=by_kind)


@record
class Analysis:
    """What `analyze` answers: the model's facts, the settings, and one estimate per engine."""

    facts: ModelFacts
    settings: Settings
    kv: KVCache
    notes: list[str] = field(default_factory=list)
    estimates: dict = field(default_factory=dict)  # framework -> hfvram.estimate.Estimate
    estimate_settings: object = None  # hfvram.estimate.Settings
    model: object = None  # hfvram.estimate.Model (weights as the engines hold them)
    projections: dict = field(default_factory=dict)  # context -> framework -> per-GPU bytes

    @property
    def context(self) -> int:
        return self.kv.context

    def to_dict(self) -> dict:
        f, a, w = self.facts, self.facts.arch, self.facts.weights
        q = f.quant
        return {
            "schema": SCHEMA,
            "model": {"id": f.repo.id, "revision": f.repo.sha or f.repo.revision, "source": f.repo.source,
                      "requested_revision": f.repo.revision},
            "architecture": {
                "model_type": a.model_type,
                "architectures": a.architectures,
                "num_layers": a.num_layers,
                "hidden_size": a.hidden_size,
                "num_attention_heads": a.num_attention_heads,
                "num_kv_heads": a.num_kv_heads,
                "head_dim": a.head_dim,
                "vocab_size": a.vocab_size,
                "intermediate_size": a.intermediate_size,
                "max_context": a.max_context,
                "sliding_window": a.sliding_window,
                "layer_kinds": count_kinds(a.layers),
                "moe": None if a.moe is None else {
                    "num_experts": a.moe.num_experts,
                    "experts_per_token": a.moe.experts_per_token,
                    "shared_experts": a.moe.shared_experts,
                    "expert_intermediate_size": a.moe.expert_intermediate_size,
                },
                "quantization": None if q is None else {
                    "method": q.method,
                    "bits": q.bits,
                    "group_size": q.group_size,
                    "format": q.format,
                    "unquantized_modules": q.unquantized_modules,
                    "kv_cache_scheme": q.kv_cache_scheme,
                },
                "dtype": f.dtype,
                "tied_embeddings": a.tie_word_embeddings,
                "mtp_layers": a.mtp_layers,
                "config_reader": a.config_reader,
            },
            "parameters": {"total": f.params_total, "active": f.params_active, "exact": w.parameters_exact,
                           "by_component": w.component_params},
            "weights": {"bytes": w.bytes, "by_dtype": w.by_dtype, "exact": w.exact, "source": w.source,
                        "by_component": w.component_bytes, "files": len(w.files), "tensors": w.tensor_count},
            "gguf": gguf_dict(f),
            "kv_cache": {"dtype": self.kv.dtype, "context": self.kv.context, "batch": self.kv.batch,
                         "bytes": self.kv.bytes, "per_token_bytes": self.kv.per_token_bytes,
                         "state_bytes": self.kv.state_bytes, "by_kind": self.kv.by_kind},
            "gpu": self._gpu_dict(),
            "estimates": {name: est.to_dict() for name, est in self.estimates.items()},
            "projections": {str(ctx): {"beyond_max_context": bool(a.max_context and ctx > a.max_context),
                                       "per_gpu_bytes": per_gpu}
                            for ctx, per_gpu in self.projections.items()},
            "notes": self.notes,
        }

    def summary(self) -> dict:
        """The short form a listing row carries: the file(s), the per-engine verdicts."""
        d = self.to_dict()
        return {"model": d["model"], "gguf": d["gguf"], "quantization": d["architecture"]["quantization"],
                "weights": {k: d["weights"][k] for k in ("bytes", "exact")},
                "kv_cache": {k: d["kv_cache"][k] for k in ("context", "batch", "bytes")}, "gpu": d["gpu"],
                "estimates": d["estimates"], "notes": d["notes"]}

    def _gpu_dict(self) -> dict | None:
        choice = self.estimate_settings.gpu if self.estimate_settings is not None else None
        if choice is None:
            return None
        g = choice.gpu
        return {"name": g.name, "count": choice.count, "usable_bytes": g.usable_bytes, "memory_bytes": g.memory_bytes,
                "fp8": g.fp8, "usable_derived": g.usable_derived, "sms": g.sms,
                # what each verdict is worked out against: min(GPU, --max-memory) less --headroom
                "allowed_bytes": self.estimate_settings.allowed_bytes}


def gguf_dict(f: ModelFacts) -> dict | None:
    """The GGUF file(s) a model was read from (null for other formats)."""
    g = f.gguf
    if g is None:
        return None
    return {"architecture": g.architecture, "file_type": g.file_type, "label": g.label, "files": g.files,
            "file_bytes": g.file_bytes, "header_bytes": g.header_bytes, "tensor_bytes": g.tensor_bytes,
            "bits_per_weight": f.quant.bits if f.quant else None, "mmproj": g.mmproj,
            "mmproj_bytes": g.mmproj_bytes or None}


def analyze(model, *, revision: str | None = None, offline: bool = False, token=None, hub=None, repo=None,
            projections=(16384, 32768, 131072), suggest: bool = True, options: Options | None = None,
            file: str | None = None, mmproj: str | None = None, **settings) -> Analysis:
    """Analyse one model: a Hub id (`org/name`, `org/name@rev`, `org/name:Q4_K_M`, `hf.co/org/name:Q4_K_M`), a
    local folder, a .gguf file or a config.json path. For a GGUF repo, `file` names the .gguf file (or the first
    of its splits) when `:QUANT` does not, and `mmproj` ("auto" or a file name) adds the vision projector; a GGUF
    repo with several quants and none chosen raises `hfvram.sources.gguf.ChooseQuant` (`list_quants` sizes them
    all), an EXL2 repo whose bit-rates live in branches `hfvram.sources.exl.ChooseVariant`.

    Settings are what the CLI takes, as keywords (numbers or their strings): context ("32k"), batch, kv_dtype,
    frameworks or framework ("vllm", ["vllm", "llamacpp"]; default all five), gpu ("RTX-4090", "L40S:2") or gpu_mem
    ("24GiB") for the fit verdict, headroom ("10%") and max_memory ("40GiB") for what the deployment may use,
    tp, pp, quantize ("awq", "gguf:Q4_K_M", "exl2:4.65"), lora (a repo id or "rank=16,targets=q_proj+v_proj"),
    draft (a model), and the engine knobs (gpu_memory_utilization, max_num_batched_tokens, max_num_seqs,
    enforce_eager, vllm_version, free_gpu_memory_fraction, max_num_tokens, n_ubatch, flash_attn, gpu_layers,
    prompt_tokens, attn_implementation, cache_implementation, kv_paging, num_speculative_tokens, ...; see
    `hfvram.options.KNOBS`). A setting that is unknown or out of range raises `HfvramError` (UsageError).
    """
    from .sources.hub import limits

    opts = options if options is not None else parse_options(**settings)
    # One deadline and one wait budget for everything this run reads from the Hub (model, adapter, draft).
    with limits(opts.deadline, opts.max_wait):
        return _analyze(model, revision, offline, token, hub, repo, projections, suggest, opts, file, mmproj)


def _analyze(model, revision, offline, token, hub, repo, projections, suggest, opts, file=None,
             mmproj=None) -> Analysis:
    from . import estimate as est

    if repo is None:
        ref = parse_ref(model) if isinstance(model, str) else None
        if ref is None:
            raise UsageError(f"model must be a Hub id, a local path or a config.json path, not {model!r}")
        if revision:
            ref = replace(ref, revision=revision)
        repo = open_model(ref, offline=offline, token=token, hub=hub, file=file, mmproj=mmproj)
    return analyze_facts(introspect(repo), opts, offline=offline, token=token, hub=hub, projections=projections,
                         suggest=suggest)


def analyze_facts(facts: ModelFacts, options: Options, *, offline: bool = False, token=None, hub=None,
                  projections=(16384, 32768, 131072), suggest: bool = True) -> Analysis:
    """`analyze` for a model already read and introspected (`facts`), under settings already checked
    (`hfvram.options.parse`). A study of one model on several GPUs reads and introspects it once and calls this per
    GPU (`hfvram scan --gpu L40S,H100`); the LoRA adapter and draft model, if any, are opened here each time (from
    the metadata cache after the first)."""
    from . import estimate as est

    opts = options
    ctx = opts.context or DEFAULT_CONTEXT
    names = list(opts.frameworks or est.NAMES)
    notes = list(facts.notes)
    if facts.arch.max_context and ctx > facts.arch.max_context:
        notes.append(f"context {ctx:,} is beyond the model's maximum {facts.arch.max_context:,} (computed anyway: "
                     f"RoPE scaling can extend it)")
    choice = opts.gpu
    if opts.limit_bytes is not None and choice is None:
        from .gpus import custom

        choice = custom(opts.limit_bytes, count=(opts.tp or 1) * (opts.pp or 1))
    if opts.kv_dtype == "fp8" and choice is not None and not choice.gpu.fp8:
        notes.append(f"{choice.gpu.name} has no FP8 support (compute capability {choice.gpu.compute_capability}): "
                     f"engines emulate an fp8 KV cache there, or refuse it (see each engine's notes)")
    tp, pp = opts.tp or 1, opts.pp or 1
    if choice is not None and choice.count > 1 and tp * pp == 1:
        tp = choice.count  # --gpu L40S:2 alone means two-way tensor parallelism
    heads = facts.arch.num_attention_heads
    tp_engines = [n for n in names if n in ("vllm", "trtllm")]
    if opts.tp and tp > 1 and heads and heads % tp and tp_engines:
        from .support import LABELS

        raise UsageError(f"--tp {tp} does not divide the {heads} attention heads of {facts.repo.id} "
                         f"({' and '.join(LABELS[n] for n in tp_engines)} shard heads evenly; try --tp "
                         f"{max(t for t in range(1, tp) if heads % t == 0)})")
    es = est.Settings(context=ctx, batch=opts.batch, kv_dtype=opts.kv_dtype, tp=tp, pp=pp, gpu=choice,
                      limit_bytes=opts.limit_bytes, headroom=opts.headroom, context_default=opts.context is None,
                      **opts.engine)
    engine_model = est.build(facts, opts.quantize, gguf_version=opts.engine.get("llamacpp_version"))
    notes.extend(engine_model.notes)
    if opts.lora:
        from .estimate.extras import lora_from_repo, parse_lora_spec

        if "=" in opts.lora:
            es = replace(es, lora=parse_lora_spec(opts.lora, engine_model))
        else:
            adapter = open_model(parse_ref(opts.lora), offline=offline, token=token, hub=hub)
            es = replace(es, lora=lora_from_repo(adapter, engine_model))
            notes.extend(es.lora.notes)
    if opts.draft:
        draft_facts = introspect(open_model(parse_ref(opts.draft), offline=offline, token=token, hub=hub))
        q = opts.quantize
        gguf_or_exl = q if q and q.split(":")[0].lower() in ("gguf", "exl2") else None
        es = replace(es, draft=est.build(draft_facts, gguf_or_exl))
        if draft_facts.arch.vocab_size and facts.arch.vocab_size and draft_facts.arch.vocab_size != facts.arch.vocab_size:
            notes.append(f"draft vocabulary ({draft_facts.arch.vocab_size:,}) differs from the target's "
                         f"({facts.arch.vocab_size:,}): most engines need them to match")
    estimates = est.run(engine_model, es, names, suggest=suggest) if names else {}
    table = {}
    for p in projections or ():
        if p != ctx:
            table[p] = {name: (e.per_gpu_bytes if e.supported else None) for name, e in
                        est.run(engine_model, es.with_context(p), names, suggest=False).items()}
    settings_ = Settings(context=opts.context, batch=opts.batch, kv_dtype=opts.kv_dtype)
    return Analysis(facts=facts, settings=settings_, kv=kv_cache(facts, ctx, opts.batch, opts.kv_dtype),
                    notes=notes, estimates=estimates, estimate_settings=es, model=engine_model, projections=table)


# -- several models in one repo: the quants of a GGUF repo, the bit-rate branches of an EXL2 repo -------------------


@record
class ListingItem:
    """One model of a repo that holds several (a GGUF quant or an EXL2 branch), analysed."""

    label: str  # Q4_K_M, IQ4_XS, ... (GGUF) or the branch name (EXL2: 4.0bpw)
    files: list[str]
    bytes: int | None  # the file sizes (GGUF), or the branch's safetensors files (EXL2)
    analysis: Analysis | None = None
    error: str | None = None


@record
class Listing:
    """What `hfvram REPO` prints for a repo holding several models: one analysis per quant file (GGUF) or per
    bit-rate branch (EXL2), each at the same settings. `to_dict()` is the `--json` document (kind "listing")."""

    repo_id: str
    revision: str | None
    source: str  # hub | cache | snapshot | local
    format: str  # "gguf" | "exl2"
    items: list[ListingItem]
    mmproj: list[str] = field(default_factory=list)
    settings: Settings | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rows = []
        for it in self.items:
            row = {"label": it.label, "files": it.files, "bytes": it.bytes, "error": it.error, "analysis": None}
            if it.analysis is not None:
                row["analysis"] = it.analysis.summary()
            rows.append(row)
        ctx = (self.settings.context if self.settings and self.settings.context else DEFAULT_CONTEXT)
        return {"schema": SCHEMA, "kind": "listing",
                "model": {"id": self.repo_id, "revision": self.revision, "source": self.source},
                "format": self.format, "context": ctx, "batch": self.settings.batch if self.settings else 1,
                "items": rows, "mmproj": self.mmproj, "notes": self.notes}


def list_quants(model, *, revision: str | None = None, offline: bool = False, token=None, hub=None, repo=None,
                branches=None, jobs: int = 8, **settings) -> Listing:
    """Every model of a repo that holds several, analysed at the same settings (projections and suggestions left
    out): the GGUF quants (headers read with Range requests: the first in full, the others skipping the tokenizer
    lists they share with it, checked against their file size), or the bit-rate branches of an EXL2 repo."""
    from concurrent.futures import ThreadPoolExecutor

    from .errors import HfvramError
    from .sources import gguf as gg
    from .sources.exl import ChooseVariant

    opts = parse_options(**settings)
    ref = parse_ref(model) if isinstance(model, str) else None
    if ref is None:
        raise UsageError(f"model must be a Hub id or a local path, not {model!r}")
    if revision:
        ref = replace(ref, revision=revision)
    if hub is None and ref.kind == "hub":
        from .sources.hub import HubSource

        hub = HubSource(token=token)
    settings_ = Settings(context=opts.context, batch=opts.batch, kv_dtype=opts.kv_dtype)
    if repo is None and branches is None:
        try:
            repo = open_model(ref, offline=offline, token=token, hub=hub, choose=False)
        except ChooseVariant as exc:
            branches = exc.branches

    def one(make) -> tuple[Analysis | None, str | None]:
        try:
            return make(), None
        except HfvramError as exc:
            return None, exc.message

    if branches is not None:
        def branch(b):
            return one(lambda: analyze(f"{ref.name}@{b.name}", offline=offline, token=token, hub=hub, options=opts,
                                       projections=(), suggest=False))

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(branch, branches))
        items = []
        for b, (a, err) in zip(branches, results):
            files = a.facts.weights.files if a is not None else []
            size = sum(a.facts.repo.files.get(f) or 0 for f in files) if a is not None else None
            items.append(ListingItem(b.name, list(files), size, a, err))
        return Listing(ref.name, None, "hub", "exl2", items, settings=settings_)

    found = gg.listing(repo.files)
    if not found.quants:
        raise UsageError(f"{repo.id} holds no GGUF model to list")
    first = found.quants[0].files[0]
    gg.read_headers(repo, hub, [first], offline=offline)
    rest = [p for q in found.quants for p in q.files if p != first]
    gg.read_headers(repo, hub, rest, offline=offline, template=repo.gguf[first])
    items = []
    for q in found.quants:
        if q.missing_parts:
            items.append(ListingItem(q.label, q.files, q.size, None, f"split file missing: {q.missing_parts[0]}"))
            continue
        a, err = one(lambda: analyze(ref.name, repo=gg.selected(repo, q), options=opts, projections=(),
                                     suggest=False))
        items.append(ListingItem(q.label, q.files, q.size, a, err))
    return Listing(repo.id, repo.sha, repo.source if repo.source != "fixture" else "hub", "gguf", items,
                   mmproj=list(found.mmproj), settings=settings_,
                   notes=list(repo.notes))
