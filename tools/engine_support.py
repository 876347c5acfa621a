"""Regenerate hfvram/data/engine_support.json: which architectures, weight formats and KV-cache types each engine
runs, read from the engines' own source files (never imported: names are pulled out with `ast` and regular
expressions, nothing of their code is copied here).

    python tools/engine_support.py \\
        --vllm /tmp/vllm-0.34.0            # an unpacked vLLM wheel (the folder holding vllm/ and vllm-*.dist-info/)
        --vllm-history 0.27.1=/tmp/v0271   # optional, repeatable: older unpacked wheels (at least
                                           #   vllm/model_executor/layers/quantization/__init__.py, vllm/config/cache.py)
        --llamacpp /tmp/llama_cpp_python-0.3.36   # the llama-cpp-python sdist (vendor/llama.cpp inside), or a
                                           #   llama.cpp checkout / bare git dir
        --exllamav2 /work/.mirror/turboderp-org+exllamav2/repo   # checkout or bare git dir
        --exllamav3 /work/.mirror/turboderp-org+exllamav3/repo
        --transformers .venv/lib/python3.11/site-packages/transformers
        --trtllm tools/engine_support_inputs/trtllm.json   # names transcribed by hand (no local copy of TensorRT-LLM)
        -o hfvram/data/engine_support.json

Every engine is optional: the ones not given keep their entry from the existing output file. Where each list comes
from (file + symbol) and the judgment calls are written down in hfvram/data/ENGINE_SUPPORT.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

SCHEMA = "engine-support/1"


# --------------------------------------------------------------------------------------------------------------------
# Reading sources: a plain folder, or a bare git directory read at HEAD


class Source:
    def __init__(self, path: str | Path, sub: str = ""):
        self.path = Path(path)
        self.sub = sub.strip("/")
        self.git = (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def _rel(self, rel: str) -> str:
        return f"{self.sub}/{rel}" if self.sub else rel

    def commit(self) -> str | None:
        if not self.git:
            return None
        return subprocess.run(["git", "--git-dir", str(self.path), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()

    def exists(self, rel: str) -> bool:
        if self.git:
            return subprocess.run(["git", "--git-dir", str(self.path), "cat-file", "-e", f"HEAD:{self._rel(rel)}"],
                                  capture_output=True).returncode == 0
        return (self.path / self._rel(rel)).exists()

    def read(self, rel: str) -> str:
        if self.git:
            return subprocess.run(["git", "--git-dir", str(self.path), "show", f"HEAD:{self._rel(rel)}"], check=True,
                                  capture_output=True, text=True).stdout
        return (self.path / self._rel(rel)).read_text(encoding="utf-8")

    def listdir(self, rel: str) -> list[str]:
        if self.git:
            out = subprocess.run(["git", "--git-dir", str(self.path), "ls-tree", "--name-only", "HEAD",
                                  f"{self._rel(rel).rstrip('/')}/"], check=True, capture_output=True, text=True).stdout
            return sorted(Path(p).name for p in out.split())
        return sorted(p.name for p in (self.path / self._rel(rel)).iterdir())


# --------------------------------------------------------------------------------------------------------------------
# ast helpers


def module_value(tree: ast.Module, name: str) -> ast.expr | None:
    """The value assigned to a module-level `name` (plain or annotated assignment)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def str_keys(node: ast.expr | None) -> list[str]:
    """String keys of a dict display (`**x` entries skipped)."""
    if not isinstance(node, ast.Dict):
        raise ValueError("not a dict display")
    return [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]


def str_dict(node: ast.expr | None) -> dict[str, str]:
    if not isinstance(node, ast.Dict):
        raise ValueError("not a dict display")
    return {k.value: v.value for k, v in zip(node.keys, node.values)
            if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}


def literal_args(node: ast.expr | None) -> list[str]:
    """The strings of `Literal["a", "b", ...]`."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal"):
        raise ValueError("not a Literal[...]")
    elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def ordered_dict_values(node: ast.expr | None) -> list[str]:
    """Class names of `OrderedDict([("model_type", "Cls" | ("Cls", "Cls2")), ...])`."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List)):
        raise ValueError("not OrderedDict([...])")
    out = []
    for pair in node.args[0].elts:
        if isinstance(pair, ast.Tuple) and len(pair.elts) == 2:
            v = pair.elts[1]
            vals = v.elts if isinstance(v, ast.Tuple) else [v]
            out += [x.value for x in vals if isinstance(x, ast.Constant) and isinstance(x.value, str)]
    return out


def func_def(tree: ast.AST, name: str) -> ast.FunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def sort_dict(d: dict) -> dict:
    return {k: d[k] for k in sorted(d, key=str.lower)}


def engine_entry(archs: dict, formats: dict, kv: dict, doc: dict) -> dict:
    """One engine's entry of engine_support.json: its architectures, weight formats and KV cache dtypes as read,
    plus `doc` (version, read_from, fallback, notes; "removed" and "plugin" where the engine has them)."""
    return {"version": doc["version"], "read_from": doc["read_from"], "architectures": sort_dict(archs),
            "removed": doc.get("removed", {}), "plugin": doc.get("plugin", {}), "fallback": doc.get("fallback"),
            "weight_formats": formats, "kv_cache_dtypes": kv, "notes": doc["notes"]}


