"""Keeping a GPU busy: token-budget batches, packed sequences, a ring of in-flight batches.

Sequences are laid end to end with no padding (varlen flash attention keeps attention
inside each one), so a batch is exactly `token_budget` tokens whatever the lengths and
nothing needs sorting. Every batch has the same shapes, which lets one CUDA graph replay
the whole forward pass. The host fills batch i+1 in pinned memory while the GPU runs
batch i; at most `ring` batches are in flight, so memory is bounded whatever the corpus.
"""
from __future__ import annotations

import math
import queue
import threading
from collections import deque
from contextlib import nullcontext
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

# Imported by the first packed runner (or GPU query): the padded runner, which serves the numpy CPU
# backend, never needs torch, and it may not be installed.
torch = None


def _import_torch():
    global torch
    if torch is None:
        import torch as module

        torch = module
    return torch

from codesift.embed.batches import DEFAULT_BATCH_SIZE, DEFAULT_TOKEN_BUDGET, TokenBatch, batch_bounds, fill_packed

DEFAULT_RING = 4
# A packed batch holds at most token_budget // TOKENS_PER_SEQUENCE_FLOOR sequences: its output
# buffers are sized for that many. Chunks are far longer than this on average, so batches end
# on their token budget, not on this count.
TOKENS_PER_SEQUENCE_FLOOR = 8
# A CPU embeds a few thousand tokens a second: a run's vectors (and its commits, and its progress)
# come back per batch of this many tokens rather than per GPU-sized batch. Its groups of inputs are
# far smaller still, so this costs the CPU no speed.
CPU_TOKEN_BUDGET = 16384


