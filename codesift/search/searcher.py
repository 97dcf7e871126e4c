"""Answering queries from an index: BM25 over code-aware terms, dense vectors, rank fusion.

Runs without torch: queries are encoded by the numpy encoder over the same weights.
"""
from __future__ import annotations

import fnmatch
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from codesift.embed.model_files import resolve_model
from codesift.errors import CodesiftError, ModelMismatchError, StoreError
from codesift.index.formats import INDEX_FORMAT
from codesift.index.store import ChunkRow, Store
from codesift.search.fusion import normalized_fusion, reciprocal_rank_fusion, top_k
from codesift.terms import query_terms, spaced_identifiers
from codesift.walk.roles import SKIPPED_BY_DEFAULT

MODES = ("hybrid", "bm25", "semantic")
# Ranked results read before pieces of one symbol are folded together: room for those dropped.
SPARE_RESULTS = 3


@dataclass(frozen=True)
class SearchConfig:
    """How results are ranked. The defaults are what codesift ships; benchmarks/ablation.py
    turns each choice off to measure what it contributes."""

    # FTS5 bm25() column weights for (name, path, body): a match in a symbol's name says more
    # than one in its body; a body weight under 1 also slows term-frequency saturation.
    field_weights: tuple[float, float, float] = (10.0, 1.0, 0.5)
    fusion: str = "normalized"  # or "rrf"
    # an identifier-like query (a name, not a question) leans on exact lexical matches
    identifier_weights: tuple[float, float] | None = (0.8, 0.2)
    one_part_per_symbol: bool = True
    # Definitions answer questions better than the glue around them: code outside any function
    # ("module") and bare class headers rank lower. Applied to scores normalised to [0, 1]. Chosen
    # with the role weights below by benchmarks/priors.py.
    kind_weights: tuple[tuple[str, float], ...] = (("module", 0.5), ("class", 0.7))
    # Taken from each retriever before fusion. Deep lists matter with min-max fusion: the floor of
    # each list is then near the corpus's background score rather than an arbitrary 100th place,
    # and a chunk just past a shallow cut no longer counts as absent (measured: 100 -> 1000 gave
    # +0.011 / +0.010 / +0.010 hybrid MRR@10 on stdlib / sklearn / held-out sympy).
    candidates: int = 1000
    # What a file is for (walk/roles.py) as a prior: tests, build output, manifests and changelogs
    # crowd source out of results for words they share with it; docs are not held back. Chosen on
    # the tuning corpora (eval sets and real packages) by benchmarks/priors.py, with changelogs,
    # manifests and generated files kept below source; bundles and lock files are left out by
    # default (skipped_roles), so theirs is untuned. Multiplies scores normalised to [0, 1].
    role_weights: tuple[tuple[str, float], ...] = (("test", 0.6), ("changelog", 0.8), ("manifest", 0.8),
                                                   ("generated", 0.5), ("bundle", 0.5), ("lock", 0.5))
    # Roles left out of results unless the search asks for them (include_generated) or names paths.
    skipped_roles: tuple[str, ...] = SKIPPED_BY_DEFAULT
    # A chunk's dense score is the better of its text vector and its head vector (path, name,
    # signature; see index/document.py); False uses the text vector alone.
    head_vectors: bool = True
    # The second stage (search/rerank.py), when a search asks for it: how many fused candidates its
    # model reads (at least k), the weight of its score against the fused one (1: its order alone;
    # a model that reads two views of a chunk splits it between them as its `view_shares` say),
    # and the tokens of a (query, chunk) pair a cross-encoder reads. None: the values chosen for
    # the kind of model loaded (`embed/rerankers.py`).
    rerank_depth: int | None = None
    rerank_weight: float | None = None
    rerank_max_tokens: int | None = None


DEFAULT_CONFIG = SearchConfig()


