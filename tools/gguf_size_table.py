"""Projected GGUF sizes against published ones: prints the README table from validation/gguf-sizes.jsonl.

    python tools/gguf_size_table.py            # one row per published file compared
    python tools/gguf_size_table.py --by-repo  # one row per repo: the README table
    python tools/gguf_size_table.py --all      # also the rows that are not compared, with the reason

Each row of validation/gguf-sizes.jsonl is a real, published GGUF file and its size as printed (a Hub listing, a
model card, a llama.cpp load log). A row is compared when its base model is one of hfvram's fixtures (the exact
repo: its real tensor table) and its type is a llama-quantize file type; the projection is
`hfvram.estimate.gguf.weights_for` (convert_hf_to_gguf.py + llama-quantize, tensor by tensor) under the rules of
the file's era, with what the publisher states about the file:

- rules: the llama.cpp the file was made with. Every build from b1513 (late 2023) to 4227c9b (August 2025) gives a
  fused attn_qkv its own branch; the current rules file it under attn_v (hfvram.estimate.gguf, MID2025). A row
  whose stated build is b4011-b5622, or whose model card names one (bartowski/phi-4-GGUF: "Using llama.cpp release
  b4456"), is projected with version "4227c9b"; the rest with "current". Only fused-QKV models (Phi-3, Phi-4)
  differ between the two.
- importance matrix: mradermacher's "i1" repos are its imatrix quants ("i1-" prefix on every file), and
  bartowski's cards say "All quants made using imatrix option" (read on bartowski/phi-4-GGUF); the imatrix changes
  the IQ3_XXS / IQ4_XS / IQ4_NL / Q4_0 / Q5_0 mixes (llama-quant.cpp `has_imatrix`).
- re-quantized experts: DevQuasar's gpt-oss Q8_0 re-quantizes the MXFP4 experts (the row's own note: 22.3 GB, twice
  the MXFP4 files); projected with allow_requantize (llama-quantize --allow-requantize).

A "file" size adds the tokenizer header of the model's vocabulary, measured as the data offset of llama.cpp's
vocab-only GGUFs (vendor/llama.cpp/models/ggml-vocab-*.gguf in llama-cpp-python 0.3.36): Llama-3 BPE 7,818,144,
Qwen2 5,928,704, Llama-2 SPM 723,872, Phi-3 726,048 bytes. Other vocabularies have no vocab-only file there and add
nothing (their headers are 0.1-0.4% of these files). A "tensor_data" size (llama.cpp's "file size" log line) is
compared as is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "validation" / "gguf-sizes.jsonl"
FIXTURES = ROOT / "fixtures"
WITHIN = 0.01  # the target: a projection within 1% of the published size

# Data offsets of llama.cpp's vocab-only GGUFs (the header a real file of that vocabulary carries before its
# tensors), measured with gguf.GGUFReader(...).data_offset on llama-cpp-python 0.3.36 vendor/llama.cpp/models.
TOKENIZER_HEADER = {"llama-bpe": 7_818_144, "qwen2": 5_928_704, "llama-spm": 723_872, "phi-3": 726_048}

# Model cards that name the llama.cpp build (rows whose llama_cpp_build field is empty).
CARD_BUILD = {
    # https://huggingface.co/bartowski/phi-4-GGUF (read through a mirror of the card): "Using llama.cpp release
    # b4456 for quantization." ... "All quants made using imatrix option"
    "bartowski/phi-4-GGUF": "b4456",
}

# Rows not compared, with the reason (the evidence is in the row or named here).
EXCLUDED = {
    # tensorblock's Phi-3.5-mini card prints GiB under a "GB" header: its Q2_K "1.319 GB" x 2^30 is 1.416 GB, the
    # same file size its Phi-3-mini-4k card (same shapes, same build family) prints for Q2_K, and its Q4_K_M
    # "2.229 GB" x 2^30 = 2.393 GB is QuantFactory's 2.39 GB for the same model and type.
    "tensorblock/Phi-3.5-mini-instruct-GGUF": "sizes printed in GiB under a GB header (1.319 GB x 2^30 = the "
                                              "1.416 GB of Phi-3-mini's Q2_K)",
}
# Known misses, reported in the table rather than fitted.
UNEXPLAINED = {
    ("bartowski/meta-llama_Llama-4-Scout-17B-16E-Instruct-GGUF", "Q4_K_M"):
        "2.2 GB larger than the current rules give; the April-2025 build's Llama-4 rules were not found",
}


def published(row: dict) -> tuple[int, int]:
    """(bytes, precision) of the printed size."""
    if row.get("bytes"):
        return int(row["bytes"]), int(row.get("precision_bytes") or 0)
    text = row["printed"]
    m = re.match(r"\s*([0-9.]+)\s*(GB|GiB|MB|MiB)?", text)
    if not m:
        raise ValueError(f"cannot read the printed size {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    if "= MiB" in text:
        unit = "MiB"
    scale = {"GB": 1e9, "GiB": 2 ** 30, "MB": 1e6, "MiB": 2 ** 20}[unit or "GB"]
    return int(round(value * scale)), int(row.get("precision_bytes") or 0)


def build_number(row: dict) -> int | None:
    build = row.get("llama_cpp_build") or CARD_BUILD.get(row["repo"]) or ""
    m = re.match(r"b?(\d{4,5})\b", str(build).strip())
    return int(m.group(1)) if m else None


def rules(row: dict) -> str:
    """The llama-quantize rules of the file's era (see the module docstring)."""
    n = build_number(row)
    if n is not None and n < 6000:
        return "4227c9b"
    if row.get("llama_cpp_build") and re.fullmatch(r"[0-9a-f]{7}", str(row["llama_cpp_build"])) \
            and row["repo"].startswith("tensorblock/"):
        return "4227c9b"  # tensorblock's cards of the same series name builds b4011-b4823
    return "current"


