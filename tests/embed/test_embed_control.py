"""What sentence-transformers configs carry (prompts, last-token pooling, Matryoshka truncation) and
control over long embeds (progress, cancellation, weights' memory and its release), on the CPU."""
from __future__ import annotations

import dataclasses
import gc
import json
import threading
import weakref

import numpy as np
import pytest

from codesift.embed.embedder import Embedder
from codesift.embed.model_files import read_model_folder
from codesift.embed.query_encoder import QueryEncoder
from codesift.errors import Cancelled, ModelLoadError
from tests.embed.test_model_files import copy_model
from tests.embed.texts import PROSE, SNIPPETS

TEXTS = SNIPPETS[:10]


def test_progress_reports_every_batch(embedder):
    calls = []
    got = embedder.embed(TEXTS, batch_size=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 10), (6, 10), (9, 10), (10, 10)]
    np.testing.assert_allclose(got, embedder.embed(TEXTS, batch_size=3), atol=1e-6)


def test_cancel_with_event_stops_within_a_batch(embedder):
    cancel = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        cancel.set()  # as if the user pressed Ctrl-C while the first batch ran

    with pytest.raises(Cancelled, match="after 3 of 10"):
        embedder.embed(TEXTS, batch_size=3, progress=progress, cancel=cancel)
    assert calls == [3]  # no batch ran after the token was set


def test_cancel_with_flag_object_before_start(embedder):
    class Token:
        cancelled = True

    calls = []
    with pytest.raises(Cancelled, match="after 0 of 10"):
        embedder.embed(TEXTS, progress=lambda d, t: calls.append(d), cancel=Token())
    assert calls == []
    Token.cancelled = False
    assert embedder.embed(TEXTS[:2], cancel=Token()).shape == (2, 384)


def test_memory_reported_and_released_on_close(model_files):
    from codesift.embed.models import architecture_for
    from codesift.embed.safetensors_file import SafetensorsFile

    arch = architecture_for(model_files.config)
    st = SafetensorsFile(model_files.weights)
    mapping = arch.map_weights(st, arch.read_config(model_files.config))
    want = sum(4 * int(np.prod(st.tensors[name].shape)) for name in mapping.values())

    e = Embedder.load(model_files, device="cpu", dtype="fp32", engine="torch")  # torch holds every weight at once
    assert e.memory() == {"cpu": want}
    param = weakref.ref(next(e.backend.model.parameters()))
    e.close()
    gc.collect()
    assert e.memory() == {} and param() is None  # the weights are gone, not just forgotten
    with pytest.raises(RuntimeError, match="closed"):
        e.embed(["x"])
    e.close()  # twice is harmless


def test_prompts_from_sentence_transformers_config(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m")
    assert read_model_folder(folder).query_prompt == "" and read_model_folder(folder).document_prompt == ""
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None}))
    files = read_model_folder(folder)
    assert (files.query_prompt, files.document_prompt) == ("query: ", "passage: ")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"search_query": "search_query: ", "search_document": "search_document: ",
                     "classification": "classification: "}, "default_prompt_name": "classification"}))
    files = read_model_folder(folder)
    assert (files.query_prompt, files.document_prompt) == ("search_query: ", "search_document: ")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"retrieval": "Represent this for retrieval: "}, "default_prompt_name": "retrieval"}))
    files = read_model_folder(folder)
    assert files.query_prompt == files.document_prompt == "Represent this for retrieval: "


def test_matryoshka_dim_truncates_then_renormalises(model_files, embedder):
    full = embedder.embed(TEXTS)
    files = model_files.with_dim(128)
    assert (files.dim, files.hidden_size) == (128, 384)
    e = Embedder.load(files, device="cpu", dtype="fp32")
    got = e.embed(TEXTS)
    want = full[:, :128] / np.linalg.norm(full[:, :128], axis=1, keepdims=True)
    assert e.dim == 128 and got.shape == (10, 128)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(QueryEncoder(files).encode(TEXTS[:4]), want[:4], atol=1e-4)
    assert model_files.with_dim(384).truncate_dim is None
    for bad in (0, 385):
        with pytest.raises(ModelLoadError, match="1 to 384"):
            model_files.with_dim(bad)


def test_lasttoken_pooling(model_files, tmp_path):
    """pooling_mode_lasttoken picks the last real token's state: padded and packed torch paths and
    the numpy path agree with it read off the model's token states."""
    import torch

    from tests.embed.conftest import embed_packed

    folder = copy_model(model_files.root, tmp_path / "m")
    pool_cfg = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pool_cfg.update(pooling_mode_mean_tokens=False, pooling_mode_lasttoken=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool_cfg))
    files = read_model_folder(folder)
    assert files.pooling == "lasttoken"
    e = Embedder.load(files, device="cpu", dtype="fp32", engine="torch")
    texts = PROSE[:3] + ["x"]
    ids = e.tokenizer.encode(texts).ids
    got = e.embed_ids(ids, batch_size=4)
    ids_t, mask = e.backend.pad(ids)
    with torch.inference_mode():
        hidden = e.backend.model(ids_t, mask).float().numpy()
    want = np.stack([hidden[i, len(x) - 1] for i, x in enumerate(ids)])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(embed_packed(e.backend, ids), want, atol=1e-4)
    np.testing.assert_allclose(QueryEncoder(files).encode(texts), want, atol=1e-4)
    mean = Embedder.load(dataclasses.replace(files, pooling="mean"), device="cpu").embed_ids(ids)
    assert np.abs(mean - got).max() > 0.1  # the mode matters: not mean pooling under another name


def test_document_prompt_reaches_the_indexers_tokens(model_files, tmp_path):
    """The indexer tokenizes each chunk after the model's document prompt (index/prepare.py)."""
    from codesift.embed.tokenizer import TextTokenizer
    from codesift.index.prepare import prepare_file
    from codesift.walk.model import SourceFile

    folder = copy_model(model_files.root, tmp_path / "m")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "query: ", "document": "passage: "}}))
    files = read_model_folder(folder)
    src = tmp_path / "a.py"
    src.write_text("def add(a, b):\n    return a + b\n")
    st = src.stat()
    source = SourceFile("a.py", src, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
    with_prompt, without = prepare_file(source, None, files), prepare_file(source, None, model_files)
    prompt_ids = TextTokenizer(files).encode(["passage:"]).ids[0][1:-1]
    assert len(prompt_ids) == 2
    first = list(with_prompt.token_ids[:with_prompt.token_lengths[0]])
    assert first[1:1 + len(prompt_ids)] == prompt_ids
    assert with_prompt.token_lengths[0] == without.token_lengths[0] + len(prompt_ids)
    assert with_prompt.hashes == without.hashes  # the stored texts are the chunks', prompt-free


def test_numpy_engine_reports_what_it_holds(model_files):
    e = Embedder.load(model_files, device="cpu", dtype="fp32", engine="numpy")
    before = e.memory().get("cpu", 0)
    e.embed(["def add(a, b): return a + b"])
    assert e.memory()["cpu"] > before  # weights read on first use
    e.close()
    assert e.memory() == {}
