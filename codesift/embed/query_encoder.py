"""A numpy BERT forward pass for encoding search queries without torch.

`import torch` alone costs 1-2 s on a laptop, more than a whole search may take. A query
is a few dozen tokens through a 6-layer, 384-wide model: numpy on the CPU does that in a
few milliseconds, reading the same memory-mapped safetensors file. Same vectors as the
torch encoder (cosine >= 0.9999, tested).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from codesift.embed.bert_spec import BertConfig, map_weights
from codesift.embed.model_files import ModelFiles
from codesift.embed.safetensors_file import SafetensorsFile
from codesift.embed.tokenizer import TextTokenizer
from codesift.errors import UnsupportedModelError


def erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1.2e-7 (Numerical Recipes' Chebyshev fit of erfc): numpy has no erf, scipy is heavy."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(-z * z + poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(x.dtype, copy=False)


def gelu(x: np.ndarray, approximate: bool = False) -> np.ndarray:
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x * np.float32(0.7071067811865476)))


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


class NumpyBert:
    """BERT forward in float32 numpy over weights mapped from a safetensors file."""

    def __init__(self, files: ModelFiles):
        if not (files.model_type == "bert" or files.architecture.startswith("Bert")):
            raise UnsupportedModelError(f"{files.root}: the numpy query encoder supports BERT only, "
                                        f"not {files.architecture!r}")
        self.cfg = BertConfig.from_dict(files.config, source=str(files.root / "config.json"))
        self.st = SafetensorsFile(files.weights)
        self.names = map_weights(self.st, self.cfg)
        self._cache: dict[str, np.ndarray] = {}

    def w(self, name: str) -> np.ndarray:
        a = self._cache.get(name)
        if a is None:
            a = self._cache[name] = self.st.array(self.names[name], np.float32)
        return a

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask [b, t] -> token states [b, t, hidden] (float32)."""
        cfg, w = self.cfg, self.w
        b, t = ids.shape
        # Gather only the rows the query uses: the table is most of the file and stays unread.
        table_name = self.names["tok_embeddings.weight"]
        rows = self.st.raw(table_name)[ids.reshape(-1)]
        if self.st.tensors[table_name].dtype == "BF16":
            rows = (rows.astype(np.uint32) << 16).view(np.float32)
        x = rows.astype(np.float32, copy=False).reshape(b, t, -1)
        x = x + w("pos_embeddings.weight")[:t] + w("type_embeddings.weight")[0]
        x = layer_norm(x, w("embed_norm.weight"), w("embed_norm.bias"), cfg.layer_norm_eps)
        nh, hd = cfg.num_attention_heads, cfg.head_dim
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        approx = cfg.hidden_act != "gelu"
        for i in range(cfg.num_hidden_layers):
            p = f"layers.{i}."

            def lin(v, name):
                return v @ w(p + name + ".weight").T + w(p + name + ".bias")

            q = lin(x, "attention.wq").reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
            k = lin(x, "attention.wk").reshape(b, t, nh, hd).transpose(0, 2, 3, 1)
            v = lin(x, "attention.wv").reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
            s = (q @ k) * scale + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(b, t, -1)
            x = layer_norm(x + lin(a, "attention.wo"), w(p + "attention_norm.weight"),
                           w(p + "attention_norm.bias"), cfg.layer_norm_eps)
            h = lin(x, "ffn.w1")
            h = np.maximum(h, 0) if cfg.hidden_act == "relu" else gelu(h, approximate=approx)
            x = layer_norm(x + lin(h, "ffn.w2"), w(p + "ffn_norm.weight"), w(p + "ffn_norm.bias"),
                           cfg.layer_norm_eps)
        return x


class QueryEncoder:
    """Encode short texts (queries) to the same vectors as `Embedder`, with numpy only."""

    def __init__(self, files: ModelFiles):
        self.files = files
        self.model = NumpyBert(files)
        self.tokenizer = TextTokenizer(files, min(files.max_seq_length,
                                                  int(files.config.get("max_position_embeddings", 512))))
        self.dim = files.dim

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        ids = self.tokenizer.encode(texts).ids
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            t = max(len(ids[i]) for i in idx)
            arr = np.full((len(idx), t), self.tokenizer.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), t), dtype=np.float32)
            for r, i in enumerate(idx):
                arr[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = 1
            out[idx] = self._pool(self.model.forward(arr, mask), mask)
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mode, m = self.files.pooling, mask[..., None]
        if mode == "cls":
            v = hidden[:, 0]
        elif mode == "max":
            v = np.where(m > 0, hidden, -1e9).max(1)
        else:
            count = np.maximum(m.sum(1), 1e-9)
            v = (hidden * m).sum(1) / (np.sqrt(count) if mode == "mean_sqrt_len" else count)
        if self.files.normalize:
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return v.astype(np.float32, copy=False)
