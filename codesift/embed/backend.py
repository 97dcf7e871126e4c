"""The backend contract and the one place that picks an implementation.

A backend embeds a batch of pre-tokenized inputs (id lists with the model's special tokens)
into an [n, dim] float32 array, pooled and L2-normalised as the model folder says. Errors
propagate; a backend never returns placeholder vectors. A backend that can also embed
sequences packed end to end (no padding) says so with `packed_supported` and offers
`embed_packed` (see `torch_backend.TorchBackend`), which the GPU scheduler uses.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.embed.models import architecture_for


@runtime_checkable
class Backend(Protocol):
    name: str
    is_gpu: bool
    max_tokens: int  # longest input (in tokens, specials included) the model accepts
    dim: int
    packed_supported: bool  # whether `embed_packed` runs fast on this device

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray: ...


def load_backend(files: ModelFiles, device: str | None = "auto", dtype: str | None = None,
                 normalize: bool | None = None):
    """Dispatch on (architecture, device): the one place that knows which implementation runs what.

    Every registered architecture runs on torch, on cpu, cuda and mps; an unknown architecture is
    an UnsupportedModelError naming the supported ones, an unavailable device an UnsupportedDeviceError.
    """
    arch = architecture_for(files.config, source=str(files.root / "config.json"))
    from codesift.embed.torch_backend import TorchBackend

    return TorchBackend(arch, files, device=device, dtype=dtype, normalize=normalize)
