"""A GGUF file's facts, from its header alone: the same ModelFacts a safetensors repo gives.

Keys are read as llama.cpp reads them (`src/llama-model.cpp` `load_hparams` and the per-architecture
`src/models/*.cpp` `load_arch_hparams`, llama-cpp-python 0.3.36), key names from the `gguf` package's `Keys`:

- `{arch}.block_count` (less `nextn_predict_layers`, the MTP blocks), `embedding_length`, `feed_forward_length`,
  `attention.head_count` / `head_count_kv` (a number, or one per layer: 0 marks a layer without attention in hybrid
  models), `attention.key_length` / `value_length` (default embedding_length / head_count), `context_length`,
  `vocab_size` (else the tokenizer's length, else token_embd's rows);
- MLA (DeepSeek-2/3, Kimi, GLM-4.7-Lite): `attention.kv_lora_rank` with `key_length_mla` / `value_length_mla`
  caches only the 576-element latent; GGUFs converted before those keys existed cache full per-head K and V;
- sliding windows where llama.cpp implements them: `attention.sliding_window` and `sliding_window_pattern` (an
  array of per-layer flags, or a period) over each architecture's default period (gemma2 2, gemma3 6, cohere2 4,
  gpt-oss 2, olmo2 4, exaone4 4, gemma3n 5; llama4's chunked attention, 8192 tokens, 3 of every 4 layers);
- recurrent layers (`llm_arch_is_recurrent` / `llm_arch_is_hybrid`, src/llama-arch.cpp): Mamba and Mamba-2 from
  `ssm.conv_kernel`, `inner_size`, `state_size`, `time_step_rank`, `group_count`; Gated DeltaNet (Qwen3-Next) from
  the same keys as conversion/qwen.py writes them; the hybrids' recurrent layers are those with head_count_kv 0
  (`attention.recurrent_layers` / `full_attention_interval` for the Qwen3-Next family);
- MoE: `expert_count`, `expert_used_count`, `expert_shared_count`, `expert_feed_forward_length`.

Weights are the tensors' exact bytes by their ggml type (`GGML_QUANT_SIZES`); parameters are their elements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import field

from ..errors import MalformedInput, UsageError
from ..record import record
from ..specs import MLA, ChunkedLocal, FullAttention, LayerSpec, LinearAttention, Mamba, SlidingWindow
from .arch import Architecture, MoE
from .weights import WeightFacts

# Default sliding-window period per llama.cpp architecture (`load_swa_pattern(ml, n)` / `set_swa_pattern` in
# src/models/<arch>.cpp): (period, dense_first, default window or None = only when the file gives one).
# set_swa_pattern: layer il slides when il % period < period - 1 (dense_first: when il % period != 0).
_SWA = {
    "gemma2": (2, False, 4096),  # gemma2.cpp: n_swa = 4096 "default value of gemma 2", pattern 2
    "gemma3": (6, False, None),  # gemma3.cpp: only when sliding_window > 0
    "gemma3n": (5, False, None),  # gemma3n.cpp
    "cohere2": (4, False, None),  # cohere2.cpp
    "gpt-oss": (2, False, None),  # openai-moe.cpp
    "olmo2": (4, False, None),  # olmo2.cpp: only when sliding_window > 0
    "exaone4": (4, False, None),  # exaone4.cpp: the 64-layer (32B) model, n_swa 4096 unless the file says
    "gemma4": (0, False, None),  # gemma4.cpp: the per-layer array is required
}
_CHUNKED = {"llama4": (4, 8192)}  # llama4.cpp: chunked, n_swa 8192, pattern 4, unless sliding_window == 0
_RECURRENT_ARCHS = {"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"}  # llm_arch_is_recurrent
_GATED_DELTA_NET = {"qwen3next", "qwen35", "qwen35moe"}  # recurrent layers by interval / recurrent_layers


@record
class GGUFTensorRow:
    """One tensor of a GGUF file as the introspector classifies it."""

    name: str
    type: str
    shape: tuple[int, ...]
    nbytes: int
    file: str


@record
class GGUFFacts:
    """What the GGUF file(s) are, beyond the architecture: for the estimators and the JSON document."""

    architecture: str
    file_type: str | None  # general.file_type as llama.cpp names it (Q4_K_M, ...), None when the file does not say
    label: str  # the quant the file name says (bartowski's Q4_K_L, unsloth's UD-Q4_K_XL, ...)
    files: list[str]
    file_bytes: int | None  # sum of the files' sizes (None when a size is unknown)
    header_bytes: int  # sum of the headers (data offsets)
    tensor_bytes: int  # what llama.cpp loads of the model (mmproj excluded)
    tensors: list[GGUFTensorRow]  # the model's tensors, every split (mmproj excluded)
    n_layer: int
    mmproj: str | None = None
    mmproj_bytes: int = 0
    mmproj_file_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def introspect_gguf(repo):
    from . import ModelFacts
    from ..sources.gguf import quant_label
    import gguf as g

    headers = [repo.gguf[p] for p in repo.gguf_files]
    first = headers[0]
    meta = dict(first.metadata)
    arch = first.architecture
    name = f"{repo.id}: {repo.gguf_files[0]}"
    if not arch:
        raise MalformedInput(f"{name}: no general.architecture key")
    if arch == "clip":
        raise UsageError(f"{name} is a vision projector (mmproj), not a language model: pass it with --mmproj")
    notes: list[str] = []

    def key(template: str, default=None):
        return meta.get(template.format(arch=arch), default)

    def number(template: str, default=None):
        value = key(template, default)
        if isinstance(value, list):
            return max((v for v in value if isinstance(v, (int, float))), default=default)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    K, A, L, S, R = g.Keys.LLM, g.Keys.Attention, g.Keys.LLM, g.Keys.SSM, g.Keys.Rope  # key names: gguf-py
    n_layer_all = number(K.BLOCK_COUNT)
    if not n_layer_all:
        raise MalformedInput(f"{name}: no {K.BLOCK_COUNT.format(arch=arch)} key")
    nextn = number(K.NEXTN_PREDICT_LAYERS, 0) or 0
    n_layer = n_layer_all - nextn
    n_embd = number(K.EMBEDDING_LENGTH)

    def per_layer(template: str, default=None) -> list:
        value = key(template, default)
        if isinstance(value, list):
            values = [int(v) for v in value[:n_layer_all]]
            return values + [values[-1] if values else 0] * (n_layer_all - len(values))
        return [value] * n_layer_all

    heads = per_layer(A.HEAD_COUNT, 0)
    kv_heads = per_layer(A.HEAD_COUNT_KV) if key(A.HEAD_COUNT_KV) is not None else list(heads)  # default n_head
    ff = per_layer(L.FEED_FORWARD_LENGTH, 0)
    n_head0 = heads[0] or max(heads) or 0
    head_k = number(A.KEY_LENGTH) or (n_embd // n_head0 if n_embd and n_head0 else 0)
    head_v = number(A.VALUE_LENGTH) or (n_embd // n_head0 if n_embd and n_head0 else 0)

    # recurrent layers
    recurrent = [False] * n_layer_all
    if arch in _RECURRENT_ARCHS:
        recurrent = [True] * n_layer_all
    elif arch in _GATED_DELTA_NET:
        flags = meta.get(f"{arch}.attention.recurrent_layers")  # LLM_KV_ATTENTION_RECURRENT_LAYERS (llama-arch.cpp)
        interval = number(K.FULL_ATTENTION_INTERVAL, 4)
        if isinstance(flags, list):
            recurrent = [bool(f) for f in flags[:n_layer_all]] + [False] * (n_layer_all - len(flags))
        else:
            recurrent = [i < n_layer and (i + 1) % interval != 0 for i in range(n_layer_all)]
    elif key(S.STATE_SIZE) is not None or key(S.INNER_SIZE) is not None:
        # the hybrids (jamba, granitehybrid, nemotron_h, plamo2, lfm2, ...): a layer without KV heads is recurrent;
        # nemotron_h's MLP-only blocks have neither KV heads nor SSM (n_ff > 0)
        recurrent = [kv == 0 and not (arch.startswith("nemotron_h") and f) for kv, f in zip(kv_heads, ff)]
    ssm = _ssm_spec(arch, key, number, S, notes)

    # MLA
    kv_lora = number(A.KV_LORA_RANK)
    mla = None
    if kv_lora:
        if number(A.KEY_LENGTH_MLA) and number(A.VALUE_LENGTH_MLA):
            mla = MLA(kv_lora_rank=kv_lora, qk_rope_head_dim=number(R.DIMENSION_COUNT, 0) or 0)
        else:
            notes.append(f"{arch} GGUF without {A.KEY_LENGTH_MLA.format(arch=arch)}: converted before llama.cpp "
                         f"cached the MLA latent, so it caches full K and V per head ({kv_heads[0]} x "
                         f"({head_k} + {head_v})); a re-converted GGUF caches {kv_lora + (number(R.DIMENSION_COUNT, 0) or 0)}"
                         f" elements per token")

    # sliding window / chunked attention
    n_swa = number(A.SLIDING_WINDOW)
    swa_flags = [False] * n_layer_all
    chunked = False
    window = None
    pattern = key(A.SLIDING_WINDOW_PATTERN)
    if arch in _SWA:
        period, dense_first, default_window = _SWA[arch]
        window = n_swa if n_swa else default_window
        if window:
            swa_flags = _pattern(pattern, period, dense_first, n_layer, n_layer_all)
    elif arch in _CHUNKED and n_swa != 0:
        period, default_window = _CHUNKED[arch]
        window, chunked = default_window, True  # llama4.cpp sets n_swa = 8192 whatever the file says
        swa_flags = _pattern(pattern, period, False, n_layer, n_layer_all)
    head_k_swa = number(A.KEY_LENGTH_SWA) or head_k
    head_v_swa = number(A.VALUE_LENGTH_SWA) or head_v

    layers: list[LayerSpec] = []
    for i in range(n_layer):
        if recurrent[i]:
            if ssm is None:
                layers.append(LayerSpec())
            else:
                layers.append(ssm)
        elif kv_heads[i] == 0 and arch not in _RECURRENT_ARCHS:
            layers.append(LayerSpec())  # an MLP-only block
        elif mla is not None:
            layers.append(mla)
        elif swa_flags[i] and window:
            spec = dict(num_kv_heads=kv_heads[i], head_dim=head_k_swa, head_dim_v=head_v_swa if head_v_swa != head_k_swa else None)
            layers.append(ChunkedLocal(**spec, chunk=window) if chunked else SlidingWindow(**spec, window=window))
        else:
            layers.append(FullAttention(num_kv_heads=kv_heads[i], head_dim=head_k,
                                        head_dim_v=head_v if head_v != head_k else None))
    stateless = sum(1 for i, l in enumerate(layers) if l.kind == "none" and (recurrent[i] or arch.startswith("lfm2")))
    if stateless:
        notes.append(f"{arch}: {stateless} recurrent layers' state not counted (hfvram reads Mamba, Mamba-2 and "
                     f"Gated-DeltaNet state from the ssm.* keys; not this architecture's)")
    if arch == "falcon-h1":
        notes.append("falcon-h1: every layer also holds a Mamba-2 state next to its attention; only the KV is counted")

    tensors = [GGUFTensorRow(t.name, t.type, t.shape, t.nbytes, h.path) for h in headers for t in h.tensors]
    vocab = number(K.VOCAB_SIZE)
    if not vocab:
        tokens = meta.get(g.Keys.Tokenizer.LIST)
        vocab = getattr(tokens, "count", None) if not isinstance(tokens, list) else len(tokens)
    if not vocab:
        embd = next((t for t in tensors if t.name == "token_embd.weight"), None)
        vocab = embd.shape[0] if embd is not None else None

    experts = number(K.EXPERT_COUNT, 0) or 0
    moe = None
    if experts > 1:
        moe = MoE(num_experts=int(experts), experts_per_token=int(number(K.EXPERT_USED_COUNT, 1) or 1),
                  shared_experts=int(number(K.EXPERT_SHARED_COUNT, 0) or 0),
                  expert_intermediate_size=number(K.EXPERT_FEED_FORWARD_LENGTH) or None)

    rope_type = key(R.SCALING_TYPE)
    if rope_type and rope_type not in ("none", "linear") or (rope_type == "linear" and number(R.SCALING_FACTOR)):
        orig = number(R.SCALING_ORIG_CTX_LEN)
        notes.append(f"RoPE scaling {rope_type}" + (f" x{number(R.SCALING_FACTOR):g}" if number(R.SCALING_FACTOR) else "")
                     + (f" from {orig:,} tokens" if orig else "") + " (in the file: context_length already includes it)")
    if "config.json" in repo.texts:
        notes.append("config.json ignored: the GGUF header describes the model")

    file_type = first.file_type
    label = quant_label(repo.gguf_files[0])
    dtype = {"F32": "float32", "BF16": "bfloat16"}.get(file_type or "", "float16")
    tied = not any(t.name == "output.weight" for t in tensors)
    mla_like = mla is not None
    arch_facts = Architecture(
        model_type=arch, architectures=[], config_reader="gguf", num_layers=n_layer,
        hidden_size=n_embd, num_attention_heads=n_head0 or None,
        num_kv_heads=1 if mla_like else (max((l.num_kv_heads for l in layers if isinstance(l, FullAttention)),
                                              default=None)),
        head_dim=mla.latent_dim if mla_like else (head_k or None), vocab_size=vocab,
        intermediate_size=max(ff[:n_layer], default=0) or None, max_context=number(K.CONTEXT_LENGTH),
        sliding_window=window if any(l.kind == "sliding_attention" for l in layers) else None, dtype=dtype,
        tie_word_embeddings=tied, layers=layers, moe=moe, mtp_layers=nextn, notes=notes,
    )

    mmproj_rows: list[GGUFTensorRow] = []
    if repo.mmproj:
        h = repo.gguf[repo.mmproj]
        mmproj_rows = [GGUFTensorRow(t.name, t.type, t.shape, t.nbytes, h.path) for t in h.tensors]
    weights = _weights(tensors, mmproj_rows, n_layer, repo.gguf_files + ([repo.mmproj] if repo.mmproj else []))
    sizes = [repo.files.get(p) for p in repo.gguf_files]
    info = GGUFFacts(
        architecture=arch, file_type=file_type, label=label, files=list(repo.gguf_files),
        file_bytes=None if any(s is None for s in sizes) else sum(sizes),  # type: ignore[arg-type]
        header_bytes=sum(h.data_offset for h in headers), tensor_bytes=sum(t.nbytes for t in tensors),
        tensors=tensors, n_layer=n_layer, mmproj=repo.mmproj, mmproj_bytes=sum(t.nbytes for t in mmproj_rows),
        mmproj_file_bytes=repo.files.get(repo.mmproj) if repo.mmproj else None,
    )
    if len(headers) > 1:
        count = meta.get(g.Keys.Split.LLM_KV_SPLIT_COUNT)
        if count and count != len(headers):
            raise MalformedInput(f"{name}: split.count says {count} files, {len(headers)} were found")
    params = weights.parameters - weights.component_params.get("vision", 0)
    total_bits = 8 * (weights.bytes - weights.component_bytes.get("vision", 0))
    from .quant import QuantFacts

    quant = QuantFacts(method="gguf", bits=round(total_bits / params, 2) if params else None,
                       format=file_type or label, source="gguf header")
    active = params
    if moe and weights.component_params.get("experts"):
        e = weights.component_params["experts"]
        active = params - e + e * moe.experts_per_token // moe.num_experts
    facts = ModelFacts(repo=repo, raw_config={}, arch=arch_facts, weights=weights, quant=quant,
                       params_total=params, params_active=active, dtype=dtype, notes=list(repo.notes) + notes,
                       text_config={})
    facts.gguf = info
    return facts


def _pattern(value, period: int, dense_first: bool, n_layer: int, n_all: int) -> list[bool]:
    """llama_model_base::load_swa_pattern: a per-layer array wins; else a period (the key, or the arch default)
    through llama_hparams::set_swa_pattern."""
    if isinstance(value, list):
        flags = [bool(v) for v in value[:n_all]]
        return flags + [False] * (n_all - len(flags))
    if isinstance(value, int) and not isinstance(value, bool):
        period = value
    out = []
    for il in range(n_all):
        if il >= n_layer:
            out.append(False)
        elif dense_first:
            out.append(period == 0 or il % period != 0)
        else:
            out.append(period == 0 or il % period < period - 1)
    return out


def _ssm_spec(arch, key, number, S, notes) -> LayerSpec | None:
    d_inner, d_state, conv = number(S.INNER_SIZE), number(S.STATE_SIZE), number(S.CONV_KERNEL)
    if not (d_inner and d_state and conv):
        return None
    dt_rank, groups = number(S.TIME_STEP_RANK), number(S.GROUP_COUNT)
    if arch in _GATED_DELTA_NET:
        # conversion/qwen.py: state_size = linear_key_head_dim, group_count = linear_num_key_heads,
        # time_step_rank = linear_num_value_heads, inner_size = linear_value_head_dim x linear_num_value_heads
        if not (dt_rank and groups):
            return None
        return LinearAttention(num_k_heads=groups, num_v_heads=dt_rank, head_k_dim=d_state,
                               head_v_dim=d_inner // dt_rank, conv_kernel=conv)
    if groups and dt_rank:  # Mamba-2: time_step_rank is the head count (conversion/mamba.py Mamba2Model)
        return Mamba(version=2, intermediate=d_inner, d_state=d_state, conv_kernel=conv, n_groups=groups,
                     num_heads=dt_rank, head_dim=d_inner // dt_rank)
    return Mamba(version=1, intermediate=d_inner, d_state=d_state, conv_kernel=conv)


def _component(name: str, n_layer: int) -> str:
    if name.startswith(("token_embd.", "token_embd_norm.", "position_embd.", "token_types.")):
        return "embeddings"
    if name.startswith("output."):
        return "lm_head"
    if name.startswith("blk."):
        parts = name.split(".", 2)
        if parts[1].isdigit() and int(parts[1]) >= n_layer:
            return "mtp"  # nextn / MTP blocks after the decoder layers
        leaf = parts[2] if len(parts) > 2 else ""
        if "_exps." in leaf or leaf.endswith("_exps"):
            return "experts"
    return "dense"


def _weights(tensors: list[GGUFTensorRow], mmproj: list[GGUFTensorRow], n_layer: int, files: list[str]) -> WeightFacts:
    by_type: Counter[str] = Counter()
    comp_bytes: Counter[str] = Counter()
    comp_params: Counter[str] = Counter()
    for t in tensors:
        by_type[t.type] += t.nbytes
        comp = _component(t.name, n_layer)
        comp_bytes[comp] += t.nbytes
        comp_params[comp] += _numel(t.shape)
    for t in mmproj:
        by_type[t.type] += t.nbytes
        comp_bytes["vision"] += t.nbytes
        comp_params["vision"] += _numel(t.shape)
    facts = WeightFacts(exact=True, source="gguf-header")
    facts.bytes = sum(by_type.values())
    facts.by_dtype = dict(sorted(by_type.items(), key=lambda kv: -kv[1]))
    facts.tensor_count = len(tensors) + len(mmproj)
    facts.files = list(files)
    facts.parameters = sum(comp_params.values())
    facts.parameters_exact = True
    facts.component_bytes = dict(comp_bytes)
    facts.component_params = dict(comp_params)
    facts.lm_head_tied = comp_bytes.get("lm_head", 0) == 0
    return facts


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
