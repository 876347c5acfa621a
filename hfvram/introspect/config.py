"""Reading a model's configuration with the semantics its authors meant.

When `model_type` is one transformers knows, the JSON goes through that config class (`from_dict`, never
`trust_remote_code`): its defaults, attribute maps (`n_layer` -> `num_hidden_layers`, ...), derived
`layer_types` and `get_text_config()` for multimodal models. Otherwise (remote-code or newer types) the raw JSON
is read with the conventional key names. transformers is imported lazily, only here.

Meta's original format (`params.json`, no config.json) is mapped onto the same names.
"""

from __future__ import annotations

import copy
import json
import math
import os
import threading
import warnings
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from ..errors import MalformedInput

_TRANSFORMERS = None
# `warnings.catch_warnings` swaps the process-wide filter list and puts it back on exit, so two threads inside it at
# once can restore each other's filters: a scan reading configs on 32 threads let transformers' FutureWarnings
# (`rope_scaling` is deprecated, configuration_utils.py) through to stderr. Every section of ours that silences
# transformers' warnings holds this lock.
_WARNINGS_LOCK = threading.RLock()


def _config_mapping():
    """transformers' CONFIG_MAPPING, imported on first use (about 0.8 s), or None if transformers is missing."""
    global _TRANSFORMERS
    if _TRANSFORMERS is None:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        try:
            with _WARNINGS_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from transformers.models.auto.configuration_auto import CONFIG_MAPPING
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity_error()
            _TRANSFORMERS = CONFIG_MAPPING
        except Exception:  # transformers absent or broken: the raw JSON path still works
            _TRANSFORMERS = False
    return None if _TRANSFORMERS is False else _TRANSFORMERS


_QUIET_LOCK = threading.Lock()
_QUIET_DEPTH = [0, None]  # readers inside _quiet_transformers, transformers' logger level before the first


@contextmanager
def _quiet_transformers():
    """transformers logs a config it cannot set a key on (`logger.error(f"Can't set {key} ... for {self}")`,
    configuration_utils.py: the whole config, 40+ lines) even when we go on to read the raw JSON. Nothing it logs
    while we read a config is for the user: its library logger is silenced for the duration (reference-counted:
    a scan reads configs on many threads)."""
    import logging

    logger = logging.getLogger("transformers")
    with _QUIET_LOCK:
        if _QUIET_DEPTH[0] == 0:
            _QUIET_DEPTH[1] = logger.level
            logger.setLevel(logging.CRITICAL + 1)
        _QUIET_DEPTH[0] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_DEPTH[0] -= 1
            if _QUIET_DEPTH[0] == 0:
                logger.setLevel(_QUIET_DEPTH[1])


