from __future__ import annotations

import os

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
