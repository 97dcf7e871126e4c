"""The public embedding API: `Embedder.load(...)` then `embed(texts)`."""
from __future__ import annotations

import os
import threading
from typing import Callable, Protocol, Sequence, Union

import numpy as np

from codesift.embed.batches import DEFAULT_BATCH_SIZE, batch_bounds
from codesift.embed.model_files import ModelFiles, resolve_model
from codesift.embed.pooling import truncate_and_normalize
from codesift.embed.tokenizer import TextTokenizer
from codesift.errors import Cancelled

# progress(done, total): texts embedded so far, out of all, called after each batch
Progress = Callable[[int, int], None]


class _HasCancelled(Protocol):
    cancelled: bool


# What a caller cancels with: an object whose `.cancelled` turns true, or a threading.Event.
CancelToken = Union[_HasCancelled, threading.Event]


def is_cancelled(token) -> bool:
    """Whether a cancel token (None, a threading.Event, or an object with `.cancelled`) says stop."""
    if token is None:
        return False
    is_set = getattr(token, "is_set", None)
    return bool(is_set()) if callable(is_set) else bool(getattr(token, "cancelled"))


def check_cancelled(token, done: int, total: int) -> None:
    if is_cancelled(token):
        raise Cancelled(f"embedding cancelled after {done} of {total} texts")


class Embedder:
    """Texts in, L2-normalised float32 vectors out, in input order."""

    def __init__(self, files: ModelFiles, backend, tokenizer: TextTokenizer):
        self.files, self.backend, self.tokenizer = files, backend, tokenizer
        self.truncated = 0  # texts that lost tokens to truncation in the last `embed` call
        self._runner = None  # the packed GPU runner, made on first use where supported
        self._dim = files.dim  # the vectors' dimension: the model's, or files.truncate_dim (Matryoshka)

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
        return self._dim

    def _out_dim(self) -> int:
        """What the backend's vectors have (before any Matryoshka truncation)."""
        return self._backend().dim

    def _backend(self):
        if self.backend is None:
            raise RuntimeError("this Embedder is closed; load the model again (Embedder.load)")
        return self.backend

    def memory(self) -> dict[str, int]:
        """Bytes the model's weights hold on each device, e.g. {"cpu": 90_000_000} or {"cuda:0": ...};
        {} once closed. A backend that knows its own footprint (`memory()`) reports it; a torch
        module is measured tensor by tensor."""
        if self.backend is None:
            return {}
        own = getattr(self.backend, "memory", None)
        if callable(own):
            return dict(own())
        model = getattr(self.backend, "model", None)
        out: dict[str, int] = {}
        if model is not None and hasattr(model, "parameters"):
            seen = set()
            for t in list(model.parameters()) + list(model.buffers()):
                if id(t) in seen:
                    continue
                seen.add(id(t))
                dev = str(t.device)
                out[dev] = out.get(dev, 0) + t.numel() * t.element_size()
        return out

    def close(self) -> None:
        """Release the weights (and the GPU runner's buffers): `memory()` is {} afterwards and the
        device memory is returned to the driver. Embedding after this raises."""
        backend, self.backend, self._runner = self.backend, None, None
        if backend is None:
            return
        own_close = getattr(backend, "close", None)
        device = str(getattr(backend, "device", "cpu"))
        if callable(own_close):
            own_close()
        if hasattr(backend, "model"):
            backend.model = None
        del backend
        import gc
        import sys

        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __enter__(self) -> "Embedder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def max_tokens(self) -> int:
        return self._backend().max_tokens

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE, *,
              progress: Progress | None = None, cancel: CancelToken | None = None) -> np.ndarray:
        """Embed texts; [len(texts), dim] float32. Over-long texts are truncated (see `.truncated`).

        On CUDA in fp16/bf16 the texts go through the packed GPU scheduler (no padding, CUDA
        graph); elsewhere through length-sorted padded batches of `batch_size`.
        `progress(done, total)` is called after each batch; `cancel` (an object with `.cancelled`,
        or a threading.Event) is checked before and between batches: once set, `Cancelled` is
        raised within one batch and nothing is returned.
        """
        total = len(texts)
        check_cancelled(cancel, 0, total)
        if self._packed_runner() is not None:
            from codesift.embed.batches import TokenBatch, pack

            flat, lengths, self.truncated = self.tokenizer.encode_flat(texts)
            check_cancelled(cancel, 0, total)
            out = np.zeros((len(lengths), self._out_dim()), dtype=np.float32)
            runner, done = self._runner, 0
            batches = runner.run(pack([TokenBatch(np.arange(len(lengths)), flat, lengths)],
                                      runner.token_budget, runner.max_seqs))
            try:
                for keys, vecs in batches:
                    out[keys] = vecs
                    done += len(keys)
                    if progress is not None:
                        progress(done, total)
                    check_cancelled(cancel, done, total)
            finally:
                batches.close()  # a cancelled run leaves no batch in flight
            return self.cut_to_dim(out)
        enc = self.tokenizer.encode(texts)
        self.truncated = enc.truncated
        check_cancelled(cancel, 0, total)
        return self.embed_ids(enc.ids, batch_size=batch_size, progress=progress, cancel=cancel)

    def cut_to_dim(self, vecs: np.ndarray) -> np.ndarray:
        """The backend's pooled vectors as `embed` returns them: the first `dim` values (Matryoshka),
        re-normalised when the model normalises; unchanged at the model's full width."""
        return truncate_and_normalize(vecs, self.dim, self._normalizes())

    def _normalizes(self) -> bool:
        return bool(getattr(self._backend(), "normalize", self.files.normalize))

    def _packed_runner(self):
        if self._runner is None and self._backend().packed_supported:
            from codesift.embed.scheduler import PackedRunner

            self._runner = PackedRunner(self.backend)
        return self._runner

    def embed_ids(self, ids: Sequence[Sequence[int]], batch_size: int = DEFAULT_BATCH_SIZE, *,
                  progress: Progress | None = None, cancel: CancelToken | None = None) -> np.ndarray:
        """Embed pre-tokenized inputs, batching similar lengths together to waste little on padding.
        `progress` and `cancel` as in `embed`."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        backend = self._backend()
        out = np.zeros((len(ids), self._out_dim()), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        bounds = batch_bounds([len(ids[i]) for i in order], batch_size, getattr(backend, "groups_inputs", False))
        for start, end in bounds:
            check_cancelled(cancel, start, len(ids))
            idx = order[start:end]
            out[idx] = backend.embed_batch([ids[i] for i in idx])
            if progress is not None:
                progress(end, len(ids))
        return self.cut_to_dim(out)
