"""Facts derived once per (repo, commit), kept: a warm or `--offline` run reads them back instead of deriving them
again, so it imports no transformers (its config classes are most of a cold run's CPU) and classifies no tensors.

What is kept is everything `introspect` works out of a `RepoData` (architecture with its per-layer cache specs,
weight totals per dtype and component, quantisation, parameter counts, dtype, its notes, the checked config) but
not the RepoData itself: that comes from the source as before (the estimators still see the tensor tables).

A commit's content never changes, but what we derive from it changes with the code that derives it: the key is a
hash of this format's version, the hfvram release and the source of the modules that do the deriving. In the
metadata cache the installed transformers release is part of it too when the config is read through transformers'
config class (its defaults are then part of the facts; `store_key`). An entry under another key is never read: a
new hfvram, an edited introspector or, for a class-read config, another transformers derives afresh. Entries live in
the metadata cache (hfvram.sources.cache: checksummed, format-versioned, dropped when damaged) and, for the bundled
models, in the snapshot (hfvram/snapshot/facts/, made by tools/build_snapshot.py), used when the code key matches:
the snapshot is this release's own answer for its bundled models, like the configs it bundles, and its KEY.json
names the transformers release that derived them, whatever release is installed where it is read. What is read
back is checked (types, then hfvram.introspect.validate.check_facts) before anything uses it; an entry that fails is
deleted and the facts derived again.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

from .. import __version__
from ..digest import hasher, hexdigest
from ..specs import MLA, ChunkedLocal, FullAttention, LayerSpec, LinearAttention, Mamba, SlidingWindow

FORMAT = 1  # bumped when the document below changes shape
_PACKAGE = Path(__file__).resolve().parent.parent
# The modules whose code decides the facts (the introspector, the layer specs, the weight-file rules, the safetensors
# dtype table, the model types read without transformers): editing any of them changes the key.
_CODE = ("introspect/*.py", "specs.py", "sources/select.py", "stformat.py", "data/config_types.json")
_SPECS = {cls.__name__: cls for cls in (LayerSpec, FullAttention, SlidingWindow, ChunkedLocal, MLA, LinearAttention,
                                        Mamba)}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_VERSION = re.compile(rb"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


@lru_cache(maxsize=1)
def transformers_dir() -> str | None:
    """The installed transformers package's folder, found without importing it (None when absent)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        spec = None
    return os.path.dirname(spec.origin) if spec is not None and spec.origin else None


@lru_cache(maxsize=1)
def transformers_version() -> str:
    """The installed transformers release, read from its package's `__version__` line without importing it (an
    import is what the cache is there to avoid; importlib.metadata alone costs ~50 ms). "none" when absent."""
    root = transformers_dir()
    if root is None:
        return "none"
    try:
        with open(os.path.join(root, "__init__.py"), "rb") as fh:
            m = _VERSION.search(fh.read(1 << 16))
    except OSError:
        return "unknown"
    return m.group(1).decode("ascii", "replace") if m else "unknown"


@lru_cache(maxsize=1)
def code_digest() -> str:
    h = hasher()
    for pattern in _CODE:
        for path in sorted(_PACKAGE.glob(pattern)):
            h.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"?")
    return h.hexdigest()


@lru_cache(maxsize=1)
def key() -> str:
    """16 hex digits naming the code that derives facts (see the module docstring): the key of the snapshot's facts."""
    doc = {"format": FORMAT, "hfvram": __version__, "code": code_digest()}
    return hexdigest(json.dumps(doc, sort_keys=True).encode())[:16]


def store_key(repo) -> str:
    """The key of `repo`'s facts in the metadata cache: `key()`, and the installed transformers release when the
    config is read through its config class (its defaults are then part of the facts; a config of a listed type, or
    of one transformers has no class for, is read the same whatever release is installed)."""
    release = transformers_release_used(repo)
    if release is None:
        return key()
    return hexdigest(f"{key()}+transformers {release}".encode())[:16]


