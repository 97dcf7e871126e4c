"""Combining ranked lists. Pure functions over {key: score} dicts."""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence


def ranks(scores: Mapping[Hashable, float]) -> dict[Hashable, int]:
    """1-based ranks by descending score (ties broken by key for determinism)."""
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return {key: i + 1 for i, (key, _) in enumerate(ordered)}


def reciprocal_rank_fusion(rankings: Sequence[Mapping[Hashable, float]], weights: Sequence[float] | None = None,
                           k: float = 60.0) -> dict[Hashable, float]:
    """RRF: sum over lists of weight / (k + rank). Robust to the lists' incomparable score scales."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[Hashable, float] = {}
    for scores, w in zip(rankings, weights):
        for key, r in ranks(scores).items():
            fused[key] = fused.get(key, 0.0) + w / (k + r)
    return fused


def normalized_fusion(lists: Sequence[Mapping[Hashable, float]], weights: Sequence[float] | None = None
                      ) -> dict[Hashable, float]:
    """Weighted sum of each list's scores min-max normalised over its own candidates to [0, 1];
    a candidate missing from a list gets 0 from it. Unlike RRF it keeps how far ahead the best
    candidates are, which matters when one retriever is confident and the other is not."""
    weights = weights or [1.0] * len(lists)
    fused: dict[Hashable, float] = {}
    for scores, w in zip(lists, weights):
        if not scores:
            continue
        lo, hi = min(scores.values()), max(scores.values())
        span = hi - lo
        for key, s in scores.items():
            fused[key] = fused.get(key, 0.0) + w * ((s - lo) / span if span > 0 else 1.0)
    return fused


def top_k(scores: Mapping[Hashable, float], k: int) -> list[tuple[Hashable, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
