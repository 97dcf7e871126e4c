"""`codesift models` lists every model it can find offline, from every place it looks (the default
model's package, the models folder's model folders and GGUF files, the Hugging Face cache's model
folders and GGUF-only repos, ollama's models), each with architecture, format, dims and source; and
each listed name is what `--model` takes to load that same model."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from click.testing import CliRunner

from codesift.cli import cli
from codesift.embed.model_files import resolve_model
from codesift.errors import ModelNotFoundError
from tests.embed.gguf_writer import write_bert_gguf
from tests.embed.test_model_files import copy_model


@pytest.fixture(scope="module")
def gguf_file(model_files, tmp_path_factory):
    return write_bert_gguf(model_files.root, tmp_path_factory.mktemp("listing") / "mini.gguf", "Q8_0")


@pytest.fixture
def places(tmp_path, monkeypatch, model_files, gguf_file):
    """One model of each kind in each place, plus one we do not run and one broken."""
    models, hub, ollama = tmp_path / "models", tmp_path / "hub", tmp_path / "ollama"
    copy_model(model_files.root, models / "mini-folder")
    (models / "sub").mkdir()
    shutil.copy(gguf_file, models / "top.gguf")
    shutil.copy(gguf_file, models / "sub" / "inner.gguf")
    for repo, rev in (("acme--mini", "r1"), ("acme--mini-GGUF", "r2"), ("acme--t5", "r3"), ("acme--bad", "r4")):
        (hub / f"models--{repo}" / "refs").mkdir(parents=True)
        (hub / f"models--{repo}" / "refs" / "main").write_text(rev)
    copy_model(model_files.root, hub / "models--acme--mini" / "snapshots" / "r1")
    (hub / "models--acme--mini-GGUF" / "snapshots" / "r2").mkdir(parents=True)
    shutil.copy(gguf_file, hub / "models--acme--mini-GGUF" / "snapshots" / "r2" / "mini-q8_0.gguf")
    t5 = copy_model(model_files.root, hub / "models--acme--t5" / "snapshots" / "r3")
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5EncoderModel"],
                                                "d_model": 512}))
    bad = copy_model(model_files.root, hub / "models--acme--bad" / "snapshots" / "r4")
    (bad / "model.safetensors").unlink()
    digest = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    (ollama / "blobs").mkdir(parents=True)
    shutil.copy(gguf_file, ollama / "blobs" / f"sha256-{digest}")
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "minilm" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model",
                                                "digest": f"sha256:{digest}"}]}))
    for var, value in (("CODESIFT_MODELS", models), ("HF_HUB_CACHE", hub), ("OLLAMA_MODELS", ollama)):
        monkeypatch.setenv(var, str(value))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


def test_every_place_listed_with_architecture_dims_and_source(places, model_files):
    r = CliRunner().invoke(cli, ["models", "--json"])
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)["models"]
    by_name = {m["name"]: m for m in records if "name" in m}
    want = {  # name -> (architecture, format, dim, source starts with)
        "sentence-transformers/all-MiniLM-L6-v2": ("BertModel", "safetensors", 384, "package "),
        "mini-folder": ("BertModel", "safetensors", 384, f"models folder {places / 'models'}"),
        "top.gguf": ("BertModel", "gguf", 384, f"models folder {places / 'models'}"),
        "sub/inner.gguf": ("BertModel", "gguf", 384, f"models folder {places / 'models'}"),
        "acme/mini": ("BertModel", "safetensors", 384, f"hf-cache {places / 'hub'}"),
        "acme/mini-GGUF/mini-q8_0.gguf": ("BertModel", "gguf", 384, f"hf-cache {places / 'hub'}"),
        "acme/t5": ("T5EncoderModel", "safetensors", 512, f"hf-cache {places / 'hub'}"),
        "ollama:minilm:latest": ("BertModel", "gguf", 384, f"ollama {places / 'ollama'}"),
    }
    for name, (arch, fmt, dim, source) in want.items():
        m = by_name[name]
        assert (m["architecture"], m["format"], m["dim"]) == (arch, fmt, dim), name
        assert m["source"].startswith(source), (name, m["source"])
        assert m["supported"] == (name != "acme/t5"), name
    assert set(by_name) == set(want)
    broken = [m for m in records if "error" in m]
    assert len(broken) == 1 and "models--acme--bad" in broken[0]["path"] and "model.safetensors" in broken[0]["error"]
    for name, m in by_name.items():  # the listed name loads the listed model
        files = resolve_model(name)
        assert str(files.weights if files.weights_format == "gguf" else files.root) == m["path"], name

    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 0
    assert "acme/t5  (T5EncoderModel: not supported, safetensors, dim 512" in r.stdout
    assert "sub/inner.gguf  (BertModel, gguf, dim 384" in r.stdout
    assert "BROKEN  " in r.stdout and "Traceback" not in r.output


def test_gguf_name_not_found_says_where_it_looked(places):
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("acme/mini-GGUF/other.gguf")
    msg = str(e.value)
    assert "models--acme--mini-GGUF" in msg and "codesift models" in msg
    with pytest.raises(ModelNotFoundError, match="sub/missing.gguf"):
        resolve_model("sub/missing.gguf")


def test_nothing_found_names_every_place(tmp_path, monkeypatch):
    import codesift.embed.model_files as mf

    monkeypatch.setattr(mf, "DEFAULT_MODEL_PACKAGES", (("no_such_pkg_xyz", "model"),))
    for var in ("CODESIFT_MODELS", "HF_HUB_CACHE", "OLLAMA_MODELS"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 1
    for place in ("no_such_pkg_xyz", str(tmp_path / "codesift_models"), str(tmp_path / "hf_hub_cache"),
                  str(tmp_path / "ollama_models")):
        assert place in r.stderr, place
