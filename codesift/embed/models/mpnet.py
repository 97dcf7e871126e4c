"""MPNet: BERT's post-LayerNorm layers plus a relative position bias shared by all layers, and
RoBERTa-style absolute positions numbered from padding_idx + 1 (no token types). The numpy
forward pass is here (no torch); the torch module is in `mpnet_torch.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesift.embed.models.bert import LAYER, NumpyBert
from codesift.embed.models.common import (ModelConfig, WeightMap, check_activation, key_mask_bias, layer_norm,
                                          per_layer)
from codesift.errors import UnsupportedModelError

# transformers' MPNetEmbeddings fixes padding_idx at 1 whatever config.json says: position i of a
# sequence uses row 1 + 1 + i of the position table.
PADDING_IDX = 1
# transformers' MPNetEncoder.compute_position_bias buckets relative positions with these
# (not with config.json's relative_attention_num_buckets, which sizes the table).
RELATIVE_BUCKETS = 32
RELATIVE_MAX_DISTANCE = 128


@dataclass(frozen=True)
class MPNetConfig(ModelConfig):
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 514
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 1
    relative_attention_num_buckets: int = 32

    def check(self, source: str) -> None:
        super().check(source)
        check_activation(self.hidden_act, "hidden_act", source)
        if self.relative_attention_num_buckets != RELATIVE_BUCKETS:
            raise UnsupportedModelError(f"{source}: relative_attention_num_buckets "
                                        f"{self.relative_attention_num_buckets} is not supported "
                                        f"(only {RELATIVE_BUCKETS}, as transformers computes it)")

    @property
    def position_offset(self) -> int:
        return PADDING_IDX + 1

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings - self.position_offset


PREFIXES = ("", "mpnet.", "model.", "0.auto_model.")
ANCHOR = "embeddings.word_embeddings.weight"

EMBEDDINGS: WeightMap = {
    "embeddings.word_embeddings.weight": ("tok_embeddings.weight", ("vocab_size", "hidden_size")),
    "embeddings.position_embeddings.weight": ("pos_embeddings.weight", ("max_position_embeddings", "hidden_size")),
    "embeddings.LayerNorm.weight": ("embed_norm.weight", ("hidden_size",)),
    "embeddings.LayerNorm.bias": ("embed_norm.bias", ("hidden_size",)),
    "encoder.relative_attention_bias.weight": ("relative_bias.weight",
                                               ("relative_attention_num_buckets", "num_attention_heads")),
}
# BERT's layer, with MPNet's names for the attention projections
_RENAMED = {"attention.self.query": "attention.attn.q", "attention.self.key": "attention.attn.k",
            "attention.self.value": "attention.attn.v", "attention.output.dense": "attention.attn.o",
            "attention.output.LayerNorm": "attention.LayerNorm"}


def _mpnet_name(bert_name: str) -> str:
    for old, new in _RENAMED.items():
        bert_name = bert_name.replace(old, new)
    return bert_name


LAYER_MAP: WeightMap = {_mpnet_name(hf): ours for hf, ours in LAYER.items()}


def weight_map(cfg: MPNetConfig) -> WeightMap:
    return {**EMBEDDINGS, **per_layer(cfg.num_hidden_layers, LAYER_MAP)}


def relative_buckets(t: int) -> np.ndarray:
    """[t, t] int64: the bias bucket of query i and key j, as transformers' MPNet computes it
    (T5's scheme: exact buckets for near keys, logarithmic ones up to RELATIVE_MAX_DISTANCE,
    separate halves for keys before and after the query)."""
    pos = np.arange(t, dtype=np.int64)
    n = pos[:, None] - pos[None, :]  # query - key
    half = RELATIVE_BUCKETS // 2
    out = np.where(n < 0, half, 0)
    n = np.abs(n)
    max_exact = half // 2
    with np.errstate(divide="ignore"):  # log(0) where n == 0: those take the exact branch
        scaled = (np.log(n.astype(np.float32) / np.float32(max_exact))
                  / np.float32(math.log(RELATIVE_MAX_DISTANCE / max_exact)) * np.float32(half - max_exact))
    large = np.minimum(max_exact + np.nan_to_num(scaled, neginf=0).astype(np.int64), half - 1)
    return out + np.where(n < max_exact, n, large)


class NumpyMPNet(NumpyBert):
    """MPNet forward in float32 numpy: BERT's layers with the relative bias added to every one."""

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cfg, w = self.cfg, self.w
        t = ids.shape[1]
        off = cfg.position_offset
        x = w.rows("tok_embeddings.weight", ids) + w("pos_embeddings.weight")[off:off + t]
        x = layer_norm(x, w("embed_norm.weight"), w("embed_norm.bias"), cfg.layer_norm_eps)
        rel = w("relative_bias.weight")[relative_buckets(t)].transpose(2, 0, 1)  # [heads, t, t]
        bias = rel[None] + key_mask_bias(mask)
        for i in range(cfg.num_hidden_layers):
            x = self.layer(x, i, bias)
        return x

