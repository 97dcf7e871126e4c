"""Score code-search results against an eval set made by generate.py.

A result is a hit when it names the target's file and its line span overlaps the target function
by at least half of the smaller of the two spans (a 300-line class that happens to contain a
5-line target is not an answer, nor is a 1-line result grazing a target's last line). A result
longer than MAX_RESULT_LINES lines never counts: an answer that large is no answer for a person
or an agent reading it. Per query: the reciprocal rank of the first hit in the top k (MRR@k),
whether there is a hit at rank 1 (recall@1) or in the top k (recall@k); over all results shown,
their mean length in lines.

  python -m benchmarks.evalkit.score QUERIES.jsonl RESULTS.jsonl [-k 10]

RESULTS.jsonl holds one line per query, {"query": ..., "results": [{"path", "start_line",
"end_line", ...}, ...]} in rank order (what `codesift search --jsonl` prints); lines are matched
to queries by their "query" text. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

MAX_RESULT_LINES = 150
K = 10


def span_lines(item: Mapping) -> int:
    """Lines in an item's inclusive [start_line, end_line] span."""
    return int(item["end_line"]) - int(item["start_line"]) + 1


def is_hit(result: Mapping, target: Mapping, max_result_lines: int = MAX_RESULT_LINES) -> bool:
    """Does `result` answer `target`: same path, not too long, overlapping at least half the smaller span."""
    if result.get("path") != target["path"]:
        return False
    if span_lines(result) > max_result_lines:
        return False
    overlap = min(int(result["end_line"]), int(target["end_line"])) - max(int(result["start_line"]),
                                                                          int(target["start_line"])) + 1
    return overlap > 0 and 2 * overlap >= min(span_lines(result), span_lines(target))


def first_hit(results: Sequence[Mapping], target: Mapping, k: int = K) -> int | None:
    """1-based rank of the first hit among the top k results, or None."""
    return next((rank for rank, r in enumerate(results[:k], 1) if is_hit(r, target)), None)


def score(targets: Sequence[Mapping], results: Mapping[str, Sequence[Mapping]], k: int = K) -> dict:
    """MRR@k, recall@1, recall@k and mean result lines of `results` (query text -> ranked results).

    A target whose query has no entry in `results` counts as answered by nothing ("missing").
    """
    if not targets:
        raise ValueError("no queries to score")
    reciprocal, at_1, at_k, missing = 0.0, 0, 0, 0
    shown: list[int] = []
    for t in targets:
        got = results.get(t["query"])
        if got is None:
            missing += 1
            got = []
        shown.extend(span_lines(r) for r in got[:k])
        rank = first_hit(got, t, k)
        if rank is not None:
            reciprocal += 1.0 / rank
            at_k += 1
            at_1 += rank == 1
    n = len(targets)
    return {
        "queries": n,
        "missing": missing,
        f"mrr@{k}": round(reciprocal / n, 4),
        "recall@1": round(at_1 / n, 4),
        f"recall@{k}": round(at_k / n, 4),
        "mean_result_lines": round(sum(shown) / max(1, len(shown)), 1),
    }


def load_jsonl(path: str | Path) -> list[dict]:
    """The JSON objects of a JSONL file, blank lines skipped."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def results_by_query(records: Iterable[Mapping]) -> dict[str, list]:
    """{"query", "results"} records (a results JSONL) as query text -> ranked results."""
    return {r["query"]: list(r["results"]) for r in records}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evalkit.score", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queries", type=Path, help="queries.jsonl of an eval set")
    ap.add_argument("results", type=Path, help="one {query, results} line per query")
    ap.add_argument("-k", type=int, default=K)
    args = ap.parse_args(argv)
    print(json.dumps(score(load_jsonl(args.queries), results_by_query(load_jsonl(args.results)), k=args.k)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