class PackedRunner:
    """Runs packed batches on one CUDA device in fp16/bf16, pipelined, optionally as one CUDA graph."""

    def __init__(self, backend, token_budget: int = DEFAULT_TOKEN_BUDGET, ring: int = DEFAULT_RING,
                 max_seqs: int | None = None, cuda_graph: bool = True):
        """`backend`: a TorchBackend whose `packed_supported` is True (CUDA, fp16/bf16, an
        architecture flash attention runs)."""
        if not backend.packed_supported:
            raise ValueError(f"{backend.name}: packed batches need CUDA, fp16/bf16, torch's varlen "
                             "attention and an architecture it runs")
        _import_torch()
        self.backend, self.device = backend, backend.device
        self.max_tokens = backend.max_tokens
        self.token_budget = token_budget
        self.max_seqs = max_seqs or max(1, token_budget // TOKENS_PER_SEQUENCE_FLOOR)
        # padding tokens form extra segments of at most max_tokens tokens, so shapes never change
        self.n_segments = self.max_seqs + math.ceil(token_budget / self.max_tokens) + 1
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
        n = self.token_budget
        return buf[:n], buf[n:2 * n], buf[2 * n:3 * n], buf[3 * n:]

    def _compute(self) -> torch.Tensor:
        ids, pos, seg, cu = self._views(self.dev_in)
        with torch.inference_mode():
            return self.backend.embed_packed(ids, pos, seg, cu, self.max_tokens)[: self.max_seqs]

    def _capture(self) -> None:
        from codesift.embed.tokenizer import empty_text_ids

        sample = empty_text_ids(self.backend.files)  # any valid input: the graph records kernels, not values
        self._fill(self.host_in[0], sample, np.array([len(sample)], np.int32))
        self.dev_in.copy_(self.host_in[0])
        with torch.cuda.stream(self.stream):
            for _ in range(2):  # warm up kernels and allocator outside the graph
                self._compute()
        self.stream.synchronize()
        try:
            graph = torch.cuda.CUDAGraph()
            # thread_local: another device's runner may be embedding from its own thread meanwhile
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self.dev_out = self._compute()
            self.graph = graph
        except RuntimeError:  # some op not capturable on this torch: run eagerly
            self.graph, self.dev_out = None, None
            torch.cuda.synchronize(self.device)

    def _fill(self, buf: torch.Tensor, ids: np.ndarray, lengths: np.ndarray) -> None:
        fill_packed(*(t.numpy() for t in self._views(buf)), ids, lengths, self.max_tokens)

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
            if len(batch.ids) > self.token_budget or len(batch.lengths) > self.max_seqs:
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
    """Any backend (CPU, MPS, CUDA fp32): sorts each batch of `token_budget` tokens by length and
    runs padded forward passes of `batch_size` similar-length sequences, so little is spent on padding
    (a backend that groups its inputs itself gets them in lots: `batches.batch_bounds`)."""

    def __init__(self, backend, token_budget: int = DEFAULT_TOKEN_BUDGET, batch_size: int = DEFAULT_BATCH_SIZE):
        self.backend, self.token_budget, self.batch_size = backend, token_budget, batch_size
        self.groups_inputs = getattr(backend, "groups_inputs", False)
        self.max_seqs = token_budget  # every sequence has at least one token

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in batches:
            offsets = np.concatenate(([0], np.cumsum(batch.lengths, dtype=np.int64)))
            seqs = [batch.ids[offsets[i]:offsets[i + 1]] for i in range(len(batch.lengths))]
            order = np.argsort(-batch.lengths, kind="stable")
            out = np.zeros((len(seqs), self.backend.dim), dtype=np.float32)
            for start, end in batch_bounds(batch.lengths[order], self.batch_size, self.groups_inputs):
                idx = order[start:end]
                out[idx] = self.backend.embed_batch([seqs[i] for i in idx])
            yield batch.keys, out


def make_runner(backend, token_budget: int | None = None, cuda_graph: bool = True,
                batch_size: int = DEFAULT_BATCH_SIZE):
    """The fastest runner this backend supports."""
    if backend.packed_supported:
        with on_device(backend.device):  # the graph is captured on the backend's GPU
            return PackedRunner(backend, token_budget or DEFAULT_TOKEN_BUDGET, cuda_graph=cuda_graph)
    default = DEFAULT_TOKEN_BUDGET if backend.is_gpu else CPU_TOKEN_BUDGET
    return PaddedRunner(backend, token_budget or default, batch_size=batch_size)


def on_device(device: torch.device | None):
    """Make `device` torch's current CUDA device inside the block; nothing for other devices."""
    cuda = device is not None and getattr(device, "type", None) == "cuda"
    return _import_torch().cuda.device(device) if cuda else nullcontext()


class MultiRunner:
    """Several devices (e.g. every visible GPU), each runner in a thread of its own taking batches
    from one shared queue, so a device that is faster, or ready sooner, takes more of them.
    Results come back as they finish, each with its keys (not in input order).

    `pending` are functions that build further runners: each is called in its runner's thread, so
    loading a second GPU (weights, CUDA graph) overlaps the first GPU's work instead of delaying it.
    They must build runners for the same model and budgets as `runners`."""

    def __init__(self, runners: Sequence, pending: Sequence[Callable[[], object]] = ()):
        if not runners:
            raise ValueError("MultiRunner needs at least one built runner")
        self.runners = list(runners)
        self.pending = list(pending)
        self.token_budget = min(r.token_budget for r in self.runners)
        self.max_seqs = min(r.max_seqs for r in self.runners)

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        slots, built = [*self.runners, *self.pending], len(self.runners)
        n = len(slots)
        inq: queue.Queue = queue.Queue(maxsize=2 * n)
        outq: queue.Queue = queue.Queue()
        end = object()
        stop = threading.Event()
        input_errors: list[BaseException] = []

        def serve(k: int) -> None:
            try:
                runner = slots[k] if k < built else slots[k]()
                if k >= built:
                    self.runners.append(runner)  # built once: a later run uses it as it is
                with on_device(getattr(runner, "device", None)):
                    for item in runner.run(iter(inq.get, end)):
                        outq.put(item)
            except BaseException as e:  # surfaces in the consumer
                outq.put(e)
                stop.set()
                while inq.get() is not end:  # keep the dispatcher from blocking
                    pass
            outq.put(end)

        def dispatch() -> None:
            try:
                for batch in batches:
                    if stop.is_set():
                        break
                    inq.put(batch)
            except BaseException as e:  # e.g. a bad batch: raised once the batches before it are out
                input_errors.append(e)
            finally:
                for _ in range(n):  # one end for each runner: each stops at the first it takes
                    inq.put(end)

        self.pending = []
        # The runners' threads are not daemons: one stopped at the interpreter's exit while inside a
        # model's native code (ONNX Runtime, CUDA) can abort the process. The dispatcher is one (it
        # may wait on `batches` forever once nobody reads them); so the runners never wait on it
        # when the caller leaves early: `finally` hands each its end.
        threads = [threading.Thread(target=serve, args=(k,), name=f"codesift-runner-{k}") for k in range(n)]
        threads.append(threading.Thread(target=dispatch, name="codesift-dispatch", daemon=True))
        for t in threads:
            t.start()
        ended = 0
        try:
            while ended < n:
                item = outq.get()
                if isinstance(item, BaseException):
                    raise item
                if item is end:
                    ended += 1
                    continue
                yield item
        finally:
            stop.set()
            if ended < n:  # left early (an error, or the caller stopped reading): batches still queued are dropped
                for _ in range(n):
                    while True:
                        try:
                            inq.put_nowait(end)
                            break
                        except queue.Full:
                            try:
                                inq.get_nowait()
                            except queue.Empty:
                                pass
        if input_errors:
            raise input_errors[0]


def visible_gpus() -> list[str]:
    """Every CUDA device torch can see, as device strings."""
    try:
        _import_torch()
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
