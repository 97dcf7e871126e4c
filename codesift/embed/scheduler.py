"""Keeping a GPU busy: token-budget batches, packed sequences, a ring of in-flight batches.

Sequences are laid end to end with no padding (varlen flash attention keeps attention
inside each one), so a batch is exactly `token_budget` tokens whatever the lengths and
nothing needs sorting. Every batch has the same shapes, which lets one CUDA graph replay
the whole forward pass. The host fills batch i+1 in pinned memory while the GPU runs
batch i; at most `ring` batches are in flight, so memory is bounded whatever the corpus.

Tokenization runs in parallel (worker processes) ahead of the GPU, in order.
"""
from __future__ import annotations

import math
import os
import queue
import threading
from collections import deque
from contextlib import nullcontext
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from codesift.embed.backend import TorchBackend
from codesift.embed.bert import packed_attention_supported
from codesift.embed.pooling import normalize, pool_packed

DEFAULT_TOKEN_BUDGET = 65536
DEFAULT_RING = 4


@dataclass
class TokenBatch:
    """Sequences to embed: `keys` (caller's ids, e.g. input positions), ids laid end to end, lengths."""

    keys: np.ndarray
    ids: np.ndarray  # int32, concatenated
    lengths: np.ndarray  # int32


def pack(stream: Iterable[TokenBatch], token_budget: int, max_seqs: int) -> Iterator[TokenBatch]:
    """Re-cut a stream of tokenized sequences into batches of at most `token_budget` tokens and
    `max_seqs` sequences, keeping their order."""
    keys: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    n_tok = n_seq = 0
    for part in stream:
        offsets = np.concatenate(([0], np.cumsum(part.lengths, dtype=np.int64)))
        i = 0
        while i < len(part.lengths):
            # how many of part's next sequences fit in what is left of the budget
            room_tok, room_seq = token_budget - n_tok, max_seqs - n_seq
            fit = int(np.searchsorted(offsets[i + 1:] - offsets[i], room_tok, side="right"))
            j = i + min(fit, room_seq)
            if j > i:
                keys.append(part.keys[i:j])
                ids.append(part.ids[offsets[i]:offsets[j]])
                lens.append(part.lengths[i:j])
                n_tok += int(offsets[j] - offsets[i])
                n_seq += j - i
                i = j
            if j == i or n_tok >= token_budget or n_seq >= max_seqs:
                if n_seq == 0:
                    raise ValueError(f"a sequence of {part.lengths[i]} tokens exceeds the budget of {token_budget}")
                yield TokenBatch(np.concatenate(keys), np.concatenate(ids), np.concatenate(lens))
                keys, ids, lens, n_tok, n_seq = [], [], [], 0, 0
    if n_seq:
        yield TokenBatch(np.concatenate(keys), np.concatenate(ids), np.concatenate(lens))


