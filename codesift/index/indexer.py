"""Building and updating an index: walk, chunk (in worker processes), embed what is new, store.

Incremental by content: a file whose size and mtime are unchanged is not read; a file
whose bytes hash is unchanged is not re-chunked; a chunk whose embedded text is already
in the index (same text hash, e.g. a renamed file) is not re-embedded. Files are written
in batches, each in one transaction: a run killed half-way leaves a consistent index that
the next run completes.
"""
from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from codesift.embed.backend import check_device
from codesift.embed.model_files import ModelFiles, resolve_model
from codesift.errors import StoreError
from codesift.index.formats import INDEX_FORMAT
from codesift.index.model_stamp import check_model, files_at_dim
from codesift.index.document import bm25_fields
from codesift.index.pipeline import EmbedPipeline, Writer
from codesift.index.prepare import big_run, prepare_files
from codesift.index.store import DB_NAME, DEFAULT_DIR_NAME, Store, now
from codesift.index.vectors import VECTORS_DIR, merge_plan
from codesift.walk import SourceFile, Skipped, check_root, walk


@dataclass
class IndexSummary:
    root: Path
    index_dir: Path
    files: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    chunks: int = 0
    embedded: int = 0  # vectors (two per chunk: its text and its head), embedded now ...
    tokens: int = 0  # ... and the tokens they took
    reused: int = 0  # ... or found in the index
    truncated: int = 0
    decode_errors: int = 0
    fallbacks: list[Skipped] = field(default_factory=list)  # files cut into line windows: path, why
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0
    seconds: float = 0.0
    model: str = ""
    reformatted: bool = False  # the index was built by a codesift that chunked or embedded differently
    upgraded_schema: tuple[int, int] | None = None  # (from, to): the database's tables brought up to date
    vector_bytes_written: int = 0  # to vector segments, merges included
    # where the wall time went (seconds): waiting for workers, writing, waiting for the last vectors, ...
    timings: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        parts = [f"indexed {self.files} files ({self.new} new, {self.changed} changed, {self.deleted} deleted, "
                 f"{self.unchanged} unchanged), {self.chunks} chunks ({self.embedded} vectors embedded, "
                 f"{self.reused} reused) in {self.seconds:.1f} s"]
        if self.skipped:
            reasons: dict[str, int] = {}
            for s in self.skipped:
                key = s.reason.split(" (")[0]
                reasons[key] = reasons.get(key, 0) + 1
            parts.append("skipped " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
        if self.upgraded_schema:
            parts.append("index database upgraded from schema {} to {}".format(*self.upgraded_schema))
        if self.reformatted:
            parts.append("index format updated: every file chunked again, vectors reused where the text is unchanged")
        if self.fallbacks:
            parts.append(f"{len(self.fallbacks)} file(s) cut into line windows after a chunker error "
                         "(--verbose lists them)")
        if self.decode_errors:
            parts.append(f"{self.decode_errors} file(s) with invalid UTF-8 decoded with replacement")
        if self.truncated:
            parts.append(f"{self.truncated} text(s) truncated to the model's token limit for embedding")
        return "; ".join(parts)


ProgressFn = Callable[[int, int, int], None]  # (files done, files to process, chunks so far)


@dataclass(frozen=True)
class IndexOptions:
    """How to index: the model and where it runs, what to read, how to batch."""

    model: str = "default"  # a name, hub id found offline, or model folder path
    dim: int | None = None  # Matryoshka: keep this many dims of each vector; default: the index's, else all
    device: str | None = "auto"
    dtype: str | None = None  # fp32 | fp16 | bf16 | int8 | int8-file; default as backend.load_backend picks it
    devices: list[str] | None = None  # several at once (["cuda:0", "cuda:1"]); default: every visible GPU
    rebuild: bool = False  # build a new index beside the old one, then swap them
    max_file_bytes: int = 1_000_000
    excludes: tuple[str, ...] = ()  # extra gitignore-style patterns
    workers: int | None = None  # processes that read, chunk and tokenize; default: all cores
    batch_size: int = 32  # texts per forward pass on the padded (CPU) path
    token_budget: int | None = None  # tokens per packed GPU batch; default: the scheduler's
    force: bool = False  # index a system folder or the home folder all the same
    include_secrets: bool = False  # index private keys, .env files and credentials too
    writer_process: bool | None = None  # write in a process of its own; default: for big runs (write_sinks.py)


def model_for_index(model: str, index_dir: str | Path, dim: int | None = None) -> ModelFiles:
    """The ModelFiles an index run into `index_dir` embeds with, for a caller that loads the model
    itself (`watch`, the server): `model` at `dim`, else at the --dim the index was built with."""
    files = resolve_model(model)
    meta: dict[str, str] = {}
    if (Path(index_dir) / DB_NAME).is_file():
        with Store(Path(index_dir), readonly=True) as store:
            if store.counts()["files"]:  # as in `_index`: only an index with files is bound to its dim
                meta = store.meta()
    return files_at_dim(files, dim, meta)


def index_tree(root: str | Path, index_dir: str | Path | None = None, options: IndexOptions | None = None, *,
               progress: ProgressFn | None = None, notify: Callable[[str], None] | None = None,
               embedder=None, **option_overrides) -> IndexSummary:
    """Index (or update the index of) the tree at `root`. Returns what was done.

    `options` (or keyword overrides of its fields) say how; `embedder` is an already loaded model
    to use; `notify` receives one-line notes meant for the user (e.g. waiting for another run).
    """
    options = replace(options or IndexOptions(), **option_overrides)
    if isinstance(options.excludes, list):
        options = replace(options, excludes=tuple(options.excludes))
    root = check_root(root, force=options.force)  # before anything is written there
    index_dir = Path(index_dir).resolve() if index_dir else root / DEFAULT_DIR_NAME
    index_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(index_dir, notify):
        if options.rebuild and (index_dir / DB_NAME).exists():
            return _rebuild_beside(root, index_dir, options, progress, embedder)
        if options.rebuild:
            remove_index(index_dir)
        return _index(root, index_dir, options, progress, embedder)


def _rebuild_beside(root: Path, index_dir: Path, options: IndexOptions, progress, embedder) -> IndexSummary:
    """Build a complete new index in a sibling folder, then swap it in: until then, and if the
    rebuild fails or is stopped, the old index keeps answering."""
    staging = index_dir.with_name(index_dir.name + ".rebuild")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        summary = _index(root, staging, replace(options, rebuild=False), progress, embedder,
                         walk_index_dir=index_dir)
        (staging / LOCK_NAME).touch()
        exchange_folders(staging, index_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old index, after a swap; the partial one, after a failure
    summary.index_dir = index_dir
    _restamp_index_parent(root, index_dir)
    return summary


def _restamp_index_parent(root: Path, index_dir: Path) -> None:
    """The staging folder, made beside the index before the walk and removed after the swap, changed
    the mtime of the folder holding the index: record it as it is now, or every search would report
    entries added or removed there. (Files added to that one folder during the rebuild go unseen
    by that signal until the next run.)"""
    parent = index_dir.parent
    if not parent.is_relative_to(root):
        return
    rel = parent.relative_to(root).as_posix()
    try:
        mtime_ns = parent.stat().st_mtime_ns
    except OSError:
        return
    with Store(index_dir) as store:
        with store.transaction():
            store.set_folder_stamp("" if rel == "." else rel, mtime_ns)
        store.checkpoint()
        store.mark_checked()  # one row changed in the index the rebuild checked: no need to read it all again


def _index(root: Path, index_dir: Path, options: IndexOptions, progress, embedder,
           walk_index_dir: Path | None = None) -> IndexSummary:
    t0 = time.perf_counter()
    files = embedder.files if embedder is not None else resolve_model(options.model)
    summary = IndexSummary(root=root, index_dir=index_dir, model=files.name)
    with Store(index_dir, create=True) as store:
        if store.upgraded_from:
            summary.upgraded_schema = (store.upgraded_from, store.schema)
        store.check_integrity()  # before anything is written: a damaged index is never marked complete
        meta = store.meta()
        known = store.files()
        # An index with no file yet takes the model it is given: a first run that failed (say, on a
        # broken model) must not bind the index to that model.
        bound = meta if known else {}
        if embedder is None:  # a loaded embedder comes with its dim, checked like the model
            files = files_at_dim(files, options.dim, bound)
        elif options.dim is not None and options.dim != files.dim:
            raise ValueError(f"dim={options.dim} was given with an embedder of dim {files.dim}")
        stamp = check_model(bound, files, str(options.model))
        if meta.get("shards"):  # distributed/importer.py's: its files have no tree on this machine
            raise StoreError(f"the index at {index_dir} was imported from the cluster shards in {meta['shards']}; "
                             "update it with `codesift import-shards`, or index into another --index-dir")
        if meta.get("root") and Path(meta["root"]) != root:
            raise StoreError(f"the index at {index_dir} belongs to {meta['root']}, not {root}; "
                             "use another --index-dir or --rebuild")
        reformat = meta.get("index_format") != INDEX_FORMAT
        summary.reformatted = reformat and bool(meta.get("index_format"))
        # an upgraded format is recorded only once every file has it: a run stopped half-way through
        # an upgrade leaves the old one, so the next run chunks every file again (vectors are reused)
        with store.transaction():
            store.set_meta(**stamp, root=str(root), state="indexing",
                           codesift_version=_version(), created_at=meta.get("created_at", now()))
            if not known:  # a new (or emptied) index: whatever gets committed has the current format
                store.set_meta(index_format=INDEX_FORMAT)
                store.defer_indexes()
                store.set_bm25_merging(False)  # until finish_index
            else:
                store.ensure_indexes()  # a first build stopped half-way left them out
                store.fill_roles()  # files indexed before roles were (schema 3) get theirs
                if reformat:
                    store.forget_all_terms()  # every file is chunked again, and its terms inserted anew

        pipeline = EmbedPipeline(files, embedder, options.device, options.dtype, options.batch_size,
                                 options.token_budget, options.devices)
        if embedder is None:
            check_device(options.device)  # the model loads in the background: its commonest error, now

        excludes = options.excludes
        if walk_index_dir is not None and index_dir.is_relative_to(root):  # a rebuild's staging folder
            excludes += ("/" + index_dir.relative_to(root).as_posix() + "/",)
        walked = walk(root, max_file_bytes=options.max_file_bytes, index_dir=walk_index_dir or index_dir,
                      extra_excludes=excludes, force=options.force, include_secrets=options.include_secrets)
        summary.skipped, summary.ignored = list(walked.skipped), walked.ignored
        seen = {f.rel for f in walked.files}
        deleted = [p for p in known if p not in seen]
        if deleted:
            with store.transaction():
                for p in deleted:
                    store.delete_file(p, bm25_fields)
        summary.deleted = len(deleted)

        todo: list[tuple[SourceFile, str | None]] = []
        for f in walked.files:
            row = known.get(f.rel)
            if row is not None and not reformat and row.size == f.size and row.mtime_ns == f.mtime_ns:
                summary.unchanged += 1
                continue
            todo.append((f, None if (row is None or reformat) else row.sha256))

        own_process = options.writer_process
        if own_process is None:
            own_process = big_run(todo, options.workers)
        writer = Writer(store, known, summary, own_process=own_process)
        clock = _Stopwatch(summary.timings)
        try:
            if todo and embedder is None:
                # After the walk, not before: importing torch holds the interpreter most of the time,
                # and a big tree's walk would share it, delaying the first files (and writes); a small
                # tree's walk is over in a moment either way.
                pipeline.preload()
            if own_process:
                writer.sink.start()  # it starts up while the first files are read
            prepared_files = prepare_files(todo, options.workers, files, options.include_secrets)
            while True:
                with clock("prepare_wait"):
                    prepared = next(prepared_files, None)
                if prepared is None:
                    break
                if writer.files_prepared == 0:
                    summary.timings["first_file_at"] = time.perf_counter() - t0
                writer.add(prepared, pipeline)
                writer.receive(pipeline.poll())
                with clock("write"):
                    writer.flush(final=False)
                if progress:
                    progress(writer.files_prepared, len(todo), summary.embedded + summary.reused)
            summary.timings["all_prepared_at"] = time.perf_counter() - t0
            pipeline.end_input()
            while not pipeline.finished:  # files are written as their last vectors come in
                with clock("embed_wait"):
                    results = pipeline.wait()
                writer.receive(results)
                with clock("write"):
                    writer.flush(final=False)
            summary.timings["all_embedded_at"] = time.perf_counter() - t0
            with clock("write"):
                writer.flush(final=True)
                writer.close(finish=True)
        finally:
            pipeline.close()
            writer.close()
        if progress:
            progress(writer.files_prepared, len(todo), summary.embedded + summary.reused)

        t_final = time.perf_counter()
        summary.vector_bytes_written = writer.bytes_written
        summary.timings["write_thread"] = writer.busy_s
        summary.timings["writer_merge"] = getattr(writer.sink, "merge_s", 0.0)  # merges in its idle time
        summary.timings["writer_finish"] = getattr(writer.sink, "finish_s", 0.0)  # the end's work it did
        if pipeline.load_s is not None:
            summary.timings["model_load"] = pipeline.load_s
        summary.vector_bytes_written += finish_index(store, walked.folders, summary.timings)
        counts = store.counts()
        summary.files, summary.chunks = counts["files"], counts["chunks"]
        summary.timings["finalize"] = time.perf_counter() - t_final
    summary.seconds = time.perf_counter() - t0
    summary.timings = {k: round(v, 3) for k, v in summary.timings.items()}
    return summary


def finish_index(store: Store, folders: list[tuple[str, int]] | None = None,
                 timings: dict[str, float] | None = None) -> int:
    """How every run that writes an index ends (an index run, a shard import: distributed/importer.py):
    the deferred indexes made, segments merged, the folders walked recorded (`folders`, None for
    a run with no tree), the index marked complete, segments written before vector lengths were
    kept given theirs, the WAL folded into the database. Returns the vector bytes written; adds
    each step's seconds to `timings` (finalize_indexes, finalize_merge, finalize_checkpoint)."""
    clock = _Stopwatch({} if timings is None else timings)
    written = 0
    with store.transaction():
        with clock("finalize_indexes"):
            store.ensure_indexes()
        store.set_bm25_merging(True)  # a first build turned them off: edits add small segments
        if folders is not None:
            store.replace_folders(folders)
        with clock("finalize_merge"):
            for group in merge_plan(store.segments()):
                written += store.merge_segments(group)
        store.set_meta(state="complete", index_format=INDEX_FORMAT, indexed_at=now(),
                       generation=store.generation() + 1)
    store.remove_unused_segment_files()
    written += store.write_missing_norms()  # an index written before they were kept
    store.finish_upgrade()
    with clock("finalize_checkpoint"):
        store.checkpoint()
    store.mark_checked()
    return written


class _Stopwatch:
    """Adds the time spent inside `with clock(name):` to timings[name]."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


LOCK_NAME = "index.lock"


@contextmanager
def exclusive(index_dir: Path, notify: Callable[[str], None] | None) -> Iterator[None]:
    """One run that writes an index (an index run, a shard import) at a time: a second one waits for
    the first, then finds its work done."""
    import fcntl

    with open(index_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if notify:
                notify(f"another codesift index run is updating {index_dir}; waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def exchange_folders(a: Path, b: Path) -> None:
    """Swap two folders' names atomically (Linux renameat2 RENAME_EXCHANGE); elsewhere two renames."""
    import ctypes
    import os

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0:
            return
    aside = b.with_name(b.name + ".old")
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def remove_index(index_dir: Path) -> None:
    """Delete an index's files (even a damaged database), leaving anything else in the folder."""
    for p in [index_dir / DB_NAME, index_dir / f"{DB_NAME}-wal", index_dir / f"{DB_NAME}-shm",
              *index_dir.glob("dense-*.npy")]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    shutil.rmtree(index_dir / VECTORS_DIR, ignore_errors=True)


def _version() -> str:
    from codesift.version import __version__

    return __version__
