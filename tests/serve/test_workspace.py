"""The MCP server's workspace in-process: what its search tool says about the index it reads."""
from __future__ import annotations

import json

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


def test_results_from_files_changed_since_indexing_carry_a_note(tmp_path, embedder):
    """Issue 15 #4 (in part): a stale index says so about the results it returns."""
    import os

    from click.testing import CliRunner

    from codesift.cli import cli

    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    ws = Workspace(repo, repo / ".codesift")
    assert "changed since indexing" not in ws.search("http server socket", mode="bm25", k=3)
    (repo / "src" / "server.py").unlink()
    config = repo / "src" / "config.py"
    config.write_text(config.read_text() + "\n# edited\n")
    text = ws.search("server configuration", k=10)
    assert "src/server.py deleted" in text and "src/config.py changed" in text and "codesift index" in text
    doc = ws.search("http server socket", mode="bm25", k=3, format="json")
    assert "src/server.py deleted" in doc["note"]
    old = os.getcwd()
    try:
        os.chdir(repo)
        r = CliRunner().invoke(cli, ["search", "http server socket", "--mode", "bm25", "-k", "3"])
        assert r.exit_code == 0 and "src/server.py deleted" in r.stderr
        r = CliRunner().invoke(cli, ["search", "http server socket", "--mode", "bm25", "-k", "3", "--json"])
        assert "src/server.py deleted" in json.loads(r.stdout)["note"]
    finally:
        os.chdir(old)
