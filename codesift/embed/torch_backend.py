"""Our torch encoders as a backend: any registered architecture on cpu, cuda or mps."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from codesift.embed.batches import pad_batch
from codesift.embed.model_files import ModelFiles
from codesift.embed.models import Architecture
from codesift.embed.models.layers import load_module, packed_attention_supported
from codesift.embed.pooling import normalize, pool, pool_packed
from codesift.errors import UnsupportedDeviceError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
          "float16": torch.float16, "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


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
    """One of our torch encoders on one device: padded batches (`embed_batch`) and, where flash
    varlen attention runs this architecture, packed batches (`embed_packed`); both pool and
    normalise as the model folder says."""

    def __init__(self, arch: Architecture, files: ModelFiles, device: str | torch.device | None = "auto",
                 dtype: str | torch.dtype | None = None, normalize: bool | None = None):
        self.arch, self.files = arch, files
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.dtype = resolve_dtype(dtype, self.device)
        self.normalize = files.normalize if normalize is None else normalize
        cfg = arch.read_config(files.config, source=str(files.root / "config.json"))
        from codesift.embed.weights_file import open_weights

        mapping = arch.map_weights(open_weights(files.weights), cfg)  # checks every tensor first
        self.model = load_module(arch.torch_module(), cfg, files.weights, mapping, self.device, self.dtype)
        self.max_tokens = files.max_tokens  # longest input (in tokens, specials included) accepted
        self.dim = files.hidden_size  # pooled width; Embedder applies files.truncate_dim (Matryoshka)
        self.is_gpu = self.device.type in ("cuda", "mps")
        self.name = f"torch-{arch.name}-{self.device}-{str(self.dtype).removeprefix('torch.')}"
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)
        # whether `embed_packed` runs fast here (flash varlen attention), not just correctly
        self.packed_supported = (self.model.packs_with_flash
                                 and packed_attention_supported(self.device, self.dtype))

    def pad(self, batch: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and mask as int64 tensors on the CPU."""
        ids, mask = pad_batch(batch, self.pad_id, self.max_tokens)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    @torch.inference_mode()
    def forward_padded(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled (and normalised) float32 vectors on the device for a padded batch."""
        ids = ids.to(self.device, non_blocking=True)
        mask = mask.to(self.device, non_blocking=True)
        out = pool(self.model(ids, mask), mask, self.files.pooling)
        return normalize(out) if self.normalize else out

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """[n, dim] float32 vectors for pre-tokenized inputs (id lists with the model's specials)."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = self.pad(batch)
        return self.forward_padded(ids, mask).cpu().numpy()

    @torch.inference_mode()
    def embed_packed(self, ids: torch.Tensor, positions: torch.Tensor, seg_ids: torch.Tensor,
                     cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        """Pooled (and normalised) float32 vectors [segments, dim] on the device for sequences packed
        end to end (layout: `scheduler.fill_packed`): ids, positions within each sequence and the
        segment of each token [tokens]; cu_seqlens [segments + 1] int32 offsets; max_seqlen bounds
        every segment. Without flash attention (`packed_supported` False) it is correct but slow."""
        hidden = self.model.forward_packed(ids, positions, cu_seqlens, max_seqlen)
        out = pool_packed(hidden, seg_ids, cu_seqlens, self.files.pooling)
        return normalize(out) if self.normalize else out
