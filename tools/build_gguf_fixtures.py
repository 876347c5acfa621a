"""Write the GGUF and EXL2 fixtures (fixtures/<org>--<name>/) from the safetensors fixtures they were made from.

No public copy of these repos' headers is at hand, so each header is *reconstructed* and labelled so in its repo.json:

- GGUF: the metadata keys convert_hf_to_gguf.py writes for the architecture (conversion/base.py
  `set_gguf_parameters` + the architecture's own, llama-cpp-python 0.3.36 vendor/llama.cpp), from the base fixture's
  config.json; the tensor infos (names, shapes, ggml types) from `hfvram.estimate.gguf.gguf_weights` (llama.cpp's
  convert + llama-quantize rules) over the base fixture's tensor table; written with the `gguf` package's
  GGUFWriter (split files with its `split_max_tensors`, which writes llama.cpp's split.* keys and
  `-0000N-of-0000M.gguf` names). Tokenizer arrays are left out (they are 0.7-7.8 MB per file); the keys that name
  the tokenizer (tokenizer.ggml.model / pre) are kept. The file sizes served are these headers + the tensor data.
  Where a published size of the real file exists (validation/gguf-sizes.jsonl of the data-measure helper, copied into
  repo.json with its source), repo.json records it, and tests/test_gguf_input.py checks that the tensor data plus the
  real tokenizer header (measured from llama.cpp's vocab-only GGUFs: `ggml-vocab-llama-bpe.gguf` 7,818,144 bytes of
  header for Llama-3's vocabulary) reproduces it within its printed precision.
- mmproj: the vision tower's tensors as conversion/qwenvl.py Qwen2VLVisionModel writes them with --outtype f16
  (QKV split in three, the Conv3D patch embedding split in two Conv2D, names from gguf's TensorNameMap MMPROJ).
- EXL2: the tensors ExLlamaV2's converter writes for every linear layer (conversion/adaptivegptq.py `pack`: q_weight,
  q_scale, q_scale_max, q_groups, q_invperm; conversion/qparams.py group layout), one QParams option per layer type
  for the whole model (the real optimizer mixes options per layer from its measurement), embeddings and norms in FP16,
  the head at head_bits 6 (qparams_headoptions[6]). Each bit-rate is a branch (revisions/<branch>/).

Run: python tools/build_gguf_fixtures.py [--sizes PATH/TO/gguf-sizes.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gguf  # noqa: E402
import numpy as np  # noqa: E402

from hfvram.estimate import gguf as rules  # noqa: E402
from hfvram.introspect import introspect  # noqa: E402
from hfvram.repodata import load_fixture  # noqa: E402

FIXTURES = ROOT / "fixtures"
DEFAULT_SIZES = Path("/work/wt/data-measure-b/validation/gguf-sizes.jsonl")
LLAMA3_TOKENIZER_HEADER = 7_818_144  # data offset of llama.cpp models/ggml-vocab-llama-bpe.gguf (Llama-3 BPE vocab)
LLAMA_SPM_TOKENIZER_HEADER = 723_872  # data offset of llama.cpp models/ggml-vocab-llama-spm.gguf (Llama-1/2 vocab)
QWEN2_TOKENIZER_HEADER = 5_928_704  # data offset of llama.cpp models/ggml-vocab-qwen2.gguf (Qwen2 BPE vocab)

FTYPES = {ft.name.replace("MOSTLY_", "", 1).replace("ALL_", ""): ft for ft in gguf.LlamaFileType}


def synthetic_sha(repo_id: str, branch: str = "main") -> str:
    """The fixtures' convention (tests/test_fixtures_totals.py): sha1("hfvram-fixture:" + id) for main, and
    sha1("hfvram-fixture:" + id + "@" + branch) for another branch."""
    key = repo_id if branch == "main" else f"{repo_id}@{branch}"
    return hashlib.sha1(f"hfvram-fixture:{key}".encode()).hexdigest()


def stored_files_provenance(directory: Path, describe) -> dict:
    """provenance.files: every stored file with its sha256 and tier (as fixtures/README.md asks)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in ("repo.json", "tensors.json.gz", "PROVENANCE.md", "files.json"):
            tier, source = describe(rel)
            out[rel] = {"ref": "tools/build_gguf_fixtures.py (written from the base fixture)", "sha256":
                        hashlib.sha256(path.read_bytes()).hexdigest(), "tier": tier, "source": source}
    return out


