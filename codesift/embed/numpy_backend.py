"""Our numpy encoders as a backend: any registered architecture on the CPU, without torch.

The same forward passes as the query encoder (`models/<arch>.py`), over the memory-mapped
safetensors file. This is what the CPU embeds with, torch installed or not: measured on two
busy cores, it kept up with torch's CPU backend and skips importing torch
(`backend.load_backend` picks it; CODESIFT_ENGINE=torch asks for torch instead).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from codesift.embed.batches import pad_batch
from codesift.embed.model_files import ModelFiles
from codesift.embed.models import Architecture
from codesift.embed.pooling import normalize_array, pool_array
from codesift.errors import UnsupportedDeviceError

FP32_NAMES = ("none", "auto", "fp32", "float32")  # as str(dtype).lower()
# Tokens (padding included) per forward pass: a batch is run in groups about this size, so that
# the activations of each group stay in cache through the element-wise passes.
GROUP_TOKENS = 2048


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_BLAS = None


def one_blas_thread():
    """A context in which BLAS (numpy's OpenBLAS) runs on one thread."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def length_groups(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Positions of inputs, longest first, cut into runs of at most `budget` padded tokens
    (a run's padded size is its count times its longest length; an input longer than the
    budget runs alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and (len(out[-1]) + 1) * lengths[out[-1][0]] <= budget:
            out[-1].append(i)
        else:
            out.append([i])
    return out


class CpuWorkers:
    """Runs one function over work items on threads of this process, one per core
    ($CODESIFT_CPU_THREADS), each item whole on its thread (the CPU engines release the GIL while
    they compute); inline when there is one thread or one item. The threads start on first use."""

    def __init__(self, name: str, n: int | None = None):
        self.n = int(n or os.environ.get("CODESIFT_CPU_THREADS") or usable_cores())
        self.name = name
        self._pool = None

    def run(self, fn, items: Sequence) -> None:
        if self.n > 1 and len(items) > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.n, thread_name_prefix=self.name)
            list(self._pool.map(fn, items))
        else:
            for item in items:
                fn(item)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class CpuDevice:
    """Stands in for `torch.device("cpu")` where code asks a backend for `.device.type`."""

    type = "cpu"
    index = None

    def __str__(self) -> str:
        return "cpu"


class NumpyBackend:
    """One of our numpy encoders: padded batches in float32 on the CPU, pooled and normalised as
    the model folder says."""

    packed_supported = False
    is_gpu = False

    def __init__(self, arch: Architecture, files: ModelFiles, dtype: str | None = None,
                 normalize: bool | None = None):
        if str(dtype).lower() not in FP32_NAMES:
            raise UnsupportedDeviceError(f"dtype {dtype!r} is not supported by the numpy CPU backend; use fp32")
        self.arch, self.files = arch, files
        source = str(files.root / "config.json")
        self.model = arch.numpy_model(files.weights, arch.read_config(files.config, source=source))
        self.normalize = files.normalize if normalize is None else normalize
        self.max_tokens = files.max_tokens  # longest input (in tokens, specials included) accepted
        self.dim = files.hidden_size  # pooled width; Embedder applies files.truncate_dim (Matryoshka)
        self.device = CpuDevice()
        self.dtype = "fp32"
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)
        self.name = f"numpy-{arch.name}-cpu-fp32"
        # Groups run in parallel, one per core, each with one BLAS thread: BLAS threads on these
        # small products spend more time waiting for each other than computing, the more so on a
        # busy machine. The groups take turns at the products themselves (models/common.BLAS_TURN).
        self.workers = CpuWorkers("codesift-numpy")

    def memory(self) -> dict[str, int]:
        """Bytes of the weights this backend holds in memory: those read so far (the file is
        memory-mapped; a weight is converted to float32 when first used)."""
        if self.model is None:
            return {}
        weights = getattr(self.model, "w", None)
        cache = getattr(weights, "_cache", {})
        return {"cpu": sum(a.nbytes for a in cache.values())}

    def close(self) -> None:
        self.model = None
        self.workers.close()

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """[n, dim] float32 vectors for pre-tokenized inputs (id lists with the model's specials)."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = pad_batch(batch, self.pad_id, self.max_tokens, mask_dtype=np.float32)
        n, t = ids.shape
        out = np.empty((n, self.dim), dtype=np.float32)
        step = max(1, GROUP_TOKENS // t)

        def run(s: int) -> None:
            out[s:s + step] = pool_array(self.model.forward(ids[s:s + step], mask[s:s + step]),
                                         mask[s:s + step], self.files.pooling)

        starts = range(0, n, step)
        with one_blas_thread():
            self.workers.run(run, starts)
        return normalize_array(out) if self.normalize else out
