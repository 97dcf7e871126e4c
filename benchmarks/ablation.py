#!/usr/bin/env python3
"""Ablation of the search-time ranking choices: each shipped choice turned off alone, then all.

Runs on indexes already built (see quality.py); scores with benchmarks/evalkit/score.py.
Index-time choices (identifier splitting, what is embedded) need a re-index each and are
measured with quality.py / embed_variants.py; RESULTS.md lists them with the rest.

  python benchmarks/ablation.py /work/evals/stdlib /work/evals/sklearn /work/evals/sympy

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from _kit import load_jsonl, score
from _results import write_result

FIRST_VERSION = dict(field_weights=(3.0, 1.0, 1.0), fusion="rrf", one_part_per_symbol=False, kind_weights=(),
                     candidates=100, head_vectors=False, role_weights=(), skipped_roles=())


def configs():
    from codesift.search.searcher import DEFAULT_CONFIG as shipped

    return {
        "shipped": shipped,
        "- head vectors (text vector only)": replace(shipped, head_vectors=False),
        "- deep candidate lists (100 instead of 1000)": replace(shipped, candidates=100),
        "- one part per symbol": replace(shipped, one_part_per_symbol=False),
        "- definition prior (kind weights)": replace(shipped, kind_weights=()),
        "- file role prior (role weights, lock files and bundles kept)": replace(shipped, role_weights=(),
                                                                                skipped_roles=()),
        "- normalized fusion (RRF k=60)": replace(shipped, fusion="rrf"),
        "- field weights (3, 1, 1)": replace(shipped, field_weights=(3.0, 1.0, 1.0)),
        "- field weights (1, 1, 1)": replace(shipped, field_weights=(1.0, 1.0, 1.0)),
        "first version (all of the above off)": replace(shipped, **FIRST_VERSION),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dirs", type=Path, nargs="+")
    args = ap.parse_args()

    from codesift.search.searcher import Searcher

    table: dict = {}
    for d in args.eval_dirs:
        targets = load_jsonl(d / "queries.jsonl")
        queries = [t["query"] for t in targets]
        qvecs = None
        for name, cfg in configs().items():
            s = Searcher(d / "corpus" / ".codesift", config=cfg)
            if qvecs is None:
                qvecs = s.encode_queries(queries)
            row = {}
            for mode in ("hybrid", "bm25", "semantic"):
                res = {q: [r.to_dict() for r in s.search(q, mode, 10, qvec=v)] for q, v in zip(queries, qvecs)}
                row[mode] = score(targets, res)["mrr@10"]
            s.close()
            table.setdefault(name, {})[d.name] = row
            print(f"{d.name:8} {name:36} hybrid {row['hybrid']:.4f}  bm25 {row['bm25']:.4f}  "
                  f"semantic {row['semantic']:.4f}", flush=True)
    print(json.dumps(table))
    write_result("ablation", table)


if __name__ == "__main__":
    main()
