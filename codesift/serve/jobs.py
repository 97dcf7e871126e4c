"""(Re)indexing in a background thread, with progress others can read while it runs.

The indexer writes through its own SQLite connection in WAL mode, so searches on other
connections keep answering from the last committed state meanwhile.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

from codesift.errors import CodesiftError

# Runs one indexing pass, reporting (files done, files to process, chunks so far); returns a summary line.
IndexRun = Callable[[Callable[[int, int, int], None]], str]


@dataclass
class JobProgress:
    state: str = "idle"  # idle, running, done, failed
    started_at: float | None = None
    finished_at: float | None = None
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0
    summary: str | None = None
    error: str | None = None


class IndexJob:
    """At most one indexing run at a time; `snapshot()` is safe from any thread."""

    def __init__(self, run: IndexRun):
        self._run = run
        self._lock = threading.Lock()
        self._progress = JobProgress()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start a run; False (and nothing started) if one is already running."""
        with self._lock:
            if self._progress.state == "running":
                return False
            self._progress = JobProgress(state="running", started_at=time.time())
            self._thread = threading.Thread(target=self._work, name="codesift-index", daemon=True)
            self._thread.start()
            return True

    def snapshot(self) -> dict:
        with self._lock:
            out = asdict(self._progress)
        if out["started_at"] is not None:
            end = out["finished_at"] or time.time()
            out["seconds"] = round(end - out["started_at"], 1)
        return out

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _report(self, done: int, total: int, chunks: int) -> None:
        with self._lock:
            self._progress.files_done, self._progress.files_total, self._progress.chunks = done, total, chunks

    def _work(self) -> None:
        try:
            summary, error = self._run(self._report), None
        except CodesiftError as e:
            summary, error = None, str(e)
        except Exception as e:  # the server must outlive a failed run; the error is shown by status
            summary, error = None, f"{type(e).__name__}: {e}"
        with self._lock:
            self._progress.state = "failed" if error else "done"
            self._progress.summary, self._progress.error = summary, error
            self._progress.finished_at = time.time()