def transformers_release_used(repo) -> str | None:
    """The installed transformers release when `repo`'s config would be read through its class, else None. A config
    that does not parse counts as read through it (deriving then fails or reads what it can: keyed safely)."""
    from . import config as cfg

    try:
        if "config.json" in repo.texts:
            raw = json.loads(repo.texts["config.json"])
        else:
            raw = cfg.from_params_json(json.loads(repo.texts["params.json"]))
    except Exception:  # noqa: BLE001 - anything unreadable: the conservative key
        raw = None
    if isinstance(raw, dict) and cfg.reader(raw) != "class":
        return None
    return transformers_version()


def cacheable(repo) -> bool:
    """Facts are kept for a Hub repo at a commit (read from the Hub, the metadata cache or the snapshot), not for a
    local folder, a GGUF file (its facts come from the header, no config class) or one folder of a repo."""
    return (isinstance(repo.sha, str) and bool(_SHA.match(repo.sha)) and repo.source in ("hub", "cache", "snapshot")
            and getattr(repo, "format", None) != "gguf" and not getattr(repo, "subfolder", None))


# -- reading and writing ---------------------------------------------------------------------------------------------

def load(repo):
    """The kept facts of `repo` (a ModelFacts around this very RepoData, its notes first as `introspect` puts
    them), or None when there are none under the current key, or what is kept does not read back."""
    if not cacheable(repo):
        return None
    store = repo.facts_store
    bundled = repo.bundled_facts
    doc, from_store = None, False
    if isinstance(bundled, dict) and bundled.get("key") == key() and bundled.get("sha") == repo.sha:
        doc = bundled.get("facts")
    elif store is not None:
        doc, from_store = store.get_facts(repo.id, repo.sha, store_key(repo)), True
    if doc is None:
        return None
    try:
        return from_json(doc, repo)
    except Exception:  # noqa: BLE001 - whatever is wrong with it, it is not used, and is derived again
        if from_store:
            store.drop_facts(repo.id, repo.sha, store_key(repo))
        return None


def save(repo, facts) -> None:
    if cacheable(repo) and repo.facts_store is not None:
        repo.facts_store.put_facts(repo.id, repo.sha, store_key(repo), to_json(facts))


def to_json(facts) -> dict:
    """The derived part of a ModelFacts as JSON (the notes `introspect` copied from the RepoData are left out)."""
    a = facts.arch
    specs: list = []
    index: dict = {}
    layers = []
    for layer in a.layers:
        i = index.get(layer)
        if i is None:
            i = index[layer] = len(specs)
            specs.append([type(layer).__name__, {f.name: getattr(layer, f.name) for f in fields(layer)}])
        layers.append(i)
    arch = {f.name: getattr(a, f.name) for f in fields(a) if f.name not in ("layers", "moe")}
    arch["moe"] = None if a.moe is None else {f.name: getattr(a.moe, f.name) for f in fields(a.moe)}
    w, q = facts.weights, facts.quant
    own_notes = facts.notes[len(facts.repo.notes):] if facts.notes[:len(facts.repo.notes)] == facts.repo.notes \
        else None
    if own_notes is None:
        raise ValueError("facts notes do not start with the repo's notes")
    return {
        "arch": arch, "specs": specs, "layers": layers,
        "weights": {f.name: getattr(w, f.name) for f in fields(w)},
        "quant": None if q is None else {f.name: getattr(q, f.name) for f in fields(q)},
        "params_total": facts.params_total, "params_active": facts.params_active, "dtype": facts.dtype,
        "notes": own_notes, "raw_config": facts.raw_config,
        # the text model's config, or null when it is the whole config (the same dict, as introspect left it)
        "text_config": None if facts.text_config is facts.raw_config else facts.text_config,
    }


