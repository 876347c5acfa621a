"""vLLM (V1 engine): a budget of `gpu_memory_utilization` x GPU memory, of which the KV pool gets what weights,
non-torch memory, the profiled activation peak and the CUDA-graph estimate leave.

Policy, read in the vLLM wheels 0.6.4-0.33.0 (file:line references in docs/research/vllm-facts.md; defaults follow
the release given with --vllm-version, 0.33 by default):
- budget = ceil(total x gpu_memory_utilization) (v1/worker/utils.py); 0.9 before 0.20, 0.92 since. The CUDA context,
  NCCL init and cuBLAS handles come before the memory snapshot (since 0.11), outside the budget.
- weights per TP rank + the rotary `cos_sin_cache` ([rows, rotary_dim] in the model dtype, one per model and rank) +
  vocab padding to a multiple of 64 (global, then split across ranks); tied heads count once; MTP layers are not
  loaded without speculative decoding; fp32 checkpoints load in bf16.
- activation peak of the profile run: the dummy sampler over R = min(max_num_seqs, max_num_batched_tokens) rows
  (~15.5 bytes per logit since 0.17, ~39 before, when top-p sorted the vocabulary), or one layer's MLP for
  max_num_batched_tokens tokens if larger; fused-MoE workspaces come on top.
- CUDA-graph memory estimate subtracted by default since 0.20.
- KV: pages of block_size (16) tokens per layer spec (kv_cache_interface.py); full attention and MLA hold the
  sequence, sliding layers window - 1 + in-flight tokens (+1 block), chunked layers chunk + in-flight tokens,
  Mamba/GDN a state page (2 in "align" mode, the default for hybrids since 0.26, +1 checkpoint block for GDN on
  SM90 in 0.33). Layers are grouped by spec (kv_cache_planning.py); a block spans one layer of each group.
"""

from __future__ import annotations

import math

from ..record import record
from ..specs import ChunkedLocal, FullAttention, LayerSpec, LinearAttention, Mamba, MLA, SlidingWindow
from ..units import fmt_bytes
from .base import (
    CUDA_CONTEXT_BYTES, GiB, MiB, KV_BYTES, Estimate, Settings, allowed_note, ceil_div, engine_info, fitted,
    largest_fitting, per_token_per_gpu, spec_tokens, stage_bounds, stage_layers, state_per_gpu,
)
from . import bands
from .model import Model

NAME = "vllm"

DEFAULT_VERSION = "0.33"
NEWEST_VERSION = "0.33"  # the newest release whose policy was read (docs/research/vllm-facts.md)
BLOCK_SIZE = 16  # CacheConfig.DEFAULT_BLOCK_SIZE (config/cache.py)
# gpu_memory_utilization default: 0.9 through 0.19.1, 0.92 from 0.20.0 (config/cache.py; PR #38284).
UTILIZATION_092_SINCE = (0, 20)
# VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to 1 from 0.20.0 (envs.py); before, graphs were captured after
# the KV cache was sized, in the memory gpu_memory_utilization leaves free.
CUDAGRAPH_IN_BUDGET_SINCE = (0, 20)

# -- fitted terms (hfvram.estimate.base.Fitted: each observation names its source; `make accuracy` refits them
#    without the source of the case it scores). Values in GiB are the logs' 2-decimal figures x 2^30.

# Source keys (hfvram.accuracy.source_key spells a case's source the same way).
LLMD_V019 = "llm-d-planner v0.19.0 logs"  # llm-d-incubation/llm-d-planner accuracy/results/v0.19.0/logs, H100
LLMD_EMPIRICAL = "llm-d-planner empirical-vllm-memory-results"  # config_explorer/, H100, vLLM 0.11
LLMD_BLOG = "llm-d-planner blog-gpu-capacity"  # accuracy/blog-gpu-capacity.md, Qwen3-14B on H100, 0.15-0.19

# Non-torch memory inside the budget: what the profile run adds outside torch's allocator (NCCL and all-reduce
# buffers, cuBLAS/FlashInfer workspaces; before 0.11 also what came before the snapshot). It depends on
#  - the era of the profiler: V0 (< 0.8) measured `total used - torch allocated`, CUDA context included
#    (worker/worker.py 0.6.4 l.209-211); V1 0.8-0.10 took the snapshot after the context but before NCCL init;
#    since 0.11 NCCL init, cuBLAS handles and the custom all-reduce IPC buffers come before the snapshot
#    (gpu_worker.py, docs/research/vllm-facts.md section 3);
#  - tensor parallelism and the interconnect: NCCL's buffers live in GPU memory over NVLink (P2P transport, NVLink
#    SHARP on NVSwitch boards, vllm#9699) but in pinned host memory when PCIe cards cannot reach each other
#    (RTX 40-series: sglang#4814), and since 0.17 Hopper/Blackwell boards with TP > 1 also get FlashInfer's
#    all-reduce + RMSNorm fusion workspace by default (config/vllm.py enable_allreduce_rms_fusion, -O2; off in
#    0.16: every optimisation level sets fuse_allreduce_rms False);
#  - the GPU (V0's figure holds the context, larger on Hopper).
# Custom all-reduce buffers themselves are small: 2 x 8 MiB + 8 MiB rank data per rank
# (custom_all_reduce.py: max_size 8192 x 1024, rank_data 8 x 1024 x 1024).
NT_V0_TP1 = fitted("vllm.non_torch.v0.tp1", [("vllm-project/vllm#10517", 0.35 * GiB)],
                   prior=CUDA_CONTEXT_BYTES, note="RTX 3090, 0.6.4; prior: the CUDA context V0 counted")
NT_V0_TP1_HOPPER = fitted("vllm.non_torch.v0.tp1.hopper", [("vllm-project/vllm#10511", 1.79 * GiB)],
                          prior="vllm.non_torch.v0.tp1", note="H100, 0.6.5.dev")
