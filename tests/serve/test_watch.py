"""The watcher in-process, on a real temp tree with the real default model: an edit becomes
searchable, a concurrent index run takes turns with it, and it stops when asked."""
from __future__ import annotations

import time

from codesift.index.indexer import index_tree
from codesift.search.searcher import Searcher
from codesift.serve.watch import Watcher
from tests.index.repo import make_repo

# Generous: the bound is only there so that a broken watcher fails instead of hanging.
WAIT_S = 120.0


def _poll(condition, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _found(index_dir, name: str) -> bool:
    searcher = Searcher(index_dir)
    try:
        return any(r.chunk.symbol == name for r in searcher.search(name, mode="bm25", k=5))
    finally:
        searcher.close()


def test_an_edit_becomes_searchable_and_a_deleted_file_goes(tmp_path, embedder):
    repo = make_repo(tmp_path / "repo")
    index_dir = repo / ".codesift"
    runs: list[str] = []

    def run_index() -> str:
        return index_tree(repo, index_dir, embedder=embedder, workers=1).line()

    watcher = Watcher(repo, index_dir, run_index, quiet_ms=100, max_wait_ms=1000,
                      on_run=lambda summary, error: runs.append(summary or error)).start()
    try:
        assert _poll(lambda: watcher.stats.runs >= 1), "the catch-up run never happened"
        assert watcher.stats.last_error is None, watcher.stats.last_error
        assert not _found(index_dir, "rotate_access_log")

        (repo / "src" / "logs.py").write_text("def rotate_access_log(path, keep=5):\n"
                                              "    return [f'{path}.{i}' for i in range(keep)]\n")
        assert _poll(lambda: _found(index_dir, "rotate_access_log")), runs

        (repo / "src" / "logs.py").unlink()
        assert _poll(lambda: not _found(index_dir, "rotate_access_log")), runs
        assert watcher.stats.failures == 0, runs
    finally:
        watcher.stop()
    assert not watcher.running


def test_a_concurrent_index_run_takes_turns_with_the_watcher(tmp_path, embedder):
    repo = make_repo(tmp_path / "repo")
    index_dir = repo / ".codesift"
    watcher = Watcher(repo, index_dir, lambda: index_tree(repo, index_dir, embedder=embedder, workers=1).line(),
                      quiet_ms=50, max_wait_ms=200).start()
    try:
        assert _poll(lambda: watcher.stats.runs >= 1)
        for i in range(3):  # edits that start watcher runs while `codesift index` runs here too
            (repo / "src" / f"extra_{i}.py").write_text(f"def concurrent_helper_{i}():\n    return {i}\n")
            index_tree(repo, index_dir, embedder=embedder, workers=1)
        assert _poll(lambda: all(_found(index_dir, f"concurrent_helper_{i}") for i in range(3)))
        assert watcher.stats.failures == 0, watcher.stats.last_error
    finally:
        watcher.stop()
    assert not watcher.running


def test_events_in_the_index_folder_start_no_run(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".codesift").mkdir(parents=True)
    watcher = Watcher(repo, repo / ".codesift", lambda: "ran", catch_up=False)
    assert not watcher.relevant(None, str(repo / ".codesift" / "index.db-wal"))
    assert not watcher.relevant(None, str(repo / ".codesift.rebuild" / "index.db"))
    assert not watcher.relevant(None, str(repo / ".git" / "index"))
    assert watcher.relevant(None, str(repo / "src" / "app.py"))
    assert watcher.relevant(None, str(repo / ".codesiftignore"))
