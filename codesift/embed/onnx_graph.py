"""A BERT-family encoder as an ONNX graph, built here from our own weights with the `onnx`
helper API, for ONNX Runtime to run (`ort_backend.py`); MPNet too (BERT's layers, no segments,
and a relative position bias added to every layer's attention scores).

ONNX Runtime's fused CPU kernels where they are the fastest (com.microsoft
EmbedLayerNormalization, Attention, BiasGelu) in place of the dozens of elementwise nodes a
traced export has. The residual sums and layer norms are two Adds and the standard
LayerNormalization on 2-D [token, hidden] rows: ONNX Runtime's fused SkipLayerNormalization
kernel took several times as long on the same rows (its optimiser leaves these unfused: tested).
Token type 0 for every token is folded into the position table, so the graph takes ids and
the attention mask only (a cross-encoder's graph takes each token's segment too: `segments`).
Output: the token states [batch, tokens, hidden], pooled by the caller.

int8 (`INT8_LINEARS`): the attention output and feed-forward layers multiply 8-bit integers.
Each token's activations get a scale of their own (a token of outliers, such as [CLS] with
activations several times any other's, then costs the others no precision), with a zero point
fixed per layer; weights are quantised per output column, "s7" (signed, 7 bits), "s8" or "u8"
(unsigned, 8 bits, asymmetric). Without VNNI, ONNX Runtime's unsigned x signed kernel sums
pairs of products in 16 bits, which saturates with full-range signed weights and stays exact
with 7-bit ones; it runs about as fast again as the unsigned x unsigned kernel that 8-bit
unsigned weights need. So without VNNI the second feed-forward layer keeps 8 unsigned bits (its
input, after GELU, is the most heavy-tailed, and 7 bits there moved the vectors most), and the
query/key/value product stays inside the float32 Attention kernel. With VNNI (32-bit sums) every
weight is "s8", and the query and key products run in 8 bits too (`VNNI_FORMATS`).
The first feed-forward layer's input channels are evened out first (`smoothing`).

The file's own int8 (`FILE_FORMATS`, for an ONNX file quantised by onnxruntime's `quantize_dynamic`):
the query/key/value, attention output and feed-forward products multiply the integers the file
stores, by inputs quantised as its graph quantises them (DynamicQuantizeLinear: uint8, one scale
and zero point over the whole tensor, which for an input run alone is the input). Here that range
is taken over each input's own tokens, so inputs sharing a run get what each gets alone: the
vectors onnxruntime computes from the file itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from codesift.embed.models.common import NumpyWeights

if TYPE_CHECKING:
    from codesift.embed.onnx_file import StoredInt8

MS = "com.microsoft"
# Opsets the graph is written for: LayerNormalization is opset 17; the contrib ops are version 1.
OPSET = 17
# Our activation names (config.json's hidden_act) -> the fused bias + activation contrib op.
BIAS_ACTIVATION = {"gelu": "BiasGelu", "gelu_new": "FastGelu", "gelu_pytorch_tanh": "FastGelu",
                   "gelu_fast": "FastGelu"}
# The lowest value GELU (exact or tanh-approximated) takes is -0.16997: a layer fed by it
# quantises its inputs with this zero point (uint8), which leaves room for that and spends
# the rest of the 256 steps on the positive side.
GELU_ZERO_POINT = 16
GELU_MIN = -0.17
SIGNED_ZERO_POINT = 128  # inputs of either sign: symmetric around zero
# `smoothing`: how much of a channel's range moves from the activations to the weights (0: none,
# 1: all), and the normalised values' range assumed. Of 0, 0.3, 0.5, 0.7, 0.85 and 1, 0.7 moved the
# vectors least on 1,200-character windows of email/*.py, and about as little as 0.85 on stdlib functions.
SMOOTH_ALPHA = 0.7
NORM_RANGE = 4.0
# `build_bert(outside=...)`: weights of at least this many values stay out of the graph, which
# names this place for them (never read: ONNX Runtime is handed the arrays).
OUTSIDE_MIN_SIZE = 1024
OUTSIDE_LOCATION = "codesift-weights-in-memory"


# Weight formats per linear layer (`quantize_columns`). Without VNNI: the attention output and the
# feed-forward layers, in the formats that stay exact in ONNX Runtime's 16-bit pair sums (above).
AVX2_FORMATS = {"attention.wo": "s7", "ffn.w1": "s7", "ffn.w2": "u8"}
# With VNNI the unsigned x signed kernel sums in 32 bits: full 8-bit signed weights everywhere (one
# more bit than s7, and the fast kernel for the second feed-forward layer too), and the query and
# key products in 8 bits as well. The value product stays in float32: in 8 bits it alone moved
# the vectors more than all the other 8-bit layers together (its error reaches the output
# unscaled; the query's and key's pass through the softmax).
VNNI_FORMATS = {"attention.qk": "s8", "attention.wo": "s8", "ffn.w1": "s8", "ffn.w2": "s8"}
# Every product with a weight, in the int8 file's own arithmetic (`build_bert(stored_int8=...)`).
FILE_FORMATS = {"attention.qkv": "file", "attention.wo": "file", "ffn.w1": "file", "ffn.w2": "file"}


# Layers an architecture keeps in float32 in our int8 graph: all-mpnet-base-v2's second feed-forward
# layer in 8 bits moved its longest parity text far more than all its other layers in 8 bits together
# (benchmarks/RESULTS.md, "MPNet on ONNX Runtime"; benchmarks/int8_layers.py measures a model's).
FLOAT_LAYERS = {"mpnet": ("ffn.w2",)}
# Architectures whose CPU default is int8 (`default_cpu_dtype`): the others run fp32 unless asked.
INT8_BY_DEFAULT = ("bert", "xlm-roberta")


def INT8_LINEARS(cfg, vnni: bool = False, file: bool = False, arch_name: str = "bert") -> dict[str, str]:
    """The linear layers the int8 graph runs in 8 bits, and each one's weight format ("s7", "s8"
    or "u8"); `vnni`: for a CPU with VNNI instructions (`cpu_has_vnni`); `file`: the int8 file's
    own arithmetic instead (`FILE_FORMATS`); `arch_name`: less the layers it keeps in float32."""
    formats = FILE_FORMATS if file else VNNI_FORMATS if vnni else AVX2_FORMATS
    if not file:
        formats = {name: kind for name, kind in formats.items() if name not in FLOAT_LAYERS.get(arch_name, ())}
    return {f"layers.{i}.{name}": kind for i in range(cfg.num_hidden_layers) for name, kind in formats.items()}


def default_cpu_dtype(arch_name: str) -> str:
    """What ONNX Runtime runs when no dtype is given: int8 where it was measured within bounds of fp32."""
    return "int8" if arch_name in INT8_BY_DEFAULT else "fp32"


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies 8-bit integers with VNNI (AVX512-VNNI or AVX-VNNI), as the
    kernel's flags in /proc/cpuinfo say (elsewhere: False, the formats safe everywhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"avx512_vnni", "avx_vnni"} & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def supports(arch_name: str, cfg) -> bool:
    """Whether `build_bert` can express this model: post-LayerNorm BERT (and RoBERTa-style
    position offsets; MPNet's relative position bias) with an activation that has a fused kernel."""
    return arch_name in ("bert", "xlm-roberta", "mpnet") and getattr(cfg, "hidden_act", None) in BIAS_ACTIVATION


def quantize_columns(w: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w [in, out] -> (weights, float32 scale [out], zero point [out]), per output column:
    "u8": uint8, asymmetric over the column's range (zero included);
    "s7": int8 in [-64, 63], symmetric, zero point 0; "s8": the same in [-128, 127]."""
    if kind in ("s7", "s8"):
        top = 63 if kind == "s7" else 127
        scale = np.maximum(np.abs(w).max(0) / top, np.float32(1e-12)).astype(np.float32)
        q = np.clip(np.round(w / scale), -top - 1, top).astype(np.int8)
        return q, scale, np.zeros(w.shape[1], np.int8)
    if kind != "u8":
        raise ValueError(f"unknown int8 weight format {kind!r}")
    lo = np.minimum(w.min(0), 0).astype(np.float32)
    hi = np.maximum(w.max(0), 0).astype(np.float32)
    scale = np.maximum((hi - lo) / 255, np.float32(1e-12)).astype(np.float32)
    zero = np.clip(np.round(-lo / scale), 0, 255)
    q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
    return q, scale, zero.astype(np.uint8)


def smoothing(norm_scale: np.ndarray, norm_shift: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per input channel of an 8-bit layer fed by a layer norm, the divisor that evens out the
    channels' ranges between activations and weights (SmoothQuant): a few channels of a BERT
    norm's output run several times larger than the rest, and with one scale per token they
    would set every token's step. The activations' range is estimated from the norm's own scale
    and shift (a normalised value seldom passes NORM_RANGE), so no calibration data is needed."""
    activations = NORM_RANGE * np.abs(norm_scale) + np.abs(norm_shift)
    s = activations ** SMOOTH_ALPHA / np.maximum(np.abs(weight).max(1), 1e-12) ** (1 - SMOOTH_ALPHA)
    return (s / np.median(s)).astype(np.float32)


def build_bert(cfg, w: NumpyWeights, int8: Mapping[str, str] | None = None,
               outside: dict[str, np.ndarray] | None = None, segments: bool = False,
               stored_int8: Callable[[str], StoredInt8 | None] | None = None):
    """The encoder as an onnx.ModelProto: inputs input_ids and attention_mask (int32 [b, t], mask 1
    on real tokens, right padding), output last_hidden_state (float32 [b, t, hidden]).
    segments: a third input, token_type_ids (int32 [b, t]: each token's segment, as a cross-encoder's
    query 0 and passage 1); without it every token is in segment 0.

    int8: the linear layers that multiply 8-bit integers, by name ("layers.0.ffn.w1"; attention.qk,
    attention.wo, ffn.w1 and ffn.w2 can), each with its weight format (`quantize_columns`), or
    "file" (attention.qkv, attention.wo, ffn.w1, ffn.w2: `FILE_FORMATS`), whose integers
    `stored_int8` gives for each of our weight names ("layers.0.attention.wq.weight").
    outside: where given, the weights stay out of the graph: each is added to this dict by name,
    and the graph only names it (`ort_backend.cpu_session` hands the arrays to ONNX Runtime): copying
    them into a protocol buffer for ONNX Runtime to parse them out again was most of a model's
    load. Graphs built with the same dict share the weights they have in common (a name has one value).
    """
    from onnx import TensorProto, helper, numpy_helper

    int8 = dict(int8 or {})
    inits: list = []
    nodes: list = []
    consts: dict[str, str] = {}

    def const(name: str, a: np.ndarray) -> str:
        a = np.ascontiguousarray(a)
        if outside is None or a.size < OUTSIDE_MIN_SIZE:
            inits.append(numpy_helper.from_array(a, name))
            return name
        known = outside.setdefault(name, a)
        same_memory = known.ctypes.data == a.ctypes.data and known.shape == a.shape  # one weight, viewed twice
        if not same_memory and not (known.dtype == a.dtype and np.array_equal(known, a)):
            raise ValueError(f"two different weights named {name!r}")
        t = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(a.dtype), dims=a.shape,
                        data_location=TensorProto.EXTERNAL)
        t.external_data.add(key="location", value=OUTSIDE_LOCATION)
        inits.append(t)
        return name

    def shared(name: str, value, dtype) -> str:
        """One initializer for a small constant used all over the graph."""
        if name not in consts:
            consts[name] = const(name, np.array(value, dtype))
        return consts[name]

    def node(op: str, inputs: list[str], name: str, n_out: int = 1, domain: str | None = None, **attrs) -> list[str]:
        outs = [name] if n_out == 1 else [f"{name}.{k}" for k in range(n_out)]
        while inputs and not inputs[-1]:  # optional inputs left out at the end ("" names one in between)
            inputs = inputs[:-1]
        nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs

    def stored(names: list[str]) -> StoredInt8:
        """The file's integers of these weights, side by side (one product for all of them)."""
        from codesift.embed.onnx_file import StoredInt8

        parts = [stored_int8(n) if stored_int8 is not None else None for n in names]
        if any(part is None for part in parts):
            raise ValueError(f"no 8-bit weights stored in the file for {names} (int8 format 'file')")
        return StoredInt8(*(np.concatenate([getattr(part, f) for part in parts], axis=-1)
                            for f in ("q", "scale", "zero_point")))

    def per_input(rows_value: str, reduce: str, name: str) -> str:
        """A value per row [rows] -> the `reduce` (ReduceMax/ReduceMin) over its input's real tokens,
        per row; padding counts as 0 (every range here includes 0 anyway)."""
        bt = node("Reshape", [rows_value, shape_bt], name + ".bt")[0]
        bt = node("Mul", [bt, mask_float], name + ".masked")[0]
        each = node(reduce, [bt], name + ".input", axes=[1], keepdims=1)[0]
        return node("Reshape", [node("Expand", [each, shape_bt], name + ".tokens")[0], shared("shape.flat", [-1], np.int64)],
                    name + ".rows")[0]

    def file_linear(x: str, s: StoredInt8, name: str) -> str:
        """x [rows, in] @ s, as the file's DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul computes
        it for each input alone: scale (max - min) / 255 over the input's values with 0 in the range,
        zero point round(-min / scale), x -> uint8; the zero point's share is taken out in int32
        (MatMulInteger takes one zero point for all rows)."""
        hi = per_input(node("ReduceMax", [x], name + ".rowmax", axes=[-1], keepdims=0)[0], "ReduceMax", name + ".max")
        lo = per_input(node("ReduceMin", [x], name + ".rowmin", axes=[-1], keepdims=0)[0], "ReduceMin", name + ".min")
        zero = shared("f0", 0.0, np.float32)
        hi = node("Max", [hi, zero], name + ".hi")[0]
        lo = node("Min", [lo, zero], name + ".lo")[0]
        step = node("Div", [node("Sub", [hi, lo], name + ".range")[0], shared("f255", 255.0, np.float32)], name + ".step0")[0]
        step = node("Where", [node("Equal", [hi, lo], name + ".flat")[0], shared("f1", 1.0, np.float32), step],
                    name + ".step")[0]
        zp = node("Neg", [node("Div", [lo, step], name + ".lo_steps")[0]], name + ".zp0")[0]
        zp = node("Round", [node("Clip", [zp, zero, shared("f255", 255.0, np.float32)], name + ".zp1")[0]], name + ".zp")[0]
        xq = node("QuantizeLinear", [x, step, node("Cast", [zp], name + ".zp_u8", to=TensorProto.UINT8)[0]],
                  name + ".xq", axis=0)[0]
        b_zero = [const(f"{name}.file.zero", s.zero_point)] if s.zero_point.any() else []
        y = node("MatMulInteger", [xq, const(f"{name}.file", s.q), ""] + b_zero, name + ".mm")[0]
        col_sums = (s.q.astype(np.int32) - s.zero_point.astype(np.int32)).sum(0).astype(np.int32)
        zp_rows = node("Unsqueeze", [node("Cast", [zp], name + ".zp_i32", to=TensorProto.INT32)[0],
                                     shared("axes.1", [1], np.int64)], name + ".zp_col")[0]
        y = node("Sub", [y, node("Mul", [zp_rows, const(f"{name}.file.col_sums", col_sums)], name + ".zp_share")[0]],
                 name + ".centred")[0]
        y = node("Cast", [y], name + ".float", to=TensorProto.FLOAT)[0]
        scales = node("Mul", [node("Unsqueeze", [step, shared("axes.1", [1], np.int64)], name + ".step_col")[0],
                              const(f"{name}.file.scale", s.scale)], name + ".scales")[0]
        return node("Mul", [y, scales], name)[0]

    def linear(x: str, weight: np.ndarray, name: str, zero_point: int = SIGNED_ZERO_POINT) -> str:
        """x [rows, in] @ weight [in, out], no bias; in 8 bits when `name` is in int8."""
        if name not in int8:
            return node("MatMul", [x, const(name + ".weight", weight)], name)[0]
        kind = int8[name]  # in the weights' names: one graph's s7 layer and another's s8 are two weights
        if kind == "file":
            return file_linear(x, stored([name + ".weight"]), name)
        q, scale, zero = quantize_columns(weight, kind)
        hi = node("ReduceMax", [x], name + ".max", axes=[-1], keepdims=0)[0]
        if zero_point == SIGNED_ZERO_POINT:  # steps of max|x| / 127 on either side of 128
            lo = node("ReduceMin", [x], name + ".min", axes=[-1], keepdims=0)[0]
            mag = node("Max", [hi, node("Neg", [lo], name + ".neg")[0]], name + ".mag")[0]
            step = node("Mul", [mag, shared("inv127", 1 / 127, np.float32)], name + ".step0")[0]
        else:  # GELU's output: [GELU_MIN, max] in 256 steps, zero at `zero_point`
            top = node("Mul", [hi, shared(f"inv{255 - zero_point}", 1 / (255 - zero_point), np.float32)],
                       name + ".top")[0]
            floor = shared(f"gelu_step{zero_point}", -GELU_MIN / zero_point, np.float32)
            step = node("Max", [top, floor], name + ".step0")[0]
        step = node("Max", [step, shared("tiny", 1e-12, np.float32)], name + ".step")[0]  # a row of zeros
        zp = shared(f"zp{zero_point}", zero_point, np.uint8)
        zps = node("Expand", [zp, node("Shape", [step], name + ".rows")[0]], name + ".zps")[0]
        xq = node("QuantizeLinear", [x, step, zps], name + ".xq", axis=0)[0]
        y = node("MatMulIntegerToFloat", [xq, const(f"{name}.{kind}", q), shared("one", 1.0, np.float32),
                                          const(f"{name}.{kind}.scale", scale), zp, const(f"{name}.{kind}.zero", zero)],
                 name + ".mm", domain=MS)[0]
        return node("Mul", [y, node("Unsqueeze", [step, shared("axes.1", [1], np.int64)], name + ".col")[0]], name)[0]

    def residual_norm(y: str, bias: str, x: str, norm: str, smooth: np.ndarray | None = None) -> str:
        """LayerNorm(y + bias + x), divided by `smooth` when given: `bias` and `norm` name the weights
        (layers.0.ffn.w2.bias, layers.0.ffn_norm)."""
        t = node("Add", [y, const(bias, w(bias))], norm + ".add_bias")[0]
        t = node("Add", [t, x], norm + ".add_residual")[0]
        scale, shift, kind = w(norm + ".weight"), w(norm + ".bias"), ""
        if smooth is not None:
            scale, shift, kind = scale / smooth, shift / smooth, ".smoothed"
        return node("LayerNormalization", [t, const(norm + ".weight" + kind, scale),
                                           const(norm + ".bias" + kind, shift)], norm, axis=-1, epsilon=eps)[0]

    h, nh, eps = cfg.hidden_size, cfg.num_attention_heads, float(cfg.layer_norm_eps)
    off = cfg.position_offset
    if segments:
        positions, segment_ids = w("pos_embeddings.weight")[off:], "token_type_ids"
        segment_table = const("segment_embeddings", w("type_embeddings.weight"))
    else:  # segment 0's row folded into the positions (MPNet has no segments)
        positions = w("pos_embeddings.weight")[off:]
        if "type_embeddings.weight" in w:
            positions = positions + w("type_embeddings.weight")[0]
        segment_ids = segment_table = ""
    x3, mask_index = node("EmbedLayerNormalization", [
        "input_ids", segment_ids, const("word_embeddings", w("tok_embeddings.weight")),
        const("position_embeddings", positions.astype(np.float32)), segment_table,
        const("embed_norm.weight", w("embed_norm.weight")), const("embed_norm.bias", w("embed_norm.bias")),
        "attention_mask"], "embed", n_out=2, domain=MS, epsilon=eps)
    shape3 = node("Shape", [x3], "shape3")[0]
    rows = shared("shape.rows", [-1, h], np.int64)
    x = node("Reshape", [x3, rows], "embed.rows")[0]
    relative = ""  # MPNet: one bias per head and (query, key) distance bucket, shared by every layer
    if "relative_bias.weight" in w:
        from codesift.embed.models.mpnet import relative_buckets

        t = node("Slice", [shape3, shared("i1", [1], np.int64), shared("i2", [2], np.int64)], "shape.t")[0]
        buckets = node("Slice", [const("relative_buckets", relative_buckets(cfg.max_tokens).astype(np.int32)),
                                 shared("i00", [0, 0], np.int64), node("Concat", [t, t], "shape.tt", axis=0)[0],
                                 shared("axes.01", [0, 1], np.int64)], "relative.buckets")[0]
        relative = node("Gather", [const("relative_bias", w("relative_bias.weight")), buckets], "relative.tth")[0]
        relative = node("Unsqueeze", [node("Transpose", [relative], "relative.htt", perm=[2, 0, 1])[0],
                                      shared("axes.0", [0], np.int64)], "relative")[0]  # [1, heads, t, t]
    act = BIAS_ACTIVATION[cfg.hidden_act]
    qk_int8 = any(name.endswith(".attention.qk") for name in int8)
    file_int8 = "file" in int8.values()
    if qk_int8 or file_int8:
        shape_bt = node("Slice", [shape3, shared("i0", [0], np.int64), shared("i2", [2], np.int64)], "shape.bt")[0]
    if file_int8:
        mask_float = node("Cast", ["attention_mask"], "mask.float", to=TensorProto.FLOAT)[0]
    if qk_int8:  # [batch, tokens, 2 * hidden]
        shape_qk = node("Concat", [shape_bt, shared("2h", [2 * h], np.int64)], "shape.qk", axis=0)[0]
    if any(name.endswith(".attention.qkv") for name in int8):  # [batch, tokens, 3 * hidden]
        shape_qkv = node("Concat", [shape_bt, shared("3h", [3 * h], np.int64)], "shape.qkv", axis=0)[0]
    for i in range(cfg.num_hidden_layers):
        p = f"layers.{i}."

        def wt(name: str) -> np.ndarray:
            return w(p + name + ".weight").T  # [in, out]: MatMul's B

        qkv_b = np.concatenate([w(p + f"attention.{n}.bias") for n in ("wq", "wk", "wv")])
        if p + "attention.qkv" in int8:  # the file's own 8 bits: one product for the three
            qkv = file_linear(x, stored([p + f"attention.{n}.weight" for n in ("wq", "wk", "wv")]), p + "attention.qkv")
            qkv = node("Reshape", [qkv, shape_qkv], p + "attention.qkv.3d")[0]
            q, k, v = node("Split", [qkv, shared("split.qkv", [h, h, h], np.int64)], p + "attention.qkv.split",
                           n_out=3, axis=-1)
            a = node("MultiHeadAttention", [q, k, v, const(p + "qkv.bias", qkv_b), "attention_mask", relative],
                     p + "attention", domain=MS, num_heads=nh)[0]
        elif p + "attention.qk" in int8:  # query and key in 8 bits, value and the attention in float32
            qk = linear(x, np.concatenate([wt("attention.wq"), wt("attention.wk")], axis=1), p + "attention.qk")
            qk = node("Reshape", [qk, shape_qk], p + "attention.qk.3d")[0]
            q, k = node("Split", [qk, shared("split.qk", [h, h], np.int64)], p + "attention.qk.split", n_out=2, axis=-1)
            v = node("MatMul", [x, const(p + "attention.wv.weight", wt("attention.wv"))], p + "attention.v")[0]
            v = node("Reshape", [v, shape3], p + "attention.v.3d")[0]
            a = node("MultiHeadAttention", [q, k, v, const(p + "qkv.bias", qkv_b), "attention_mask", relative],
                     p + "attention", domain=MS, num_heads=nh)[0]
        else:
            qkv_w = np.concatenate([wt("attention.wq"), wt("attention.wk"), wt("attention.wv")], axis=1)
            x3 = node("Reshape", [x, shape3], p + "input")[0]
            a = node("Attention", [x3, const(p + "qkv.weight", qkv_w), const(p + "qkv.bias", qkv_b), mask_index,
                                   "", relative],
                     p + "attention", domain=MS, num_heads=nh)[0]
        a = node("Reshape", [a, rows], p + "attention.rows")[0]
        a = linear(a, wt("attention.wo"), p + "attention.wo")
        w1 = wt("ffn.w1")
        # our own 8 bits (not the file's): the norm writes its output divided by `smooth`; w1's rows take it
        if int8.get(p + "ffn.w1") not in (None, "file"):
            smooth = smoothing(w(p + "attention_norm.weight"), w(p + "attention_norm.bias"), w1)
            xs = residual_norm(a, p + "attention.wo.bias", x, p + "attention_norm", smooth)
            x = node("Mul", [xs, const(p + "attention_norm.smooth", smooth)], p + "attention_norm.unsmooth")[0]
            f = linear(xs, w1 * smooth[:, None], p + "ffn.w1")
        else:
            x = residual_norm(a, p + "attention.wo.bias", x, p + "attention_norm")
            f = linear(x, w1, p + "ffn.w1")
        f = node(act, [f, const(p + "ffn.w1.bias", w(p + "ffn.w1.bias"))], p + "ffn.act", domain=MS)[0]
        f = linear(f, wt("ffn.w2"), p + "ffn.w2", zero_point=GELU_ZERO_POINT)
        x = residual_norm(f, p + "ffn.w2.bias", x, p + "ffn_norm")
    nodes.append(helper.make_node("Reshape", [x, shape3], ["last_hidden_state"], name="output"))
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "tokens"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "tokens"])]
    if segments:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT32, ["batch", "tokens"]))
    graph = helper.make_graph(
        nodes, "codesift-encoder", inputs,
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", h])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="codesift")
    model.ir_version = min(model.ir_version, 9)  # what onnxruntime releases of the last year load
    return model
