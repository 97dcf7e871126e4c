"""Building and updating an index: walk, chunk (in worker processes), embed what is new, store.

Incremental by content: a file whose size and mtime are unchanged is not read; a file
whose bytes hash is unchanged is not re-chunked; a chunk whose embedded text is already
in the index (same text hash, e.g. a renamed file) is not re-embedded. Files are written
in batches, each in one transaction: a run killed half-way leaves a consistent index that
the next run completes.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from codesift.embed.model_files import ModelFiles, resolve_model
from codesift.errors import ModelMismatchError, StoreError
from codesift.index.formats import INDEX_FORMAT
from codesift.index.pipeline import EmbedPipeline, Writer
from codesift.index.prepare import prepare_files
from codesift.index.store import DEFAULT_DIR_NAME, Store, now
from codesift.walk import SourceFile, Skipped, walk


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
    reused: int = 0  # ... or found in the index
    truncated: int = 0
    decode_errors: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0
    seconds: float = 0.0
    model: str = ""
    reformatted: bool = False  # the index was built by a codesift that chunked or embedded differently
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
        if self.reformatted:
            parts.append("index format updated: every file chunked again, vectors reused where the text is unchanged")
        if self.decode_errors:
            parts.append(f"{self.decode_errors} file(s) with invalid UTF-8 decoded with replacement")
        if self.truncated:
            parts.append(f"{self.truncated} text(s) truncated to the model's token limit for embedding")
        return "; ".join(parts)


ProgressFn = Callable[[int, int, int], None]  # (files done, files to process, chunks so far)


class _ModelStamp:
    """What the index records about its model, and the check that a model matches it."""

    KEYS = ("model_name", "model_spec", "model_sha256", "model_size", "model_mtime_ns", "dim")

    @staticmethod
    def of(files: ModelFiles, spec: str, store_meta: dict[str, str] | None = None) -> dict[str, str]:
        fp = files.weights_fingerprint()
        meta = store_meta or {}
        # the hash is only recomputed when the weights file's size or mtime changed
        if meta.get("model_size") == str(fp["size"]) and meta.get("model_mtime_ns") == str(fp["mtime_ns"]) \
                and meta.get("model_sha256"):
            sha = meta["model_sha256"]
        else:
            sha = files.weights_sha256()
        return {"model_name": files.name, "model_spec": spec, "model_sha256": sha,
                "model_size": str(fp["size"]), "model_mtime_ns": str(fp["mtime_ns"]), "dim": str(files.dim)}


def check_model(meta: dict[str, str], files: ModelFiles, spec: str) -> dict[str, str]:
    """The stamp for `files`; raises ModelMismatchError if the index was built with other weights."""
    stamp = _ModelStamp.of(files, spec, meta)
    if meta.get("model_sha256") and meta["model_sha256"] != stamp["model_sha256"]:
        raise ModelMismatchError(
            f"this index was built with model {meta.get('model_name')} (weights sha256 "
            f"{meta['model_sha256'][:12]}), not {files.name} (weights sha256 {stamp['model_sha256'][:12]}); "
            f"rebuild it with `codesift index --rebuild --model {spec}`, or use that model")
    return stamp


def index_tree(root: str | Path, index_dir: str | Path | None = None, *, model: str = "default",
               device: str | None = "auto", dtype: str | None = None, rebuild: bool = False,
               max_file_bytes: int = 1_000_000, excludes: Iterable[str] = (), workers: int | None = None,
               batch_size: int = 32, token_budget: int | None = None, progress: ProgressFn | None = None,
               embedder=None, devices: list[str] | None = None) -> IndexSummary:
    """Index (or update the index of) the tree at `root`. Returns what was done.

    `devices` embeds on several devices at once (e.g. ["cuda:0", "cuda:1"]); by default every
    visible GPU is used when `device` is auto or cuda.
    """
    t0 = time.perf_counter()
    root = Path(root).resolve()
    if not root.is_dir():
        raise StoreError(f"{root} is not a folder")
    index_dir = Path(index_dir).resolve() if index_dir else root / DEFAULT_DIR_NAME
    files = embedder.files if embedder is not None else resolve_model(model)
    summary = IndexSummary(root=root, index_dir=index_dir, model=files.name)

    if rebuild:
        remove_index(index_dir)
    with Store(index_dir, create=True) as store:
        meta = store.meta()
        stamp = check_model(meta, files, str(model))
        if meta.get("root") and Path(meta["root"]) != root:
            raise StoreError(f"the index at {index_dir} belongs to {meta['root']}, not {root}; "
                             "use another --index-dir or --rebuild")
        reformat = meta.get("index_format") != INDEX_FORMAT
        summary.reformatted = reformat and bool(meta.get("index_format"))
        # an upgraded format is recorded only once every file has it: a run stopped half-way through
        # an upgrade leaves the old one, so the next run chunks every file again (vectors are reused)
        store.set_meta(**stamp, root=str(root), state="indexing",
                       codesift_version=_version(), created_at=meta.get("created_at", now()))

        walked = walk(root, max_file_bytes=max_file_bytes, index_dir=index_dir, extra_excludes=tuple(excludes))
        summary.skipped, summary.ignored = list(walked.skipped), walked.ignored
        known = store.files()
        if not known:  # a new (or emptied) index: whatever gets committed has the current format
            store.set_meta(index_format=INDEX_FORMAT)
        seen = {f.rel for f in walked.files}
        deleted = [p for p in known if p not in seen]
        if deleted:
            with store.transaction():
                for p in deleted:
                    store.delete_file(p)
        summary.deleted = len(deleted)

        todo: list[tuple[SourceFile, str | None]] = []
        for f in walked.files:
            row = known.get(f.rel)
            if row is not None and not reformat and row.size == f.size and row.mtime_ns == f.mtime_ns:
                summary.unchanged += 1
                continue
            todo.append((f, None if (row is None or reformat) else row.sha256))

        pipeline = EmbedPipeline(files, embedder, device, dtype, batch_size, token_budget, devices)
        writer = Writer(store, known, summary)
        clock = _Stopwatch(summary.timings)
        try:
            prepared_files = prepare_files(todo, workers, files)
            while True:
                with clock("prepare_wait"):
                    prepared = next(prepared_files, None)
                if prepared is None:
                    break
                writer.add(prepared, pipeline)
                writer.receive(pipeline.poll())
                with clock("write"):
                    writer.flush(final=False)
                if progress:
                    progress(writer.files_prepared, len(todo), summary.embedded + summary.reused)
            pipeline.end_input()
            while not pipeline.finished:  # files are written as their last vectors come in
                with clock("embed_wait"):
                    results = pipeline.wait()
                writer.receive(results)
                with clock("write"):
                    writer.flush(final=False)
            with clock("write"):
                writer.flush(final=True)
                writer.close()
        finally:
            pipeline.close()
            writer.close()
        if progress:
            progress(writer.files_prepared, len(todo), summary.embedded + summary.reused)

        t_final = time.perf_counter()
        with store.transaction():
            store.prune_vectors()
            store.set_meta(state="complete", index_format=INDEX_FORMAT, indexed_at=now(),
                           generation=store.generation() + 1)
        counts = store.counts()
        summary.files, summary.chunks = counts["files"], counts["chunks"]
        from codesift.index.dense import write_dense_cache

        write_dense_cache(store, files.dim)
        summary.timings["finalize"] = time.perf_counter() - t_final
    summary.seconds = time.perf_counter() - t0
    summary.timings = {k: round(v, 3) for k, v in summary.timings.items()}
    return summary


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


def remove_index(index_dir: Path) -> None:
    """Delete an index's files (even a damaged database), leaving anything else in the folder."""
    from codesift.index.store import DB_NAME

    for p in [index_dir / DB_NAME, index_dir / f"{DB_NAME}-wal", index_dir / f"{DB_NAME}-shm",
              *index_dir.glob("dense-*.npy")]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _version() -> str:
    from codesift import __version__

    return __version__