def imatrix(row: dict) -> bool | None:
    repo = row["repo"]
    if repo.startswith("mradermacher/") and "-i1-" in repo:
        return True
    if repo.startswith("bartowski/"):
        return True
    return None


def tokenizer_family(facts) -> str | None:
    a = facts.arch
    vocab, mt = a.vocab_size or 0, a.model_type or ""
    if mt in ("llama", "mistral", "mixtral") and vocab == 128256:
        return "llama-bpe"
    if mt in ("llama", "mistral", "mixtral") and vocab == 32000:
        return "llama-spm"
    if mt in ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe") and 151_000 <= vocab <= 152_100:
        return "qwen2"
    if mt == "phi3" and vocab == 32064:
        return "phi-3"
    return None


@lru_cache(maxsize=None)
def _facts(base: str):
    d = FIXTURES / base.replace("/", "--")
    if not (d / "repo.json").exists():
        return None
    sys.path.insert(0, str(ROOT))
    from hfvram.introspect import introspect
    from hfvram.repodata import load_fixture

    repo, _ = load_fixture(d)
    return introspect(repo)


def compare(row: dict) -> dict:
    """One row: projected bytes, published bytes, the relative difference, or why it is not compared."""
    sys.path.insert(0, str(ROOT))
    from hfvram.estimate import gguf

    out = {"repo": row["repo"], "file": row["file"], "type": row["gguf_type"], "arch": row["arch"],
           "kind": row["size_kind"], "build": row.get("llama_cpp_build") or CARD_BUILD.get(row["repo"]),
           "rules": None, "imatrix": None, "published": None, "projected": None, "diff": None, "skip": None}
    if row["repo"] in EXCLUDED:
        out["skip"] = EXCLUDED[row["repo"]]
        return out
    facts = _facts(row["base_model"])
    if facts is None:
        out["skip"] = f"no fixture of {row['base_model']}"
        return out
    ftype = row["gguf_type"].upper().replace("-", "_")
    if ftype not in gguf.FILE_TYPES:
        out["skip"] = f"{row['gguf_type']} is a publisher's mix, not a llama-quantize file type"
        return out
    kw = {"has_imatrix": imatrix(row)}
    if row["repo"].startswith("DevQuasar/") and row["arch"] == "gpt-oss" and ftype not in gguf.CONVERTER_FTYPES:
        kw["allow_requantize"] = True
    out["rules"], out["imatrix"] = rules(row), kw["has_imatrix"]
    w = gguf.weights_for(facts, ftype, version=out["rules"], **kw)
    projected = w.file_bytes
    if row["size_kind"] == "file":
        projected += TOKENIZER_HEADER.get(tokenizer_family(facts) or "", 0)
    pub, _ = published(row)
    out.update(published=pub, projected=projected, diff=(projected - pub) / pub)
    out["requantized"] = bool(kw.get("allow_requantize"))
    return out


