"""The architecture registry: dispatch on config.json, the token limit, and the torch-free half."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codesift.embed.model_files import read_model_folder
from codesift.embed.models import ARCHITECTURES, architecture_for
from codesift.errors import UnsupportedModelError


def test_dispatch_by_model_type_then_class_names():
    assert architecture_for({"model_type": "bert"}).name == "bert"
    assert architecture_for({"architectures": ["BertForMaskedLM"]}).name == "bert"
    assert architecture_for({"model_type": "roberta", "architectures": ["RobertaModel"]}).name == "xlm-roberta"
    assert architecture_for({"architectures": ["XLMRobertaModel"]}).name == "xlm-roberta"
    assert architecture_for({"model_type": "mpnet"}).name == "mpnet"
    assert architecture_for({"architectures": ["ModernBertForMaskedLM"]}).name == "modernbert"


def test_unsupported_names_what_is_supported():
    with pytest.raises(UnsupportedModelError) as e:
        architecture_for({"model_type": "gpt2", "architectures": ["GPT2Model"]}, source="x/config.json")
    msg = str(e.value)
    assert "x/config.json" in msg and "'gpt2'" in msg and "GPT2Model" in msg
    for arch in ARCHITECTURES:
        assert arch.label in msg


def test_model_type_decides_over_class_names():
    """A class name that starts like a supported one does not make another model_type pass."""
    with pytest.raises(UnsupportedModelError):
        architecture_for({"model_type": "bert-generation", "architectures": ["BertGenerationEncoder"]})
    with pytest.raises(UnsupportedModelError):
        architecture_for({"model_type": "roberta-prelayernorm", "architectures": ["RobertaPreLayerNormModel"]})


def test_max_tokens_is_clamped_once_to_the_position_table(model_files, tmp_path):
    """sentence_bert_config.json may ask for more tokens than the weights have positions for."""
    from tests.embed.test_model_files import copy_model

    folder = copy_model(model_files.root, tmp_path / "m")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 4096}))
    files = read_model_folder(folder)
    assert files.max_seq_length == 4096
    assert files.max_tokens == model_files.config["max_position_embeddings"] == 512
    assert model_files.max_tokens == 256  # the default model's sentence_bert_config.json


def test_torch_free_half_imports_without_torch():
    """Configs, weight maps, numpy forward passes, batches and ordered_map: no torch (issue 13)."""
    mods = ["codesift.embed.models", "codesift.embed.batches", "codesift.embed.ordered",
            "codesift.embed.backend", "codesift.embed.query_encoder"]
    mods += [a.module for a in ARCHITECTURES]
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {mods!r}]; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