def from_json(doc: dict, repo):
    """A ModelFacts from `to_json`'s document and the RepoData it was derived from; ValueError (or
    MalformedInput from the validator) when anything in it is not what `introspect` makes."""
    from . import ModelFacts
    from .arch import DTYPES, Architecture, MoE
    from .quant import QuantFacts
    from .validate import check_facts
    from .weights import WeightFacts

    _need(doc, dict, "document")
    specs = []
    for entry in _need(doc.get("specs"), list, "specs"):
        _need(entry, list, "spec")
        if len(entry) != 2 or entry[0] not in _SPECS:
            raise ValueError("unknown layer spec")
        cls = _SPECS[entry[0]]
        values = _need(entry[1], dict, "spec fields")
        if set(values) != {f.name for f in fields(cls)}:
            raise ValueError("layer spec fields")
        for v in values.values():
            _scalar(v)
        specs.append(cls(**values))
    layers = [specs[i] for i in _need(doc.get("layers"), list, "layers") if _index(i, len(specs))]
    arch_doc = dict(_need(doc.get("arch"), dict, "arch"))
    moe_doc = arch_doc.pop("moe", None)
    moe = None
    if moe_doc is not None:
        _need(moe_doc, dict, "moe")
        if set(moe_doc) != {f.name for f in fields(MoE)}:
            raise ValueError("moe fields")
        for v in moe_doc.values():
            _scalar(v)
        moe = MoE(**moe_doc)
    if set(arch_doc) != {f.name for f in fields(Architecture)} - {"layers", "moe"}:
        raise ValueError("architecture fields")
    _strings(arch_doc["architectures"])
    _strings(arch_doc["notes"])
    for name, v in arch_doc.items():
        if name not in ("architectures", "notes"):
            _scalar(v)
    arch = Architecture(**arch_doc, layers=layers, moe=moe)
    w_doc = _need(doc.get("weights"), dict, "weights")
    if set(w_doc) != {f.name for f in fields(WeightFacts)}:
        raise ValueError("weight fields")
    for name in ("by_dtype", "component_bytes", "component_params"):
        _counts(w_doc[name])
    _strings(w_doc["files"])
    _strings(w_doc["notes"])
    weights = WeightFacts(**w_doc)
    q_doc = doc.get("quant")
    quant = None
    if q_doc is not None:
        _need(q_doc, dict, "quant")
        if set(q_doc) != {f.name for f in fields(QuantFacts)}:
            raise ValueError("quant fields")
        quant = QuantFacts(**q_doc)
    dtype = doc.get("dtype")
    if dtype not in DTYPES:
        raise ValueError("dtype")
    raw = _need(doc.get("raw_config"), dict, "raw_config")
    text = doc.get("text_config")
    text = raw if text is None else _need(text, dict, "text_config")
    notes = _strings(doc.get("notes"))
    total, active = doc.get("params_total"), doc.get("params_active")
    if type(total) is not int or type(active) is not int:
        raise ValueError("parameter counts")
    facts = ModelFacts(repo=repo, raw_config=raw, arch=arch, weights=weights, quant=quant, params_total=total,
                       params_active=active, dtype=dtype, notes=list(repo.notes) + notes, text_config=text)
    check_facts(facts, f"{repo.id}")
    return facts


def _need(value, kind, what: str):
    if not isinstance(value, kind):
        raise ValueError(f"kept facts: {what} is not a {kind.__name__}")
    return value


def _scalar(value) -> None:
    if value is not None and not isinstance(value, (int, float, str)):
        raise ValueError("kept facts: not a scalar")


def _index(i, n: int) -> bool:
    if type(i) is not int or not 0 <= i < n:
        raise ValueError("kept facts: layer index")
    return True


def _strings(values) -> list:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("kept facts: not a list of strings")
    return values


def _counts(values) -> None:
    if not isinstance(values, dict) or not all(isinstance(k, str) and type(v) is int for k, v in values.items()):
        raise ValueError("kept facts: not a map of counts")
