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
