"""The backend contract and the one place that picks an implementation.

A backend embeds a batch of pre-tokenized inputs (id lists with the model's special tokens)
into an [n, dim] float32 array, pooled and L2-normalised as the model folder says. Errors
propagate; a backend never returns placeholder vectors. A backend that can also embed
sequences packed end to end (no padding) says so with `packed_supported` and offers
`embed_packed` (see `torch_backend.TorchBackend`), which the GPU scheduler uses. A backend whose
`embed_batch` cuts any number of inputs into runs of its own says so with `groups_inputs`, and
is given many inputs at once (`batches.batch_bounds`).

Torch is optional (the `codesift[gpu]` extra). On the CPU, BERT-family and MPNet models run in ONNX
Runtime (`ort_backend.OrtBackend`, fp32 or int8) where it is installed, and every architecture runs
through its numpy forward pass (`numpy_backend.NumpyBackend`), torch installed or not; torch runs
GPUs, and the CPU in bf16 or when asked for (engine "torch", or CODESIFT_ENGINE=torch).
"""
from __future__ import annotations

import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.embed.models import architecture_for
from codesift.embed.numpy_backend import FP32_NAMES
from codesift.embed.ort_backend import FILE_INT8, INT8_NAMES, ort_available
from codesift.errors import UnsupportedDeviceError

AUTO_NAMES = ("none", "auto")  # no dtype given (as str(dtype).lower())
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


def check_device(device: str | None) -> None:
    """Raise the UnsupportedDeviceError that loading would, for a device that needs torch where torch
    is not installed; cheap (nothing imported), so a run can say so before it starts any work."""
    from importlib.util import find_spec

    if (device or "auto").lower() in ("auto", "cpu"):
        return
    try:
        missing = find_spec("torch") is None
    except ImportError:
        missing = True
    if missing:
        raise UnsupportedDeviceError(f"device {device!r} needs torch (torch is not installed); {GPU_EXTRA_HINT}")


def load_backend(files: ModelFiles, device: str | None = "auto", dtype: str | None = None,
                 normalize: bool | None = None, engine: str | None = None):
    """Dispatch on (architecture, device): the one place that knows which implementation runs what.

    engine: "onnx", "numpy" or "torch"; default `$CODESIFT_ENGINE`, else on the CPU in fp32 or int8
    ONNX Runtime for the models it runs (BERT family, MPNet) where installed, numpy for the others
    (both ran faster there than torch), and torch on GPUs or in fp16/bf16. Every registered
    architecture runs on torch (cpu, cuda, mps) and on numpy (cpu). dtype int8 is ONNX Runtime's
    alone, and what it runs for BERT-family models when no dtype is given (as fp16 on a GPU: faster,
    at search quality measured the same; "fp32" asks for fp32; `onnx_graph.default_cpu_dtype`).
    An unknown architecture is an UnsupportedModelError naming the supported
    ones, an unavailable device an UnsupportedDeviceError (without torch, any device but cpu names
    the `gpu` extra).
    """
    arch = architecture_for(files.config, source=str(files.root / "config.json"))
    wanted = (device or "auto").lower()
    int8 = str(dtype).lower() in INT8_NAMES + (FILE_INT8,)
    engine = engine or os.environ.get("CODESIFT_ENGINE") or None
    if engine is None:
        engine = "numpy"  # decided without importing torch where the answer is the CPU in fp32
        half = str(dtype).lower() not in FP32_NAMES and not int8
        if (half or wanted != "cpu") and torch_available() and (half or _gpu_for(wanted)):
            engine = "torch"
        elif int8 or _onnx_runs(arch, files):
            engine = "onnx"
    if engine in ("numpy", "onnx"):
        if wanted not in ("auto", "cpu"):
            why = f"the {engine} engine runs on the CPU only" if torch_available() else "torch is not installed"
            raise UnsupportedDeviceError(f"device {device!r} needs torch ({why}); {GPU_EXTRA_HINT}")
    if engine == "onnx":
        if not ort_available():
            raise UnsupportedDeviceError("the onnx engine (and dtype int8) needs onnxruntime and onnx: "
                                         "pip install onnxruntime onnx, or use --dtype fp32")
        if not _onnx_runs(arch, files):
            raise UnsupportedDeviceError(f"the onnx engine (and dtype int8) runs BERT-family and MPNet models only, "
                                         f"not {arch.label}; use --dtype fp32")
        from codesift.embed.onnx_graph import default_cpu_dtype
        from codesift.embed.ort_backend import OrtBackend

        if str(dtype).lower() in AUTO_NAMES:
            dtype = default_cpu_dtype(arch.name)
        return OrtBackend(arch, files, dtype=dtype, normalize=normalize)
    if engine == "numpy":
        from codesift.embed.numpy_backend import NumpyBackend

        return NumpyBackend(arch, files, dtype=dtype, normalize=normalize)
    if engine != "torch":
        raise ValueError(f"unknown engine {engine!r}; use onnx, numpy or torch")
    from codesift.embed.torch_backend import TorchBackend

    return TorchBackend(arch, files, device=device, dtype=dtype, normalize=normalize)


def _onnx_runs(arch, files: ModelFiles) -> bool:
    """Whether ONNX Runtime is here and our ONNX graph can express this model. Not for a GGUF
    model: its weights are streamed in tensor by tensor to keep a load's peak memory at their own
    size, and building a graph and an ONNX Runtime session holds several copies of them."""
    from codesift.embed.onnx_graph import supports

    if files.weights_format == "gguf":
        return False
    return ort_available() and supports(arch.name, arch.read_config(files.config, source=str(files.root / "config.json")))


def _gpu_for(device: str) -> bool:
    """Whether torch would run `device` (auto, cuda..., mps, or a typo it will name) elsewhere than the CPU."""
    if device != "auto":
        return True  # an explicit non-cpu device: torch runs it or says why not
    from codesift.embed.torch_backend import resolve_device

    return resolve_device("auto").type != "cpu"
