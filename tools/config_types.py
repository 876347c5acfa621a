"""Which model types hfvram reads without importing transformers: writes hfvram/data/config_types.json.

    python tools/config_types.py          # regenerate (needs transformers; run after changing hfvram.introspect)

Importing transformers' config classes costs ~1.6 s on this project's 2-CPU machine (transformers 5.24: the
package's lazy import table and `transformers.models`' scan of every model folder), most of a cold run. For most
model types the introspector's raw-JSON reading gives exactly the facts the transformers class gives; this tool
finds which, from the bundled fixtures (real Hub configs):

- a model type is listed when every fixture of that type gives the same ModelFacts (architecture, per-layer specs,
  weights, parameters) read both ways;
- for each listed type, `required` names the keys the introspector reads (on any fixture) whose value would
  otherwise come from a default of the transformers class (a non-None default of its `__init__` parameter), and
  `defaults` those defaults (Qwen3Config's head_dim 128, LlamaConfig's max_position_embeddings 2048): a config that
  leaves one of them out (under every name the class's attribute_map gives it) takes the default, with the release
  of transformers the table was written with installed; with another release, or a default JSON cannot hold, it is
  read through transformers. `text_required` and `text_defaults` do the same for a composite's text sub-config
  (`sub_configs["text_config"]`);
- fixtures that leave keys out are read with those defaults: a type whose fixtures then differ from the class is
  listed without defaults (its fixtures that state every key still read the same both ways), or not at all.

tests/test_config_types.py re-checks every fixture both ways, so the list cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hfvram.introspect import config as cfg  # noqa: E402

OUT = ROOT / "hfvram" / "data" / "config_types.json"


def fixture_repos():
    from hfvram.repodata import load_fixture

    for d in sorted((ROOT / "fixtures").iterdir()):
        if (d / "repo.json").exists() and (d / "config.json").exists():
            yield load_fixture(d)[0]


def comparable(facts) -> dict:
    """ModelFacts as plain data, without the reader's name and the repo."""
    arch = dataclasses.asdict(facts.arch)
    arch.pop("config_reader", None)
    w = dataclasses.asdict(facts.weights) if dataclasses.is_dataclass(facts.weights) else vars(facts.weights)
    return {"arch": arch, "weights": w, "params": (facts.params_total, facts.params_active), "dtype": facts.dtype,
            "notes": facts.notes}


def read_both(repo):
    """Facts through transformers (the fast path off) and through the raw reading (or what it raised), with the keys
    it read."""
    from hfvram.introspect import _derive

    cfg.FAST_PATH_OFF = True
    try:
        slow = _derive(repo)
    finally:
        cfg.FAST_PATH_OFF = False
    saved = cfg._TRANSFORMERS
    cfg._TRANSFORMERS = False  # no class: the raw reading
    accessed: set[str] = set()
    original = cfg.View.get

    def recording(self, *names, default=None):
        accessed.update(names)
        return original(self, *names, default=default)

    cfg.View.get = recording
    try:
        fast = _derive(repo)
    except Exception as exc:  # noqa: BLE001 - a config the raw reading cannot take without the class's defaults
        fast = exc  # (Gemma-3's text_config leaves its sizes to Gemma3TextConfig): the keys it read still count
    finally:
        cfg.View.get = original
        cfg._TRANSFORMERS = saved
    return slow, fast, accessed


def class_defaults(cls) -> set[str]:
    """The __init__ parameters of a config class whose default is a value (not None, not required), other than
    those every config shares with PretrainedConfig's own defaults (`is_encoder_decoder` False, ...: the raw
    reading assumes the same)."""
    from transformers import PretrainedConfig

    base = {name: p.default for name, p in inspect.signature(PretrainedConfig.__init__).parameters.items()}
    out = set()
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if p.default is inspect.Parameter.empty or p.default is None or callable(p.default):
            continue
        if name in base and base[name] == p.default:
            continue
        out.add(name)
    return out


