"""Finding model folders, reading their settings, and refusing broken ones clearly."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from codesift.embed.model_files import read_model_folder, resolve_model
from codesift.errors import ModelLoadError, ModelNotFoundError, UnsupportedModelError
from tests.embed.conftest import import_reference

SMALL_FILES = ["config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"]


def copy_model(src: Path, dst: Path, link_weights: bool = True) -> Path:
    for name in SMALL_FILES:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / name, dst / name)
    if link_weights:
        (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    return dst


def test_default_model_found_in_package(model_files):
    assert model_files.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert model_files.source.startswith("package ")
    assert (model_files.pooling, model_files.normalize, model_files.max_seq_length) == ("mean", True, 256)
    assert model_files.dim == 384


def test_local_folder(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m")
    files = resolve_model(str(folder))
    assert files.root == folder and files.source == "path"


def test_hf_cache_layout(model_files, tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--acme--mini"
    snap = copy_model(model_files.root, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    files = resolve_model("acme/mini")
    assert files.root == snap and files.name == "acme/mini" and files.source.startswith("hf-cache")


def test_not_found_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("acme/missing")
    msg = str(e.value)
    assert "acme/missing" in msg and str(tmp_path / "hub" / "models--acme--missing") in msg


def test_default_not_installed_lists_packages(monkeypatch):
    import codesift.embed.model_files as mf

    monkeypatch.setattr(mf, "DEFAULT_MODEL_PACKAGES", (("no_such_pkg_xyz", "model"),))
    monkeypatch.setattr(mf, "hf_cache_dirs", lambda: [])
    with pytest.raises(ModelNotFoundError, match="no_such_pkg_xyz"):
        resolve_model("default")


def test_truncated_weights_named(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m", link_weights=False)
    data = (model_files.weights).read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    from codesift.embed.embedder import Embedder

    with pytest.raises(ModelLoadError, match="truncated") as e:
        Embedder.load(str(folder), device="cpu")
    assert "model.safetensors" in str(e.value)


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))


def _tensors(model_files) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_files.weights))


def test_missing_tensor_named(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m", link_weights=False)
    t = _tensors(model_files)
    del t["encoder.layer.3.attention.self.key.weight"]
    _write_safetensors(folder / "model.safetensors", t)
    from codesift.embed.embedder import Embedder

    with pytest.raises(ModelLoadError, match=r"encoder\.layer\.3\.attention\.self\.key\.weight"):
        Embedder.load(str(folder), device="cpu")


def test_wrong_shape_named(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m", link_weights=False)
    t = _tensors(model_files)
    t["encoder.layer.0.intermediate.dense.weight"] = t["encoder.layer.0.intermediate.dense.weight"][:100]
    _write_safetensors(folder / "model.safetensors", t)
    from codesift.embed.embedder import Embedder

    with pytest.raises(ModelLoadError, match=r"intermediate\.dense\.weight.*shape"):
        Embedder.load(str(folder), device="cpu")


def test_prefixed_names_and_unused_tensors(model_files, tmp_path):
    """A BertForMaskedLM-style file: 'bert.' prefix, a pooler and an MLM head to ignore."""
    folder = copy_model(model_files.root, tmp_path / "m", link_weights=False)
    t = {"bert." + k: v for k, v in _tensors(model_files).items()}
    t["bert.pooler.dense.weight"] = np.zeros((384, 384), np.float32)
    t["cls.predictions.bias"] = np.zeros((30522,), np.float32)
    _write_safetensors(folder / "model.safetensors", t)
    from codesift.embed.embedder import Embedder

    a = Embedder.load(str(folder), device="cpu", dtype="fp32").embed(["prefixed weights"])
    b = Embedder.load(model_files, device="cpu", dtype="fp32").embed(["prefixed weights"])
    assert float(a[0] @ b[0]) > 0.99999


def test_unknown_architecture(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(model_type="gpt2", architectures=["GPT2Model"])
    (folder / "config.json").write_text(json.dumps(cfg))
    from codesift.embed.embedder import Embedder

    with pytest.raises(UnsupportedModelError, match="GPT2Model"):
        Embedder.load(str(folder), device="cpu")


def test_missing_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        read_model_folder(tmp_path)
    with pytest.raises(ModelLoadError, match="config.json"):
        read_model_folder(tmp_path / "nope")


@pytest.mark.parametrize("mode", ["cls", "max", "mean_sqrt_len"])
def test_pooling_modes_match_reference(model_files, tmp_path, mode):
    st = import_reference("sentence_transformers")
    folder = copy_model(model_files.root, tmp_path / "m")
    pcfg = json.loads((folder / "1_Pooling/config.json").read_text())
    pcfg["pooling_mode_mean_tokens"] = False
    pcfg[{"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens",
          "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}[mode]] = True
    (folder / "1_Pooling/config.json").write_text(json.dumps(pcfg))
    files = resolve_model(str(folder))
    assert files.pooling == mode
    texts = ["pooling test", "def f(x):\n    return [y for y in x if y]", "a much longer text " * 20]
    from codesift.embed.embedder import Embedder
    from codesift.embed.query_encoder import QueryEncoder

    ours = Embedder.load(files, device="cpu", dtype="fp32").embed(texts)
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    assert (ours * ref).sum(1).min() > 0.99999
    assert (QueryEncoder(files).encode(texts) * ours).sum(1).min() > 0.9999


def test_no_normalize_module(model_files, tmp_path):
    folder = copy_model(model_files.root, tmp_path / "m")
    modules = [m for m in json.loads((folder / "modules.json").read_text()) if "Normalize" not in m["type"]]
    (folder / "modules.json").write_text(json.dumps(modules))
    files = resolve_model(str(folder))
    assert files.normalize is False
    from codesift.embed.embedder import Embedder

    v = Embedder.load(files, device="cpu", dtype="fp32").embed(["not normalised"])
    assert abs(float(np.linalg.norm(v[0])) - 1.0) > 1e-3
