"""The public embedding API: `Embedder.load(...)` then `embed(texts)`."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from codesift.embed.batches import DEFAULT_BATCH_SIZE
from codesift.embed.model_files import ModelFiles, resolve_model
from codesift.embed.tokenizer import TextTokenizer


class Embedder:
    """Texts in, L2-normalised float32 vectors out, in input order."""

    def __init__(self, files: ModelFiles, backend, tokenizer: TextTokenizer):
        self.files, self.backend, self.tokenizer = files, backend, tokenizer
        self.truncated = 0  # texts that lost tokens to truncation in the last `embed` call
        self._runner = None  # the packed GPU runner, made on first use where supported

    @classmethod
    def load(cls, model: str | os.PathLike = "default", device: str | None = "auto",
             dtype: str | None = None, normalize: bool | None = None, engine: str | None = None) -> "Embedder":
        """Load a model by name ("default"), hub id found offline, or folder path.

        device: auto | cpu | cuda | cuda:N | mps; dtype: fp32 | fp16 | bf16 (default fp16 on
        CUDA, fp32 elsewhere); normalize: override the model folder's Normalize setting;
        engine: torch | numpy (default: torch where installed, see `backend.load_backend`).
        """
        from codesift.embed.backend import load_backend

        files = model if isinstance(model, ModelFiles) else resolve_model(model)
        backend = load_backend(files, device=device, dtype=dtype, normalize=normalize, engine=engine)
        return cls(files, backend, TextTokenizer(files))

    @property
    def dim(self) -> int:
        return self.backend.dim

    @property
    def max_tokens(self) -> int:
        return self.backend.max_tokens

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Embed texts; [len(texts), dim] float32. Over-long texts are truncated (see `.truncated`).

        On CUDA in fp16/bf16 the texts go through the packed GPU scheduler (no padding, CUDA
        graph); elsewhere through length-sorted padded batches of `batch_size`.
        """
        if self._packed_runner() is not None:
            from codesift.embed.batches import TokenBatch, pack

            flat, lengths, self.truncated = self.tokenizer.encode_flat(texts)
            out = np.zeros((len(lengths), self.dim), dtype=np.float32)
            runner = self._runner
            for keys, vecs in runner.run(pack([TokenBatch(np.arange(len(lengths)), flat, lengths)],
                                              runner.token_budget, runner.max_seqs)):
                out[keys] = vecs
            return out
        enc = self.tokenizer.encode(texts)
        self.truncated = enc.truncated
        return self.embed_ids(enc.ids, batch_size=batch_size)

    def _packed_runner(self):
        if self._runner is None and self.backend.packed_supported:
            from codesift.embed.scheduler import PackedRunner

            self._runner = PackedRunner(self.backend)
        return self._runner

    def embed_ids(self, ids: Sequence[Sequence[int]], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Embed pre-tokenized inputs, batching similar lengths together to waste little on padding."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self.backend.embed_batch([ids[i] for i in idx])
        return out
