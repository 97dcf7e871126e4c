"""`--dim N` (Matryoshka): an index keeps the first N values of each vector, records N in its model
stamp, and refuses, in one line, a search or an index run with another N."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from codesift.cli import cli
from codesift.errors import ModelMismatchError
from codesift.index.indexer import index_tree, model_for_index
from codesift.index.store import Store
from codesift.index.vectors import dequantize
from codesift.search.searcher import Searcher
from tests.index.repo import make_repo

QUERY = "load the configuration from a json file"


def cli_run(*args, env=None, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input)


def stored_vectors(index_dir) -> np.ndarray:
    """Every text and head vector of the index, dequantised: [n, dim]."""
    s = Searcher(index_dir)
    try:
        return np.concatenate([dequantize(np.asarray(seg.vectors)).reshape(-1, seg.vectors.shape[-1])
                               for seg in s.segments()])
    finally:
        s.close()


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, embedder):
    """The same repo indexed at the model's full width (384) and with --dim 128 (through the CLI)."""
    base = tmp_path_factory.mktemp("dim")
    full, cut = make_repo(base / "full"), make_repo(base / "cut")
    index_tree(full, embedder=embedder, workers=1)
    r = cli_run("index", cut, "--dim", 128, "--workers", 1, "--device", "cpu", "--dtype", "fp32", "-q")
    assert r.exit_code == 0, r.output
    return full, cut


def test_dim_index_holds_the_first_values_renormalised(indexes):
    full, cut = indexes
    with Store(cut / ".codesift", readonly=True) as store:
        meta = store.meta()
    assert (meta["dim"], meta["truncate_dim"]) == ("128", "128")
    with Store(full / ".codesift", readonly=True) as store:
        assert (store.get_meta("dim"), store.get_meta("truncate_dim")) == ("384", "")
    got, whole = stored_vectors(cut / ".codesift"), stored_vectors(full / ".codesift")
    assert got.shape[1] == 128 and len(got) == len(whole)
    want = whole[:, :128] / np.linalg.norm(whole[:, :128], axis=1, keepdims=True)
    # every stored vector is the first 128 values of one of the full index's, re-normalised (int8 both ways)
    assert (got @ want.T).max(axis=1).min() > 0.999
    r = cli_run("status", "--json", "--index-dir", cut / ".codesift")
    assert (json.loads(r.stdout)["dim"], json.loads(r.stdout)["truncate_dim"]) == (128, 128)


def test_search_follows_the_index_dim(indexes):
    _, cut = indexes
    r = cli_run("search", QUERY, "--mode", "semantic", "--json", "-k", 3, "--index-dir", cut / ".codesift")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["path"] == "src/config.py"
    r = cli_run("search", QUERY, "--dim", 128, "--json", "-k", 3, "--index-dir", cut / ".codesift")
    assert r.exit_code == 0 and json.loads(r.stdout)["results"][0]["path"] == "src/config.py"
    s = Searcher(cut / ".codesift")
    try:
        assert s.encoder().dim == 128 and s.encode_queries([QUERY]).shape == (1, 128)
    finally:
        s.close()


@pytest.mark.parametrize("how", ["option", "env"])
def test_search_with_another_dim_is_one_clear_line(indexes, how):
    full, cut = indexes
    extra, env = (["--dim", 256], None) if how == "option" else ([], {"CODESIFT_DIM": "256"})
    r = cli_run("search", QUERY, "--mode", "bm25", *extra, "--index-dir", cut / ".codesift", env=env)
    assert r.exit_code == 1 and "Traceback" not in r.output
    (line,) = r.output.strip().splitlines()
    assert "128-dimensional" in line and "not --dim 256" in line and "give --dim 128" in line
    r = cli_run("search", QUERY, "--dim", 64, "--index-dir", full / ".codesift")
    (line,) = r.output.strip().splitlines()
    assert r.exit_code == 1 and "384-dimensional" in line and "leave --dim out" in line


def test_index_with_another_dim_is_refused_and_changes_nothing(indexes):
    full, cut = indexes
    with Store(cut / ".codesift", readonly=True) as store:
        before = store.meta()
    r = cli_run("index", cut, "--dim", 64, "--workers", 1, "--device", "cpu")
    assert r.exit_code == 1 and "Traceback" not in r.output
    (line,) = r.output.strip().splitlines()
    assert "built with --dim 128" in line and "not --dim 64" in line and "--rebuild --dim 64" in line
    r = cli_run("index", full, "--workers", 1, "--device", "cpu", env={"CODESIFT_DIM": "64"})
    assert r.exit_code == 1 and "built with the model's full width" in r.output
    with Store(cut / ".codesift", readonly=True) as store:
        assert store.meta() == before
    # without --dim, a run updates the index at its own dim
    (cut / "src" / "extra.py").write_text("def parse_yaml(text):\n    return text.split(':')\n")
    summary = index_tree(cut, workers=1, device="cpu")
    assert summary.new == 1
    assert stored_vectors(cut / ".codesift").shape[1] == 128
    assert model_for_index("default", cut / ".codesift").dim == 128  # what `watch` and the server load
    assert model_for_index("default", cut / ".codesift", 64).dim == 64
    assert model_for_index("default", full / ".codesift").dim == 384


def test_rebuild_takes_a_new_dim(tmp_path, embedder):
    repo = make_repo(tmp_path / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    with pytest.raises(ModelMismatchError):
        index_tree(repo, workers=1, device="cpu", dim=64)
    index_tree(repo, workers=1, device="cpu", dim=64, rebuild=True)
    assert stored_vectors(repo / ".codesift").shape[1] == 64
    r = cli_run("search", QUERY, "--json", "-k", 1, "--index-dir", repo / ".codesift")
    assert r.exit_code == 0 and json.loads(r.stdout)["results"][0]["path"] == "src/config.py"


def test_embed_dim(tmp_path, embedder):
    r = cli_run("embed", "-", "--dim", 32, "--device", "cpu", "-o", tmp_path / "v.npy", input=QUERY + "\n")
    assert r.exit_code == 0, r.output
    got = np.load(tmp_path / "v.npy")
    full = embedder.embed([QUERY])
    assert got.shape == (1, 32)
    np.testing.assert_allclose(got[0], full[0, :32] / np.linalg.norm(full[0, :32]), atol=1e-5)
    r = cli_run("embed", "-", "--dim", 999, "--device", "cpu", input=QUERY + "\n")
    assert r.exit_code == 1 and "1 to 384" in r.output
