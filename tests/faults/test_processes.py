"""#9, #10, #15: index runs meet signals and each other.

kill -9 must not leave the worker processes behind; Ctrl-C (SIGINT) and SIGTERM end a run
at once with a one-line message and the shell's status for the signal, keeping what was
committed; a second run on the same index waits for the first and then has nothing to do."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from codesift.chunk import chunk_file
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from tests.faults.helpers import alive, children, committed_files, make_tree, start_index, wait_for

N_FILES = 200
MINIFIED = 40  # bytes enough (over 1 MiB) for the run to start worker processes


def expected_chunk_ids(root: Path) -> set[str]:
    return {c.id for p in root.rglob("*.py")
            for c in chunk_file(p.relative_to(root).as_posix(), p.read_text(), "python").chunks}


def assert_converges(root: Path, embedder) -> None:
    """The index answers from what was committed (every chunk with its vectors), and the next
    run completes it: every file, exactly the chunks of a fresh index."""
    with Store(root / ".codesift", readonly=True) as store:
        assert store.missing_vectors() == 0
    summary = index_tree(root, embedder=embedder, workers=1)
    assert summary.files == N_FILES
    with Store(root / ".codesift", readonly=True) as store:
        assert store.get_meta("state") == "complete" and store.missing_vectors() == 0
        assert {c.id for c in store.iter_chunks()} == expected_chunk_ids(root)


@pytest.mark.slow
def test_kill_9_leaves_no_workers(tmp_path, embedder):
    root = make_tree(tmp_path / "tree", N_FILES, minified=MINIFIED)
    proc = start_index(root, "--workers", "2")
    try:
        # the workers and multiprocessing's resource tracker are the run's children
        wait_for(lambda: len(children(proc.pid)) >= 3, proc, what="the worker processes started")
        wait_for(lambda: committed_files(root / ".codesift") > 0, proc, what="the first commit")
        kids = children(proc.pid)
        assert len(kids) >= 3
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 60  # generous: they notice within a fraction of a second
    while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in kids if alive(pid)], "worker processes outlived their killed parent"
    assert proc.stdout.read() == b""  # the pipe reached its end: no orphan holds it open
    assert_converges(root, embedder)


@pytest.mark.slow
@pytest.mark.parametrize("signum, status, word, group", [
    (signal.SIGINT, 130, "interrupted", False), (signal.SIGTERM, 143, "terminated", False),
    (signal.SIGINT, 130, "interrupted", True),  # Ctrl-C in a terminal: the workers get it too
], ids=["sigint", "sigterm", "ctrl-c-to-the-group"])
def test_signal_while_embedding(tmp_path, embedder, signum, status, word, group):
    """#10: one line, the shell's status for the signal, no abort, workers gone, commits kept."""
    root = make_tree(tmp_path / "tree", N_FILES, minified=MINIFIED)
    proc = start_index(root, "--workers", "2", session=group)
    try:
        wait_for(lambda: committed_files(root / ".codesift") > 0, proc, what="the first commit")
        kids = children(proc.pid)
        seen = committed_files(root / ".codesift")
        assert seen < N_FILES, "the run finished before it could be stopped"
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        proc.wait(timeout=120)  # a bound for a hung process, not a measure of speed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert proc.returncode == status, (proc.returncode, err)
    assert "Traceback" not in err and "terminate called" not in err and "core dumped" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{word}:") and "run `codesift index` again" in lines[0], err
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in kids if alive(pid)]
    with Store(root / ".codesift", readonly=True) as store:
        assert store.counts()["files"] >= seen  # what was committed stays
        assert store.get_meta("state") == "indexing"
    assert_converges(root, embedder)


@pytest.mark.slow
def test_two_index_runs_at_once(tmp_path, embedder):
    """#15: the second run waits for the first, then finds nothing to embed."""
    root = make_tree(tmp_path / "tree", 120)
    first = start_index(root, "--workers", "1", quiet=False)
    second = None
    try:
        # the database appears only once the first run holds the index's lock
        wait_for(lambda: (root / ".codesift" / "index.db").exists(), first, what="the first run began")
        second = start_index(root, "--workers", "1", quiet=False)
        out = [(p.wait(timeout=600), p.stderr.read().decode()) for p in (first, second)]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert [code for code, _ in out] == [0, 0], out
    embedded = [int(re.search(r"\((\d+) vectors embedded", err).group(1)) for _, err in out]
    assert embedded == [2 * 120, 0], out  # two vectors per chunk, one chunk per file: once in all
    assert "waiting for it to finish" in out[1][1], out[1][1]
    assert re.search(r"indexed 120 files \(0 new, 0 changed, 0 deleted, 120 unchanged\)", out[1][1]), out[1][1]
    with Store(root / ".codesift", readonly=True) as store:
        assert store.get_meta("state") == "complete" and store.counts()["files"] == 120
        assert {c.id for c in store.iter_chunks()} == expected_chunk_ids(root)
        assert store.missing_vectors() == 0
