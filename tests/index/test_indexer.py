"""Indexing a tree and keeping it up to date, with the real model and the real store."""
from __future__ import annotations

from pathlib import Path

import pytest

from codesift.errors import ModelMismatchError, StoreError
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.searcher import Searcher
from tests.index.repo import make_repo


@pytest.fixture()
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def index(repo: Path, embedder, **kw):
    return index_tree(repo, embedder=embedder, workers=1, **kw)


def top_paths(repo: Path, query: str, mode: str = "hybrid", k: int = 3) -> list[str]:
    s = Searcher(repo / ".codesift")
    try:
        return [r.chunk.path for r in s.search(query, mode=mode, k=k)]
    finally:
        s.close()


def test_index_reports_and_searches(repo, embedder):
    summary = index(repo, embedder)
    assert summary.new == summary.files == 7  # 3 code, 1 md, package.json, notes.txt, .gitignore
    reasons = {s.rel: s.reason for s in summary.skipped}
    assert reasons["logo.png"] == "binary"
    assert reasons["huge.txt"].startswith("too large")
    assert summary.decode_errors == 1
    assert "skipped" in summary.line() and "invalid UTF-8" in summary.line()
    for mode in ("hybrid", "bm25", "semantic"):
        assert top_paths(repo, "load the configuration from a json file", mode)[0] == "src/config.py", mode
    assert "src/geometry.rs" in top_paths(repo, "euclidean distance between two points", "semantic")
    with Store(repo / ".codesift") as store:
        paths = {c.path for c in store.iter_chunks()}
        assert "build/generated.py" not in paths and "debug.log" not in paths
        assert store.get_meta("state") == "complete"
        md = [c for c in store.iter_chunks("docs/guide.md") if "APP_" in c.content][0]
        assert md.heading_path == ("User guide", "Configuration", "Environment variables")



def test_a_first_build_merges_its_bm25_segments_only_at_its_end(repo, embedder):
    """FTS5's automatic merges are off while a first build commits (each commit adds a segment,
    and merging them as they come rewrote the BM25 index over and over) and on again once it is
    complete, for the edits that follow."""
    def automerge(index_dir: Path):
        with Store(index_dir, readonly=True) as store:
            row = store.db.execute("SELECT v FROM terms_fts_config WHERE k = 'automerge'").fetchone()
            return row[0] if row else None

    during = []
    index(repo, embedder, progress=lambda *_: during.append(automerge(repo / ".codesift")))
    assert during and set(during) == {0}
    assert automerge(repo / ".codesift") == 4
    (repo / "src/config.py").write_text((repo / "src/config.py").read_text() + "\n\ndef reload_config():\n    pass\n")
    assert index(repo, embedder).changed == 1
    assert automerge(repo / ".codesift") == 4
    assert top_paths(repo, "reload_config", "bm25")[0] == "src/config.py"

def test_incremental_updates(repo, embedder):
    first = index(repo, embedder)
    again = index(repo, embedder)
    assert (again.new, again.changed, again.deleted, again.embedded) == (0, 0, 0, 0)
    assert again.unchanged == first.files

    # edit one function: only what changed is embedded again
    cfg = repo / "src/config.py"
    cfg.write_text(cfg.read_text().replace('startswith("APP_")', 'startswith("MYAPP_")'))
    edit = index(repo, embedder)
    assert (edit.changed, edit.new, edit.deleted) == (1, 0, 0)
    with Store(repo / ".codesift") as store:
        n_cfg = len(list(store.iter_chunks("src/config.py")))
    assert 1 <= edit.embedded < n_cfg + 1 and edit.embedded <= 2

    # add, delete
    (repo / "src/cache.py").write_text("def lru_cache_get(cache, key):\n    return cache.get(key)\n")
    (repo / "src/geometry.rs").unlink()
    upd = index(repo, embedder)
    assert (upd.new, upd.deleted, upd.changed) == (1, 1, 0)
    assert "src/geometry.rs" not in top_paths(repo, "distance between two points", "semantic", k=10)

    # rename: the file's chunks are embedded again, text and head (both name the path), nothing else
    with Store(repo / ".codesift") as store:
        n_server = len(list(store.iter_chunks("src/server.py")))
    (repo / "src/server.py").rename(repo / "src/http_server.py")
    ren = index(repo, embedder)
    assert (ren.new, ren.deleted) == (1, 1)
    assert ren.embedded == 2 * n_server
    assert top_paths(repo, "stop the http server and close its socket")[0] == "src/http_server.py"
    with Store(repo / ".codesift") as store:  # every chunk's vectors where the index says; dead rows counted
        assert store.missing_vectors() == 0
        segments = store.segments()
        assert sum(s.rows - s.dead for s in segments) == store.counts()["chunks"]
        assert sum(s.dead for s in segments) == sum(len(v) for v in store.dead_rows().values())


