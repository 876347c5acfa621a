"""What rides along with the model: LoRA adapters and a speculative-decoding draft model.

LoRA: `--lora ADAPTER_REPO` reads the adapter's adapter_config.json and safetensors header (exact bytes); `--lora
rank=R[,targets=q_proj,v_proj][,count=N]` sizes R x (d_in + d_out) per targeted linear in every layer. Engines hold
adapters differently (see `lora_bytes`).
Draft: `--draft MODEL` is analysed like the target; each engine adds its weights and KV (see the estimators).
"""

from __future__ import annotations

import json
import re
from dataclasses import field

from ..errors import UsageError
from ..record import record

# PEFT's default targets for Llama-family models when target_modules is None
# (peft utils/constants.py TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING: ["q_proj", "v_proj"]).
DEFAULT_TARGETS = ("q_proj", "v_proj")
# Every linear of a decoder layer (`targets=all`, PEFT's "all-linear").
ALL_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# TensorRT-LLM LoraConfig.max_lora_rank = 64 (lora_helper.py); device cache slots = rank x layers x modules x
# max_loras (_util.py create_py_executor_instance).
TRT_MAX_LORA_RANK = 64


@record
class LoRA:
    """LoRA adapters served beside the base model (their rank, targets and parameters)."""

    rank: int
    targets: tuple[str, ...]
    count: int = 1
    params: int = 0  # logical parameters of one adapter
    stored_bytes: int | None = None  # exact, from the adapter's safetensors header
    stored_dtype_bytes: int = 2
    source: str = "spec"
    notes: list[str] = field(default_factory=list)


def module_dims(model, name: str) -> tuple[int, int] | None:
    """(in, out) of a decoder linear by its usual name."""
    h, inter = model.hidden, model.intermediate
    q = model.heads * model.head_dim
    kv = (model.arch.num_kv_heads or model.heads) * model.head_dim
    table = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
             "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h),
             "qkv_proj": (h, q + 2 * kv), "gate_up_proj": (h, 2 * inter), "dense": (q, h),
             "query_key_value": (h, q + 2 * kv), "c_attn": (h, 3 * h), "c_proj": (h, h), "c_fc": (h, inter)}
    return table.get(name)


def lora_params(model, rank: int, targets) -> int:
    layers = model.decoder_layers
    total = 0
    for t in targets:
        dims = module_dims(model, t)
        if dims:
            total += rank * (dims[0] + dims[1]) * layers
    return total


def parse_lora_spec(text: str, model) -> LoRA:
    """`rank=16`, `rank=8,targets=q_proj+v_proj,count=2` (targets joined by + or :)."""
    fields = {}
    for part in re.split(r",(?=\s*\w+\s*=)", text):
        if "=" not in part:
            raise UsageError(f"--lora {text!r}: expected rank=R[,targets=a+b][,count=N] or an adapter repo")
        k, v = part.split("=", 1)
        fields[k.strip().lower()] = v.strip()
    try:
        rank = int(fields.pop("rank", fields.pop("r", "0")))
        count = int(fields.pop("count", "1"))
    except ValueError:
        raise UsageError(f"--lora {text!r}: rank and count must be integers") from None
    if rank < 1 or count < 1:
        raise UsageError(f"--lora {text!r}: rank and count must be positive")
    targets = tuple(t for t in re.split(r"[+:,;\s]+", fields.pop("targets", "")) if t) or DEFAULT_TARGETS
    if targets == ("all",) or targets == ("all-linear",):
        targets = ALL_LINEARS
    if fields:
        raise UsageError(f"--lora {text!r}: unknown key(s) {', '.join(fields)}")
    unknown = [t for t in targets if module_dims(model, t) is None]
    if unknown:
        raise UsageError(f"--lora: unknown target module(s) {', '.join(unknown)} (known: {', '.join(ALL_LINEARS)})")
    return LoRA(rank=rank, targets=targets, count=count, params=lora_params(model, rank, targets))


def lora_from_repo(repo, model) -> LoRA:
    if "adapter_config.json" not in repo.texts:
        raise UsageError(f"--lora {repo.id}: no adapter_config.json (is it a PEFT LoRA adapter?)")
    try:
        cfg = json.loads(repo.texts["adapter_config.json"])
    except ValueError:
        raise UsageError(f"--lora {repo.id}: adapter_config.json is not valid JSON") from None
    rank = int(cfg.get("r") or 8)
    targets = cfg.get("target_modules") or list(DEFAULT_TARGETS)
    if isinstance(targets, str):
        targets = list(ALL_LINEARS) if targets in ("all-linear",) else [targets]
    lora = LoRA(rank=rank, targets=tuple(targets), source=repo.id)
    tensors = [t for _, ts in repo.safetensors.values() for t in ts]
    if tensors:
        lora.stored_bytes = sum(t.nbytes for t in tensors)
        lora.params = sum(t.numel for t in tensors)
        lora.stored_dtype_bytes = max(1, round(lora.stored_bytes / max(1, lora.params)))
    else:
        lora.params = lora_params(model, rank, targets)
        lora.notes.append("adapter weights not readable: sized from adapter_config.json")
    return lora


def lora_bytes(framework: str, lora: LoRA, model, tp: int) -> tuple[int, str]:
    """Bytes an engine holds for the adapter(s), and how it decided. (vLLM's stacked slots, sharded per layer
    type, are sized in hfvram.estimate.vllm.lora_bytes.)"""
    d = min(2, model.compute_bytes)
    if framework == "transformers":
        # PEFT upcasts fp16/bf16 adapters to fp32 (autocast_adapter_dtype=True, peft_model.py), once per adapter
        return lora.count * lora.params * 4, "PEFT keeps adapters in fp32 (autocast_adapter_dtype=True)"
    if framework == "trtllm":
        rank = max(TRT_MAX_LORA_RANK, lora.rank)
        params = lora_params(model, rank, lora.targets)
        return int(lora.count * params * d / tp), f"TensorRT-LLM device LoRA cache sized at max_lora_rank {rank}"
    # llama.cpp (convert_lora_to_gguf.py f16) and ExLlamaV2 (ExLlamaV2Lora fp16): the adapter as loaded, 2 bytes
    return int(lora.count * lora.params * 2 / tp), "adapter loaded in f16"
