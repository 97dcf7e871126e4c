"""Reading a GGUF model file (llama.cpp's format, what ollama stores): metadata, vocabulary, tensors.

A GGUF file holds everything in one file: `general.architecture` and `<arch>.*` hyperparameters,
the tokenizer (`tokenizer.ggml.*`: tokens, token types, special ids) and the tensors, under
llama.cpp's names ("blk.0.attn_q.weight"), in float or block-quantised types. We present it
as the rest of codesift sees a safetensors model folder:

- `config()`: a `config.json`-like dict, so that the architecture registry dispatches on it;
- `tensors`: the tensors under their Hugging Face names ("encoder.layer.0.attention.self.query.weight")
  with Hugging Face shapes (GGUF lists dimensions innermost first: reversed here), so that each
  architecture's weight map applies unchanged;
- `array(name)` / `rows(name, ids)`: one tensor (or a few rows of a table) dequantised to float32,
  read from the memory-mapped file on demand, so a load holds one tensor's temporaries at a time;
- `tokenizer()`: a Hugging Face `tokenizers.Tokenizer` built from the file's own vocabulary.

The header (metadata and tensor table) is parsed here, in one pass over the file: the `gguf`
package's GGUFReader keeps every vocabulary entry as numpy arrays (tens of MB for a 30k-token
vocabulary), more than the load's memory budget allows. Tensor types and dequantisation come from
the `gguf` package (llama.cpp's own Python code). Free of torch.
"""
from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesift.errors import ModelLoadError, UnsupportedModelError

MAGIC = b"GGUF"

# llama.cpp tensor names -> Hugging Face names, per `general.architecture`. "{}" is the block index.
# (The same correspondence as gguf's TensorNameMap, which the tests check these against.)
TENSOR_NAMES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "bert": ({
        "token_embd": "embeddings.word_embeddings",
        "position_embd": "embeddings.position_embeddings",
        "token_types": "embeddings.token_type_embeddings",
        "token_embd_norm": "embeddings.LayerNorm",
    }, {
        "attn_q": "encoder.layer.{}.attention.self.query",
        "attn_k": "encoder.layer.{}.attention.self.key",
        "attn_v": "encoder.layer.{}.attention.self.value",
        "attn_output": "encoder.layer.{}.attention.output.dense",
        "attn_output_norm": "encoder.layer.{}.attention.output.LayerNorm",
        "ffn_up": "encoder.layer.{}.intermediate.dense",
        "ffn_down": "encoder.layer.{}.output.dense",
        "layer_output_norm": "encoder.layer.{}.output.LayerNorm",
    }),
    "nomic-bert": ({
        "token_embd": "embeddings.word_embeddings",
        "token_types": "embeddings.token_type_embeddings",
        "token_embd_norm": "emb_ln",
    }, {
        "attn_qkv": "encoder.layers.{}.attn.Wqkv",
        "attn_output": "encoder.layers.{}.attn.out_proj",
        "attn_output_norm": "encoder.layers.{}.norm1",
        "ffn_up": "encoder.layers.{}.mlp.fc11",
        "ffn_gate": "encoder.layers.{}.mlp.fc12",
        "ffn_down": "encoder.layers.{}.mlp.fc2",
        "layer_output_norm": "encoder.layers.{}.norm2",
    }),
}

# config.json's model_type and class for each GGUF architecture we know the tensor names of.
MODEL_TYPES = {"bert": ("bert", "BertModel"), "nomic-bert": ("nomic_bert", "NomicBertModel")}

# Tensor types we dequantise: float types, llama.cpp's legacy block quants, and the K-quants its
# quantize tool writes for embedding models.
TENSOR_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K")

# `<arch>.pooling_type` (llama.cpp's enum) -> our pooling mode.
POOLING_TYPES = {1: "mean", 2: "cls", 3: "lasttoken"}

# gguf.TokenType values
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6

# GGUF metadata value types (gguf.GGUFValueType): struct formats of the scalar ones
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32

_BLOCK = re.compile(r"blk\.(\d+)\.(.+)\.(weight|bias)")
_GLOBAL = re.compile(r"(.+)\.(weight|bias)")


