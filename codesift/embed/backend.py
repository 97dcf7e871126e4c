"""The backend contract and the one place that picks an implementation.

A backend embeds a batch of pre-tokenized inputs (id lists with the model's special tokens)
into an [n, dim] float32 array, pooled and L2-normalised as the model folder says. Errors
propagate; a backend never returns placeholder vectors. A backend that can also embed
sequences packed end to end (no padding) says so with `packed_supported` and offers
`embed_packed` (see `torch_backend.TorchBackend`), which the GPU scheduler uses.

Torch is optional (the `codesift[gpu]` extra). Without it every architecture runs on the CPU
through its numpy forward pass (`numpy_backend.NumpyBackend`); with it, through torch on any
device, the CPU included, where torch is the faster of the two.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.embed.models import architecture_for
from codesift.errors import UnsupportedDeviceError

GPU_EXTRA_HINT = "pip install 'codesift[gpu]' for GPU support, or use --device cpu"


@runtime_checkable
class Backend(Protocol):
    name: str
    is_gpu: bool
    max_tokens: int  # longest input (in tokens, specials included) the model accepts
    dim: int
    packed_supported: bool  # whether `embed_packed` runs fast on this device

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray: ...


def torch_available() -> bool:
    """Whether torch imports here (it is the `gpu` extra, not a requirement)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def load_backend(files: ModelFiles, device: str | None = "auto", dtype: str | None = None,
                 normalize: bool | None = None, engine: str | None = None):
    """Dispatch on (architecture, device): the one place that knows which implementation runs what.

    engine: "torch" or "numpy"; by default torch where it is installed, else numpy (CPU only).
    Every registered architecture runs on torch (cpu, cuda, mps) and on numpy (cpu). An unknown
    architecture is an UnsupportedModelError naming the supported ones, an unavailable device an
    UnsupportedDeviceError (without torch, any device but cpu names the `gpu` extra).
    """
    arch = architecture_for(files.config, source=str(files.root / "config.json"))
    wanted = (device or "auto").lower()
    if engine is None:
        engine = "torch" if torch_available() else "numpy"
    if engine == "numpy":
        if wanted not in ("auto", "cpu"):
            why = "the numpy engine runs on the CPU only" if torch_available() else "torch is not installed"
            raise UnsupportedDeviceError(f"device {device!r} needs torch ({why}); {GPU_EXTRA_HINT}")
        from codesift.embed.numpy_backend import NumpyBackend

        return NumpyBackend(arch, files, dtype=dtype, normalize=normalize)
    if engine != "torch":
        raise ValueError(f"unknown engine {engine!r}; use torch or numpy")
    from codesift.embed.torch_backend import TorchBackend

    return TorchBackend(arch, files, device=device, dtype=dtype, normalize=normalize)