# --------------------------------------------------------------------------------------------------------------------
# vLLM

VLLM_NATIVE_TABLES = {
    "_TEXT_GENERATION_MODELS": "text-generation",
    "_MULTIMODAL_MODELS": "multimodal",
    "_EMBEDDING_MODELS": "embedding",
    "_LATE_INTERACTION_MODELS": "late-interaction",
    "_REWARD_MODELS": "reward",
    "_TOKEN_CLASSIFICATION_MODELS": "token-classification",
    "_SEQUENCE_CLASSIFICATION_MODELS": "sequence-classification",
    "_SPECULATIVE_DECODING_MODELS": "speculative-draft",
}

# hfvram weight-format name -> the vLLM QUANTIZATION_METHODS names that load it (checkpoint formats only).
VLLM_FORMATS = {
    "gptq": ["gptq", "gptq_marlin", "auto_gptq"],
    "awq": ["awq", "awq_marlin", "auto_awq"],
    "fp8": ["fp8"],
    "fbgemm_fp8": ["fbgemm_fp8"],
    "compressed-tensors": ["compressed-tensors"],
    "modelopt": ["modelopt", "modelopt_fp4", "modelopt_mxfp8", "modelopt_mixed"],
    "nvfp4": ["modelopt_fp4"],
    "mxfp4": ["mxfp4", "gpt_oss_mxfp4"],
    "mxfp8": ["mxfp8", "modelopt_mxfp8"],
    "torchao": ["torchao"],
    "quark": ["quark"],
    "inc": ["inc"],
    "auto-round": ["inc"],
    "bitsandbytes": ["bitsandbytes"],
    "gguf": ["gguf"],
    "fp_quant": ["fp_quant"],
}
# Entries of get_quantization_config's method_to_config that are not a checkpoint format of their own.
VLLM_NOT_FORMATS = {
    "experts_int8": "online int8 quantisation of MoE experts (ExpertsInt8Config docstring)",
    "humming": "kernel choice selected by --quantization humming (HummingConfig.override_quantization_method)",
    "moe_wna16": "kernel for GPTQ/AWQ MoE checkpoints selected by --quantization moe_wna16",
    "online": "online quantisation of an unquantised checkpoint (OnlineQuantizationConfig)",
}
VLLM_FORMAT_HOW = {
    "gptq": "QUANTIZATION_METHODS gptq / gptq_marlin / auto_gptq (AutoGPTQConfig)",
    "awq": "QUANTIZATION_METHODS awq / awq_marlin / auto_awq (AutoAWQConfig)",
    "fp8": "QUANTIZATION_METHODS fp8 (Fp8Config)",
    "fbgemm_fp8": "QUANTIZATION_METHODS fbgemm_fp8 (FBGEMMFp8Config; in DEPRECATED_QUANTIZATION_METHODS)",
    "compressed-tensors": "QUANTIZATION_METHODS compressed-tensors (CompressedTensorsConfig)",
    "modelopt": "QUANTIZATION_METHODS modelopt (FP8) / modelopt_fp4 (NVFP4) / modelopt_mxfp8 / modelopt_mixed",
    "nvfp4": "QUANTIZATION_METHODS modelopt_fp4 (ModelOptNvFp4Config); NVFP4 compressed-tensors checkpoints load "
             "through compressed-tensors",
    "mxfp4": "QUANTIZATION_METHODS mxfp4 (Mxfp4Config) / gpt_oss_mxfp4 (GptOssMxfp4Config)",
    "mxfp8": "checkpoint quant_method mxfp8 -> ModelOptMxFp8Config (get_quantization_config method_to_config)",
    "torchao": "QUANTIZATION_METHODS torchao (TorchAOConfig)",
    "quark": "QUANTIZATION_METHODS quark (QuarkConfig)",
    "inc": "QUANTIZATION_METHODS inc (INCConfig)",
    "auto-round": "INCConfig.override_quantization_method turns quant_method auto-round into inc",
}


def vllm_quant(src: Source) -> tuple[list[str], list[str], list[str], list[str]]:
    """(QUANTIZATION_METHODS, checkpoint methods = get_quantization_config's method_to_config literal keys,
    deprecated, online shorthands)."""
    tree = ast.parse(src.read("vllm/model_executor/layers/quantization/__init__.py"))
    methods = literal_args(module_value(tree, "QuantizationMethods"))
    deprecated = [e.value for e in module_value(tree, "DEPRECATED_QUANTIZATION_METHODS").elts]
    checkpoint: list[str] = []
    fn = func_def(tree, "get_quantization_config")
    for node in ast.walk(fn):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "method_to_config":
            checkpoint = str_keys(node.value)
    online: list[str] = []
    if src.exists("vllm/config/quantization.py"):
        qtree = ast.parse(src.read("vllm/config/quantization.py"))
        node = module_value(qtree, "_ONLINE_SHORTHANDS")
        if node is not None:
            online = str_keys(node) + ["online"]
    return methods, checkpoint, deprecated, online


def vllm_kv(src: Source) -> list[str]:
    return literal_args(module_value(ast.parse(src.read("vllm/config/cache.py")), "CacheDType"))


