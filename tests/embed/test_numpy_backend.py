"""The torch-free CPU backend: parity with sentence-transformers, the backend contract, dispatch."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from codesift.embed.backend import load_backend
from codesift.embed.embedder import Embedder
from codesift.embed.models import common
from codesift.embed.numpy_backend import GROUP_TOKENS, CpuWorkers
from codesift.embed.tokenizer import TextTokenizer
from codesift.errors import UnsupportedDeviceError
from tests.embed.blas_turns import TurnLog
from tests.embed.texts import parity_texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def numpy_embedder(model_files):
    backend = load_backend(model_files, device="cpu", engine="numpy")
    return Embedder(model_files, backend, TextTokenizer(model_files))


@pytest.mark.slow
def test_parity_with_sentence_transformers(reference_model, numpy_embedder):
    texts = parity_texts()
    assert len(texts) >= 500
    ours = numpy_embedder.embed(texts, batch_size=32)
    ref = reference_model.encode(texts, batch_size=32, convert_to_numpy=True)
    cos = cosines(ours, ref)
    worst = int(cos.argmin())
    print(f"\nnumpy backend over {len(texts)} texts: min cos {cos.min():.8f}, mean {cos.mean():.8f}")
    assert cos.min() >= 0.9999, f"text {worst} {texts[worst][:80]!r}: cos {cos[worst]}"
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_contract(numpy_embedder, embedder):
    b = numpy_embedder.backend
    assert (b.is_gpu, b.packed_supported, b.dim, b.max_tokens) == (False, False, embedder.dim, embedder.max_tokens)
    assert b.embed_batch([]).shape == (0, b.dim)
    ids = numpy_embedder.tokenizer.encode(["def f(x):\n    return x + 1", "a longer text " * 20]).ids
    got = b.embed_batch(ids)
    assert got.dtype == np.float32 and got.shape == (2, b.dim)
    # a vector does not depend on the padding of its batch
    np.testing.assert_allclose(b.embed_batch(ids[:1])[0], got[0], atol=1e-5)
    with pytest.raises(ValueError, match="over this model's limit"):
        b.embed_batch([[1] * (b.max_tokens + 1)])


def test_numpy_engine_refuses_gpu_devices_and_other_dtypes(model_files):
    with pytest.raises(UnsupportedDeviceError, match=r"codesift\[gpu\]"):
        load_backend(model_files, device="cuda", engine="numpy")
    with pytest.raises(UnsupportedDeviceError, match="fp32"):
        load_backend(model_files, device="cpu", dtype="bf16", engine="numpy")


def test_cpu_default_without_onnxruntime_is_numpy_and_torch_on_request(model_files, monkeypatch):
    from codesift.embed import backend

    monkeypatch.delenv("CODESIFT_ENGINE", raising=False)
    monkeypatch.setattr(backend, "ort_available", lambda: False)  # as in an install without onnxruntime
    assert load_backend(model_files, device="cpu").name.startswith("numpy-bert-cpu")
    pytest.importorskip("torch")
    assert load_backend(model_files, device="cpu", dtype="bf16").name.startswith("torch-bert-cpu")
    monkeypatch.setenv("CODESIFT_ENGINE", "torch")
    assert load_backend(model_files, device="cpu").name.startswith("torch-bert-cpu")


def test_workers_take_turns_at_every_product(numpy_embedder, monkeypatch):
    """OpenBLAS gives a wrong product now and then when threads call it at once (common.BLAS_TURN):
    every product of a batch run on two workers goes through the turn."""
    b = numpy_embedder.backend
    turns = TurnLog()
    monkeypatch.setattr(common, "BLAS_TURN", turns)
    monkeypatch.setattr(b, "workers", CpuWorkers("test-turns", 2))
    ids = numpy_embedder.tokenizer.encode([f"def f{i}(x):\n    return x + {i}\n" * 10 for i in range(40)]).ids
    groups = -(-len(ids) // (GROUP_TOKENS // max(len(x) for x in ids)))
    assert groups > 1
    b.embed_batch(ids)
    layers = b.model.cfg.num_hidden_layers
    # per layer: q, k, v, the attention output and the two feed-forward products on each group, and
    # two attention products per input
    assert turns.turns == layers * (6 * groups + 2 * len(ids))
    assert turns.threads and threading.get_ident() not in turns.threads  # on the workers
    b.workers.close()
