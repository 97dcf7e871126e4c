"""The streaming half of indexing: embed token sequences in a background thread and write files
to the store as soon as their vectors are in, in bounded memory."""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from functools import partial

import numpy as np

from codesift.embed.model_files import ModelFiles
from codesift.index.prepare import PreparedFile
from codesift.index.store import FileRecord, Store
from codesift.index.vectors import SEGMENT_ROWS
from codesift.index.write_sinks import ProcessSink, ThreadSink, WriteBatch
from codesift.walk import Skipped

# Chunks per transaction (and so per vector segment: vectors.SEGMENT_ROWS) ... Every commit writes
# each page it touched: bigger transactions write the pages that many rows share fewer times.
BATCH_CHUNKS = SEGMENT_ROWS
COMMIT_SECONDS = 5.0  # ... or whatever is ready after this long: a crash loses at most this much work
# ... or, when every file prepared so far is ready (the model keeps up), after this long: readers see
# a run's progress early and a stopped run keeps it, without a transaction per file
DRAINED_COMMIT_SECONDS = 0.5
HAND_OVER_TOKENS = 16384  # files' sequences go to the model thread in lots of about this many tokens
# Tokens handed over and not yet taken by the model thread, at most (int32 ids: 4 bytes each). A cold
# run loads the model (torch, CUDA, weights, graphs) while its first files are read and chunked:
# the queue is what lets the workers go on meanwhile instead of waiting for the model, and what
# the GPU then drains at full speed. Bounded, so memory does not grow with the tree; each queued
# token also holds its file's rows until written (tens of bytes in all), and the files a queue
# holds cannot be written before the model is there anyway: a big tree's run is then limited by
# its writer, not by how far ahead the workers got.
QUEUE_TOKENS = 4_000_000
# While a GPU is fed, other threads hold the GIL for at most this long at a time (Python's default,
# 5 ms, leaves the thread that feeds the GPU waiting behind the writer and the result readers).
GPU_SWITCH_INTERVAL = 0.0005


