"""Where the index's write transactions run: a thread of the indexing process, or a process of
their own for big runs.

Each transaction is one `WriteBatch`. SQLite lets go of the GIL while it works, but binding every
row's values takes it back, many times a transaction; in a big run the writing thread and the
threads that collect the workers' files and feed the model then wait on each other. A writer
process has a GIL of its own: the indexing process only copies it each batch's bytes.
"""
from __future__ import annotations

import os
import pickle
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from codesift.errors import StoreError
from codesift.index.store import FileRecord, Store

IN_FLIGHT = 2  # transactions handed over and not yet done: memory stays bounded
FINISH = b"finish"  # to the writer process: no more batches, merge what is left (`ProcessSink.close`)


@dataclass
class WriteBatch:
    """One transaction: files to forget, files to touch (same content, new stat), files to write."""

    deletes: list[str] = field(default_factory=list)
    touches: list[tuple[int, int, int]] = field(default_factory=list)  # (file id, size, mtime_ns)
    records: list[FileRecord] = field(default_factory=list)


def apply_batch(store: Store, batch: WriteBatch) -> int:
    """Run one batch as one transaction; returns the vector bytes written."""
    from codesift.index.document import bm25_fields

    with store.transaction():
        for path in batch.deletes:
            store.delete_file(path, bm25_fields)
        for file_id, size, mtime_ns in batch.touches:
            store.touch_file(file_id, size, mtime_ns)
        return store.write_files(batch.records, bm25_fields)


def merge_step(store: Store) -> int:
    """Merge one group of segments that `merge_plan` says should be, as one transaction; returns the
    vector bytes written (0: nothing to merge). The merged files stay on disk until the run's end
    (`finish_index` removes them): a search that listed the segments before this commit still reads them."""
    from codesift.index.vectors import merge_plan

    plan = merge_plan(store.segments())
    if not plan:
        return 0
    with store.transaction():
        return store.merge_segments(plan[0])


class ThreadSink:
    """Transactions in a thread of this process, with its own connection."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.batches: queue.Queue = queue.Queue(maxsize=IN_FLIGHT)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.bytes_written = 0
        self.busy_s = 0.0

    def put(self, batch: WriteBatch) -> None:
        if self.error is not None:
            raise self.error
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="codesift-write", daemon=True)
            self.thread.start()
        self.batches.put(batch)

    def close(self, finish: bool = False) -> None:
        """Wait for every batch handed over; raises the first error, if any. (`finish`: as
        ProcessSink's; merges stay with the run's end here, in this process either way.)"""
        if self.thread is not None:
            self.batches.put(None)
            self.thread.join()
            self.thread = None
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        store = None
        try:
            store = Store(self.index_dir)
            while (batch := self.batches.get()) is not None:
                t0 = time.perf_counter()
                self.bytes_written += apply_batch(store, batch)
                self.busy_s += time.perf_counter() - t0
        except BaseException as e:  # surfaces in the indexing thread at its next hand-over
            self.error = e
            while self.batches.get() is not None:  # keep the producer from blocking
                pass
        finally:
            if store is not None:
                store.close()


class ProcessSink:
    """Transactions in a process of their own (started on the first batch), fed through a pipe."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.process = None
        self.conn = None
        self.in_flight = 0
        self.error: BaseException | None = None
        self.bytes_written = 0
        self.busy_s = 0.0
        self.merge_s = 0.0  # merging segments while no batch waited (`merge_step`)
        self.finish_s = 0.0  # the work of the run's end done here once the last batch was in (`close`)

    def start(self) -> None:
        """Start the process now (it imports and opens the index while other work goes on)."""
        if self.process is None:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # the indexing process may hold torch and CUDA state
            self.conn, child = ctx.Pipe()
            self.process = ctx.Process(target=_serve, args=(str(self.index_dir), child), name="codesift-write",
                                       daemon=True)
            self.process.start()
            child.close()

    def put(self, batch: WriteBatch) -> None:
        if self.error is not None:
            raise self.error
        self.start()
        while self.in_flight >= IN_FLIGHT:
            self._receive()
        try:
            self.conn.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._receive()  # the process ended: its error, or that it died
            raise self.error or StoreError("the index writer process ended unexpectedly")
        self.in_flight += 1

    def _receive(self) -> None:
        try:
            answer = self.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            self.in_flight = 0
            self.error = self.error or StoreError(
                "the index writer process ended unexpectedly (out of memory?); the index keeps its last"
                " committed state: run `codesift index` again")
            raise self.error
        self.in_flight -= 1
        if isinstance(answer, BaseException):
            self.error = answer
            raise answer
        written, busy, merge_s = answer
        self.bytes_written += written
        self.busy_s += busy
        self.merge_s += merge_s

    def close(self, finish: bool = False) -> None:
        """Wait for every batch handed over, then for the process to end; raises its error, if any.
        With `finish` (the run's last batch is in), the process first merges the segments that
        `merge_plan` says should be and makes the deferred indexes, sparing the run's end that work."""
        if self.process is None:
            return
        try:
            while self.in_flight and self.error is None:
                self._receive()
        finally:
            try:
                if finish and self.error is None:
                    self.conn.send_bytes(FINISH)
                    written, self.finish_s, merge_s = self.conn.recv()
                    self.bytes_written += written
                    self.merge_s += merge_s
                self.conn.send_bytes(b"")  # no more batches
            except (OSError, EOFError):
                pass
            self.process.join()
            self.conn.close()
            self.process = None
        if self.error is not None:
            raise self.error


