"""Keeping an index fresh: file events from the OS (watchfiles), grouped while they keep coming,
then one incremental index run per group.

The index run itself decides what changed (size and mtime, then the bytes' hash), so an event
is only a reason to look: events for ignored files cost a walk that finds nothing to do, and
none is lost by being coalesced. Events that arrive while a run is going are kept by watchfiles
until the loop asks again, so they start the next run. Runs take the index's exclusive lock like
`codesift index` does: a concurrent `codesift index` and a watcher take turns.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from watchfiles import DefaultFilter, watch

# Quiet time that ends a group of events (an editor's save, `git checkout`), and the longest a
# group may grow while events keep coming.
DEFAULT_QUIET_MS = 300
DEFAULT_MAX_WAIT_MS = 2000


@dataclass
class WatchStats:
    """What a watcher has done so far (read from other threads: a copy of plain values)."""

    runs: int = 0
    failures: int = 0
    last_summary: str | None = None
    last_error: str | None = None
    last_run_at: float | None = None
    changed_paths: list[str] = field(default_factory=list)  # of the last group


class Watcher:
    """Watches `root` and calls `run_index()` after each group of file events.

    `run_index` returns a one-line summary; it is the caller's index run (index_tree with a loaded
    embedder, or the MCP server's background job). `on_run(summary, error)` hears about each run.
    """

    def __init__(self, root: str | Path, index_dir: str | Path, run_index: Callable[[], str], *,
                 quiet_ms: int = DEFAULT_QUIET_MS, max_wait_ms: int = DEFAULT_MAX_WAIT_MS,
                 on_run: Callable[[str | None, str | None], None] | None = None, catch_up: bool = True):
        self.root = Path(root).resolve()
        self.index_dir = Path(index_dir).resolve()
        self.run_index = run_index
        self.quiet_ms, self.max_wait_ms = quiet_ms, max_wait_ms
        self.on_run = on_run
        # one run as soon as the watch is in place: what changed before it started (or while the
        # watcher was not running) is indexed too, and nothing edited meanwhile is missed
        self.catch_up = catch_up
        self.stats = WatchStats()
        self.ready = threading.Event()  # set once the OS watch is in place: edits from then on are seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def relevant(self, change, path: str) -> bool:
        """Not the index's own files, nor a rebuild's staging folder beside them (INDEX.rebuild), nor
        what watchfiles ignores by default (.git, __pycache__, editor swap files)."""
        p = Path(path)
        if p.is_relative_to(self.index_dir.parent):
            top = p.relative_to(self.index_dir.parent).parts[:1]
            if top and (top[0] == self.index_dir.name or top[0].startswith(self.index_dir.name + ".")):
                return False
        return _DEFAULT_FILTER(change, path)

    def run(self) -> None:
        """Watch until `stop()` (or Ctrl-C in the main thread, which is raised as KeyboardInterrupt)."""
        events = watch(self.root, watch_filter=self.relevant, debounce=self.max_wait_ms, step=self.quiet_ms,
                       stop_event=self._stop, rust_timeout=1000, yield_on_timeout=True,
                       raise_interrupt=threading.current_thread() is threading.main_thread())
        try:
            for changes in events:
                first = not self.ready.is_set()
                self.ready.set()
                if self._stop.is_set():
                    return
                if changes or (first and self.catch_up):
                    self._run_once(sorted({p for _, p in changes}))
        finally:
            self.ready.set()
            events.close()

    def _run_once(self, paths: list[str]) -> None:
        summary = error = None
        try:
            summary = self.run_index()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a failed run (a file mid-write, a full disk) must not end the watch
            error = f"{type(e).__name__}: {e}"
        self.stats.runs += 1
        self.stats.failures += error is not None
        self.stats.last_summary, self.stats.last_error = summary, error
        self.stats.last_run_at = time.time()
        self.stats.changed_paths = paths
        if self.on_run is not None:
            self.on_run(summary, error)

    # --- in a thread (the MCP server, tests) ------------------------------------------
    def start(self) -> "Watcher":
        self._thread = threading.Thread(target=self.run, name="codesift-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


_DEFAULT_FILTER = DefaultFilter()