NT_V1_TP1 = fitted("vllm.non_torch.v1.tp1", [("ShanghaoLi0913/memory-aware_RLHF", 0.02 * GiB),
                                             ("index:21240355802", 0.02 * GiB),
                                             ("kolyangg/mlops-assignment", 0.07 * GiB)],
                   prior=0.0, note="0.8-0.10: RTX 4090 0.10.2; a 0.10 dev build; H100 0.10.2")
NT_V111_TP1 = fitted("vllm.non_torch.v0.11.tp1", [(LLMD_EMPIRICAL, 0.13 * GiB)], prior="vllm.non_torch.v1.tp1",
                     note="0.11-0.16, H100")
NT_V117_TP1 = fitted("vllm.non_torch.v0.17.tp1", [(LLMD_V019, 0.25 * GiB)], prior="vllm.non_torch.v0.11.tp1",
                     note=">= 0.17, H100 v0.19.0 (0.24-0.27 over 19 models; granite-3 0.46)")
NT_PP = fitted("vllm.non_torch.pp_only", [(LLMD_V019, 0.07 * GiB)], prior="vllm.non_torch.v1.tp1",
               note="PP > 1 without TP: send/recv only (H100 v0.19.0, PP2 and PP4)")
# TP > 1 over NVLink/NVSwitch, per GPU (the whole non-torch figure).
NT_V0_TP_NVLINK = fitted("vllm.non_torch.v0.tp.nvlink", [("vllm-project/vllm#10511", 3.58 * GiB)],
                         prior="vllm.non_torch.v0.11.tp.nvlink", note="H100 TP2, 0.6.5.dev")
NT_V111_TP_NVLINK = fitted("vllm.non_torch.v0.11.tp.nvlink", [(LLMD_EMPIRICAL, 0.545 * GiB)],
                           prior="vllm.non_torch.v0.17.tp.nvlink.fusion", note="H100 TP2, 0.11: 0.55 and 0.54 GiB")
NT_V117_TP_FUSION = fitted("vllm.non_torch.v0.17.tp.nvlink.fusion", [(LLMD_V019, 2.09 * GiB)],
                           prior="vllm.non_torch.v0.11.tp.nvlink",
                           note="H100 TP2/TP4 v0.19.0: 2.06-2.21 GiB over 9 models (median 2.09)")
# TP > 1 over PCIe: two RTX 4090, V0 ~0.7.2 (vllm#13061); the only PCIe pair with a printed figure.
NT_TP_PCIE = fitted("vllm.non_torch.tp.pcie", [("vllm-project/vllm#13061", 0.25 * GiB)],
                    prior="vllm.non_torch.v1.tp1")

# Outside the budget since 0.11: the init snapshot's non-torch figure (context, NCCL init, cuBLAS handles), 0.51 GiB
# in every TP1 v0.19.0 H100 log ("non_torch_memory=0.51GiB" in the init snapshot); prior: the CUDA context alone.
OUTSIDE_BUDGET = fitted("vllm.outside_budget", [(LLMD_V019, 0.51 * GiB)], prior=CUDA_CONTEXT_BYTES)

# CUDA graphs. What capture costs is a first-capture part (workspaces and the largest batch's buffers, taken once)
# plus, for every captured graph, device memory for its nodes (kernels, one or more per layer) and static buffers:
#   graphs = CUDAGRAPH_FIRST + n_graphs x CUDAGRAPH_PER_LAYER x (decoder layers on the rank + CUDAGRAPH_L0),
# L0 standing for the pieces that are not decoder layers (embedding, final norm, LM-head gather). The number of
# graphs comes from the capture sizes (cudagraph_sizes below), so it follows max_num_seqs, max_num_batched_tokens,
# speculative tokens, the release and the GPU.
#  - L0 from the one PP series (llm-d v0.19.0, Llama-3.1-8B, 102 graphs: 0.91 / 0.65 / 0.51 GiB captured at 32 / 16 /
#    8 layers per stage -> 16.7 MiB per layer: 22.7 layers' worth of fixed cost).
#  - CUDAGRAPH_FIRST: a 0.10.2 run capturing two graphs (sizes 1 and 2, PIECEWISE) of a 36-layer model took
#    0.14 GiB; less 2 x 0.115 MiB x 58.7 = 0.127 GiB (ShanghaoLi0913/memory-aware_RLHF vllm.log).
#  - CUDAGRAPH_PER_LAYER per source = (graph memory - CUDAGRAPH_FIRST) / (graphs x (layers + L0)), each source's
#    median (sources with >= 20 graphs; the llm-d empirical table's column is a free-memory delta that goes
#    negative, and is left out): llm-d v0.19.0 estimates 0.131 MiB (48 runs), NnamdiOdozi/mlops-assignment 0.026,
#    sridhar1804/local-ai 0.078, LzyFischer/MemSuit 0.079, abinavChandar/demo_env_l4 0.088, dawn-boy/elloraa 0.116,
#    kolyangg/mlops-assignment 0.122, kumaxxp/duo-talk 0.150, jyngjeon/multiagentsdebate 0.195,
#    ljg6861/anton_new 0.202, qweewqq/EnergyLLM 0.500 (0.9-0.22, A100/A5000/L4/L40S/H100/RTX 3090).
CUDAGRAPH_L0 = fitted("vllm.cudagraph.fixed_layers", [(LLMD_V019, 22.7)], prior=0.0, unit="layers")
CUDAGRAPH_FIRST = fitted("vllm.cudagraph.first_capture", [("ShanghaoLi0913/memory-aware_RLHF", 0.127 * GiB)],
                         prior=0.0)
CUDAGRAPH_PER_LAYER = fitted("vllm.cudagraph.per_graph_layer", [
    (LLMD_V019, 0.131 * MiB), ("NnamdiOdozi/mlops-assignment", 0.026 * MiB), ("sridhar1804/local-ai", 0.078 * MiB),
    ("LzyFischer/MemSuit", 0.079 * MiB), ("abinavChandar/demo_env_l4", 0.088 * MiB),
    ("dawn-boy/elloraa", 0.116 * MiB), ("kolyangg/mlops-assignment", 0.122 * MiB), ("kumaxxp/duo-talk", 0.150 * MiB),
    ("jyngjeon/multiagentsdebate", 0.195 * MiB), ("ljg6861/anton_new", 0.202 * MiB),
    ("qweewqq/EnergyLLM", 0.500 * MiB)], prior=0.12 * MiB)