def extract_vllm(root: str, history: list[tuple[str, str]]) -> dict:
    src = Source(root)
    meta = next((p for p in src.path.glob("vllm-*.dist-info/METADATA")), None)
    version = None
    if meta:
        m = re.search(r"^Version: (\S+)", meta.read_text(), re.M)
        version = m.group(1) if m else None
    if version is None and src.exists("vllm/_version.py"):
        m = re.search(r"version = .*?['\"]([^'\"]+)['\"]", src.read("vllm/_version.py"))
        version = m.group(1) if m else None
    reg = ast.parse(src.read("vllm/model_executor/models/registry.py"))

    archs: dict[str, str] = {}
    category: dict[str, str] = {}
    for table, cat in VLLM_NATIVE_TABLES.items():
        for name in str_keys(module_value(reg, table)):
            archs[name] = "native"
            category[name] = cat
    tb = str_keys(module_value(reg, "_TRANSFORMERS_SUPPORTED_MODELS"))
    for name in tb:
        if name in archs:
            raise SystemExit(f"vLLM: {name} is both native and transformers-backend")
        archs[name] = "transformers-backend"
    removed = str_dict(module_value(reg, "_PREVIOUSLY_SUPPORTED_MODELS"))
    plugin = str_dict(module_value(reg, "_OOT_SUPPORTED_MODELS"))
    both = sorted(set(removed) & set(archs))
    if both:
        raise SystemExit(f"vLLM: listed as supported and as removed: {both}")
    backend_internal = str_keys(module_value(reg, "_TRANSFORMERS_BACKEND_MODELS"))

    registry_text = src.read("vllm/model_executor/models/registry.py")
    fallback = ("transformers-backend" if "_try_resolve_transformers" in registry_text
                and 'model_impl == "auto"' in registry_text else None)

    dtypes = literal_args(module_value(ast.parse(src.read("vllm/config/model.py")), "ModelDType"))
    methods, checkpoint, deprecated, online = vllm_quant(src)
    formats: dict[str, str] = {}
    for name, want in (("fp32", ("float32", "float")), ("fp16", ("float16", "half")), ("bf16", ("bfloat16",))):
        got = [d for d in want if d in dtypes]
        if got:
            formats[name] = f"--dtype {' / '.join(got)} (ModelDType)"
    known = set(methods) | set(checkpoint)
    for name, ms in VLLM_FORMATS.items():
        if any(m in known and m in checkpoint for m in ms) and name in VLLM_FORMAT_HOW:
            formats[name] = VLLM_FORMAT_HOW[name]
    mapped = {m for ms in VLLM_FORMATS.values() for m in ms}
    other_checkpoint = [m for m in checkpoint if m not in mapped and m not in online and m not in VLLM_NOT_FORMATS]
    for m in other_checkpoint:
        formats[m] = f"QUANTIZATION_METHODS {m} (vLLM-specific checkpoint method, no hfvram name)"

    kv_names = vllm_kv(src)
    kv: dict[str, str] = {}
    if "auto" in kv_names:
        kv["auto"] = "auto (the model dtype)"
    if "float16" in kv_names:
        kv["fp16"] = "float16"
    if "bfloat16" in kv_names:
        kv["bf16"] = "bfloat16"
    fp8 = [n for n in ("fp8", "fp8_e4m3", "fp8_e5m2") if n in kv_names]
    if fp8:
        kv["fp8"] = " / ".join(fp8)
    if "int8_per_token_head" in kv_names:
        kv["int8"] = "int8_per_token_head"
    if "nvfp4" in kv_names:
        kv["nvfp4"] = "nvfp4"
    unmapped_kv = [n for n in kv_names if n not in ("auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2",
                                                      "int8_per_token_head", "nvfp4")]

    notes: dict = {
        "architecture_category": sort_dict(category),
        "transformers_backend_internal_names": backend_internal,
        "fallback_condition": "registry.py _try_resolve_transformers: an architecture in none of the tables runs "
                              "through the Transformers backend (model_impl auto) when transformers (or the repo's "
                              "auto_map remote code) has the class and it is backend-compatible "
                              "(is_backend_compatible() or _can_set_attn_implementation())",
        "quantization_methods": methods,
        "checkpoint_quant_configs": checkpoint,
        "deprecated_quantization_methods": deprecated,
        "online_quantization": online,
        "kernel_or_online_methods": {k: v for k, v in VLLM_NOT_FORMATS.items() if k in checkpoint},
        "kv_cache_dtypes_all": kv_names,
        "kv_cache_dtypes_without_hfvram_name": unmapped_kv,
        "model_dtypes": dtypes,
    }

    if history:
        hist = sorted(history, key=lambda h: tuple(int(x) for x in re.findall(r"\d+", h[0])))
        seen_methods: dict[str, str] = {}
        seen_kv: dict[str, str] = {}
        for ver, path in hist:
            hsrc = Source(path)
            for m in vllm_quant(hsrc)[0]:
                seen_methods[m] = ver
            for k in vllm_kv(hsrc):
                seen_kv[k] = ver
        notes["history_versions_read"] = [v for v, _ in hist]
        notes["quantization_methods_removed"] = sort_dict({m: v for m, v in seen_methods.items() if m not in methods})
        notes["kv_cache_dtypes_removed"] = sort_dict({k: v for k, v in seen_kv.items() if k not in kv_names})
        gone = notes["quantization_methods_removed"]
        for name in ("bitsandbytes", "gguf"):
            if name in gone and name not in formats:
                notes.setdefault("weight_formats_removed", {})[name] = gone[name]

    return {
        "version": version,
        "read_from": f"vllm {version} wheel: vllm/model_executor/models/registry.py, "
                     "vllm/model_executor/layers/quantization/__init__.py, vllm/config/cache.py, vllm/config/model.py",
        "architectures": sort_dict(archs),
        "removed": sort_dict(removed),
        "plugin": sort_dict(plugin),
        "fallback": fallback,
        "weight_formats": formats,
        "kv_cache_dtypes": kv,
        "notes": notes,
    }