# ---------------------------------------------------------------------------------------------------------------
# GGUF
# ---------------------------------------------------------------------------------------------------------------


def text_config(cfg: dict) -> dict:
    return cfg.get("text_config") or cfg


def metadata(arch: str, cfg: dict, ftype: str, name: str, extra: list | None = None) -> list[tuple[str, object, str]]:
    """(key, value, GGUFValueType name) as convert_hf_to_gguf.py + llama-quantize write them."""
    c = text_config(cfg)
    K = gguf.Keys
    kv = [
        (K.General.TYPE, "model", "STRING"),
        (K.General.NAME, name, "STRING"),
        (K.LLM.BLOCK_COUNT.format(arch=arch), c["num_hidden_layers"], "UINT32"),
        (K.LLM.CONTEXT_LENGTH.format(arch=arch), c["max_position_embeddings"], "UINT32"),
        (K.LLM.EMBEDDING_LENGTH.format(arch=arch), c["hidden_size"], "UINT32"),
        (K.LLM.FEED_FORWARD_LENGTH.format(arch=arch), c["intermediate_size"], "UINT32"),
        (K.Attention.HEAD_COUNT.format(arch=arch), c["num_attention_heads"], "UINT32"),
        (K.Attention.HEAD_COUNT_KV.format(arch=arch), c.get("num_key_value_heads", c["num_attention_heads"]), "UINT32"),
    ]
    if c.get("rope_theta") is not None:
        kv.append((K.Rope.FREQ_BASE.format(arch=arch), float(c["rope_theta"]), "FLOAT32"))
    kv.append((K.Attention.LAYERNORM_RMS_EPS.format(arch=arch), float(c["rms_norm_eps"]), "FLOAT32"))
    for hf_key, key in (("num_experts", K.LLM.EXPERT_COUNT), ("num_experts_per_tok", K.LLM.EXPERT_USED_COUNT)):
        if c.get(hf_key) is not None:
            kv.append((key.format(arch=arch), c[hf_key], "UINT32"))
    if c.get("head_dim") is not None:
        kv.append((K.Attention.KEY_LENGTH.format(arch=arch), c["head_dim"], "UINT32"))
        kv.append((K.Attention.VALUE_LENGTH.format(arch=arch), c["head_dim"], "UINT32"))
    kv.append((K.General.FILE_TYPE, int(FTYPES[ftype]), "UINT32"))
    kv += extra or []
    kv.append((K.General.QUANTIZATION_VERSION, gguf.GGML_QUANT_VERSION, "UINT32"))
    return kv


