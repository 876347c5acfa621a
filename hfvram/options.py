"""Every setting a user can give, checked once, before any work.

`parse(**settings)` takes what the CLI and the Python API take (numbers or their strings: `context="32k"`,
`gpu="L40S:2"`, `headroom="10%"`), and returns `Options` or raises `UsageError` with one line that names the setting
and what it accepts. The CLI calls it before the first network request or scan row; `hfvram.analyze` calls it too,
so a bad keyword is our one-line error, never a bare TypeError.
"""

from __future__ import annotations

import math
import re
from dataclasses import field, fields

from .errors import UsageError
from .record import record

# `hfvram scan --jobs` by default: models analysed at once. A cold model is 2-3 round trips of ~50-300 ms on the real
# Hub; issue 10 sets its scan target at 32. bench/bench.py at 50 ms per request on this project's 2-CPU machine, 500
# repos: 12.9 s with 32 jobs and 15.0 s with 8 when a model took ~25 ms of CPU; now that one takes ~96 ms (five
# engines with their fit searches) the scan is CPU-bound and 8 measured as fast or faster (35.8 s vs 34.8-42.7 s;
# 46.7 s vs 56.2 s in another run). Kept at 32 for the real Hub's longer round trips, where overlap pays more.
DEFAULT_JOBS = 32

# Bounds on what a setting may ask for. They reject typos and absurd values, not real deployments:
# no released model reads more than 10M tokens (Llama-4 Scout, the largest advertised window); 64M leaves room.
MAX_CONTEXT = 64 * 1024 * 1024
MAX_BATCH = 1 << 20  # sequences; vLLM's largest max_num_seqs default is 1024
MAX_DEVICES = 1024  # --tp x --pp; the largest NVLink domain sold is 576 GPUs (GB300 NVL576)
MAX_MEMORY = 16 << 40  # 16 TiB per device: above any GPU or unified-memory machine sold
# ExLlamaV2's converter targets 2 to 8 bits per weight (exllamav2/conversion/convert_exl2.py: "target bitrate ...
# will likely not be attainable" outside [2, 8]); ExLlamaV3 2-8 likewise.
EXL2_BPW = (2.0, 8.0)
# --deadline / --max-wait: seconds on the Hub per run (defaults in hfvram.sources.hub: 30 and 20). An hour bounds
# both: past that a scan row is stuck, not slow.
MAX_SECONDS = 3600.0
# vLLM releases whose policies hfvram.estimate.vllm models (its version switches start at 0.5).
VLLM_OLDEST = (0, 5)
# TensorRT-LLM releases on PyPI: 0.5.0 (Oct 2023) to 1.2.1 (`pip index versions tensorrt-llm`).
TRTLLM_RANGE = ((0, 5), (1, 2))
# Transformers 4.30 (kv-cache tuples, per-layer rotary caches) to 5.24 (the release read for the current policy).
TRANSFORMERS_RANGE = ((4, 30), (5, 24))

KV_CHOICES = ("auto", "fp32", "fp16", "bf16", "fp8", "int8", "q8_0", "q4_0", "q8", "q6", "q4")
# llama.cpp --cache-type-k/-v (common/arg.cpp kv_cache_types; hfvram.estimate.gguf.KV_CACHE_TYPES)
LLAMACPP_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
# --cpu-moe: every layer's experts in host RAM (`--n-cpu-moe` larger than any model's layer count)
CPU_MOE_ALL = 1 << 20
VLLM_DTYPES = ("auto", "float16", "half", "bfloat16", "float32", "float", "fp16", "bf16", "fp32")

