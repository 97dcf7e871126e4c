"""BERT: its config, its weight names, and a numpy forward pass for queries (no torch here).

Post-LayerNorm layers, learned absolute positions, token type 0 for every token unless given
(a cross-encoder's passage is segment 1, see `cross_encoder`). The torch
module is in `bert_torch.py`. RoBERTa-family models (XLM-RoBERTa) are this architecture with
positions offset past the padding id, see `xlm_roberta.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesift.embed.models.common import (ModelConfig, NumpyWeights, WeightMap, activation, attention,
                                          check_activation, key_mask_bias, layer_norm, linear, merge_heads,
                                          per_layer, split_heads)
from codesift.errors import UnsupportedModelError


@dataclass(frozen=True)
class BertConfig(ModelConfig):
    """The fields of a BERT `config.json` that the encoder needs, named as there."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"

    def check(self, source: str) -> None:
        super().check(source)
        check_activation(self.hidden_act, "hidden_act", source)
        if self.position_embedding_type != "absolute":
            raise UnsupportedModelError(f"{source}: position_embedding_type "
                                        f"{self.position_embedding_type!r} is not supported (only 'absolute')")

    @property
    def position_offset(self) -> int:
        """Row of the position table that position 0 uses: 0 in BERT."""
        return 0

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings - self.position_offset


# Prefixes under which checkpoints store the encoder: plain BertModel, BertFor* heads, wrappers.
PREFIXES = ("", "bert.", "model.", "encoder.", "0.auto_model.")
ANCHOR = "embeddings.word_embeddings.weight"

EMBEDDINGS: WeightMap = {
    "embeddings.word_embeddings.weight": ("tok_embeddings.weight", ("vocab_size", "hidden_size")),
    "embeddings.position_embeddings.weight": ("pos_embeddings.weight", ("max_position_embeddings", "hidden_size")),
    "embeddings.token_type_embeddings.weight": ("type_embeddings.weight", ("type_vocab_size", "hidden_size")),
    "embeddings.LayerNorm.weight": ("embed_norm.weight", ("hidden_size",)),
    "embeddings.LayerNorm.bias": ("embed_norm.bias", ("hidden_size",)),
}
LAYER: WeightMap = {  # "{}" is the layer index
    "encoder.layer.{}.attention.self.query.weight": ("layers.{}.attention.wq.weight", ("hidden_size", "hidden_size")),
    "encoder.layer.{}.attention.self.query.bias": ("layers.{}.attention.wq.bias", ("hidden_size",)),
    "encoder.layer.{}.attention.self.key.weight": ("layers.{}.attention.wk.weight", ("hidden_size", "hidden_size")),
    "encoder.layer.{}.attention.self.key.bias": ("layers.{}.attention.wk.bias", ("hidden_size",)),
    "encoder.layer.{}.attention.self.value.weight": ("layers.{}.attention.wv.weight", ("hidden_size", "hidden_size")),
    "encoder.layer.{}.attention.self.value.bias": ("layers.{}.attention.wv.bias", ("hidden_size",)),
    "encoder.layer.{}.attention.output.dense.weight": ("layers.{}.attention.wo.weight", ("hidden_size", "hidden_size")),
    "encoder.layer.{}.attention.output.dense.bias": ("layers.{}.attention.wo.bias", ("hidden_size",)),
    "encoder.layer.{}.attention.output.LayerNorm.weight": ("layers.{}.attention_norm.weight", ("hidden_size",)),
    "encoder.layer.{}.attention.output.LayerNorm.bias": ("layers.{}.attention_norm.bias", ("hidden_size",)),
    "encoder.layer.{}.intermediate.dense.weight": ("layers.{}.ffn.w1.weight", ("intermediate_size", "hidden_size")),
    "encoder.layer.{}.intermediate.dense.bias": ("layers.{}.ffn.w1.bias", ("intermediate_size",)),
    "encoder.layer.{}.output.dense.weight": ("layers.{}.ffn.w2.weight", ("hidden_size", "intermediate_size")),
    "encoder.layer.{}.output.dense.bias": ("layers.{}.ffn.w2.bias", ("hidden_size",)),
    "encoder.layer.{}.output.LayerNorm.weight": ("layers.{}.ffn_norm.weight", ("hidden_size",)),
    "encoder.layer.{}.output.LayerNorm.bias": ("layers.{}.ffn_norm.bias", ("hidden_size",)),
}


def weight_map(cfg: BertConfig) -> WeightMap:
    return {**EMBEDDINGS, **per_layer(cfg.num_hidden_layers, LAYER)}


class NumpyBert:
    """BERT forward in float32 numpy over weights mapped from a safetensors file."""

    def __init__(self, cfg: BertConfig, w: NumpyWeights):
        self.cfg, self.w = cfg, w

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None = None) -> np.ndarray:
        """ids, mask [b, t] (mask 1 on real tokens, right padding) -> token states [b, t, hidden].
        `types` [b, t]: each token's segment (a cross-encoder's query 0, passage 1); None: all 0."""
        cfg, w = self.cfg, self.w
        t = ids.shape[1]
        off = cfg.position_offset
        segment = w("type_embeddings.weight")[0] if types is None else w.rows("type_embeddings.weight", types)
        x = w.rows("tok_embeddings.weight", ids) + w("pos_embeddings.weight")[off:off + t] + segment
        x = layer_norm(x, w("embed_norm.weight"), w("embed_norm.bias"), cfg.layer_norm_eps)
        bias = key_mask_bias(mask)
        for i in range(cfg.num_hidden_layers):
            x = self.layer(x, i, bias)
        return x

    def layer(self, x: np.ndarray, i: int, bias: np.ndarray) -> np.ndarray:
        """One post-LayerNorm encoder layer; `bias` is added to the attention scores."""
        cfg, w, p = self.cfg, self.w, f"layers.{i}."

        def lin(v, name):
            return linear(v, w(p + name + ".weight"), w(p + name + ".bias"))

        nh = cfg.num_attention_heads
        q, k, v = (split_heads(lin(x, f"attention.{n}"), nh) for n in ("wq", "wk", "wv"))
        a = merge_heads(attention(q, k, v, bias))
        x = layer_norm(x + lin(a, "attention.wo"), w(p + "attention_norm.weight"), w(p + "attention_norm.bias"),
                       cfg.layer_norm_eps)
        h = activation(lin(x, "ffn.w1"), cfg.hidden_act)
        return layer_norm(x + lin(h, "ffn.w2"), w(p + "ffn_norm.weight"), w(p + "ffn_norm.bias"), cfg.layer_norm_eps)
