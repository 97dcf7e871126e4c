"""Torch pieces every architecture uses: tables without random init, activations, attention over
packed sequences, and loading a module straight from its weights file."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from codesift.embed.models.common import ModelConfig

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}

# Flash attention needs an Ampere (compute capability 8) or newer GPU.
FLASH_MIN_CAPABILITY = 8


class Table(nn.Module):
    """An embedding table with no random init: its values are about to be overwritten by the file's."""

    def __init__(self, n: int, dim: int, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, dim, device=device), requires_grad=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


def _varlen_attn():
    """Flash attention over packed sequences: the aten op, else torch's public varlen API (whose
    module imports torch._dynamo: seconds of a cold start, for a wrapper around the same op)."""
    flash = getattr(torch.ops.aten, "_flash_attention_forward", None)
    if flash is None:
        try:
            from torch.nn.attention.varlen import varlen_attn

            return varlen_attn
        except ImportError:
            return None

    def varlen(q, k, v, cu_q, cu_k, max_q, max_k, window_size=(-1, -1)):
        return flash(q, k, v, cu_q, cu_k, max_q, max_k, 0.0, False, False,
                     window_size_left=window_size[0], window_size_right=window_size[1])[0]

    return varlen


def packed_attention_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the fast packed path exists here: flash varlen attention is CUDA fp16/bf16 only."""
    return (device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and _varlen_attn() is not None
            and torch.cuda.get_device_capability(device)[0] >= FLASH_MIN_CAPABILITY)


def packed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_seqlen: int, window: int | None = None) -> torch.Tensor:
    """Attention within each packed sequence: q, k, v [tokens, heads, head_dim] -> same shape.

    `window`: a query attends only keys at most this many positions away (local attention).
    """
    if packed_attention_supported(q.device, q.dtype):
        local = {} if window is None else {"window_size": (window, window)}  # flash bounds are inclusive
        return _varlen_attn()(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, **local)
    # Reference path (CPU, fp32): one SDPA per sequence. Correct, not fast; used by tests.
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        if e > s:
            mask = None if window is None else band_mask(e - s, window, q.device)
            seg = F.scaled_dot_product_attention(q[s:e].transpose(0, 1), k[s:e].transpose(0, 1),
                                                 v[s:e].transpose(0, 1), attn_mask=mask)
            out[s:e] = seg.transpose(0, 1)
    return out


def band_mask(t: int, window: int, device=None) -> torch.Tensor:
    """[t, t] bool: True where |query - key| <= window."""
    pos = torch.arange(t, device=device)
    return (pos[:, None] - pos[None, :]).abs() <= window


def fuse(state: dict[str, torch.Tensor], names: list[str], into: str) -> None:
    """Replace tensors `names` of `state` by one tensor `into`, concatenated along dim 0 (one matmul
    instead of several)."""
    state[into] = torch.cat([state.pop(n) for n in names], dim=0)


def load_module(module_cls: type[nn.Module], cfg: ModelConfig, weights: str | Path, mapping: dict[str, str],
                device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """Build `module_cls(cfg)` on the meta device and assign it the file's tensors (`mapping`: our
    name -> the file's name) on `device` in `dtype`, after `module_cls.prepare_state` (e.g. fusing
    q, k and v). A safetensors file is memory-mapped, so fp32 on the CPU costs no extra copy; a
    GGUF or ONNX file is dequantised tensor by tensor, each converted to `dtype` before the next is read."""
    from codesift.embed.weights_file import SafetensorsFile, open_weights

    wf = open_weights(weights)
    if not isinstance(wf, SafetensorsFile):
        state = {}
        for ours, name in mapping.items():
            t = torch.from_numpy(wf.array(name))
            state[ours] = t.to(dtype) if t.is_floating_point() else t
    else:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt", device="cpu") as f:
            state = {ours: f.get_tensor(name) for ours, name in mapping.items()}
    state = module_cls.prepare_state(state, cfg)
    state = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in state.items()}
    model = module_cls(cfg, device="meta")
    model.load_state_dict(state, assign=True, strict=True)
    return model.eval().requires_grad_(False)