def header_bytes(arch: str, kv, tensors, split_max_tensors: int = 0) -> list[bytes]:
    """The header(s) GGUFWriter writes for these metadata and tensor infos (one per split), each padded to the
    data alignment: exactly the bytes before the tensor data."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.gguf"
        w = gguf.GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
        for key, value, vtype in kv:
            vt = gguf.GGUFValueType[vtype]
            if vt == gguf.GGUFValueType.ARRAY:
                w.add_array(key, value)
            else:
                w.add_key_value(key, value, vt)
        for name, shape, qtype, nbytes in tensors:
            w.add_tensor_info(name, shape, np.dtype(np.float16), nbytes,
                              raw_dtype=gguf.GGMLQuantizationType[qtype])
        w.write_header_to_file(path)
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        w.close()
        out = []
        for p in w.format_shard_names(path):
            data = p.read_bytes()
            out.append(data + bytes(-len(data) % w.data_alignment))
        return out


def quant_tensors(facts, ftype: str, has_imatrix: bool | None, version: str, extra: list | None = None):
    a = facts.arch
    w = rules.gguf_weights(facts.tensors, ftype, n_layers=a.num_layers, n_kv_heads=a.num_kv_heads,
                           n_heads=a.num_attention_heads, n_experts=a.moe.num_experts if a.moe else 0,
                           tied=bool(a.tie_word_embeddings), arch=a.model_type, config=facts.raw_config,
                           version=version, has_imatrix=has_imatrix)
    out = [(t.name, t.shape, t.type, t.nbytes) for t in w.tensors]
    return (extra or []) + out


def rope_freqs_llama3(cfg: dict) -> list:
    """conversion/llama.py LlamaModel.generate_extra_tensors: rope_freqs F32 [head_dim / 2] for rope_type llama3."""
    c = text_config(cfg)
    rope = c.get("rope_scaling") or {}
    if rope.get("rope_type") != "llama3":
        return []
    dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    return [("rope_freqs.weight", (dim // 2,), "F32", dim // 2 * 4)]


def write_gguf_repo(repo_id: str, base: str, arch: str, stem_fmt: str, quants: list[dict], *, version="current",
                    has_imatrix=None, name: str, extra_kv=None, config_text: str | None = None, tokenizer_header=None,
                    published: dict | None = None, provenance: dict, mmproj: dict | None = None) -> None:
    base_repo, _ = load_fixture(FIXTURES / base)
    facts = introspect(base_repo)
    cfg = json.loads(base_repo.texts["config.json"])
    out = FIXTURES / repo_id.replace("/", "--")
    if out.exists():
        shutil.rmtree(out)
    (out / "gguf-headers").mkdir(parents=True)
    files: dict[str, int] = {}
    made: dict[str, dict] = {}
    for q in quants:
        ftype = q["ftype"]
        extra = rope_freqs_llama3(cfg)
        tensors = quant_tensors(facts, ftype, q.get("has_imatrix", has_imatrix), version, extra)
        kv = metadata(arch, cfg, ftype, name, extra_kv)
        headers = header_bytes(arch, kv, tensors, split_max_tensors=q.get("split_max_tensors", 0))
        stem = stem_fmt.format(q.get("label", ftype))
        if len(headers) == 1:
            paths = [f"{stem}.gguf"]
        else:
            paths = [f"{stem}/{stem}-{i:05d}-of-{len(headers):05d}.gguf" for i in range(1, len(headers) + 1)]
        # the tensors of each split, in order, to size each file
        per_file = _split_tensors(tensors, len(headers), q.get("split_max_tensors", 0))
        data = sum(-(-t[3] // 32) * 32 for t in tensors)
        for path, header, part in zip(paths, headers, per_file):
            size = len(header) + sum(-(-t[3] // 32) * 32 for t in part)
            files[path] = size
            (out / "gguf-headers" / (path + ".gz")).parent.mkdir(parents=True, exist_ok=True)
            (out / "gguf-headers" / (path + ".gz")).write_bytes(gzip.compress(header, mtime=0))
        made[q.get("label", ftype)] = {
            "files": paths, "tensor_data_bytes": data, "file_bytes": sum(files[p] for p in paths),
            "ftype_rules": f"hfvram.estimate.gguf version {version!r}" + (
                f", importance matrix {q.get('has_imatrix', has_imatrix)}" if q.get("has_imatrix", has_imatrix)
                is not None else ""),
            **({"published": published[q.get("label", ftype).upper()]}
               if published and q.get("label", ftype).upper() in published else {}),
        }
    if mmproj:
        path, header, size = write_mmproj(base_repo, cfg, mmproj)
        files[path] = size
        (out / "gguf-headers" / (path + ".gz")).write_bytes(gzip.compress(header, mtime=0))
        made[path] = {"files": [path], "file_bytes": size, "mmproj": True}
    if config_text is not None:
        (out / "config.json").write_text(config_text)
    meta = {
        "id": repo_id, "sha": synthetic_sha(repo_id), "sha_synthetic": True,
        "sha_note": "synthetic: sha1(\"hfvram-fixture:\" + id); no Hub commit is known for these bytes",
        "gated": False, "refs": {"main": synthetic_sha(repo_id)}, "files": files,
        "provenance": {
            **provenance,
            "tensors": "reconstructed: GGUF headers from " + base + " (tools/build_gguf_fixtures.py; see gguf_headers)",
            "gguf_headers": "reconstructed (tools/build_gguf_fixtures.py): metadata keys as convert_hf_to_gguf.py "
                            "writes them from " + base + "/config.json, tensor infos from hfvram.estimate.gguf over "
                            "its tensor table, written with the gguf package " + _gguf_version() + "; no tokenizer "
                            "arrays (file sizes served = these headers + the tensor data)",
            "tokenizer_header_bytes": tokenizer_header,
            "quants": made,
        },
    }
    checked = [f"{label} {q['published']['printed']}" for label, q in made.items() if q.get("published")]
    meta["provenance"]["checked_against"] = (
        "published file sizes (" + "; ".join(checked) + ": validation/gguf-sizes.jsonl of the data helper) = tensor "
        "data + the real tokenizer header, within their printed precision" if checked else "none available")
    meta["provenance"]["files"] = stored_files_provenance(out, lambda rel: (
        ("E (constructed: base config + documented recipe)", "GGUF header written by tools/build_gguf_fixtures.py "
         "(gzip); see gguf_headers") if rel.startswith("gguf-headers/") else
        ("E (constructed: base config + documented recipe)", provenance.get("config.json", "constructed"))))
    (out / "repo.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{repo_id}: {len(files)} files, {sum(files.values()) / 1e9:.2f} GB served, "
          f"{sum(p.stat().st_size for p in (out / 'gguf-headers').rglob('*.gz')) / 1e3:.0f} kB stored")


def _split_tensors(tensors, n_files: int, max_tensors: int) -> list[list]:
    if n_files == 1:
        return [tensors]
    return [tensors[i * max_tensors:(i + 1) * max_tensors] for i in range(n_files)]


def write_mmproj(base_repo, cfg: dict, spec: dict) -> tuple[str, bytes, int]:
    """A Qwen2.5-VL mmproj as conversion/qwenvl.py Qwen2VLVisionModel writes it (--outtype f16)."""
    vis = cfg["vision_config"]
    depth = vis["depth"]
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.MMPROJ, depth)
    tensors = []
    for f in sorted(base_repo.safetensors):
        for t in base_repo.safetensors[f][1]:
            if not t.name.startswith("visual."):
                continue
            pieces = [(t.name, tuple(t.shape))]
            if ".qkv." in t.name:
                c = t.shape[0] // 3
                pieces = [(t.name.replace("qkv", x), (c,) + tuple(t.shape[1:])) for x in ("q", "k", "v")]
            if t.name.endswith("patch_embed.proj.weight"):
                c1, c2, _, kh, kw = t.shape
                pieces = [("PATCH", (c1, c2, kh, kw)), ("PATCH.1", (c1, c2, kh, kw))]
            for hf, shape in pieces:
                if hf.startswith("PATCH"):
                    new = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.V_ENC_EMBD_PATCH] + ".weight" + hf[5:]
                    qtype = "F16"  # MmprojModel.tensor_force_quant: patch_embd F16 when the outtype is F16
                else:
                    new = names.get_name(hf, try_suffixes=(".weight", ".bias"))
                    if new is None:
                        raise KeyError(f"no mmproj name for {hf}")
                    qtype = "F32" if len(shape) <= 1 or new.endswith("_norm.weight") else "F16"
                tensors.append((new, shape, qtype, rules.tensor_bytes(qtype, shape)))
    K = gguf.Keys
    kv = [
        (K.General.TYPE, "mmproj", "STRING"), (K.General.NAME, spec["name"], "STRING"),
        (K.Clip.PROJECTOR_TYPE, gguf.VisionProjectorType.QWEN25VL, "STRING"),
        (K.Clip.HAS_VISION_ENCODER, True, "BOOL"),
        (K.ClipVision.PROJECTION_DIM, text_config(cfg)["hidden_size"], "UINT32"),
        (K.ClipVision.PATCH_SIZE, vis["patch_size"], "UINT32"),
        (K.ClipVision.EMBEDDING_LENGTH, vis["hidden_size"], "UINT32"),
        (K.ClipVision.FEED_FORWARD_LENGTH, vis["intermediate_size"], "UINT32"),
        (K.ClipVision.BLOCK_COUNT, depth, "UINT32"),
        (K.ClipVision.Attention.HEAD_COUNT, vis["num_heads"], "UINT32"),
        (K.ClipVision.N_WA_PATTERN, vis["fullatt_block_indexes"][0] + 1, "UINT32"),
        (K.General.FILE_TYPE, int(gguf.LlamaFileType.MOSTLY_F16), "UINT32"),
    ]
    header = header_bytes("clip", kv, tensors)[0]
    return spec["path"], header, len(header) + sum(-(-t[3] // 32) * 32 for t in tensors)


def _gguf_version() -> str:
    from importlib.metadata import version

    return version("gguf")


def published_sizes(path: Path, repo: str) -> dict:
    """Rows of gguf-sizes.jsonl for `repo`, by quant label."""
    out = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("repo") == repo and row.get("size_kind") == "file":
            out[row["gguf_type"].upper()] = {k: row.get(k) for k in ("file", "printed", "bytes", "precision_bytes",
                                                                      "unit_note", "source", "llama_cpp_build")}
    return out


# ---------------------------------------------------------------------------------------------------------------
# EXL2
# ---------------------------------------------------------------------------------------------------------------

# conversion/qparams.py entries used for the whole model: (group_size per bits, bits, proportions, scale_bits 4)
EXL2_OPTIONS = {
    # qparams_attn entry [QParams(128, [4], [1], 4)] x 4; qparams_mlp entry [QParams(128, [4], [1], 4),
    # QParams(32, [4], [1], 4), QParams([32, 128], [8, 4], [0.05, 0.95], 4)]
    4.0: {"attn": ({4: 128}, [4], [1.0]), "gate": ({4: 128}, [4], [1.0]), "up": ({4: 32}, [4], [1.0]),
          "down": ({8: 32, 4: 128}, [8, 4], [0.05, 0.95])},
    # qparams_attn entry [QParams(128, [6], [1], 4)] x 4; qparams_mlp entry [QParams(128, [6], [1], 4),
    # QParams(128, [6], [1], 4), QParams([32, 128], [8, 6], [0.05, 0.95], 4)]
    6.0: {"attn": ({6: 128}, [6], [1.0]), "gate": ({6: 128}, [6], [1.0]), "up": ({6: 128}, [6], [1.0]),
          "down": ({8: 32, 6: 128}, [8, 6], [0.05, 0.95])},
}
EXL2_HEAD = ({8: 128, 6: 128}, [8, 6], [0.15, 0.85])  # qparams_headoptions[6] = QParams(128, [8, 6], [0.15, 0.85], 4)


def exl2_linear(key: str, rows: int, columns: int, qp) -> list:
    """The tensors adaptivegptq.py `pack` writes for one linear layer [out=columns, in=rows]."""
    group_size, bits, props = qp
    groups, remaining, q_rows = 0, rows, 0
    for b, p in zip(bits, props):  # qparams.py total_bits: groups per bit width
        g = math.ceil(min(rows * p, remaining) / group_size[b])
        for _ in range(g):
            r = min(group_size[b], remaining) if remaining > 0 else 0
            q_rows += math.ceil(r * b / 32)
            remaining -= group_size[b]
        groups += g
    padded = columns + (-columns % 32)
    return [(key + ".q_invperm", "I32", (rows,)), (key + ".q_scale_max", "F16", (groups,)),
            (key + ".q_groups", "I16", (groups * 2,)), (key + ".q_scale", "I32", (groups, padded * 4 // 32)),
            (key + ".q_weight", "I32", (q_rows, padded))]


def exl2_table(base_repo, bpw: float) -> list:
    opts = EXL2_OPTIONS[bpw]
    out = []
    for f in sorted(base_repo.safetensors):
        for t in base_repo.safetensors[f][1]:
            n = t.name
            if n.endswith(".weight") and len(t.shape) == 2 and (".self_attn." in n or ".mlp." in n or n == "lm_head.weight"):
                key = n[: -len(".weight")]
                kind = "attn" if ".self_attn." in n else key.rsplit(".", 1)[-1].replace("_proj", "")
                qp = EXL2_HEAD if n == "lm_head.weight" else opts[kind]
                out += exl2_linear(key, t.shape[1], t.shape[0], qp)
            else:
                out.append((n, "F16", tuple(t.shape)))  # embeddings and norms as FP16 (compile.py)
    return out


def write_exl2_repo(repo_id: str, base: str, branches: dict[str, float], provenance: dict) -> None:
    from hfvram.fakehub import write_fixture

    base_repo, _ = load_fixture(FIXTURES / base)
    cfg = json.loads(base_repo.texts["config.json"])
    out = FIXTURES / repo_id.replace("/", "--")
    if out.exists():
        shutil.rmtree(out)
    refs = {"main": synthetic_sha(repo_id)}
    for branch in branches:
        refs[branch] = synthetic_sha(repo_id, branch)
    write_fixture(out, repo_id, sha=refs["main"], refs=refs, large_files={"README.md": None},
                  revisions=list(branches), sha_synthetic=True,
                  sha_note="synthetic: sha1(\"hfvram-fixture:\" + id) for main, sha1(\"hfvram-fixture:\" + id + "
                           "\"@\" + branch) for a branch; no Hub commit is known",
                  provenance={**provenance, "main": "README.md only, size unknown (the real main holds the card)"})
    for branch, bpw in branches.items():
        qcfg = dict(cfg)
        qcfg["quantization_config"] = {"quant_method": "exl2", "bits": bpw, "head_bits": 6}
        table = exl2_table(base_repo, bpw)
        write_fixture(out / "revisions" / branch, repo_id, files={"config.json": qcfg},
                      tensors={"output.safetensors": {"metadata": {"format": "pt"}, "tensors": table}})
        (out / "revisions" / branch / "repo.json").unlink()
    meta = json.loads((out / "repo.json").read_text())
    meta["provenance"]["files"] = stored_files_provenance(out, lambda rel: (
        "E (constructed: base config + documented recipe)",
        provenance["tensors"] if rel.endswith(".gz") else provenance["config.json"]))
    (out / "repo.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{repo_id}: branches {', '.join(branches)}")


# ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=Path, default=DEFAULT_SIZES, help="validation/gguf-sizes.jsonl (published sizes)")
    args = ap.parse_args()

    repo = "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF"
    write_gguf_repo(
        repo, "meta-llama--Meta-Llama-3.1-8B", "llama", "Meta-Llama-3.1-8B-Instruct-{}",
        [{"ftype": "Q8_0"}, {"ftype": "Q6_K"}, {"ftype": "Q5_K_M"}, {"ftype": "Q4_K_M"}, {"ftype": "Q3_K_M"},
         {"ftype": "IQ4_XS"}, {"ftype": "Q2_K"}, {"ftype": "BF16", "label": "bf16"}],
        has_imatrix=True, name="Meta Llama 3.1 8B Instruct",
        extra_kv=[("llama.vocab_size", 128256, "UINT32"), ("llama.rope.dimension_count", 128, "UINT32"),
                  ("tokenizer.ggml.model", "gpt2", "STRING"), ("tokenizer.ggml.pre", "llama-bpe", "STRING")],
        tokenizer_header=LLAMA3_TOKENIZER_HEADER, published=published_sizes(args.sizes, repo),
        provenance={"base": "meta-llama--Meta-Llama-3.1-8B (same tensors as the Instruct model)",
                    "note": "bartowski's quants are made with an importance matrix (model card), hence has_imatrix"},
    )
    repo = "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF"
    write_gguf_repo(
        repo, "meta-llama--Meta-Llama-3.1-70B", "llama", "Meta-Llama-3.1-70B-Instruct-{}",
        [{"ftype": "Q4_K_M"}, {"ftype": "Q6_K", "split_max_tensors": 400}],
        has_imatrix=True, name="Meta Llama 3.1 70B Instruct",
        extra_kv=[("llama.vocab_size", 128256, "UINT32"), ("llama.rope.dimension_count", 128, "UINT32"),
                  ("tokenizer.ggml.model", "gpt2", "STRING"), ("tokenizer.ggml.pre", "llama-bpe", "STRING")],
        tokenizer_header=LLAMA3_TOKENIZER_HEADER, published=published_sizes(args.sizes, repo),
        provenance={"base": "meta-llama--Meta-Llama-3.1-70B (same tensors as the Instruct model)",
                    "split": "Q6_K (57.9 GB, over the Hub's 50 GB file limit) as two files in a folder, split at a "
                             "tensor boundary by GGUFWriter split_max_tensors=400 (llama-gguf-split naming); the "
                             "real split point is not known, the total is"},
    )
    repo = "TheBloke/Llama-2-70B-GGUF"
    write_gguf_repo(
        repo, "meta-llama--Llama-2-70b-hf", "llama", "llama-2-70b.{}", [{"ftype": "Q4_K_M"}, {"ftype": "Q2_K"}],
        version="b1513", name="LLaMA v2",
        extra_kv=[("llama.rope.dimension_count", 128, "UINT32"), ("tokenizer.ggml.model", "llama", "STRING")],
        config_text='{\n    "model_type": "llama"\n}',
        tokenizer_header=LLAMA_SPM_TOKENIZER_HEADER,
        provenance={"base": "meta-llama--Llama-2-70b-hf",
                    "config.json": "tier E constructed: the stub TheBloke added to his GGML/GGUF repos for "
                                   "ctransformers (e.g. TheBloke/Falcon-7B-Instruct-GGML commit f9a7540 'Add "
                                   "config.json for ctransformers' adds {\"model_type\": \"falcon\"}), with "
                                   "model_type llama as issue 8 reports for this repo; exact bytes not verified",
                    "names": "TheBloke's file naming (llama-2-70b.Q4_K_M.gguf); sizes from the late-2023 rules "
                             "(b1513), no published figure at hand"},
    )
    repo = "bartowski/Qwen_Qwen3-30B-A3B-GGUF"
    write_gguf_repo(
        repo, "Qwen--Qwen3-30B-A3B", "qwen3moe", "Qwen_Qwen3-30B-A3B-{}", [{"ftype": "Q8_0"}, {"ftype": "Q4_K_M"}],
        has_imatrix=True, name="Qwen3 30B A3B",
        extra_kv=[("qwen3moe.expert_feed_forward_length", 768, "UINT32"),
                  ("tokenizer.ggml.model", "gpt2", "STRING"), ("tokenizer.ggml.pre", "qwen2", "STRING")],
        tokenizer_header=QWEN2_TOKENIZER_HEADER, published=published_sizes(args.sizes, repo),
        provenance={"base": "Qwen--Qwen3-30B-A3B"},
    )
    repo = "ggml-org/Qwen2.5-VL-7B-Instruct-GGUF"
    write_gguf_repo(
        repo, "Qwen--Qwen2.5-VL-7B-Instruct", "qwen2vl", "Qwen2.5-VL-7B-Instruct-{}", [{"ftype": "Q4_K_M"}],
        name="Qwen2.5 VL 7B Instruct",
        extra_kv=[("qwen2vl.rope.dimension_sections", [16, 24, 24, 0], "ARRAY"),
                  ("tokenizer.ggml.model", "gpt2", "STRING"), ("tokenizer.ggml.pre", "qwen2", "STRING")],
        tokenizer_header=QWEN2_TOKENIZER_HEADER,
        mmproj={"path": "mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf", "name": "Qwen2.5 VL 7B Instruct"},
        provenance={"base": "Qwen--Qwen2.5-VL-7B-Instruct",
                    "names": "a repo llama.cpp's docs/multimodal.md names (ggml-org/Qwen2.5-VL-7B-Instruct-GGUF); "
                             "its file names here are hfvram's guess at the usual pattern, not checked"},
    )
    write_exl2_repo("turboderp/Llama-3.1-8B-Instruct-exl2", "meta-llama--Meta-Llama-3.1-8B", {"4.0bpw": 4.0,
                                                                                              "6.0bpw": 6.0},
                    provenance={"base": "meta-llama--Meta-Llama-3.1-8B",
                                "tensors": "reconstructed: EXL2 layout (exllamav2 @ da07fac conversion/adaptivegptq.py "
                                           "pack, qparams.py) with one QParams option per layer type (see "
                                           "tools/build_gguf_fixtures.py EXL2_OPTIONS); real conversions mix "
                                           "options per layer",
                                "config.json": "the base config + quantization_config {quant_method exl2, bits, "
                                               "head_bits 6} as compile.py writes it (version and calibration "
                                               "left out)"})


if __name__ == "__main__":
    main()
