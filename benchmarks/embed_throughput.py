#!/usr/bin/env python3
"""Embedding throughput: codesift's encoder vs sentence-transformers, same texts, device, dtype, max length.

Texts are the functions of this interpreter's standard library (one text per function,
as the indexer embeds them), or with --texts email-windows 1,200-character windows of its
email/*.py, truncated by both sides to the model's 256 tokens.
Tokens/s counts real (non-padding) tokens after truncation, tokenization included.

  python benchmarks/embed_throughput.py --device cpu --n 2000
  python benchmarks/embed_throughput.py --device cpu --engine numpy --n 2000
  python benchmarks/embed_throughput.py --device cuda --dtype fp16 --n 20000

On the CPU, --engines compares several of our engines with sentence-transformers fp32 in one
process, in interleaved rounds (each round times every side once), so that a busy machine's
drift hits all alike; ratios are per round (median and best reported), cosines against
sentence-transformers fp32 on every text, and the load average is logged:

  python benchmarks/embed_throughput.py --device cpu --n 300 --engines numpy,onnx,onnx-int8

The last line printed is one JSON object with the figures and the ratios.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import statistics
import sysconfig
import time
from pathlib import Path

from _results import write_result


def stdlib_functions(limit: int) -> list[str]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    for path in sorted(lib.rglob("*.py")):
        if any(p in ("test", "tests", "site-packages", "idle_test") for p in path.parts):
            continue
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                texts.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
                if len(texts) >= limit:
                    return texts
    return texts


def email_windows(limit: int, width: int = 1200) -> list[str]:
    """Consecutive windows of `width` characters of the standard library's email/*.py, file by file."""
    lib = Path(sysconfig.get_paths()["stdlib"]) / "email"
    texts: list[str] = []
    for path in sorted(lib.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        texts += [source[i:i + width] for i in range(0, len(source), width)]
    return texts[:limit]


TEXT_SETS = {"functions": stdlib_functions, "email-windows": email_windows}


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--engine", default=None, choices=["torch", "numpy"],
                    help="our backend (default: torch where installed)")
    ap.add_argument("--n", type=int, default=2000, help="number of texts")
    ap.add_argument("--texts", default="functions", choices=sorted(TEXT_SETS),
                    help="stdlib functions, or 1,200-character windows of stdlib email/*.py")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per side; the best is kept")
    ap.add_argument("--model", default="default", help="model name or folder (both sides load the same files)")
    ap.add_argument("--engines", default=None,
                    help="CPU: our engines to compare in one run, comma-separated: numpy, onnx, onnx-int8, torch")
    args = ap.parse_args()
    if args.engines:
        compare_engines(args)
        return

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from codesift.embed.embedder import Embedder

    texts = TEXT_SETS[args.texts](args.n)
    ours = Embedder.load(args.model, device=args.device, dtype=args.dtype, engine=args.engine)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    ref = SentenceTransformer(str(ours.files.root), device=args.device, model_kwargs={"torch_dtype": dtype})
    ref.max_seq_length = ours.max_tokens
    n_tokens = sum(len(ids) for ids in ours.tokenizer.encode(texts).ids)

    def run_ours():
        ours.embed(texts, batch_size=args.batch_size)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def run_ref():
        ref.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    ours.embed(texts[:64])
    ref.encode(texts[:64])
    t_ours = timed(run_ours, args.repeat)
    t_ref = timed(run_ref, args.repeat)
    a = ours.embed(texts[:200])
    b = ref.encode(texts[:200], convert_to_numpy=True, normalize_embeddings=True)
    cos = (a * b).sum(1)
    result = {
        "benchmark": "embed_throughput", "device": args.device, "dtype": args.dtype, "backend": ours.backend.name,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "texts": len(texts), "tokens": n_tokens, "batch_size": args.batch_size, "max_tokens": ours.max_tokens,
        "codesift_tokens_per_s": round(n_tokens / t_ours), "st_tokens_per_s": round(n_tokens / t_ref),
        "ratio": round(t_ref / t_ours, 3), "min_cos_vs_st": round(float(np.min(cos)), 6),
        "torch": torch.__version__,
    }
    print(f"codesift {result['codesift_tokens_per_s']:,} tok/s | sentence-transformers "
          f"{result['st_tokens_per_s']:,} tok/s | ratio {result['ratio']}x")
    print(json.dumps(result))
    write_result("embed_throughput", result)


