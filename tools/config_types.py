"""Which model types hfvram reads without importing transformers: writes hfvram/data/config_types.json.

    python tools/config_types.py          # regenerate (needs transformers; run after changing hfvram.introspect)

Importing transformers' config classes costs ~1.6 s on this project's 2-CPU machine (transformers 5.24: the
package's lazy import table and `transformers.models`' scan of every model folder), most of a cold run. For most
model types the introspector's raw-JSON reading gives exactly the facts the transformers class gives; this tool
finds which, from the bundled fixtures (real Hub configs):

- a model type is listed when every fixture of that type gives the same ModelFacts (architecture, per-layer specs,
  weights, parameters) read both ways;
- for each listed type, `required` names the keys the introspector reads (on any fixture) whose value would
  otherwise come from a default of the transformers class (a non-None default of its `__init__` parameter):
  a config that leaves one of them out (under every name the class's attribute_map gives it) is read through
  transformers, as before, since only the class knows its default (Qwen3Config's head_dim 128, LlamaConfig's
  max_position_embeddings 2048). `text_required` does the same
  for a composite's text sub-config (`sub_configs["text_config"]`).

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
    """Facts through transformers (the fast path off) and through the raw reading, with the keys it read."""
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


def main() -> int:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    types: dict[str, dict] = {}
    for repo in fixture_repos():
        raw = json.loads(repo.texts["config.json"])
        mt = raw.get("model_type")
        if not isinstance(mt, str) or mt not in CONFIG_MAPPING:
            continue
        entry = types.setdefault(mt, {"runs": [], "accessed": set()})
        try:
            slow, fast, accessed = read_both(repo)
            same = slow.arch.config_reader == "transformers" and comparable(slow) == comparable(fast)
        except Exception as exc:  # noqa: BLE001 - unreadable one way or the other
            accessed, same = set(), f"{type(exc).__name__}: {exc}"
        entry["accessed"] |= accessed
        entry["runs"].append((repo.id, raw, same))
    # every key the introspector reads on any fixture (not only this type's: a branch this type's fixtures never
    # took, say Qwen3's sliding window when use_sliding_window is true, reads keys of its own)
    accessed = set().union(*(entry["accessed"] for entry in types.values()))
    listed = {}
    for mt, entry in sorted(types.items()):
        cls = CONFIG_MAPPING[mt]
        required = canonical(cls, accessed & class_defaults(cls))
        text_cls = (getattr(cls, "sub_configs", None) or {}).get("text_config")
        text_required = canonical(text_cls, accessed & class_defaults(text_cls)) if inspect.isclass(text_cls) else []
        # a fixture that leaves out a required key is read through transformers anyway: it does not count
        fast_read = [(rid, same) for rid, raw, same in entry["runs"] if cfg.states_all(raw, required, text_required)]
        differ = [rid for rid, same in fast_read if same is not True]
        if not fast_read or differ:
            why = f"its fixtures differ read raw: {', '.join(differ)}" if differ else "no fixture states its keys"
            print(f"{mt}: read through transformers ({why})")
            continue
        listed[mt] = {"fixtures": [rid for rid, _ in fast_read], "required": required, "text_required": text_required}
    OUT.write_text(json.dumps({
        "generated_by": "python tools/config_types.py",
        "transformers_version": transformers.__version__,
        "types": listed,
        # every model type this transformers release knows: with that release installed, a config of another type
        # (remote code: Kimi-K2, Molmo) is read as raw JSON without importing transformers to find out
        "known_types": sorted(CONFIG_MAPPING.keys()),
    }, indent=1, sort_keys=True) + "\n")
    print(f"{len(listed)} of {len(types)} model types read without transformers; written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
