"""The GPU scheduler's host-side logic, checked on the CPU; the GPU path itself in GPU tests."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from codesift.embed.batches import TokenBatch, fill_packed, pack
from codesift.embed.scheduler import MultiRunner, PaddedRunner
from tests.embed.conftest import embed_packed


def run_all(texts, tokenizer, runner, dim: int, slice_size: int = 16) -> np.ndarray:
    """Vectors of `texts` in input order: tokenized in slices, packed to the runner's budgets, run."""
    def tokenized():
        for start in range(0, len(texts), slice_size):
            flat, lengths, _ = tokenizer.encode_flat(texts[start:start + slice_size])
            yield TokenBatch(np.arange(start, start + len(lengths)), flat, lengths)

    out = np.full((len(texts), dim), np.nan, dtype=np.float32)
    for keys, vecs in runner.run(pack(tokenized(), runner.token_budget, runner.max_seqs)):
        out[keys] = vecs
    assert not np.isnan(out).any()  # every text came back
    return out


def _stream(lengths_per_part):
    key = 0
    for lengths in lengths_per_part:
        lengths = np.asarray(lengths, np.int32)
        ids = np.concatenate([np.full(n, key + i, np.int32) for i, n in enumerate(lengths)])
        yield TokenBatch(np.arange(key, key + len(lengths)), ids, lengths)
        key += len(lengths)


def test_pack_respects_budgets_and_order():
    parts = [[5, 7, 3], [10, 2, 2, 9], [4]]
    batches = list(pack(_stream(parts), token_budget=12, max_seqs=3))
    assert all(b.lengths.sum() <= 12 and len(b.lengths) <= 3 for b in batches)
    keys = np.concatenate([b.keys for b in batches])
    assert keys.tolist() == list(range(8))
    ids = np.concatenate([b.ids for b in batches])
    expected = np.concatenate([np.full(n, k, np.int32) for k, n in enumerate([5, 7, 3, 10, 2, 2, 9, 4])])
    assert np.array_equal(ids, expected)  # every sequence intact, none split across batches
    for b in batches:
        offs = np.concatenate(([0], np.cumsum(b.lengths)))
        for i, k in enumerate(b.keys):
            assert (b.ids[offs[i]:offs[i + 1]] == k).all()


def test_pack_fills_batches_across_parts():
    """Parts (the indexer's lots) are far smaller than a batch: a batch takes several of them, and
    ends only when the next sequence would not fit (a CUDA graph computes the whole budget)."""
    parts = [[3, 3, 3]] * 10  # 90 tokens in parts of 9
    batches = list(pack(_stream(parts), token_budget=40, max_seqs=100))
    assert [int(b.lengths.sum()) for b in batches] == [39, 39, 12]
    by_count = list(pack(_stream(parts), token_budget=1000, max_seqs=7))
    assert [len(b.lengths) for b in by_count] == [7, 7, 7, 7, 2]


def test_pack_rejects_sequence_over_budget():
    with pytest.raises(ValueError, match="exceeds the token budget"):
        list(pack(_stream([[3, 20]]), token_budget=10, max_seqs=4))


def test_fill_packed_layout():
    token_budget, max_tokens = 20, 6
    v = [np.full(token_budget, -1, np.int32) for _ in range(3)] + [np.full(12, -1, np.int32)]
    fill_packed(*v, np.arange(1, 8, dtype=np.int32), np.array([3, 4], np.int32), max_tokens)
    ids, pos, seg, cu = v
    assert ids.tolist()[:7] == [1, 2, 3, 4, 5, 6, 7] and (ids[7:] == 0).all()
    assert pos.tolist()[:7] == [0, 1, 2, 0, 1, 2, 3]
    assert seg.tolist()[:7] == [0, 0, 0, 1, 1, 1, 1]
    # 13 padding tokens -> segments of 6, 6, 1
    assert cu.tolist() == [0, 3, 7, 13, 19, 20] + [20] * 6
    assert seg.tolist()[7:] == [2] * 6 + [3] * 6 + [4]
    assert (pos[7:] < max_tokens).all()