# MXFP4 experts on Hopper (triton_kernels' swizzled MX layout, read only through its effect): loaded / stored expert
# bytes, from the weights vLLM logged minus the other tensors' stored bytes: gpt-oss-20b TP1 13.64 GiB (v0.19.0) ->
# 1.085; gpt-oss-20b 13.47 and gpt-oss-120b 64.38 GiB (0.11, llm-d empirical) -> 1.068 and 1.063. Prior: the stored
# layout (1.0).
MXFP4_HOPPER_LAYOUT = fitted("vllm.mxfp4.hopper_layout", [(LLMD_V019, 1.085), (LLMD_EMPIRICAL, 1.068),
                                                          (LLMD_EMPIRICAL, 1.063)], prior=1.0, unit="x")

# Sampler bytes per logit in the profile run (R = min(max_num_seqs, mnbt) rows of the vocabulary; + 2 B per logit
# for each extra byte of a float32 model's logits):
#  >= 0.17: logits in the model dtype + fp32 copy + fp32 probs + fp32 noise = 2 + 4 + 4 + 4 = 14 B (prior, from
#    v1/sample/sampler.py and ops/topk_topp_sampler.py); measured 15.0-15.9 B over six architectures (v0.19.0);
#  before 0.17 top-p sorted the vocabulary, in V1 (0.16.0 topk_topp_sampler.py l.262: fp32 values + int64 indices)
#    and in V0 (model_executor/layers/sampler.py 0.6.4 _apply_top_k_top_p, with top_p 0.99 / top_k V-1 in
#    profile_run): fp32 logits 4 + sorted values 4 + int64 indices 8 + probs_sort 4 + probs_sum 4 + scattered
#    logits 4 + two bool masks 2 + the model-dtype logits 2 = 32 B live inside that function (prior). Measured:
#    Qwen3-14B 5.64 GiB in 0.15/0.16 -> 38.9 B (llm-d blog); 0.11 H100 runs: Llama-3.1-8B 4.76 GiB, Qwen3-32B
#    5.64, gpt-oss 7.38 at 1024 rows -> 38.5-38.9 B (llm-d empirical); Qwen3-30B-A3B 5.58 GiB in 0.10.2 -> 38.5 B
#    (kolyangg/mlops-assignment); V0 0.6.5, Llama-3-8B, 256 rows: 1.26 GiB -> 41.2 B (vllm#10511).
SAMPLER_BYTES_PER_LOGIT = fitted("vllm.sampler.bytes_per_logit", [(LLMD_V019, 15.5)], prior=14.0, unit="B")
SAMPLER_BYTES_PER_LOGIT_SORTED = fitted("vllm.sampler.bytes_per_logit.sorted", [
    (LLMD_BLOG, 38.9), (LLMD_EMPIRICAL, 38.9), ("kolyangg/mlops-assignment", 38.5),
    ("vllm-project/vllm#10511", 41.2)], prior=32.0, unit="B")
SAMPLER_SORT_UNTIL = (0, 17)
V1_SINCE = (0, 8)  # the V1 engine is the default from 0.8.0 (VLLM_USE_V1)
FUSION_SINCE = (0, 17)  # FlashInfer all-reduce + RMSNorm fusion on by default (see non-torch above)
# Capture sizes: 0.11-0.13 [1, 2, 4] + 8..max step 8 (config/__init__.py 0.11 _set_cudagraph_sizes); since 0.14
# 8..248 step 8 then 256..max step 16 (config/vllm.py 0.14.0 l.1077). FULL_AND_PIECEWISE since 0.11 (V1 default,
# config/__init__.py 0.11 l.362-366); PIECEWISE only before. V0 captured full graphs for batch sizes [1, 2, 4] +
# multiples of 8 up to max_num_seqs (worker/model_runner.py 0.6.4 _BATCH_SIZES_TO_CAPTURE), after the KV cache.
FULL_AND_PIECEWISE_SINCE = (0, 11)
CAPTURE_STEP16_SINCE = (0, 14)
# default_max_graph_size = 1024 on the SM100 family (config/vllm.py 0.33.0 l.2464); 0.19.0 still caps at 512.
SM100_CAPTURE_1024_SINCE = (0, 33)
# async scheduling keeps 2 batches in flight since 0.26 (config/vllm.py max_concurrent_batches); before, 1.
IN_FLIGHT_SINCE = (0, 26)
# Hybrids: prefix caching, hence Mamba "align" mode (2 state pages per request), default since 0.26; 0.33 adds a
# prefill checkpoint page for GDN layers when FlashInfer GDN prefill runs (chosen on SM90), with 64-token alignment.
ALIGN_MODE_SINCE = (0, 26)
GDN_CHECKPOINT_SINCE = (0, 33)
GDN_CHECKPOINT_ALIGN = 64
MLA_HYBRID_ALIGN = 128  # platforms/interface.py: MLA + Mamba hybrids align attention blocks to >= 128
# "GPU KV cache size: N tokens" = int(max_concurrency x max_model_len) since 0.21; before, blocks // groups x block.
TOKENS_BY_CONCURRENCY_SINCE = (0, 21)


def version_tuple(text: str | None) -> tuple[int, int]:
    parts = [int(p) for p in str(text or DEFAULT_VERSION).split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts)))  # type: ignore[return-value]


