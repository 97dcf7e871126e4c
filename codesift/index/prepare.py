"""The per-file half of indexing, run in worker processes: read, hash, chunk, and tokenize."""
from __future__ import annotations

import hashlib
import os
import pickle
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from codesift.chunk.model import Chunk, Import
from codesift.embed.model_files import ModelFiles
from codesift.index.formats import CHUNK_MAX_LINES, CHUNK_TARGET_LINES
from codesift.index.document import bm25_fields, embed_hash, embed_text, head_text
from codesift.index.store import chunk_calls, chunk_rows
from codesift.walk import ReadRefused, SourceFile, read_source


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
    n_chunks: int = 0
    rows: list[tuple] = field(default_factory=list)  # store.chunk_rows: the chunks as the store keeps them
    calls: list[tuple[int, str]] = field(default_factory=list)  # store.chunk_calls
    stored: bytes | None = None  # rows, fts, calls and imports pickled together (for_transport)
    # the texts to embed: every chunk's text, then every chunk's head (document.head_text)
    texts: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    token_ids: np.ndarray | None = None  # all texts' token ids end to end (int32)
    token_lengths: np.ndarray | None = None
    truncated: int = 0
    fallback: str | None = None  # the chunker could not read the file's structure: why
    error: str | None = None

    @property
    def embed_hashes(self) -> list[str]:
        return self.hashes[:self.n_chunks]

    @property
    def head_hashes(self) -> list[str]:
        return self.hashes[self.n_chunks:]

    def for_transport(self) -> "PreparedFile":
        """What the indexing process needs back from a worker. Not the Chunk objects and texts the
        rows were made from (each a copy of the file's text), and the rows themselves as one
        pickled string: the one process that receives every file only passes them on to the
        writer, and unpickling them there would take the time its other threads need."""
        if self.rows or self.imports:
            self.stored = pickle.dumps((self.rows, self.fts, self.calls, self.imports), protocol=pickle.HIGHEST_PROTOCOL)
        self.chunks, self.texts, self.rows, self.fts, self.calls, self.imports = [], [], [], [], [], []
        return self


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_tokenizers: dict = {}


def _tokenizer_for(files: ModelFiles):
    key = (files.tokenizer, files.max_tokens)  # GGUF models share a folder (ollama's blobs): not the root
    tk = _tokenizers.get(key)
    if tk is None:
        from codesift.embed.tokenizer import TextTokenizer

        tk = _tokenizers[key] = TextTokenizer(files)  # files.max_tokens
    return tk


def prepare_file(source: SourceFile, known_sha: str | None = None, model: ModelFiles | None = None,
                 include_secrets: bool = False) -> PreparedFile:
    """Read, hash, chunk and (given a model) tokenize one file. Runs in worker processes; never
    raises for bad files."""
    from codesift.chunk import chunk_file
    from codesift.chunk.languages import language_for
    from codesift.chunk.lines import split_lines
    from codesift.walk.text import decode_text

    out = PreparedFile(source)
    try:
        data = read_source(source, include_secrets=include_secrets)  # the very file the walk listed
    except ReadRefused as e:
        out.error = e.reason
        return out
    except OSError as e:
        out.error = f"unreadable ({type(e).__name__})"
        return out
    out.sha256 = file_sha256(data)
    if known_sha is not None and out.sha256 == known_sha:
        return out  # content unchanged: nothing else to do
    text, out.decode_errors = decode_text(data)
    lines = split_lines(text)
    reason = minified(lines)
    if reason:
        out.error = reason
        return out
    out.language = language_for(source.rel) or "text"
    out.n_lines = len(lines)
    result = chunk_file(source.rel, text, out.language, target_lines=CHUNK_TARGET_LINES, max_lines=CHUNK_MAX_LINES)
    out.chunks, out.imports, out.fallback = result.chunks, result.imports, result.fallback
    out.fts = [bm25_fields(c) for c in out.chunks]
    out.texts = [embed_text(c) for c in out.chunks] + [head_text(c) for c in out.chunks]
    out.hashes = [embed_hash(t) for t in out.texts]
    out.n_chunks = len(out.chunks)
    out.rows = chunk_rows(out.chunks, out.hashes[:len(out.chunks)], out.hashes[len(out.chunks):])
    out.calls = chunk_calls(out.chunks)
    if model is not None and out.texts:
        out.token_ids, out.token_lengths, out.truncated = tokenize_documents(model, out.texts)
    return out


