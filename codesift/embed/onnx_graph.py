"""A BERT-family encoder as an ONNX graph, built here from our own weights with the `onnx`
helper API, for ONNX Runtime to run (`ort_backend.py`).

The graph is the one ONNX Runtime's own transformer optimiser would leave: its fused CPU
kernels (com.microsoft EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu)
in place of the dozens of elementwise nodes a traced export has. Token type 0 for every
token is folded into the position table, so the graph takes ids and the attention mask only.
Output: the token states [batch, tokens, hidden], pooled by the caller.
"""
from __future__ import annotations

from typing import Collection

import numpy as np

from codesift.embed.models.common import NumpyWeights

MS = "com.microsoft"
# Opsets the graph is written for: LayerNormalization is opset 17; the contrib ops are version 1.
OPSET = 17
# Our activation names (config.json's hidden_act) -> the fused bias + activation contrib op.
BIAS_ACTIVATION = {"gelu": "BiasGelu", "gelu_new": "FastGelu", "gelu_pytorch_tanh": "FastGelu",
                   "gelu_fast": "FastGelu"}


def INT8_LINEARS(cfg) -> set[str]:
    """The linear layers the int8 graph runs in 8 bits: attention output and feed-forward of every
    layer. The attention's query/key/value product stays inside the fused float32 Attention kernel."""
    return {f"layers.{i}.{kind}" for i in range(cfg.num_hidden_layers)
            for kind in ("attention.wo", "ffn.w1", "ffn.w2")}


def supports(arch_name: str, cfg) -> bool:
    """Whether `build_bert` can express this model: post-LayerNorm BERT (and RoBERTa-style
    position offsets) with an activation that has a fused kernel."""
    return arch_name in ("bert", "xlm-roberta") and getattr(cfg, "hidden_act", None) in BIAS_ACTIVATION


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w [in, out] -> (uint8 weights, float32 scale [out], uint8 zero point [out]): asymmetric 8-bit
    per output column. Unsigned weights: on CPUs without VNNI, ONNX Runtime's signed-weight kernel
    sums pairs of products in 16 bits, which saturates with full-range int8 weights."""
    lo = np.minimum(w.min(0), 0).astype(np.float32)
    hi = np.maximum(w.max(0), 0).astype(np.float32)
    scale = np.maximum((hi - lo) / 255, np.float32(1e-12)).astype(np.float32)
    zero = np.clip(np.round(-lo / scale), 0, 255)
    q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
    return q, scale, zero.astype(np.uint8)


def build_bert(cfg, w: NumpyWeights, int8: Collection[str] = ()):
    """The encoder as an onnx.ModelProto: inputs input_ids and attention_mask (int32 [b, t], mask 1
    on real tokens, right padding), output last_hidden_state (float32 [b, t, hidden]).

    int8: the linear layers that run in 8 bits, by name ("layers.0.ffn.w1"; attention.wo, ffn.w1
    and ffn.w2 can), with dynamic per-tensor quantisation of their input. Such a graph has a
    third input, fp32_tokens (int64 [1]): the first that many tokens of every input run those
    layers in float32 all the same. 1 keeps the first token ([CLS]) in float32: it carries
    activations several times larger than any other token's (an attention sink) and would
    otherwise set the quantisation range for all. The whole length runs a batch in float32
    (short inputs, whose few tokens each weigh much in the pooled vector).
    """
    from onnx import TensorProto, helper, numpy_helper

    inits: list = []
    nodes: list = []

    def const(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def node(op: str, inputs: list[str], name: str, n_out: int = 1, domain: str | None = None, **attrs) -> list[str]:
        outs = [name] if n_out == 1 else [f"{name}.{k}" for k in range(n_out)]
        nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs

    def matmul(a: str, weight: np.ndarray, name: str) -> str:
        if name not in int8:
            return node("MatMul", [a, const(name + ".weight", weight)], name)[0]
        q, scale, zero = quantize_columns(weight)
        head = node("Slice", [a, ZERO, "fp32_tokens", AXIS], name + ".head")[0]
        rest = node("Slice", [a, "fp32_tokens", END, AXIS], name + ".rest")[0]
        y0 = node("MatMul", [head, const(name + ".weight", weight)], name + ".head_mm")[0]
        y1 = node("DynamicQuantizeMatMul", [rest, const(name + ".q", q), const(name + ".scale", scale),
                                            const(name + ".zero", zero)], name + ".rest_mm", domain=MS)[0]
        return node("Concat", [y0, y1], name, axis=1)[0]

    if int8:
        ZERO, END, AXIS = (const(n, np.array([v], np.int64)) for n, v in (("zero", 0), ("end", 2 ** 62), ("axis", 1)))
    h, nh, eps = cfg.hidden_size, cfg.num_attention_heads, float(cfg.layer_norm_eps)
    off = cfg.position_offset
    positions = w("pos_embeddings.weight")[off:] + w("type_embeddings.weight")[0]
    x, mask_index = node("EmbedLayerNormalization", [
        "input_ids", "", const("word_embeddings", w("tok_embeddings.weight")),
        const("position_embeddings", positions.astype(np.float32)), "",
        const("embed_norm.weight", w("embed_norm.weight")), const("embed_norm.bias", w("embed_norm.bias")),
        "attention_mask"], "embed", n_out=2, domain=MS, epsilon=eps)
    act = BIAS_ACTIVATION[cfg.hidden_act]
    for i in range(cfg.num_hidden_layers):
        p = f"layers.{i}."

        def wt(name: str) -> np.ndarray:
            return w(p + name + ".weight").T  # [in, out]: MatMul's B

        qkv_w = np.concatenate([wt("attention.wq"), wt("attention.wk"), wt("attention.wv")], axis=1)
        qkv_b = np.concatenate([w(p + f"attention.{n}.bias") for n in ("wq", "wk", "wv")])
        a = node("Attention", [x, const(p + "qkv.weight", qkv_w), const(p + "qkv.bias", qkv_b), mask_index],
                 p + "attention", domain=MS, num_heads=nh)[0]
        a = matmul(a, wt("attention.wo"), p + "attention.wo")
        x = node("SkipLayerNormalization", [a, x, const(p + "attention_norm.weight", w(p + "attention_norm.weight")),
                                            const(p + "attention_norm.bias", w(p + "attention_norm.bias")),
                                            const(p + "attention.wo.bias", w(p + "attention.wo.bias"))],
                 p + "attention_norm", domain=MS, epsilon=eps)[0]
        f = matmul(x, wt("ffn.w1"), p + "ffn.w1")
        f = node(act, [f, const(p + "ffn.w1.bias", w(p + "ffn.w1.bias"))], p + "ffn.act", domain=MS)[0]
        f = matmul(f, wt("ffn.w2"), p + "ffn.w2")
        x = node("SkipLayerNormalization", [f, x, const(p + "ffn_norm.weight", w(p + "ffn_norm.weight")),
                                            const(p + "ffn_norm.bias", w(p + "ffn_norm.bias")),
                                            const(p + "ffn.w2.bias", w(p + "ffn.w2.bias"))],
                 p + "ffn_norm", domain=MS, epsilon=eps)[0]
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "tokens"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "tokens"])]
    if int8:
        inputs.append(helper.make_tensor_value_info("fp32_tokens", TensorProto.INT64, [1]))
    graph = helper.make_graph(
        nodes, "codesift-encoder", inputs,
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", h])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="codesift")
    model.ir_version = min(model.ir_version, 9)  # what onnxruntime releases of the last year load
    return model