def parse_json(text: str, what: str) -> dict:
    """Parse a config file. Python's json accepts `Infinity`/`NaN` (Nemotron-H ships `Infinity`) and CRLF."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MalformedInput(f"{what} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise MalformedInput(f"{what} is not a JSON object")
    return data


class View:
    """Attribute lookup over a transformers config object (defaults and attribute maps) with the raw JSON dict
    as fallback; without the object, `defaults` stands for the class's defaults of the keys the JSON leaves out
    (hfvram/data/config_types.json). `raw` is the JSON as given."""

    def __init__(self, obj: Any, raw: dict, defaults: dict | None = None):
        self.obj = obj
        self.raw = raw
        self.defaults = defaults or {}

    def get(self, *names: str, default: Any = None) -> Any:
        for name in names:
            value = None
            if self.obj is not None:
                try:
                    value = getattr(self.obj, name, None)
                except Exception:
                    value = None
            if value is None:
                value = self.raw.get(name)
            if value is not None:
                return value
        for name in names:  # a class default only once the config states none of the names
            value = self.defaults.get(name)
            if value is not None:
                return value
        return default

    def int(self, *names: str, default: int | None = None) -> int | None:
        value = self.get(*names)
        if isinstance(value, bool) or value is None:
            return default
        if isinstance(value, (int, float)) and math.isfinite(value):
            return int(value)
        return default

    def has(self, name: str) -> bool:
        return self.get(name) is not None


# Keys under which composite (multimodal / wrapper) configs keep their language model.
TEXT_CONFIG_KEYS = ("text_config", "language_config", "llm_config", "text_model", "decoder")


# Model types whose raw reading gives the facts their transformers class gives, with the keys whose value would
# otherwise be a class default, and those defaults (hfvram/data/config_types.json, written by tools/config_types.py
# from the bundled fixtures and the installed transformers, re-checked by tests/test_config_types.py). Such a config
# is read without importing transformers (~1.6 s).
FAST_PATH_OFF = False  # the tool and the tests switch it off to read through transformers and compare
_TYPES: dict | None = None


def _table() -> dict:
    global _TYPES
    if _TYPES is None:
        path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "config_types.json")
        try:
            with open(path, encoding="utf-8") as f:
                _TYPES = json.load(f)
        except (OSError, ValueError):
            _TYPES = {}
    return _TYPES


def _config_types() -> dict:
    return _table().get("types", {})


def unknown_to_transformers(model_type: str) -> bool:
    """Whether the installed transformers has no config class for `model_type`, known without importing it: the
    table lists every type of the release it was written with; another installed release is asked through the
    source of its auto-config mapping (read as text, never imported). False whenever that cannot be told: the
    class lookup then decides, as it always did."""
    from .derived import transformers_version

    if FAST_PATH_OFF:
        return False
    table = _table()
    if table.get("transformers_version") == transformers_version():
        return model_type not in table.get("known_types", (model_type,))
    source = _mapping_source()
    return source is not None and f'"{model_type}"' not in source and f"'{model_type}'" not in source


@lru_cache(maxsize=1)
def _mapping_source() -> str | None:
    """The text of the installed transformers' auto-config mapping: `CONFIG_MAPPING_NAMES` is spelled out as
    ("model_type", "ConfigClass") pairs in models/auto/configuration_auto.py (4.x) or in the auto_mappings.py it
    imports (5.2x), ~20 kB and ~70 kB. A model type that appears nowhere in them as a string has no class. None
    when the files are missing or do not spell the mapping out (no "llama" in them): nothing is concluded."""
    from .derived import transformers_dir

    root = transformers_dir()
    if root is None:
        return None
    parts = []
    for name in ("configuration_auto.py", "auto_mappings.py"):
        try:
            with open(os.path.join(root, "models", "auto", name), encoding="utf-8") as fh:
                parts.append(fh.read())
        except (OSError, UnicodeDecodeError):
            continue
    text = "\n".join(parts)
    return text if '"llama"' in text else None


def reads_without_transformers(raw: dict) -> bool:
    """Whether `raw` is read as its transformers class would read it without importing the class: its model type
    is listed, and every key whose value would otherwise be a class default is stated or has that default in the
    table (which holds only for the transformers release the table was written with)."""
    return _listed_reading(raw) is not None


def _listed_reading(raw: dict) -> tuple[dict, dict] | None:
    """(class defaults of the keys the config leaves out, the same for its text section) for a config of a listed
    model type; None when it is not one, or leaves out a key whose default the table cannot give."""
    model_type = raw.get("model_type")
    entry = _config_types().get(model_type) if isinstance(model_type, str) and not FAST_PATH_OFF else None
    if entry is None:
        return None
    section = text_section(raw)
    text_entry = _text_entry(entry, section, raw)
    if text_entry is None:
        return None
    text_required, text_defaults = text_entry
    if states_all(raw, entry["required"], text_required):
        return {}, {}
    from .derived import transformers_version

    if _table().get("transformers_version") != transformers_version():
        return None  # another release's class may default otherwise: only it can say
    top = unstated_defaults(raw, entry["required"], entry.get("defaults", {}))
    if top is None:
        return None
    # a flat config's text section is the config itself: its defaults are the class's
    text = top if section is raw else unstated_defaults(section, text_required, text_defaults)
    return None if text is None else (top, text)


def _text_entry(entry: dict, section: dict, raw: dict) -> tuple[list[list[str]], dict] | None:
    """(text_required, text_defaults) for the text section of a config of a listed type. A composite whose class
    builds its text sub-config by model type (transformers' `SubConfigSpec(config_class=AutoConfig,
    model_type=...)`: Fuyu, Qwen2-Audio, Mistral-3) gives it the defaults of the class the section names
    (else the spec's default type), from the table's `text_types`; None when the table has none for it (read
    through the class then)."""
    text_type = entry.get("text_type")
    if text_type is None or section is raw:
        return entry["text_required"], entry.get("text_defaults", {})
    named = section.get("model_type") or text_type
    sub = _table().get("text_types", {}).get(named) if isinstance(named, str) else None
    if sub is None:
        return None
    return sub["required"], sub["defaults"]


def _flat_config_ignored(raw: dict) -> bool:
    """Whether `raw` is a flat JSON (no text sub-config) of a composite type whose class, in the transformers release
    the table was written with, builds its text config from the sub-config's defaults and not from the JSON's own
    keys (LlavaConfig: the original LLaVA repos, model_type "llava" with the Llama keys at the top level). Read
    through the class, such a config gives the class's defaults where they differ from the JSON (`_text_config`
    then falls back to the raw reading) and the JSON's own values where they agree: the raw reading gives the
    JSON's values either way, without importing transformers."""
    from .derived import transformers_version

    model_type = raw.get("model_type")
    table = _table()
    if FAST_PATH_OFF or not isinstance(model_type, str) or \
            not table.get("flat_ignored_types") or model_type not in table["flat_ignored_types"]:
        return False
    return is_flat(raw) and table.get("transformers_version") == transformers_version()


def unstated_defaults(raw: dict, required: list[list[str]], defaults: dict) -> dict | None:
    """The default of each required key `raw` leaves out (under every one of its names), or None when one has no
    default in `defaults` (a value JSON cannot hold, or none in the class)."""
    out = {}
    for names in required:
        if any(k in raw for k in names):
            continue
        name = next((k for k in names if k in defaults), None)
        if name is None:
            return None
        out[name] = defaults[name]
    return out


def states_all(raw: dict, required: list[list[str]], text_required: list[list[str]]) -> bool:
    """Whether the config states every required key (each under one of its names), and its text section every
    text_required one."""
    text = text_section(raw)
    return (all(any(k in raw for k in names) for names in required)
            and all(any(k in text for k in names) for names in text_required))


def reader(raw: dict) -> str:
    """How `load` reads `raw`: "listed" (a listed model type stating every key it needs: the class's semantics
    without the class), "raw" (no model type, or one the installed transformers has no class for, told without
    importing it) or "class" (through transformers' config class, whose defaults, and so whose release, count)."""
    model_type = raw.get("model_type")
    if model_type and reads_without_transformers(raw):
        return "listed"
    if not model_type or (isinstance(model_type, str) and unknown_to_transformers(model_type)) or \
            _flat_config_ignored(raw):
        return "raw"
    return "class"


def load(raw: dict) -> tuple[View, View, str]:
    """Return (top-level view, text-model view, how it was read: "transformers" (the class's semantics, through
    the class or, for a listed model type, without importing it) | "raw")."""
    model_type = raw.get("model_type")
    how = reader(raw)
    if how == "listed":
        top, text = _listed_reading(raw)
        return View(None, raw, top), View(None, text_section(raw), text), "transformers"
    if how == "raw":
        return View(None, raw), View(None, text_section(raw)), "raw"
    mapping = _config_mapping()
    if mapping is not None and model_type in mapping:
        try:
            with _WARNINGS_LOCK, warnings.catch_warnings(), _quiet_transformers():
                warnings.simplefilter("ignore")
                # a deep copy: the class sets keys in the sub-config dicts it is given (Qwen3.5's vision_config
                # model_type "qwen3_5" became "qwen3_5_vision" in the config the facts keep)
                config = mapping[model_type].from_dict(copy.deepcopy(raw))
                text = _text_config(config, raw)
            top = View(config, raw)
            return top, View(text, text_section(raw) if text is not config else raw), "transformers"
        except Exception:
            pass  # fall through to the raw JSON: a config transformers rejects is still readable
    return View(None, raw), View(None, text_section(raw)), "raw"


def is_flat(raw: dict) -> bool:
    """Whether `raw` has no text sub-config of its own (a composite's text section at the top level)."""
    return not any(isinstance(raw.get(k), dict) for k in TEXT_CONFIG_KEYS)


def text_section(raw: dict) -> dict:
    """The language model's part of a raw config: a composite's text sub-config (with the top-level dtype and
    quantisation it leaves out), else the config itself."""
    for key in TEXT_CONFIG_KEYS:
        sub = raw.get(key)
        if isinstance(sub, dict) and sub:
            merged = dict(sub)
            # Sub-configs usually leave the dtype to the top level (transformers: text_config.dtype is None).
            for k in ("torch_dtype", "dtype", "quantization_config"):
                if merged.get(k) is None and raw.get(k) is not None:
                    merged[k] = raw[k]
            return merged
    return raw


def _text_config(config: Any, raw: dict) -> Any:
    try:
        text = config.get_text_config(decoder=True)
    except Exception:
        text = config
    # A multimodal class given a flat JSON (original LLaVA repos: model_type "llava" with the Llama keys at the top
    # level) answers with the class defaults of an empty text_config; transformers maps some legacy flat configs
    # itself (Qwen2.5-VL). Trust it only when it kept the JSON's own sizes.
    if is_flat(raw):
        for key in _FLAT_SIZE_KEYS:
            if key in raw and getattr(text, key, raw[key]) != raw[key]:
                raise ValueError("flat JSON for a composite config")
    return text


# What a flat composite config states of its language model's size: liuhaotian/llava-v1.5-7b's Llama keys equal
# LlamaConfig's defaults in layers and width (a check on those alone trusted the class) but not in
# max_position_embeddings (4096 stated, the class's 2048).
_FLAT_SIZE_KEYS = ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                   "num_key_value_heads", "max_position_embeddings", "vocab_size", "head_dim")


def from_params_json(params: dict) -> dict:
    """Meta/Mistral original `params.json` in config.json terms (names from Meta's llama `ModelArgs`)."""
    dim = params.get("dim")
    n_heads = params.get("n_heads")
    out = {
        "model_type": "llama",
        "hidden_size": dim,
        "num_hidden_layers": params.get("n_layers"),
        "num_attention_heads": n_heads,
        "num_key_value_heads": params.get("n_kv_heads") or n_heads,
        "rms_norm_eps": params.get("norm_eps"),
        "rope_theta": params.get("rope_theta"),
    }
    if params.get("head_dim"):
        out["head_dim"] = params["head_dim"]
    if (params.get("vocab_size") or -1) > 0:  # Llama-2's params.json says -1: the tokenizer decides
        out["vocab_size"] = params["vocab_size"]
    if params.get("hidden_dim"):
        out["intermediate_size"] = params["hidden_dim"]
    elif dim and params.get("multiple_of"):
        # Meta llama/model.py FeedForward: hidden = int(2 * 4*dim / 3), times ffn_dim_multiplier, rounded up to
        # a multiple of multiple_of.
        hidden = int(2 * 4 * dim / 3)
        if params.get("ffn_dim_multiplier"):
            hidden = int(params["ffn_dim_multiplier"] * hidden)
        m = params["multiple_of"]
        out["intermediate_size"] = m * ((hidden + m - 1) // m)
    if params.get("sliding_window"):
        out["sliding_window"] = params["sliding_window"]
    if params.get("max_seq_len"):
        out["max_position_embeddings"] = params["max_seq_len"]
    moe = params.get("moe")
    if isinstance(moe, dict):
        out["num_local_experts"] = moe.get("num_experts")
        out["num_experts_per_tok"] = moe.get("num_experts_per_tok")
    return {k: v for k, v in out.items() if v is not None}