def test_touched_file_not_reembedded(repo, embedder):
    index(repo, embedder)
    import os

    p = repo / "src/config.py"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    s = index(repo, embedder)
    assert (s.changed, s.embedded, s.unchanged) == (0, 0, 7)


def _other_model(model_files, tmp_path) -> Path:
    """A copy of the default model with one weight changed: same architecture, other weights."""
    from safetensors.numpy import load_file, save_file

    from tests.embed.test_model_files import copy_model

    folder = copy_model(model_files.root, tmp_path / "other-model", link_weights=False)
    t = load_file(str(model_files.weights))
    t["encoder.layer.0.output.dense.bias"] = t["encoder.layer.0.output.dense.bias"] + 0.01
    save_file(t, str(folder / "model.safetensors"))
    return folder


def test_model_mismatch_refused(repo, embedder, model_files, tmp_path):
    index(repo, embedder)
    other = _other_model(model_files, tmp_path)
    with pytest.raises(ModelMismatchError, match="--rebuild"):
        index_tree(repo, model=str(other), workers=1, device="cpu")
    with pytest.raises(ModelMismatchError, match="rebuild"):
        Searcher(repo / ".codesift", model=str(other)).search("config", mode="semantic")
    # the refused run changed nothing
    assert top_paths(repo, "load the configuration from a json file")[0] == "src/config.py"
    rebuilt = index_tree(repo, model=str(other), workers=1, device="cpu", rebuild=True)
    assert rebuilt.new == 7
    with Store(repo / ".codesift") as store:
        assert store.get_meta("model_name") == str(other.resolve())


def test_damaged_or_newer_index(repo, embedder):
    index(repo, embedder)
    db = repo / ".codesift" / "index.db"
    with Store(repo / ".codesift") as store:
        store.db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer codesift"):
        Searcher(repo / ".codesift")
    for p in db.parent.glob("index.db*"):
        p.unlink()
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="--rebuild"):
        Searcher(repo / ".codesift")
    assert index(repo, embedder, rebuild=True).new == 7


def test_index_dir_elsewhere_and_foreign_root(repo, embedder, tmp_path):
    idx = tmp_path / "idx"
    index(repo, embedder, index_dir=idx)
    assert not (repo / ".codesift").exists() and (idx / "index.db").exists()
    other = make_repo(tmp_path / "other")
    with pytest.raises(StoreError, match="belongs to"):
        index(other, embedder, index_dir=idx)


def test_segments_merge_as_edits_accumulate(repo, embedder):
    """Each run appends a segment; small ones are merged once there are too many, and tombstones
    leave with the rows they mark. Search answers the same throughout."""
    from codesift.index.vectors import MAX_DEAD_FRACTION, MAX_SMALL_SEGMENTS

    index(repo, embedder)
    p = repo / "src/config.py"
    original = p.read_text()
    counts = []
    for i in range(MAX_SMALL_SEGMENTS + 3):
        p.write_text(original + f"\n\ndef helper_{i}(x):\n    return x + {i}\n")
        index(repo, embedder)
        with Store(repo / ".codesift") as store:
            assert store.missing_vectors() == 0
            counts.append(len(store.segments()))
    assert max(counts) <= MAX_SMALL_SEGMENTS + 1  # merged on the way, not one more per run
    with Store(repo / ".codesift") as store:
        assert all(s.dead <= MAX_DEAD_FRACTION * s.rows for s in store.segments())
        files = {x.name for x in (repo / ".codesift" / "vectors").iterdir()}
        assert files == {f"seg-{s.id:08d}.{kind}.npy" for s in store.segments() for kind in ("i8", "rows", "norms")}
    assert top_paths(repo, "load the configuration from a json file", "semantic")[0] == "src/config.py"


