"""GGUF and EXL2 repos as input: every input form, the header reader (Range requests only, a cap, one-line errors),
the facts from GGUF keys, the per-quant listing, EXL2 branches sized from their tensors.

The oracle for a header is the `gguf` package's own GGUFReader (llama.cpp's gguf-py), run on a sparse local copy of
the file (header + zeros): our streamed parser must agree with it tensor by tensor."""

from __future__ import annotations

import contextlib
import gzip
import json
import random
from pathlib import Path

import gguf
import jsonschema
import numpy as np
import pytest

import hfvram
from hfvram.errors import HfvramError, MalformedInput
from hfvram.sources import gguf as gg

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SCHEMA = json.loads((ROOT / "hfvram" / "data" / "schema.json").read_text())
BARTOWSKI = "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF"
SPLIT_REPO = "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF"
STUB = "TheBloke/Llama-2-70B-GGUF"
MOE = "bartowski/Qwen_Qwen3-30B-A3B-GGUF"
VL = "ggml-org/Qwen2.5-VL-7B-Instruct-GGUF"
EXL2 = "turboderp/Llama-3.1-8B-Instruct-exl2"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HFVRAM_CACHE", str(tmp_path / "hfvram-cache"))


def fixture_meta(repo_id: str) -> dict:
    return json.loads((FIXTURES / repo_id.replace("/", "--") / "repo.json").read_text())


def sparse_copy(repo_id: str, path: str, folder: Path) -> Path:
    """A local copy of a fixture's .gguf file: its stored header, then a hole up to its real size (no disk used)."""
    d = FIXTURES / repo_id.replace("/", "--")
    header = gzip.decompress((d / "gguf-headers" / (path + ".gz")).read_bytes())
    out = folder / path.rsplit("/", 1)[-1]
    with open(out, "wb") as fh:
        fh.write(header)
        fh.truncate(fixture_meta(repo_id)["files"][path])
    return out


def oracle_bytes(path: Path) -> int:
    """Tensor bytes as llama.cpp's gguf-py GGUFReader reads them."""
    return sum(int(t.n_bytes) for t in gguf.GGUFReader(str(path)).tensors)


