"""#2: searches answer from the committed state, in every mode, while an index is built or
after an update was killed: every chunk returned is committed and scored by its own vector.

"Its own vector" is checked from outside the index: a result's dense score must equal the
query's similarity to the chunk's current texts (text and head) embedded afresh. A stale
vector (the old text's, or another chunk's) scores far from that."""
from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from codesift.errors import StoreError

from codesift.index.document import embed_text, head_text
from codesift.index.store import Store
from codesift.search.searcher import Searcher
from tests.faults.helpers import committed_files, make_tree, start_index, wait_for

N_FILES = 200
TOLERANCE = 0.03  # int8 vectors, and the numpy query encoder against the torch one


def assert_own_vectors(searcher: Searcher, raw: dict[int, float], rows: dict, qvec: np.ndarray) -> None:
    """Every dense score in `raw` is the query's similarity to its chunk's own texts (embedded afresh)."""
    assert set(raw) <= set(rows), "a result that is not a committed chunk"
    ids = list(raw)
    vecs = searcher.encode_queries([t for r in ids for t in (embed_text(rows[r]), head_text(rows[r]))])
    own = (vecs @ qvec).reshape(len(ids), 2).max(axis=1)
    for rowid, expected in zip(ids, own):
        assert abs(raw[rowid] - expected) < TOLERANCE, (rows[rowid].path, raw[rowid], expected)


def check_answers_from_committed_state(searcher: Searcher, probe_paths: list[str], tag: str) -> int:
    """Check, within one snapshot, searches for chunks committed and not (yet) committed; returns
    how many files the snapshot held."""
    store = searcher.store
    with store.snapshot():
        rows = {r.rowid: r for r in store.iter_chunks()}
        by_path = {r.path: r for r in rows.values()}
        assert store.missing_vectors() == 0
        for path in probe_paths:
            i = int(Path(path).stem.split("_")[1])
            row = by_path.get(path)
            committed_with_tag = row is not None and f"{tag}_handler_{i}" in row.content
            # bm25: the file's own function name finds it exactly when its text is committed
            hits = searcher.search(f"{tag}_handler_{i}", mode="bm25", k=3)
            assert (bool(hits) and hits[0].chunk.path == path) == committed_with_tag, (path, hits)
            assert all(h.chunk.rowid in rows for h in hits)
            if row is None:
                continue
            # semantic: the chunk's exact text finds that chunk first, at similarity ~1, and every
            # chunk returned is scored by its own current text
            qvec = searcher.encode_queries([embed_text(row)])[0]
            raw = searcher.semantic_scores(qvec, None, 3)
            assert max(raw, key=raw.get) == row.rowid and raw[row.rowid] > 1 - TOLERANCE
            assert_own_vectors(searcher, raw, rows, qvec)
            for mode in ("hybrid", "semantic"):
                assert all(h.chunk.rowid in rows for h in searcher.search(row.content, mode=mode, k=5, qvec=qvec))
        return len(by_path)


def probe_paths(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("mod_*.py"))[::40]  # 5 files


@pytest.mark.slow
def test_searches_while_a_first_index_is_built_and_after_a_killed_update(tmp_path):
    root = make_tree(tmp_path / "tree", N_FILES)
    index_dir = root / ".codesift"
    probes = probe_paths(root)

    proc = start_index(root, "--workers", "1")
    partial_checks = 0
    try:
        wait_for(lambda: committed_files(index_dir) > 0, proc, what="the first commit")
        searcher = Searcher(index_dir)
        while proc.poll() is None and partial_checks < 3:
            held = check_answers_from_committed_state(searcher, probes, "alpha")
            partial_checks += 0 < held < N_FILES
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert partial_checks >= 1, "the index was complete before any search could run during the build"
    assert check_answers_from_committed_state(searcher, probes, "alpha") == N_FILES
    searcher.close()

    # every file rewritten (new names, new words); the update run is killed half-way
    with Store(index_dir, readonly=True) as store:
        old_rows = {r.path: r for r in store.iter_chunks() if r.path in probes}
    make_tree(root, N_FILES, tag="beta")
    proc = start_index(root, "--workers", "1")
    try:
        wait_for(lambda: _files_with(index_dir, "beta_handler") > 0, proc, what="the first updated files")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    updated = _files_with(index_dir, "beta_handler")
    assert 0 < updated < N_FILES, "the update finished before it could be killed"
    searcher = Searcher(index_dir)
    assert check_answers_from_committed_state(searcher, probes, "beta") == N_FILES
    # the deleted text of an updated file: no chunk answers it with a vector not its own (the
    # failure was the new chunk at similarity 1.0, carrying the old text's vector)
    with searcher.store.snapshot():
        rows = {r.rowid: r for r in searcher.store.iter_chunks()}
        now = {r.path: r for r in rows.values()}
        replaced = [old_rows[p] for p in probes if "beta_handler" in now[p].content]
        assert replaced, "no probed file was updated before the kill"
        for old in replaced:
            qvec = searcher.encode_queries([embed_text(old)])[0]
            assert_own_vectors(searcher, searcher.semantic_scores(qvec, None, 3), rows, qvec)
    searcher.close()


def _files_with(index_dir: Path, text: str) -> int:
    """Files whose committed chunks hold `text`, read as another process would."""
    try:
        with Store(index_dir, readonly=True) as store:  # chunk text is stored deflated: read it as the store does
            return len({c.path for c in store.iter_chunks() if text in c.content})
    except (sqlite3.Error, StoreError):
        return 0
