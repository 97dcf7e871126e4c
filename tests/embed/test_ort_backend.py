"""The ONNX Runtime CPU backend: our graph from our weights, fp32 parity with sentence-transformers,
int8 within its bounds of fp32, the backend contract, and dispatch."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from codesift.embed.backend import load_backend  # noqa: E402
from codesift.embed.embedder import Embedder  # noqa: E402
from codesift.embed.ort_backend import INT8_MIN_TOKENS, groups  # noqa: E402
from codesift.embed.tokenizer import TextTokenizer  # noqa: E402
from codesift.errors import UnsupportedDeviceError  # noqa: E402
from tests.embed.texts import parity_texts  # noqa: E402


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def embedder_for(model_files, **kw) -> Embedder:
    return Embedder(model_files, load_backend(model_files, device="cpu", **kw), TextTokenizer(model_files))


@pytest.fixture(scope="module")
def onnx_fp32(model_files):
    return embedder_for(model_files, engine="onnx")


@pytest.fixture(scope="module")
def onnx_int8(model_files):
    return embedder_for(model_files, dtype="int8")


@pytest.fixture(scope="module")
def texts():
    t = parity_texts()
    assert len(t) >= 500
    return t


@pytest.fixture(scope="module")
def fp32_vectors(onnx_fp32, texts):
    return onnx_fp32.embed(texts, batch_size=32)


@pytest.mark.slow
def test_fp32_parity_with_sentence_transformers(reference_model, texts, fp32_vectors):
    ref = reference_model.encode(texts, batch_size=32, convert_to_numpy=True)
    cos = cosines(fp32_vectors, ref)
    worst = int(cos.argmin())
    print(f"\nonnx fp32 over {len(texts)} texts: min cos {cos.min():.8f}, mean {cos.mean():.8f}")
    assert cos.min() >= 0.9999, f"text {worst} {texts[worst][:80]!r}: cos {cos[worst]}"
    np.testing.assert_allclose(np.linalg.norm(fp32_vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_int8_within_bounds_of_fp32(onnx_int8, texts, fp32_vectors):
    got = onnx_int8.embed(texts, batch_size=32)
    cos = cosines(got, fp32_vectors)
    worst = int(cos.argmin())
    print(f"\nonnx int8 against fp32 over {len(texts)} texts: min cos {cos.min():.6f}, mean {cos.mean():.6f}")
    assert cos.min() >= 0.995, f"text {worst} {texts[worst][:80]!r}: cos {cos[worst]}"
    assert cos.mean() >= 0.999
    # int8 is not fp32 under another name: inputs past the short-run threshold do differ
    lengths = np.array([len(x) for x in onnx_int8.tokenizer.encode(texts).ids])
    assert cos[lengths > INT8_MIN_TOKENS].max() < 0.99999


def test_int8_short_runs_are_fp32(onnx_int8, onnx_fp32):
    """Runs of short inputs go through in float32 (their few tokens each weigh much)."""
    ids = onnx_int8.tokenizer.encode(["def f(x):", "import os", "return None"]).ids
    assert max(len(x) for x in ids) <= INT8_MIN_TOKENS
    np.testing.assert_allclose(onnx_int8.backend.embed_batch(ids), onnx_fp32.backend.embed_batch(ids), atol=1e-5)


@pytest.mark.parametrize("which", ["onnx_fp32", "onnx_int8"])
def test_contract(which, request, embedder):
    e = request.getfixturevalue(which)
    b = e.backend
    assert (b.is_gpu, b.packed_supported, b.dim, b.max_tokens) == (False, False, embedder.dim, embedder.max_tokens)
    assert b.name == f"onnx-bert-cpu-{which.split('_')[1]}"
    assert b.embed_batch([]).shape == (0, b.dim)
    ids = e.tokenizer.encode(["def f(x):\n    return x + 1", "a longer text " * 20]).ids
    got = b.embed_batch(ids)
    assert got.dtype == np.float32 and got.shape == (2, b.dim)
    alone = b.embed_batch(ids[:1])[0]
    if which == "onnx_fp32":  # a vector does not depend on what it was run with
        np.testing.assert_allclose(alone, got[0], atol=1e-5)
    else:  # int8 quantises each run's inputs with a range of their own: close, not equal
        assert float(alone @ got[0]) >= 0.995
    with pytest.raises(ValueError, match="over this model's limit"):
        b.embed_batch([[1] * (b.max_tokens + 1)])
    assert e.memory()["cpu"] > 20_000_000


def test_groups_cut_sorted_inputs_to_the_token_budget():
    lengths = [3, 200, 50, 50, 50, 300, 10]
    runs = groups(lengths, budget=256)
    assert sorted(i for run in runs for i in run) == list(range(len(lengths)))
    assert runs[0] == [5]  # over the budget: alone
    for run in runs:
        assert [lengths[i] for i in run] == sorted((lengths[i] for i in run), reverse=True)
        assert len(run) == 1 or len(run) * lengths[run[0]] <= 256
    assert [len(r) for r in runs] == [1, 1, 5]


def test_cpu_default_is_onnx_and_others_on_request(model_files, monkeypatch):
    monkeypatch.delenv("CODESIFT_ENGINE", raising=False)
    assert load_backend(model_files, device="cpu").name == "onnx-bert-cpu-fp32"
    assert load_backend(model_files, device="cpu", dtype="int8").name == "onnx-bert-cpu-int8"
    assert load_backend(model_files, device="cpu", engine="numpy").name.startswith("numpy-bert-cpu")
    monkeypatch.setenv("CODESIFT_ENGINE", "numpy")
    assert load_backend(model_files, device="cpu").name.startswith("numpy-bert-cpu")


def test_onnx_engine_refusals(model_files):
    with pytest.raises(UnsupportedDeviceError, match="CPU only"):
        load_backend(model_files, device="cuda", engine="onnx")
    with pytest.raises(UnsupportedDeviceError, match="fp32 or int8"):
        load_backend(model_files, device="cpu", dtype="bf16", engine="onnx")
    with pytest.raises(UnsupportedDeviceError, match="fp32"):
        load_backend(model_files, device="cpu", dtype="int8", engine="numpy")