def write_gguf(path: Path, arch: str, kv: dict, tensors: list[tuple[str, tuple, str]]) -> Path:
    """A small real GGUF written by the gguf package (zero tensor data)."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in kv.items():
        if isinstance(value, list):
            w.add_array(key, value)
        elif isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        else:
            w.add_string(key, value)
    for name, shape, qtype in tensors:
        t = gguf.GGMLQuantizationType[qtype]
        block, size = gguf.GGML_QUANT_SIZES[t]
        nbytes = int(np.prod(shape)) // block * size
        w.add_tensor_info(name, shape, np.dtype(np.float16), nbytes, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    data = path.read_bytes()
    pad = -len(data) % 32
    total = sum(-(-(int(np.prod(s)) // gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[q]][0] *
                    gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[q]][1]) // 32) * 32 for _, s, q in tensors)
    with open(path, "r+b") as fh:
        fh.seek(len(data) + pad)
        fh.truncate(len(data) + pad + total)
    return path


def llama_like(n_layer: int = 2, embd: int = 256, **extra) -> tuple[dict, list]:
    kv = {"llama.block_count": n_layer, "llama.context_length": 8192, "llama.embedding_length": embd,
          "llama.feed_forward_length": 512, "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2,
          "general.file_type": 15, **extra}
    tensors = [("token_embd.weight", (1000, embd), "Q4_K"), ("output_norm.weight", (embd,), "F32"),
               ("output.weight", (1000, embd), "Q6_K")]
    for i in range(n_layer):
        tensors += [(f"blk.{i}.attn_q.weight", (embd, embd), "Q4_K"), (f"blk.{i}.attn_k.weight", (128, embd), "Q4_K"),
                    (f"blk.{i}.attn_v.weight", (128, embd), "Q6_K"), (f"blk.{i}.attn_output.weight", (embd, embd), "Q4_K"),
                    (f"blk.{i}.ffn_up.weight", (512, embd), "Q4_K"), (f"blk.{i}.ffn_down.weight", (embd, 512), "Q6_K"),
                    (f"blk.{i}.attn_norm.weight", (embd,), "F32")]
    return kv, tensors


def gguf_gets(hub) -> list:
    return [r for r in hub.requests("GET") if r.path.endswith(".gguf")]


# ---------------------------------------------------------------------------------------------------------------
# The header reader
# ---------------------------------------------------------------------------------------------------------------


def test_header_matches_the_gguf_packages_reader(tmp_path):
    kv, tensors = llama_like(**{"tokenizer.ggml.tokens": [f"t{i}" for i in range(6000)],
                                "llama.attention.head_count_kv": [2, 0]})
    path = write_gguf(tmp_path / "m.gguf", "llama", kv, tensors)
    h = gg.read_local_header(str(path))
    reader = gguf.GGUFReader(str(path))
    assert h.data_offset == reader.data_offset
    assert [(t.name, t.type, t.shape, t.nbytes) for t in h.tensors] == [
        (t.name, t.tensor_type.name, tuple(reversed(t.shape.tolist())), int(t.n_bytes)) for t in reader.tensors]
    assert h.metadata["llama.attention.head_count_kv"] == [2, 0]
    tokens = h.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, gg.ArrayInfo) and tokens.count == 6000 and tokens.type == "STRING"
    assert h.file_type == "Q4_K_M"
    assert path.stat().st_size == h.data_offset + h.padded_data_bytes


def test_header_parses_from_any_chunking(tmp_path):
    kv, tensors = llama_like(**{"tokenizer.ggml.tokens": [f"tok{i}" for i in range(3000)],
                                "tokenizer.ggml.scores": [float(i) for i in range(5000)]})
    path = write_gguf(tmp_path / "m.gguf", "llama", kv, tensors)
    data = path.read_bytes()
    rng = random.Random(7)

    @contextlib.contextmanager
    def opener(start, stop):
        def chunks():
            pos = start
            while pos < stop:
                n = rng.randint(1, 700)
                yield data[pos:min(stop, pos + n)]
                pos += n
        yield chunks()

    want = gg.read_local_header(str(path))
    for _ in range(20):
        got = gg.read_header(opener, "m.gguf", len(data))
        assert got.to_json() == want.to_json()


@pytest.mark.parametrize("damage,message", [
    (lambda b: b"GGML" + b[4:], "magic"),
    (lambda b: b[:4] + (1).to_bytes(4, "little") + b[8:], "version 1"),
    (lambda b: b[:4000], "ends"),
])
def test_corrupt_or_truncated_header_is_one_line_exit_2(tmp_path, cli, damage, message):
    kv, tensors = llama_like(**{"tokenizer.ggml.tokens": [f"t{i}" for i in range(2000)]})
    good = write_gguf(tmp_path / "good.gguf", "llama", kv, tensors).read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(damage(good))
    with pytest.raises(MalformedInput) as exc:
        gg.read_local_header(str(bad))
    assert message in str(exc.value) and "\n" not in str(exc.value)
    code, out, err = cli([str(bad), "-f", "llamacpp"])
    assert code == 2 and err.startswith("hfvram: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_bad_tensor_infos_are_refused(tmp_path):
    kv, tensors = llama_like()
    path = write_gguf(tmp_path / "m.gguf", "llama", kv, tensors)
    data = bytearray(path.read_bytes())
    h = gg.read_local_header(str(path))
    # the ggml type of the last tensor info sits 12 bytes before its offset field's end
    last_offset = h.tensors[-1].offset.to_bytes(8, "little")
    at = bytes(data).rfind(last_offset, 0, h.data_offset)
    bad_type = data[:at - 4] + (99).to_bytes(4, "little") + data[at:]
    (tmp_path / "t.gguf").write_bytes(bad_type)
    with pytest.raises(MalformedInput, match="ggml type 99"):
        gg.read_local_header(str(tmp_path / "t.gguf"))
    bad_offset = data[:at] + (h.tensors[-1].offset + 32).to_bytes(8, "little") + data[at + 8:]
    (tmp_path / "o.gguf").write_bytes(bad_offset)
    with pytest.raises(MalformedInput, match="contiguous"):
        gg.read_local_header(str(tmp_path / "o.gguf"))
    (tmp_path / "short.gguf").write_bytes(data[:h.data_offset + 100])  # whole header, data cut short
    with pytest.raises(MalformedInput, match="truncated"):
        gg.read_local_header(str(tmp_path / "short.gguf"))


def test_header_over_the_cap_is_refused_after_reading_only_the_cap(fake_hub, cli, monkeypatch, tmp_path):
    """A 3 MB tokenizer under a 2 MiB cap: two Range requests (1 MiB, then up to the cap), then one line, exit 2."""
    monkeypatch.setattr(gg, "HEADER_CAP_BYTES", 2 * 1024 * 1024)
    kv, tensors = llama_like(**{"tokenizer.ggml.tokens": ["x" * 30] * 80_000})
    data = write_gguf(tmp_path / "big.gguf", "llama", kv, tensors).read_bytes()
    assert len(data) > 3_000_000
    fake_hub.add_alias("someone/big-GGUF", STUB)
    fake_hub.delete_file("someone/big-GGUF", "llama-2-70b.Q2_K.gguf")
    fake_hub.delete_file("someone/big-GGUF", "llama-2-70b.Q4_K_M.gguf")
    fake_hub.set_file("someone/big-GGUF", "big-Q4_K_M.gguf", data)
    fake_hub.reset()
    code, out, err = cli(["someone/big-GGUF", "-f", "llamacpp"])
    assert code == 2 and "larger than 2 MiB" in err and err.count("\n") == 1
    ranges = [r.range for r in gguf_gets(fake_hub)]
    assert ranges == ["bytes=0-1048575", "bytes=1048576-2097151"]


def test_the_real_cap_covers_the_largest_tokenizer_llama_cpp_ships():
    # llama.cpp's vocab-only ggml-vocab-gemma-4.gguf: 15.8 MB of header (see hfvram/sources/gguf.py)
    assert gg.HEADER_CAP_BYTES >= 4 * 15_776_480


# ---------------------------------------------------------------------------------------------------------------
# Input forms
# ---------------------------------------------------------------------------------------------------------------


def test_repo_colon_quant_uses_the_files_own_tensors(fake_hub, tmp_path):
    meta = fixture_meta(BARTOWSKI)
    truth = oracle_bytes(sparse_copy(BARTOWSKI, "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", tmp_path))
    fake_hub.reset()
    a = hfvram.analyze(f"{BARTOWSKI}:Q4_K_M", frameworks=["llamacpp"], projections=())
    d = a.to_dict()
    assert d["weights"]["bytes"] == truth and d["weights"]["source"] == "gguf-header" and d["weights"]["exact"]
    assert d["gguf"]["file_type"] == "Q4_K_M" and d["gguf"]["files"] == ["Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"]
    assert d["gguf"]["file_bytes"] == meta["files"]["Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"]
    assert d["architecture"]["config_reader"] == "gguf" and d["architecture"]["model_type"] == "llama"
    assert (d["architecture"]["num_layers"], d["architecture"]["num_kv_heads"], d["architecture"]["head_dim"]) == (32, 8, 128)
    assert d["architecture"]["max_context"] == 131072 and d["architecture"]["vocab_size"] == 128256
    assert d["parameters"]["total"] == 8_030_261_312  # 8,030,261,248 of the HF checkpoint + rope_freqs (64)
    # llama.cpp: every layer and the output on the GPU, token_embd in host RAM (the file's own tensors)
    g = a.model.gguf
    est = d["estimates"]["llamacpp"]
    # every block, the output layer and what goes with it (output_norm, rope_freqs); token_embd stays in host RAM
    assert est["components"]["weights"] == sum(g.per_layer) + g.output + g.other - g.other_host
    assert est["host_bytes"] >= g.token_embd and g.token_embd == 128256 * 4096 // 256 * 144  # Q4_K token_embd
    jsonschema.validate(d, SCHEMA)
    # Range requests only: model_info, then one ranged GET of the file
    gets = gguf_gets(fake_hub)
    assert len(gets) == 1 and gets[0].range == "bytes=0-1048575"
    assert fake_hub.count() == 2


def test_ollama_form_and_file_option_and_case(fake_hub, cli):
    base = hfvram.analyze(f"{BARTOWSKI}:Q6_K", frameworks=["llamacpp"], projections=()).to_dict()["weights"]
    for form in (f"hf.co/{BARTOWSKI}:q6_k", f"https://hf.co/{BARTOWSKI}:Q6_K"):
        d = hfvram.analyze(form, frameworks=["llamacpp"], projections=()).to_dict()
        assert d["weights"] == base and d["model"]["id"] == BARTOWSKI
    code, out, _ = cli([BARTOWSKI, "--file", "Meta-Llama-3.1-8B-Instruct-Q6_K.gguf", "-f", "llamacpp", "--json"])
    assert code == 0 and json.loads(out)["weights"] == base


def test_local_gguf_file_and_folder(tmp_path, cli):
    path = sparse_copy(BARTOWSKI, "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", tmp_path)
    d = hfvram.analyze(str(path), frameworks=["llamacpp"], projections=()).to_dict()
    assert d["model"]["source"] == "local" and d["weights"]["bytes"] == oracle_bytes(path)
    assert d["estimates"]["llamacpp"]["supported"]
    sparse_copy(BARTOWSKI, "Meta-Llama-3.1-8B-Instruct-Q8_0.gguf", tmp_path)
    # a folder of two quants is listed; the CLI prints one row each
    code, out, err = cli([str(tmp_path), "--json", "-f", "llamacpp"])
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "listing" and [i["label"] for i in doc["items"]] == ["Q8_0", "Q4_K_M"]
    jsonschema.validate(doc, SCHEMA)


def test_split_files_are_one_model(fake_hub, tmp_path):
    meta = fixture_meta(SPLIT_REPO)
    parts = sorted(p for p in meta["files"] if "Q6_K" in p)
    assert len(parts) == 2 and parts[0].endswith("-00001-of-00002.gguf")
    truth = sum(oracle_bytes(sparse_copy(SPLIT_REPO, p, tmp_path)) for p in parts)
    fake_hub.reset()
    d = hfvram.analyze(f"{SPLIT_REPO}:Q6_K", frameworks=["llamacpp"], projections=()).to_dict()
    assert d["gguf"]["files"] == parts and d["weights"]["bytes"] == truth
    assert d["gguf"]["file_bytes"] == sum(meta["files"][p] for p in parts)
    assert d["architecture"]["num_layers"] == 80
    assert sorted(r.path.rsplit("/", 1)[-1] for r in gguf_gets(fake_hub)) == [p.rsplit("/", 1)[-1] for p in parts]
    # naming the second split chooses the model; a missing part is an error
    d2 = hfvram.analyze(SPLIT_REPO, file=parts[1].rsplit("/", 1)[-1], frameworks=["llamacpp"], projections=())
    assert d2.to_dict()["weights"]["bytes"] == truth
    fake_hub.add_alias("someone/split-GGUF", SPLIT_REPO)
    fake_hub.delete_file("someone/split-GGUF", parts[1])
    with pytest.raises(MalformedInput, match="-00002-of-00002.gguf is missing"):
        hfvram.analyze("someone/split-GGUF:Q6_K", frameworks=["llamacpp"], projections=())


def test_mmproj_listed_and_added_when_asked(fake_hub, cli):
    plain = hfvram.analyze(VL, frameworks=["llamacpp"], projections=()).to_dict()
    assert plain["gguf"]["mmproj"] is None and "mmproj" not in plain["estimates"]["llamacpp"]["components"]
    assert any("--mmproj" in n for n in plain["notes"])
    with_proj = hfvram.analyze(VL, mmproj="auto", frameworks=["llamacpp"], projections=()).to_dict()
    proj = fixture_meta(VL)["provenance"]["quants"]["mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf"]
    mm = with_proj["gguf"]["mmproj_bytes"]
    assert with_proj["gguf"]["mmproj"] == "mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf" and 0 < mm < proj["file_bytes"]
    est = with_proj["estimates"]["llamacpp"]
    assert est["components"]["mmproj"] == mm
    assert est["per_gpu_bytes"] == plain["estimates"]["llamacpp"]["per_gpu_bytes"] + mm
    assert with_proj["parameters"]["total"] == plain["parameters"]["total"]  # the language model's
    code, _, err = cli([VL, "--file", "mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf"])
    assert code == 2 and "vision projector" in err


# ---------------------------------------------------------------------------------------------------------------
# A GGUF repo is never sized from a config.json
# ---------------------------------------------------------------------------------------------------------------


def test_stub_config_repo_never_passes_on_config_defaults(fake_hub, cli):
    assert (FIXTURES / "TheBloke--Llama-2-70B-GGUF" / "config.json").read_text().strip().endswith("}")
    code, out, err = cli(["check", STUB, "--gpu", "RTX-4090", "-f", "llamacpp"])
    assert code == 2 and "ERROR" in out and "PASS" not in out  # several quants, none chosen: not a verdict
    code, out, err = cli(["check", f"{STUB}:Q4_K_M", "--gpu", "RTX-4090", "-f", "llamacpp"])
    assert code == 1 and out.startswith("FAIL")
    d = hfvram.analyze(f"{STUB}:Q4_K_M", frameworks=["llamacpp"], projections=()).to_dict()
    assert d["weights"]["source"] == "gguf-header" and d["weights"]["bytes"] > 38 * 2**30
    assert d["architecture"]["num_layers"] == 80 and d["architecture"]["max_context"] == 4096
    assert any("config.json ignored" in n for n in d["notes"])


def test_safetensors_repo_with_a_gguf_next_to_it_keeps_its_safetensors(fake_hub):
    fake_hub.add_alias("someone/both", "meta-llama/Meta-Llama-3.1-8B", gated=False)
    header = gzip.decompress((FIXTURES / "bartowski--Meta-Llama-3.1-8B-Instruct-GGUF" / "gguf-headers" /
                              "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf.gz").read_bytes())
    fake_hub.set_file("someone/both", "model-Q4_K_M.gguf", header)  # header only: never read unless chosen
    d = hfvram.analyze("someone/both", frameworks=["llamacpp"], projections=()).to_dict()
    assert d["weights"]["source"] == "safetensors-headers" and d["gguf"] is None
    assert any("also holds 1 GGUF" in n for n in d["notes"])
    assert not gguf_gets(fake_hub)


# ---------------------------------------------------------------------------------------------------------------
# The per-quant listing
# ---------------------------------------------------------------------------------------------------------------


def test_listing_through_the_cli(fake_hub, cli):
    meta = fixture_meta(BARTOWSKI)
    fake_hub.reset()
    code, out, err = cli([BARTOWSKI, "--gpu", "RTX-4090", "--context", "32k"])
    assert code == 0, err
    for path in meta["files"]:
        label = gg.quant_label(path)
        assert any(line.strip("│ ").startswith(label) for line in out.splitlines()), label
    assert "llama.cpp" in out and "max ctx" in out and f"hfvram {BARTOWSKI}:Q4_K_M" in out
    # every file header read with Range requests; the first in full, the others skipping nothing they need
    gets = gguf_gets(fake_hub)
    assert len(gets) == len(meta["files"]) and all(r.range for r in gets)
    code, out, err = cli([BARTOWSKI, "--gpu", "RTX-4090", "--context", "32k", "--json"])
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["kind"] == "listing" and doc["format"] == "gguf" and doc["context"] == 32768
    items = {i["label"]: i for i in doc["items"]}
    assert set(items) == {gg.quant_label(p) for p in meta["files"]}
    for label, item in items.items():
        assert item["bytes"] == meta["files"][item["files"][0]]
        e = item["analysis"]["estimates"]["llamacpp"]
        assert e["fits"] is True and e["max_context"] >= 32768
        assert item["analysis"]["gguf"]["file_type"].upper() == label.upper()
    # the order is largest first, and a bigger file never needs less memory
    sizes = [items[i["label"]]["analysis"]["estimates"]["llamacpp"]["per_gpu_bytes"] for i in doc["items"]]
    assert sizes == sorted(sizes, reverse=True)


def test_listing_api_and_the_one_file_api_agree(fake_hub):
    listing = hfvram.list_quants(BARTOWSKI, gpu="RTX-4090", frameworks=["llamacpp"])
    one = hfvram.analyze(f"{BARTOWSKI}:IQ4_XS", gpu="RTX-4090", frameworks=["llamacpp"], projections=())
    item = next(i for i in listing.items if i.label == "IQ4_XS")
    assert item.analysis.estimates["llamacpp"].per_gpu_bytes == one.estimates["llamacpp"].per_gpu_bytes
    with pytest.raises(gg.ChooseQuant):
        hfvram.analyze(BARTOWSKI, frameworks=["llamacpp"])


def test_warm_cache_reads_no_header_again(fake_hub):
    hfvram.analyze(f"{BARTOWSKI}:Q4_K_M", frameworks=["llamacpp"], projections=())
    fake_hub.reset()
    d = hfvram.analyze(f"{BARTOWSKI}:Q4_K_M", frameworks=["llamacpp"], projections=()).to_dict()
    assert d["model"]["source"] == "cache" and fake_hub.count() == 1 and not gguf_gets(fake_hub)


def test_offline_from_the_bundled_snapshot():
    d = hfvram.analyze(f"{BARTOWSKI}:Q4_K_M", offline=True, frameworks=["llamacpp"], projections=()).to_dict()
    assert d["model"]["source"] == "snapshot" and d["gguf"]["file_type"] == "Q4_K_M"


# ---------------------------------------------------------------------------------------------------------------
# Facts from GGUF keys
# ---------------------------------------------------------------------------------------------------------------


def test_moe_gguf_facts(fake_hub):
    d = hfvram.analyze(f"{MOE}:Q4_K_M", frameworks=["llamacpp"], projections=()).to_dict()
    a = d["architecture"]
    assert a["model_type"] == "qwen3moe" and a["moe"] == {"num_experts": 128, "experts_per_token": 8,
                                                          "shared_experts": 0, "expert_intermediate_size": 768}
    assert (a["num_kv_heads"], a["head_dim"]) == (4, 128)
    assert d["weights"]["by_component"]["experts"] > 0.8 * d["weights"]["bytes"]
    assert d["parameters"]["active"] < d["parameters"]["total"] / 5


def test_mla_keys_and_old_deepseek_ggufs(tmp_path):
    base = {"deepseek2.block_count": 2, "deepseek2.context_length": 4096, "deepseek2.embedding_length": 256,
            "deepseek2.feed_forward_length": 512, "deepseek2.attention.head_count": 16,
            "deepseek2.attention.kv_lora_rank": 512, "deepseek2.rope.dimension_count": 64}
    tensors = [("token_embd.weight", (100, 256), "F16")] + [(f"blk.{i}.attn_norm.weight", (256,), "F32")
                                                            for i in range(2)]
    new = {**base, "deepseek2.attention.head_count_kv": 1, "deepseek2.attention.key_length": 576,
           "deepseek2.attention.value_length": 512, "deepseek2.attention.key_length_mla": 192,
           "deepseek2.attention.value_length_mla": 128}
    old = {**base, "deepseek2.attention.head_count_kv": 16, "deepseek2.attention.key_length": 192,
           "deepseek2.attention.value_length": 128}
    d_new = hfvram.analyze(str(write_gguf(tmp_path / "new.gguf", "deepseek2", new, tensors)), frameworks=[],
                           projections=()).to_dict()
    d_old = hfvram.analyze(str(write_gguf(tmp_path / "old.gguf", "deepseek2", old, tensors)), frameworks=[],
                           projections=()).to_dict()
    assert d_new["architecture"]["layer_kinds"]["mla"] == 2 and d_new["kv_cache"]["per_token_bytes"] == 2 * 576 * 2
    assert d_old["architecture"]["layer_kinds"]["full_attention"] == 2
    assert d_old["kv_cache"]["per_token_bytes"] == 2 * 16 * (192 + 128) * 2
    assert any("caches full K and V" in n for n in d_old["notes"])


def test_sliding_window_pattern_and_hybrid_layers(tmp_path):
    tensors = [("token_embd.weight", (100, 256), "F16")]
    gemma2 = {"gemma2.block_count": 4, "gemma2.context_length": 8192, "gemma2.embedding_length": 256,
              "gemma2.feed_forward_length": 512, "gemma2.attention.head_count": 4,
              "gemma2.attention.head_count_kv": 2, "gemma2.attention.key_length": 64,
              "gemma2.attention.value_length": 64, "gemma2.attention.sliding_window": 1024}
    d = hfvram.analyze(str(write_gguf(tmp_path / "g.gguf", "gemma2", gemma2, tensors)), frameworks=[],
                       projections=()).to_dict()
    assert d["architecture"]["layer_kinds"]["sliding_attention"] == 2  # gemma2.cpp: pattern 2, layers 0 and 2
    assert d["architecture"]["sliding_window"] == 1024
    jamba = {"jamba.block_count": 4, "jamba.context_length": 8192, "jamba.embedding_length": 256,
             "jamba.feed_forward_length": 512, "jamba.attention.head_count": 4,
             "jamba.attention.head_count_kv": [0, 0, 2, 0], "jamba.ssm.conv_kernel": 4, "jamba.ssm.inner_size": 512,
             "jamba.ssm.state_size": 16, "jamba.ssm.time_step_rank": 16}
    d = hfvram.analyze(str(write_gguf(tmp_path / "j.gguf", "jamba", jamba, tensors)), frameworks=[],
                       projections=()).to_dict()
    kinds = d["architecture"]["layer_kinds"]
    assert (kinds["mamba"], kinds["full_attention"]) == (3, 1)
    assert d["kv_cache"]["state_bytes"] == 3 * (3 * 512 + 512 * 16) * 2  # conv (d_conv-1) x d_inner + ssm, fp16


def test_published_file_sizes_are_reproduced():
    """Each reconstructed quant's tensor data, plus the real tokenizer header of that model family (llama.cpp's
    vocab-only GGUFs), reproduces the published file size within the precision it was printed with."""
    checked = 0
    for d in sorted(FIXTURES.glob("*-GGUF")):
        meta = json.loads((d / "repo.json").read_text())
        tok = meta["provenance"].get("tokenizer_header_bytes") or 0
        for label, q in meta["provenance"]["quants"].items():
            pub = q.get("published")
            if not pub:
                continue
            value, unit = pub["printed"].split()
            scale = {"GB": 1e9, "GiB": 2**30}[unit]
            published = float(value) * scale
            assert abs(q["tensor_data_bytes"] + tok - published) <= pub["precision_bytes"], (d.name, label)
            checked += 1
    assert checked >= 10


# ---------------------------------------------------------------------------------------------------------------
# EXL2 / EXL3
# ---------------------------------------------------------------------------------------------------------------


def test_exl2_branch_sized_from_its_tensors(fake_hub):
    from hfvram.repodata import load_fixture_revision

    sha = fixture_meta(EXL2)["refs"]["4.0bpw"]
    rev = load_fixture_revision(FIXTURES / EXL2.replace("/", "--"), "4.0bpw", sha)
    tensors = rev.safetensors["output.safetensors"][1]
    a = hfvram.analyze(f"{EXL2}@4.0bpw", frameworks=["exllamav2"], projections=())
    d = a.to_dict()
    assert d["weights"]["bytes"] == sum(t.nbytes for t in tensors) and d["weights"]["exact"]
    assert d["architecture"]["quantization"]["method"] == "exl2" and d["architecture"]["quantization"]["bits"] == 4.0
    assert "head 6 bits" in d["architecture"]["quantization"]["format"]
    assert d["parameters"]["total"] == 8_030_261_248  # logical weights: q_invperm rows x q_weight columns
    embed = next(t.nbytes for t in tensors if t.name == "model.embed_tokens.weight")
    assert d["estimates"]["exllamav2"]["components"]["weights"] == d["weights"]["bytes"] - embed
    assert a.model.exl2_bpw == 4.0
    assert hfvram.analyze(f"{EXL2}:4.0bpw", frameworks=["exllamav2"], projections=()).to_dict()["weights"] == d["weights"]


def test_exl2_branches_listed_when_no_revision_is_given(fake_hub, cli):
    fake_hub.reset()
    code, out, err = cli([EXL2, "--gpu", "RTX-4090", "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["format"] == "exl2" and [i["label"] for i in doc["items"]] == ["4.0bpw", "6.0bpw"]
    jsonschema.validate(doc, SCHEMA)
    w4, w6 = (i["analysis"]["weights"]["bytes"] for i in doc["items"])
    assert w4 < w6
    assert fake_hub.count("GET", r"/refs$") == 1
    with pytest.raises(HfvramError, match="keeps its model in branches"):
        hfvram.analyze(EXL2, frameworks=["exllamav2"])


def test_exl2_bit_rate_per_folder(fake_hub_factory, tmp_path):
    from hfvram.fakehub import write_fixture
    from hfvram.repodata import load_fixture_revision

    sha = fixture_meta(EXL2)["refs"]["6.0bpw"]
    rev = load_fixture_revision(FIXTURES / EXL2.replace("/", "--"), "6.0bpw", sha)
    table = [(t.name, t.dtype, t.shape) for t in rev.safetensors["output.safetensors"][1]]
    write_fixture(tmp_path / "someone--folders-exl2", "someone/folders-exl2",
                  files={"6.0bpw/config.json": rev.texts["config.json"]},
                  tensors={"6.0bpw/output.safetensors": table}, provenance={"tensors": "test"})
    hub = fake_hub_factory(tmp_path)
    d = hfvram.analyze("someone/folders-exl2:6.0bpw", frameworks=["exllamav2"], projections=()).to_dict()
    assert d["weights"]["bytes"] == sum(t.nbytes for t in rev.safetensors["output.safetensors"][1])
    assert hub.count("GET", "6.0bpw/config.json") == 1


def test_exl3_tensors_count_their_logical_weights():
    from hfvram.introspect.quant import detect
    from hfvram.introspect.weights import analyse
    from hfvram.stformat import Tensor, dtype_nbytes

    def t(name, dtype, shape):
        return Tensor(name, dtype, shape, dtype_nbytes(dtype, shape))

    # exllamav3 quantize.py: trellis int16 [in/16, out/16, 256*K/16], suh f16 [in], svh f16 [out]
    tensors = [t("model.layers.0.mlp.up_proj.trellis", "I16", (4096 // 16, 14336 // 16, 256 * 4 // 16)),
               t("model.layers.0.mlp.up_proj.suh", "F16", (4096,)), t("model.layers.0.mlp.up_proj.svh", "F16", (14336,))]
    w = analyse(tensors, 1, None)
    assert w.parameters == 4096 * 14336
    assert w.bytes == 4096 * 14336 * 4 // 8 + 2 * (4096 + 14336)
    q = detect({"quantization_config": {"quant_method": "exl3", "bits": 4.0, "head_bits": 6}}, {}, tensors,
               lambda text, name: json.loads(text))
    assert (q.method, q.bits, q.format) == ("exl3", 4.0, "exl3, head 6 bits")


def test_a_sibling_header_skips_the_tokenizer_lists_it_shares(tmp_path, monkeypatch):
    """The listing reads one quant's header in full and the others skipping the long arrays they share with it;
    the skip is checked against the file size, and a sibling whose lists differ is read again in full."""
    tokens = {"tokenizer.ggml.tokens": [f"token{i}" for i in range(20000)]}
    kv, tensors = llama_like(**tokens)
    a = gg.read_local_header(str(write_gguf(tmp_path / "a.gguf", "llama", kv, tensors)))
    b_path = write_gguf(tmp_path / "b.gguf", "llama", {**kv, "general.file_type": 7}, tensors)
    data = b_path.read_bytes()
    read = []

    @contextlib.contextmanager
    def opener(start, stop):
        read.append((start, stop))
        yield iter([data[start:stop]])

    monkeypatch.setattr(gg, "FIRST_RANGE_BYTES", 4096)
    b = gg.read_header(opener, "b.gguf", len(data), template=a)
    assert b.to_json() == {**gg.read_local_header(str(b_path)).to_json(), "path": "b.gguf"}
    assert read[0] == (0, 4096) and read[1][0] > 100_000  # the token list itself was never read
    other = write_gguf(tmp_path / "c.gguf", "llama", {**kv, "tokenizer.ggml.tokens": [f"tk{i}" for i in range(20000)]},
                       tensors)
    c = gg.read_local_header(str(other), template=a)  # same count, other bytes: caught, then read in full
    assert c.to_json() == {**gg.read_local_header(str(other)).to_json()}


def test_long_strings_and_recurrent_archs_without_ssm_keys(tmp_path):
    kv, tensors = llama_like(**{"tokenizer.chat_template": "{% x %}" * 1000, "general.tags": ["a" * 2000, "b"]})
    h = gg.read_local_header(str(write_gguf(tmp_path / "m.gguf", "llama", kv, tensors)))
    assert h.metadata["tokenizer.chat_template"] == gg.ArrayInfo("STRING_VALUE", 1, 7000)
    assert h.metadata["general.tags"] == ["a" * 2000, "b"]
    json.dumps(h.to_json())
    rwkv = {"rwkv6.block_count": 2, "rwkv6.context_length": 4096, "rwkv6.embedding_length": 256}
    d = hfvram.analyze(str(write_gguf(tmp_path / "r.gguf", "rwkv6", rwkv, [("token_embd.weight", (100, 256), "F16")])),
                       frameworks=[], projections=()).to_dict()
    assert d["architecture"]["layer_kinds"]["none"] == 2 and any("state not counted" in n for n in d["notes"])


def test_cdn_redirect_and_round_trips(fake_hub_factory):
    """The real Hub answers LFS files with a 302 to its CDN: the Range header goes along. A listing is three
    sequential round trips: model_info, the first header, the other headers in parallel."""
    from hfvram.fakehub import default_fixtures_dir

    hub = fake_hub_factory(default_fixtures_dir(), cdn=True, delay_s=0.05)  # 50 ms a request, as a real round trip
    d = hfvram.analyze(f"{BARTOWSKI}:Q8_0", frameworks=["llamacpp"], projections=()).to_dict()
    assert d["gguf"]["file_type"] == "Q8_0"
    cdn = [r for r in hub.requests("GET") if r.server == "cdn"]
    assert len(cdn) == 1 and cdn[0].range == "bytes=0-1048575"
    hub.reset()
    hfvram.list_quants(f"{BARTOWSKI}@main", frameworks=["llamacpp"])
    assert hub.sequential_round_trips(path=r"^/(?!cdn/)") == 3  # the Hub's own; each then redirects to the CDN
    assert hub.sequential_round_trips() == 5