# Engine knobs: Settings field -> (kind, low, high). Kinds: "int", "float", "bool", or a tuple of choices.
KNOBS = {
    "kv_paging": (("contiguous", "paged", "aggressive"), None, None),
    "gpu_memory_utilization": ("float", 0.0, 1.0),
    "max_num_batched_tokens": ("int", 1, MAX_CONTEXT),
    "max_num_seqs": ("int", 1, MAX_BATCH),
    "enforce_eager": ("bool", None, None),
    "vllm_version": ("version", None, None),
    "vllm_server": ("bool", None, None),
    "block_size": ("int", 1, 1 << 16),
    "max_loras": ("int", 1, 1 << 10),
    "dtype": (VLLM_DTYPES, None, None),
    "pp_rank": ("int", 0, MAX_DEVICES),
    "free_gpu_memory_fraction": ("float", 0.0, 1.0),
    "max_num_tokens": ("int", 1, MAX_CONTEXT),
    "trtllm_backend": (("pytorch", "tensorrt"), None, None),
    "trtllm_version": ("trtllm_version", None, None),
    "max_batch_size": ("int", 1, MAX_BATCH),
    "max_seq_len": ("int", 1, MAX_CONTEXT),
    "transformers_version": ("transformers_version", None, None),
    "n_ubatch": ("int", 1, MAX_CONTEXT),
    "flash_attn": ("bool", None, None),
    "gpu_layers": ("int", -1, 1 << 20),
    "n_parallel": ("int", 1, MAX_BATCH),
    "llamacpp_version": (("current", "4227c9b", "b1513"), None, None),
    "cache_type_k": (LLAMACPP_CACHE_TYPES, None, None),
    "cache_type_v": (LLAMACPP_CACHE_TYPES, None, None),
    "no_kv_offload": ("bool", None, None),
    "kv_unified": ("bool", None, None),
    "n_cpu_moe": ("int", 0, 1 << 20),
    "ram": ("size", None, None),
    "max_input_len": ("int", 1, MAX_CONTEXT),
    "prompt_tokens": ("int", 1, MAX_CONTEXT),
    "attn_implementation": (("sdpa", "eager", "flash_attention_2"), None, None),
    "cache_implementation": (("dynamic", "static"), None, None),
    "num_speculative_tokens": ("int", 1, 256),
}
CLI_FLAGS = {k: "--" + k.replace("_", "-") for k in KNOBS}


@record(frozen=True)
class Options:
    """Every run setting, parsed and checked (hfvram.options.parse)."""

    context: int | None = None
    batch: int = 1
    kv_dtype: str = "auto"
    frameworks: tuple[str, ...] | None = None
    gpu: object | None = None  # hfvram.gpus.GPUChoice
    tp: int | None = None
    pp: int | None = None
    quantize: str | None = None
    lora: str | None = None
    draft: str | None = None
    headroom: float = 0.0
    limit_bytes: int | None = None
    deadline: float | None = None  # seconds one run may spend on the Hub (None: hfvram.sources.hub.DEADLINE_S)
    max_wait: float | None = None  # seconds it may sleep before retries (None: hfvram.sources.hub.MAX_WAIT_S)
    engine: dict = field(default_factory=dict)  # hfvram.estimate.Settings fields, checked

    def replace(self, **changes) -> "Options":
        from dataclasses import replace

        return replace(self, **changes)


OPTION_NAMES = tuple(f.name for f in fields(Options) if f.name not in ("engine", "limit_bytes")) + (
    "framework", "gpu_mem", "max_memory")


def parse(**settings) -> Options:
    unknown = sorted(k for k in settings if k not in OPTION_NAMES and k not in KNOBS)
    if unknown:
        known = sorted(set(OPTION_NAMES) | set(KNOBS))
        import difflib

        hint = difflib.get_close_matches(unknown[0], known, n=1)
        raise UsageError(f"unknown setting {unknown[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else
                                                                 f" (known: {', '.join(known)})"))
    s = {k: v for k, v in settings.items() if v is not None}
    context = _tokens(s["context"]) if "context" in s else None
    batch = _int("batch", s.get("batch", 1), 1, MAX_BATCH)
    kv = str(s.get("kv_dtype", "auto")).lower()
    if kv not in KV_CHOICES:
        raise UsageError(f"--kv-dtype must be one of {', '.join(KV_CHOICES)}, not {s['kv_dtype']!r}")
    frameworks = _frameworks(s.get("frameworks", s.get("framework")))
    tp = _int("tp", s["tp"], 1, MAX_DEVICES) if "tp" in s else None
    pp = _int("pp", s["pp"], 1, MAX_DEVICES) if "pp" in s else None
    if (tp or 1) * (pp or 1) > MAX_DEVICES:
        raise UsageError(f"--tp x --pp asks for {(tp or 1) * (pp or 1):,} GPUs (at most {MAX_DEVICES:,})")
    gpu = _gpu(s.get("gpu"), s.get("gpu_mem"), (tp or 1) * (pp or 1))
    limit = _size("--max-memory", s["max_memory"]) if "max_memory" in s else None
    quantize = _quantize(s["quantize"]) if "quantize" in s else None
    engine = {name: _knob(name, s[name]) for name in KNOBS if name in s}
    if "ram" not in engine and isinstance(s.get("gpu"), str) and s["gpu"].strip().lower() == "auto":
        # --gpu auto: this machine's memory is the host-RAM limit too (llama.cpp offload needs it)
        from .hardware import default_ram_bytes

        ram = default_ram_bytes()
        if ram:
            engine["ram"] = int(ram)
    if "prompt_tokens" in engine and context is not None and engine["prompt_tokens"] > context:
        raise UsageError(f"--prompt-tokens {engine['prompt_tokens']:,} is longer than --context {context:,}")
    deadline = _seconds("deadline", s["deadline"], 1.0) if "deadline" in s else None
    max_wait = _seconds("max_wait", s["max_wait"], 0.0) if "max_wait" in s else None
    return Options(context=context, batch=batch, kv_dtype=kv, frameworks=frameworks, gpu=gpu, tp=tp, pp=pp,
                   quantize=quantize, lora=_text("lora", s.get("lora")), draft=_text("draft", s.get("draft")),
                   headroom=parse_headroom(s.get("headroom")), limit_bytes=limit, deadline=deadline,
                   max_wait=max_wait, engine=engine)


