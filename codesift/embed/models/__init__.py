"""The architecture registry: which encoder families we run, and the one dispatch on `config.json`.

Each architecture has a torch-free module (config dataclass with fields named as in
`config.json`, declarative weight map, numpy forward pass for queries) and a torch module
(padded and packed forward passes). Both are imported only when asked for, so that the
search path never imports torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from codesift.embed.models.common import ModelConfig, NumpyWeights, map_weights
from codesift.embed.weights_file import WeightsFile, open_weights
from codesift.errors import UnsupportedModelError


@dataclass(frozen=True)
class Architecture:
    name: str  # short name, e.g. in backend names: "bert"
    label: str  # as people write it: "BERT"
    model_types: tuple[str, ...]  # config.json `model_type` values
    class_prefixes: tuple[str, ...]  # config.json `architectures` entries, when model_type is absent
    module: str  # torch-free: <config class>, weight_map(cfg), PREFIXES, ANCHOR, <numpy class>
    config_class: str
    numpy_class: str
    torch_class: str  # "module:Class" of the torch module

    def _attr(self, module: str, name: str):
        return getattr(importlib.import_module(module), name)

    def read_config(self, config: dict, source: str = "config.json") -> ModelConfig:
        return self._attr(self.module, self.config_class).from_dict(config, source=source)

    def map_weights(self, st: WeightsFile, cfg: ModelConfig) -> dict[str, str]:
        """Our tensor name -> its name in the file, every tensor's presence and shape checked."""
        mod = importlib.import_module(self.module)
        return map_weights(st, cfg, mod.weight_map(cfg), mod.PREFIXES, mod.ANCHOR)

    def numpy_model(self, weights: str | Path, cfg: ModelConfig):
        """The numpy forward pass over a weights file (safetensors or GGUF): `.forward(ids, mask)` -> token states."""
        st = open_weights(weights)
        return self._attr(self.module, self.numpy_class)(cfg, NumpyWeights(st, self.map_weights(st, cfg)))

    def torch_module(self):
        """The torch nn.Module class (imports torch)."""
        module, name = self.torch_class.split(":")
        return self._attr(module, name)


_M = "codesift.embed.models."
ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("bert", "BERT", ("bert",), ("Bert",), _M + "bert", "BertConfig", "NumpyBert",
                 _M + "bert_torch:Bert"),
    Architecture("xlm-roberta", "XLM-RoBERTa", ("xlm-roberta", "roberta"), ("XLMRoberta", "Roberta"),
                 _M + "xlm_roberta", "XLMRobertaConfig", "NumpyBert", _M + "bert_torch:Bert"),
    Architecture("mpnet", "MPNet", ("mpnet",), ("MPNet",), _M + "mpnet", "MPNetConfig", "NumpyMPNet",
                 _M + "mpnet_torch:MPNet"),
    Architecture("modernbert", "ModernBERT", ("modernbert",), ("ModernBert",), _M + "modernbert",
                 "ModernBertConfig", "NumpyModernBert", _M + "modernbert_torch:ModernBert"),
    Architecture("nomic-bert", "NomicBERT", ("nomic_bert",), ("NomicBert",), _M + "nomicbert", "NomicBertConfig",
                 "NumpyNomicBert", _M + "nomicbert_torch:NomicBert"),
)


def supported() -> str:
    """The supported architectures as a user reads them: "BERT (model_type 'bert'), ..."."""
    return ", ".join(f"{a.label} (model_type '{a.model_types[0]}')" for a in ARCHITECTURES)


def architecture_for(config: dict, source: str = "config.json") -> Architecture:
    """The architecture `config.json` describes: by `model_type` when it has one (it decides: a
    RobertaPreLayerNorm class must not pass for RoBERTa), else by its `architectures` class names."""
    model_type = str(config.get("model_type") or "")
    classes = [str(c) for c in config.get("architectures") or []]
    for arch in ARCHITECTURES:
        if model_type in arch.model_types or (not model_type and any(
                c.startswith(arch.class_prefixes) for c in classes)):
            return arch
    what = ", ".join(filter(None, [f"model_type {model_type!r}" if model_type else "",
                                   f"architectures {classes}" if classes else ""])) or "no model_type"
    raise UnsupportedModelError(f"{source}: {what} is not supported; supported: {supported()}")