def test_packed_forward_matches_padded(embedder):
    """The backend's packed forward and pooling (CPU reference attention) == its padded path."""
    texts = ["def f(x):\n    return x", "a longer piece of prose about searching code " * 3, "", "z"]
    got = embed_packed(embedder.backend, embedder.tokenizer.encode(texts).ids)
    assert (got * embedder.embed(texts)).sum(1).min() > 0.99999


def test_padded_runner_stream_in_order(embedder):
    texts = [f"item {i} " * (1 + i % 13) for i in range(50)]

    runner = PaddedRunner(embedder.backend, token_budget=256, batch_size=8)
    got = run_all(texts, embedder.tokenizer, runner, embedder.dim)
    assert (got * embedder.embed(texts)).sum(1).min() > 0.99999


class _KeyRunner:
    """Returns each sequence's key as its vector, after a delay that differs per runner, so that
    the runners finish out of step and only the merge can put results back in order."""

    def __init__(self, delay: float, fail_at: int | None = None):
        self.token_budget, self.max_seqs, self.delay, self.fail_at, self.seen = 12, 3, delay, fail_at, 0

    def run(self, batches):
        import time

        for b in batches:
            if self.fail_at is not None and int(b.keys[0]) >= self.fail_at:
                raise RuntimeError("device lost")
            time.sleep(self.delay)
            self.seen += len(b.keys)
            yield b.keys, b.keys[:, None].astype(np.float32)


def _keys_out(out) -> list[int]:
    assert all(np.array_equal(k, v[:, 0]) for k, v in out)  # each vector stays with its key
    return sorted(np.concatenate([k for k, _ in out]).tolist())


@pytest.mark.parametrize("n_runners", [1, 2, 3])
def test_multi_runner_returns_every_sequence_once(n_runners):
    runners = [_KeyRunner(delay=0.001 * (n_runners - k)) for k in range(n_runners)]
    multi = MultiRunner(runners)
    parts = [[5, 7, 3], [10, 2, 2, 9], [4], [1] * 20, [12, 11]]
    out = list(multi.run(pack(_stream(parts), multi.token_budget, multi.max_seqs)))
    assert _keys_out(out) == list(range(sum(len(p) for p in parts)))
    assert all(r.seen > 0 for r in runners)  # every runner took a share


def test_multi_runner_builds_pending_runners_in_their_threads():
    """A runner given as a function (a second GPU still loading) joins when built; the first
    runner works meanwhile, and both take a share."""
    import threading

    built_in: list[str] = []
    late = _KeyRunner(0.001)

    def build():
        built_in.append(threading.current_thread().name)
        return late

    first = _KeyRunner(0.001)
    multi = MultiRunner([first], pending=[build])
    out = list(multi.run(pack(_stream([[1] * 60]), multi.token_budget, multi.max_seqs)))
    assert _keys_out(out) == list(range(60))
    assert built_in and built_in[0] != threading.current_thread().name
    assert first.seen > 0 and late.seen > 0 and first.seen + late.seen == 60
    assert multi.runners == [first, late]  # built once: a second run reuses it
    out = list(multi.run(pack(_stream([[1] * 9]), multi.token_budget, multi.max_seqs)))
    assert _keys_out(out) == list(range(9)) and len(built_in) == 1


def test_multi_runner_error_surfaces():
    multi = MultiRunner([_KeyRunner(0.0), _KeyRunner(0.0, fail_at=10)])
    got = []
    with pytest.raises(RuntimeError, match="device lost"):
        for keys, _ in multi.run(pack(_stream([[1] * 40]), multi.token_budget, multi.max_seqs)):
            got.extend(keys.tolist())
    assert len(got) == len(set(got))  # what came out before the failure, each once