@dataclass(frozen=True)
class Freshness:
    indexed_at: str | None  # when the last index run finished (store.now() format), None if none did
    changed: dict[str, str]  # path -> "changed" or "deleted": the indexed files checked that were edited or are gone
    # folders ("" the root) with entries added, removed or renamed since the last run walked them
    folders: tuple[str, ...] = ()
    # True: every indexed file was checked. False: the results' files and those directly in `folders`
    # (an edit in place elsewhere is not seen; `Searcher.freshness()` without paths checks them all).
    every_file: bool = True


@dataclass(frozen=True)
class SearchResult:
    chunk: ChunkRow
    score: float

    def to_dict(self) -> dict:
        c = self.chunk
        return {"path": c.path, "start_line": c.start_line, "end_line": c.end_line,
                "score": round(float(self.score), 6), "kind": c.kind, "role": c.role, "symbol": c.symbol,
                "heading_path": list(c.heading_path) if c.heading_path else None, "id": c.id}


def check_text(query: str) -> None:
    """A query must be text the tokenizer and the index can hold: no lone surrogates (what Python
    makes of bytes that are not UTF-8)."""
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise CodesiftError("the query is not valid UTF-8 text; give it as UTF-8") from None


def path_matches(path: str, pattern: str) -> bool:
    """Glob on the relative path; a pattern without '/' also matches the file name; a plain folder matches below it."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if "/" not in pattern and fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern):
        return True
    if not any(ch in pattern for ch in "*?["):
        return path.startswith(pattern.rstrip("/") + "/")
    return pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])


_IDENTIFIER = re.compile(r"[A-Za-z_][\w.:]*(\(\))?$")


def looks_like_identifier(query: str) -> bool:
    """`parse_header`, `HttpServer.start`, `getUserName`, `ns::Foo`: a name, not a question."""
    words = query.split()
    return 0 < len(words) <= 2 and all(_IDENTIFIER.match(w) for w in words) and any(
        "_" in w or "." in w or "::" in w or re.search(r"[a-z][A-Z]", w) for w in words)


class _InBackground:
    """A function run on a thread of its own: `result()` waits, then returns what it returned or
    raises what it raised."""

    def __init__(self, fn):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name="codesift-search", daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller of result()
            self._error = e

    def wait(self) -> None:
        self._thread.join()

    def result(self):
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value


def one_part_per_symbol(results: list[SearchResult], k: int) -> list[SearchResult]:
    """Keep only the best-ranked piece of a symbol that was split into parts: the others would
    spend result slots on the same function."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in results:
        c = r.chunk
        if c.part and c.symbol:
            key = (c.path, c.symbol)
            if key in seen:
                continue
            seen.add(key)
        out.append(r)
        if len(out) == k:
            break
    return out


