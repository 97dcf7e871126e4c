"""Encoding search queries with numpy only: the torch-free twin of `Embedder`.

`import torch` alone takes longer than a whole search may. A query is a few dozen tokens
through a small model: numpy on the CPU does that quickly, reading the same memory-mapped
safetensors file, through each architecture's numpy forward pass (`models/<arch>.py`).
Same vectors as the torch encoder (tested per architecture).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.embed.models import architecture_for
from codesift.embed.pooling import normalize_array, pool_array, truncate_and_normalize
from codesift.embed.tokenizer import TextTokenizer


class QueryEncoder:
    """Encode short texts (queries) to the same vectors as `Embedder`, with numpy only."""

    def __init__(self, files: ModelFiles):
        self.files = files
        source = str(files.root / "config.json")
        arch = architecture_for(files.config, source=source)
        self.model = arch.numpy_model(files.weights, arch.read_config(files.config, source=source))
        self.tokenizer = TextTokenizer(files)
        self.dim = files.dim  # files.truncate_dim when set (Matryoshka), else the model's width

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        ids = self.tokenizer.encode_queries(texts)
        out = np.zeros((len(ids), self.files.hidden_size), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            t = max(len(ids[i]) for i in idx)
            arr = np.full((len(idx), t), self.tokenizer.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), t), dtype=np.float32)
            for r, i in enumerate(idx):
                arr[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = 1
            v = pool_array(self.model.forward(arr, mask), mask, self.files.pooling)
            out[idx] = normalize_array(v) if self.files.normalize else v
        return truncate_and_normalize(out, self.dim, self.files.normalize)