def test_writer_process_does_the_run_ends_work(repo, embedder, tmp_path, monkeypatch):
    """A big run's writer process merges segments while the run goes on, and at the latest once the
    last batch is in, then makes the indexes a first build deferred, so the run's end (finish_index,
    in the indexing process) has neither left to do: here it is kept from doing them at all, and
    they are done all the same, into the index a run in one process writes."""
    import shutil

    import codesift.index.indexer as indexer
    import codesift.index.pipeline as pipeline
    from codesift.index.store import SECONDARY_INDEXES
    from codesift.index.vectors import MAX_SMALL_SEGMENTS

    for i in range(MAX_SMALL_SEGMENTS + 4):
        (repo / f"src/extra_{i}.py").write_text(f"def extra_{i}(x):\n    return x * {i + 2}\n")
    other = tmp_path / "other"
    shutil.copytree(repo, other)
    monkeypatch.setattr(pipeline, "BATCH_CHUNKS", 1)  # a transaction, and a segment, per file
    a = index_tree(repo, embedder=embedder, workers=1, writer_process=False)
    monkeypatch.setattr(indexer, "merge_plan", lambda segments: [])  # not in this process
    monkeypatch.setattr(Store, "ensure_indexes", lambda self: None)
    b = index_tree(other, embedder=embedder, workers=1, writer_process=True)
    assert a.files == b.files > MAX_SMALL_SEGMENTS + 1
    with Store(other / ".codesift") as store:
        made = {name for (name,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert set(SECONDARY_INDEXES) <= made
        assert len(store.segments()) <= MAX_SMALL_SEGMENTS
        assert store.missing_vectors() == 0
        files = {x.name for x in (other / ".codesift" / "vectors").iterdir()}
        assert files == {f"seg-{s.id:08d}.{kind}.npy" for s in store.segments() for kind in ("i8", "rows", "norms")}
    assert _contents(repo / ".codesift") == _contents(other / ".codesift")
    assert top_paths(other, "load the configuration from a json file", "semantic")[0] == "src/config.py"


def test_minified_files_skipped_and_reported(repo, embedder):
    bundle = "var a=1;" + ";".join(f"function f{i}(x){{return x*{i}}}" for i in range(3000)) + "\n"
    (repo / "dist").mkdir()
    (repo / "dist" / "app.min.js").write_text(bundle)
    # one long line (an embedded image) in a file that is mostly prose is kept
    image = "![logo](data:image/png;base64," + "A" * 30_000 + ")\n"
    prose = "".join(f"Paragraph {i} explains how the release is signed and uploaded.\n\n" for i in range(600))
    (repo / "docs" / "release.md").write_text("# Release\n\n" + image + prose)
    summary = index(repo, embedder)
    reasons = {s.rel: s.reason for s in summary.skipped}
    assert reasons["dist/app.min.js"].startswith("minified or generated (a line of ")
    assert "docs/release.md" not in reasons
    assert "1 minified or generated" in summary.line()
    with Store(repo / ".codesift") as store:
        paths = {c.path for c in store.iter_chunks()}
    assert "dist/app.min.js" not in paths and "docs/release.md" in paths


def test_minified_rule():
    from codesift.index.prepare import minified

    assert minified(["x" * 25_000]) is not None
    assert minified(["short"] * 10) is None
    assert minified(["x" * 25_000] + ["y" * 80] * 1000) is None  # mostly ordinary lines
    assert minified([]) is None


def test_index_from_before_vector_segments_is_upgraded(repo, embedder):
    """An index of schema 2 (vectors and terms inside the database) answers as it is, read-only;
    the next run moves it to segments without embedding anything again, and drops the old tables."""
    from tests.index.legacy import write_schema2_index

    write_schema2_index(repo, repo / ".codesift", embedder)
    s = Searcher(repo / ".codesift")
    assert s.outdated and not s.incomplete
    assert s.store.schema == 2  # read as it is: a search never migrates
    s.close()
    assert top_paths(repo, "load the configuration from a json file", "semantic")[0] == "src/config.py"
    assert top_paths(repo, "load_config", "bm25")[0] == "src/config.py"

    formats_during = []

    def progress(*_):  # a run stopped half-way must leave the old format, so the next one redoes every file
        with Store(repo / ".codesift", readonly=True) as other:
            formats_during.append(other.get_meta("index_format"))

    up = index(repo, embedder, progress=progress)
    assert formats_during and set(formats_during) == {"2.2.3.1"}
    assert up.reformatted and "index format updated" in up.line()
    assert up.changed == up.files and up.embedded == 0 and up.reused == 2 * up.chunks
    with Store(repo / ".codesift") as store:
        assert store.legacy == () and store.missing_vectors() == 0
        tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "vectors" not in tables and "chunks_fts" not in tables
    s = Searcher(repo / ".codesift")
    assert not s.outdated
    s.close()
    assert top_paths(repo, "load the configuration from a json file", "semantic")[0] == "src/config.py"
    assert top_paths(repo, "load_config", "bm25")[0] == "src/config.py"



def test_index_of_schema_5_is_upgraded_with_its_rows_and_calls(repo, embedder):
    """Schema 6 copies the chunks table (chunk ids lose their UNIQUE constraint for an index a first
    build defers): every row, call and answer survives the copy, which must not run the cascades
    a dropped table's rows would."""
    from tests.index.legacy import make_schema5

    index(repo, embedder)
    make_schema5(repo / ".codesift")
    before = _contents(repo / ".codesift")
    with Store(repo / ".codesift", readonly=True) as old:
        assert old.schema == 5
        calls = old.db.execute("SELECT chunk_rowid, name FROM calls ORDER BY 1, 2").fetchall()
    assert calls
    with Store(repo / ".codesift") as store:  # opened for writing: migrated
        assert store.schema == 6
        assert store.db.execute("SELECT chunk_rowid, name FROM calls ORDER BY 1, 2").fetchall() == calls
        names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'chunks'")}
        assert "chunks_id" in names and not any(n.startswith("sqlite_autoindex_chunks") for n in names)
        some = next(store.iter_chunks())
        assert store.chunk_by_id(some.id).rowid == some.rowid
    assert _contents(repo / ".codesift") == before
    make_schema5(repo / ".codesift")  # again, for the run that meets it
    again = index(repo, embedder)
    assert again.changed == 0 and again.upgraded_schema == (5, 6)
    assert "index database upgraded from schema 5 to 6" in again.line()
    assert index(repo, embedder).upgraded_schema is None
    assert top_paths(repo, "load_config", "bm25")[0] == "src/config.py"


def _contents(index_dir: Path) -> tuple:
    """Everything a search reads: chunk rows, BM25 answers, each chunk's stored vectors."""
    import numpy as np

    with Store(index_dir, readonly=True) as store:
        chunks = sorted((c.id, c.path, c.start_line, c.end_line, c.symbol, c.content) for c in store.iter_chunks())
        bm25 = {q: sorted(store.chunks_by_rowid([r for r, _ in store.bm25(q, (1.0, 1.0, 1.0), 5)]).values(),
                          key=lambda c: c.id)
                for q in ('"config"', '"distance"', '"server"')}
        vectors = {}
        for seg in store.open_segments():
            for i, (rowid, vec) in enumerate(zip(seg.rowids.tolist(), seg.vectors)):
                if seg.live is None or seg.live[i]:
                    vectors[rowid] = vec
        by_id = {c.rowid: c.id for c in store.iter_chunks()}
        vecs = sorted((by_id[r], np.asarray(v).tobytes()) for r, v in vectors.items() if r in by_id)
    return chunks, {q: [c.id for c in v] for q, v in bm25.items()}, vecs


def test_writer_process_and_worker_pool_write_what_one_process_writes(repo, embedder, tmp_path, monkeypatch):
    """Big runs write from a process of their own, with files prepared in worker processes (rows
    sent pickled whole): forced here on a small tree, the index must be the one a single process
    writes, through a first build, an edit, a deletion and a touch."""
    import os
    import shutil

    import codesift.index.prepare as prepare

    other = tmp_path / "other"
    shutil.copytree(repo, other)
    monkeypatch.setattr(prepare, "POOL_FILES", 1)
    monkeypatch.setattr(prepare, "POOL_BYTES", 0)

    def both(**kw):
        a = index_tree(repo, embedder=embedder, workers=1, writer_process=False, **kw)
        b = index_tree(other, embedder=embedder, workers=2, writer_process=True, **kw)
        assert (a.new, a.changed, a.deleted, a.unchanged, a.embedded) == (b.new, b.changed, b.deleted, b.unchanged,
                                                                           b.embedded)
        assert _contents(repo / ".codesift") == _contents(other / ".codesift")
        return b

    assert both().new == 7
    for root in (repo, other):
        cfg = root / "src/config.py"
        cfg.write_text(cfg.read_text().replace('startswith("APP_")', 'startswith("MYAPP_")'))
        (root / "src/geometry.rs").unlink()
        p = root / "src/server.py"
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    b = both()
    assert (b.changed, b.deleted, b.unchanged) == (1, 1, 5)
