"""The MCP server's workspace in-process: what its search tool says about the index it reads."""
from __future__ import annotations

from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.serve.workspace import Workspace
from tests.index.repo import make_repo


def test_search_notes_an_index_from_an_older_codesift(tmp_path, embedder):
    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    ws = Workspace(repo, repo / ".codesift")
    out = ws.search("stop the server", mode="bm25", k=3, format="json")
    assert out["results"] and "note" not in out
    assert "note:" not in ws.search("stop the server", mode="bm25", k=3)
    with Store(repo / ".codesift") as store:
        store.set_meta(index_format="2.2.3", generation=store.generation() + 1)  # as an older codesift left it
    out = ws.search("stop the server", mode="bm25", k=3, format="json")
    assert out["results"] and "older codesift" in out["note"]
    assert "note: the index was built by an older codesift" in ws.search("stop the server", mode="bm25", k=3)
