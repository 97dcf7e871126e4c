"""Writing a GGUF of a BERT model folder as llama.cpp's `convert_hf_to_gguf.py` does (its BertModel):
the same metadata keys, phantom-space WordPiece vocabulary, tensor names (from the `gguf`
package's TensorNameMap) and per-tensor type rules; through the `gguf` package's GGUFWriter."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# ggml type -> llama.cpp's file type enum value (general.file_type)
FILE_TYPES = {"F32": 0, "F16": 1, "Q8_0": 7, "BF16": 32}


def bert_vocab(root: Path) -> tuple[list[str], list[int]]:
    """Tokens and token types as get_vocab_base + BertModel.set_vocab make them."""
    import gguf

    tj = json.loads((root / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tj["model"]["vocab"]
    special = {t["content"] for t in tj.get("added_tokens", []) if t.get("special")}
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(max(by_id) + 1):
        tok = by_id.get(i)
        if tok is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        types.append(gguf.TokenType.CONTROL if tok in special else gguf.TokenType.NORMAL)
        if tok.startswith("[") and tok.endswith("]"):
            tokens.append(tok)
        elif tok.startswith("##"):
            tokens.append(tok[2:])
        else:
            tokens.append("\u2581" + tok)
    return tokens, types


def encoder_writer(out: Path, arch: str, name: str, cfg: dict):
    """A GGUFWriter with an encoder's sizes from its config.json, as llama.cpp's converter writes them."""
    import gguf

    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(name)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    return w


def write_bert_gguf(root: Path, out: Path, ftype: str = "F16", pooling: int = 1) -> Path:
    """`root`: a BERT sentence-transformers folder; `ftype`: F32, F16, BF16 or Q8_0 (the gguf package
    cannot write K-quants)."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((root / "config.json").read_text())
    w = encoder_writer(out, "bert", root.name, cfg)
    w.add_file_type(FILE_TYPES[ftype])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(pooling))
    add_vocab(w, root)
    tensors = {name.removeprefix("bert."): data for name, data in load_file(str(root / "model.safetensors")).items()
               if name.removeprefix("bert.") not in ("embeddings.position_ids", "pooler.dense.weight",
                                                      "pooler.dense.bias") and not name.startswith("cls.")}
    add_tensors(w, tensors, gguf.MODEL_ARCH.BERT, cfg["num_hidden_layers"], ftype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out



def add_vocab(w, root: Path) -> None:
    """The WordPiece vocabulary and special ids of the model folder `root`, as the converter adds them."""
    import gguf

    tokens, types = bert_vocab(root)
    cfg = json.loads((root / "config.json").read_text())
    w.add_token_type_count(cfg.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(root, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)


def add_tensors(w, tensors: dict[str, np.ndarray], arch, n_layers: int, ftype: str) -> None:
    """Tensors under Hugging Face names, renamed as llama.cpp names them and typed as the converter
    types them (norms, biases and small tables in F32)."""
    import gguf
    from gguf.quants import quantize

    names = gguf.TensorNameMap(arch, n_layers)
    target = gguf.GGMLQuantizationType[ftype]
    for name, data in tensors.items():
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new is not None, name
        data = data.astype(np.float32)
        qtype = target
        if data.ndim <= 1 or new.endswith("_norm.weight") or not new.endswith(".weight") \
                or new.startswith(("position_embd", "token_types")):
            qtype = gguf.GGMLQuantizationType.F32
        try:
            q = quantize(data, qtype)
        except gguf.QuantError:  # rows not a whole number of blocks: convert falls back to F16
            qtype = gguf.GGMLQuantizationType.F16
            q = quantize(data, qtype)
        w.add_tensor(new, q, raw_dtype=qtype)


def write_nomic_bert_gguf(folder: Path, vocab_root: Path, out: Path, ftype: str = "F32") -> Path:
    """A NomicBERT model folder (transformers' config spelling, nomic's tensor names) as a `nomic-bert`
    GGUF, as the converter's NomicBertModel writes it, with the WordPiece vocabulary of `vocab_root`."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((folder / "config.json").read_text())
    w = encoder_writer(out, "nomic-bert", folder.name, cfg)
    w.add_rope_freq_base((cfg.get("rope_parameters") or {}).get("rope_theta", 1000.0))
    w.add_file_type(FILE_TYPES[ftype])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    add_vocab(w, vocab_root)
    add_tensors(w, load_file(str(folder / "model.safetensors")), gguf.MODEL_ARCH.NOMIC_BERT,
                cfg["num_hidden_layers"], ftype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
