"""Introspector: turns a RepoData (config + tensor tables + file listing) into exact model facts."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import field

from ..errors import MalformedInput, NothingToRead
from ..record import record
from ..repodata import RepoData
from ..sources.select import from_index, weight_files
from ..stformat import Tensor
from . import config as cfg
from . import estimate_params
from .arch import DTYPES, SHORT_NAMES, Architecture, build
from .quant import QuantFacts, detect
from .validate import MAX_WEIGHT_BYTES, check_config, check_facts, check_params, check_quant
from .weights import SHARED_EXPERT, WeightFacts, analyse


@record
class ModelFacts:
    """What the introspector works out of a repo: architecture, weights, quantisation, params."""

    repo: RepoData
    raw_config: dict
    arch: Architecture
    weights: WeightFacts
    quant: QuantFacts | None
    params_total: int
    params_active: int
    dtype: str  # torch dtype name of the unquantised weights (bfloat16, float16, float32)
    notes: list[str] = field(default_factory=list)
    text_config: dict = field(default_factory=dict)  # the language model's raw JSON (a composite's text_config)
    gguf: object = None  # hfvram.introspect.gguf.GGUFFacts when the model is a GGUF file

    @property
    def dtype_bytes(self) -> int:
        return DTYPES[self.dtype][1]

    @property
    def dtype_short(self) -> str:
        """fp32 / fp16 / bf16 (other dtypes keep their torch name)."""
        return SHORT_NAMES.get(self.dtype, self.dtype)

    @property
    def tensors(self) -> list[Tensor]:
        """The checkpoint's tensors: only the selected weight files (not an `original/` or consolidated copy)."""
        return [t for f in self.weights.files if f in self.repo.safetensors for t in self.repo.safetensors[f][1]]


def introspect(repo: RepoData) -> ModelFacts:
    """The model facts; `MalformedInput` naming the key or file when the config or checkpoint claims something that
    is the wrong type, out of range (hfvram.introspect.validate) or does not add up. Facts derived from a Hub commit
    before are read back (hfvram.introspect.derived), and kept after they are derived."""
    from . import derived

    facts = derived.load(repo)
    if facts is None:
        facts = _derive(repo)
        derived.save(repo, facts)
    return facts


def _derive(repo: RepoData) -> ModelFacts:
    if getattr(repo, "format", None) == "gguf":
        from .gguf import introspect_gguf

        facts = introspect_gguf(repo)  # the file's own header: a config.json next to it is never used
        check_facts(facts, f"{repo.id}")
        return facts
    notes = list(repo.notes)
    raw, reader_hint = _raw_config(repo, notes)
    if reader_hint == "params.json":
        # Meta/Mistral params.json: read as given, no transformers class defaults (a LlamaConfig would invent
        # max_position_embeddings 2048 for a Llama-2 checkpoint that says nothing about it)
        top = text = cfg.View(None, raw)
        reader = reader_hint
    else:
        top, text, reader = cfg.load(raw)
    arch = build(top, text, reader)
    if arch.num_layers <= 0:
        raise MalformedInput(f"{repo.id}: the config gives no layer count (num_hidden_layers or equivalent)")
    notes.extend(arch.notes)

    kind, files = weight_files(repo.files, repo.texts)
    _check_index(repo, kind, files, notes)
    tensors = ([t for f in files if f in repo.safetensors for t in repo.safetensors[f][1]]
               if kind == "safetensors" else [])
    quant = detect(raw, repo.texts, tensors, _parse_quant)
    decoder_layers = sum(1 for _ in arch.layers) - _encoder_layers(arch)

    if tensors:
        weights = analyse(tensors, decoder_layers, int(quant.bits) if quant and quant.bits else None)
    else:
        weights = _weights_without_headers(repo, kind, files, arch, raw, notes)

    if arch.moe and not arch.moe.shared_experts and any(SHARED_EXPERT.search(t.name) for t in tensors):
        arch.moe.shared_experts = 1  # the config does not say, the checkpoint has one (Llama-4 `shared_expert`)
    dtype = arch.dtype or _dominant_float(weights.by_dtype) or "float16"
    if not weights.parameters_exact and weights.bytes and weights.source != "config":
        weights.parameters = int(weights.bytes / DTYPES[dtype][1])
    total = weights.parameters
    active = total
    if arch.moe and weights.component_params.get("experts"):
        experts = weights.component_params["experts"]
        active = total - experts + experts * arch.moe.experts_per_token // arch.moe.num_experts
    facts = ModelFacts(repo=repo, raw_config=raw, arch=arch, weights=weights, quant=quant,
                       params_total=total, params_active=active, dtype=dtype, notes=notes, text_config=text.raw)
    check_facts(facts, f"{repo.id}")
    return facts