def _serve(index_dir: str, conn) -> None:
    """The writer process: a batch in, one transaction, an answer out, until an empty message.
    While no batch waits, it merges segments (`merge_step`), work the run's end would otherwise do
    after the last vector; what a merge wrote is counted in the next answer."""
    from codesift.index.prepare import exit_with_parent

    # Ctrl-C reaches the whole process group: the indexing process decides, and ends the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    parent = os.getppid()
    store = Store(Path(index_dir))
    merging, merged, merge_s = True, 0, 0.0
    try:
        while True:
            if merging and not conn.poll():
                t0 = time.perf_counter()
                try:
                    n = merge_step(store)
                except Exception:  # rolled back; the run's end merges again, and reports what fails
                    n, merging = 0, False
                merge_s += time.perf_counter() - t0
                merged += n
                merging = merging and n > 0
                if n:
                    continue
            data = conn.recv_bytes()
            if data == FINISH:
                # The last batch is in: merge what is left and make the indexes a first build
                # deferred, here, where this connection's cache already holds the pages (the
                # indexing process would fill a cache of its own), then say what that took.
                t0 = time.perf_counter()
                try:
                    while n := merge_step(store) if merging else 0:
                        merged += n
                    with store.transaction():
                        store.ensure_indexes()
                except Exception:
                    pass  # rolled back; the run's end does it again, and reports what fails
                conn.send((merged, time.perf_counter() - t0, merge_s))
                break
            if not data:
                break
            if os.getppid() != parent:
                # The run's process died (its index lock with it) and another run may have begun:
                # write nothing more. A transaction already begun holds SQLite's write lock, so the
                # next run's writes and its clean-up of unrecorded segment files come after it.
                break
            t0 = time.perf_counter()
            try:
                written = apply_batch(store, pickle.loads(data))
            except BaseException as e:
                conn.send(_picklable(e))
                return
            conn.send((written + merged, time.perf_counter() - t0, merge_s))
            merging, merged, merge_s = True, 0, 0.0  # a new segment: the plan may have changed
    except EOFError:  # the indexing process went away
        pass
    finally:
        store.close()
        conn.close()
        os._exit(0)  # nothing else to run down: no atexit handlers of a spawned copy


def _picklable(e: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return StoreError(f"{type(e).__name__}: {e}")