def json_defaults(cls, keys: set[str]) -> dict:
    """The `__init__` default of each of `keys` that JSON holds as it is (numbers, strings, booleans, lists and maps
    of them): what `from_dict` would set for a config that leaves the key out."""
    params = inspect.signature(cls.__init__).parameters
    out = {}
    for k in sorted(keys):
        value = params[k].default
        try:
            if json.loads(json.dumps(value)) == value and type(json.loads(json.dumps(value))) is type(value):
                out[k] = value
        except (TypeError, ValueError):
            pass
    return out


def canonical(cls, keys: set[str]) -> list[list[str]]:
    """Each key with the names from_dict takes for it (the class's attribute_map, both ways): DeepseekV3Config's
    num_mtp_layers is stated as num_nextn_predict_layers, Qwen3MoeConfig's num_local_experts as num_experts. A key is
    stated when one of its names is."""
    amap = getattr(cls, "attribute_map", None) or {}
    groups = set()
    for k in keys:
        target = amap.get(k, k)
        groups.add(tuple(sorted({target} | {alias for alias, t in amap.items() if t == target})))
    return [list(g) for g in sorted(groups)]


def by_type_text(cls) -> str | None:
    """The model type a composite class builds its text sub-config as when the JSON names none, for a class that
    picks the sub-config's class by model type (transformers' `SubConfigSpec(config_class=AutoConfig,
    model_type=...)`), else None."""
    from transformers import PretrainedConfig

    spec = (getattr(cls, "sub_configs_defaults", None) or {}).get("text_config")
    config_class = getattr(spec, "config_class", None)
    if spec is None or (inspect.isclass(config_class) and issubclass(config_class, PretrainedConfig)):
        return None
    return getattr(spec, "model_type", None)


