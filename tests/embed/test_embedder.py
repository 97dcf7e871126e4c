"""The public Embedder API: odd inputs, devices and dtypes."""
from __future__ import annotations

import numpy as np
import pytest

from codesift.embed.embedder import Embedder
from codesift.errors import UnsupportedDeviceError


def test_empty_list(embedder):
    v = embedder.embed([])
    assert v.shape == (0, 384) and v.dtype == np.float32


def test_empty_and_whitespace_strings(embedder):
    v = embedder.embed(["", "   ", "\n"])
    assert v.shape == (3, 384) and np.isfinite(v).all()
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)  # both are just [CLS] [SEP]


def test_non_string_names_index(embedder):
    with pytest.raises(TypeError, match=r"texts\[2\] is int"):
        embedder.embed(["a", "b", 3])
    with pytest.raises(TypeError, match="one string"):
        embedder.embed("a single string")


def test_long_text_truncated_and_counted(embedder):
    v = embedder.embed(["short", "word " * 5000, "token " * 300])
    assert embedder.truncated == 2
    assert np.isfinite(v).all()
    # truncation keeps the first max_tokens tokens: appending more text changes nothing
    a, b = embedder.embed(["word " * 600, "word " * 900])
    assert float(a @ b) > 0.99999


def test_batch_size_does_not_change_vectors(embedder):
    texts = [f"function number {i} " * (i % 7 + 1) for i in range(40)]
    a = embedder.embed(texts, batch_size=1)
    b = embedder.embed(texts, batch_size=64)
    assert (a * b).sum(1).min() > 0.99999


def test_unavailable_devices_are_clear_errors(model_files):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedDeviceError, match="no CUDA GPU"):
            Embedder.load(model_files, device="cuda")
    with pytest.raises(UnsupportedDeviceError, match="unknown device"):
        Embedder.load(model_files, device="tpu9")
    with pytest.raises(UnsupportedDeviceError, match="fp16 is not supported on cpu"):
        Embedder.load(model_files, device="cpu", dtype="fp16")
    with pytest.raises(UnsupportedDeviceError, match="unknown dtype"):
        Embedder.load(model_files, device="cpu", dtype="int4")


def test_bf16_on_cpu_close_to_fp32(model_files, embedder):
    texts = ["bf16 on the cpu", "def add(a, b):\n    return a + b"]
    a = Embedder.load(model_files, device="cpu", dtype="bf16").embed(texts)
    assert (a * embedder.embed(texts)).sum(1).min() > 0.99


def test_backend_contract(embedder):
    from codesift.embed.backend import Backend

    b = embedder.backend
    assert isinstance(b, Backend)
    assert b.max_tokens == 256 and b.is_gpu is False and "cpu" in b.name
    ids = embedder.tokenizer.encode(["contract"]).ids
    out = b.embed_batch(ids)
    assert out.shape == (1, 384) and out.dtype == np.float32
    with pytest.raises(ValueError, match="over this model's limit"):
        b.embed_batch([[101] + [1000] * 300 + [102]])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_gpu_half_precision_parity(model_files, embedder, dtype):
    from tests.embed.texts import parity_texts

    texts = parity_texts()
    ref = embedder.embed(texts)
    gpu = Embedder.load(model_files, device="cuda", dtype=dtype).embed(texts)
    cos = (gpu * ref).sum(1)
    print(f"\n{dtype} vs cpu fp32 over {len(texts)} texts: min cos {cos.min():.6f} mean {cos.mean():.6f}")
    assert cos.min() >= 0.999


@pytest.mark.gpu
def test_gpu_fp32_matches_cpu(model_files, embedder):
    from tests.embed.texts import parity_texts

    texts = parity_texts()
    gpu = Embedder.load(model_files, device="cuda", dtype="fp32").embed(texts)
    cos = (gpu * embedder.embed(texts)).sum(1)
    assert cos.min() >= 0.99999
