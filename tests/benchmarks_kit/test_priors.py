"""benchmarks/priors.py ranks again from cached candidates exactly as the searcher ranks."""
from __future__ import annotations

from dataclasses import replace

import pytest

from codesift.index.indexer import index_tree
from codesift.search.searcher import DEFAULT_CONFIG
from tests.benchmarks_kit import benchmark_module
from tests.index.repo import make_repo


@pytest.fixture(scope="module")
def priors():
    return benchmark_module("priors")


def test_replay_equals_the_searcher_under_any_weights(tmp_path, embedder, priors):
    root = make_repo(tmp_path / "repo")
    # a test file and a changelog that share words with the source, so the role weights reorder
    (root / "tests").mkdir()
    (root / "tests" / "test_server.py").write_text(
        "from src.server import HttpServer\n\n\ndef test_start_the_http_server():\n"
        "    server = HttpServer('localhost', 0)\n    server.start()\n    server.stop()\n")
    (root / "CHANGELOG.md").write_text("# Changes\n\n## 1.1\n\n- start the http server on any port\n"
                                       "- load the configuration from json\n")
    index_dir = tmp_path / "index"
    index_tree(root, index_dir, embedder=embedder, workers=1)
    queries = ["start the http server", "load the configuration from a json file", "HttpServer.stop",
               "what changed in 1.1", "stop serving files"]
    target = {"path": "src/server.py", "start_line": 11, "end_line": 13}
    corpus = priors.Corpus("repo", index_dir, [(q, [target]) for q in queries])
    settings = [DEFAULT_CONFIG, replace(DEFAULT_CONFIG, role_weights=(), kind_weights=()),
                replace(DEFAULT_CONFIG, role_weights=(("test", 0.1), ("changelog", 0.2)), kind_weights=(("class", 0.3),)),
                replace(DEFAULT_CONFIG, role_weights=(("docs", 0.1),), skipped_roles=())]
    orders = set()
    for cfg in settings:
        assert corpus.replay_matches(cfg) == len(queries)
        orders.add(str(corpus.ranked(cfg)))
    assert len(orders) > 1  # the weights did reorder something: the check above compared real work
    # a weight set to 1.0 is dropped, others kept in order
    cfg = priors.with_weight(priors.with_weight(DEFAULT_CONFIG, "role", "test", 1.0), "kind", "module", 0.5)
    assert "test" not in dict(cfg.role_weights) and dict(cfg.kind_weights)["module"] == 0.5
