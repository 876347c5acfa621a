#!/usr/bin/env python3
"""Import the metadata corpus (../shared/corpus, plus fixtures-src/extra) into test fixtures.

For every model directory of the corpus this creates `fixtures/<same dir name>/` holding
  * verbatim (byte-for-byte, `shutil.copyfile`) copies of the repo's small files, under their real repo paths:
      config.json, params.json, quantize_config.json, hf_quant_config.json, preprocessor_config.json,
      index.json -> model.safetensors.index.json, pytorch_model.bin.index.json (kept),
      original_params.json -> original/params.json, original_config.json -> original/config.json;
  * repo.json (see fixtures/README.md): id, sha (+ sha_synthetic), gated, refs, files (large files we do not
    store, with their real sizes when the corpus knows them), provenance copied from corpus SOURCES.jsonl/.md;
  * tensors.json.gz only where the corpus holds a real safetensors header (all-MiniLM-L6-v2); every other
    table is reconstructed by tools/build_fixtures.py (which needs torch; this script does not).

Evidence files (NOTE.md, shard_sizes.lfs.json, safetensors_header.json) are not repo files and are not copied; the
facts they carry go into repo.json (`files` sizes, `provenance.evidence`, `provenance.lfs_sizes`).

Directories that hold only a NOTE.md (Qwen AWQ/GPTQ/FP8 repos with no verbatim config found) get a *constructed*
config.json: the base model's corpus config plus the quantization recipe the NOTE documents, labelled tier
"E (constructed: base config + documented recipe, not a Hub copy)".

Usage: python tools/import_corpus.py [--corpus ../shared/corpus] [--extra DIR ...] [--out fixtures]
(default extras: fixtures-src/extra, fixtures-src/extra2, fixtures-src/extra3)
Re-running is idempotent (same bytes out); tensors.json.gz written by build_fixtures.py is left alone, and the
safetensors files it serves are not listed again as large files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
# extra source folders, imported in this order (each: <org>--<name>/ dirs with PROVENANCE.json)
DEFAULT_EXTRAS = [ROOT / "fixtures-src" / name for name in ("extra", "extra2", "extra3")]
DEFAULT_OUT = ROOT / "fixtures"

# corpus file name -> real path in the Hub repo
REPO_FILES = {
    "config.json": "config.json",
    "params.json": "params.json",
    "quantize_config.json": "quantize_config.json",
    "quant_config.json": "quant_config.json",
    "hf_quant_config.json": "hf_quant_config.json",
    "adapter_config.json": "adapter_config.json",
    "preprocessor_config.json": "preprocessor_config.json",
    "generation_config.json": "generation_config.json",
    "index.json": "model.safetensors.index.json",
    "model.safetensors.index.json": "model.safetensors.index.json",
    "pytorch_model.bin.index.json": "pytorch_model.bin.index.json",
    "original_params.json": "original/params.json",
    "original_config.json": "original/config.json",
}
EVIDENCE_FILES = {"NOTE.md", "shard_sizes.lfs.json", "safetensors_header.json", "PROVENANCE.json", "PROVENANCE.md"}

TIER_E = "E (constructed: base config + documented recipe, not a Hub copy)"
HEX40 = re.compile(r"@([0-9a-f]{40})\b")


# -- corpus provenance ---------------------------------------------------------------------------------------------
def load_sources(corpus: Path) -> tuple[dict, dict]:
    """(dest, file) -> SOURCES.jsonl record; (dest, file) -> tier string from the SOURCES.md 'Files' table."""
    records = {}
    for line in (corpus / "SOURCES.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            records[(rec["dest"], rec["file"])] = rec
    # Per-file tiers: every table row of SOURCES.md whose first cell is a model dir and whose second cell is one of
    # that dir's files ("## Files" and the "## Batch 2 additions" file table have this shape).
    tiers = {}
    for line in (corpus / "SOURCES.md").read_text().splitlines():
        if not line.startswith("| "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and (cells[0], cells[1]) in records:
            tiers.setdefault((cells[0], cells[1]), cells[2])
    return records, tiers


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def synthetic_sha(repo_id: str) -> str:
    return hashlib.sha1(f"hfvram-fixture:{repo_id}".encode()).hexdigest()


def dir_to_id(name: str) -> str:
    org, _, model = name.partition("--")
    return f"{org}/{model}"


def gated_for(repo_id: str):
    # meta-llama/* and google/gemma*/medgemma* are gated with manual approval on the Hub.
    org, _, name = repo_id.partition("/")
    if org == "meta-llama":
        return "manual"
    if org == "google" and (name.lower().startswith("gemma") or name.lower().startswith("medgemma")):
        return "manual"
    return False


def prov_entry(rec: dict | None, tier: str | None, path: Path) -> dict:
    digest = sha256(path)
    entry = {
        "ref": rec["ref"] if rec else None,
        "sha256": digest,
        "tier": tier,
        "auth": rec.get("auth") if rec else None,
    }
    if rec:
        if rec.get("sha256") and rec["sha256"] != digest:
            raise SystemExit(f"{path}: sha256 {digest} != SOURCES.jsonl {rec['sha256']}")
        if rec.get("note"):
            entry["note"] = rec["note"]
        if rec.get("source"):
            entry["source"] = rec["source"]
    return entry


# -- constructed configs for NOTE-only directories ---------------------------------------------------------------
# AWQ (AutoAWQ GEMM) as transformers' AwqConfig serialises it; keys confirmed by the Qwen2.5-72B-Instruct-AWQ
# transcription in the corpus NOTE (bits 4, group_size 128, modules_to_not_convert null, quant_method awq,
# version gemm, zero_point true); recipe from QwenLM/Qwen2.5 docs/source/quantization/awq.md line 134.
AWQ_QCONFIG = {
    "bits": 4,
    "group_size": 128,
    "modules_to_not_convert": None,
    "quant_method": "awq",
    "version": "gemm",
    "zero_point": True,
}


def gptq_qconfig(bits: int) -> dict:
    # Key set of the Qwen GPTQ quantization_config (Qwen1.5-7B-Chat-GPTQ-Int4 Hub config pasted in QwenLM/Qwen3#32,
    # and the Qwen2.5-32B-Instruct-GPTQ-Int4 transcription in the corpus NOTE); recipe from
    # QwenLM/Qwen2.5 docs/source/quantization/gptq.md lines 141-150 (group 128, desc_act False, sym True).
    return {
        "batch_size": 1,
        "bits": bits,
        "block_name_to_quantize": None,
        "cache_block_outputs": True,
        "damp_percent": 0.01,
        "dataset": None,
        "desc_act": False,
        "exllama_config": {"version": 1},
        "group_size": 128,
        "max_input_length": None,
        "model_seqlen": None,
        "module_name_preceding_first_block": None,
        "modules_in_block_to_quantize": None,
        "pad_token_id": None,
        "quant_method": "gptq",
        "sym": True,
        "tokenizer": None,
        "true_sequential": True,
        "use_cuda_fp16": False,
        "use_exllama": True,
    }


# The block every official Qwen3 FP8 config in the corpus carries (Qwen3-32B-FP8 / 30B-A3B-FP8 / 235B-A22B-FP8).
FP8_QCONFIG = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}

# Qwen/Qwen2.5-72B-Instruct-AWQ: fields from the transcription quoted in its NOTE (read_file id 71463455676);
# intermediate_size padded 29568 -> 29696 (bingzhenpan/llm-note awq.md, Qwen2-72B-Instruct-AWQ discussion #3).
QWEN72_AWQ_OVERRIDES = {
    "hidden_size": 8192,
    "intermediate_size": 29696,
    "max_position_embeddings": 32768,
    "max_window_layers": 70,
    "num_attention_heads": 64,
    "num_hidden_layers": 80,
    "num_key_value_heads": 8,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "vocab_size": 152064,
}


def construct_plan(name: str) -> dict | None:
    """For a NOTE-only directory: base corpus dir, quantization_config, overrides and a description."""
    m = re.fullmatch(r"Qwen--Qwen2\.5-(\d+B)-Instruct-(AWQ|GPTQ-Int4|GPTQ-Int8)", name)
    if m:
        size, kind = m.groups()
        base = f"Qwen--Qwen2.5-{size}-Instruct"
        overrides = {}
        caveat = None
        if size == "72B":  # no 72B-Instruct config in the corpus; the pretrained 72B has the same shape
            base = "Qwen--Qwen2.5-72B"
            overrides = dict(QWEN72_AWQ_OVERRIDES)
            caveat = ("fields not in the transcription (eos_token_id, rms_norm_eps, rope_theta, ...) are the "
                      "pretrained Qwen2.5-72B's, not the Instruct release's")
        if kind == "AWQ":
            q = dict(AWQ_QCONFIG)
        else:
            q = gptq_qconfig(4 if kind.endswith("Int4") else 8)
        return {"base": base, "quantization_config": q, "overrides": overrides, "torch_dtype": "float16",
                "caveat": caveat}
    m = re.fullmatch(r"Qwen--Qwen3-([\d.]+B)-(FP8|AWQ)", name)
    if m:
        size, kind = m.groups()
        base = f"Qwen--Qwen3-{size}"
        if kind == "FP8":
            return {"base": base, "quantization_config": dict(FP8_QCONFIG), "overrides": {}, "torch_dtype": None}
        return {"base": base, "quantization_config": dict(AWQ_QCONFIG), "overrides": {}, "torch_dtype": "float16"}
    return None


def constructed_config(corpus: Path, name: str, plan: dict) -> bytes:
    base = json.loads((corpus / plan["base"] / "config.json").read_text())
    cfg = dict(base)
    cfg.update(plan["overrides"])
    if plan["torch_dtype"]:
        cfg["torch_dtype"] = plan["torch_dtype"]
    cfg["quantization_config"] = plan["quantization_config"]
    # transformers' own serialisation style (PretrainedConfig.to_json_string: indent 2, sorted keys, newline)
    return (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode()


def note_statements(note: str) -> str:
    """The NOTE's 'Statements found' section, condensed to one line (it is the `auth` of a constructed file)."""
    m = re.search(r"## Statements found\n(.*?)(\n## |\Z)", note, re.S)
    text = m.group(1) if m else note
    text = re.sub(r"\s+", " ", text).strip()
    return text


