"""Issue 14 #3 and #8: `--rebuild` never destroys a good index before the new one works; a failed
first run does not bind the index to its model; a relative model path is stored absolute."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from codesift.errors import CodesiftError
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.searcher import Searcher
from tests.embed.test_model_files import copy_model
from tests.index.repo import make_repo


def broken_model(model_files, folder: Path) -> Path:
    """A copy of the default model whose weights file is cut short."""
    copy = copy_model(model_files.root, folder, link_weights=False)
    data = model_files.weights.read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 3])
    return copy


def answers(index_dir: Path) -> list[str]:
    s = Searcher(index_dir)
    try:
        return [r.chunk.path for r in s.search("load the configuration from a json file", k=3)]
    finally:
        s.close()


def test_failed_rebuild_leaves_the_old_index_answering(tmp_path, embedder, model_files):
    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    with Store(repo / ".codesift", readonly=True) as store:
        before = (store.counts(), store.get_meta("model_sha256"), store.get_meta("generation"))
    top = answers(repo / ".codesift")

    with pytest.raises(CodesiftError):
        index_tree(repo, model=str(broken_model(model_files, tmp_path / "broken")), device="cpu",
                   workers=1, rebuild=True)
    with Store(repo / ".codesift", readonly=True) as store:
        assert (store.counts(), store.get_meta("model_sha256"), store.get_meta("generation")) == before
        assert store.missing_vectors() == 0
    assert answers(repo / ".codesift") == top
    assert not (repo / ".codesift.rebuild").exists()  # the partial build is cleaned away

    rebuilt = index_tree(repo, embedder=embedder, workers=1, rebuild=True)
    assert rebuilt.new == before[0]["files"] and rebuilt.index_dir == (repo / ".codesift").resolve()
    assert answers(repo / ".codesift") == top
    assert not (repo / ".codesift.rebuild").exists()


def test_failed_first_run_does_not_bind_the_index_to_its_model(tmp_path, embedder, model_files):
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(CodesiftError):
        index_tree(repo, model=str(broken_model(model_files, tmp_path / "broken")), device="cpu", workers=1)
    summary = index_tree(repo, embedder=embedder, workers=1)  # the good model is taken: no mismatch
    assert summary.new == summary.files > 0
    assert answers(repo / ".codesift")[0] == "src/config.py"


def test_relative_model_path_is_stored_absolute(tmp_path, model_files, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    copy_model(model_files.root, tmp_path / "models" / "mini")
    monkeypatch.chdir(tmp_path)
    index_tree(repo, model=os.path.join("models", "mini"), device="cpu", workers=1)
    with Store(repo / ".codesift", readonly=True) as store:
        assert store.get_meta("model_spec") == str((tmp_path / "models" / "mini").resolve())
    monkeypatch.chdir(repo / "src")  # a search from another folder finds the same model
    assert answers(repo / ".codesift")[0] == "src/config.py"
