"""Issue 15 #1: a symbol split into many parts must not eat the result list. Its parts fold into
one result, and the search reads further down the ranking so that k distinct results come back."""
from __future__ import annotations

import pytest

from codesift.index.indexer import index_tree
from codesift.search.searcher import Searcher

# One function far over the chunker's line limit (many parts, each naming the function and
# mentioning the query word often), and a few small functions that mention it once.
HUGE = "def reconcile_ledger(ledger):\n" + "".join(
    f"    ledger.entries[{i}] = ledger.reconcile_entry({i})  # reconcile ledger entry {i}\n" for i in range(1500)
) + "    return ledger\n"
SMALL = {
    "close_books": "def close_books(books):\n    # reconcile before closing\n    return books.close()\n",
    "open_books": "def open_books(books):\n    # nothing to reconcile yet\n    return books.open()\n",
    "audit_books": "def audit_books(books):\n    # an audit may reconcile totals\n    return books.audit()\n",
    "print_books": "def print_books(books):\n    # printed after we reconcile\n    return str(books)\n",
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("split") / "repo"
    root.mkdir()
    (root / "ledger.py").write_text(HUGE, encoding="utf-8")
    (root / "books.py").write_text("\n\n".join(SMALL.values()), encoding="utf-8")
    index_tree(root, embedder=embedder, workers=1)
    s = Searcher(root / ".codesift")
    yield s
    s.close()


def test_the_fixture_splits_one_symbol_into_many_parts(searcher):
    parts = [c for c in searcher.store.iter_chunks("ledger.py") if c.symbol == "reconcile_ledger" and c.part]
    assert len(parts) > 3 * 4  # more parts than the old three-results-per-slot window held


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_search_returns_k_distinct_results_when_k_exist(searcher, mode, k):
    results = searcher.search("reconcile", mode=mode, k=k)
    keys = [(r.chunk.path, r.chunk.symbol) for r in results]
    assert len(results) == k and len(set(keys)) == k, keys
    assert ("ledger.py", "reconcile_ledger") in keys  # the split symbol, once


def test_fewer_results_only_when_fewer_exist(searcher):
    results = searcher.search("reconcile", mode="bm25", k=50)
    keys = [(r.chunk.path, r.chunk.symbol) for r in results]
    assert len(keys) == len(set(keys)) == 1 + len(SMALL)