# -- one setting each ---------------------------------------------------------------------------------------------

def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{_flag(name)} must be a whole number, not {value!r}")
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise UsageError(f"{_flag(name)} must be a whole number, not {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise UsageError(f"{_flag(name)} must be a whole number, not {value!r}")
    number = int(number)
    if not low <= number <= high:
        raise UsageError(f"{_flag(name)} must be between {low:,} and {high:,}, not {number:,}")
    return number


def _float(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{_flag(name)} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{_flag(name)} must be a number, not {value!r}") from None
    if not (math.isfinite(number) and low < number <= high):
        hint = ""
        if name in ("gpu_memory_utilization", "free_gpu_memory_fraction") and 1 < number <= 100:
            hint = f" (a fraction: {number / 100:g} for {number:g}%)"
        raise UsageError(f"{_flag(name)} must be above {low:g} and at most {high:g}, not {value!r}{hint}")
    return number


def _seconds(name: str, value, low: float) -> float:
    """A duration in seconds: a number, or its string (`30`, `2.5`, `30s`)."""
    text = value.strip().lower().removesuffix("s").strip() if isinstance(value, str) else value
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise UsageError(f"{_flag(name)} must be a number of seconds, not {value!r}")
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"{_flag(name)} must be a number of seconds, not {value!r}") from None
    if not (math.isfinite(number) and low <= number <= MAX_SECONDS):
        raise UsageError(f"{_flag(name)} must be between {low:g} and {MAX_SECONDS:g} seconds, not {value!r}")
    return number


def _tokens(value) -> int:
    from .units import parse_tokens

    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise UsageError(f"--context must be a number of tokens (4096, 32k), not {value!r}")
    n = parse_tokens(value) if isinstance(value, str) else value
    return _int("context", n, 1, MAX_CONTEXT)


def _size(flag: str, value) -> int:
    from .units import parse_size

    if isinstance(value, bool):
        raise UsageError(f"{flag} must be a size (24GiB, 80GB), not {value!r}")
    n = value if isinstance(value, int) else parse_size(str(value))
    if not 0 < n <= MAX_MEMORY:
        raise UsageError(f"{flag} must be above 0 and at most 16 TiB, not {value!r}")
    return n


def _text(name: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{_flag(name)} must be a model reference, not {value!r}")
    return value.strip()


def _frameworks(value) -> tuple[str, ...] | None:
    from .estimate import framework_names

    if value is None or value == () or value == []:
        return None
    if isinstance(value, str):
        return tuple(framework_names(value))
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(framework_names(list(value)))
    raise UsageError(f"--framework must be a name or a list of names, not {value!r}")


def _gpu(value, gpu_mem, devices: int):
    from .gpus import GPUChoice, custom, parse_gpu

    choice = None
    if value is not None:
        if isinstance(value, GPUChoice):
            choice = value
        elif isinstance(value, str):
            choice = parse_gpu(value)
        else:
            raise UsageError(f"--gpu must be a name like RTX-4090 or L40S:2, or auto, not {value!r}")
        # `auto` counts this machine's GPUs: like L40S:2, a count the --tp x --pp product must fit in
        explicit = isinstance(value, GPUChoice) or ":" in value or choice.count > 1 or value.strip().lower() == "auto"
        if explicit and devices > choice.count:
            raise UsageError(f"--tp x --pp use {devices} GPUs but --gpu {value} has {choice.count}")
        if not explicit and devices > 1:
            choice = GPUChoice(choice.gpu, devices)  # `--gpu H100 --tp 4`: four of them
    if gpu_mem is not None:
        size = _size("--gpu-mem", gpu_mem)
        choice = custom(size, count=max(devices, choice.count if choice else 1))
    return choice


def _quantize(value) -> str:
    from .estimate.model import parse_quantize

    if not isinstance(value, str):
        raise UsageError(f"--quantize must be a format name, not {value!r}")
    method, arg = parse_quantize(value)
    if method == "exl2" and not EXL2_BPW[0] <= float(arg) <= EXL2_BPW[1]:
        raise UsageError(f"--quantize exl2:BPW takes {EXL2_BPW[0]:g} to {EXL2_BPW[1]:g} bits per weight (what "
                         f"ExLlamaV2's converter can reach), not {arg:g}")
    return value.strip()


def _knob(name: str, value):
    kind, low, high = KNOBS[name]
    if isinstance(kind, tuple):
        text = str(value).lower() if not isinstance(value, bool) else value
        if text not in kind:
            raise UsageError(f"{_flag(name)} must be one of {', '.join(kind)}, not {value!r}")
        return text
    if kind == "int":
        return _int(name, value, low, high)
    if kind == "float":
        return _float(name, value, low, high)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{_flag(name)} must be true or false, not {value!r}")
    if kind == "size":
        return _size(_flag(name), value)
    if kind == "trtllm_version":
        return release(name, value, TRTLLM_RANGE, "1.2 or 0.12.0")
    if kind == "transformers_version":
        return release(name, value, TRANSFORMERS_RANGE, "4.46 or 5.24.0")
    return vllm_version(value)


def release(name: str, value, bounds: tuple[tuple[int, int], tuple[int, int]], example: str) -> str:
    """`X.Y` or `X.Y.Z` within the releases an estimator models; returned as given."""
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)\.(\d+)(\.\d+)?", text)
    if not m:
        raise UsageError(f"{_flag(name)} must be a release number like {example}, not {value!r}")
    v = (int(m.group(1)), int(m.group(2)))
    if not bounds[0] <= v <= bounds[1]:
        raise UsageError(f"{_flag(name)} {text}: hfvram models {'.'.join(map(str, bounds[0]))} to "
                         f"{'.'.join(map(str, bounds[1]))}")
    return text


def vllm_version(value) -> str:
    """`0.11` or `0.11.0`, within the releases hfvram models."""
    from .estimate.vllm import DEFAULT_VERSION, NEWEST_VERSION, version_tuple

    text = str(value).strip()
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", text):
        raise UsageError(f"--vllm-version must be a release number like {DEFAULT_VERSION} or 0.11.0, not {value!r}")
    v = version_tuple(text)
    if not VLLM_OLDEST <= v <= version_tuple(NEWEST_VERSION):
        raise UsageError(f"--vllm-version {text}: hfvram models vLLM {'.'.join(map(str, VLLM_OLDEST))} to "
                         f"{NEWEST_VERSION}")
    return text


def parse_headroom(text) -> float:
    """`10%` or `0.1` -> 0.1."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise UsageError(f"--headroom must be a share like 10% or 0.1, not {text!r}")
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", str(text))
    if not m:
        raise UsageError(f"--headroom must be a share like 10% or 0.1, not {text!r}")
    value = float(m.group(1))
    if m.group(2):
        value /= 100
    elif value >= 1:
        raise UsageError(f"--headroom {text}: give a percentage ({value:g}%) or a fraction "
                         f"({value / 100:g}); a bare {value:g} would keep {value * 100:g}% free")
    if not 0 <= value < 1:
        raise UsageError(f"--headroom must be at least 0 and below 100%, not {text!r}")
    return value
