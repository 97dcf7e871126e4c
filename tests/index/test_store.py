"""The store on its own: schema creation under concurrency, transactions."""
from __future__ import annotations

import threading

import pytest

from codesift.index.store import SCHEMA_VERSION, Store


def test_concurrent_creation_migrates_once(tmp_path):
    errors, barrier = [], threading.Barrier(6)

    def open_store():
        try:
            barrier.wait()
            with Store(tmp_path / "idx", create=True) as s:
                assert s.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_transaction_rolls_back_on_error(tmp_path):
    with Store(tmp_path, create=True) as s:
        s.set_meta(a="1")
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.set_meta(a="2")
                raise RuntimeError("boom")
        assert s.get_meta("a") == "1"


def test_integrity_check_skipped_only_while_the_file_is_as_checked(tmp_path, embedder):
    """quick_check reads every page (seconds on a large index): a run skips it when the database
    file is exactly as the last completed run left it, and checks again once anything touched it."""
    import os

    from codesift.index.indexer import index_tree

    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text("def alpha():\n    return 1\n")
    index_dir = tmp_path / "index"
    index_tree(root, index_dir, embedder=embedder, workers=1)

    def checks() -> list[str]:
        seen: list[str] = []
        with Store(index_dir) as store:
            store.db.set_trace_callback(seen.append)
            store.check_integrity()
        return [s for s in seen if "quick_check" in s]

    assert checks() == []
    db = index_dir / "index.db"
    os.utime(db, ns=(db.stat().st_atime_ns, db.stat().st_mtime_ns + 1))  # as any write would
    assert len(checks()) == 1


def test_merge_plan_groups_are_bounded():
    """Many small segments of a size are merged; merging them all into one would hold their vectors
    in memory at once. Groups stay under MERGED_ROWS live rows. A first build's segments, one per
    full transaction, are left as they are."""
    from codesift.index.vectors import MAX_SMALL_SEGMENTS, MERGED_ROWS, SEGMENT_ROWS, SegmentInfo, merge_plan

    assert merge_plan([SegmentInfo(i, SEGMENT_ROWS + i, 0) for i in range(1, 46)]) == []
    many = [SegmentInfo(i, 5000, 0) for i in range(1, 46)]
    groups = merge_plan(many)
    assert sorted(i for g in groups for i in g) == list(range(1, 46))
    assert all(len(g) > 1 and 5000 * len(g) <= MERGED_ROWS for g in groups)
    few = [SegmentInfo(i, 100, 0) for i in range(1, MAX_SMALL_SEGMENTS + 1)]
    assert merge_plan(few) == []  # not yet too many
    assert merge_plan([SegmentInfo(1, 10_000, 5_000), SegmentInfo(2, 200_000, 0)]) == [[1]]  # mostly dead: rewritten
    # a first build's segments and an edit's tiny one: the edit must not rewrite the build's vectors
    build = [SegmentInfo(i, 8192 - 100 * i, 0) for i in range(1, MAX_SMALL_SEGMENTS + 1)]
    assert merge_plan(build + [SegmentInfo(99, 12, 0)]) == []
    edits = [SegmentInfo(100 + i, 10 + i, 0) for i in range(MAX_SMALL_SEGMENTS + 1)]
    assert merge_plan(build + edits) == [[s.id for s in edits]]


def test_usearch_and_numpy_rank_alike():
    """Segments above NUMPY_MAX_VECTORS are scored by usearch's exact int8 kernel: the same
    candidates, in the same order, with cosines close to numpy's on the same int8 vectors."""
    import numpy as np

    from codesift.index import vectors as v

    rng = np.random.default_rng(7)
    data = v.quantize(rng.standard_normal((20_000, 64)).astype(np.float32))
    query = rng.standard_normal(64).astype(np.float32)
    query /= np.linalg.norm(query)
    pos, cos = v._top_usearch(data, query, 50)
    sims = v._cosines_numpy(data, query)
    best = np.argsort(-sims)[:50]
    assert len(set(pos.tolist()) & set(best.tolist())) >= 48  # int8 query rounding may swap near-ties
    assert np.allclose(cos, sims[pos], atol=0.02)