def fill_packed(v_ids: np.ndarray, v_pos: np.ndarray, v_seg: np.ndarray, v_cu: np.ndarray,
                ids: np.ndarray, lengths: np.ndarray, max_len: int) -> None:
    """Lay a batch out in fixed-size arrays: token ids, positions within each sequence, the sequence
    of each token, and sequence offsets. Unused tokens form padding segments of at most max_len
    tokens after the real ones, and unused offsets repeat the end (empty segments)."""
    budget, n_tok, n_seq = len(v_ids), len(ids), len(lengths)
    v_ids[:n_tok] = ids
    v_ids[n_tok:] = 0
    starts = np.zeros(n_seq, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    v_pos[:n_tok] = np.arange(n_tok, dtype=np.int32) - np.repeat(starts, lengths).astype(np.int32)
    v_seg[:n_tok] = np.repeat(np.arange(n_seq, dtype=np.int32), lengths)
    pad = budget - n_tok
    pad_lens = np.full(pad // max_len, max_len, dtype=np.int64)
    if pad % max_len:
        pad_lens = np.append(pad_lens, pad % max_len)
    seg_lens = np.concatenate((lengths.astype(np.int64), pad_lens))
    if len(seg_lens) + 1 > len(v_cu):
        raise ValueError("too many segments for the offsets buffer")
    v_cu[0] = 0
    v_cu[1:len(seg_lens) + 1] = np.cumsum(seg_lens)
    v_cu[len(seg_lens) + 1:] = budget
    v_seg[n_tok:] = np.repeat(np.arange(n_seq, n_seq + len(pad_lens), dtype=np.int32), pad_lens)
    v_pos[n_tok:] = np.arange(pad, dtype=np.int32) % max_len


class PackedRunner:
    """Runs packed batches on one CUDA device in fp16/bf16, pipelined, optionally as one CUDA graph."""

    def __init__(self, backend: TorchBackend, token_budget: int = DEFAULT_TOKEN_BUDGET, ring: int = DEFAULT_RING,
                 max_seqs: int | None = None, cuda_graph: bool = True):
        if not packed_attention_supported(backend.device, backend.dtype):
            raise ValueError("packed batches need CUDA, fp16/bf16 and torch's varlen attention")
        self.backend, self.device = backend, backend.device
        self.max_len = backend.max_tokens
        self.budget = token_budget
        self.max_seqs = max_seqs or max(1, token_budget // 8)
        # padding tokens form extra segments of at most max_len tokens, so shapes never change
        self.n_segments = self.max_seqs + math.ceil(token_budget / self.max_len) + 1
        n_in = 3 * token_budget + self.n_segments + 1
        self.ring = ring
        self.host_in = [torch.empty(n_in, dtype=torch.int32).pin_memory() for _ in range(ring)]
        self.host_out = [torch.empty(self.max_seqs, backend.dim, dtype=torch.float32).pin_memory()
                         for _ in range(ring)]
        self.dev_in = torch.empty(n_in, dtype=torch.int32, device=self.device)
        self.stream = torch.cuda.Stream(self.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.dev_out: torch.Tensor | None = None
        if cuda_graph:
            self._capture()

    def _views(self, buf: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = self.budget
        return buf[:n], buf[n:2 * n], buf[2 * n:3 * n], buf[3 * n:]

    @torch.inference_mode()
    def _compute(self) -> torch.Tensor:
        ids, pos, seg, cu = self._views(self.dev_in)
        hidden = self.backend.model.forward_packed(ids, pos, cu, self.max_len)
        out = pool_packed(hidden, seg, cu, self.backend.files.pooling)[: self.max_seqs]
        return normalize(out) if self.backend.normalize else out

    def _capture(self) -> None:
        self._fill(self.host_in[0], np.full(2, 101, np.int32), np.array([2], np.int32))
        self.dev_in.copy_(self.host_in[0])
        with torch.cuda.stream(self.stream):
            for _ in range(2):  # warm up kernels and allocator outside the graph
                self._compute()
        self.stream.synchronize()
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self.dev_out = self._compute()
            self.graph = graph
        except RuntimeError:  # some op not capturable on this torch: run eagerly
            self.graph, self.dev_out = None, None
            torch.cuda.synchronize(self.device)

    def _fill(self, buf: torch.Tensor, ids: np.ndarray, lengths: np.ndarray) -> None:
        fill_packed(*(t.numpy() for t in self._views(buf)), ids, lengths, self.max_len)

    def _launch(self, slot: int) -> torch.cuda.Event:
        with torch.cuda.stream(self.stream):
            self.dev_in.copy_(self.host_in[slot], non_blocking=True)
            if self.graph is not None:
                self.graph.replay()
                out = self.dev_out
            else:
                out = self._compute()
            self.host_out[slot].copy_(out, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        return event

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(keys, vectors) per batch, in order; at most `ring` batches in flight."""
        inflight: deque[tuple[int, TokenBatch, torch.cuda.Event]] = deque()
        slot = 0
        for batch in batches:
            if len(inflight) == self.ring:
                yield self._collect(*inflight.popleft())
            if len(batch.ids) > self.budget or len(batch.lengths) > self.max_seqs:
                raise ValueError("batch over the runner's token or sequence budget")
            self._fill(self.host_in[slot], batch.ids, batch.lengths)
            inflight.append((slot, batch, self._launch(slot)))
            slot = (slot + 1) % self.ring
        while inflight:
            yield self._collect(*inflight.popleft())

    def _collect(self, slot: int, batch: TokenBatch, event: torch.cuda.Event) -> tuple[np.ndarray, np.ndarray]:
        event.synchronize()
        return batch.keys, self.host_out[slot][: len(batch.lengths)].numpy().copy()


class PaddedRunner:
    """Any backend (CPU, MPS, CUDA fp32): sorts each window of sequences by length and runs padded
    forward passes of `batch_size` similar-length sequences, so little is spent on padding."""

    def __init__(self, backend: TorchBackend, window_tokens: int = 65536, batch_size: int = 32):
        self.backend, self.budget, self.batch_size = backend, window_tokens, batch_size
        self.max_seqs = window_tokens

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in batches:
            offsets = np.concatenate(([0], np.cumsum(batch.lengths, dtype=np.int64)))
            seqs = [batch.ids[offsets[i]:offsets[i + 1]] for i in range(len(batch.lengths))]
            order = np.argsort(-batch.lengths, kind="stable")
            out = np.zeros((len(seqs), self.backend.dim), dtype=np.float32)
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                out[idx] = self.backend.embed_batch([seqs[i] for i in idx])
            yield batch.keys, out


def make_runner(backend: TorchBackend, token_budget: int | None = None, cuda_graph: bool = True,
                batch_size: int = 32):
    """The fastest runner this backend supports."""
    if packed_attention_supported(backend.device, backend.dtype):
        with on_device(backend.device):  # the graph is captured on the backend's GPU
            return PackedRunner(backend, token_budget or DEFAULT_TOKEN_BUDGET, cuda_graph=cuda_graph)
    return PaddedRunner(backend, token_budget or 65536, batch_size=batch_size)


def on_device(device: torch.device | None):
    """Make `device` torch's current CUDA device inside the block; nothing for other devices."""
    return torch.cuda.device(device) if device is not None and device.type == "cuda" else nullcontext()


class MultiRunner:
    """Several devices (e.g. every visible GPU): batch i runs on runner i mod n, each runner in a
    thread of its own with its own ring of batches in flight; results come back in input order."""

    def __init__(self, runners: Sequence):
        if not runners:
            raise ValueError("MultiRunner needs at least one runner")
        self.runners = list(runners)
        self.budget = min(r.budget for r in self.runners)
        self.max_seqs = min(r.max_seqs for r in self.runners)

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.runners)
        inqs = [queue.Queue(maxsize=2) for _ in range(n)]
        outqs: list[queue.Queue] = [queue.Queue() for _ in range(n)]
        end = object()
        stop = threading.Event()
        input_errors: list[BaseException] = []

        def serve(k: int) -> None:
            runner = self.runners[k]
            try:
                with on_device(getattr(runner, "device", None)):
                    for item in runner.run(iter(inqs[k].get, end)):
                        outqs[k].put(item)
            except BaseException as e:  # surfaces in the consumer, in order
                outqs[k].put(e)
                stop.set()
                while inqs[k].get() is not end:  # keep the dispatcher from blocking
                    pass
            outqs[k].put(end)

        def dispatch() -> None:
            try:
                for i, batch in enumerate(batches):
                    if stop.is_set():
                        break
                    inqs[i % n].put(batch)
            except BaseException as e:  # e.g. a bad batch: raised once the batches before it are out
                input_errors.append(e)
            finally:
                for q in inqs:
                    q.put(end)

        threads = [threading.Thread(target=serve, args=(k,), daemon=True) for k in range(n)]
        threads.append(threading.Thread(target=dispatch, daemon=True))
        for t in threads:
            t.start()
        j = 0
        while True:  # round robin in, round robin out: result j is the next item of runner j mod n
            item = outqs[j % n].get()
            if isinstance(item, BaseException):
                raise item
            if item is end:
                break  # batch j never existed, nor any after it
            yield item
            j += 1
        if input_errors:
            raise input_errors[0]


def visible_gpus() -> list[str]:
    """Every CUDA device torch can see, as device strings."""
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


# --- tokenization ahead of the GPU ------------------------------------------------------------

_worker_tokenizer = None


def _init_tokenizer_worker(files, max_length: int) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process: the processes are the parallelism
    from codesift.embed.tokenizer import TextTokenizer

    _worker_tokenizer = TextTokenizer(files, max_length)


def _tokenize_in_worker(texts: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    return _worker_tokenizer.encode_flat(texts)


def ordered_map(executor: Executor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """executor.map with at most `window` tasks in flight, so memory stays bounded on long streams."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _slices(texts: Iterable[str], size: int, first: int = 64) -> Iterator[list[str]]:
    """Consecutive lists of texts: small at first, so the GPU's first batch is ready soon, then `size`."""
    part: list[str] = []
    target = min(first, size)
    for t in texts:
        part.append(t)
        if len(part) == target:
            yield part
            part = []
            target = min(2 * target, size)
    if part:
        yield part


class TokenizerPool:
    """Tokenizes slices of texts in worker processes, results in order."""

    def __init__(self, files, max_length: int, workers: int | None = None):
        import multiprocessing as mp

        self.workers = workers or max(1, (os.cpu_count() or 2) - 1)
        self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                        initializer=_init_tokenizer_worker, initargs=(files, max_length))

    def map(self, slices: Iterable[list[str]]) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        return ordered_map(self.pool, _tokenize_in_worker, slices, window=4 * self.workers)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def embed_stream(texts: Iterable[str], tokenize: Callable[[Iterable[list[str]]], Iterator],
                 runner, token_budget: int, slice_size: int = 1024,
                 stats: dict | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input positions, vectors) for a stream of texts: tokenized ahead, packed, run, in order."""
    stats = stats if stats is not None else {}
    stats.setdefault("tokens", 0)
    stats.setdefault("truncated", 0)

    def tokenized() -> Iterator[TokenBatch]:
        base = 0
        for flat, lengths, truncated in tokenize(_slices(texts, slice_size)):
            stats["tokens"] += int(lengths.sum())
            stats["truncated"] += truncated
            yield TokenBatch(np.arange(base, base + len(lengths), dtype=np.int64), flat, lengths)
            base += len(lengths)

    max_seqs = getattr(runner, "max_seqs", 64)
    budget = getattr(runner, "budget", token_budget)
    yield from runner.run(pack(tokenized(), budget, max_seqs))


def run_in_thread(iterator: Iterator, maxsize: int = 8) -> Iterator:
    """Drive `iterator` in a background thread (e.g. the GPU loop) and yield its items here."""
    q: queue.Queue = queue.Queue(maxsize)
    done = object()

    def work():
        try:
            for item in iterator:
                q.put(item)
        except BaseException as e:  # errors propagate to the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def embed_all(texts: Sequence[str], tokenize, runner, token_budget: int, dim: int,
              stats: dict | None = None) -> np.ndarray:
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for keys, vecs in embed_stream(texts, tokenize, runner, token_budget, stats=stats):
        out[keys] = vecs
    return out
