from __future__ import annotations

import os

import numpy as np
import pytest


def import_reference(module: str):
    """A reference implementation (tests only). Locally a missing one skips its tests; under CI
    (the `CI` environment variable set) it fails them, so that no parity check passes by skipping."""
    if os.environ.get("CI"):
        import importlib

        return importlib.import_module(module)  # ImportError: the test fails
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def reference_model(model_files):
    """sentence-transformers on the same folder: the reference for the default model."""
    st = import_reference("sentence_transformers")
    return st.SentenceTransformer(str(model_files.root), device="cpu")


def embed_packed(backend, ids: list[list[int]], token_budget: int = 1024) -> np.ndarray:
    """The backend's packed path (CPU reference attention off CUDA) on one batch laid out by fill_packed."""
    import torch

    from codesift.embed.batches import fill_packed

    lengths = np.array([len(x) for x in ids], np.int32)
    n_pad_segments = -(-(token_budget - int(lengths.sum())) // backend.max_tokens)
    v = [np.zeros(token_budget, np.int32) for _ in range(3)] + [np.zeros(len(ids) + n_pad_segments + 1, np.int32)]
    fill_packed(*v, np.concatenate([np.array(x, np.int32) for x in ids]), lengths, backend.max_tokens)
    return backend.embed_packed(*(torch.from_numpy(a) for a in v), backend.max_tokens)[: len(ids)].numpy()


@pytest.fixture
def offline_models(tmp_path, monkeypatch):
    """An empty models folder (returned) and Hugging Face cache, and no installed package carrying a
    reranker: what a machine without any of them finds."""
    from codesift.embed import cross_encoder, rerankers

    monkeypatch.setenv("CODESIFT_MODELS", str(tmp_path / "models"))
    for var in ("HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setattr(cross_encoder, "RERANKER_PACKAGES", (("no_such_package_here", "x"),))
    monkeypatch.setattr(rerankers, "EMBEDDING_RERANKER_PACKAGES", (("no_such_package_here", "x"),))
    return tmp_path / "models"