class Searcher:
    def __init__(self, index_dir: Path, model: str | None = None, config: SearchConfig = DEFAULT_CONFIG,
                 reranker: str | None = None, dim: int | None = None):
        """`model`: the query model (default: the index's); `dim`: the --dim of its vectors (Matryoshka),
        which must be the index's (default: the index's); `reranker`: the model a search with
        `rerank=True` loads (a cross-encoder or an embedding model: a folder or name, see
        embed/rerankers.py); default $CODESIFT_RERANK_MODEL, else the default reranker."""
        from codesift.index.model_stamp import check_dim

        self.config = config
        self.reranker_spec = reranker
        self.store = Store(index_dir, readonly=True)
        meta = self.store.meta()
        if not meta.get("model_sha256"):
            self.store.close()
            raise StoreError(f"the index at {index_dir} is empty; run `codesift index`")
        if dim is not None:  # refused before any search, whatever the mode
            try:
                check_dim(meta, dim, dim)
            except CodesiftError:
                self.store.close()
                raise
        self.meta = meta
        self.model_spec = model
        self.dim = int(meta["dim"])
        self._encoder = None
        self._reranker = None
        self._segments: dict = {}  # segment id -> Segment (memory-mapped; files never change)

    @property
    def incomplete(self) -> bool:
        return self.meta.get("state") != "complete"

    @property
    def outdated(self) -> bool:
        """Built by a codesift that chunked or embedded differently (e.g. before head vectors):
        it still answers, a little worse, until `codesift index` brings it up to date."""
        return self.meta.get("index_format") != INDEX_FORMAT

    # --- semantic ---------------------------------------------------------------------
    def encoder(self):
        if self._encoder is None:
            from codesift.embed.query_encoder import QueryEncoder
            from codesift.index.model_stamp import check_model, files_at_dim

            spec = self.model_spec or self.meta.get("model_spec") or "default"
            try:
                files = resolve_model(spec)
            except CodesiftError as e:
                raise StoreError(f"this index was built with model {self.meta.get('model_name')} ({spec}), "
                                 f"which cannot be loaded now: {e}") from e
            files = files_at_dim(files, None, self.meta)
            check_model(self.meta, files, spec)
            if files.dim != self.dim:
                raise ModelMismatchError(f"model {files.name} has dimension {files.dim}, the index {self.dim}")
            self._encoder = QueryEncoder(files)
        return self._encoder

    def reranker(self):
        """The second stage's model (a cross-encoder, or an embedding model's cosines), loaded on
        first use, on the CPU."""
        if self._reranker is None:
            from codesift.embed.rerankers import load_reranker

            spec = self.reranker_spec or os.environ.get("CODESIFT_RERANK_MODEL") or "default"
            self._reranker = load_reranker(spec, max_tokens=self.config.rerank_max_tokens)
        return self._reranker

    def rerank_settings(self) -> tuple[int, float]:
        """(depth, weight) of the second stage: the config's where set, else the loaded model's own."""
        model, cfg = self.reranker(), self.config
        return (model.depth if cfg.rerank_depth is None else cfg.rerank_depth,
                model.weight if cfg.rerank_weight is None else cfg.rerank_weight)

    def segments(self) -> list:
        """The committed vector segments, tombstones applied; files already open are reused (a
        segment never changes once written), the tombstones are read again every time."""
        from codesift.index.vectors import Segment

        dead = self.store.dead_rows()
        out = []
        for info in self.store.segments():
            if not info.rows:
                continue
            seg = self._segments.get(info.id)
            if seg is None:
                seg = self._segments[info.id] = Segment.open(self.store.dir, info.id)
            out.append(seg.with_dead(dead.get(info.id, ())))
        if self.store.legacy:  # an index not yet upgraded: vectors still in the database
            from codesift.index.vectors import quantize

            rows, mat = self.store.legacy_vectors(self.dim)
            if len(rows):
                out.append(Segment(-1, rows, quantize(mat), None))
        return out

    def semantic_scores(self, qvec: np.ndarray, allowed: set[int] | None, n: int,
                        segments: list | None = None) -> dict[int, float]:
        """`segments`: those `segments()` returned (default: read now); given, no database is read,
        so that another thread may score them."""
        from codesift.index.vectors import top_chunks

        segments = self.segments() if segments is None else segments
        return top_chunks(segments, qvec, n, use_head=self.config.head_vectors, allowed=allowed)

    # --- lexical ----------------------------------------------------------------------
    def bm25_scores(self, query: str, allowed: set[int] | None, n: int) -> dict[int, float]:
        qterms = query_terms(query)
        if not qterms:
            return {}
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in qterms)
        out = {}
        for rowid, score in self.store.bm25(match, self.config.field_weights, n if allowed is None else -1):
            if allowed is None or rowid in allowed:
                out[rowid] = score
                if len(out) >= n:
                    break
        return out

    # --- filters ----------------------------------------------------------------------
    def allowed_rowids(self, path_glob: str | Sequence[str] | None, languages: Sequence[str] | None,
                       exclude_paths: Sequence[str] | None = None) -> set[int] | None:
        """Chunks in a file matching any of the `path_glob`s (all files if none), in one of the
        `languages` (all if none), and matching none of the `exclude_paths`; None: no filter."""
        globs = [path_glob] if isinstance(path_glob, str) else [g for g in path_glob or () if g]
        excludes = [g for g in exclude_paths or () if g]
        if not globs and not languages and not excludes:
            return None
        langs = self.check_languages(languages)
        return {rowid for rowid, path, lang in self.store.chunk_paths()
                if (not langs or lang in langs) and (not globs or any(path_matches(path, g) for g in globs))
                and not any(path_matches(path, g) for g in excludes)}

    def check_languages(self, languages: Sequence[str] | None) -> set[str]:
        """The languages asked for, lower-cased; an error naming the indexed ones if any is not
        indexed (a filter that can match nothing is a typo, not a question)."""
        langs = {lang.lower() for lang in languages or ()}
        indexed = self.store.languages()
        unknown = sorted(langs - set(indexed))
        if unknown:
            raise CodesiftError(f"no indexed file is in language {', '.join(map(repr, unknown))}; the index holds "
                                f"{', '.join(indexed) or 'no files'} (see `codesift status`)")
        return langs

    # --- search -----------------------------------------------------------------------
    def search(self, query: str, mode: str = "hybrid", k: int = 10, path_glob: str | Sequence[str] | None = None,
               languages: Sequence[str] | None = None, qvec: np.ndarray | None = None,
               exclude_paths: Sequence[str] | None = None, include_generated: bool = False,
               rerank: bool = False) -> list[SearchResult]:
        """The k best chunks for `query`, one per split symbol. `path_glob` (one glob or several: any
        may match), `languages` and `exclude_paths` (globs) narrow the files searched. Lock files
        and bundles (config.skipped_roles) are left out unless `include_generated` or a `path_glob`
        is given (a path asked for by name is searched whatever its role). `rerank`: the first
        stage's best candidates (max(k, the reranker's depth)) re-ordered by the second stage's model
        (search/rerank.py)."""
        if mode not in MODES:
            raise CodesiftError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if not query.strip():
            raise CodesiftError("the query is empty; give words, a question or an identifier")
        check_text(query)
        if mode != "bm25" and qvec is None:
            # A hybrid search loads the model and encodes its query on a thread of its own from here
            # on, while this one finds the chunks allowed and reads the BM25 candidates.
            qvec = (_InBackground(lambda: self.encode_queries([query])[0]) if mode == "hybrid"
                    else self.encode_queries([query])[0])
        if rerank:
            depth, weight = self.rerank_settings()
            depth = max(k, depth)
        else:
            depth = k
        try:
            with self.store.snapshot():  # every read below sees one committed state
                skipped = () if include_generated or path_glob else self.config.skipped_roles
                results = self._search(query, mode, depth, self.allowed_rowids(path_glob, languages, exclude_paths),
                                       qvec, skipped)
        finally:
            if isinstance(qvec, _InBackground):
                qvec.wait()  # a search that failed leaves no thread behind
        if rerank:
            from codesift.search.rerank import rerank as second_stage

            results = second_stage(query, results, self.reranker(), depth, weight)[:k]
        return results

    def _search(self, query: str, mode: str, k: int, allowed: set[int] | None,
                qvec: np.ndarray | _InBackground | None, skipped_roles: Sequence[str] = ()) -> list[SearchResult]:
        cfg = self.config
        n = max(cfg.candidates, k)
        dense = None
        if mode != "bm25":
            segments = self.segments()  # read here: the database connection stays on this thread

            def dense_scores() -> dict[int, float]:
                vec = qvec.result() if isinstance(qvec, _InBackground) else qvec
                return self.semantic_scores(vec, allowed, n, segments)

            # A hybrid search scans the vectors on a thread of its own too, once its query is
            # encoded, while this one reads the BM25 candidates (SQLite, numpy and NumKong let go of
            # the GIL): with a second core free, the two halves take the time of the longer.
            dense = _InBackground(dense_scores) if mode == "hybrid" else dense_scores
        lists = []
        try:
            if mode in ("hybrid", "bm25"):
                lists.append(self.bm25_scores(query, allowed, n))
            if dense is not None:
                lists.append(dense.result() if isinstance(dense, _InBackground) else dense())
        finally:
            if isinstance(dense, _InBackground):
                dense.wait()  # a search that failed leaves no thread behind
        if len(lists) == 1:
            fused = normalized_fusion(lists) if cfg.kind_weights or cfg.role_weights else lists[0]
        else:
            weights = cfg.identifier_weights if cfg.identifier_weights and looks_like_identifier(query) else None
            fused = (normalized_fusion(lists, weights) if cfg.fusion == "normalized"
                     else reciprocal_rank_fusion(lists, weights))
        if cfg.kind_weights or cfg.role_weights or skipped_roles:
            fused = self._weigh(fused, dict(cfg.kind_weights), dict(cfg.role_weights), set(skipped_roles))
        ranked = top_k(fused, len(fused))
        results: list[SearchResult] = []
        kept: list[SearchResult] = []
        start = 0
        # Pieces of one split symbol fold into one result: read further down the ranking until k
        # results remain or the candidates run out, so a search never returns fewer than it could.
        while start < len(ranked):
            page = ranked[start:start + SPARE_RESULTS * k]
            start += len(page)
            rows = self.store.chunks_by_rowid(r for r, _ in page)
            results += [SearchResult(rows[r], s) for r, s in page if r in rows]
            kept = one_part_per_symbol(results, k) if cfg.one_part_per_symbol else results[:k]
            if len(kept) >= k:
                break
        return kept

    # --- freshness --------------------------------------------------------------------
    def changed_since_indexed(self, paths: Iterable[str] | None) -> dict[str, str]:
        """path -> "deleted" or "changed" for those of `paths` (None: every indexed file) whose file
        on disk is gone or no longer has the size and mtime it was indexed with (the test `codesift
        index` itself uses)."""
        return self._changed(self.store.file_stamps(None if paths is None else set(paths)))

    def _changed(self, stamps: dict[str, tuple[int, int]]) -> dict[str, str]:
        root = self.meta.get("root")
        if not root:
            return {}
        prefix = os.path.join(root, "")
        out = {}
        for path, (size, mtime_ns) in sorted(stamps.items()):
            try:
                st = os.stat(prefix + path)
            except FileNotFoundError:
                out[path] = "deleted"
                continue
            except OSError:
                continue
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                out[path] = "changed"
        return out

    def changed_folders(self) -> tuple[str, ...] | None:
        """Folders ("" the root) whose mtime is no longer the one the last index run saw: entries
        were added, removed or renamed there since (a file saved by writing a new one and renaming
        it counts). None when the index recorded no folders (then only a stat of every file tells)."""
        root = self.meta.get("root")
        stamps = self.store.folder_stamps()
        if stamps is None or not root:
            return None
        prefix = os.path.join(root, "")
        out = []
        for folder, mtime_ns in sorted(stamps.items()):
            try:
                if os.stat(prefix + folder).st_mtime_ns != mtime_ns:
                    out.append(folder)
            except FileNotFoundError:
                out.append(folder)
            except OSError:
                continue
        return tuple(out)

    def freshness(self, paths: Iterable[str] | None = None) -> Freshness:
        """When the index was last brought up to date, and what changed on disk since.

        Without `paths`, every indexed file is checked (a stat of each: `codesift status`). With
        `paths` (a search's result files), those files are checked, and the folders: a stat per
        folder finds those where files were added, removed or renamed, and the indexed files
        directly inside them are checked too. The cost then follows the results and the folders,
        not the files; an edit in place of a file outside both goes unseen. An index without
        recorded folders (written before they were) gets the whole check."""
        indexed_at = self.store.get_meta("indexed_at")
        folders = self.changed_folders()
        if paths is None or folders is None:
            return Freshness(indexed_at, self.changed_since_indexed(None), folders or ())
        stamps = self.store.file_stamps(set(paths))
        stamps.update(self.store.files_in_folders(folders))
        return Freshness(indexed_at, self._changed(stamps), folders, every_file=False)

    # --- similar ----------------------------------------------------------------------
    def similar(self, chunk: ChunkRow, k: int = 10, path_glob: str | Sequence[str] | None = None,
                languages: Sequence[str] | None = None, exclude_paths: Sequence[str] | None = None
                ) -> list[SearchResult]:
        """The k chunks whose text vectors are nearest `chunk`'s own (cosine; near 1 is a near
        duplicate), one per split symbol; the chunk itself and the other parts of its symbol are
        left out. Needs no model: the chunk's stored vector is the query."""
        from codesift.index.vectors import dequantize, top_chunks

        with self.store.snapshot():
            where = self.store.vector_location(chunk.rowid)
            if where is None:
                raise CodesiftError(f"chunk {chunk.ref} has no vector yet (its index run has not finished); "
                                    "run `codesift index`, then ask again")
            segments = self.segments()
            if where.legacy is not None:
                qvec = np.frombuffer(where.legacy, dtype=np.float32)
            else:
                seg = next((s for s in segments if s.id == where.seg), None)
                if seg is None:
                    raise CodesiftError(f"the vectors of chunk {chunk.ref} changed while reading; ask again")
                qvec = dequantize(np.asarray(seg.vectors[where.seg_row, 0]))
            allowed = self.allowed_rowids(path_glob, languages, exclude_paths)

            def same(c: ChunkRow) -> bool:
                return c.rowid == chunk.rowid or bool(chunk.part and c.part and chunk.symbol
                                                      and (c.path, c.symbol) == (chunk.path, chunk.symbol))

            n = k + SPARE_RESULTS * k + 1
            while True:
                scores = top_chunks(segments, qvec, n, use_head=False, allowed=allowed)
                ranked = top_k(scores, len(scores))
                rows = self.store.chunks_by_rowid(r for r, _ in ranked)
                results = [SearchResult(rows[r], s) for r, s in ranked if r in rows and not same(rows[r])]
                kept = one_part_per_symbol(results, k)
                if len(kept) >= k or len(scores) < n:
                    return kept
                n *= 4

    def _weigh(self, scores: dict[int, float], kind_weights: dict[str, float], role_weights: dict[str, float],
               skipped_roles: set[str]) -> dict[int, float]:
        """Scores times the weight of the chunk's kind and of its file's role; chunks of skipped roles dropped."""
        about = self.store.chunk_kinds_roles(scores)
        out = {}
        for r, s in scores.items():
            kind, role = about.get(r, ("", ""))
            if role in skipped_roles:
                continue
            out[r] = s * kind_weights.get(kind, 1.0) * role_weights.get(role, 1.0)
        return out

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Query vectors, with identifiers spelled as words as in the embedded documents, after the
        model's query prompt (config_sentence_transformers.json; "" for most models)."""
        for q in queries:
            check_text(q)
        encoder = self.encoder()
        prompt = getattr(getattr(encoder, "files", None), "query_prompt", "")
        return encoder.encode([prompt + spaced_identifiers(q) for q in queries])

    def search_many(self, queries: Sequence[str], mode: str = "hybrid", k: int = 10, **filters
                    ) -> list[list[SearchResult]]:
        """`search` for each query, their vectors encoded together; `filters` (and `rerank`) as there."""
        qvecs = self.encode_queries(queries) if mode != "bm25" and queries else [None] * len(queries)
        return [self.search(q, mode, k, qvec=v, **filters) for q, v in zip(queries, qvecs)]

    def close(self) -> None:
        if self._reranker is not None:
            self._reranker.close()
            self._reranker = None
        self.store.close()