class EmbedPipeline:
    """The embedding model in a background thread: token sequences in, vectors out, in order.

    The model is loaded on the first submission, so a run with nothing new to embed never
    imports torch. The input queue is bounded: when the GPU (or CPU) falls behind, the
    producer waits, and memory stays bounded whatever the corpus size.
    """

    def __init__(self, files: ModelFiles, embedder, device, dtype, batch_size: int, token_budget: int | None,
                 devices: list[str] | None = None):
        self.files, self.embedder, self.device, self.dtype = files, embedder, device, dtype
        self.devices = devices  # None: every visible GPU when `device` is auto or cuda
        self.batch_size, self.token_budget = batch_size, token_budget
        self.inq: queue.Queue = queue.Queue()  # lots of about HAND_OVER_TOKENS, QUEUE_TOKENS in all at most
        self.queued_tokens = 0
        self.room = threading.Condition()  # the producer waits on it for room in the queue
        self.consumer_done = False  # the model thread takes no more input (it ended, or failed)
        self.outq: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.finished = False
        self.parts: list = []  # sequences not yet handed over, and their token count
        self.part_tokens = 0
        self.switch_interval: float | None = None
        self.stopped = False
        self.loader: threading.Thread | None = None
        self.runner = None
        self.load_error: BaseException | None = None
        self.load_s: float | None = None  # how long loading the model took (torch, weights, devices, graphs)

    def preload(self) -> None:
        """Start loading the model (torch, weights, devices, CUDA graphs) in the background now, while
        the files are read and chunked: a cold run otherwise waits for it after its first file."""
        if self.loader is None and self.thread is None:
            # Not a daemon: a daemon thread still inside ONNX Runtime or torch when the interpreter
            # exits is stopped there, in C++ frames, and the process aborts (a run that failed early
            # would end in a crash, not its error). The interpreter waits for it instead.
            self.loader = threading.Thread(target=self._load_runner, name="codesift-load")
            self.loader.start()

    def _load_runner(self) -> None:
        t0 = time.perf_counter()
        try:
            from codesift.embed.scheduler import MultiRunner, make_runner

            if self.embedder is None:
                from codesift.embed.embedder import Embedder

                first = self.devices[0] if self.devices else self.device
                self.embedder = Embedder.load(self.files, device=first, dtype=self.dtype)
            first = make_runner(self.embedder.backend, self.token_budget, batch_size=self.batch_size)
            more = [partial(self._build_runner, d) for d in self._more_devices()]
            # further GPUs load in their runners' threads while the first one already embeds
            self.runner = MultiRunner([first], pending=more) if more else first
        except BaseException as e:  # raised where the runner is needed
            self.load_error = e
        self.load_s = time.perf_counter() - t0

    def _start(self) -> None:
        """Start the model thread. It waits for the model (loaded in the background since `preload`)
        itself, so the producer goes on queueing the first files' sequences meanwhile."""

        def feed():
            while (item := self.inq.get()) is not None:
                with self.room:
                    self.queued_tokens -= len(item.ids)
                    self.room.notify()
                yield item

        def work():
            try:
                from codesift.embed.batches import pack

                if self.loader is None:
                    self._load_runner()
                else:
                    self.loader.join()
                if self.load_error is not None:
                    raise self.load_error
                runner, embedder = self.runner, self.embedder
                if embedder.backend.is_gpu:
                    self.switch_interval = sys.getswitchinterval()
                    sys.setswitchinterval(GPU_SWITCH_INTERVAL)
                for keys, vecs in runner.run(pack(feed(), runner.token_budget, runner.max_seqs)):
                    if self.stopped:  # closed early (an error, Ctrl-C): embed no further
                        break
                    self.outq.put((keys, embedder.cut_to_dim(vecs)))  # runners give the full width
            except BaseException as e:  # surfaces in the indexing thread
                self.outq.put(e)
            finally:
                with self.room:  # the producer must not wait for room that will never come
                    self.consumer_done = True
                    self.room.notify_all()
                if self.switch_interval is not None:
                    sys.setswitchinterval(self.switch_interval)
                    self.switch_interval = None
            self.outq.put(None)

        # not a daemon, as the loader (`preload`): `close` stops it after its current batch
        self.thread = threading.Thread(target=work, name="codesift-embed")
        self.thread.start()

    def _more_devices(self) -> list[str]:
        """The further GPUs to embed on at once, beside the embedder's own device."""
        first = self.embedder.backend
        if not first.is_gpu:  # one CPU backend; torch is not imported here (it may not be installed)
            return []
        import torch

        from codesift.embed.scheduler import visible_gpus

        devices = self.devices
        if devices is None and first.device.type == "cuda" and str(self.device or "auto").lower() in ("auto", "cuda"):
            devices = visible_gpus()

        def canonical(d) -> str:
            d = torch.device(d)
            return f"cuda:{torch.cuda.current_device() if d.index is None else d.index}" if d.type == "cuda" else str(d)

        seen = {canonical(first.device)}
        more = []
        for d in devices or []:
            if canonical(d) not in seen:
                seen.add(canonical(d))
                more.append(d)
        return more

    def _build_runner(self, device: str):
        from codesift.embed.backend import load_backend
        from codesift.embed.scheduler import make_runner

        first = self.embedder.backend
        backend = load_backend(self.files, device=device, dtype=first.dtype, normalize=first.normalize)
        return make_runner(backend, self.token_budget, batch_size=self.batch_size)

    def submit(self, batch) -> None:
        """Queue one file's sequences (a TokenBatch); they go to the model thread in lots of
        HAND_OVER_TOKENS, since every hand-over costs the model thread a wake-up."""
        if self.load_error is not None:  # a model that failed early (no torch for cuda, bad weights): before any progress
            raise self.load_error
        if self.thread is None:
            self._start()
        self.parts.append(batch)
        self.part_tokens += len(batch.ids)
        if self.part_tokens >= HAND_OVER_TOKENS:
            self._hand_over()

    def _hand_over(self) -> None:
        if not self.parts:
            return
        from codesift.embed.batches import TokenBatch

        parts, self.parts, self.part_tokens = self.parts, [], 0
        lot = parts[0] if len(parts) == 1 else TokenBatch(
            np.concatenate([p.keys for p in parts]), np.concatenate([p.ids for p in parts]),
            np.concatenate([p.lengths for p in parts]))
        with self.room:
            while self.queued_tokens > 0 and self.queued_tokens + len(lot.ids) > QUEUE_TOKENS and not self.consumer_done:
                self.room.wait()
            if self.consumer_done:  # it failed: the error comes out of the next poll or wait
                return
            self.queued_tokens += len(lot.ids)
        self.inq.put(lot)

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

    def end_input(self) -> None:
        """No more submissions: what is left goes to the model thread."""
        if self.thread is None:
            self.finished = True
            return
        self._hand_over()
        self.inq.put(None)

    def wait(self) -> list:
        """After end_input: the next results (at least one), or [] once all are in (`finished`)."""
        return [] if self.finished else self._get(block=True)

    def close(self) -> None:
        # A model still loading in the background (the run ended before its first embedding, or was
        # stopped) is left to finish on its thread: waiting here would hold up Ctrl-C (the CLI then
        # leaves at once, by os._exit; otherwise the interpreter waits for the thread at exit).
        if self.thread is not None and not self.finished:
            # Stopped early (an error, Ctrl-C): drop the queued input rather than wait for room in
            # the queue, which could take the model thread many batches; it stops after its current one.
            self.parts = []
            self.stopped = True
            while True:
                try:
                    self.inq.get_nowait()
                except queue.Empty:
                    break
            self.inq.put(None)  # the queue is unbounded: this never waits


