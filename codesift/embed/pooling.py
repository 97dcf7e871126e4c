"""Pooling token states into one vector per input, as `1_Pooling/config.json` says: torch tensors
(`pool`, `pool_packed`) and numpy arrays (`pool_array`). No torch import here: the numpy backend
and the query encoder pool without it."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """hidden [b, t, h], mask [b, t] (1 = real token) -> [b, h] in float32."""
    hidden = hidden.float()
    m = mask.to(hidden.dtype).unsqueeze(-1)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":  # right padding: the last real token of each row
        import torch

        last = mask.long().sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if mode == "max":
        return hidden.masked_fill(m == 0, -1e9).amax(dim=1)
    summed = (hidden * m).sum(dim=1)
    counts = m.sum(dim=1).clamp(min=1e-9)
    if mode == "mean":
        return summed / counts
    if mode == "mean_sqrt_len":
        return summed / counts.sqrt()
    raise ValueError(f"unknown pooling mode {mode!r}")


def normalize(x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.normalize(x, p=2, dim=-1)


def pool_array(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """`pool` for numpy: hidden [b, t, h], mask [b, t] (1 = real token) -> [b, h] float32."""
    m = mask.astype(hidden.dtype, copy=False)[..., None]
    if mode == "cls":
        v = hidden[:, 0]
    elif mode == "lasttoken":  # the last real token of each (right-padded) input
        v = hidden[np.arange(len(hidden)), np.maximum(mask.sum(1).astype(np.int64), 1) - 1]
    elif mode == "max":
        v = np.where(m > 0, hidden, np.float32(-1e9)).max(1)
    elif mode in ("mean", "mean_sqrt_len"):
        count = np.maximum(m.sum(1), np.float32(1e-9))
        v = (hidden * m).sum(1) / (np.sqrt(count) if mode == "mean_sqrt_len" else count)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}")
    return v.astype(np.float32, copy=False)


def normalize_array(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (as F.normalize: a zero row stays zero)."""
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), np.float32(1e-12))).astype(np.float32, copy=False)


def pool_packed(hidden: torch.Tensor, seg_ids: torch.Tensor, cu_seqlens: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool sequences packed end to end: hidden [tokens, h], seg_ids [tokens] (sequence of each token),
    cu_seqlens [n + 1] offsets -> [n, h] float32. Segments of length 0 give zeros."""
    n, h = cu_seqlens.numel() - 1, hidden.shape[1]
    hidden = hidden.float()
    if mode == "cls":
        return hidden[cu_seqlens[:-1].long().clamp(max=hidden.shape[0] - 1)]
    if mode == "lasttoken":
        return hidden[(cu_seqlens[1:].long() - 1).clamp(min=0)]
    seg = seg_ids.long()
    if mode == "max":
        init = hidden.new_full((n, h), -1e9)
        return init.scatter_reduce(0, seg.unsqueeze(1).expand(-1, h), hidden, "amax", include_self=True)
    sums = hidden.new_zeros((n, h)).index_add_(0, seg, hidden)
    counts = (cu_seqlens[1:] - cu_seqlens[:-1]).to(hidden.dtype).clamp(min=1).unsqueeze(1)
    if mode == "mean":
        return sums / counts
    if mode == "mean_sqrt_len":
        return sums / counts.sqrt()
    raise ValueError(f"unknown pooling mode {mode!r}")


def truncate_and_normalize(vecs: np.ndarray, dim: int, normalize: bool) -> np.ndarray:
    """Matryoshka: the first `dim` values of each vector, re-normalised when the model normalises."""
    if vecs.shape[1] == dim:
        return vecs
    out = np.ascontiguousarray(vecs[:, :dim])
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