# --------------------------------------------------------------------------------------------------------------------
# llama.cpp (convert_hf_to_gguf: HF architectures -> GGUF general.architecture)

LLAMACPP_QUANT_HOW = {
    "fp8": "ModelBase.dequant_model quant_method fp8: weight * weight_scale_inv, written as f16/bf16/f32 "
           "(or q8_0 with the converter's fp8-as-q8 option)",
    "gptq": "ModelBase.dequant_model quant_method gptq: 2/4/8-bit qweight/qzeros/scales dequantised "
            "(3-bit raises NotImplementedError)",
    "compressed-tensors": "ModelBase.dequant_model quant_method compressed-tensors: float-/int-/naive-/pack-quantized "
                          "dequantised, nvfp4-pack-quantized repacked to GGML NVFP4; one config group only",
    "modelopt": "hf_quant_config.json producer modelopt: FP8 weights dequantised, NVFP4 repacked to GGML NVFP4",
    "bitnet": "ModelBase.dequant_model quant_method bitnet: ternary weights unpacked",
    "mxfp4": "quant_method mxfp4: only GptOssModel (GptOssForCausalLM) skips dequant_model and repacks to GGML MXFP4; "
             "other architectures reach dequant_model's NotImplementedError",
}


def _class_table(files: dict[str, str]) -> dict[str, dict]:
    """Every class in the converter files: bases, @ModelBase.register names, class-level model_arch."""
    table: dict[str, dict] = {}
    for fname, text in files.items():
        tree = ast.parse(text)
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            regs: list[str] = []
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "register"
                        and isinstance(dec.func.value, ast.Name) and dec.func.value.id == "ModelBase"):
                    regs += [a.value for a in dec.args if isinstance(a, ast.Constant)]
            arch = None
            dynamic: list[str] = []
            for item in node.body:
                if (isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "model_arch"
                                                         for t in item.targets)):
                    arch = _model_arch_attr(item.value)
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "model_arch"
                                                        for t in sub.targets)):
                    a = _model_arch_attr(sub.value)
                    if a:
                        dynamic.append(a)
            table[node.name] = {"file": fname, "bases": [b.id for b in node.bases if isinstance(b, ast.Name)],
                                "register": regs, "arch": arch, "dynamic": dynamic}
    return table


def _model_arch_attr(node: ast.expr) -> str | None:
    # gguf.MODEL_ARCH.LLAMA
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "MODEL_ARCH":
        return node.attr
    return None


def _resolve_arch(table: dict[str, dict], cls: str, seen=None) -> str | None:
    seen = seen or set()
    if cls not in table or cls in seen:
        return None
    seen.add(cls)
    if table[cls]["arch"]:
        return table[cls]["arch"]
    for b in table[cls]["bases"]:
        a = _resolve_arch(table, b, seen)
        if a:
            return a
    return None


def _ancestry(table: dict[str, dict], cls: str) -> list[str]:
    out, todo = [], [cls]
    while todo:
        c = todo.pop()
        if c in table and c not in out:
            out.append(c)
            todo += table[c]["bases"]
    return out


