"""The streaming half of indexing: embed token sequences in a background thread and write files
to the store as soon as their vectors are in, in bounded memory."""
from __future__ import annotations

import queue
import threading
import time
from collections import deque

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.index.prepare import PreparedFile
from codesift.index.store import Store
from codesift.walk import Skipped

BATCH_CHUNKS = 2048  # chunks per transaction ...
COMMIT_SECONDS = 2.0  # ... or whatever is ready after this long: a crash loses at most this much work


class EmbedPipeline:
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


class Writer:
    """Writes prepared files to the store, in transactions of about BATCH_CHUNKS chunks, as soon as
    every vector they need is at hand. Files are written in the order they were prepared."""

    def __init__(self, store: Store, known: dict, summary):
        self.store, self.known, self.summary = store, known, summary
        self.pending: deque[PreparedFile] = deque()
        self.waiting: dict[str, int] = {}  # hash -> key, submitted and not yet back
        self.keys: list[str] = []  # key -> hash
        self.vectors: dict[str, np.ndarray] = {}
        self.files_done = 0
        self.files_prepared = 0
        self.last_commit = time.monotonic()

    def add(self, p: PreparedFile, pipeline: EmbedPipeline) -> None:
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
