"""The second stage of search: the first stage's best candidates re-ordered by a second model.

The first stage (BM25 and vectors, fused) ranks the whole index in milliseconds, but from two
separate views of the query and the chunk, through the index's small model. The second stage's
model (`embed/rerankers.py`) judges better and costs more per chunk: a cross-encoder reads the
query and a chunk together, an embedding model larger than the index's compares their vectors.
So it reads only the first stage's top `depth` candidates, and what it says is combined with the
fused score at a `weight` (`Searcher.rerank_settings`: the model kind's own, or the config's).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from codesift.index.document import embed_text, head_text
from codesift.search.searcher import SearchResult

# What the second stage's model reads of a chunk, by the names of the views it lists (`views`):
# "text", the text the index's model reads (path, name and context header, identifiers spelled as
# words), which the MS MARCO cross-encoder, trained on web prose, ranked better than the raw content
# on every eval set; "head", the chunk's head alone (path, name, signature), which an embedding
# model reads besides the text, as the first stage does (benchmarks/rerank_quality.py, RESULTS.md).
VIEWS: dict[str, Callable] = {"text": embed_text, "head": head_text}


def unit(v: np.ndarray) -> np.ndarray:
    """`v` scaled to [0, 1] over the candidates (min-max, as the first stage fuses its two lists);
    all zeros where every value is the same."""
    v = np.asarray(v, dtype=np.float64)
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def combine(fused: Sequence[float], scores: np.ndarray, weight: float,
            shares: Sequence[float] = (1.0,)) -> np.ndarray:
    """The second stage's scores. `scores`: the model's, [n], or [n, views] with each view's share of
    the model's `weight` in `shares`. Each is scaled by `unit`; weight * (the model's, by share) +
    (1 - weight) * fused, or the model's alone when `weight` >= 1 (its raw scores for one view)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if len(shares) != scores.shape[1]:
        raise ValueError(f"{scores.shape[1]} scores per candidate but {len(shares)} shares of the weight")
    if len(scores) < 2 or (weight >= 1 and scores.shape[1] == 1):
        return scores[:, 0]
    model = sum(share * unit(scores[:, j]) for j, share in enumerate(shares))
    if weight >= 1:
        return model
    return weight * model + (1 - weight) * unit(fused)


def rerank_order(fused: Sequence[float], scores: np.ndarray, weight: float,
                 shares: Sequence[float] = (1.0,)) -> tuple[np.ndarray, np.ndarray]:
    """(order of the candidates, best first; their combined scores). Ties keep the first stage's order."""
    combined = combine(fused, scores, weight, shares)
    order = np.argsort(-combined, kind="stable")
    return order, combined[order]


def rerank(query: str, results: list, model, depth: int, weight: float) -> list:
    """The first `depth` of `results` (SearchResults, best first) re-ordered by the second stage,
    with its scores; the rest follow unchanged. The model reads each chunk's `views`, shared as its
    `view_shares` say (`embed/rerankers.py`)."""
    head, tail = results[:depth], results[depth:]
    if len(head) < 2:
        return results
    passages = [VIEWS[view](r.chunk) for r in head for view in model.views]
    scores = np.asarray(model.predict(query, passages)).reshape(len(head), len(model.views))
    order, combined = rerank_order([r.score for r in head], scores, weight, model.view_shares)
    return [SearchResult(head[i].chunk, float(s)) for i, s in zip(order, combined)] + tail
