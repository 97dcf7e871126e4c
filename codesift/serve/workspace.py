"""One indexed root as a server sees it: where its index lives, connections per thread, the
background index job, and one method per tool returning JSON-ready dicts.

Requests run on worker threads, and a SQLite connection must stay on the thread that opened
it: navigation opens a Store per request (cheap), and each thread keeps its own Searcher
(which holds the query encoder) until the index's generation changes.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from codesift.errors import CodesiftError, StoreError
from codesift.index.store import DB_NAME, DEFAULT_DIR_NAME, Store, find_index_dir
from codesift.search import navigate
from codesift.search.searcher import Searcher
from codesift.search.budget import fit_response
from codesift.search.views import (chunk_dict, chunk_meta, definition_dict, explore_dict, freshness_dict, lines_dict,
                                   refs_dict, result_notes, search_json, search_text, similar_dict, without_nulls)
from codesift.serve.jobs import IndexJob


class Workspace:
    def __init__(self, root: Path, index_dir: Path, model: str | None = None, device: str = "auto"):
        self.root, self.index_dir = Path(root).resolve(), Path(index_dir).resolve()
        self.model, self.device = model, device
        self.job = IndexJob(self._index_once)
        self._local = threading.local()
        self.watcher = None  # serve.watch.Watcher, once watch() is called
        self._embedder = None  # kept loaded between the watcher's runs

    @classmethod
    def locate(cls, root: Path | None = None, index_dir: Path | None = None, cwd: Path | None = None,
               model: str | None = None, device: str = "auto") -> "Workspace":
        """Which root to serve: --index-dir's (its recorded root), else --root (index in ROOT/.codesift),
        else the nearest .codesift above `cwd`, else `cwd` itself (not indexed yet)."""
        cwd = Path(cwd or Path.cwd())
        if index_dir is None and root is None:
            index_dir = find_index_dir(cwd)
            if index_dir is None:
                root = cwd
        if index_dir is None:
            return cls(root, Path(root) / DEFAULT_DIR_NAME, model, device)
        recorded = _recorded_root(Path(index_dir))
        if recorded is None and root is None:
            raise CodesiftError(f"{index_dir} holds no index yet; give --root too, so that the server knows "
                                "which folder its index tool should index")
        if recorded is not None and root is not None and Path(root).resolve() != recorded:
            raise CodesiftError(f"the index at {index_dir} belongs to {recorded}, not {Path(root).resolve()}; "
                                "drop --root or use another --index-dir")
        return cls(recorded or root, Path(index_dir), model, device)

    # --- connections ------------------------------------------------------------------
    def has_index(self) -> bool:
        return (self.index_dir / DB_NAME).is_file()

    def _require_index(self) -> None:
        if not self.has_index():
            raise CodesiftError(f"{self.root} is not indexed yet; call the index tool, then poll status "
                                "until job.state is done")

    def _open_readonly(self) -> Store:
        """A read-only connection: a reader must never race the indexer at creating the schema."""
        self._require_index()
        try:
            return Store(self.index_dir, readonly=True)
        except StoreError as e:
            if self.job.snapshot()["state"] == "running":
                raise CodesiftError("the index is being created right now; poll status until job.state "
                                    "is done") from e
            raise

    @contextmanager
    def store(self) -> Iterator[Store]:
        with self._open_readonly() as store:
            yield store

    def searcher(self) -> Searcher:
        """This thread's Searcher, opened again when an index run has finished since."""
        self._require_index()
        cached = getattr(self._local, "searcher", None)
        if cached is not None:
            if cached.store.get_meta("generation") == cached.meta.get("generation"):
                return cached
            cached.close()
        self._open_readonly().close()  # the schema is complete: the Searcher's own connection won't create it
        self._local.searcher = Searcher(self.index_dir, model=self.model)
        return self._local.searcher

    # --- tools ------------------------------------------------------------------------
    def status(self) -> dict:
        info = {"root": str(self.root), "index_dir": str(self.index_dir), "job": self.job.snapshot()}
        if self.watcher is not None:
            stats = self.watcher.stats
            info["watch"] = without_nulls({"running": self.watcher.running, "runs": stats.runs,
                                           "failures": stats.failures, "last_error": stats.last_error})
        if not self.has_index():
            return {**info, "state": "not indexed", "searchable": False,
                    "hint": "call the index tool to build the index, then poll status"}
        try:
            with self.store() as store:
                meta, counts, langs = store.meta(), store.counts(), store.languages()
        except (CodesiftError, sqlite3.Error) as e:  # being created by the job (schema not yet committed), or damaged
            state = "indexing" if info["job"]["state"] == "running" else "unreadable"
            return {**info, "state": state, "searchable": False, "hint": str(e)}
        info.update(state=meta.get("state"), searchable=bool(meta.get("model_sha256")), **counts,
                    languages={k: {"files": v[0], "chunks": v[1]} for k, v in langs.items()},
                    model=meta.get("model_name"), indexed_at=meta.get("indexed_at"))
        try:
            # every indexed file checked, as a status is asked for (a search checks its own files)
            fresh = freshness_dict(self.searcher().freshness())
            info.update((k, v) for k, v in fresh.items()
                        if k in ("changed_files", "changed", "changed_folders", "folders"))
        except (CodesiftError, sqlite3.Error):
            pass  # no model stamp yet (a first run going): nothing indexed to be stale
        if meta.get("state") != "complete":
            info["hint"] = ("the index is incomplete: being built now (see job), or an earlier run was "
                            "interrupted (call index to finish it); search answers from what is there")
        return info

    def index(self) -> dict:
        started = self.job.start()
        return {"started": started, "job": self.job.snapshot(),
                "note": ("indexing in the background; poll status for progress. Searches keep answering "
                         "from the current index meanwhile." if started else
                         "an index run is already going; poll status for its progress")}

    def search(self, query: str, mode: str = "hybrid", k: int = 10, path: str | None = None,
               language: str | None = None, max_tokens: int = 2000, format: str = "text",
               include_generated: bool = False, rerank: bool = False) -> str | dict:
        """Results fitted so that the whole response (text, or the JSON as sent) is within
        `max_tokens` as an agent counts them (budget.response_tokens)."""
        if not query.strip():
            raise CodesiftError("the query is empty; give words, a question or an identifier")
        if path is not None and "\x00" in path:
            raise CodesiftError("the path glob contains a NUL byte")
        searcher = self.searcher()
        results = searcher.search(query, mode=mode, k=k, path_glob=path or None,
                                  languages=[language] if language else None, include_generated=include_generated,
                                  rerank=rerank)
        fresh = searcher.freshness({r.chunk.path for r in results})
        note = result_notes(searcher, results, fresh)
        if format == "text":
            return fit_response(results, max_tokens,
                                lambda kept, left: search_text(query, mode, kept, left, note, fresh))[1]
        if format != "json":
            raise CodesiftError(f"unknown format {format!r}; use text or json")

        def as_json(kept, left) -> dict:
            return search_json(query, mode, kept, left, max_tokens, note, fresh)

        fitted, _ = fit_response(results, max_tokens, lambda kept, left: json.dumps(
            as_json(kept, left), ensure_ascii=False, separators=(",", ":")))
        return as_json(fitted, len(results) - len(fitted))

    def similar(self, target: str, k: int = 10, path: str | None = None) -> dict:
        """Chunks most like the one at `target` (a ref or PATH:LINE), by its stored vector."""
        if path is not None and "\x00" in path:
            raise CodesiftError("the path glob contains a NUL byte")
        searcher = self.searcher()
        chunk = navigate.chunk_of(searcher.store, target)
        return without_nulls(similar_dict(chunk, searcher.similar(chunk, k=k, path_glob=path or None)))

    def get_chunk(self, id_or_ref: str, whole: bool = False) -> dict:
        with self.store() as store:
            chunk = navigate.get_chunk(store, id_or_ref)
            if whole:
                return definition_dict(navigate.definition_of(store, chunk))
            return without_nulls(chunk_dict(chunk))

    def get_symbol(self, target: str) -> dict:
        """The complete definitions of a symbol name, or the one holding PATH:LINE."""
        with self.store() as store:
            location = navigate.parse_location(target)
            if location is not None:
                definitions, total = [navigate.definition_at(store, *location)], 1
            else:
                definitions, total = navigate.get_symbol(store, target)
        out = {"target": target, "total": total, "definitions": [definition_dict(d) for d in definitions]}
        if total > len(definitions):
            out["note"] = (f"{total - len(definitions)} more definitions not returned; qualify the name "
                           "(Class.method) or use lookup to list them all")
        return out

    def read_lines(self, path: str, start_line: int = 1, end_line: int | None = None) -> dict:
        with self.store() as store:
            return lines_dict(navigate.read_lines(store, path, start_line, end_line))

    def lookup(self, name: str, prefix: bool = False, limit: int = 50) -> dict:
        with self.store() as store:
            rows = navigate.lookup(store, name, prefix=prefix, limit=limit)
        return {"name": name, "prefix": prefix, "results": [without_nulls(chunk_meta(c)) for c in rows]}

    def refs(self, symbol: str) -> dict:
        with self.store() as store:
            return without_nulls(refs_dict(navigate.refs(store, symbol)))

    def explore(self, path: str | None = None, depth: int | None = 2, limit: int | None = 100) -> dict:
        with self.store() as store:
            return without_nulls(explore_dict(navigate.explore(store, path, depth=depth, limit=limit)))

    # --- background ---------------------------------------------------------------------
    def _index_once(self, progress) -> str:
        from codesift.index.indexer import index_tree  # torch loads only if something needs embedding

        model = self.model or _recorded_model(self.index_dir) or "default"
        embedder = None
        if self.watcher is not None:  # runs come often: load the model once
            if self._embedder is None:
                from codesift.embed.embedder import Embedder
                from codesift.index.indexer import model_for_index

                self._embedder = Embedder.load(model_for_index(model, self.index_dir), device=self.device)
            embedder = self._embedder
        return index_tree(self.root, self.index_dir, model=model, device=self.device, progress=progress,
                          embedder=embedder).line()

    def watch(self, quiet_ms: int | None = None, max_wait_ms: int | None = None) -> None:
        """Keep the index fresh from now on: a watcher thread starts an index job after each group of
        file changes (and once at the start, for what changed while nobody watched)."""
        from codesift.serve import watch

        self.watcher = watch.Watcher(self.root, self.index_dir, self._index_for_watcher,
                                     quiet_ms=quiet_ms or watch.DEFAULT_QUIET_MS,
                                     max_wait_ms=max_wait_ms or watch.DEFAULT_MAX_WAIT_MS).start()

    def _index_for_watcher(self) -> str:
        """One index job, run to its end: the job the index tool shows in status. A job already
        going may have walked the tree before the change: wait for it, then run one more."""
        while not self.job.start():
            self.job.wait()
        self.job.wait()
        done = self.job.snapshot()
        if done["state"] == "failed":
            raise CodesiftError(done["error"] or "the index run failed")
        return done["summary"] or ""

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()


def _recorded_root(index_dir: Path) -> Path | None:
    if not (index_dir / DB_NAME).is_file():
        return None
    with Store(index_dir, readonly=True) as store:
        root = store.get_meta("root")
    return Path(root) if root else None


def _recorded_model(index_dir: Path) -> str | None:
    if not (index_dir / DB_NAME).is_file():
        return None
    with Store(index_dir, readonly=True) as store:
        return store.get_meta("model_spec")
