#!/usr/bin/env python3
"""Where ONNX Runtime spends its time on our encoder graph: its own profiler, per operator type and
per node of the first layer, for the fp32 and int8 graphs (`codesift/embed/onnx_graph.py`), one
session on one thread, over the standard library's functions in the backend's runs
(`ort_backend.groups`, padded as the backend pads them).

  python benchmarks/ort_profile.py --n 300

Kernel times are wall microseconds inside each kernel as the profiler reports them (a busy machine
stretches them all); CPU seconds of the whole pass and the load average are logged beside them.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import time

import numpy as np
from _results import write_result
from embed_throughput import stdlib_functions


def profile(graph, weights: dict, feeds: list[dict], layer: str) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_profiling = True
    names = [t.name for t in graph.graph.initializer if t.name in weights]
    options.add_external_initializers(names, [ort.OrtValue.ortvalue_from_numpy(weights[n]) for n in names])
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    c0, t0 = time.process_time(), time.perf_counter()
    for feed in feeds:
        session.run(None, feed)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    path = session.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    by_op: collections.Counter = collections.Counter()
    by_node: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            node = e["name"][: -len("_kernel_time")]
            if node.startswith(layer):
                by_node[f"{node[len(layer):]} ({e['args']['op_name']})"] += e["dur"]
    total = sum(by_op.values())
    return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "kernel_s": round(total / 1e6, 3),
            "ops": {k: {"s": round(v / 1e6, 3), "share": round(v / total, 4)} for k, v in by_op.most_common()},
            "first_layer": {k: round(v / 1e6, 3) for k, v in by_node.most_common()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="number of texts")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    from codesift.embed.batches import pad_batch
    from codesift.embed.embedder import Embedder
    from codesift.embed.onnx_graph import INT8_LINEARS, build_bert, cpu_has_vnni
    from codesift.embed.ort_backend import INT8_MIN_TOKENS, groups

    embedder = Embedder.load(args.model, device="cpu", engine="numpy")
    ids = embedder.tokenizer.encode(stdlib_functions(args.n)).ids
    arch, files = embedder.backend.arch, embedder.files
    cfg = arch.read_config(files.config, source=str(files.root / "config.json"))
    w = arch.numpy_model(files.weights, cfg).w
    tokens = sum(len(x) for x in ids)
    out: dict = {"texts": len(ids), "tokens": tokens, "load_avg_1m_before": os.getloadavg()[0]}
    for dtype, int8 in (("fp32", None), ("int8", INT8_LINEARS(cfg, cpu_has_vnni()))):
        # as the backend runs them: int8 leaves inputs of at most INT8_MIN_TOKENS to fp32
        runs = groups([len(x) for x in ids], split_at=INT8_MIN_TOKENS if int8 else None)
        runs = [r for r in runs if not int8 or max(len(ids[i]) for i in r) > INT8_MIN_TOKENS]
        feeds = []
        for run in runs:
            batch, mask = pad_batch([ids[i] for i in run], 0, files.max_tokens, mask_dtype=np.int32)
            feeds.append({"input_ids": batch.astype(np.int32), "attention_mask": mask})
        weights: dict = {}
        out[dtype] = profile(build_bert(cfg, w, int8=int8, outside=weights), weights, feeds, "layers.0.")
        out[dtype]["tokens"] = sum(len(ids[i]) for r in runs for i in r)
        out[dtype]["tokens_per_cpu_s"] = round(out[dtype]["tokens"] / out[dtype]["cpu_s"])
        top = ", ".join(f"{k} {v['share']:.1%}" for k, v in list(out[dtype]["ops"].items())[:6])
        print(f"{dtype}: {out[dtype]['tokens_per_cpu_s']} tokens per CPU-second; {top}", flush=True)
        print(f"  first layer: {out[dtype]['first_layer']}", flush=True)
    out["load_avg_1m_after"] = os.getloadavg()[0]
    print(json.dumps(out))
    write_result("ort_profile", out)


if __name__ == "__main__":
    main()
