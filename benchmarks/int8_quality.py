#!/usr/bin/env python3
"""Search quality with int8 CPU vectors against fp32 ones, on the same files and queries.

For each eval set (built by `python -m benchmarks.evalkit.generate`; corpus/ and queries.jsonl),
a seeded sample of its files is copied to a scratch folder and indexed twice on the CPU (ONNX
Runtime, fp32 and int8, each dtype's model loaded once), then the queries whose answer is in
the sample are searched in each index (hybrid and semantic). The pair differs only by the
document vectors: same chunks, same BM25, same query vectors (numpy fp32). MRR@10 is paired
(same queries), so the difference is less noisy than either figure.

  python benchmarks/int8_quality.py /tmp/evals/stdlib /tmp/evals/sklearn --files 120

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from _kit import load_jsonl, score
from _results import write_result

DTYPES = ("fp32", "int8")


def sample_corpus(eval_dir: Path, out: Path, n_files: int, seed: int) -> list[dict]:
    """Copy n_files of eval_dir/corpus (seeded) to out; returns the queries answered there."""
    corpus = eval_dir / "corpus"
    files = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()
                   and ".codesift" not in p.parts)
    chosen = set(random.Random(seed).sample(files, min(n_files, len(files))))
    for rel in chosen:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / rel, out / rel)
    return [q for q in load_jsonl(eval_dir / "queries.jsonl") if q["path"] in chosen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dirs", type=Path, nargs="+")
    ap.add_argument("--files", type=int, default=120, help="files sampled from each corpus")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--modes", default="hybrid,semantic")
    args = ap.parse_args()

    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree
    from codesift.search.searcher import Searcher

    modes = args.modes.split(",")
    embedders = {dt: Embedder.load("default", device="cpu", dtype=dt, engine="onnx") for dt in DTYPES}
    result: dict = {"files_per_corpus": args.files, "seed": args.seed,
                    "backends": {dt: e.backend.name for dt, e in embedders.items()}, "corpora": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for eval_dir in args.eval_dirs:
            corpus = Path(tmp) / eval_dir.name
            targets = sample_corpus(eval_dir, corpus, args.files, args.seed)
            queries = [t["query"] for t in targets]
            row: dict = {"queries": len(targets)}
            for dt in DTYPES:
                index_dir = Path(tmp) / f"{eval_dir.name}-{dt}"
                t0, c0 = time.perf_counter(), time.process_time()
                summary = index_tree(corpus, index_dir, embedder=embedders[dt])
                row[dt] = {"files": summary.files, "chunks": summary.chunks, "embedded": summary.embedded,
                           "tokens": summary.tokens, "index_s": round(time.perf_counter() - t0, 1),
                           "index_cpu_s": round(time.process_time() - c0, 1), "load_avg_1m": os.getloadavg()[0]}
                searcher = Searcher(index_dir)
                for mode in modes:
                    found = searcher.search_many(queries, mode=mode, k=10)
                    res = {q: [r.to_dict() for r in rs] for q, rs in zip(queries, found)}
                    row[dt][mode] = score(targets, res, k=10)["mrr@10"]
                searcher.close()
            for mode in modes:
                row[f"{mode}_int8_minus_fp32"] = round(row["int8"][mode] - row["fp32"][mode], 4)
            result["corpora"][eval_dir.name] = row
            print(f"{eval_dir.name}: {len(targets)} queries, {row['fp32']['chunks']} chunks | " + " | ".join(
                f"{mode} fp32 {row['fp32'][mode]:.4f} int8 {row['int8'][mode]:.4f}" for mode in modes), flush=True)
    print(json.dumps(result))
    write_result("int8_quality", result)


if __name__ == "__main__":
    main()
