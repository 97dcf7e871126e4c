"""Our encoder against sentence-transformers, and the numpy query encoder against ours."""
from __future__ import annotations

import numpy as np
import pytest

from codesift.embed.query_encoder import QueryEncoder
from tests.embed.conftest import import_reference
from tests.embed.texts import parity_texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def texts():
    t = parity_texts()
    assert len(t) >= 500
    return t


@pytest.fixture(scope="module")
def ours(embedder, texts):
    return embedder.embed(texts, batch_size=32)


@pytest.mark.slow
def test_parity_with_sentence_transformers(reference_model, embedder, texts, ours):
    ref = reference_model.encode(texts, batch_size=32, convert_to_numpy=True)
    cos = cosines(ours, ref)
    worst = int(cos.argmin())
    print(f"\nparity over {len(texts)} texts: min cos {cos.min():.8f}, mean {cos.mean():.8f}, "
          f"max |diff| {np.abs(ours - ref).max():.2e}")
    assert cos.min() >= 0.99999, f"text {worst} {texts[worst][:80]!r}: cos {cos[worst]}"
    assert embedder.truncated > 0  # the set does exercise truncation


def test_vectors_are_unit_length(ours):
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_numpy_query_encoder_matches_torch(model_files, texts, ours):
    enc = QueryEncoder(model_files)
    sample = texts[::5]  # every fifth text: all kinds, a fraction of the time
    got = enc.encode(sample)
    cos = cosines(got, ours[::5])
    print(f"\nnumpy vs torch over {len(sample)} texts: min cos {cos.min():.8f}")
    assert cos.min() >= 0.9999


def test_batch_equals_alone(embedder, texts, ours):
    """An input's vector does not depend on what it was batched (and padded) with."""
    for i in (0, 17, 101, 333, len(texts) - 1):
        alone = embedder.embed([texts[i]])[0]
        assert float(alone @ ours[i]) >= 0.99999, i


def test_golden_vectors(embedder):
    """Snapshot of the default model's vectors (from sentence-transformers 6.2, fp32 CPU)."""
    from pathlib import Path

    golden = np.load(Path(__file__).parent.parent / "data" / "golden_minilm.npz")
    got = embedder.embed(list(golden["texts"]))
    assert cosines(got, golden["vectors"]).min() >= 0.99999


def test_missing_reference_fails_under_ci(monkeypatch):
    """Under CI a parity test whose reference does not import fails; locally it skips."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError):
        import_reference("codesift_no_such_reference")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        import_reference("codesift_no_such_reference")