class Writer:
    """Writes prepared files to the store, in transactions of about BATCH_CHUNKS chunks, as soon as
    every vector they need is at hand. Files are written in the order they were prepared.

    The transactions run in a thread with its own connection, or for a big run in a process of
    their own (write_sinks.py says why), so writing overlaps with collecting the workers' results
    and feeding the model instead of adding to the wall time.

    Vectors are kept (int8, as stored) from the moment they are known until the last pending
    file that needs them is written: a text shared by files pending at once is embedded once.
    """

    def __init__(self, store: Store, known: dict, summary, own_process: bool = False):
        self.store, self.known, self.summary = store, known, summary
        self.sink = ProcessSink(store.dir) if own_process else ThreadSink(store.dir)
        # Files in the order prepared: `ready` holds those at the head whose vectors are all in,
        # `pending` the rest. A file's count of texts still out (`missing`) falls as vectors come
        # in, so telling whether the head is ready never rescans a file's hashes.
        self.ready: deque[PreparedFile] = deque()
        self.ready_chunks = 0
        self.pending: deque[PreparedFile] = deque()
        self.missing: dict[int, int] = {}  # id(file) -> its distinct texts not yet embedded
        self.waiters: dict[str, list[int]] = {}  # hash -> id(file) of the pending files waiting for it
        self.waiting: dict[str, int] = {}  # hash -> key, submitted and not yet back
        self.keys: dict[int, str] = {}  # key -> hash, for the sequences in flight
        self.next_key = 0
        self.vectors: dict[str, np.ndarray] = {}  # hash -> int8 vector
        self.needed: dict[str, int] = {}  # hash -> pending files that use it
        self.segments: dict[int, object] = {}  # segment id -> opened Segment, to copy known vectors from
        # A text's vector may already be in the index when the run began with files in it (or with an
        # upgrade's old table). A first build looks nothing up (its look-up indexes are deferred):
        # a text repeated in files far apart is embedded again, one pending at once is not.
        self.store_had_vectors = bool(known) or bool(store.legacy)
        self.files_done = 0
        self.files_prepared = 0
        self.last_commit = time.monotonic()

    def _known_vector(self, loc) -> np.ndarray:
        from codesift.index.vectors import Segment, quantize

        if loc.legacy is not None:
            return quantize(np.frombuffer(loc.legacy, dtype=np.float32))
        seg = self.segments.get(loc.seg)
        if seg is None:
            seg = self.segments[loc.seg] = Segment.open(self.store.dir, loc.seg)
        return np.array(seg.vectors[loc.seg_row, loc.slot])

    def add(self, p: PreparedFile, pipeline: EmbedPipeline) -> None:
        if p.error is None and p.hashes:
            fresh = [h for h in dict.fromkeys(p.hashes) if h not in self.waiting and h not in self.vectors
                     ] if self.store_had_vectors else []
            found = self.store.vector_locations(fresh) if fresh else {}
            for h, loc in found.items():
                self.vectors[h] = self._known_vector(loc)
            new, keys = [], []  # positions of the texts to embed, and their keys for the pipeline
            vectors, waiting, by_key, key = self.vectors, self.waiting, self.keys, self.next_key
            for i, h in enumerate(p.hashes):  # every text of the run passes here: names bound locally
                if h in vectors or h in waiting:
                    continue
                waiting[h] = key
                by_key[key] = h
                new.append(i)
                keys.append(key)
                key += 1
            self.next_key = key
            distinct = set(p.hashes)
            needed = self.needed
            for h in distinct:
                needed[h] = needed.get(h, 0) + 1
            out = [h for h in distinct if h in waiting]
            if out:
                self.missing[id(p)] = len(out)
                for h in out:
                    self.waiters.setdefault(h, []).append(id(p))
            if new:
                from codesift.embed.batches import TokenBatch

                if len(new) == len(p.hashes):  # every text new to the run: the usual case of a first build
                    ids, lengths = p.token_ids, p.token_lengths
                else:
                    kept = np.zeros(len(p.hashes), dtype=bool)
                    kept[new] = True
                    ids, lengths = p.token_ids[np.repeat(kept, p.token_lengths)], p.token_lengths[new]
                self.summary.embedded += len(new)
                self.summary.tokens += len(ids)
                self.summary.truncated += p.truncated
                pipeline.submit(TokenBatch(np.asarray(keys, np.int64), ids, np.asarray(lengths, np.int32)))
            self.summary.reused += len(p.hashes) - len(new)
        self.pending.append(p)
        self.files_prepared += 1

    def receive(self, results: list) -> None:
        from codesift.index.vectors import quantize

        missing, by_key, waiting, vectors, waiters = self.missing, self.keys, self.waiting, self.vectors, self.waiters
        for keys, vecs in results:
            q = quantize(vecs)
            for k, v in zip(keys.tolist(), q):
                h = by_key.pop(k)
                waiting.pop(h, None)
                vectors[h] = v
                for f in waiters.pop(h, ()):
                    missing[f] -= 1
                    if not missing[f]:
                        del missing[f]

    def flush(self, final: bool) -> bool:
        """Hand ready files to the write thread in transactions of about BATCH_CHUNKS chunks (or what
        is ready when `final`, or when the last commit is COMMIT_SECONDS old); returns whether any were."""
        while self.pending and (self.pending[0].error is not None or id(self.pending[0]) not in self.missing):
            p = self.pending.popleft()
            self.ready.append(p)
            self.ready_chunks += p.n_chunks
        wrote = False
        while self.ready and (self.ready_chunks >= BATCH_CHUNKS or final
                              or time.monotonic() - self.last_commit > COMMIT_SECONDS
                              or (not self.pending and time.monotonic() - self.last_commit > DRAINED_COMMIT_SECONDS)):
            batch, n = [], 0
            while self.ready and n < BATCH_CHUNKS:
                batch.append(self.ready.popleft())
                n += batch[-1].n_chunks
            self.ready_chunks -= n
            self._hand_over([(p, self._file_vectors(p)) for p in batch])
            self.last_commit = time.monotonic()
            wrote = True
        return wrote

    def _file_vectors(self, p: PreparedFile) -> np.ndarray | None:
        """The file's [chunks, 2, dim] int8 vectors (text, head); releases those no other pending file needs."""
        if p.error is not None or not p.n_chunks:
            return None
        vectors = self.vectors
        both = np.stack([vectors[h] for h in p.hashes])  # every chunk's text, then every chunk's head
        out = np.stack((both[:p.n_chunks], both[p.n_chunks:]), axis=1)
        for h in set(p.hashes):
            self.needed[h] -= 1
            if self.needed[h] == 0:
                del self.needed[h]
                self.vectors.pop(h, None)
        return out

    def _hand_over(self, files: list[tuple[PreparedFile, np.ndarray | None]]) -> None:
        """One transaction's worth of files to the write sink; the summary counts them now."""
        summary = self.summary
        batch = WriteBatch()
        for p, vectors in files:
            row = self.known.get(p.source.rel)
            if p.error is not None:
                summary.skipped.append(Skipped(p.source.rel, p.error))
                if row is not None:
                    batch.deletes.append(p.source.rel)
                continue
            if row is not None and p.sha256 == row.sha256 and not p.language:
                batch.touches.append((row.id, p.source.size, p.source.mtime_ns))  # touched, not changed
                summary.unchanged += 1
                continue
            batch.records.append(FileRecord(p.source.rel, p.sha256, p.source.size, p.source.mtime_ns, p.language,
                                            p.n_lines, p.decode_errors, p.rows, p.fts, p.calls, p.imports, vectors,
                                            stored=p.stored))
            summary.new += row is None
            summary.changed += row is not None
            summary.decode_errors += p.decode_errors > 0
            if p.fallback:
                summary.fallbacks.append(Skipped(p.source.rel, p.fallback))
        self.sink.put(batch)
        self.files_done += len(files)

    @property
    def bytes_written(self) -> int:
        """Vector segment bytes written so far."""
        return self.sink.bytes_written

    @property
    def busy_s(self) -> float:
        """The write transactions' time: the run's floor while it writes."""
        return self.sink.busy_s

    def close(self, finish: bool = False) -> None:
        """Wait for every handed-over transaction; raises the writer's error, if any. `finish`: the
        run's last file is in (the writer may then do the run's end's work: write_sinks.py)."""
        self.sink.close(finish)
