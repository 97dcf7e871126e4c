"""An indexing process killed half-way leaves an index that opens, and the next run completes it."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesift.chunk import chunk_file
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.searcher import Searcher


def make_big_repo(root: Path, n_files: int = 120) -> None:
    for i in range(n_files):
        body = "\n\n".join(
            f"def handler_{i}_{j}(request, retries={j}):\n"
            f"    # route {i}/{j}: validate, then forward to backend {j}\n"
            f"    if not request.get('token_{j}'):\n        raise PermissionError('missing token {j}')\n"
            f"    return forward(request, backend='svc{i}', retries=retries)"
            for j in range(10))
        p = root / f"pkg{i % 7}" / f"module_{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body + "\n")


def missing_vectors(store: Store) -> int:
    """Chunks lacking their vectors (text and head: one segment row holds both)."""
    return store.missing_vectors()


# The CLI as a user runs it (small tree: transactions in a thread), and the library with the
# transactions in a writer process of their own (as big runs do), killed the same way.
WRITER_PROCESS_RUN = ("from codesift.index.indexer import index_tree; import sys; "
                      "index_tree(sys.argv[1], workers=1, device='cpu', writer_process=True)")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cli", "writer_process"])
def test_killed_index_opens_and_next_run_completes(tmp_path, embedder, how):
    repo = tmp_path / "big"
    make_big_repo(repo)
    db = repo / ".codesift" / "index.db"
    args = (["-m", "codesift.cli", "index", str(repo), "--workers", "1", "--device", "cpu", "-q"] if how == "cli"
            else ["-c", WRITER_PROCESS_RUN, str(repo)])
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    committed = con.execute("SELECT count(*) FROM files").fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    committed = 0
                if committed > 0:
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "indexing finished before it could be killed"
    assert 0 < committed < 120

    # the half-built index opens and answers, and says it is incomplete
    with Store(repo / ".codesift") as store:
        assert missing_vectors(store) == 0  # every committed chunk has its text and head vectors
    s = Searcher(repo / ".codesift")
    assert s.incomplete
    assert s.search("missing token validation", mode="bm25", k=3)
    assert s.search("missing token validation", mode="hybrid", k=3)
    s.close()

    summary = index_tree(repo, embedder=embedder, workers=1)
    assert summary.unchanged + summary.new == 120 and summary.unchanged >= committed
    expected = {c.id for p in sorted(repo.rglob("*.py"))
                for c in chunk_file(p.relative_to(repo).as_posix(), p.read_text(), "python").chunks}
    with Store(repo / ".codesift") as store:
        assert store.get_meta("state") == "complete"
        assert {c.id for c in store.iter_chunks()} == expected
        assert missing_vectors(store) == 0