def extract_llamacpp(path: str) -> dict:
    root = Path(path)
    sdist_version = None
    sub = ""
    if (root / "vendor" / "llama.cpp").is_dir():
        sub = "vendor/llama.cpp"
        pkg = (root / "PKG-INFO").read_text() if (root / "PKG-INFO").is_file() else ""
        m = re.search(r"^Version: (\S+)", pkg, re.M)
        sdist_version = m.group(1) if m else None
    src = Source(root, sub)
    commit = src.commit()
    if commit is None and sdist_version and (root / "CHANGELOG.md").is_file():
        # llama-cpp-python's changelog names the vendored llama.cpp commit under each release heading
        log = (root / "CHANGELOG.md").read_text()
        sect = log.split(f"## [{sdist_version}]", 1)[-1].split("\n## [", 1)[0]
        m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", sect)
        commit = m.group(1) if m else None

    if src.exists("conversion/__init__.py"):
        files = {f"conversion/{n}": src.read(f"conversion/{n}") for n in src.listdir("conversion") if n.endswith(".py")}
        init = ast.parse(files["conversion/__init__.py"])
        text_map = str_dict(module_value(init, "TEXT_MODEL_MAP"))
        converter_files = "conversion/*.py (TEXT_MODEL_MAP in conversion/__init__.py, @ModelBase.register classes)"
    else:
        files = {"convert_hf_to_gguf.py": src.read("convert_hf_to_gguf.py")}
        text_map = None
        converter_files = "convert_hf_to_gguf.py (@ModelBase.register classes)"
    table = _class_table(files)

    consts = ast.parse(src.read("gguf-py/gguf/constants.py"))
    names_node = module_value(consts, "MODEL_ARCH_NAMES")
    arch_names = {k.attr: v.value for k, v in zip(names_node.keys, names_node.values)
                  if isinstance(k, ast.Attribute) and isinstance(v, ast.Constant)}
    runtime = set(re.findall(r'\{\s*LLM_ARCH_\w+\s*,\s*"([^"]+)"\s*\}', src.read("src/llama-arch.cpp")))

    archs: dict[str, str] = {}
    unreachable: list[str] = []
    not_in_runtime: dict[str, str] = {}
    dynamic: dict[str, list[str]] = {}
    registered: dict[str, list[str]] = {}
    for cls, info in table.items():
        for name in info["register"]:
            registered.setdefault(name, []).append(cls)
    mmproj_names: set[str] = set()
    for name, classes in registered.items():
        # ModelBase.register files MODEL_ARCH.MMPROJ classes as mmproj (vision/audio encoders), the rest as text
        text_classes = [c for c in classes if _resolve_arch(table, c) != "MMPROJ"]
        if len(text_classes) < len(classes):
            mmproj_names.add(name)
        if text_map is not None:
            mod = text_map.get(name)
            text_classes = [c for c in text_classes if table[c]["file"] == f"conversion/{mod}.py"]
        if not text_classes:
            if name not in mmproj_names:
                unreachable.append(name)
            continue
        if len(text_classes) > 1:
            raise SystemExit(f"llama.cpp: {name} registered by several text classes: {text_classes}")
        cls = text_classes[0]
        arch = _resolve_arch(table, cls)
        gguf_name = arch_names.get(arch)
        if gguf_name is None:
            unreachable.append(name)
            continue
        if gguf_name not in runtime:
            not_in_runtime[name] = gguf_name
            continue
        archs[name] = gguf_name
        dyn = [arch_names.get(a, a) for c in _ancestry(table, cls) for a in table[c]["dynamic"]]
        if dyn:
            dynamic[name] = sorted(set(dyn))
    if text_map is not None:
        unreachable += [n for n in text_map if n not in registered]
    base_py = files.get("conversion/base.py") or files.get("convert_hf_to_gguf.py", "")
    m = re.search(r"model_type == ModelType\.TEXT and arch in \(([^)]*)\)", base_py)
    top_level_only = re.findall(r"\"([^\"]+)\"", m.group(1)) if m else []

    # KV cache types: common/arg.cpp kv_cache_types, named by ggml's type traits
    arg = src.read("common/arg.cpp")
    body = re.search(r"kv_cache_types\s*=\s*\{(.*?)\};", arg, re.S).group(1)
    kv_enums = re.findall(r"GGML_TYPE_(\w+)", body)
    ggml_c = src.read("ggml/src/ggml.c")
    type_names = dict(re.findall(r"\[GGML_TYPE_(\w+)\]\s*=\s*\{[^}]*?\.type_name\s*=\s*\"([^\"]+)\"", ggml_c, re.S))
    kv: dict[str, str] = {}
    hf_kv = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}
    dflt = re.search(r"ggml_type cache_type_k = GGML_TYPE_(\w+)", src.read("common/common.h"))
    dflt_name = type_names.get(dflt.group(1), dflt.group(1).lower()) if dflt else "f16"
    kv["auto"] = f"{dflt_name} (common/common.h common_params cache_type_k / cache_type_v default)"
    for e in kv_enums:
        tn = type_names.get(e, e.lower())
        kv[hf_kv.get(tn, tn)] = f"--cache-type-k/-v {tn}"

    # Weight formats: which HF quant_method values the converter handles
    methods = set()
    where: dict[str, list[str]] = {}
    for fname, text in files.items():
        for m in re.finditer(r"quant_method\"?\)?\s*==\s*\"([\w-]+)\"", text):
            methods.add(m.group(1))
            where.setdefault(m.group(1), []).append(f"{fname}:{text[:m.start()].count(chr(10)) + 1}")
    if "modelopt" not in methods and any("hf_quant_config.json" in t for t in files.values()):
        methods.add("modelopt")
    ct_formats = sorted({m.group(1) for t in files.values()
                         for m in re.finditer(r"quant_format\s*==\s*\"([\w-]+)\"", t)})
    formats: dict[str, str] = {
        "gguf": "native (llama_model_load; the converter writes it)",
        "fp32": "convert_hf_to_gguf reads F32 safetensors (--outtype f32/f16/bf16/q8_0/auto)",
        "fp16": "convert_hf_to_gguf reads F16 safetensors",
        "bf16": "convert_hf_to_gguf reads BF16 safetensors",
    }
    for m in sorted(methods):
        formats[m] = LLAMACPP_QUANT_HOW.get(m, f"quant_method {m} handled in the converter")

    version = commit[:9] if commit else None
    where_from = f"llama-cpp-python {sdist_version} sdist vendor/llama.cpp" if sdist_version else "llama.cpp"
    return engine_entry(archs, formats, kv, {
        "version": version,
        "read_from": f"{where_from} (ggml-org/llama.cpp@{commit}): {converter_files}, gguf-py/gguf/constants.py "
                     "MODEL_ARCH_NAMES, src/llama-arch.cpp LLM_ARCH_NAMES, common/arg.cpp kv_cache_types, "
                     "conversion/base.py ModelBase.dequant_model",
        "fallback": None,
        "notes": {
            "llama_cpp_commit": commit,
            "llama_cpp_python_version": sdist_version,
            "gguf_architectures": sorted(set(archs.values())),
            "registered_but_not_converted": sorted(set(unreachable)),
            "mmproj_architectures": sorted(mmproj_names),
            "text_config_architectures_rule": "get_model_architecture: for the text model the converter uses "
                                              "text_config.architectures[0] when the config has one, except for "
                                              "these top-level architectures: " + ", ".join(top_level_only),
            "converter_arch_not_in_runtime": sort_dict(not_in_runtime),
            "may_switch_architecture": sort_dict(dynamic),
            "quant_method_checks": {k: sorted(v) for k, v in sorted(where.items())},
            "compressed_tensors_formats": ct_formats,
            "quantized_kv_rules": "src/llama-context.cpp: a quantized V cache requires flash_attn (turned on when "
                                  "flash_attn is auto, an error when disabled); with flash_attn, a quantized K/V type's "
                                  "block size (32 for q8_0/q4_0/q4_1/q5_0/q5_1/iq4_nl) must divide every layer's "
                                  "head dim, or the context is refused",
        },
    })


