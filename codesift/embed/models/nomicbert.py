"""NomicBERT (nomic-embed-text): BERT's post-LayerNorm layers with rotary positions instead of a
position table, q, k and v in one projection, and a SwiGLU feed-forward (`fc2(fc11(x) * silu(fc12(x)))`);
no biases in the released models. Config, weight names and the numpy forward pass are here (no
torch); the torch module is in `nomicbert_torch.py`.

Weights are read under the names of nomic's checkpoints (`encoder.layers.N.attn.Wqkv`, `mlp.fc11`,
`emb_ln`...), which transformers also writes and which llama.cpp's `nomic-bert` GGUF tensors map
back to (`gguf_file.TENSOR_NAMES`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesift.embed.models.common import (ModelConfig, NumpyWeights, WeightMap, attention, key_mask_bias, layer_norm,
                                          linear, merge_heads, per_layer, split_heads)
from codesift.embed.models.modernbert import rotary_inverse_frequencies, rotate
from codesift.errors import ModelLoadError, UnsupportedModelError

# nomic's own config.json spelling -> the one transformers writes (fields below)
ORIGINAL_NAMES = {"n_embd": "hidden_size", "n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
                  "n_inner": "intermediate_size", "n_positions": "max_position_embeddings",
                  "layer_norm_epsilon": "layer_norm_eps"}
# The gated feed-forward's activation: transformers' hidden_act, or nomic's activation_function.
GATED_ACTIVATIONS = {"silu": "silu", "swish": "silu", "swiglu": "silu"}


@dataclass(frozen=True)
class NomicBertConfig(ModelConfig):
    """Both spellings of config.json are read: transformers' (hidden_size, hidden_act "silu",
    rope_parameters) and nomic's original (n_embd, activation_function "swiglu", rotary_emb_base)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int | None = None  # nomic's n_inner may be null: 4 * hidden_size
    max_position_embeddings: int = 2048
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "silu"
    pad_token_id: int = 0
    rope_parameters: dict | None = None
    # nomic's original fields; the values the released models have are the defaults
    rotary_emb_base: float = 1000.0
    rotary_emb_fraction: float = 1.0
    rotary_emb_interleaved: bool = False
    rotary_scaling_factor: float | None = None
    qkv_proj_bias: bool = False
    mlp_fc1_bias: bool = False
    mlp_fc2_bias: bool = False
    prenorm: bool = False
    parallel_block: bool = False
    use_rms_norm: bool = False
    causal: bool = False

    @classmethod
    def from_dict(cls, config: dict, source: str = "config.json"):
        merged = dict(config)
        for original, name in ORIGINAL_NAMES.items():
            if name not in merged and original in merged:
                merged[name] = merged[original]
        if "hidden_act" not in merged and "activation_function" in merged:
            merged["hidden_act"] = merged["activation_function"]
        return super().from_dict(merged, source=source)

    def check(self, source: str) -> None:
        super().check(source)
        if self.hidden_act not in GATED_ACTIVATIONS:
            raise UnsupportedModelError(f"{source}: NomicBERT activation {self.hidden_act!r} is not supported "
                                        f"(only SwiGLU: {', '.join(GATED_ACTIVATIONS)})")
        unsupported = {"rotary_emb_fraction": self.rotary_emb_fraction != 1.0,
                       "rotary_emb_interleaved": self.rotary_emb_interleaved,
                       "rotary_scaling_factor": self.rotary_scaling_factor is not None,
                       "prenorm": self.prenorm, "parallel_block": self.parallel_block,
                       "use_rms_norm": self.use_rms_norm, "causal": self.causal}
        for key, bad in unsupported.items():
            if bad:
                raise UnsupportedModelError(f"{source}: NomicBERT with {key} = {getattr(self, key)!r} is not "
                                            "supported (nomic-embed-text's settings are)")
        rope = self.rope_parameters or {}
        if rope.get("rope_type", "default") != "default":
            raise UnsupportedModelError(f"{source}: rope_type {rope['rope_type']!r} is not supported (only 'default')")
        if self.head_dim % 2:
            raise ModelLoadError(f"{source}: rotary positions need an even head size, not {self.head_dim}")

    @property
    def ffn_size(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size

    @property
    def rope_theta(self) -> float:
        return float((self.rope_parameters or {}).get("rope_theta", self.rotary_emb_base))

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings


PREFIXES = ("", "model.", "bert.", "nomic_bert.", "0.auto_model.")
ANCHOR = "embeddings.word_embeddings.weight"


def weight_map(cfg: NomicBertConfig) -> WeightMap:
    h, ffn = ("hidden_size",), ("ffn_size",)
    wm: WeightMap = {
        "embeddings.word_embeddings.weight": ("tok_embeddings.weight", ("vocab_size", "hidden_size")),
        "embeddings.token_type_embeddings.weight": ("type_embeddings.weight", ("type_vocab_size", "hidden_size")),
        "emb_ln.weight": ("embed_norm.weight", h),
        "emb_ln.bias": ("embed_norm.bias", h),
    }
    layer: WeightMap = {
        "encoder.layers.{}.attn.Wqkv.weight": ("layers.{}.attn.wqkv.weight", (3 * cfg.hidden_size, "hidden_size")),
        "encoder.layers.{}.attn.out_proj.weight": ("layers.{}.attn.wo.weight", ("hidden_size", "hidden_size")),
        "encoder.layers.{}.norm1.weight": ("layers.{}.attn_norm.weight", h),
        "encoder.layers.{}.norm1.bias": ("layers.{}.attn_norm.bias", h),
        "encoder.layers.{}.mlp.fc11.weight": ("layers.{}.mlp.up.weight", ("ffn_size", "hidden_size")),
        "encoder.layers.{}.mlp.fc12.weight": ("layers.{}.mlp.gate.weight", ("ffn_size", "hidden_size")),
        "encoder.layers.{}.mlp.fc2.weight": ("layers.{}.mlp.wo.weight", ("hidden_size", "ffn_size")),
        "encoder.layers.{}.norm2.weight": ("layers.{}.mlp_norm.weight", h),
        "encoder.layers.{}.norm2.bias": ("layers.{}.mlp_norm.bias", h),
    }
    if cfg.qkv_proj_bias:
        layer["encoder.layers.{}.attn.Wqkv.bias"] = ("layers.{}.attn.wqkv.bias", (3 * cfg.hidden_size,))
        layer["encoder.layers.{}.attn.out_proj.bias"] = ("layers.{}.attn.wo.bias", h)
    if cfg.mlp_fc1_bias:
        layer["encoder.layers.{}.mlp.fc11.bias"] = ("layers.{}.mlp.up.bias", ffn)
        layer["encoder.layers.{}.mlp.fc12.bias"] = ("layers.{}.mlp.gate.bias", ffn)
    if cfg.mlp_fc2_bias:
        layer["encoder.layers.{}.mlp.fc2.bias"] = ("layers.{}.mlp.wo.bias", h)
    return {**wm, **per_layer(cfg.num_hidden_layers, layer)}


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class NumpyNomicBert:
    """NomicBERT forward in float32 numpy over weights mapped from a safetensors or GGUF file."""

    def __init__(self, cfg: NomicBertConfig, w: NumpyWeights):
        self.cfg, self.w = cfg, w

    def _b(self, name: str) -> np.ndarray | None:
        return self.w(name) if name in self.w else None

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask [b, t] (mask 1 on real tokens, right padding) -> token states [b, t, hidden]."""
        cfg, w, b_ = self.cfg, self.w, self._b
        t, eps = ids.shape[1], cfg.layer_norm_eps
        x = w.rows("tok_embeddings.weight", ids) + w("type_embeddings.weight")[0]  # one segment: type 0
        x = layer_norm(x, w("embed_norm.weight"), w("embed_norm.bias"), eps)
        freqs = np.arange(t, dtype=np.float32)[:, None] * rotary_inverse_frequencies(cfg.rope_theta, cfg.head_dim)[None]
        emb = np.concatenate((freqs, freqs), axis=-1)
        cos, sin = np.cos(emb), np.sin(emb)
        bias = key_mask_bias(mask)
        for i in range(cfg.num_hidden_layers):
            p = f"layers.{i}."
            q, k, v = np.split(linear(x, w(p + "attn.wqkv.weight"), b_(p + "attn.wqkv.bias")), 3, axis=-1)
            q, k, v = (split_heads(a, cfg.num_attention_heads) for a in (q, k, v))
            a = merge_heads(attention(rotate(q, cos, sin), rotate(k, cos, sin), v, bias))
            x = layer_norm(x + linear(a, w(p + "attn.wo.weight"), b_(p + "attn.wo.bias")),
                           w(p + "attn_norm.weight"), w(p + "attn_norm.bias"), eps)
            up = linear(x, w(p + "mlp.up.weight"), b_(p + "mlp.up.bias"))
            gate = linear(x, w(p + "mlp.gate.weight"), b_(p + "mlp.gate.bias"))
            x = layer_norm(x + linear(up * silu(gate), w(p + "mlp.wo.weight"), b_(p + "mlp.wo.bias")),
                           w(p + "mlp_norm.weight"), w(p + "mlp_norm.bias"), eps)
        return x