def is_gguf(path: str | Path) -> bool:
    """Whether `path` is a file that starts with GGUF's magic (ollama blobs have no suffix)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def hf_tensor_name(arch: str, name: str) -> str:
    """A llama.cpp tensor name as Hugging Face names it; names we have no entry for stay as they are."""
    glob, block = TENSOR_NAMES.get(arch, ({}, {}))
    m = _BLOCK.fullmatch(name)
    if m and m.group(2) in block:
        return f"{block[m.group(2)].format(m.group(1))}.{m.group(3)}"
    m = _GLOBAL.fullmatch(name)
    if m and m.group(1) in glob:
        return f"{glob[m.group(1)]}.{m.group(2)}"
    return name


@dataclass(frozen=True)
class GGUFTensor:
    name: str  # Hugging Face name
    gguf_name: str
    dtype: str  # ggml type name: "F16", "Q8_0", ...
    shape: tuple[int, ...]  # Hugging Face order (outermost first)
    start: int  # absolute byte offset of the data in the file
    n_bytes: int
    row_bytes: int  # bytes of one innermost row (a whole number of quantisation blocks)


class _Cursor:
    """Reads GGUF's little-endian header values from a buffer."""

    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("string runs past the end of the file")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", "replace")

    def value(self, vtype: int):
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, n = self.take("<I"), self.take("<Q")
            if etype in _SCALARS:
                size = struct.calcsize(_SCALARS[etype])
                if self.pos + n * size > len(self.buf):
                    raise ValueError("array runs past the end of the file")
                vals = list(struct.unpack_from(f"<{n}{_SCALARS[etype][1]}", self.buf, self.pos))
                self.pos += n * size
                return vals
            return [self.value(etype) for _ in range(n)]
        if vtype not in _SCALARS:
            raise ValueError(f"unknown metadata value type {vtype}")
        return self.take(_SCALARS[vtype])


