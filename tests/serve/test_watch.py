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


def test_every_search_answer_says_how_fresh_the_index_is(tmp_path, embedder):
    """A search checks its results' files and every folder (a stat each: the cost follows the
    results and the folders, not the tree); a status checks every file and lists them."""
    import json
    import os

    from click.testing import CliRunner

    from codesift.cli import cli
    from codesift.serve.workspace import Workspace

    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    ws = Workspace(repo, repo / ".codesift")
    doc = ws.search("http server socket", mode="bm25", k=3, format="json")
    assert doc["index"]["indexed_at"] and doc["index"]["changed_files"] == 0
    assert doc["index"]["checked"] == "results and folders" and "changed_folders" not in doc["index"]
    assert "no result file or folder changed since" in ws.search("http server socket", mode="bm25", k=3)
    assert ws.status()["changed_files"] == 0

    docs = repo / "docs" / "guide.md"  # edited in place, not among the results: only a status sees it
    docs.write_text(docs.read_text() + "\nmore\n")
    (repo / "src" / "config.py").unlink()  # gone from a folder: the folder's stat sees it
    doc = ws.search("http server socket", mode="bm25", k=3, format="json")
    assert "src/config.py" not in {r["path"] for r in doc["results"]}
    assert doc["index"]["changed_files"] == 1 and doc["index"]["changed"] == ["src/config.py deleted"]
    assert doc["index"]["changed_folders"] == 1 and doc["index"]["folders"] == ["src"]
    text = ws.search("http server socket", mode="bm25", k=3)
    assert "1 indexed file(s) changed since (src/config.py deleted)" in text
    assert "files added, removed or renamed in 1 folder(s) (src)" in text
    status = ws.status()
    assert status["changed_files"] == 2 and set(status["changed"]) == {"docs/guide.md changed", "src/config.py deleted"}
    assert status["folders"] == ["src"]
    old = os.getcwd()
    try:
        os.chdir(repo)
        r = CliRunner().invoke(cli, ["search", "http server socket", "--mode", "bm25", "-k", "3"])
        assert r.exit_code == 0 and "1 indexed file(s) changed since" in r.stderr and "folder(s) (src)" in r.stderr
        r = CliRunner().invoke(cli, ["search", "http server socket", "--mode", "bm25", "--json"])
        assert json.loads(r.stdout)["index"]["changed_folders"] == 1
        r = CliRunner().invoke(cli, ["status", "--json"])
        info = json.loads(r.stdout)
        assert info["changed_files"] == 2 and info["changed_folders"] == ["src"]
        assert set(info["changed"]) == {"docs/guide.md changed", "src/config.py deleted"}
        r = CliRunner().invoke(cli, ["status"])
        assert "2 indexed file(s) changed on disk since indexing" in r.stdout and "docs/guide.md changed" in r.stdout
        index_tree(repo, embedder=embedder, workers=1)
        r = CliRunner().invoke(cli, ["search", "http server socket", "--mode", "bm25", "-k", "3"])
        assert "no result file or folder changed since" in r.stderr
        assert json.loads(CliRunner().invoke(cli, ["status", "--json"]).stdout)["changed_files"] == 0
    finally:
        os.chdir(old)


def test_the_mcp_workspace_keeps_its_index_fresh(tmp_path, embedder):
    from codesift.serve.workspace import Workspace

    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    ws = Workspace(repo, repo / ".codesift", device="cpu")
    ws._embedder = embedder  # the model already loaded by this session (the server loads it on its first run)
    ws.watch(quiet_ms=100, max_wait_ms=1000)
    try:
        assert _poll(lambda: ws.watcher.stats.runs >= 1)
        (repo / "src" / "quota.py").write_text("def enforce_upload_quota(user, size):\n    return size < user.quota\n")

        def fresh_and_found() -> bool:
            doc = ws.search("enforce_upload_quota", mode="bm25", k=3, format="json")
            return (any(r.get("symbol") == "enforce_upload_quota" for r in doc["results"])
                    and doc["index"]["changed_files"] == 0)

        assert _poll(fresh_and_found), ws.status()
        # the run's summary is recorded just after its commit, which the search may see first
        assert _poll(lambda: ws.status()["watch"]["runs"] >= 2 and ws.status()["job"]["state"] == "done")
        status = ws.status()
        assert status["watch"]["running"] and "last_error" not in status["watch"]
    finally:
        ws.stop_watching()
    assert not ws.watcher.running


def test_codesift_watch_indexes_then_stops_cleanly_on_ctrl_c(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = make_repo(tmp_path / "repo")
    root = Path(__file__).resolve().parents[2]
    # PYTHONFAULTHANDLER: if it ever hangs, SIGABRT below makes it print every thread's stack
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "PYTHONFAULTHANDLER": "1"}

    def default_sigint() -> None:
        # Tests run by a shell in the background (`.ci/run &`) start with SIGINT ignored, and a child
        # inherits that: Python then installs no KeyboardInterrupt handler and Ctrl-C never arrives
        # (this test hung so in full background runs, with either engine). A terminal's watch has it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-c", "from codesift.cli import main; main()", "watch", str(repo),
                             "--device", "cpu", "--quiet-ms", "100"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        assert _poll(lambda: (repo / ".codesift" / "index.db").is_file() and _complete(repo / ".codesift")
                     or proc.poll() is not None), "no index was built"
        assert proc.poll() is None, proc.stderr.read()
        (repo / "src" / "cache.py").write_text("def evict_stale_entries(cache):\n    cache.clear()\n")
        assert _poll(lambda: _found(repo / ".codesift", "evict_stale_entries")), "the edit was not indexed"
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints where each thread is stuck
            err = proc.communicate(timeout=WAIT_S)[1]
            raise AssertionError(f"codesift watch did not end after Ctrl-C; its threads:\n{err[-8000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            err = proc.communicate()[1]
    assert proc.returncode == 0, err
    assert "watching" in err and "stopped watching after" in err and "Traceback" not in err, err
    assert "(1 new, 0 changed" in err, err  # the run that indexed the new file said so


def _complete(index_dir) -> bool:
    from codesift.index.store import Store

    try:
        with Store(index_dir, readonly=True) as store:
            return store.get_meta("state") == "complete"
    except Exception:
        return False


def test_codesift_watch_refuses_a_system_root_before_loading_anything():
    from click.testing import CliRunner

    from codesift.cli import cli

    r = CliRunner().invoke(cli, ["watch", "/"])
    assert r.exit_code == 1 and "--force" in r.stderr and "Traceback" not in r.output