# A flat JSON of a small language model, sizes no class has as defaults.
_PROBE = {"num_hidden_layers": 3, "hidden_size": 96, "intermediate_size": 200, "num_attention_heads": 4,
          "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 777}


def flat_ignored_types(mapping) -> list[str]:
    """Composite model types (a text_config sub-config) whose class, given a flat JSON (the language model's keys at
    the top level, no text_config), keeps none of its sizes in the text config it builds."""
    import warnings

    out = []
    for mt in sorted(mapping.keys()):
        try:
            cls = mapping[mt]
            if "text_config" not in (getattr(cls, "sub_configs", None) or {}):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                config = cls.from_dict({"model_type": mt, **_PROBE})
                text = config.get_text_config(decoder=True)
        except Exception:  # noqa: BLE001 - a class that cannot take the probe is not listed
            continue
        if text is not config and all(getattr(text, k, None) != v for k, v in _PROBE.items()):
            out.append(mt)
    return out


def main() -> int:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    types: dict[str, dict] = {}
    for repo in fixture_repos():
        raw = json.loads(repo.texts["config.json"])
        mt = raw.get("model_type")
        if not isinstance(mt, str) or mt not in CONFIG_MAPPING:
            continue
        entry = types.setdefault(mt, {"repos": [], "slow": {}, "accessed": set()})
        try:
            slow, _, accessed = read_both(repo)
        except Exception as exc:  # noqa: BLE001 - unreadable one way or the other
            slow, accessed = exc, set()
        entry["accessed"] |= accessed
        entry["repos"].append(repo)
        entry["slow"][repo.id] = slow
    # every key the introspector reads on any fixture (not only this type's: a branch this type's fixtures never
    # took, say Qwen3's sliding window when use_sliding_window is true, reads keys of its own)
    accessed = set().union(*(entry["accessed"] for entry in types.values()))
    candidates = {}
    text_types = {}
    for mt, entry in sorted(types.items()):
        cls = CONFIG_MAPPING[mt]
        keys = accessed & class_defaults(cls)
        text_cls = (getattr(cls, "sub_configs", None) or {}).get("text_config")
        text_type = by_type_text(cls)
        text_keys = accessed & class_defaults(text_cls) if inspect.isclass(text_cls) and text_type is None else set()
        candidates[mt] = {"required": canonical(cls, keys), "text_required": canonical(text_cls, text_keys)
                          if text_keys else [], "defaults": json_defaults(cls, keys),
                          "text_defaults": json_defaults(text_cls, text_keys) if text_keys else {}}
        if text_type is not None:
            # the text section's class is the one its model_type names (the spec's type when it names none)
            candidates[mt]["text_type"] = text_type
            for repo in entry["repos"]:
                raw = json.loads(repo.texts["config.json"])
                section = cfg.text_section(raw)
                if section is raw:
                    continue  # a flat JSON: no text section of its own
                named = section.get("model_type") or text_type
                if named in CONFIG_MAPPING and named not in text_types:
                    sub_cls = CONFIG_MAPPING[named]
                    sub_keys = accessed & class_defaults(sub_cls)
                    text_types[named] = {"required": canonical(sub_cls, sub_keys),
                                         "defaults": json_defaults(sub_cls, sub_keys)}
    # Each fixture read again without transformers, the table as it would be written: a key it leaves out takes the
    # class default the table holds; the facts must be the class's.
    flat_ignored = flat_ignored_types(CONFIG_MAPPING)
    table = {"transformers_version": transformers.__version__, "types": candidates, "text_types": text_types,
             "flat_ignored_types": flat_ignored}
    from hfvram.introspect import _derive

    listed = {}
    for mt, entry in sorted(types.items()):
        c = candidates[mt]
        stated, differ, defaulted, bad_defaults = [], [], [], []  # fixture ids
        for repo in entry["repos"]:
            raw = json.loads(repo.texts["config.json"])
            saved_types, saved = cfg._TYPES, cfg._TRANSFORMERS
            cfg._TYPES, cfg._TRANSFORMERS = table, False
            try:
                if not cfg.reads_without_transformers(raw):
                    continue  # a default JSON cannot hold: read through transformers anyway, it does not count
                fast = _derive(repo)
            except Exception as exc:  # noqa: BLE001
                fast = exc
            finally:
                cfg._TYPES, cfg._TRANSFORMERS = saved_types, saved
            slow = entry["slow"][repo.id]
            same = not (isinstance(fast, Exception) or isinstance(slow, Exception) or
                        slow.arch.config_reader != "transformers" or comparable(slow) != comparable(fast))
            if cfg.states_all(raw, c["required"], c["text_required"]):
                stated.append(repo.id)
                if not same:
                    differ.append(repo.id)
            else:
                defaulted.append(repo.id)
                if not same:
                    bad_defaults.append(repo.id)
        if differ or not stated + defaulted or (bad_defaults and not stated):
            why = f"its fixtures differ read raw: {', '.join(differ)}" if differ else \
                f"its fixtures differ read raw with the class defaults: {', '.join(bad_defaults)}"
            if mt in flat_ignored and all(cfg.is_flat(json.loads(r.texts["config.json"])) for r in entry["repos"]):
                why = "its fixtures are flat JSON its class ignores: read raw, as flat_ignored_types says"
                print(f"{mt}: not listed ({why})")
            else:
                print(f"{mt}: read through transformers ({why})")
            continue
        if bad_defaults:
            # stated, it reads as the class reads it; with the class's defaults it did not: no defaults then
            print(f"{mt}: listed, its defaults not ({', '.join(bad_defaults)} differ with them)")
            listed[mt] = {**c, "fixtures": stated, "defaults": {}, "text_defaults": {}}
        else:
            listed[mt] = {**c, "fixtures": stated + defaulted}
    used = {e["text_type"] for e in listed.values() if "text_type" in e} | \
        {cfg.text_section(json.loads(r.texts["config.json"])).get("model_type") for mt in listed
         for r in types[mt]["repos"]}
    OUT.write_text(json.dumps({
        "generated_by": "python tools/config_types.py",
        "transformers_version": transformers.__version__,
        "types": listed,
        # the classes of composites' text sections built by model type (see `text_type` in `types`)
        "text_types": {t: v for t, v in text_types.items() if t in used},
        # composite types whose class builds its text config from its own defaults when the JSON is flat (no
        # text_config): such a JSON is read raw (hfvram.introspect.config._flat_config_ignored)
        "flat_ignored_types": flat_ignored,
        # every model type this transformers release knows: with that release installed, a config of another type
        # (remote code: Kimi-K2, Molmo) is read as raw JSON without importing transformers to find out
        "known_types": sorted(CONFIG_MAPPING.keys()),
    }, indent=1, sort_keys=True) + "\n")
    print(f"{len(listed)} of {len(types)} model types read without transformers; written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