# --------------------------------------------------------------------------------------------------------------------
# ExLlamaV2


def extract_exllamav2(path: str) -> dict:
    src = Source(path)
    commit = src.commit()
    version = re.search(r"__version__\s*=\s*\"([^\"]+)\"", src.read("exllamav2/version.py")).group(1)
    arch_py = src.read("exllamav2/architecture.py")
    names: list[str] = []
    for m in re.finditer(r"arch_string\s*(==|in)\s*(\[[^\]]*\]|\"[^\"]+\")", arch_py):
        names += re.findall(r"\"([^\"]+)\"", m.group(2))
    conditional = []
    for m in re.finditer(r"if \(\s*arch_string == \"([^\"]+)\" and([^:]*?)\):", arch_py, re.S):
        conditional.append(f"{m.group(1)}: only when {' '.join(m.group(2).split())}")
    default = re.search(r"arch_string != \"([^\"]+)\" and not arch_recognized", arch_py)
    archs = {n: "native" for n in names}
    if default:
        archs[default.group(1)] = "native"

    module_py = src.read("exllamav2/module.py")
    st = src.read("exllamav2/stloader.py")
    dtypes = re.findall(r"dt == \"(\w+)\"", st)
    formats: dict[str, str] = {}
    for hf, tag in (("fp32", "F32"), ("fp16", "F16"), ("bf16", "BF16")):
        if tag in dtypes:
            formats[hf] = f"safetensors {tag} (stloader.convert_dtype), held as fp16 (module.load_weight .half())"
    if '".q_weight"' in module_py:
        formats["exl2"] = "module.load_weight: q_weight/q_invperm/q_scale/q_scale_max/q_groups"
    if '".qweight"' in module_py:
        formats["gptq"] = ("module.load_weight: qweight/qzeros/scales/g_idx (4-bit GPTQ kernels, ext.py make_q_matrix; "
                           "checkpoint_format gptq_v2 read from quantization_config)")

    cache_py = src.read("exllamav2/cache.py")
    classes = re.findall(r"^class (ExLlamaV2Cache\w*)\(", cache_py, re.M)
    kv: dict[str, str] = {}
    for cls in classes:
        if cls == "ExLlamaV2Cache":
            kv["auto"] = "ExLlamaV2Cache (FP16)"
            kv["fp16"] = "ExLlamaV2Cache"
        elif cls == "ExLlamaV2Cache_8bit":
            kv["fp8"] = "ExLlamaV2Cache_8bit (FP8 e5m2 by truncation)"
        elif m := re.fullmatch(r"ExLlamaV2Cache_Q(\d)", cls):
            kv[f"q{m.group(1)}"] = cls
    return engine_entry(archs, formats, kv, {
        "version": version,
        "read_from": f"turboderp-org/exllamav2@{commit} (v{version}): exllamav2/architecture.py "
                     "ExLlamaV2ArchParams arch_string checks, exllamav2/module.py load_weight, exllamav2/stloader.py, "
                     "exllamav2/cache.py",
        "fallback": "llama" if default else None,
        "notes": {
            "commit": commit,
            "conditional_architectures": conditional,
            "fallback_condition": "architecture.py: an unrecognised arch_string prints a warning and loads as "
                                  "LlamaForCausalLM with Llama's tensor names; it works only when the checkpoint "
                                  "really has a Llama layout",
            "safetensors_dtypes": dtypes,
            "cache_classes": classes,
        },
    })


# --------------------------------------------------------------------------------------------------------------------
# ExLlamaV3