ENGINES = {"numpy": dict(engine="numpy"), "onnx": dict(engine="onnx"), "onnx-int8": dict(engine="onnx", dtype="int8"),
           "torch": dict(engine="torch")}


def compare_engines(args) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from codesift.embed.embedder import Embedder

    names = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in names if e not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engines {unknown}; choose from {sorted(ENGINES)}")
    texts = TEXT_SETS[args.texts](args.n)
    ours = {}
    for name in names:
        t0 = time.perf_counter()
        ours[name] = Embedder.load(args.model, device="cpu", **{"dtype": "fp32", **ENGINES[name]})
        ours[name].load_s = round(time.perf_counter() - t0, 2)
    first = next(iter(ours.values()))
    ref = SentenceTransformer(str(first.files.root), device="cpu")
    ref.max_seq_length = first.max_tokens
    n_tokens = sum(len(ids) for ids in first.tokenizer.encode(texts).ids)
    sides = {"st": lambda: ref.encode(texts, batch_size=args.batch_size, convert_to_numpy=True,
                                      normalize_embeddings=True)}
    sides.update({name: (lambda e=e: e.embed(texts, batch_size=args.batch_size)) for name, e in ours.items()})
    for fn in sides.values():  # warm-up: first-call allocations, lazily read weights
        fn()
    seconds = {k: [] for k in sides}
    cpu_seconds = {k: [] for k in sides}
    vectors = {}
    loads = [os.getloadavg()[0]]
    for r in range(args.repeat):
        for k, fn in sides.items():
            t0, c0 = time.perf_counter(), time.process_time()
            vectors[k] = fn()
            seconds[k].append(time.perf_counter() - t0)
            cpu_seconds[k].append(time.process_time() - c0)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: load {loads[-1]:.1f} | " + " | ".join(
            f"{k} {n_tokens / seconds[k][-1]:,.0f} tok/s" for k in sides), flush=True)
    engines = {}
    for name, e in ours.items():
        ratios = [st / t for st, t in zip(seconds["st"], seconds[name])]
        cpu_ratios = [st / t for st, t in zip(cpu_seconds["st"], cpu_seconds[name])]
        cos = (vectors[name] * vectors["st"]).sum(1)
        engines[name] = {
            "backend": e.backend.name, "load_s": e.load_s,
            "tokens_per_s": round(n_tokens / min(seconds[name])),
            "tokens_per_cpu_s": round(n_tokens / min(cpu_seconds[name])),
            "ratio_median": round(statistics.median(ratios), 3), "ratio_rounds": [round(x, 3) for x in ratios],
            "ratio_best": round(min(seconds["st"]) / min(seconds[name]), 3),
            "cpu_ratio_median": round(statistics.median(cpu_ratios), 3),
            "min_cos_vs_st": round(float(cos.min()), 6), "mean_cos_vs_st": round(float(cos.mean()), 6)}
    result = {
        "benchmark": "embed_throughput", "mode": "engines", "texts_from": args.texts, "device": "cpu",
        "dtype_st": "fp32",
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "texts": len(texts), "tokens": n_tokens,
        "batch_size": args.batch_size, "max_tokens": first.max_tokens, "rounds": args.repeat,
        "load_avg_1m": [round(x, 2) for x in loads],
        "st_tokens_per_s": round(n_tokens / min(seconds["st"])),
        "st_tokens_per_cpu_s": round(n_tokens / min(cpu_seconds["st"])),
        "engines": engines, "torch": torch.__version__,
    }
    for name, r in engines.items():
        print(f"{name:10s} {r['tokens_per_s']:>7,} tok/s  x{r['ratio_median']} of sentence-transformers "
              f"(rounds {r['ratio_rounds']})  cos vs ST min {r['min_cos_vs_st']:.6f} mean {r['mean_cos_vs_st']:.6f}")
    print(json.dumps(result))
    write_result("embed_throughput", result)


if __name__ == "__main__":
    main()