def batch_defaults(s: Settings, version: tuple[int, int]) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs): engine/arg_utils.py get_batch_defaults. >= 160 GiB (since 0.28):
    16384/1024; >= 70 GiB and not an A100 (since 0.9): 16384/1024 offline, 8192/1024 server; else 8192/256
    offline, 2048/256 server. V0 (< 0.8): 256 sequences and max(max_model_len, 2048) tokens (chunked prefill off
    up to 32K)."""
    gpu = s.gpu.gpu if s.gpu else None
    total = gpu.memory_bytes if gpu else 0  # NVML memory.total, i.e. the marketed size
    if version < (0, 8):
        return (max(s.context, 2048) if s.context <= 32768 else 2048), 256
    if total >= 160 * GiB and version >= (0, 28):
        mnbt, seqs = 16384, 1024
    elif total >= 70 * GiB and not (version >= (0, 9) and gpu and "A100" in gpu.name.upper()):
        mnbt, seqs = (8192 if s.vllm_server else 16384), 1024
    else:
        mnbt, seqs = (2048 if s.vllm_server else 8192), 256
    mnbt = min(seqs * s.context, mnbt)
    return mnbt, min(seqs, mnbt)


def run_bytes(model: Model, s: Settings) -> int:
    """Element size the model runs in: --dtype, else the checkpoint's (float32 checkpoints are downcast to bf16,
    config/model.py _resolve_auto_dtype)."""
    if s.dtype in ("float32", "fp32", "float"):
        return 4
    return 2


def kv_dtype(model: Model, s: Settings) -> tuple[str, float]:
    """cache_dtype "auto" follows the resolved model dtype."""
    if s.kv_dtype == "auto":
        if run_bytes(model, s) == 4:
            return "fp32", 4.0
        return ("fp16" if model.facts.dtype == "float16" or s.dtype in ("float16", "half") else "bf16"), 2.0
    return s.kv_dtype, KV_BYTES.get(s.kv_dtype, 1.0)


# -- KV layout ----------------------------------------------------------------------------------------------------

@record
class KVGroup:
    """vLLM's KV cache group: layers that share one page layout (one spec)."""

    spec: LayerSpec
    layers: int  # layers per group (padding layers included)


def _spec_key(layer: LayerSpec) -> tuple:
    return (type(layer).__name__, getattr(layer, "window", None), getattr(layer, "chunk", None))


def groups(layers: list[LayerSpec]) -> list[KVGroup]:
    """kv_cache_planning.py `_get_kv_cache_groups_uniform_page_size`: group size = the smallest bucket of
    same-spec layers (the largest when max < 1.5 x min); each bucket splits into ceil(n / size) groups."""
    buckets: dict[tuple, list[LayerSpec]] = {}
    for layer in layers:
        if layer.kind != "none":
            buckets.setdefault(_spec_key(layer), []).append(layer)
    if not buckets:
        return []
    sizes = [len(b) for b in buckets.values()]
    size = max(sizes) if max(sizes) < 1.5 * min(sizes) else min(sizes)
    return [KVGroup(members[0], size) for members in buckets.values() for _ in range(ceil_div(len(members), size))]


class KVPlan:
    """One model's KV layout on a rank: block size, page, groups, and the blocks a request needs."""

    def __init__(self, model: Model, s: Settings, kv_b: float, mnbt: int, version: tuple[int, int], paging: str,
                 layers: list[LayerSpec] | None = None):
        self.layers = stage_layers(model.layers, s.pp, s.pp_rank) if layers is None else layers
        self.version = version
        self.paging = paging
        self.mnbt = mnbt
        gpu = s.gpu.gpu if s.gpu else None
        attn = [per_token_per_gpu(l, kv_b, s.tp) for l in self.layers if l.is_attention]
        states = [state_per_gpu(l, run_bytes(model, s), s.tp) for l in self.layers if l.is_recurrent]
        per_token = max(attn) if attn else 0.0
        block = s.block_size or BLOCK_SIZE
        self.checkpoint_pages = 0
        if states and per_token:
            # platforms/interface.py _align_hybrid_block_size: attention blocks grow until a page holds a state
            align = block
            if any(isinstance(l, MLA) for l in self.layers):
                align = max(align, MLA_HYBRID_ALIGN)
            gdn = any(isinstance(l, LinearAttention) for l in self.layers)
            if gdn and version >= GDN_CHECKPOINT_SINCE and gpu is not None and 9.0 <= gpu.sm < 10.0:
                align = math.lcm(align, GDN_CHECKPOINT_ALIGN)
                self.checkpoint_pages = 1
            block = align * ceil_div(math.ceil(max(states)), math.ceil(align * per_token))
        self.block = block
        self.page = max([block * per_token] + states)
        self.groups = groups(self.layers)
        if paging == "contiguous":  # --disable-hybrid-kv-cache-manager: windows promoted to full attention
            self.groups = [KVGroup(FullAttention(num_kv_heads=1, head_dim=1), g.layers)
                           if isinstance(g.spec, (SlidingWindow, ChunkedLocal)) else g for g in self.groups]
        self.bytes_per_block = (self.groups[0].layers if self.groups else 0) * self.page

    def blocks(self, spec: LayerSpec, context: int, spec_tokens_: int) -> int:
        in_flight = (2 if self.version >= IN_FLIGHT_SINCE else 1) * self.mnbt
        if self.paging == "aggressive":  # the model's own minimum, in pages
            if spec.is_attention:
                return ceil_div(spec.tokens_held(context), self.block)
            return 1
        if isinstance(spec, SlidingWindow):
            return ceil_div(min(spec.window - 1 + in_flight, context), self.block) + 1
        if isinstance(spec, ChunkedLocal):
            return ceil_div(min(spec.chunk + in_flight, context), self.block)
        if isinstance(spec, (Mamba, LinearAttention)):
            base = 2 if self.version >= ALIGN_MODE_SINCE else 1
            return base + spec_tokens_ + self.checkpoint_pages
        return ceil_div(context, self.block)

    def request_blocks(self, context: int, spec_tokens_: int = 0) -> int:
        return sum(self.blocks(g.spec, context, spec_tokens_) for g in self.groups)

    def request_bytes(self, context: int, spec_tokens_: int = 0) -> float:
        return self.request_blocks(context, spec_tokens_) * self.bytes_per_block


