"""The embedding pipeline (index/pipeline.py) queues sequences while its model loads: a cold run's
workers go on reading and chunking meanwhile, up to QUEUE_TOKENS queued, and every sequence queued
before the model was ready is embedded once it is, in order."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import codesift.index.pipeline as pipeline_mod
from codesift.embed.batches import TokenBatch
from codesift.index.pipeline import EmbedPipeline


def lots_of(embedder, n_lots: int) -> list[TokenBatch]:
    """`n_lots` TokenBatches of about HAND_OVER_TOKENS tokens each, one text per key."""
    tok = embedder.tokenizer
    texts = [f"def function_{i}(a, b):\n    return a * {i} + b  # number {i}" for i in range(400)]
    seqs = [np.asarray(ids, np.int32) for ids in tok.encode(texts).ids]
    out, key = [], 0
    for _ in range(n_lots):
        keys, ids, lengths, total = [], [], [], 0
        while total < pipeline_mod.HAND_OVER_TOKENS:
            s = seqs[key % len(seqs)]
            keys.append(key)
            ids.append(s)
            lengths.append(len(s))
            total += len(s)
            key += 1
        out.append(TokenBatch(np.asarray(keys, np.int64), np.concatenate(ids), np.asarray(lengths, np.int32)))
    return out


@pytest.fixture(autouse=True)
def small_lots(monkeypatch):
    """Lots of a few texts: the same queueing, at a test's cost."""
    monkeypatch.setattr(pipeline_mod, "HAND_OVER_TOKENS", 400)


@pytest.fixture()
def gated(monkeypatch):
    """The model's load waits for this event: a cold start as slow as the test wants."""
    gate = threading.Event()
    real = EmbedPipeline._load_runner

    def load_after_gate(self):
        gate.wait()
        real(self)

    monkeypatch.setattr(EmbedPipeline, "_load_runner", load_after_gate)
    yield gate
    gate.set()


def test_sequences_queue_while_the_model_loads_and_are_embedded_after(embedder, gated):
    p = EmbedPipeline(embedder.files, None, "cpu", "fp32", 32, None)
    p.preload()
    lots = lots_of(embedder, 3)
    producer = threading.Thread(target=lambda: [p.submit(b) for b in lots], daemon=True)
    producer.start()
    producer.join(timeout=120)
    assert not producer.is_alive(), "submit waited for the model to load"
    queued = sum(len(b.ids) for b in lots)
    assert p.queued_tokens + p.part_tokens == queued  # nothing taken yet: the model is still loading
    gated.set()
    p.end_input()
    got: dict[int, np.ndarray] = {}
    while not p.finished:
        for keys, vecs in p.wait():
            got.update(zip(keys.tolist(), vecs))
    p.close()
    keys = np.concatenate([b.keys for b in lots])
    assert sorted(got) == sorted(keys.tolist())
    seqs = [ids for b in lots for ids in np.split(b.ids, np.cumsum(b.lengths)[:-1])]
    want = embedder.embed_ids([s.tolist() for s in seqs])
    cos = np.sum(np.stack([got[k] for k in keys.tolist()]) * want, axis=1)
    assert cos.min() > 0.999


def test_the_queue_holds_at_most_queue_tokens(embedder, gated, monkeypatch):
    lots = lots_of(embedder, 6)
    monkeypatch.setattr(pipeline_mod, "QUEUE_TOKENS", 2 * pipeline_mod.HAND_OVER_TOKENS + 1000)
    p = EmbedPipeline(embedder.files, None, "cpu", "fp32", 32, None)
    p.preload()
    high = []

    def produce():
        for b in lots:
            p.submit(b)
            high.append(p.queued_tokens)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    producer.join(timeout=3)
    assert producer.is_alive(), "the producer queued six lots beyond QUEUE_TOKENS without waiting"
    assert max(high) <= pipeline_mod.QUEUE_TOKENS
    gated.set()  # the model loads, takes lots, and makes room: the producer finishes
    producer.join(timeout=300)
    assert not producer.is_alive()
    p.end_input()
    n = 0
    while not p.finished:
        n += sum(len(keys) for keys, _ in p.wait())
    p.close()
    assert n == sum(len(b.keys) for b in lots)


def test_a_model_that_fails_to_load_raises_in_the_indexing_thread(embedder, monkeypatch):
    def broken(self):
        self.load_error = RuntimeError("weights unreadable")

    monkeypatch.setattr(EmbedPipeline, "_load_runner", broken)
    monkeypatch.setattr(pipeline_mod, "QUEUE_TOKENS", pipeline_mod.HAND_OVER_TOKENS)
    p = EmbedPipeline(embedder.files, None, "cpu", "fp32", 32, None)
    p.preload()
    with pytest.raises(RuntimeError, match="weights unreadable"):
        for b in lots_of(embedder, 4):  # more than the queue holds: must not wait for room forever
            p.submit(b)
            p.poll()
        p.end_input()
        while not p.finished:
            p.wait()
    p.close()