def rows() -> list[dict]:
    return [compare(json.loads(line)) for line in DATA.read_text().splitlines() if line.strip()]


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f}"


def table(results: list[dict], show_all: bool = False) -> str:
    lines = ["| repo | type | arch | build (rules) | published GB | projected GB | difference |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in results:
        if r["skip"]:
            if show_all:
                lines.append(f"| {r['repo']} | {r['type']} | {r['arch']} | | | | not compared: {r['skip']} |")
            continue
        rule = "4227c9b rules" if r["rules"] == "4227c9b" else "current rules"
        extra = (", imatrix" if r["imatrix"] else "") + (", experts re-quantized" if r.get("requantized") else "")
        kind = " (tensor data)" if r["kind"] == "tensor_data" else ""
        mark = "" if abs(r["diff"]) <= WITHIN else " **miss**"
        lines.append(f"| {r['repo']} | {r['type']} | {r['arch']} | {r['build'] or '-'} ({rule}{extra}) | "
                     f"{_gb(r['published'])}{kind} | {_gb(r['projected'])} | {100 * r['diff']:+.2f}%{mark} |")
    return "\n".join(lines)


def by_repo(results: list[dict]) -> str:
    """The README table: per repo, the files compared, their types, the rules, and the largest difference."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        if not r["skip"]:
            groups.setdefault(r["repo"], []).append(r)
    lines = ["| repo | arch | files | types | build (rules) | largest difference |", "|---|---|---:|---|---|---:|"]
    for repo, rs in groups.items():
        worst = max(rs, key=lambda r: abs(r["diff"]))
        types = ", ".join(r["type"] for r in rs[:6]) + (f" +{len(rs) - 6}" if len(rs) > 6 else "")
        builds = sorted({str(r["build"]) for r in rs if r["build"]})
        rule = "4227c9b" if all(r["rules"] == "4227c9b" for r in rs) else "current"
        extra = (", imatrix" if rs[0]["imatrix"] else "") + (", re-quantized" if any(r.get("requantized") for r in rs)
                                                             else "")
        kind = " (tensor data)" if rs[0]["kind"] == "tensor_data" else ""
        mark = "" if abs(worst["diff"]) <= WITHIN else f" **miss** ({worst['type']})"
        lines.append(f"| {repo} | {rs[0]['arch']} | {len(rs)} | {types} | {', '.join(builds) or '-'} ({rule}{extra}) "
                     f"| {100 * worst['diff']:+.2f}%{kind}{mark} |")
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    compared = [r for r in results if not r["skip"]]
    within = [r for r in compared if abs(r["diff"]) <= WITHIN]
    archs = sorted({r["arch"] for r in within})
    worst = max(compared, key=lambda r: abs(r["diff"]))
    misses = [r for r in compared if abs(r["diff"]) > WITHIN]
    text = (f"{len(within)} of {len(compared)} compared files within 1% over {len(archs)} architectures "
            f"({', '.join(archs)}); {len(results) - len(compared)} rows not compared (no fixture of the base model, "
            f"or a publisher's own mix).")
    for r in misses:
        why = UNEXPLAINED.get((r["repo"], r["type"]), "not explained")
        text += f" Miss: {r['repo']} {r['type']} {100 * r['diff']:+.2f}% ({why})."
    if not misses:
        text += f" Largest difference {100 * worst['diff']:+.2f}% ({worst['repo']} {worst['type']})."
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--all", action="store_true", help="also list the rows that are not compared")
    p.add_argument("--by-repo", action="store_true", help="one row per repo (the README table)")
    args = p.parse_args(argv)
    results = rows()
    print(by_repo(results) if args.by_repo else table(results, args.all))
    print()
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
