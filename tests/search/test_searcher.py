"""The dense half's use of two vectors per chunk (text and head), on vectors made by hand."""
from __future__ import annotations

import numpy as np


def test_a_chunk_is_as_close_as_the_nearer_of_its_text_and_head():
    from codesift.index.vectors import Segment, quantize, top_chunks

    dim = 16
    q = np.zeros(dim, np.float32)
    q[0] = 1.0
    fake = np.zeros((3, 2, dim), np.float32)
    fake[:, 0, 1] = 1.0  # every text vector orthogonal to the query
    for i, cos in enumerate((0.2, 0.9, 0.5)):  # heads: the second chunk's is nearest
        fake[i, 1, 0], fake[i, 1, 2] = cos, np.sqrt(1 - cos * cos)
    seg = Segment(1, np.array([10, 11, 12]), quantize(fake), None)
    scores = top_chunks([seg], q, 3)
    assert max(scores, key=scores.get) == 11
    assert np.isclose(scores[11], 0.9, atol=0.01) and np.isclose(scores[10], 0.2, atol=0.01)
    # the ablation's switch: text vectors alone
    assert all(np.isclose(v, 0.0, atol=0.01) for v in top_chunks([seg], q, 3, use_head=False).values())
    # a tombstoned row is never scored
    assert 11 not in top_chunks([seg.with_dead([1])], q, 3)


def test_a_hybrid_search_encodes_on_a_thread_and_hands_back_its_errors(tmp_path, embedder):
    """The query is encoded on a thread of its own while BM25 runs: its results are the same as
    with the vector given, and a model that cannot be loaded is still the search's error."""
    import threading

    import pytest

    from codesift.errors import StoreError
    from codesift.index.indexer import index_tree
    from codesift.search.searcher import Searcher
    from tests.index.repo import make_repo

    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    searcher = Searcher(repo / ".codesift")
    try:
        query = "load the configuration from a json file"
        given = searcher.search(query, qvec=searcher.encode_queries([query])[0])
        assert [r.chunk.id for r in searcher.search(query)] == [r.chunk.id for r in given]
    finally:
        searcher.close()
    broken = Searcher(repo / ".codesift", model=str(tmp_path / "no-such-model"))
    try:
        with pytest.raises(StoreError, match="cannot be loaded now"):
            broken.search("load the configuration")
        assert not any(t.name == "codesift-search" for t in threading.enumerate())
        assert broken.search("load the configuration", mode="bm25")  # the lexical half needs no model
    finally:
        broken.close()
