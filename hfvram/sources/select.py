"""Which files of a repo hold its weights.

Rules (shared by the fetcher, which must decide which headers to read before it has the index, and the
introspector, which counts bytes):
- Safetensors at the repo root win. With a `model.safetensors.index.json`, exactly the shards its weight_map names.
  Without one, every root `*.safetensors` except Mistral's `consolidated*.safetensors` when HF-format files sit next
  to it (Mistral repos carry both layouts; never count both) and LoRA `adapter_model.safetensors`.
- Otherwise PyTorch pickles: `pytorch_model*.bin`, then Meta's original `consolidated.*.pth` (root, else
  `original/`). Their bytes come from file sizes (or the index's total_size), not headers.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

_BIN = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")
_PTH = re.compile(r"^(original/)?consolidated(\.\d+)?\.pth$")
_NOT_WEIGHTS = {"adapter_model.safetensors"}


def safetensors_candidates(files) -> list[str]:
    root = [f for f in files if f.endswith(".safetensors") and "/" not in f and f not in _NOT_WEIGHTS]
    hf = [f for f in root if not f.startswith("consolidated")]
    return sorted(hf or root)


def headers_to_read(files) -> list[str]:
    """Weight candidates, plus a PEFT adapter's weights when the repo is an adapter (for --lora)."""
    wanted = safetensors_candidates(files)
    if "adapter_config.json" in files and "adapter_model.safetensors" in files:
        wanted.append("adapter_model.safetensors")
    return wanted


def from_index(text: str | None) -> list[str] | None:
    """The shard files an index's weight_map names (None: no index, or not one: not JSON, no map of names to
    file names)."""
    if not text:
        return None
    named = _index_files(text)
    return list(named) if named is not None else None


@lru_cache(maxsize=8)
def _index_files(text: str) -> tuple[str, ...] | None:
    # Kept per index text: the fetcher, the weight-file choice and the introspector each ask, and a giant's index
    # (Kimi-K2: 5 MB, 140k tensor names) takes ~0.3 s to decode each time.
    try:
        weight_map = json.loads(text).get("weight_map")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(weight_map, dict) or not weight_map or \
            not all(isinstance(v, str) and v for v in weight_map.values()):
        return None
    return tuple(sorted(set(weight_map.values())))


def weight_kind(files) -> str:
    """The kind `weight_files` answers, from the listing alone (no index is decoded: a giant's takes ~0.1 s)."""
    if safetensors_candidates(files):
        return "safetensors"
    if any(_BIN.match(f) for f in files):
        return "bin"
    return "pth" if any(_PTH.match(f) for f in files) else "none"


def weight_files(files, texts) -> tuple[str, list[str]]:
    """Return (kind, files): kind is "safetensors", "bin", "pth" or "none"."""
    candidates = safetensors_candidates(files)
    if candidates:
        indexed = from_index(texts.get("model.safetensors.index.json"))
        if indexed and all(f in files for f in indexed):
            return "safetensors", indexed
        if indexed and "model.safetensors" in candidates:
            # a stale index next to a single-file checkpoint: transformers loads model.safetensors first
            # (modeling_utils checks SAFE_WEIGHTS_NAME before SAFE_WEIGHTS_INDEX_NAME)
            return "safetensors", ["model.safetensors"]
        return "safetensors", candidates
    bins = sorted(f for f in files if _BIN.match(f))
    if bins:
        indexed = from_index(texts.get("pytorch_model.bin.index.json"))
        return "bin", indexed if indexed and all(f in files for f in indexed) else bins
    pths = sorted(f for f in files if _PTH.match(f))
    root_pths = [f for f in pths if "/" not in f]
    if root_pths or pths:
        return "pth", root_pths or pths
    return "none", []
