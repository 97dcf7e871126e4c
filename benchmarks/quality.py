#!/usr/bin/env python3
"""Search quality on code-search eval sets built by `python -m benchmarks.evalkit.generate SRC OUT`.

In-process (one Searcher, all queries) and scored by benchmarks/evalkit/score.py, so a run over
three corpora and three modes takes seconds once the indexes exist.

  python benchmarks/quality.py /work/evals/stdlib /work/evals/sklearn [--modes hybrid,bm25,semantic]

Each EVAL_DIR must hold corpus/ (indexed with `codesift index`) and queries.jsonl.
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _kit import load_jsonl, score
from _results import write_result


def evaluate(eval_dir: Path, modes: list[str], k: int = 10) -> dict:
    from codesift.search.searcher import Searcher

    targets = load_jsonl(eval_dir / "queries.jsonl")
    queries = [t["query"] for t in targets]
    searcher = Searcher(eval_dir / "corpus" / ".codesift")
    out = {}
    for mode in modes:
        t0 = time.perf_counter()
        results = searcher.search_many(queries, mode=mode, k=k)
        elapsed = time.perf_counter() - t0
        res = {q: [r.to_dict() for r in rs] for q, rs in zip(queries, results)}
        out[mode] = {**score(targets, res, k=k), "seconds": round(elapsed, 2)}
    searcher.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dirs", type=Path, nargs="+")
    ap.add_argument("--modes", default="hybrid,bm25,semantic")
    ap.add_argument("--name", default="quality", help="the log's name (e.g. quality_mpnet for another model's run)")
    args = ap.parse_args()
    modes = args.modes.split(",")
    table = {}
    for d in args.eval_dirs:
        table[d.name] = evaluate(d, modes)
        for mode, s in table[d.name].items():
            print(f"{d.name:10} {mode:9} MRR@10 {s['mrr@10']:.4f}  R@1 {s['recall@1']:.3f}  "
                  f"R@10 {s['recall@10']:.3f}  lines {s['mean_result_lines']:5.1f}  ({s['seconds']} s)", flush=True)
    print(json.dumps(table))
    write_result(args.name, table)


if __name__ == "__main__":
    main()