def test_multi_runner_threads_end_when_the_caller_stops_reading():
    """The runners' threads are not daemons (one stopped inside native code at exit can abort the
    process), so they must end when the caller leaves early, even while the batches' source
    would block for ever."""
    import threading

    def endless():
        yield from _stream([[1] * 30])
        threading.Event().wait()  # a source that never ends (the tokenizers gone, say)

    multi = MultiRunner([_KeyRunner(0.001), _KeyRunner(0.001)])
    before = set(threading.enumerate())
    out = multi.run(pack(endless(), multi.token_budget, multi.max_seqs))
    next(out)
    runners = [t for t in threading.enumerate() if t not in before and t.name.startswith("codesift-runner")]
    assert len(runners) == 2 and not any(t.daemon for t in runners)
    out.close()
    for t in runners:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in runners)


def test_multi_runner_pending_runner_that_fails_to_load_surfaces():
    def build():
        raise RuntimeError("CUDA out of memory on cuda:1")

    multi = MultiRunner([_KeyRunner(0.0)], pending=[build])
    with pytest.raises(RuntimeError, match="out of memory"):
        list(multi.run(pack(_stream([[1] * 40]), multi.token_budget, multi.max_seqs)))


def test_multi_runner_matches_single_on_cpu(embedder):
    texts = [f"def f{i}(x):\n    return x * {i}  # item " + "word " * (i % 17) for i in range(60)]

    multi = MultiRunner([PaddedRunner(embedder.backend, token_budget=300, batch_size=8) for _ in range(2)])
    got = run_all(texts, embedder.tokenizer, multi, embedder.dim)
    assert (got * embedder.embed(texts)).sum(1).min() > 0.99999


def test_encode_flat_matches_encode(embedder):
    texts = ["short", "word " * 3000, "x" * 5000, "a b " * 100, "", "日本語 " * 400]
    flat, lengths, truncated = embedder.tokenizer.encode_flat(texts)
    enc = embedder.tokenizer.encode(texts)
    assert lengths.tolist() == [len(x) for x in enc.ids]
    assert flat.tolist() == [t for x in enc.ids for t in x]
    assert truncated == enc.truncated


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [True, False])
def test_packed_runner_matches_cpu(embedder, model_files, cuda_graph):
    from codesift.embed.backend import load_backend
    from codesift.embed.scheduler import PackedRunner
    from tests.embed.texts import parity_texts

    texts = parity_texts()
    backend = load_backend(model_files, device="cuda", dtype="fp16")
    runner = PackedRunner(backend, token_budget=4096, cuda_graph=cuda_graph)

    got = run_all(texts, embedder.tokenizer, runner, embedder.dim, slice_size=64)
    cos = (got * embedder.embed(texts)).sum(1)
    print(f"\npacked fp16 (graph={cuda_graph}) vs cpu fp32: min cos {cos.min():.6f}")
    assert cos.min() >= 0.999


@pytest.mark.gpu
def test_multi_runner_two_packed_runners_on_one_gpu(embedder, model_files):
    """The multi-GPU path (a thread and a CUDA graph per runner), exercised with two runners on
    GPU 0 where only one GPU is visible."""
    from codesift.embed.backend import load_backend
    from codesift.embed.scheduler import make_runner, visible_gpus
    from tests.embed.texts import parity_texts

    texts = parity_texts()
    devices = (visible_gpus() * 2)[:max(2, len(visible_gpus()))]
    multi = MultiRunner([make_runner(load_backend(model_files, device=d, dtype="fp16"), 4096) for d in devices])

    got = run_all(texts, embedder.tokenizer, multi, embedder.dim, slice_size=64)
    cos = (got * embedder.embed(texts)).sum(1)
    print(f"\nmulti-runner {devices} fp16 vs cpu fp32: min cos {cos.min():.6f}")
    assert cos.min() >= 0.999
