"""Building and updating an index: walk, chunk (in worker processes), embed what is new, store.

Incremental by content: a file whose size and mtime are unchanged is not read; a file
whose bytes hash is unchanged is not re-chunked; a chunk whose embedded text is already
in the index (same text hash, e.g. a renamed file) is not re-embedded. Files are written
in batches, each in one transaction: a run killed half-way leaves a consistent index that
the next run completes.
"""
from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from codesift.chunk.model import Chunk, Import
from codesift.embed.model_files import ModelFiles, resolve_model
from codesift.errors import ModelMismatchError, StoreError
from codesift.index.document import EMBED_FORMAT, TERMS_FORMAT, bm25_fields, embed_hash, embed_text
from codesift.index.store import DEFAULT_DIR_NAME, Store, now
from codesift.walk import SourceFile, Skipped, walk

# Bump when chunking changes: every file is then re-chunked on the next run.
CHUNKER_VERSION = 2
INDEX_FORMAT = f"{CHUNKER_VERSION}.{EMBED_FORMAT}.{TERMS_FORMAT}"

BATCH_CHUNKS = 2048  # chunks per transaction ...
COMMIT_SECONDS = 2.0  # ... or whatever is ready after this long: a crash loses at most this much work


@dataclass
class PreparedFile:
    """A file read, hashed and chunked in a worker, ready to be embedded and stored."""

    source: SourceFile
    sha256: str = ""
    language: str = ""
    n_lines: int = 0
    decode_errors: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    fts: list[tuple[str, str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    token_ids: np.ndarray | None = None  # all texts' token ids end to end (int32)
    token_lengths: np.ndarray | None = None
    truncated: int = 0
    error: str | None = None

    def tokens_of(self, i: int) -> np.ndarray:
        start = int(self.token_lengths[:i].sum())
        return self.token_ids[start:start + int(self.token_lengths[i])]


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_tokenizers: dict = {}


def _tokenizer_for(files: ModelFiles):
    tk = _tokenizers.get(files.root)
    if tk is None:
        from codesift.embed.tokenizer import TextTokenizer

        tk = _tokenizers[files.root] = TextTokenizer(files, min(files.max_seq_length,
                                                                int(files.config.get("max_position_embeddings", 512))))
    return tk


def prepare_file(source: SourceFile, known_sha: str | None = None, model: ModelFiles | None = None) -> PreparedFile:
    """Read, hash, chunk and (given a model) tokenize one file. Runs in worker processes; never
    raises for bad files."""
    from codesift.chunk import chunk_file
    from codesift.chunk.languages import language_for
    from codesift.chunk.lines import split_lines
    from codesift.walk import read_text

    out = PreparedFile(source)
    try:
        data = source.path.read_bytes()
    except OSError as e:
        out.error = f"unreadable ({type(e).__name__})"
        return out
    out.sha256 = file_sha256(data)
    if known_sha is not None and out.sha256 == known_sha:
        return out  # content unchanged: nothing else to do
    try:
        text, out.decode_errors = read_text(source.path)
    except OSError as e:
        out.error = f"unreadable ({type(e).__name__})"
        return out
    out.language = language_for(source.rel) or "text"
    out.n_lines = len(split_lines(text))
    result = chunk_file(source.rel, text, out.language)
    out.chunks, out.imports = result.chunks, result.imports
    out.fts = [bm25_fields(c) for c in out.chunks]
    out.texts = [embed_text(c) for c in out.chunks]
    out.hashes = [embed_hash(t) for t in out.texts]
    if model is not None and out.texts:
        out.token_ids, out.token_lengths, out.truncated = _tokenizer_for(model).encode_flat(out.texts)
    return out


def _prepare_star(args: tuple) -> PreparedFile:
    return prepare_file(*args)


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
    embedded: int = 0
    reused: int = 0
    truncated: int = 0
    decode_errors: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0
    seconds: float = 0.0
    model: str = ""

    def line(self) -> str:
        parts = [f"indexed {self.files} files ({self.new} new, {self.changed} changed, {self.deleted} deleted, "
                 f"{self.unchanged} unchanged), {self.chunks} chunks ({self.embedded} embedded, "
                 f"{self.reused} reused) in {self.seconds:.1f} s"]
        if self.skipped:
            reasons: dict[str, int] = {}
            for s in self.skipped:
                key = s.reason.split(" (")[0]
                reasons[key] = reasons.get(key, 0) + 1
            parts.append("skipped " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
        if self.decode_errors:
            parts.append(f"{self.decode_errors} file(s) with invalid UTF-8 decoded with replacement")
        if self.truncated:
            parts.append(f"{self.truncated} chunk(s) truncated to the model's token limit for embedding")
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
               embedder=None) -> IndexSummary:
    """Index (or update the index of) the tree at `root`. Returns what was done."""
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
        store.set_meta(**stamp, root=str(root), state="indexing", index_format=INDEX_FORMAT,
                       codesift_version=_version(), created_at=meta.get("created_at", now()))

        walked = walk(root, max_file_bytes=max_file_bytes, index_dir=index_dir, extra_excludes=tuple(excludes))
        summary.skipped, summary.ignored = list(walked.skipped), walked.ignored
        known = store.files()
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

        pipeline = _EmbedPipeline(files, embedder, device, dtype, batch_size, token_budget)
        writer = _Writer(store, known, summary)
        try:
            for prepared in _prepared(todo, workers, files):
                writer.add(prepared, pipeline)
                writer.receive(pipeline.poll())
                writer.flush(final=False)
                if progress:
                    progress(writer.files_prepared, len(todo), summary.embedded + summary.reused)
            writer.receive(pipeline.finish())
            writer.flush(final=True)
        finally:
            pipeline.close()
        if progress:
            progress(writer.files_prepared, len(todo), summary.embedded + summary.reused)

        with store.transaction():
            store.prune_vectors()
            store.set_meta(state="complete", indexed_at=now(), generation=store.generation() + 1)
        counts = store.counts()
        summary.files, summary.chunks = counts["files"], counts["chunks"]
        from codesift.index.dense import write_dense_cache

        write_dense_cache(store, files.dim)
    summary.seconds = time.perf_counter() - t0
    return summary


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


def _prepared(todo: list[tuple[SourceFile, str | None]], workers: int | None,
              model: ModelFiles) -> Iterator[PreparedFile]:
    """Prepare files in order, in worker processes when there is enough work to pay for them."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    total_bytes = sum(f.size for f, _ in todo)
    if workers <= 1 or len(todo) < 32 or total_bytes < 1 << 20:
        yield from (prepare_file(f, sha, model) for f, sha in todo)
        return
    from codesift.embed.scheduler import ordered_map

    yield from ordered_map(_worker_pool(workers), _prepare_star, ((f, sha, model) for f, sha in todo),
                           window=8 * workers)


_pools: dict[int, ProcessPoolExecutor] = {}


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """One pool per process, kept for later runs: a long-lived process (the MCP server, a warm
    benchmark) pays the workers' start-up once."""
    pool = _pools.get(workers)
    if pool is None:
        import atexit
        import multiprocessing as mp

        # spawn, not fork: the parent may hold torch and CUDA state
        pool = _pools[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        atexit.register(pool.shutdown, cancel_futures=True)
    return pool


class _EmbedPipeline:
    """The embedding model in a background thread: token sequences in, vectors out, in order.

    The model is loaded on the first submission, so a run with nothing new to embed never
    imports torch. The input queue is bounded: when the GPU (or CPU) falls behind, the
    producer waits, and memory stays bounded whatever the corpus size.
    """

    def __init__(self, files: ModelFiles, embedder, device, dtype, batch_size: int, token_budget: int | None):
        self.files, self.embedder, self.device, self.dtype = files, embedder, device, dtype
        self.batch_size, self.token_budget = batch_size, token_budget
        self.inq: queue.Queue = queue.Queue(maxsize=64)
        self.outq: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.finished = False

    def _start(self) -> None:
        from codesift.embed.scheduler import make_runner, pack

        if self.embedder is None:
            from codesift.embed.embedder import Embedder

            self.embedder = Embedder.load(self.files, device=self.device, dtype=self.dtype)
        runner = make_runner(self.embedder.backend, self.token_budget, batch_size=self.batch_size)

        def feed():
            while (item := self.inq.get()) is not None:
                yield item

        def work():
            try:
                for item in runner.run(pack(feed(), runner.budget, runner.max_seqs)):
                    self.outq.put(item)
            except BaseException as e:  # surfaces in the indexing thread
                self.outq.put(e)
                while self.inq.get() is not None:  # unblock the producer
                    pass
            self.outq.put(None)

        self.thread = threading.Thread(target=work, name="codesift-embed", daemon=True)
        self.thread.start()

    def submit(self, batch) -> None:
        if self.thread is None:
            self._start()
        self.inq.put(batch)

    def _get(self, block: bool) -> list:
        out = []
        while True:
            try:
                item = self.outq.get(block=block)
            except queue.Empty:
                return out
            if item is None:
                self.finished = True
                return out
            if isinstance(item, BaseException):
                raise item
            out.append(item)
            block = False

    def poll(self) -> list:
        return [] if self.thread is None else self._get(block=False)

    def finish(self) -> list:
        if self.thread is None:
            return []
        self.inq.put(None)
        out = []
        while not self.finished:
            out.extend(self._get(block=True))
        return out

    def close(self) -> None:
        if self.thread is not None and not self.finished:
            self.inq.put(None)


class _Writer:
    """Writes prepared files to the store, in transactions of about BATCH_CHUNKS chunks, as soon as
    every vector they need is at hand. Files are written in the order they were prepared."""

    def __init__(self, store: Store, known: dict, summary: IndexSummary):
        self.store, self.known, self.summary = store, known, summary
        self.pending: deque[PreparedFile] = deque()
        self.waiting: dict[str, int] = {}  # hash -> key, submitted and not yet back
        self.keys: list[str] = []  # key -> hash
        self.vectors: dict[str, np.ndarray] = {}
        self.files_done = 0
        self.files_prepared = 0
        self.last_commit = time.monotonic()

    def add(self, p: PreparedFile, pipeline: _EmbedPipeline) -> None:
        if p.error is None and p.hashes:
            have = self.store.known_vectors(h for h in p.hashes if h not in self.waiting and h not in self.vectors)
            new_keys, seqs, lens = [], [], []
            for i, h in enumerate(p.hashes):
                if h in have or h in self.waiting or h in self.vectors:
                    continue
                self.waiting[h] = len(self.keys)
                new_keys.append(len(self.keys))
                self.keys.append(h)
                seqs.append(p.tokens_of(i))
                lens.append(len(seqs[-1]))
            if new_keys:
                from codesift.embed.scheduler import TokenBatch

                self.summary.embedded += len(new_keys)
                self.summary.truncated += p.truncated
                pipeline.submit(TokenBatch(np.asarray(new_keys, np.int64), np.concatenate(seqs),
                                           np.asarray(lens, np.int32)))
            self.summary.reused += len(p.hashes) - len(new_keys)
        self.pending.append(p)
        self.files_prepared += 1

    def receive(self, results: list) -> None:
        for keys, vecs in results:
            for k, v in zip(keys.tolist(), vecs):
                h = self.keys[k]
                self.waiting.pop(h, None)
                self.vectors[h] = v

    def _ready(self, p: PreparedFile) -> bool:
        return p.error is not None or all(h not in self.waiting for h in p.hashes)

    def flush(self, final: bool) -> bool:
        """Write the ready files at the head of the queue; returns whether anything was written."""
        wrote = False
        while self.pending and self._ready(self.pending[0]):
            batch, n = [], 0
            while self.pending and self._ready(self.pending[0]) and n < BATCH_CHUNKS:
                batch.append(self.pending.popleft())
                n += len(batch[-1].chunks)
            overdue = time.monotonic() - self.last_commit > COMMIT_SECONDS
            if n < BATCH_CHUNKS and self.pending and not final and not overdue:
                self.pending.extendleft(reversed(batch))  # wait to fill a transaction
                break
            self._write(batch)
            wrote = True
        return wrote

    def _write(self, batch: list[PreparedFile]) -> None:
        summary, store = self.summary, self.store
        with store.transaction():
            store.put_vectors((h, self.vectors[h]) for p in batch for h in dict.fromkeys(p.hashes)
                              if h in self.vectors)
            for p in batch:
                row = self.known.get(p.source.rel)
                if p.error is not None:
                    summary.skipped.append(Skipped(p.source.rel, p.error))
                    if row is not None:
                        store.delete_file(p.source.rel)
                    continue
                if row is not None and p.sha256 == row.sha256 and not p.language:
                    store.touch_file(row.id, p.source.size, p.source.mtime_ns)  # touched, not changed
                    summary.unchanged += 1
                    continue
                store.replace_file(p.source.rel, p.sha256, p.source.size, p.source.mtime_ns, p.language,
                                   p.n_lines, p.decode_errors, p.chunks, p.fts, p.hashes, p.imports)
                summary.new += row is None
                summary.changed += row is not None
                summary.decode_errors += p.decode_errors > 0
        for p in batch:
            for h in p.hashes:
                self.vectors.pop(h, None)
        self.files_done += len(batch)
        self.last_commit = time.monotonic()
