"""ModernBERT: pre-LayerNorm layers without biases, rotary positions, a GeGLU feed-forward, and
attention that alternates between global layers and local ones (a sliding window). Config,
weight names and the numpy forward pass are here (no torch); the torch module is in
`modernbert_torch.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesift.embed.models.common import (ModelConfig, NumpyWeights, WeightMap, activation, attention,
                                          check_activation, layer_norm, linear, merge_heads, per_layer,
                                          split_heads)
from codesift.errors import UnsupportedModelError

GLOBAL, LOCAL = "full_attention", "sliding_attention"  # config.json's `layer_types` values


@dataclass(frozen=True)
class ModernBertConfig(ModelConfig):
    """Both spellings of config.json are read: the original (global_attn_every_n_layers,
    global_rope_theta, local_rope_theta) and the one transformers 5 writes (layer_types,
    rope_parameters)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 8192
    hidden_activation: str = "gelu"
    norm_eps: float = 1e-5
    norm_bias: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    pad_token_id: int = 50283
    local_attention: int = 128  # the whole window: a query sees keys up to half of it away
    global_attn_every_n_layers: int = 3
    global_rope_theta: float = 160_000.0
    local_rope_theta: float = 10_000.0
    layer_types: tuple[str, ...] | None = None
    rope_parameters: dict | None = None

    def check(self, source: str) -> None:
        super().check(source)
        check_activation(self.hidden_activation, "hidden_activation", source)
        for kind in self.kinds:
            if kind not in (GLOBAL, LOCAL):
                raise UnsupportedModelError(f"{source}: layer type {kind!r} is not supported ({GLOBAL}, {LOCAL})")
        for kind, params in (self.rope_parameters or {}).items():
            if params and params.get("rope_type", "default") != "default":
                raise UnsupportedModelError(f"{source}: rope_type {params['rope_type']!r} ({kind}) is not "
                                            "supported (only 'default')")

    @property
    def kinds(self) -> tuple[str, ...]:
        """Each layer's attention: GLOBAL or LOCAL (by default every third layer, from the first, is global)."""
        if self.layer_types:
            return tuple(self.layer_types)
        return tuple(LOCAL if i % self.global_attn_every_n_layers else GLOBAL for i in range(self.num_hidden_layers))

    def rope_theta(self, kind: str) -> float:
        params = (self.rope_parameters or {}).get(kind) or {}
        default = self.global_rope_theta if kind == GLOBAL else self.local_rope_theta
        return float(params.get("rope_theta", default))

    @property
    def window(self) -> int:
        """How far (in positions, either side) a query of a local layer sees."""
        return self.local_attention // 2

    @property
    def qkv_size(self) -> int:
        return 3 * self.hidden_size

    @property
    def glu_size(self) -> int:
        """The feed-forward's first projection: the input and the gate, side by side."""
        return 2 * self.intermediate_size

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings


PREFIXES = ("", "model.", "0.auto_model.")
ANCHOR = "embeddings.tok_embeddings.weight"


def weight_map(cfg: ModernBertConfig) -> WeightMap:
    h = ("hidden_size",)
    wm: WeightMap = {
        "embeddings.tok_embeddings.weight": ("tok_embeddings.weight", ("vocab_size", "hidden_size")),
        "embeddings.norm.weight": ("embed_norm.weight", h),
        "final_norm.weight": ("final_norm.weight", h),
    }
    layer: WeightMap = {
        "layers.{}.attn.Wqkv.weight": ("layers.{}.attn.wqkv.weight", ("qkv_size", "hidden_size")),
        "layers.{}.attn.Wo.weight": ("layers.{}.attn.wo.weight", ("hidden_size", "hidden_size")),
        "layers.{}.mlp_norm.weight": ("layers.{}.mlp_norm.weight", h),
        "layers.{}.mlp.Wi.weight": ("layers.{}.mlp.wi.weight", ("glu_size", "hidden_size")),
        "layers.{}.mlp.Wo.weight": ("layers.{}.mlp.wo.weight", ("hidden_size", "intermediate_size")),
    }
    norm_after_first = {"layers.{}.attn_norm.weight": ("layers.{}.attn_norm.weight", h)}  # layer 0 has none
    if cfg.norm_bias:
        wm["embeddings.norm.bias"] = ("embed_norm.bias", h)
        wm["final_norm.bias"] = ("final_norm.bias", h)
        layer["layers.{}.mlp_norm.bias"] = ("layers.{}.mlp_norm.bias", h)
        norm_after_first["layers.{}.attn_norm.bias"] = ("layers.{}.attn_norm.bias", h)
    if cfg.attention_bias:
        layer["layers.{}.attn.Wqkv.bias"] = ("layers.{}.attn.wqkv.bias", ("qkv_size",))
        layer["layers.{}.attn.Wo.bias"] = ("layers.{}.attn.wo.bias", h)
    if cfg.mlp_bias:
        layer["layers.{}.mlp.Wi.bias"] = ("layers.{}.mlp.wi.bias", ("glu_size",))
        layer["layers.{}.mlp.Wo.bias"] = ("layers.{}.mlp.wo.bias", h)
    n = cfg.num_hidden_layers
    return {**wm, **per_layer(n, layer), **per_layer(n, norm_after_first, layers=range(1, n))}