# -- fixed parts --------------------------------------------------------------------------------------------------

def outside_budget(version: tuple[int, int]) -> int:
    """What the process holds outside the budget: the CUDA context (V1; V0 counted it inside, in non-torch), and
    since 0.11 also NCCL init, cuBLAS handles and the custom all-reduce buffers taken before the snapshot."""
    if version < V1_SINCE:
        return 0
    return int(OUTSIDE_BUDGET() if version >= (0, 11) else CUDA_CONTEXT_BYTES)


def non_torch(s: Settings, version: tuple[int, int]) -> int:
    """Non-torch memory the profile run finds inside the budget, by profiler era, TP/PP, interconnect and GPU."""
    gpu = s.gpu.gpu if s.gpu else None
    link = gpu.link if gpu is not None else None
    if version < V1_SINCE:
        if s.tp > 1:
            return int((NT_TP_PCIE if link == "pcie" else NT_V0_TP_NVLINK)())
        return int((NT_V0_TP1_HOPPER if gpu is not None and gpu.sm >= 9.0 else NT_V0_TP1)())
    base = NT_V1_TP1 if version < (0, 11) else NT_V111_TP1 if version < FUSION_SINCE else NT_V117_TP1
    if s.tp > 1:
        if link == "pcie":  # NCCL over PCIe (host-staged without P2P): its buffers are not GPU memory
            return int(base() + NT_TP_PCIE())
        fusion = (version >= FUSION_SINCE and s.pp == 1 and gpu is not None
                  and (gpu.sm == 9.0 or 10.0 <= gpu.sm < 11.0))
        return int((NT_V117_TP_FUSION if fusion else NT_V111_TP_NVLINK if version >= (0, 11) else NT_V0_TP_NVLINK)())
    if s.pp > 1:
        return int(NT_PP())
    return int(base())


def activation_peak(model: Model, mnbt: int, max_seqs: int, tp: int, version: tuple[int, int], d: int = 2,
                    last_stage: bool = True, pp: int = 1) -> int:
    """max(one layer's MLP for mnbt tokens, the dummy sampler) + fused-MoE workspaces.
    MLP: residual, normed input, gate_up output, activation output, down output = 3 x hidden + 3 x intermediate
    elements per token; fits the vLLM 0.6.4 profiles of Llama-3.1-8B at 20000 and 29000 tokens within 1% (#10517).
    The sampler runs on the last pipeline stage only; other stages also hold the hidden states and residual they
    pass on (IntermediateTensors). MoE workspaces (M, top_k, max(N/2, K)) + (M, top_k, max(N, K)) with
    N = 2 x moe_intermediate / TP, K = hidden (experts/triton_moe.py), persistent since 0.18, so they add to the
    peak (Qwen3-MoE 2.68 vs dense Qwen3 2.21 GiB, llm-d-planner); MXFP4 experts run in other kernels without them."""
    moe = model.arch.moe
    workspace = 0.0
    if moe:
        n = 2 * model.moe_intermediate / tp
        k = model.hidden
        if model.quant_method != "mxfp4":
            workspace = mnbt * moe.experts_per_token * (max(n / 2, k) + max(n, k)) * d
        forward = mnbt * 3 * model.hidden * d
    else:
        forward = mnbt * (3 * model.hidden + 3 * model.intermediate / tp) * d
    if pp > 1 and not last_stage:
        forward += 2 * mnbt * model.hidden * d
    rows = min(max_seqs, mnbt)
    sampler = rows * model.vocab * sampler_bytes_per_logit(version, d) if last_stage else 0.0
    if version < (0, 18):
        return int(max(forward + workspace, sampler))
    return int(max(forward, sampler) + workspace)


def sampler_bytes_per_logit(version: tuple[int, int], d: int = 2) -> float:
    """Bytes per logit of the profile run's sampler; a float32 model's logits take 2 B more than bf16's."""
    return (SAMPLER_BYTES_PER_LOGIT_SORTED if version < SAMPLER_SORT_UNTIL else SAMPLER_BYTES_PER_LOGIT)() + (d - 2)


def cudagraph_sizes(s: Settings, version: tuple[int, int], mnbt: int, max_seqs: int, spec: int
                    ) -> tuple[list[int], list[int]]:
    """(piecewise sizes, full-graph sizes) captured by default. Since 0.11 (config/vllm.py _set_cudagraph_sizes):
    max = min(2 x max_num_seqs x (1 + spec tokens), 512 (1024 on SM100 in 0.33)), capped at
    max_num_batched_tokens; PIECEWISE graphs for every size, FULL graphs for decode batches up to max_num_seqs.
    0.8-0.10: PIECEWISE only. V0: full graphs for [1, 2, 4] + multiples of 8 up to max_num_seqs."""
    if s.enforce_eager:
        return [], []
    if version < V1_SINCE:
        sizes = [x for x in [1, 2, 4] + list(range(8, 8193, 8)) if x <= max(1, max_seqs)]
        return [], sizes
    gpu = s.gpu.gpu if s.gpu else None
    ceiling = 1024 if version >= SM100_CAPTURE_1024_SINCE and gpu is not None and 10.0 <= gpu.sm < 11.0 else 512
    top = min(2 * max_seqs * (1 + spec), ceiling, mnbt)
    if version >= CAPTURE_STEP16_SINCE:
        grid = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, top + 1, 16))
    else:
        grid = [1, 2, 4] + list(range(8, top + 1, 8))
    sizes = [x for x in grid if x <= top]
    if version < FULL_AND_PIECEWISE_SINCE:
        return sizes, []
    return sizes, [x for x in sizes if x <= max_seqs * (1 + spec)]


