"""BERT's configuration and weight names, shared by the torch model and the numpy query encoder.

Kept free of torch so that `codesift search` can encode a query without importing it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from codesift.embed.safetensors_file import SafetensorsFile
from codesift.errors import ModelLoadError, UnsupportedModelError

SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu")


@dataclass(frozen=True)
class BertConfig:
    """The fields of a BERT `config.json` that the encoder needs, named as there."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, config: dict, source: str = "config.json") -> "BertConfig":
        model_type = config.get("model_type", "")
        archs = config.get("architectures") or []
        if model_type != "bert" and not any(a.startswith("Bert") for a in archs):
            raise UnsupportedModelError(
                f"{source}: architecture {archs or model_type!r} is not supported; "
                "supported: BERT (model_type 'bert')")
        names = {f.name for f in fields(cls)}
        try:
            cfg = cls(**{k: v for k, v in config.items() if k in names})
        except TypeError as e:
            raise ModelLoadError(f"{source}: incomplete BERT config ({e})") from e
        if cfg.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise UnsupportedModelError(f"{source}: hidden_act {cfg.hidden_act!r} is not supported "
                                        f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
        if cfg.position_embedding_type != "absolute":
            raise UnsupportedModelError(f"{source}: position_embedding_type "
                                        f"{cfg.position_embedding_type!r} is not supported (only 'absolute')")
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ModelLoadError(f"{source}: hidden_size {cfg.hidden_size} is not a multiple of "
                                 f"num_attention_heads {cfg.num_attention_heads}")
        return cfg


# Hugging Face name -> our name; "{}" is the layer index.
WEIGHT_MAP = {
    "embeddings.word_embeddings.weight": "tok_embeddings.weight",
    "embeddings.position_embeddings.weight": "pos_embeddings.weight",
    "embeddings.token_type_embeddings.weight": "type_embeddings.weight",
    "embeddings.LayerNorm.weight": "embed_norm.weight",
    "embeddings.LayerNorm.bias": "embed_norm.bias",
    "encoder.layer.{}.attention.self.query.weight": "layers.{}.attention.wq.weight",
    "encoder.layer.{}.attention.self.query.bias": "layers.{}.attention.wq.bias",
    "encoder.layer.{}.attention.self.key.weight": "layers.{}.attention.wk.weight",
    "encoder.layer.{}.attention.self.key.bias": "layers.{}.attention.wk.bias",
    "encoder.layer.{}.attention.self.value.weight": "layers.{}.attention.wv.weight",
    "encoder.layer.{}.attention.self.value.bias": "layers.{}.attention.wv.bias",
    "encoder.layer.{}.attention.output.dense.weight": "layers.{}.attention.wo.weight",
    "encoder.layer.{}.attention.output.dense.bias": "layers.{}.attention.wo.bias",
    "encoder.layer.{}.attention.output.LayerNorm.weight": "layers.{}.attention_norm.weight",
    "encoder.layer.{}.attention.output.LayerNorm.bias": "layers.{}.attention_norm.bias",
    "encoder.layer.{}.intermediate.dense.weight": "layers.{}.ffn.w1.weight",
    "encoder.layer.{}.intermediate.dense.bias": "layers.{}.ffn.w1.bias",
    "encoder.layer.{}.output.dense.weight": "layers.{}.ffn.w2.weight",
    "encoder.layer.{}.output.dense.bias": "layers.{}.ffn.w2.bias",
    "encoder.layer.{}.output.LayerNorm.weight": "layers.{}.ffn_norm.weight",
    "encoder.layer.{}.output.LayerNorm.bias": "layers.{}.ffn_norm.bias",
}

# Prefixes under which checkpoints store the encoder: plain BertModel, BertFor* heads, wrappers.
PREFIXES = ("", "bert.", "model.", "encoder.", "0.auto_model.")


def expected_shapes(cfg: BertConfig) -> dict[str, tuple[int, ...]]:
    """Our tensor names and the shape each must have."""
    h, i = cfg.hidden_size, cfg.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "tok_embeddings.weight": (cfg.vocab_size, h),
        "pos_embeddings.weight": (cfg.max_position_embeddings, h),
        "type_embeddings.weight": (cfg.type_vocab_size, h),
        "embed_norm.weight": (h,), "embed_norm.bias": (h,),
    }
    per_layer = {
        "attention.wq.weight": (h, h), "attention.wq.bias": (h,),
        "attention.wk.weight": (h, h), "attention.wk.bias": (h,),
        "attention.wv.weight": (h, h), "attention.wv.bias": (h,),
        "attention.wo.weight": (h, h), "attention.wo.bias": (h,),
        "attention_norm.weight": (h,), "attention_norm.bias": (h,),
        "ffn.w1.weight": (i, h), "ffn.w1.bias": (i,),
        "ffn.w2.weight": (h, i), "ffn.w2.bias": (h,),
        "ffn_norm.weight": (h,), "ffn_norm.bias": (h,),
    }
    for layer in range(cfg.num_hidden_layers):
        for k, v in per_layer.items():
            shapes[f"layers.{layer}.{k}"] = v
    return shapes


def _expand(cfg: BertConfig) -> dict[str, str]:
    """Our name -> Hugging Face name (without prefix), with layer templates filled in."""
    out = {}
    for hf, ours in WEIGHT_MAP.items():
        if "{}" in hf:
            for layer in range(cfg.num_hidden_layers):
                out[ours.format(layer)] = hf.format(layer)
        else:
            out[ours] = hf
    return out


def map_weights(st: SafetensorsFile, cfg: BertConfig) -> dict[str, str]:
    """Our name -> the tensor's name in the file, after checking every tensor exists with the right shape.

    Unused tensors (position_ids, pooler, MLM heads) are ignored. A missing tensor or a
    wrong shape is a ModelLoadError naming the tensor and the file.
    """
    names = _expand(cfg)
    prefix = next((p for p in PREFIXES if p + "embeddings.word_embeddings.weight" in st), None)
    if prefix is None:
        sample = ", ".join(sorted(st.keys())[:5])
        raise ModelLoadError(f"{st.path}: no BERT embeddings found (looked for "
                             f"'embeddings.word_embeddings.weight' under prefixes {PREFIXES}); "
                             f"file has e.g. {sample}")
    shapes = expected_shapes(cfg)
    mapping = {}
    for ours, hf in names.items():
        cand = prefix + hf
        if cand not in st and "LayerNorm" in cand:  # very old checkpoints: gamma/beta
            cand = cand.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        if cand not in st:
            raise ModelLoadError(f"{st.path}: missing tensor {prefix + hf!r} (needed for {ours})")
        got = st.tensors[cand].shape
        if got != shapes[ours]:
            raise ModelLoadError(f"{st.path}: tensor {cand!r} has shape {list(got)}, "
                                 f"config.json implies {list(shapes[ours])}")
        mapping[ours] = cand
    return mapping