def rotary_inverse_frequencies(theta: float, head_dim: int) -> np.ndarray:
    """[head_dim / 2] float32: the rotation speed of each pair of dimensions."""
    return (1.0 / (np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim))))


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotary positions, "rotate half" layout: x [..., t, d]; cos, sin [t, d]."""
    half = x.shape[-1] // 2
    rotated = np.concatenate((-x[..., half:], x[..., :half]), axis=-1)
    return x * cos + rotated * sin


class NumpyModernBert:
    """ModernBERT forward in float32 numpy over weights mapped from a safetensors file."""

    def __init__(self, cfg: ModernBertConfig, w: NumpyWeights):
        self.cfg, self.w = cfg, w

    def _b(self, name: str) -> np.ndarray | None:
        return self.w(name) if name in self.w else None

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask [b, t] (mask 1 on real tokens, right padding) -> token states [b, t, hidden]."""
        cfg, w, b_ = self.cfg, self.w, self._b
        t, eps = ids.shape[1], cfg.norm_eps
        x = layer_norm(w.rows("tok_embeddings.weight", ids), w("embed_norm.weight"), b_("embed_norm.bias"), eps)
        pos = np.arange(t, dtype=np.float32)
        rope = {}
        for kind in set(cfg.kinds):
            freqs = pos[:, None] * rotary_inverse_frequencies(cfg.rope_theta(kind), cfg.head_dim)[None]
            emb = np.concatenate((freqs, freqs), axis=-1)
            rope[kind] = (np.cos(emb), np.sin(emb))
        dist = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])
        keys = mask[:, None, None, :] > 0
        # padded queries see themselves, so no row is all -inf (their outputs are discarded)
        allowed = {GLOBAL: keys | (dist == 0), LOCAL: (keys & (dist <= cfg.window)) | (dist == 0)}
        bias = {k: np.where(v, 0.0, -np.inf).astype(np.float32) for k, v in allowed.items()}
        for i, kind in enumerate(cfg.kinds):
            p = f"layers.{i}."
            h = x if i == 0 else layer_norm(x, w(p + "attn_norm.weight"), b_(p + "attn_norm.bias"), eps)
            q, k, v = np.split(linear(h, w(p + "attn.wqkv.weight"), b_(p + "attn.wqkv.bias")), 3, axis=-1)
            q, k, v = (split_heads(a, cfg.num_attention_heads) for a in (q, k, v))
            cos, sin = rope[kind]
            a = merge_heads(attention(rotate(q, cos, sin), rotate(k, cos, sin), v, bias[kind]))
            x = x + linear(a, w(p + "attn.wo.weight"), b_(p + "attn.wo.bias"))
            h = layer_norm(x, w(p + "mlp_norm.weight"), b_(p + "mlp_norm.bias"), eps)
            gate_in, gate = np.split(linear(h, w(p + "mlp.wi.weight"), b_(p + "mlp.wi.bias")), 2, axis=-1)
            x = x + linear(activation(gate_in, cfg.hidden_activation) * gate, w(p + "mlp.wo.weight"),
                           b_(p + "mlp.wo.bias"))
        return layer_norm(x, w("final_norm.weight"), b_("final_norm.bias"), eps)