def tokenize_documents(model: ModelFiles, texts: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Texts to embed as documents, tokenized as the indexer does: the model's document prompt first
    (config_sentence_transformers.json's; "" for most models), then (ids end to end as int32, lengths,
    how many were truncated)."""
    prompt = model.document_prompt
    return _tokenizer_for(model).encode_flat([prompt + t for t in texts] if prompt else texts)


# A file made mostly of very long lines is minified or generated (bundles, source maps, data
# dumps): its lines would be cut into many chunks of unreadable code. Skipped and reported.
LONG_LINE_CHARS = 1000
MINIFIED_LINE_CHARS = 20_000


def minified(lines: list[str]) -> str | None:
    """The skip reason when a file looks minified or generated, else None: a line of over
    MINIFIED_LINE_CHARS characters, with lines over LONG_LINE_CHARS making up most of the text."""
    longest = max(map(len, lines), default=0)
    if longest <= MINIFIED_LINE_CHARS:
        return None
    long_chars = sum(n for n in map(len, lines) if n > LONG_LINE_CHARS)
    if 2 * long_chars < sum(map(len, lines)):
        return None  # a long line in a file that is mostly ordinary text (e.g. one embedded image)
    return f"minified or generated (a line of {longest:,} characters)"


def _prepare_lot(args: tuple) -> list[PreparedFile]:
    lot, model, include_secrets = args
    return [prepare_file(f, sha, model, include_secrets).for_transport() for f, sha in lot]


# Starting processes costs about a second of a small machine's time: worth it from this much to read.
POOL_FILES, POOL_BYTES = 32, 1 << 20  # worker processes to read, chunk and tokenize
BIG_RUN_BYTES = 8 << 20  # and a writer process (index/write_sinks.py)
# Files go to the workers in lots of about this much source: every task costs the indexing process's
# one busy interpreter (the pool's queues and threads, pickling, futures) about the same whatever its
# size, and with many workers that process is the one all files pass through.
LOT_BYTES = 256 << 10
LOTS_PER_WORKER = 4  # ... but a smaller run is cut into about this many lots per worker, to share it out


def lots(todo: list[tuple[SourceFile, str | None]], workers: int) -> Iterator[list[tuple[SourceFile, str | None]]]:
    """The files in order, in runs of about LOT_BYTES of source (fewer for a run too small to give
    each worker about LOTS_PER_WORKER lots): a lot ends with the file that fills it."""
    budget = max(1, min(LOT_BYTES, sum(f.size for f, _ in todo) // (workers * LOTS_PER_WORKER)))
    lot: list[tuple[SourceFile, str | None]] = []
    size = 0
    for item in todo:
        lot.append(item)
        size += item[0].size
        if size >= budget:
            yield lot
            lot, size = [], 0
    if lot:
        yield lot


def big_run(todo: list[tuple[SourceFile, str | None]], workers: int | None) -> bool:
    """Whether a run has enough to read to be worth a writer process of its own."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    return workers > 1 and len(todo) >= POOL_FILES and sum(f.size for f, _ in todo) >= BIG_RUN_BYTES


def prepare_files(todo: list[tuple[SourceFile, str | None]], workers: int | None,
                  model: ModelFiles, include_secrets: bool = False) -> Iterator[PreparedFile]:
    """Prepare files in order, in worker processes when there is enough work to pay for them."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(todo) < POOL_FILES or sum(f.size for f, _ in todo) < POOL_BYTES:
        yield from (prepare_file(f, sha, model, include_secrets) for f, sha in todo)
        return
    from codesift.embed.ordered import ordered_map

    # a few lots in flight per worker: one slow lot at the head holds up the others' results, not their work
    for prepared in ordered_map(_worker_pool(workers), _prepare_lot,
                                ((lot, model, include_secrets) for lot in lots(todo, workers)), window=4 * workers):
        yield from prepared


_pools: dict[int, ProcessPoolExecutor] = {}


def _init_worker() -> None:
    # the processes are the parallelism: a rayon pool per worker (tokenizers' default) would put
    # workers x cores threads on the cores for batches of a few dozen texts
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    # Ctrl-C in a terminal reaches the whole process group: the parent handles it, and its workers
    # must not each print a KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()


PARENT_CHECK_SECONDS = 0.25


def exit_with_parent() -> None:
    """Make this worker exit when the process that started it dies, even by kill -9: nothing
    else would end it (it waits on a queue whose writing end it holds itself), and an orphan
    keeps its memory and the parent's stdout pipe, so a reader of that pipe never sees its end.

    A thread watches the parent's pid. (Linux's PR_SET_PDEATHSIG is not used: it fires when the
    *thread* that started the worker ends, and the pool outlives such threads, e.g. the MCP
    server's index jobs.)"""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="codesift-parent-watch", daemon=True).start()


def stop_workers() -> None:
    """End the worker processes now, without waiting for the files they hold (a run stopped by
    a signal), and release the pools' semaphores, so that a process leaving by os._exit leaks none."""
    import atexit
    import gc

    for workers, pool in list(_pools.items()):
        for process in list((pool._processes or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        atexit.unregister(pool.shutdown)
        del _pools[workers]
    gc.collect()  # the pools' queues and locks go now, unregistering their semaphores


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """One pool per process, kept for later runs: a long-lived process (the MCP server, a warm
    benchmark) pays the workers' start-up once."""
    pool = _pools.get(workers)
    if pool is None:
        import atexit
        import multiprocessing as mp

        # spawn, not fork: the parent may hold torch and CUDA state
        pool = _pools[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                                      initializer=_init_worker)
        atexit.register(pool.shutdown, cancel_futures=True)
    return pool
