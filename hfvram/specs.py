"""Per-layer cache specs: one small type per attention kind, and the memory math as its methods.

Modelled on vLLM's `vllm/v1/kv_cache_interface.py` (FullAttentionSpec, SlidingWindowSpec,
ChunkedLocalAttentionSpec, MLAAttentionSpec, MambaSpec): a spec knows what one token costs in its layer and how
many tokens (or how much fixed state) the layer keeps. Engines differ in how they *allocate* (pages, padding,
in-flight tokens); those policies live in `hfvram.estimate.*` and call these methods.

Sizes take the element size as a float so block-quantised caches (llama.cpp q8_0 = 34/32 bytes) fit.
"""

from __future__ import annotations

from typing import ClassVar

from .record import record


@record(frozen=True)
class LayerSpec:
    """A decoder layer that keeps no cache (encoder layers, MLP-only blocks)."""

    kind: ClassVar[str] = "none"

    @property
    def is_attention(self) -> bool:
        return False

    @property
    def is_recurrent(self) -> bool:
        return False

    def per_token_bytes(self, kv_bytes: float) -> float:
        """Bytes one token adds to this layer's cache, for one sequence."""
        return 0.0

    def tokens_held(self, context: int) -> int:
        """Tokens of a `context`-long sequence this layer must keep at minimum."""
        return 0

    def state_bytes(self, state_bytes: float) -> float:
        """Fixed per-sequence state (recurrent layers), independent of context."""
        return 0.0

    def cache_bytes(self, context: int, batch: int, kv_bytes: float, state_bytes: float | None = None) -> float:
        """The layer's own minimum cache for `batch` sequences of `context` tokens."""
        state = self.state_bytes(kv_bytes if state_bytes is None else state_bytes)
        return batch * (self.tokens_held(context) * self.per_token_bytes(kv_bytes) + state)


@record(frozen=True)
class FullAttention(LayerSpec):
    """Every token of the sequence stays in the cache: K and V per KV head."""

    kind: ClassVar[str] = "full_attention"
    num_kv_heads: int = 0
    head_dim: int = 0
    head_dim_v: int | None = None  # defaults to head_dim

    @property
    def is_attention(self) -> bool:
        return True

    @property
    def v_dim(self) -> int:
        return self.head_dim if self.head_dim_v is None else self.head_dim_v

    def per_token_bytes(self, kv_bytes: float) -> float:
        return self.num_kv_heads * (self.head_dim + self.v_dim) * kv_bytes

    def tokens_held(self, context: int) -> int:
        return context


@record(frozen=True)
class SlidingWindow(FullAttention):
    """Only the last `window` tokens are attended to, so only they must be kept (Mistral v0.1, Gemma-2/3,
    gpt-oss, Phi-3-mini-4k)."""

    kind: ClassVar[str] = "sliding_attention"
    window: int = 0

    def tokens_held(self, context: int) -> int:
        return min(context, self.window)


@record(frozen=True)
class ChunkedLocal(FullAttention):
    """Attention within fixed chunks of `chunk` tokens (Llama-4 `attention_chunk_size`): at most one chunk is
    live per sequence."""

    kind: ClassVar[str] = "chunked_attention"
    chunk: int = 0

    def tokens_held(self, context: int) -> int:
        return min(context, self.chunk)


@record(frozen=True)
class MLA(LayerSpec):
    """Multi-head latent attention (DeepSeek-V2/V3/R1, Kimi-K2): one compressed latent of `kv_lora_rank` plus the
    shared RoPE key of `qk_rope_head_dim` per token, no separate V (vLLM `MLAAttentionSpec`: head_size =
    kv_lora_rank + qk_rope_head_dim, num_kv_heads = 1)."""

    kind: ClassVar[str] = "mla"
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0

    @property
    def is_attention(self) -> bool:
        return True

    @property
    def latent_dim(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim

    def per_token_bytes(self, kv_bytes: float) -> float:
        return self.latent_dim * kv_bytes

    def tokens_held(self, context: int) -> int:
        return context


@record(frozen=True)
class LinearAttention(LayerSpec):
    """Gated DeltaNet linear attention (Qwen3-Next): a fixed state per sequence, no per-token cache.
    State shapes from vLLM `layers/mamba/mamba_utils.py` (gated_delta_net_state_shape): conv state
    (2*k_heads*k_dim + v_heads*v_dim) x (kernel-1), recurrent state v_heads x v_dim x k_dim."""

    kind: ClassVar[str] = "linear_attention"
    num_k_heads: int = 0
    num_v_heads: int = 0
    head_k_dim: int = 0
    head_v_dim: int = 0
    conv_kernel: int = 4

    @property
    def is_recurrent(self) -> bool:
        return True

    def state_elements(self) -> tuple[int, int]:
        conv_dim = 2 * self.num_k_heads * self.head_k_dim + self.num_v_heads * self.head_v_dim
        return conv_dim * (self.conv_kernel - 1), self.num_v_heads * self.head_v_dim * self.head_k_dim

    def state_bytes(self, state_bytes: float) -> float:
        return sum(self.state_elements()) * state_bytes


@record(frozen=True)
class Mamba(LayerSpec):
    """A Mamba (selective state space) layer: conv state plus SSM state, fixed per sequence.
    Mamba2 (Nemotron-H, Codestral-Mamba): conv (intermediate + 2*n_groups*d_state) x (kernel-1) and SSM
    n_heads x head_dim x d_state. Mamba1 (state-spaces/mamba, Jamba): conv intermediate x (kernel-1) and SSM
    intermediate x d_state. Source: vLLM `layers/mamba/mamba_utils.py` (mamba1_state_shape, mamba2_state_shape)."""

    kind: ClassVar[str] = "mamba"
    version: int = 2
    intermediate: int = 0
    d_state: int = 0
    conv_kernel: int = 4
    n_groups: int = 1  # mamba2
    num_heads: int = 0  # mamba2
    head_dim: int = 0  # mamba2

    @property
    def is_recurrent(self) -> bool:
        return True

    def state_elements(self) -> tuple[int, int]:
        if self.version == 1:
            return self.intermediate * (self.conv_kernel - 1), self.intermediate * self.d_state
        conv_dim = self.intermediate + 2 * self.n_groups * self.d_state
        return conv_dim * (self.conv_kernel - 1), self.num_heads * self.head_dim * self.d_state

    def state_bytes(self, state_bytes: float) -> float:
        return sum(self.state_elements()) * state_bytes


LAYER_KINDS = ("full_attention", "sliding_attention", "chunked_attention", "mla", "linear_attention", "mamba")


def count_kinds(layers: list[LayerSpec]) -> dict[str, int]:
    counts = {kind: 0 for kind in LAYER_KINDS}
    counts["none"] = 0
    for layer in layers:
        counts[layer.kind] += 1
    return counts
