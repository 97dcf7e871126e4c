#!/usr/bin/env python3
"""Tokens an agent reads: the whole MCP `search` response versus reading the files that hold the answers.

For each of the first N queries of an eval set (queries.jsonl: id, query, path, start_line,
end_line), with the budget given:

- before: the content alone, as first counted (the budgeted content of each result, at codesift's
  own estimate of about 4 characters a token): what a budget over content let through;
- after: the whole response as the MCP server sends it (serve/mcp_server.py `_call`): the text of
  the compact text format, and the JSON format's text, each counted as an agent's context counts
  it (budget.response_tokens: 3 characters a token); and the whole tool result as serialised on
  the wire (the JSON format carries its object twice: as text and as structured content);
- the whole target file, at both rates;
- whether the answer's lines were inside the content the text response carried (all: "yes",
  some: "part", none: "no"), and the rank of the first result overlapping them.

  python benchmarks/agent_tokens.py --eval /tmp/evals/stdlib -n 20 --max-tokens 2000

The index must be complete (`codesift status` in the corpus says state complete). The last
line printed is one JSON object with the totals.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from codesift.chunk.model import estimate_tokens
from codesift.search.budget import budgeted, content_lines, fit_response, response_tokens
from codesift.search.views import result_notes, search_text
from codesift.serve.mcp_server import _call
from codesift.serve.workspace import Workspace
from codesift.walk import read_text

from _results import write_result


def received_lines(chunk, content: str, shown: str) -> set[int]:
    """The file lines whose text an agent actually received for one result."""
    if shown == "all":
        return set(range(chunk.start_line, chunk.end_line + 1))
    if shown == "partial":
        n = len(content_lines(content)) - 1  # minus the marker line
        return set(range(chunk.start_line, chunk.start_line + n))
    return set()


def sent(ws: Workspace, **args) -> tuple[str, str]:
    """(the text an agent reads, the tool result as serialised on the wire) for one search call."""
    result = _call(ws.search, **args)
    text = "".join(block.text for block in result.content)
    return text, result.model_dump_json(by_alias=True, exclude_none=True)


def measure(ws: Workspace, corpus: Path, q: dict, max_tokens: int, k: int, mode: str) -> dict:
    searcher = ws.searcher()
    results = searcher.search(q["query"], mode=mode, k=k)
    before = sum(b.tokens for b in budgeted(results, max_tokens))  # content only, as first counted

    args = dict(query=q["query"], mode=mode, k=k, max_tokens=max_tokens)
    text, text_wire = sent(ws, **args, format="text")
    json_text, json_wire = sent(ws, **args, format="json")
    # which lines the text response carried: the same fitting the workspace does
    note, fresh = result_notes(searcher, results), searcher.freshness()
    fitted, rendered = fit_response(results, max_tokens, lambda kept, left: search_text(
        q["query"], mode, kept, left, note, fresh))
    assert rendered == text, "the fitting here differs from the workspace's"
    received: set[int] = set()
    for f in fitted:
        if f.result.chunk.path == q["path"]:
            received |= received_lines(f.result.chunk, f.content, f.shown)
    answer = set(range(q["start_line"], q["end_line"] + 1))
    covered = len(answer & received)
    rank = next((i + 1 for i, f in enumerate(fitted) if f.result.chunk.path == q["path"]
                 and f.result.chunk.start_line <= q["end_line"] and f.result.chunk.end_line >= q["start_line"]), None)
    file_text = read_text(corpus / q["path"])[0]
    return {"id": q["id"], "query": q["query"], "path": q["path"],
            "file_tokens": estimate_tokens(file_text), "file_tokens_agent": response_tokens(file_text),
            "content_tokens": before, "text_response_tokens": response_tokens(text),
            "text_wire_tokens": response_tokens(text_wire), "json_response_tokens": response_tokens(json_text),
            "json_wire_tokens": response_tokens(json_wire), "results": len(fitted),
            "answer": "yes" if covered == len(answer) else "part" if covered else "no", "rank": rank}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", type=Path, default=Path("/tmp/evals/stdlib"), help="folder with corpus/ and queries.jsonl")
    ap.add_argument("--index-dir", type=Path, default=None, help="default: EVAL/corpus/.codesift")
    ap.add_argument("-n", type=int, default=20, help="first N queries")
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "bm25", "semantic"])
    args = ap.parse_args()

    corpus = args.eval / "corpus"
    ws = Workspace(corpus, args.index_dir or corpus / ".codesift")
    if ws.searcher().incomplete:
        raise SystemExit("the index is incomplete; wait for `codesift status` to say state complete")
    with open(args.eval / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line) for line, _ in zip(f, range(args.n))]
    rows = [measure(ws, corpus, q, args.max_tokens, args.k, args.mode) for q in queries]

    print(f"{'id':>4}  {'file':>7}  {'content':>7}  {'text':>6}  {'json':>6}  {'wire':>6}  {'answer':>6}  {'rank':>4}  "
          "target / query")
    for r in rows:
        print(f"{r['id']:>4}  {r['file_tokens_agent']:>7}  {r['content_tokens']:>7}  {r['text_response_tokens']:>6}  "
              f"{r['json_response_tokens']:>6}  {r['json_wire_tokens']:>6}  {r['answer']:>6}  {r['rank'] or '-':>4}  "
              f"{r['path']}: {r['query'][:50]}")

    def total(key: str) -> int:
        return sum(r[key] for r in rows)

    found = sum(r["answer"] == "yes" for r in rows)
    summary = {"eval": str(args.eval), "queries": len(rows), "mode": args.mode, "k": args.k,
               "max_tokens": args.max_tokens,
               "file_tokens": total("file_tokens"), "file_tokens_agent": total("file_tokens_agent"),
               "content_tokens": total("content_tokens"),
               "text_response_tokens": total("text_response_tokens"), "text_wire_tokens": total("text_wire_tokens"),
               "json_response_tokens": total("json_response_tokens"), "json_wire_tokens": total("json_wire_tokens"),
               "answer_inside": found, "answer_partly_inside": sum(r["answer"] == "part" for r in rows),
               "answer_in_results": sum(r["rank"] is not None for r in rows),
               "over_budget": sum(r["text_response_tokens"] > args.max_tokens
                                  or r["json_response_tokens"] > args.max_tokens for r in rows)}
    if found:
        summary["text_tokens_per_answer_found"] = round(summary["text_response_tokens"] / found, 1)
        summary["file_tokens_per_answer_found"] = round(summary["file_tokens_agent"] / found, 1)
    print(f"total: whole files {summary['file_tokens_agent']} tokens; search content {summary['content_tokens']} "
          f"(before: content only), whole text response {summary['text_response_tokens']}, whole JSON response "
          f"{summary['json_response_tokens']} ({summary['json_wire_tokens']} on the wire); answer inside the text "
          f"response for {found}/{len(rows)} (partly {summary['answer_partly_inside']})")
    print(json.dumps(summary))
    write_result("agent_tokens", {**summary, "rows": rows})


if __name__ == "__main__":
    main()