def extract_exllamav3(path: str) -> dict:
    src = Source(path)
    commit = src.commit()
    version = re.search(r"__version__\s*=\s*\"([^\"]+)\"", src.read("exllamav3/version.py")).group(1)
    arch_tree = ast.parse(src.read("exllamav3/architecture/architectures.py"))
    listed: list[str] = []
    for node in ast.walk(arch_tree):
        if isinstance(node, ast.comprehension) and isinstance(node.iter, ast.List):
            listed = [e.id for e in node.iter.elts if isinstance(e, ast.Name)]
    classes: dict[str, dict] = {}
    for name in src.listdir("exllamav3/architecture"):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(src.read(f"exllamav3/architecture/{name}"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                info = {"bases": [b.id for b in node.bases if isinstance(b, ast.Name)], "arch": None, "config": None}
                for item in node.body:
                    if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                        if item.targets[0].id == "arch_string" and isinstance(item.value, ast.Constant):
                            info["arch"] = item.value.value
                        if item.targets[0].id == "config_class" and isinstance(item.value, ast.Name):
                            info["config"] = item.value.id
                classes[node.name] = info

    def inherit(cls: str, key: str, seen=()) -> str | None:
        if cls not in classes or cls in seen:
            return None
        if classes[cls][key]:
            return classes[cls][key]
        for b in classes[cls]["bases"]:
            v = inherit(b, key, seen + (cls,))
            if v:
                return v
        return None

    archs: dict[str, str] = {}
    unresolved: list[str] = []
    for model in listed:
        cfg = inherit(model, "config")
        arch = inherit(cfg, "arch") if cfg else None
        if arch:
            archs[arch] = "native"
        else:
            unresolved.append(model)

    linear = src.read("exllamav3/modules/linear.py")
    st = src.read("exllamav3/loader/safetensors.py")
    dtypes = re.findall(r"dt == \"(\w+)\"", st)
    formats: dict[str, str] = {}
    if "def load_exl3" in linear:
        formats["exl3"] = "modules/linear.py Linear.load_exl3 (trellis, suh/svh tensors)"
    for hf, tag in (("fp32", "F32"), ("fp16", "F16"), ("bf16", "BF16")):
        if tag in dtypes:
            formats[hf] = f"safetensors {tag}, Linear.load_fp16 (held as fp16: get_tensor float2half)"
    if "F8_E4M3" in dtypes and "weight_scale_inv" in linear:
        formats["fp8"] = ("Linear.load_fp16: F8_E4M3 weight * weight_scale / weight_scale_inv (or E8M0 block .scale) "
                          "dequantised to fp16 at load: memory as an fp16 model")

    quant = src.read("exllamav3/cache/quant.py")
    m = re.search(r"\((\d+)\s*<=\s*k_bits\s*<=\s*(\d+)\)", quant)
    lo, hi = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    kv: dict[str, str] = {"auto": "CacheLayer_fp16", "fp16": "CacheLayer_fp16"}
    if lo is not None:
        for b in (8, 6, 4):
            if lo <= b <= hi:
                kv[f"q{b}"] = f"CacheLayer_quant k_bits={b}, v_bits={b} (model_init -cq {b})"
    return engine_entry(archs, formats, kv, {
        "version": version,
        "read_from": f"turboderp-org/exllamav3@{commit} (v{version}): exllamav3/architecture/architectures.py "
                     "ARCHITECTURES + each config class's arch_string, exllamav3/modules/linear.py, "
                     "exllamav3/loader/safetensors.py, exllamav3/cache/",
        "fallback": None,
        "notes": {
            "commit": commit,
            "unresolved_model_classes": unresolved,
            "quant_cache_bits": [lo, hi],
            "safetensors_dtypes": dtypes,
            "unknown_architecture": "model/config.py Config.from_directory asserts the architecture is in "
                                    "ARCHITECTURES: no fallback",
        },
    })


# --------------------------------------------------------------------------------------------------------------------
# transformers

TRANSFORMERS_MAPPINGS = {
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": "AutoModelForCausalLM",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES": "AutoModelForImageTextToText",
    "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES": "AutoModelForMultimodalLM",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES": "AutoModelForSeq2SeqLM",
}


def extract_transformers(path: str) -> dict:
    src = Source(path)
    version = re.search(r"__version__\s*=\s*\"([^\"]+)\"", src.read("__init__.py")).group(1)
    auto = ast.parse(src.read("models/auto/modeling_auto.py"))
    archs: dict[str, str] = {}
    auto_class: dict[str, list[str]] = {}
    for table, cls in TRANSFORMERS_MAPPINGS.items():
        node = module_value(auto, table)
        if node is None:
            continue
        for name in ordered_dict_values(node):
            archs[name] = "native"
            auto_class.setdefault(name, []).append(cls)

    qtree = ast.parse(src.read("quantizers/auto.py"))
    quantizers = str_keys(module_value(qtree, "AUTO_QUANTIZER_MAPPING"))
    formats: dict[str, str] = {
        "fp32": "dtype=torch.float32", "fp16": "dtype=torch.float16", "bf16": "dtype=torch.bfloat16",
    }
    for q in quantizers:
        key = "bitsandbytes" if q.startswith("bitsandbytes_") else q
        how = f"AUTO_QUANTIZER_MAPPING {q}"
        formats[key] = f"{formats[key]} / {q}" if key in formats else how
    ggml = ast.parse(src.read("integrations/ggml.py"))
    gguf_archs = [k for k in str_keys(module_value(ggml, "GGUF_CONFIG_MAPPING")) if k not in ("general", "tokenizer")]

    cache = src.read("cache_utils.py")
    qc = cache[cache.index("class QuantizedCache("):]
    qc = qc[:qc.index("\nclass ", 1)] if "\nclass " in qc[1:] else qc
    backends = list(dict.fromkeys(re.findall(r"backend == \"(\w+)\"", qc)))
    hqq_bits = re.search(r"`nbits` for `HQQ` backend has to be one of \[([^\]]*)\]", cache)
    quanto_bits = re.search(r"`nbits` for `quanto` backend has to be one of \[([^\]]*)\]", cache)
    kv: dict[str, str] = {"auto": "the model dtype (DynamicCache / StaticCache)",
                          "fp32": "dtype=torch.float32 (cache follows the model dtype)",
                          "fp16": "dtype=torch.float16 (cache follows the model dtype)",
                          "bf16": "dtype=torch.bfloat16 (cache follows the model dtype)"}
    if "fp8" in backends:
        kv["fp8"] = "cache_implementation=\"quantized\", backend \"fp8\" (QuantizedCache, Fp8QuantizedLayer e4m3)"
    if "hqq" in backends and hqq_bits and "8" in hqq_bits.group(1):
        kv["int8"] = "cache_implementation=\"quantized\", backend \"hqq\", nbits=8 (QuantizedCache, HQQQuantizedLayer)"
    return engine_entry(archs, formats, kv, {
        "version": version,
        "read_from": f"transformers {version}: models/auto/modeling_auto.py *_MAPPING_NAMES, quantizers/auto.py "
                     "AUTO_QUANTIZER_MAPPING, integrations/ggml.py GGUF_CONFIG_MAPPING, cache_utils.py QuantizedCache",
        "fallback": None,
        "notes": {
            "auto_class": sort_dict(auto_class),
            "quantizers": quantizers,
            "gguf_loadable_architectures": gguf_archs,
            "quantized_cache_backends": backends,
            "quantized_cache_nbits": {"hqq": hqq_bits.group(1) if hqq_bits else None,
                                      "quanto": quanto_bits.group(1) if quanto_bits else None},
            "remote_code": "architectures outside these mappings load only with trust_remote_code (auto_map); "
                           "not listed",
        },
    })


# --------------------------------------------------------------------------------------------------------------------
# TensorRT-LLM: a hand-made input file (see tools/engine_support_inputs/trtllm.json)


def extract_trtllm(path: str) -> dict:
    doc = json.loads(Path(path).read_text())
    sources = doc["sources"]

    def check(mapping: dict[str, str], what: str) -> None:
        bad = {k: v for k, v in mapping.items() if v not in sources}
        if bad:
            raise SystemExit(f"trtllm input: {what} names an undefined source: {bad}")

    check(doc["pytorch"], "pytorch")
    check(doc["tensorrt"], "tensorrt")
    check(doc["autodeploy_only"], "autodeploy_only")
    archs: dict[str, str] = {}
    for name in doc["pytorch"]:
        archs[name] = "pytorch"
    for name in doc["tensorrt"]:
        archs[name] = "both" if archs.get(name) == "pytorch" else "tensorrt"
    overlap = sorted(set(doc["autodeploy_only"]) & set(archs))
    if overlap:
        raise SystemExit(f"trtllm input: autodeploy_only names a registered architecture: {overlap}")
    formats = {k: v["how"] for k, v in doc["weight_formats"].items()}
    kv = {k: v["how"] for k, v in doc["kv_cache_dtypes"].items()}
    for part in ("weight_formats", "kv_cache_dtypes"):
        check({k: v["source"] for k, v in doc[part].items()}, part)
    notes = dict(doc.get("notes", {}))
    notes["sources"] = sources
    notes["autodeploy_only"] = sort_dict(doc["autodeploy_only"])
    notes["architecture_source"] = sort_dict({**doc["tensorrt"], **doc["pytorch"]})
    return engine_entry(archs, formats, kv, {
        "version": doc["version"],
        "read_from": doc["read_from"],
        "fallback": None,
        "notes": notes,
    })


# --------------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vllm")
    ap.add_argument("--vllm-history", action="append", default=[], metavar="VERSION=DIR")
    ap.add_argument("--llamacpp")
    ap.add_argument("--exllamav2")
    ap.add_argument("--exllamav3")
    ap.add_argument("--transformers")
    ap.add_argument("--trtllm")
    ap.add_argument("-o", "--output", default="hfvram/data/engine_support.json")
    args = ap.parse_args(argv)

    out = Path(args.output)
    doc = json.loads(out.read_text()) if out.is_file() else {"schema": SCHEMA, "engines": {}}
    engines = doc.setdefault("engines", {})
    if args.transformers:
        engines["transformers"] = extract_transformers(args.transformers)
    if args.vllm:
        hist = [tuple(h.split("=", 1)) for h in args.vllm_history]
        engines["vllm"] = extract_vllm(args.vllm, hist)
    if args.trtllm:
        engines["trtllm"] = extract_trtllm(args.trtllm)
    if args.llamacpp:
        engines["llamacpp"] = extract_llamacpp(args.llamacpp)
    if args.exllamav2:
        engines["exllamav2"] = extract_exllamav2(args.exllamav2)
    if args.exllamav3:
        engines["exllamav3"] = extract_exllamav3(args.exllamav3)
    order = ["transformers", "vllm", "trtllm", "llamacpp", "exllamav2", "exllamav3"]
    doc = {"schema": SCHEMA, "engines": {k: engines[k] for k in order if k in engines}}
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    for name, e in doc["engines"].items():
        print(f"{name:13s} {e['version']!s:12s} architectures {len(e['architectures']):4d}  "
              f"formats {len(e['weight_formats']):3d}  kv {len(e['kv_cache_dtypes']):3d}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