def test_segments_keep_their_vector_lengths_and_large_ones_score_by_dot_products(tmp_path):
    """A large segment is scored by int8 dot products over stored lengths: the same chunks and
    cosines as the cosine kernel, which computes the lengths again for every pair."""
    import numpy as np

    from codesift.index import vectors as v

    rng = np.random.default_rng(5)
    n = v.NUMPY_MAX_VECTORS  # two vectors per chunk: twice the numpy limit
    data = v.quantize(rng.standard_normal((n, 2, 32)).astype(np.float32))
    v.write_segment(tmp_path, 3, np.arange(100, 100 + n), data)
    seg = v.Segment.open(tmp_path, 3)
    exact = np.linalg.norm(data.astype(np.float64), axis=-1)
    assert seg.norms.dtype == np.float32 and np.allclose(seg.norms, exact, rtol=1e-6)
    query = rng.standard_normal(32).astype(np.float32)
    by_dots = v.top_chunks([seg], query, 50)
    by_cosines = v.top_chunks([v.Segment(3, seg.rowids, seg.vectors, None)], query, 50)  # no lengths
    assert set(by_dots) == set(by_cosines)
    assert all(abs(by_dots[r] - by_cosines[r]) < 1e-5 for r in by_dots)
    best = max(by_dots, key=by_dots.get)
    without_best = v.top_chunks([seg.with_dead([best - 100])], query, 50)  # its segment row tombstoned
    assert len(without_best) == 50 and best not in without_best


def test_segments_written_before_lengths_were_kept_get_them(tmp_path):
    import numpy as np

    from codesift.index import vectors as v

    data = v.quantize(np.random.default_rng(6).standard_normal((10, 2, 8)).astype(np.float32))
    v.write_segment(tmp_path, 1, np.arange(10), data)
    norms_path = v.segment_paths(tmp_path, 1)[2]
    kept = np.load(norms_path)
    norms_path.unlink()  # as a segment of an older codesift
    assert v.Segment.open(tmp_path, 1).norms is None
    assert v.write_missing_norms(tmp_path, [1]) > 0 and np.array_equal(np.load(norms_path), kept)
    assert v.write_missing_norms(tmp_path, [1]) == 0
    assert v.remove_segment_files(tmp_path, [1]) == 0  # a segment's three files are all kept


def test_merged_segment_is_the_live_rows_in_order_read_a_block_at_a_time(tmp_path, monkeypatch):
    """A merge streams the segments' files block by block (its memory does not grow with the rows it
    rewrites): the segment it writes holds their live rows, in order, with their lengths."""
    import numpy as np

    from codesift.index import vectors

    monkeypatch.setattr(vectors, "BLOCK_ROWS", 3)  # blocks that straddle segments and dead rows
    rng = np.random.default_rng(1)
    parts, want_rows, want_vecs = [], [], []
    for seg_id, (n, dead) in enumerate([(7, [0, 4]), (5, []), (4, [0, 1, 2, 3]), (6, [5])], start=1):
        rowids = np.arange(100 * seg_id, 100 * seg_id + n, dtype=np.int64)
        vecs = rng.integers(-127, 128, size=(n, 2, 8), dtype=np.int8)
        vectors.write_segment(tmp_path, seg_id, rowids, vecs)
        parts.append(vectors.Segment.open(tmp_path, seg_id, dead))
        live = np.setdiff1d(np.arange(n), dead)
        want_rows.append(rowids[live])
        want_vecs.append(vecs[live])
    rowids, written = vectors.write_merged_segment(tmp_path, 9, parts)
    merged = vectors.Segment.open(tmp_path, 9)
    assert np.array_equal(rowids, np.concatenate(want_rows)) and np.array_equal(merged.rowids, rowids)
    assert np.array_equal(np.asarray(merged.vectors), np.concatenate(want_vecs))
    assert np.allclose(merged.norms, np.linalg.norm(np.concatenate(want_vecs).astype(np.float32), axis=-1))
    assert written == sum(p.stat().st_size for p in vectors.segment_paths(tmp_path, 9))
    assert not list(tmp_path.glob("vectors/*.tmp*"))
