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

from codesift.index.document import embed_text
from codesift.search.searcher import SearchResult

# What the second stage's model reads of a chunk: the text the index's model reads (path, name and
# context header, identifiers spelled as words), which the MS MARCO cross-encoder, trained on web
# prose, ranked better than the raw content on every eval set (benchmarks/rerank_quality.py, RESULTS.md).
passage_text: Callable = embed_text


def unit(v: np.ndarray) -> np.ndarray:
    """`v` scaled to [0, 1] over the candidates (min-max, as the first stage fuses its two lists);
    all zeros where every value is the same."""
    v = np.asarray(v, dtype=np.float64)
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def combine(fused: Sequence[float], ce: np.ndarray, weight: float) -> np.ndarray:
    """The second stage's scores: its model's alone when `weight` >= 1, else
    weight * ce + (1 - weight) * fused, both scaled by `unit`."""
    ce = np.asarray(ce, dtype=np.float64)
    if weight >= 1 or len(ce) < 2:
        return ce
    return weight * unit(ce) + (1 - weight) * unit(fused)


def rerank_order(fused: Sequence[float], ce: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(order of the candidates, best first; their combined scores). Ties keep the first stage's order."""
    scores = combine(fused, ce, weight)
    order = np.argsort(-scores, kind="stable")
    return order, scores[order]


def rerank(query: str, results: list, model, depth: int, weight: float) -> list:
    """The first `depth` of `results` (SearchResults, best first) re-ordered by the second stage,
    with its scores; the rest follow unchanged."""
    head, tail = results[:depth], results[depth:]
    if len(head) < 2:
        return results
    ce = model.predict(query, [passage_text(r.chunk) for r in head])
    order, scores = rerank_order([r.score for r in head], ce, weight)
    return [SearchResult(head[i].chunk, float(s)) for i, s in zip(order, scores)] + tail
