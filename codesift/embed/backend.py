"""The backend contract and the one place that picks an implementation.

A backend embeds a batch of pre-tokenized inputs ([CLS] ... [SEP] id lists) into an
[n, dim] float32 array, L2-normalised when the model says so (the default). Errors
propagate; a backend never returns placeholder vectors.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from codesift.embed.model_files import ModelFiles
from codesift.errors import UnsupportedDeviceError, UnsupportedModelError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
          "float16": torch.float16, "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


@runtime_checkable
class Backend(Protocol):
    name: str
    is_gpu: bool
    max_tokens: int  # longest input (in tokens, specials included) the model accepts
    dim: int

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray: ...


def resolve_device(device: str | None = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu. An unavailable device is an UnsupportedDeviceError."""
    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise UnsupportedDeviceError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UnsupportedDeviceError(f"device {device!r} asked for, but torch sees no CUDA GPU "
                                         f"(torch {torch.__version__}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UnsupportedDeviceError(f"device {device!r} does not exist: "
                                         f"{torch.cuda.device_count()} CUDA device(s) visible")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UnsupportedDeviceError("device 'mps' asked for, but Metal is not available here")
    elif dev.type != "cpu":
        raise UnsupportedDeviceError(f"device type {dev.type!r} is not supported; use cpu, cuda or mps")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """fp16 by default on CUDA, fp32 elsewhere; a dtype the device cannot run is refused."""
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype.lower() not in DTYPES:
            raise UnsupportedDeviceError(f"unknown dtype {dtype!r}; use fp32, fp16 or bf16")
        dtype = DTYPES[dtype.lower()]
    if dtype == torch.float16 and device.type == "cpu":
        raise UnsupportedDeviceError("fp16 is not supported on cpu; use fp32 or bf16")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UnsupportedDeviceError(f"bf16 is not supported on {torch.cuda.get_device_name(device)}; use fp16")
    if dtype == torch.bfloat16 and device.type == "mps":
        raise UnsupportedDeviceError("bf16 is not supported on mps; use fp16 or fp32")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise UnsupportedDeviceError(f"dtype {dtype} is not supported; use fp32, fp16 or bf16")
    return dtype


class TorchBackend:
    """Our torch encoder on one device: pads a batch, runs it, pools, normalises."""

    def __init__(self, model: torch.nn.Module, files: ModelFiles, device: torch.device, dtype: torch.dtype,
                 max_tokens: int, normalize: bool):
        self.model, self.files, self.device, self.dtype = model, files, device, dtype
        self.max_tokens, self.normalize = max_tokens, normalize
        self.dim = files.dim
        self.is_gpu = device.type in ("cuda", "mps")
        self.name = f"torch-{files.model_type or 'bert'}-{device}-{str(dtype).removeprefix('torch.')}"
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)

    def pad(self, batch: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and mask as int64 tensors on the CPU."""
        n, t = len(batch), max(len(x) for x in batch)
        ids = np.full((n, t), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, t), dtype=np.int64)
        for i, x in enumerate(batch):
            if len(x) > self.max_tokens:
                raise ValueError(f"input {i} has {len(x)} tokens, over this model's limit of {self.max_tokens}")
            ids[i, :len(x)] = x
            mask[i, :len(x)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    @torch.inference_mode()
    def forward_padded(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled (and normalised) float32 vectors on the device for a padded batch."""
        from codesift.embed.pooling import normalize, pool

        ids = ids.to(self.device, non_blocking=True)
        mask = mask.to(self.device, non_blocking=True)
        hidden = self.model(ids, mask)
        out = pool(hidden, mask, self.files.pooling)
        return normalize(out) if self.normalize else out

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = self.pad(batch)
        return self.forward_padded(ids, mask).cpu().numpy()


def load_backend(files: ModelFiles, device: str | None = "auto", dtype: str | torch.dtype | None = None,
                 normalize: bool | None = None) -> TorchBackend:
    """Dispatch on (architecture, device): the one place that knows which implementation runs what."""
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    norm = files.normalize if normalize is None else normalize
    if files.model_type == "bert" or files.architecture.startswith("Bert"):
        from codesift.embed.bert import load_bert

        model = load_bert(files.weights, files.config, device=dev, dtype=dt)
        max_tokens = min(files.max_seq_length, int(files.config.get("max_position_embeddings", 512)))
        return TorchBackend(model, files, dev, dt, max_tokens, norm)
    raise UnsupportedModelError(f"{files.root}: architecture {files.architecture!r} "
                                f"(model_type {files.model_type!r}) is not supported on {dev.type}; "
                                "supported: BERT")