# -- large files ----------------------------------------------------------------------------------------------------
def large_files(src: Path) -> tuple[dict, dict]:
    """(files, lfs) from shard_sizes.lfs.json: `files` = non-safetensors weight files (and safetensors files the
    builder does not reconstruct); `lfs` = every LFS size keyed by repo path, for provenance/checks."""
    path = src / "shard_sizes.lfs.json"
    if not path.exists():
        return {}, {}
    data = json.loads(path.read_text())
    lfs = {}
    for rel, info in data["files"].items():
        if rel.startswith("models/phi4/"):  # pryzmatpl/prizm-phi4 keeps the repo under models/phi4/
            rel = rel[len("models/phi4/"):]
        lfs[rel] = info["size"]
    files = {rel: size for rel, size in lfs.items() if not rel.endswith(".safetensors")}
    return files, {"derived_from": data.get("_derived_from"), "sizes": lfs}


# -- one fixture -----------------------------------------------------------------------------------------------------
def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def header_table(header_path: Path) -> dict:
    """tensors.json.gz content from a real safetensors header (JSON text, possibly space padded)."""
    raw = json.loads(header_path.read_text())
    meta = raw.pop("__metadata__", None) or {}
    tensors = sorted(raw.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return {"metadata": meta, "tensors": [[k, v["dtype"], v["shape"]] for k, v in tensors]}


def write_tables(path: Path, tables: dict) -> None:
    path.write_bytes(gzip.compress(json.dumps(tables, separators=(",", ":")).encode(), mtime=0))


def import_corpus_dir(src: Path, out: Path, records: dict, tiers: dict, corpus: Path) -> dict:
    name = src.name
    repo_id = dir_to_id(name)
    dest = out / name
    dest.mkdir(parents=True, exist_ok=True)
    prov_files = {}
    evidence = {}
    copied = set()
    for f in sorted(src.iterdir()):
        if not f.is_file():
            continue
        rec = records.get((name, f.name))
        tier = tiers.get((name, f.name))
        if f.name in EVIDENCE_FILES:
            evidence[f.name] = {k: v for k, v in prov_entry(rec, tier, f).items() if v is not None}
            continue
        if f.name not in REPO_FILES:
            print(f"  ! {name}: unknown corpus file {f.name} (not copied)", file=sys.stderr)
            continue
        rel = REPO_FILES[f.name]
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        assert target.read_bytes() == f.read_bytes()
        prov_files[rel] = prov_entry(rec, tier, target)
        copied.add(rel)

    constructed = None
    if "config.json" not in copied:
        plan = construct_plan(name)
        if plan is None:
            raise SystemExit(f"{name}: no config.json and no construction recipe")
        note = (src / "NOTE.md").read_text()
        blob = constructed_config(corpus, name, plan)
        (dest / "config.json").write_bytes(blob)
        base_rec = records.get((plan["base"], "config.json"))
        prov_files["config.json"] = {
            "ref": f"constructed by tools/import_corpus.py from corpus {plan['base']}/config.json"
            + (f" ({base_rec['ref']})" if base_rec else "")
            + " + the quantization recipe documented in corpus "
            + f"{name}/NOTE.md ({(records.get((name, 'NOTE.md')) or {}).get('ref', '')})",
            "sha256": hashlib.sha256(blob).hexdigest(),
            "tier": TIER_E,
            "auth": note_statements(note),
            "constructed": {
                "base": plan["base"],
                "quantization_config": plan["quantization_config"],
                "torch_dtype": plan["torch_dtype"] or "(base)",
                "overrides": plan["overrides"],
                **({"caveat": plan["caveat"]} if plan.get("caveat") else {}),
            },
        }
        constructed = plan

    # Hub commit: only a Hub git clone (tier A "Hub git clone") preserves the Hub's own commit ids; third-party
    # uploads (tier C), vendored copies (tier B), PyPI bundles and constructed configs get a synthetic sha.
    cfg_tier = (prov_files.get("config.json") or {}).get("tier") or ""
    cfg_ref = (prov_files.get("config.json") or {}).get("ref") or ""
    sha, synthetic, sha_note = None, True, None
    if cfg_tier.startswith("A (Hub git clone)"):
        m = HEX40.search(cfg_ref)
        if m:
            sha, synthetic = m.group(1), False
            sha_note = f"Hub commit preserved in the git clone of the Hub repo ({cfg_ref.split(':')[0]})"
    if sha is None:
        sha = synthetic_sha(repo_id)
        sha_note = 'synthetic: sha1("hfvram-fixture:" + id); no Hub commit is known for these bytes'

    # (Meta's original/consolidated.00.pth next to original/params.json is not listed: its size is not in the corpus,
    # and a listed file without a size would be served as 0 bytes.)
    files, lfs = large_files(src)
    # as for the extra folders: a JSON file whose content was not found is not listed (it would be served as zeros)
    unlisted = {rel: size for rel, size in files.items() if rel.endswith(".json") or " " in rel}
    files = {rel: size for rel, size in files.items() if rel not in unlisted}

    meta = {
        "id": repo_id,
        "sha": sha,
    }
    if synthetic:
        meta["sha_synthetic"] = True
    meta.update({
        "sha_note": sha_note,
        "gated": gated_for(repo_id),
        "refs": {"main": sha},
        "files": dict(sorted(files.items())),
        "provenance": {
            "corpus_dir": f"../shared/corpus/{name}",
            "files": dict(sorted(prov_files.items())),
        },
    })
    if evidence:
        meta["provenance"]["evidence"] = evidence
    if unlisted:
        meta["provenance"]["unlisted"] = {"files": unlisted, "why": "content not found: not served as zeros"}
    if lfs:
        meta["provenance"]["lfs_sizes"] = lfs

    # real header -> table now (no torch needed)
    header = src / "safetensors_header.json"
    if header.exists():
        write_tables(dest / "tensors.json.gz", {"model.safetensors": header_table(header)})
        meta["provenance"]["tensors"] = "hub-header"
        rec = records.get((name, "safetensors_header.json"))
        meta["provenance"]["tensors_ref"] = rec["ref"] if rec else None
        meta["provenance"]["checked_against"] = "is the real header"

    merge_repo_json(dest / "repo.json", meta)
    return {"dir": name, "id": repo_id, "files": sorted(copied | ({"config.json"} if constructed else set())),
            "constructed": bool(constructed), "sha_synthetic": synthetic}


def merge_repo_json(path: Path, meta: dict) -> None:
    """Write repo.json, keeping what build_fixtures.py added (tensors provenance, constructed files)."""
    old_order = None
    if path.exists():
        old = json.loads(path.read_text())
        old_prov = old.get("provenance") or {}
        old_order = list(old_prov)
        new_prov = meta["provenance"]
        for key in ("tensors", "checked_against", "tensors_ref", "check_mismatches", "reconstruction",
                    "index_omitted", "index_real_size"):
            if key in old_prov and key not in new_prov:
                new_prov[key] = old_prov[key]
        for rel, entry in (old_prov.get("files") or {}).items():
            # files the builder constructed (e.g. model.safetensors.index.json for sharded repos without one)
            if rel not in new_prov["files"] and str(entry.get("tier", "")).startswith("E") and (path.parent / rel).exists():
                new_prov["files"][rel] = entry
        new_prov["files"] = dict(sorted(new_prov["files"].items()))
        for key, value in (old.get("files") or {}).items():
            if value is not None:
                meta["files"].setdefault(key, value)
    # the builder decided not to store or list an oversized constructed index
    if meta["provenance"].get("index_omitted") and "model.safetensors.index.json" in meta["files"]:
        size = meta["files"].pop("model.safetensors.index.json")
        if isinstance(size, int):
            meta["provenance"]["index_real_size"] = size
    # a file the fixture stores (e.g. a constructed index) is not also a "large file we do not store"
    for rel in list(meta["files"]):
        if (path.parent / rel).is_file():
            if rel == "model.safetensors.index.json" and isinstance(meta["files"][rel], int):
                meta["provenance"]["index_real_size"] = meta["files"][rel]
            del meta["files"][rel]
    # ... nor is a safetensors file whose table build_fixtures.py already wrote (it serves header + zeros)
    tables = path.parent / "tensors.json.gz"
    if tables.is_file():
        for rel in json.loads(gzip.decompress(tables.read_bytes())):
            meta["files"].pop(rel, None)
    meta["files"] = dict(sorted(meta["files"].items()))
    if old_order:  # keep the provenance key order of the existing repo.json (reruns write the same bytes)
        prov = meta["provenance"]
        meta["provenance"] = {**{k: prov[k] for k in old_order if k in prov},
                              **{k: v for k, v in prov.items() if k not in old_order}}
    write_json(path, meta)


# -- extra models (fixtures-src/extra/<org>--<name>/ with PROVENANCE.json) -------------------------------------------
EXTRA_EVIDENCE = re.compile(r"(\.lfs-pointer$|\.asfound|\.hub-[0-9a-f]+|\.thirdparty)")


def import_extra_dir(src: Path, out: Path) -> dict | None:
    """fixtures-src/extra/<org>--<name>/: repo files + PROVENANCE.json {id, files: {name: {ref, sha256, bytes, tier,
    auth}}, hub_commit, file_sizes, gated, notes}. Files whose names mark them as evidence (`*.lfs-pointer`,
    `*.asfound*`, `*.hub-<sha>*`, `*.thirdparty*`) are not repo files and are not copied; their facts are in
    PROVENANCE.json."""
    prov_path = src / "PROVENANCE.json"
    if not prov_path.exists():
        print(f"  ! extra {src.name}: no PROVENANCE.json yet, skipped", file=sys.stderr)
        return None
    prov = json.loads(prov_path.read_text())
    name = src.name
    repo_id = prov.get("id") or dir_to_id(name)
    dest = out / name
    dest.mkdir(parents=True, exist_ok=True)
    per_file = prov.get("files") or {}
    prov_files, evidence, copied = {}, {}, set()
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        relsrc = f.relative_to(src).as_posix()
        info = per_file.get(relsrc) or {}
        if relsrc in EVIDENCE_FILES:
            continue
        entry = {"ref": info.get("ref"), "sha256": sha256(f), "tier": info.get("tier"), "auth": info.get("auth")}
        if info.get("sha256") and info["sha256"] != entry["sha256"]:
            raise SystemExit(f"{f}: sha256 differs from PROVENANCE.json")
        if EXTRA_EVIDENCE.search(relsrc):
            evidence[relsrc] = entry
            continue
        rel = REPO_FILES.get(relsrc, relsrc)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        assert target.read_bytes() == f.read_bytes()
        prov_files[rel] = entry
        copied.add(rel)
    sha = prov.get("hub_commit") or prov.get("sha")
    synthetic = not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha))
    if synthetic:
        sha = synthetic_sha(repo_id)
        sha_note = 'synthetic: sha1("hfvram-fixture:" + id); PROVENANCE.json names no Hub commit'
    else:
        sha_note = "Hub commit from PROVENANCE.json hub_commit"
    sizes = dict(prov.get("file_sizes") or {})
    # A listed file is served (as zeros when only its size is known): never list a JSON file whose content was not
    # found (hfvram and other tools parse them: zeros are not JSON) nor a name that is not a file name.
    unlisted = {rel: size for rel, size in sizes.items()
                if rel not in copied and (rel.endswith(".json") or " " in rel)}
    files = {rel: size for rel, size in sizes.items() if rel not in copied and rel not in unlisted}
    gated = gated_for(repo_id) or ("manual" if prov.get("gated") is True else prov.get("gated") or False)
    meta = {"id": repo_id, "sha": sha}
    if synthetic:
        meta["sha_synthetic"] = True
    meta.update({
        "sha_note": sha_note,
        "gated": gated,
        "refs": {"main": sha},
        "files": dict(sorted(files.items())),
        "provenance": {
            "corpus_dir": f"fixtures-src/{src.parent.name}/{name}",
            "files": dict(sorted(prov_files.items())),
            "extra": {k: v for k, v in prov.items() if k not in ("files", "id")},
        },
    })
    if evidence:
        meta["provenance"]["evidence"] = evidence
    if unlisted:
        meta["provenance"]["unlisted"] = {"files": unlisted, "why": "content not found: not served as zeros"}
    lfs = {rel: size for rel, size in sizes.items() if rel.endswith(".safetensors") and isinstance(size, int)}
    if lfs:
        meta["provenance"]["lfs_sizes"] = {"derived_from": prov.get("file_sizes_ref") or "PROVENANCE.json file_sizes",
                                           "sizes": lfs}
    merge_repo_json(dest / "repo.json", meta)
    return {"dir": name, "id": repo_id, "files": sorted(copied), "constructed": False, "sha_synthetic": synthetic}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--extra", type=Path, action="append",
                    help="extra source folder(s) of <org>--<name>/ dirs with PROVENANCE.json (default: "
                         "fixtures-src/extra, extra2, extra3)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    records, tiers = load_sources(args.corpus)
    done = []
    for src in sorted(p for p in args.corpus.iterdir() if p.is_dir() and "--" in p.name):
        done.append(import_corpus_dir(src, args.out, records, tiers, args.corpus))
    for extra in args.extra or DEFAULT_EXTRAS:
        if not extra.is_dir():
            continue
        for src in sorted(p for p in extra.iterdir() if p.is_dir() and "--" in p.name):
            if (args.corpus / src.name).exists():
                print(f"  ! extra {src.name} also in the corpus; corpus copy kept", file=sys.stderr)
                continue
            r = import_extra_dir(src, args.out)
            if r:
                done.append(r)
    for r in done:
        flag = " (constructed config)" if r["constructed"] else ""
        print(f"{r['dir']}: {', '.join(r['files'])}{flag}{' [synthetic sha]' if r['sha_synthetic'] else ''}")
    print(f"{len(done)} fixtures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
