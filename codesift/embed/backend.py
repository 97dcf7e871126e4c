"""The backend contract and the one place that picks an implementation.

A backend embeds a batch of pre-tokenized inputs (id lists with the model's special tokens)
into an [n, dim] float32 array, pooled and L2-normalised as the model folder says. Errors
propagate; a backend never returns placeholder vectors. A backend that can also embed
sequences packed end to end (no padding) says so with `packed_supported` and offers
`embed_packed` (see `torch_backend.TorchBackend`), which the GPU scheduler uses.

Torch is optional (the `codesift[gpu]` extra). On the CPU every architecture runs through its
numpy forward pass (`numpy_backend.NumpyBackend`), torch installed or not; torch runs GPUs, and
the CPU in bf16 or when asked for (engine "torch", or CODESIFT_ENGINE=torch).
"""
from __future__ import annotations

import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.embed.models import architecture_for
from codesift.embed.numpy_backend import FP32_NAMES
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

    engine: "torch" or "numpy"; default `$CODESIFT_ENGINE`, else numpy on the CPU in fp32 (it ran
    faster there than torch, see `numpy_backend`) and torch on GPUs or in fp16/bf16. Every registered
    architecture runs on torch (cpu, cuda, mps) and on numpy (cpu). An unknown architecture is an
    UnsupportedModelError naming the supported ones, an unavailable device an UnsupportedDeviceError
    (without torch, any device but cpu names the `gpu` extra).
    """
    arch = architecture_for(files.config, source=str(files.root / "config.json"))
    wanted = (device or "auto").lower()
    engine = engine or os.environ.get("CODESIFT_ENGINE") or None
    if engine is None:
        engine = "numpy"  # decided without importing torch where the answer is the CPU in fp32
        half = str(dtype).lower() not in FP32_NAMES
        if (half or wanted != "cpu") and torch_available() and (half or _gpu_for(wanted)):
            engine = "torch"
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


def _gpu_for(device: str) -> bool:
    """Whether torch would run `device` (auto, cuda..., mps, or a typo it will name) elsewhere than the CPU."""
    if device != "auto":
        return True  # an explicit non-cpu device: torch runs it or says why not
    from codesift.embed.torch_backend import resolve_device

    return resolve_device("auto").type != "cpu"