def cudagraph_bytes(model: Model, s: Settings, version: tuple[int, int], mnbt: int, max_seqs: int, spec: int,
                    layers: list[LayerSpec] | None = None) -> int:
    """The first capture + captured graphs x what one graph holds (CUDAGRAPH_PER_LAYER x (decoder layers on this
    rank + CUDAGRAPH_L0)). A pipeline stage captures its own layers only."""
    piecewise, full = cudagraph_sizes(s, version, mnbt, max_seqs, spec)
    graphs = len(piecewise) + len(full)
    if not graphs:
        return 0
    stage = stage_layers(model.layers, s.pp, s.pp_rank) if layers is None else layers
    n = sum(1 for layer in stage if layer.kind != "none") or len(stage)
    return int(CUDAGRAPH_FIRST() + graphs * CUDAGRAPH_PER_LAYER() * (n + CUDAGRAPH_L0()))


def rope_cache(model: Model, d: int = 2) -> int:
    """RotaryEmbedding.cos_sin_cache (rotary_embedding/base.py): [rows, rotary_dim] in the model dtype, shared by
    all layers. Rows: max_position_embeddings; yarn / deepseek_yarn: original x factor; longrope: original + max
    (short and long caches); M-RoPE (mrope_section): x4 (rotary_embedding/__init__.py, mrope.py)."""
    text = model.facts.text_config
    if not any(l.is_attention for l in model.layers):
        return 0
    rotary = int((text.get("qk_rope_head_dim") or model.head_dim) * float(text.get("partial_rotary_factor") or 1.0))
    rows = int(text.get("max_position_embeddings") or text.get("n_positions") or 0)
    rope = text.get("rope_scaling") or text.get("rope_parameters") or {}
    if isinstance(rope, dict):
        kind = rope.get("rope_type") or rope.get("type")
        original = rope.get("original_max_position_embeddings")
        if kind in ("yarn", "deepseek_yarn") and original:
            rows = int(original * (rope.get("factor") or 1))
        elif kind == "longrope" and original:
            rows = rows + int(original)
        elif kind == "linear":
            rows = int(rows * (rope.get("factor") or 1))
        if rope.get("mrope_section"):
            rows *= 4
    return rows * rotary * d


def expert_layout(model: Model, s: Settings) -> float:
    """Loaded / stored bytes of MXFP4 experts: the MoE backend pads the expert matrices (fused_moe/oracle/mxfp4.py
    select_mxfp4_moe_backend + mxfp4_round_up_hidden_size_and_intermediate_size, 0.19.0). Blackwell (SM100 family)
    runs FlashInfer TRT-LLM kernels (hidden and intermediate rounded up to 256); Hopper and SM10x run triton_kernels
    (intermediate per rank rounded to 64, then swizzled into the Hopper MX layout: MXFP4_HOPPER_LAYOUT, measured);
    older GPUs run Marlin (hidden to 256, intermediate to 128)."""
    if model.quant_method != "mxfp4" or not model.arch.moe or not model.hidden:
        return 1.0
    gpu = s.gpu.gpu if s.gpu else None
    sm = gpu.sm if gpu is not None else 9.0  # no GPU given: the Hopper path
    hidden, inter = model.hidden, max(1, int(model.moe_intermediate / s.tp))
    factor = 1.0
    if 10.0 <= sm < 11.0:
        h, i = ceil_div(hidden, 256) * 256, ceil_div(inter, 256) * 256
    elif sm >= 9.0:
        h, i = hidden, ceil_div(inter, 64) * 64
        factor = MXFP4_HOPPER_LAYOUT()
    else:
        h, i = ceil_div(hidden, 256) * 256, ceil_div(inter, 128) * 128
    return factor * (h * i) / (hidden * inter)


def weights_per_gpu(model: Model, s: Settings, rank: int | None = None) -> int:
    """Weights on one rank of pipeline stage `rank` (default: the heaviest stage)."""
    if s.pp > 1 and rank is None:
        return max(weights_per_gpu(model, s, r) for r in range(s.pp))
    w = model.weights
    scale = 1.0
    if not model.projected and model.quant_method is None:
        # unquantised floats are loaded in the run dtype: fp32 checkpoints in bf16, --dtype float32 doubles bf16
        scale = run_bytes(model, s) / model.facts.dtype_bytes
    body = (w.get("dense", 0) + w.get("experts", 0) * expert_layout(model, s)) * scale
    ends = {"embeddings": w.get("embeddings", 0) * scale, "lm_head": w.get("lm_head", 0) * scale,
            "vision": w.get("vision", 0) * scale}
    if s.pp > 1:
        n = len(model.layers)
        start, end = stage_bounds(n, s.pp, rank)
        loaded = body * (end - start) / max(1, n)
        if rank == 0:
            loaded += ends["embeddings"] + ends["vision"]
        if rank == s.pp - 1:  # a tied head is a separate copy when embeddings live on another stage (llama.py)
            loaded += ends["lm_head"] or ends["embeddings"]
    else:
        loaded = body + sum(ends.values())
    padding = 0
    if model.vocab:  # DEFAULT_VOCAB_PADDING_SIZE = 64, global (vocab_parallel_embedding.py)
        tables = 1 if model.facts.arch.tie_word_embeddings else 2
        padding = (ceil_div(model.vocab, 64) * 64 - model.vocab) * model.hidden * run_bytes(model, s) * tables
        if s.pp > 1:
            padding /= 2
    return int((loaded + padding) / s.tp + rope_cache(model, run_bytes(model, s)))


def lora_bytes(model: Model, s: Settings) -> tuple[int, str]:
    """Stacked LoRA slots for every wrapped linear (lora/layers/*.py): lora_a [max_loras, rank, in],
    lora_b [max_loras, out, rank]; column-parallel layers (q/k/v, gate/up) replicate A and shard B, row-parallel
    (o, down) shard A and replicate B. max_loras 1 and max_lora_rank 16 by default (config/lora.py); the rank is
    the adapter's, rounded up to vLLM's allowed set."""
    from .extras import module_dims

    lora = s.lora
    allowed = (1, 8, 16, 32, 64, 128, 256, 320, 512)
    rank = next((r for r in allowed if r >= max(16, lora.rank)), lora.rank)
    slots = max(s.max_loras or 1, lora.count)
    per_layer = 0.0
    for name, column in (("q_proj", True), ("k_proj", True), ("v_proj", True), ("gate_proj", True),
                         ("up_proj", True), ("o_proj", False), ("down_proj", False)):
        n_in, n_out = module_dims(model, name)
        per_layer += rank * (n_in + n_out / s.tp) if column else rank * (n_in / s.tp + n_out)
    total = slots * per_layer * model.decoder_layers * 2
    why = f"vLLM preallocates {slots} LoRA slot(s) of rank {rank} for every linear layer"
    if model.arch.moe:
        why += " (MoE expert LoRA not counted)"
    return int(total), why


