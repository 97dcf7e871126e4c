"""Reading BERT-family weights from an ONNX file's initializers (a `model.onnx` exported from a
Hugging Face model, fp32 or dynamically quantised to int8).

We do not run the graph: we take its weights and run them through our own forward passes. The
file presents the surface the architecture registry expects of a weights file (see
`weights_file`): tensors under their Hugging Face names with Hugging Face shapes (`tensors`, `in`,
`keys()`), `array(name)` and `rows(name, ids)`.

What an exporter does to the names, and how we get them back:
- Tables, LayerNorm parameters and biases keep their module names
  (`encoder.layer.0.attention.self.query.bias`).
- A linear layer's weight becomes the second input of a MatMul, stored transposed ([in, out]),
  often under an anonymous name (`onnx::MatMul_1525`). It is named after the bias that the graph
  adds to the product (`...query.bias` -> `...query.weight`) and transposed back to [out, in].
- Dynamic int8 quantisation (onnxruntime's `quantize_dynamic`) stores a weight as
  `<name>_quantized` with `<name>_scale` and `<name>_zero_point` (per tensor, or per output
  channel), read by MatMulInteger or DequantizeLinear nodes. We dequantise it to float32,
  (q - zero_point) * scale, and run it in float32 like any other weight; or, where the graph
  also quantises the product's input on the fly (DynamicQuantizeLinear), `stored_int8` hands
  over the stored integers for a graph that runs the file's own 8-bit arithmetic
  (`onnx_graph.FILE_FORMATS`).

Without a config.json beside the file, `config()` reads the hyperparameters from the graph: sizes
from the tables' shapes, the number of attention heads from the reshape that splits them, the
LayerNorm epsilon and the activation from the nodes that compute them. Free of torch; reading the
file needs the `onnx` package (the `codesift[onnx]` extra).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from codesift.errors import ModelLoadError, UnsupportedModelError

ONNX_EXTRA_HINT = "pip install 'codesift[onnx]' (the onnx package reads .onnx files)"

# Nodes a linear layer's product passes through before its bias is added: the int8 product is
# cast to float and multiplied by the input's and the weight's scales.
_TO_BIAS = ("Cast", "Mul")
_QUANTIZED, _SCALE, _ZERO_POINT = "_quantized", "_scale", "_zero_point"
_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")

# Prefixes under which a BERT export names its encoder (BertModel: none; BertFor*: "bert.").
BERT_PREFIXES = ("", "bert.")


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx" and Path(path).is_file()


@dataclass(frozen=True)
class OnnxTensor:
    name: str  # Hugging Face name
    stored: str  # the initializer's name in the file (`..._quantized` when quantised)
    shape: tuple[int, ...]  # Hugging Face order
    transposed: bool  # stored [in, out] (a MatMul's second input): transposed when read
    dtype: str  # "float32", "int8", "uint8", ...
    scale: str | None = None  # initializer names of the dequantisation parameters
    zero_point: str | None = None
    axis: int | None = None  # the stored tensor's axis that a per-channel scale runs along
    # The graph multiplies it as 8-bit integers by its input quantised on the fly (MatMulInteger fed
    # by DynamicQuantizeLinear: uint8, one scale and zero point per tensor).
    dynamic: bool = False


@dataclass(frozen=True)
class StoredInt8:
    """A linear layer's weight as the file stores it for MatMulInteger: B = q [in, out] (int8 or
    uint8), whose column j is (q[:, j] - zero_point[j]) * scale[j]."""
    q: np.ndarray
    scale: np.ndarray  # float32 [out]
    zero_point: np.ndarray  # [out], q's dtype


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ModelLoadError(f"reading an ONNX model needs the onnx package: {ONNX_EXTRA_HINT}") from None
    return onnx


class OnnxFile:
    """The weights of an ONNX model under Hugging Face names; tensors are converted on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        onnx = _onnx()
        try:
            model = onnx.load(str(self.path))
        except Exception as e:  # protobuf's DecodeError, OSError, onnx's own checks
            raise ModelLoadError(f"{self.path}: not a readable ONNX file ({type(e).__name__}: {e}); "
                                 f"re-export or re-download it") from e
        self._helper = onnx.numpy_helper
        graph = model.graph
        self._stored = {t.name: t for t in graph.initializer}
        self._nodes = list(graph.node)
        for n in self._nodes:  # some exporters keep weights in Constant nodes instead
            if n.op_type == "Constant" and len(n.output) == 1:
                for a in n.attribute:
                    if a.name == "value" and a.type == a.TENSOR:
                        self._stored.setdefault(n.output[0], a.t)
        self._consumers: dict[str, list] = {}
        self._producer: dict[str, object] = {}
        for n in self._nodes:
            for i in n.input:
                self._consumers.setdefault(i, []).append(n)
            for o in n.output:
                self._producer[o] = n
        self._arrays: dict[str, np.ndarray] = {}
        self.tensors: dict[str, OnnxTensor] = {}
        self._name_tensors()

    # --- naming -----------------------------------------------------------------------
    def _name_tensors(self) -> None:
        for stored, t in self._stored.items():
            if len(t.dims) == 0 or stored.endswith((_SCALE, _ZERO_POINT)):
                continue
            base = stored[:-len(_QUANTIZED)] if stored.endswith(_QUANTIZED) else stored
            quantized = base != stored and base + _SCALE in self._stored
            if not quantized:
                base = stored
            use, reader = self._weight_use(stored)
            if use is None and not self._is_named(base):
                continue  # a shape or index constant, not a weight
            name = base
            if not self._is_named(base):
                name = self._name_from_bias(use)
                if name is None:
                    continue
            shape = tuple(int(d) for d in t.dims)
            transposed = use is not None and len(shape) == 2
            if use is not None and use.op_type == "Gemm" and _attr(use, "transB", 0):
                transposed = False  # Gemm(transB=1) keeps torch's [out, in]
            axis, dynamic = None, False
            if quantized:
                axis = len(shape) - 1  # MatMulInteger: the scale runs along B's columns
                if reader is not None and reader.op_type == "DequantizeLinear":
                    axis = _attr(reader, "axis", 1) % max(len(shape), 1)
                if reader is not None and reader.op_type == "MatMulInteger" and len(shape) == 2:
                    source = self._producer.get(reader.input[0])
                    dynamic = source is not None and source.op_type == "DynamicQuantizeLinear"
            info = OnnxTensor(name, stored, shape[::-1] if transposed else shape, transposed,
                              _dtype_name(t.data_type),
                              base + _SCALE if quantized else None,
                              base + _ZERO_POINT if quantized and base + _ZERO_POINT in self._stored else None,
                              axis, dynamic)
            if name in self.tensors:
                raise ModelLoadError(f"{self.path}: two weights map to {name!r} ({self.tensors[name].stored!r} and "
                                     f"{stored!r}); this export's layout is not supported")
            self.tensors[name] = info

    @staticmethod
    def _is_named(name: str) -> bool:
        """A module path (`encoder.layer.0.output.dense.bias`), not an exporter's `onnx::MatMul_12`."""
        return "::" not in name and "/" not in name and "." in name

    def _weight_use(self, stored: str):
        """(the MatMul/Gemm node that multiplies by this tensor as its second input, the node that
        reads the stored tensor), or (None, None) for a tensor not used as a linear layer's weight."""
        for node in self._consumers.get(stored, ()):
            if node.op_type == "DequantizeLinear" and node.input[0] == stored:
                for nxt in self._consumers.get(node.output[0], ()):
                    if nxt.op_type in ("MatMul", "Gemm") and nxt.input[1] == node.output[0]:
                        return nxt, node
                return None, node
            if node.op_type in ("MatMul", "MatMulInteger", "Gemm") and len(node.input) > 1 and node.input[1] == stored:
                return node, node
        return None, None

    def _name_from_bias(self, node) -> str | None:
        """`X.weight` for the product whose bias `X.bias` the graph adds a few element-wise nodes later."""
        out = node.output[0]
        for _ in range(4):
            users = self._consumers.get(out, [])
            if len(users) != 1:
                return None
            user = users[0]
            if user.op_type == "Add":
                other = user.input[1] if user.input[0] == out else user.input[0]
                if other.endswith(".bias") and other in self._stored:
                    return other[:-len(".bias")] + ".weight"
                return None
            if user.op_type not in _TO_BIAS:
                return None
            out = user.output[0]
        return None

    # --- the weights-file surface -----------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def keys(self) -> list[str]:
        return list(self.tensors)

    def _raw(self, stored: str) -> np.ndarray:
        a = self._arrays.get(stored)
        if a is None:
            a = self._arrays[stored] = self._helper.to_array(self._stored[stored])
        return a

    def _dequantize(self, info: OnnxTensor, q: np.ndarray, rows: bool = False) -> np.ndarray:
        """float32 of stored values `q` (all of them, or rows of a table when `rows`)."""
        if info.scale is None:
            return q.astype(np.float32, copy=False)
        scale = self._raw(info.scale).astype(np.float32)
        zp = self._raw(info.zero_point).astype(np.float32) if info.zero_point else np.float32(0)
        if scale.ndim == 1 and scale.size > 1:  # per channel, along `axis` of the stored tensor
            if rows and info.axis == 0:
                raise ModelLoadError(f"{self.path}: {info.name}: per-row scales on a table are not supported")
            shape = [1] * len(info.shape)
            shape[info.axis] = -1
            scale = scale.reshape(shape)
            zp = zp.reshape(shape) if np.ndim(zp) else zp
        return ((q.astype(np.float32) - zp) * scale).astype(np.float32, copy=False)

    def array(self, name: str, dtype=np.float32) -> np.ndarray:
        """The tensor in Hugging Face layout, dequantised to float32 (then converted to `dtype`)."""
        info = self.tensors[name]
        raw = self._raw(info.stored)
        a = self._dequantize(info, raw)
        if info.transposed:
            a = np.ascontiguousarray(a.T)
        elif a is raw:
            a = a.copy()  # the caller owns what it gets (torch keeps it as a parameter)
        return a if a.dtype == dtype else a.astype(dtype)

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows `ids` of a 2-d table as float32, shape ids.shape + (dim,): only those rows are dequantised."""
        info = self.tensors[name]
        if info.transposed:
            return self.array(name)[ids.reshape(-1)].reshape(*ids.shape, -1)
        q = self._raw(info.stored)[ids.reshape(-1)]
        return self._dequantize(info, q, rows=True).reshape(*ids.shape, -1)

    def stored_int8(self, name: str) -> StoredInt8 | None:
        """The stored integers of a weight the graph multiplies in 8 bits by an input it quantises on
        the fly (`OnnxTensor.dynamic`), for a graph that computes what this file's graph computes;
        None for any other tensor."""
        info = self.tensors.get(name)
        if info is None or not info.dynamic:
            return None
        q = self._raw(info.stored)
        out = q.shape[1]
        scale = np.broadcast_to(self._raw(info.scale).astype(np.float32).reshape(-1), (out,))
        zero = (np.broadcast_to(self._raw(info.zero_point).reshape(-1), (out,)) if info.zero_point
                else np.zeros(out, q.dtype))
        if zero.dtype != q.dtype:
            raise ModelLoadError(f"{self.path}: {info.name}: zero point {zero.dtype} for {q.dtype} weights")
        return StoredInt8(q, np.ascontiguousarray(scale), np.ascontiguousarray(zero))

    # --- hyperparameters --------------------------------------------------------------
    def prefix(self) -> str:
        for p in BERT_PREFIXES:
            if p + "embeddings.word_embeddings.weight" in self.tensors:
                return p
        sample = ", ".join(sorted(self.tensors)[:5])
        raise UnsupportedModelError(f"{self.path}: no BERT embedding table (embeddings.word_embeddings) found; "
                                    f"without a config.json beside it only BERT exports are read (file has e.g. "
                                    f"{sample}); put the model's config.json beside model.onnx")

    def config(self) -> dict:
        """A `config.json`-like dict for a BERT export, read from the file itself."""
        p = self.prefix()

        def shape(name: str) -> tuple[int, ...]:
            if p + name not in self.tensors:
                raise ModelLoadError(f"{self.path}: no tensor {p + name!r}; put the model's config.json beside it")
            return self.tensors[p + name].shape

        vocab, hidden = shape("embeddings.word_embeddings.weight")
        layers = {int(m.group(1)) for n in self.tensors if (m := _LAYER.search(n))}
        if not layers:
            raise ModelLoadError(f"{self.path}: no encoder layers (encoder.layer.N.*) found")
        config = {
            "model_type": "bert",
            "architectures": ["BertForSequenceClassification" if "classifier.weight" in self.tensors
                              else "BertModel"],
            "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": max(layers) + 1,
            "num_attention_heads": self._heads(hidden),
            "intermediate_size": shape("encoder.layer.0.intermediate.dense.weight")[0],
            "max_position_embeddings": shape("embeddings.position_embeddings.weight")[0],
            "type_vocab_size": shape("embeddings.token_type_embeddings.weight")[0],
            "layer_norm_eps": self._layer_norm_eps(), "hidden_act": self._activation(),
            "pad_token_id": 0,
        }
        if "classifier.weight" in self.tensors:
            config["num_labels"] = self.tensors["classifier.weight"].shape[0]
        return config

    def _constant(self, name: str) -> np.ndarray | None:
        """The value of `name` if the graph computes it from constants alone (through Unsqueeze)."""
        if name in self._stored:
            return self._raw(name)
        node = self._producer.get(name)
        if node is not None and node.op_type == "Unsqueeze":
            v = self._constant(node.input[0])
            return None if v is None else v.reshape(-1)
        return None

    def _heads(self, hidden: int) -> int:
        """The number of attention heads: the reshapes that split `hidden` into [heads, head_dim]."""
        seen: Counter = Counter()
        for node in self._nodes:
            if node.op_type != "Reshape":
                continue
            target = self._constant(node.input[1])
            if target is not None:
                dims = [int(x) for x in target.reshape(-1)]
            else:
                concat = self._producer.get(node.input[1])
                if concat is None or concat.op_type != "Concat":
                    continue
                dims = []
                for i in concat.input:
                    v = self._constant(i)
                    dims.append(int(v.reshape(-1)[0]) if v is not None and v.size == 1 else -1)
            if len(dims) == 4 and dims[2] > 1 and dims[3] > 1 and dims[2] * dims[3] == hidden:
                seen[dims[2]] += 1
        if not seen:
            raise ModelLoadError(f"{self.path}: cannot tell the number of attention heads from the graph; "
                                 f"put the model's config.json beside model.onnx")
        return seen.most_common(1)[0][0]

    def _layer_norm_eps(self) -> float:
        """LayerNorm's epsilon: a LayerNormalization node's, else the constant added to the variance
        (ReduceMean) before its Sqrt; BERT's 1e-12 if neither is there."""
        for node in self._nodes:
            if node.op_type == "LayerNormalization":
                return float(_attr(node, "epsilon", 1e-5))
            if node.op_type == "Sqrt":
                add = self._producer.get(node.input[0])
                if add is None or add.op_type != "Add":
                    continue
                for a, b in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
                    src = self._producer.get(a)
                    v = self._constant(b)
                    if src is not None and src.op_type == "ReduceMean" and v is not None and v.size == 1:
                        return float(f"{float(v.reshape(-1)[0]):.6g}")  # stored in float32: 1e-12, not 9.99e-13
        return 1e-12

    def _activation(self) -> str:
        ops = {n.op_type for n in self._nodes}
        if "Erf" in ops or "Gelu" in ops:
            return "gelu"
        if "Relu" in ops:
            return "relu"
        raise ModelLoadError(f"{self.path}: cannot tell the activation from the graph (no Erf, Gelu or Relu "
                             f"node); put the model's config.json beside model.onnx")


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return a.i if a.type == a.INT else a.f
    return default


def _dtype_name(data_type: int) -> str:
    from onnx import helper

    return str(helper.tensor_dtype_to_np_dtype(data_type))


@lru_cache(maxsize=2)
def _open(path: str, size: int, mtime_ns: int) -> OnnxFile:
    return OnnxFile(path)


def open_onnx(path: str | Path) -> OnnxFile:
    """The file parsed once per process while it is unchanged: resolving a model folder (its config)
    and loading its weights read the same file."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read ({e})") from e
    return _open(str(p), st.st_size, st.st_mtime_ns)