class GGUFFile:
    """The parsed header of a GGUF file; tensor data is read from the memory map on demand."""

    def __init__(self, path: str | Path):
        try:
            from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ModelLoadError("reading GGUF models needs the `gguf` package: pip install gguf") from e
        self.path = Path(path)
        if not is_gguf(self.path):
            raise ModelLoadError(f"{self.path}: not a GGUF file (no GGUF magic at its start)")
        try:
            with open(self.path, "rb") as f:
                self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            cur = _Cursor(self._mmap)
            cur.pos = 4
            version, n_tensors, n_kv = cur.take("<I"), cur.take("<Q"), cur.take("<Q")
            if version not in (2, 3):
                raise ModelLoadError(f"{self.path}: GGUF version {version} is not supported (2 or 3); "
                                     f"re-convert it with a current llama.cpp")
            self.metadata: dict[str, object] = {}
            for _ in range(n_kv):
                key = cur.string()
                self.metadata[key] = cur.value(cur.take("<I"))
            infos = []
            for _ in range(n_tensors):
                name = cur.string()
                ne = [cur.take("<Q") for _ in range(cur.take("<I"))]
                infos.append((name, ne, cur.take("<I"), cur.take("<Q")))
            align = int(self.metadata.get("general.alignment", _DEFAULT_ALIGNMENT))
            data_start = -(-cur.pos // align) * align
        except (OSError, ValueError, struct.error) as e:
            raise ModelLoadError(f"{self.path}: damaged or truncated GGUF file ({e}); "
                                 f"re-download or re-convert it") from e
        self.architecture = str(self.metadata.get("general.architecture", ""))
        self.tensors: dict[str, GGUFTensor] = {}
        size = len(self._mmap)
        for gguf_name, ne, type_id, offset in infos:
            try:
                qtype = GGMLQuantizationType(type_id)
            except ValueError:
                raise UnsupportedModelError(f"{self.path}: tensor {gguf_name!r} has unknown type {type_id}; "
                                            f"supported types: {', '.join(TENSOR_TYPES)}") from None
            block, type_size = GGML_QUANT_SIZES[qtype]
            n = 1
            for d in ne:
                n *= d
            row_bytes = ne[0] // block * type_size if ne else type_size
            n_bytes = n // block * type_size
            start = data_start + offset
            if start + n_bytes > size:
                raise ModelLoadError(f"{self.path}: file is truncated: tensor {gguf_name!r} needs bytes up to "
                                     f"{start + n_bytes}, the file has {size}; re-download it")
            name = hf_tensor_name(self.architecture, gguf_name)
            self.tensors[name] = GGUFTensor(name, gguf_name, qtype.name, tuple(reversed(ne)), start, n_bytes,
                                            row_bytes)

    # --- what the weight maps use (same surface as SafetensorsFile) ---

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def keys(self) -> list[str]:
        return list(self.tensors)

    def _raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as [rows, row_bytes] uint8, a read-only view of the mapped file."""
        t = self.tensors[name]
        return np.frombuffer(self._mmap, np.uint8, t.n_bytes, t.start).reshape(-1, t.row_bytes)

    def _dequantize(self, name: str, data: np.ndarray) -> np.ndarray:
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        t = self.tensors[name]
        if t.dtype not in TENSOR_TYPES:
            raise UnsupportedModelError(f"{self.path}: tensor {t.gguf_name!r} is {t.dtype}; "
                                        f"supported types: {', '.join(TENSOR_TYPES)}")
        if t.dtype == "BF16":  # widen the raw bits to float32 ourselves
            return (np.ascontiguousarray(data).view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        return dequantize(data, GGMLQuantizationType[t.dtype])

    def array(self, name: str, dtype=np.float32) -> np.ndarray:
        """One tensor in Hugging Face shape, dequantised to a fresh float32 array. The file pages it
        was read from are then dropped from this process (they stay in the page cache), so a load
        holds the tensors it made, not the file besides."""
        t = self.tensors[name]
        out = self._dequantize(name, self._raw(name)).reshape(t.shape)
        if not out.flags.writeable or out.dtype != dtype:  # still a view of the file (F32), or to convert
            out = out.astype(dtype)
        self._release(t)
        return out

    def _release(self, t: GGUFTensor) -> None:
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is None:
            return
        page = mmap.PAGESIZE
        start = t.start // page * page
        try:
            self._mmap.madvise(advice, start, t.start + t.n_bytes - start)
        except (OSError, ValueError):  # advice only
            pass

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows `ids` of a 2-d table as float32, shape ids.shape + (dim,): only those rows are read
        and dequantised (each row is a whole number of quantisation blocks)."""
        picked = self._raw(name)[ids.reshape(-1)]
        return self._dequantize(name, picked).astype(np.float32, copy=False).reshape(*ids.shape, -1)

    @property
    def float32_bytes(self) -> int:
        """What the weights take once dequantised to float32."""
        return sum(4 * int(np.prod(t.shape)) for t in self.tensors.values())

    # --- config ---

    def _meta(self, key: str, default=None):
        return self.metadata.get(f"{self.architecture}.{key}", default)

    def config(self) -> dict:
        """A `config.json`-like dict for the architecture registry, from `<arch>.*` metadata and the
        tensors' shapes. Architectures we have no names for keep `model_type` = the GGUF name (so
        that listing shows them and loading says what is supported)."""
        arch = self.architecture
        if not arch:
            raise ModelLoadError(f"{self.path}: no general.architecture in its metadata; not a model file")
        model_type, cls = MODEL_TYPES.get(arch, (arch, arch))

        def need(key):
            v = self._meta(key)
            if v is None:
                raise ModelLoadError(f"{self.path}: metadata {arch}.{key} missing; re-convert the model")
            return v

        hidden = int(need("embedding_length"))
        cfg: dict = {"model_type": model_type, "architectures": [cls], "hidden_size": hidden,
                     "gguf_architecture": arch}
        if arch not in TENSOR_NAMES:
            return cfg
        tok = self.tensors.get("embeddings.word_embeddings.weight")
        types = self.tensors.get("embeddings.token_type_embeddings.weight")
        pos = self.tensors.get("embeddings.position_embeddings.weight")
        cfg.update({
            "vocab_size": tok.shape[0] if tok else len(self.metadata.get("tokenizer.ggml.tokens", [])),
            "num_hidden_layers": int(need("block_count")),
            "num_attention_heads": int(need("attention.head_count")),
            "intermediate_size": int(need("feed_forward_length")),
            "max_position_embeddings": pos.shape[0] if pos else int(self._meta("context_length", 512)),
            "type_vocab_size": types.shape[0] if types else int(
                self.metadata.get("tokenizer.ggml.token_type_count", 2)),
            "layer_norm_eps": float(self._meta("attention.layer_norm_epsilon", 1e-12)),
            "hidden_act": "gelu",
            "pad_token_id": int(self.metadata.get("tokenizer.ggml.padding_token_id", 0)),
        })
        if arch == "nomic-bert":  # SwiGLU and rotary positions (llama.cpp's NEOX layout, the whole head)
            theta = float(self._meta("rope.freq_base", 1000.0))
            cfg.update({"hidden_act": "silu", "rope_parameters": {"rope_theta": theta, "rope_type": "default"},
                        "max_position_embeddings": int(self._meta("context_length", 2048))})
        return cfg

    @property
    def pooling(self) -> str:
        return POOLING_TYPES.get(int(self._meta("pooling_type", 1) or 1), "mean")

    @property
    def context_length(self) -> int | None:
        v = self._meta("context_length")
        return None if v is None else int(v)

    # --- vocabulary ---

    def tokenizer(self):
        """A `tokenizers.Tokenizer` from the file's own vocabulary. WordPiece (`tokenizer.ggml.model`
        "bert"): llama.cpp stores word-initial pieces with a leading "▁" and continuations bare, its
        tokenizer lowercases and strips accents; control tokens are matched whole, [CLS] ... [SEP]
        wraps every text."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

        kind = str(self.metadata.get("tokenizer.ggml.model", ""))
        if kind != "bert":
            raise UnsupportedModelError(f"{self.path}: tokenizer model {kind!r} is not supported "
                                        f"(only WordPiece, tokenizer.ggml.model 'bert')")
        tokens = [str(t) for t in self.metadata.get("tokenizer.ggml.tokens", [])]
        if not tokens:
            raise ModelLoadError(f"{self.path}: no tokenizer.ggml.tokens; re-convert the model")
        types = list(self.metadata.get("tokenizer.ggml.token_type", [_NORMAL] * len(tokens)))
        vocab: dict[str, int] = {}
        for i, (tok, typ) in enumerate(zip(tokens, types)):
            if typ in (_CONTROL, _USER_DEFINED, _UNUSED) or (tok.startswith("[") and tok.endswith("]")):
                piece = tok
            elif tok.startswith("\u2581"):
                piece = tok[1:]
            else:
                piece = "##" + tok
            vocab.setdefault(piece, i)

        def special(key: str, fallback: str | None = None) -> int | None:
            v = self.metadata.get(f"tokenizer.ggml.{key}")
            if v is None and fallback:
                v = self.metadata.get(f"tokenizer.ggml.{fallback}")
            return None if v is None else int(v)

        unk = special("unknown_token_id")
        cls_id = special("cls_token_id", "bos_token_id")
        sep_id = special("seperator_token_id", "eos_token_id")
        if cls_id is None or sep_id is None:
            raise ModelLoadError(f"{self.path}: no [CLS]/[SEP] ids (tokenizer.ggml.bos_token_id, "
                                 f"seperator_token_id); re-convert the model")
        tk = Tokenizer(models.WordPiece(vocab, unk_token=tokens[unk] if unk is not None else "[UNK]",
                                        max_input_chars_per_word=100))
        tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                   strip_accents=None, lowercase=True)
        tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tk.decoder = decoders.WordPiece()
        tk.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                               for i, typ in enumerate(types) if typ == _CONTROL])
        cls_tok, sep_tok = tokens[cls_id], tokens[sep_id]
        tk.post_processor = processors.TemplateProcessing(
            single=f"{cls_tok} $A {sep_tok}", pair=f"{cls_tok} $A {sep_tok} $B:1 {sep_tok}:1",
            special_tokens=[(cls_tok, cls_id), (sep_tok, sep_id)])
        return tk