# -- the estimate -------------------------------------------------------------------------------------------------

def estimate(model: Model, s: Settings) -> Estimate:
    notes: list[str] = []
    version = version_tuple(s.vllm_version)
    gpu = s.gpu.gpu if s.gpu else None
    util = s.gpu_memory_utilization or (0.92 if version >= UTILIZATION_092_SINCE else 0.9)
    d_mnbt, d_seqs = batch_defaults(s, version)
    mnbt = s.max_num_batched_tokens or d_mnbt
    max_seqs = s.max_num_seqs or d_seqs
    name, kv_b = kv_dtype(model, s)
    if gpu is not None and gpu.sm and gpu.sm < 8.0 and model.facts.dtype == "bfloat16":
        notes.append(f"{gpu.name} has no bf16: vLLM runs this model in fp16 (same size)")
    paging = s.kv_paging or "paged"
    if paging == "contiguous":
        notes.append("--kv-paging contiguous: sliding and chunked layers reserve the full context, as with vLLM's "
                     "--disable-hybrid-kv-cache-manager")
    spec = spec_tokens(NAME, s)
    d = run_bytes(model, s)
    graphs_in_budget = version >= CUDAGRAPH_IN_BUDGET_SINCE
    nt = non_torch(s, version)
    riders: dict[str, int] = {}
    if s.lora is not None:
        riders["lora"], why = lora_bytes(model, s)
        notes.append(why)
    if s.draft is not None:
        riders["draft"] = weights_per_gpu(s.draft, s)  # its KV pages are in kv_cache, sharing the pool
        notes.append(f"draft model: weights loaded with the target's, its KV in the same pool; {spec} speculative "
                     f"tokens per step")

    ranks = [s.pp_rank] if s.pp_rank is not None else list(range(s.pp))
    stages = []
    fixed_parts = []  # per stage: the components inside the budget that the pool is sized after (error bands)
    for r in ranks:
        layers = stage_layers(model.layers, s.pp, r)
        plan = KVPlan(model, s, kv_b, mnbt, version, paging, layers)
        draft_plan = None
        if s.draft is not None:
            draft_plan = KVPlan(s.draft, s, kv_b, mnbt, version, paging, stage_layers(s.draft.layers, s.pp, r))
        weights = weights_per_gpu(model, s, r if s.pp > 1 else None)
        act = activation_peak(model, mnbt, max_seqs, s.tp, version, d, last_stage=(r == s.pp - 1), pp=s.pp)
        graphs = cudagraph_bytes(model, s, version, mnbt, max_seqs, spec, layers)
        fixed = weights + nt + act + (graphs if graphs_in_budget else 0) + sum(riders.values())
        stages.append((r, plan, draft_plan, weights, act, fixed, graphs))
        fixed_parts.append({"weights": weights, "non_torch": nt, "activations": act,
                            **({"cuda_graphs": graphs} if graphs_in_budget else {}), **riders})

    def per_request(plan: KVPlan, draft_plan, context: int) -> float:
        need = plan.request_bytes(context, spec)
        if draft_plan is not None:
            need += draft_plan.request_bytes(context, spec)
        return need

    # The stage that holds the most is the one a GPU must fit; blocks are the minimum over stages (workers).
    r, plan, draft_plan, weights, act, fixed, graphs = max(
        stages, key=lambda st: st[5] + s.batch * per_request(st[1], st[2], s.context))
    need = s.batch * per_request(plan, draft_plan, s.context)
    outside = outside_budget(version)
    components = {"weights": weights, "kv_cache": int(need), "activations": act, "non_torch": nt,
                  "cuda_graphs": graphs, "cuda_context": outside, **riders}
    extras: dict = {
        "vllm_version": ".".join(map(str, version)),
        "gpu_memory_utilization": util,
        "max_num_batched_tokens": mnbt,
        "max_num_seqs": max_seqs,
        "block_size": plan.block,
        "kv_dtype": name,
        # The budget must hold everything but the CUDA context (which sits outside it), plus one null block.
        "min_gpu_bytes": int(math.ceil(max((fixed + need + plan.bytes_per_block) / util,
                                           outside / (1 - util)))),
    }
    if s.pp > 1:
        extras["pp_stage"] = r
    if not graphs_in_budget and graphs:
        notes.append("this vLLM release captures CUDA graphs after sizing the KV cache: they use the memory "
                     "gpu_memory_utilization leaves free")
    if any(l.is_recurrent for l in plan.layers) and plan.block != (s.block_size or BLOCK_SIZE):
        notes.append(f"hybrid model: attention block size raised to {plan.block} tokens so a page holds a state")
    est = Estimate(framework=NAME, components=components, gpus=s.tp * s.pp, notes=notes, extras=extras)
    est.engine = engine_info("vLLM", ".".join(map(str, version)), {
        "gpu_memory_utilization": (util, s.gpu_memory_utilization is None),
        "max_num_batched_tokens": (mnbt, s.max_num_batched_tokens is None),
        "max_num_seqs": (max_seqs, s.max_num_seqs is None),
        "block_size": (plan.block, s.block_size is None),
        "kv_cache_dtype": (name, s.kv_dtype == "auto"),
        "cuda_graphs": ("off" if s.enforce_eager else "on", not s.enforce_eager),
    })
    # torch's peak: weights + the profile's activation peak (+ the pool, once a GPU sizes it)
    est.allocator_peak_bytes = int(weights + act + sum(riders.values()) + need)
    if gpu is None:
        est.nvidia_smi_unknown = True  # vLLM takes gpu_memory_utilization of whatever GPU it is given
        return est
    usable = gpu.usable_bytes
    budget = math.ceil(usable * util)
    # What the process holds: vLLM takes its whole budget whatever the model needs, plus the CUDA context outside
    # it, plus (before 0.20) the CUDA graphs captured after the pool was sized.
    held = budget + outside + (0 if graphs_in_budget else graphs)
    allowed = s.allowed_bytes
    # The verdict holds at the high end of the error band (hfvram.estimate.bands): the fixed parts at their high end
    # must leave blocks for the request at its high end, and the process at its high end must be within `allowed`.
    fixed_above = [bands.margins(NAME, parts, s.tp)[1] for parts in fixed_parts]
    held_high = budget + outside + bands.margin(NAME, "cuda_context", outside, s.tp)[1] + \
        (0 if graphs_in_budget else graphs + bands.margin(NAME, "cuda_graphs", graphs, s.tp)[1])

    def stage_blocks(st, above: float = 0.0) -> int:
        _, p, _, _, _, f, _ = st
        pool = budget - f - above
        return max(0, int(pool // p.bytes_per_block) - 1) if p.bytes_per_block and pool > 0 else 0  # null block

    blocks_by_stage = [stage_blocks(st) for st in stages]
    safe_blocks = [stage_blocks(st, above) for st, above in zip(stages, fixed_above)]

    def request_high(st, context: int) -> float:
        need = s.batch * per_request(st[1], st[2], context)
        return need + bands.margin(NAME, "kv_cache", need, s.tp)[1]

    def kv_fits(context: int) -> bool:
        return all(b * st[1].bytes_per_block >= request_high(st, context) for b, st in zip(safe_blocks, stages))

    tight = min(range(len(stages)), key=lambda i: blocks_by_stage[i])
    blocks = blocks_by_stage[tight]
    _, tplan, tdraft, tweights, tact, tfixed, _ = stages[tight]
    per_req_blocks = per_request(tplan, tdraft, s.context) / tplan.bytes_per_block if tplan.bytes_per_block else 0
    pool = max(0, budget - tfixed)  # the stage with the fewest blocks sizes every stage (min over workers)
    est.allocator_peak_bytes = int(tweights + sum(riders.values()) + max(tact, pool))
    est.fixed_components = fixed_parts[tight]
    est.fixed_high_bytes = int(tfixed + fixed_above[tight])
    est.held_high_bytes = int(held_high)
    extras.update({
        "budget_bytes": int(budget),
        "kv_pool_bytes": int(pool),
        "num_blocks": blocks,
        "max_concurrency": round(blocks / per_req_blocks, 2) if per_req_blocks else None,
        # What the process holds: the whole budget (vLLM takes it whatever the model needs) plus the context.
        "process_bytes": int(held),
    })
    if per_req_blocks:
        if version >= TOKENS_BY_CONCURRENCY_SINCE:
            extras["kv_tokens"] = int(blocks / per_req_blocks * s.context)
        else:
            extras["kv_tokens"] = blocks // max(1, len(tplan.groups)) * tplan.block
    est.budget_bytes = int(budget)
    est.process_bytes = int(held)
    within = held_high <= allowed
    est.fits = kv_fits(s.context) and within
    est.headroom_bytes = int(allowed - held)
    share = f"gpu_memory_utilization {util:g} x {fmt_bytes(usable)} = {fmt_bytes(budget)}"
    if not within:
        at_high = f", {fmt_bytes(held_high)} at the high end of its error band" if held <= allowed else ""
        est.fit_reason = (f"vLLM holds {fmt_bytes(held)} ({share}, plus {fmt_bytes(held - budget)} outside it)"
                          f"{at_high}, more than the {fmt_bytes(allowed)} allowed{allowed_note(s)}")
    elif not est.fits:
        i = max(range(len(stages)), key=lambda i: stages[i][5] + fixed_above[i] + request_high(stages[i], s.context))
        worst = stages[i]
        need = worst[5] + s.batch * per_request(worst[1], worst[2], s.context) + worst[1].bytes_per_block
        need_high = worst[5] + fixed_above[i] + request_high(worst, s.context) + worst[1].bytes_per_block
        if worst[5] >= budget:
            est.fit_reason = (f"weights and fixed overheads alone take {fmt_bytes(worst[5])}, "
                              f"{fmt_bytes(worst[5] - budget)} more than vLLM's budget ({share})")
        elif need <= budget:
            est.fit_reason = (f"needs {fmt_bytes(need)} for {s.batch} x {s.context:,} tokens, {fmt_bytes(need_high)} "
                              f"at the high end of its error band, but vLLM's budget is {share}: "
                              f"{fmt_bytes(need_high - budget)} short at the high end")
        else:
            est.fit_reason = (f"needs {fmt_bytes(need)} for {s.batch} x {s.context:,} tokens but vLLM's budget is "
                              f"{share}: {fmt_bytes(need - budget)} short")
    ceiling = max(s.context, model.max_position or s.context)
    est.max_context = largest_fitting(kv_fits, 1, ceiling) if min(safe_blocks) and within else None
    return est


def utilization_within(s: Settings, allowed: int, graphs_outside: int = 0) -> float | None:
    """The largest --gpu-memory-utilization (2 decimals) whose process stays within `allowed`, or None."""
    usable = s.usable_bytes
    if not usable:
        return None
    outside = outside_budget(version_tuple(s.vllm_version))
    # at the high end of the error band (hfvram.estimate.bands), as the verdict holds it
    outside += bands.margin(NAME, "cuda_context", outside, s.tp)[1]
    graphs_outside += bands.margin(NAME, "cuda_graphs", graphs_outside, s.tp)[1]
    util = math.floor((allowed - outside - graphs_outside) / usable * 100) / 100
    while util > 0 and math.ceil(usable * util) + outside + graphs_outside > allowed:
        util = round(util - 0.01, 2)
    return util if util > 0 else None
