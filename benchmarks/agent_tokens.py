#!/usr/bin/env python3
"""Tokens an agent reads: `search` with a token budget versus reading the files that hold the answers.

For each of the first N queries of an eval set (queries.jsonl: query, path, start_line, end_line),
run a hybrid search with the budget (as the MCP `search` tool does) and count the tokens of the
content returned; count the tokens of the whole target file; and check whether the answer's
lines were inside the returned content (all of them: "yes"; some: "part"; none: "no").
Tokens are codesift's estimate (about 4 characters per token) on both sides.

  python benchmarks/agent_tokens.py --eval /work/evals/stdlib -n 20 --max-tokens 2000

The index must be complete (`codesift status` in the corpus says state complete). The last
line printed is one JSON object with the totals.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from codesift.chunk.model import estimate_tokens
from codesift.search.budget import BudgetedResult, budgeted, content_lines
from codesift.search.searcher import Searcher
from codesift.walk import read_text

from _results import write_result


def shown_lines(item: BudgetedResult) -> set[int]:
    """The file lines whose text an agent actually received for one result."""
    c = item.result.chunk
    if item.shown == "all":
        return set(range(c.start_line, c.end_line + 1))
    if item.shown == "partial":
        n = len(content_lines(item.content)) - 1  # minus the marker line
        return set(range(c.start_line, c.start_line + n))
    return set()


def measure(searcher: Searcher, corpus: Path, q: dict, max_tokens: int, k: int, mode: str) -> dict:
    items = budgeted(searcher.search(q["query"], mode=mode, k=k), max_tokens)
    received: set[int] = set()
    for item in items:
        if item.result.chunk.path == q["path"]:
            received |= shown_lines(item)
    answer = set(range(q["start_line"], q["end_line"] + 1))
    covered = len(answer & received)
    rank = next((i + 1 for i, it in enumerate(items) if it.result.chunk.path == q["path"]
                 and it.result.chunk.start_line <= q["end_line"] and it.result.chunk.end_line >= q["start_line"]), None)
    return {"id": q["id"], "query": q["query"], "path": q["path"],
            "file_tokens": estimate_tokens(read_text(corpus / q["path"])[0]),
            "search_tokens": sum(it.tokens for it in items),
            "answer": "yes" if covered == len(answer) else "part" if covered else "no", "rank": rank}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", type=Path, default=Path("/work/evals/stdlib"), help="folder with corpus/ and queries.jsonl")
    ap.add_argument("--index-dir", type=Path, default=None, help="default: EVAL/corpus/.codesift")
    ap.add_argument("-n", type=int, default=20, help="first N queries")
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "bm25", "semantic"])
    args = ap.parse_args()

    corpus = args.eval / "corpus"
    searcher = Searcher(args.index_dir or corpus / ".codesift")
    if searcher.incomplete:
        raise SystemExit("the index is incomplete; wait for `codesift status` to say state complete")
    with open(args.eval / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line) for line, _ in zip(f, range(args.n))]
    rows = [measure(searcher, corpus, q, args.max_tokens, args.k, args.mode) for q in queries]

    print(f"{'id':>4}  {'file tok':>8}  {'search tok':>10}  {'answer':>6}  {'rank':>4}  target / query")
    for r in rows:
        print(f"{r['id']:>4}  {r['file_tokens']:>8}  {r['search_tokens']:>10}  {r['answer']:>6}  "
              f"{r['rank'] or '-':>4}  {r['path']}: {r['query'][:60]}")
    file_total, search_total = sum(r["file_tokens"] for r in rows), sum(r["search_tokens"] for r in rows)
    summary = {"eval": str(args.eval), "queries": len(rows), "mode": args.mode, "k": args.k,
               "max_tokens": args.max_tokens, "file_tokens": file_total, "search_tokens": search_total,
               "ratio_file_over_search": round(file_total / max(search_total, 1), 2),
               "answer_inside": sum(r["answer"] == "yes" for r in rows),
               "answer_partly_inside": sum(r["answer"] == "part" for r in rows),
               "answer_in_top_k_metadata": sum(r["rank"] is not None for r in rows)}
    print(f"total: whole files {file_total} tokens, search {search_total} tokens "
          f"({summary['ratio_file_over_search']}x fewer); answer inside the content for "
          f"{summary['answer_inside']}/{len(rows)} (partly {summary['answer_partly_inside']})")
    print(json.dumps(summary))
    write_result("agent_tokens", {**summary, "rows": rows})


if __name__ == "__main__":
    main()