def _raw_config(repo: RepoData, notes: list[str]) -> tuple[dict, str | None]:
    """The config, checked once (types and ranges: hfvram.introspect.validate) before anything reads it."""
    if "config.json" in repo.texts:
        what = f"{repo.id}: config.json"
        raw, more = check_config(cfg.parse_json(repo.texts["config.json"], what), what)
        notes.extend(more)
        return raw, None
    if "params.json" in repo.texts:
        what = f"{repo.id}: params.json"
        params = check_params(cfg.parse_json(repo.texts["params.json"], what), what)
        raw, more = check_config(cfg.from_params_json(params), what)
        notes.extend(more)
        return raw, "params.json"
    raise NothingToRead(f"{repo.id} has no config.json or params.json")


def _parse_quant(text: str, what: str) -> dict:
    return check_quant(cfg.parse_json(text, what), what)


def _check_index(repo: RepoData, kind: str, files: list[str], notes: list[str]) -> None:
    """An index that names shards the repo does not have: the checkpoint is incomplete, and counting the shards
    that are there would report part of the weights as exact (unless a whole single-file checkpoint sits next to
    a stale index: then that file is the model, as transformers loads it)."""
    name = {"safetensors": "model.safetensors.index.json", "bin": "pytorch_model.bin.index.json"}.get(kind)
    if name is None or name not in repo.texts:
        return
    named = from_index(repo.texts[name])
    if named is None:
        notes.append(f"{name} is not a weight index (no map of tensor names to shard files): ignored")
        return
    missing = [f for f in named if f not in repo.files]
    if missing and files == ["model.safetensors"] and "model.safetensors" not in named:
        notes.append(f"{name} names shards the repo does not have; model.safetensors is the checkpoint")
        return
    if missing:
        raise MalformedInput(f"{repo.id}: {name} names {len(named)} shard(s), {len(missing)} of which the repo does "
                             f"not have ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): the "
                             f"checkpoint is incomplete")


def _encoder_layers(arch: Architecture) -> int:
    if not arch.is_encoder_decoder:
        return 0
    return sum(1 for layer in arch.layers if layer.kind == "none")


def _index_total(repo: RepoData, name: str, files: list[str], notes: list[str]) -> int | None:
    """metadata.total_size of a .bin index, when it is believable: a whole number of bytes, more than 0, no more
    than the shards' own sizes (which add pickle framing to the tensor bytes) when the listing gives them."""
    try:
        total = json.loads(repo.texts[name])["metadata"]["total_size"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    sizes = [repo.files.get(f) for f in files]
    on_disk = sum(sizes) if sizes and all(isinstance(x, int) for x in sizes) else None
    if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total) or total <= 0 \
            or total != int(total) or total > MAX_WEIGHT_BYTES or (on_disk is not None and total > on_disk):
        within = f" within the shards' {on_disk:,} bytes" if on_disk else ""
        notes.append(f"{name} metadata.total_size {str(total)[:40]} is not believable (not a positive whole number "
                     f"of bytes{within}): ignored")
        return None
    return int(total)


def _dominant_float(by_dtype: dict[str, int]) -> str | None:
    names = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}
    floats = Counter({names[d]: b for d, b in by_dtype.items() if d in names})
    return floats.most_common(1)[0][0] if floats else None


def _weights_without_headers(repo, kind, files, arch, raw, notes) -> WeightFacts:
    dtype = arch.dtype or "float16"
    st_dtype = DTYPES.get(dtype, ("F16", 2))[0]
    if kind in ("bin", "pth"):
        index_name = "pytorch_model.bin.index.json"
        total = None
        if kind == "bin" and index_name in repo.texts:
            total = _index_total(repo, index_name, files, notes)
        if total:
            source = "index-total-size"
            notes.append(f"no safetensors: weight bytes from {index_name} metadata.total_size")
        else:
            sizes = [repo.files.get(f) or 0 for f in files]
            total = sum(sizes)
            source = "file-sizes"
            notes.append(f"no safetensors headers: weight bytes are the sizes of {', '.join(files)} "
                         f"(pickle framing included)")
        return WeightFacts(bytes=total, by_dtype={st_dtype: total}, exact=False, source=source, files=list(files))
    # Nothing to measure: count from the architecture.
    params = estimate_params.from_config(arch, raw)
    notes.append("no weight files: parameters and bytes estimated from the config")
    nbytes = params * DTYPES.get(dtype, ("F16", 2))[1]
    return WeightFacts(bytes=nbytes, by_dtype={st_dtype: nbytes}, exact=False, source="config",
                       parameters=params, parameters_exact=False)
