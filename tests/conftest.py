from __future__ import annotations

import pytest


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_files():
    """The default model, or the folder in CODESIFT_TEST_MODEL (e.g. an fp16 copy on a GPU machine)."""
    import os

    from codesift.embed.model_files import resolve_model

    return resolve_model(os.environ.get("CODESIFT_TEST_MODEL", "default"))


@pytest.fixture(scope="session")
def embedder(model_files):
    from codesift.embed.embedder import Embedder

    return Embedder.load(model_files, device="cpu", dtype="fp32", engine="torch")  # numpy: its own tests


@pytest.fixture(scope="session")
def reference_model(model_files):
    """sentence-transformers on the same folder: the reference implementation (tests only)."""
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(model_files.root), device="cpu")
