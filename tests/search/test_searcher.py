"""Searcher parts that need an index but not the model: the dense half's use of two vectors."""
from __future__ import annotations

import numpy as np

from dataclasses import replace

from codesift.index.indexer import index_tree
from codesift.search.searcher import DEFAULT_CONFIG, Searcher
from tests.index.repo import make_repo


def test_a_chunk_is_as_close_as_the_nearer_of_its_text_and_head(tmp_path, embedder):
    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    s = Searcher(repo / ".codesift")
    try:
        rows, mat = s.dense()
        assert mat.shape == (len(rows), 2, s.dim)
        q = np.zeros(s.dim, np.float32)
        q[0] = 1.0
        fake = np.zeros((3, 2, s.dim), np.float32)
        fake[:, 0, 1] = 1.0  # every text vector orthogonal to the query
        fake[0, 1, 0], fake[1, 1, 0], fake[2, 1, 0] = 0.2, 0.9, 0.5  # heads: the second chunk's is nearest
        s._dense = (rows[:3], fake)
        scores = s.semantic_scores(q, None, 3)
        assert max(scores, key=scores.get) == int(rows[1])
        assert np.isclose(scores[int(rows[1])], 0.9) and np.isclose(scores[int(rows[0])], 0.2)
        s.config = replace(DEFAULT_CONFIG, head_vectors=False)  # the ablation's switch: text vectors alone
        assert all(np.isclose(v, 0.0) for v in s.semantic_scores(q, None, 3).values())
    finally:
        s.close()
