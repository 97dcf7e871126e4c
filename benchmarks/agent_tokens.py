#!/usr/bin/env python3
"""Tokens an agent reads per answer found: the whole MCP `search` response, before and after.

Each side is a real `codesift mcp` server (stdio) spoken to with the official MCP SDK's client,
exactly as an agent's host would: the response counted is everything the tool call returns.

- before: an older codesift (`--before COMMIT`, by default the commit before issue 15's work),
  run from its own copy (`git archive`) and with its own index built by it: JSON with content budgeted alone (`max_tokens` covered
  the content, not the response), a 64-character id, nulls and empty results, the object sent
  twice (text and structured content);
- after: this codesift, default compact text (budget over the whole response), and its JSON
  format (`format=json`, sent once).

Per response: the text blocks an agent's context receives and the whole tool result as
serialised on the wire, each at `budget.response_tokens` (3 characters a token: generous, since
the agent's tokenizer is not ours); whether the target's lines were inside the content sent
(all: found; some: part); tokens per answer found = all tokens of all responses / answers found.

The queries: an eval-kit set (`--eval`: corpus/ and queries.jsonl), or with `--subset` only the
queries whose targets lie in the named top-level packages or modules, over a corpus of those
alone (a CPU build of the whole stdlib index takes too long on a small machine).

  python benchmarks/agent_tokens.py --eval /tmp/evals/stdlib --subset email logging http \\
      --work /tmp/agent_tokens --max-tokens 2000 -k 10

Each side's index is built (or brought up to date) by its own code: before in WORK, after in
the corpus's .codesift (where the other benchmarks look for it). The last line printed is
one JSON object; the log goes through benchmarks/_results.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from _kit import ROOT, checkout
from _results import write_result

from codesift.search.budget import response_tokens

BEFORE_ISSUE_15 = "c20bd58"  # main just before the first merge of issue 15's work (3da4445)
_HEAD = re.compile(r"\[(\d+)\] ([0-9a-f]{12}) (.+?):(\d+)-(\d+) ")
_MARKER = re.compile(r"… \[truncated: (\d+) of (\d+) lines; get_chunk [0-9a-f]+ for the rest\]")


def make_subset(eval_dir: Path, names: list[str], work: Path) -> Path:
    """WORK/subset: the corpus files under `names` (top-level folders or modules) and their queries."""
    out = work / "subset"
    if (out / "queries.jsonl").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    for name in names:
        src = eval_dir / "corpus" / name
        if src.is_dir():
            shutil.copytree(src, out / "corpus" / name)
        else:
            (out / "corpus").mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / "corpus" / name)
    with open(eval_dir / "queries.jsonl", encoding="utf-8") as f, \
            open(out / "queries.jsonl", "w", encoding="utf-8") as w:
        for line in f:
            if json.loads(line)["path"].split("/")[0] in names:
                w.write(line)
    return out


def server_command(code: Path, index_dir: Path) -> tuple[list[str], dict, Path]:
    """(argv, env, cwd) of `codesift mcp` run from the checkout `code` (python -m puts cwd first)."""
    env = {**os.environ, "PYTHONPATH": str(code), "CODESIFT_DEVICE": "cpu"}
    return [sys.executable, "-m", "codesift.cli", "mcp", "--index-dir", str(index_dir)], env, code


def ensure_index(code: Path, corpus: Path, index_dir: Path) -> None:
    """Build or bring up to date `corpus`'s index in `index_dir` with the codesift in `code`."""
    argv, env, cwd = server_command(code, index_dir)
    subprocess.run([sys.executable, "-m", "codesift.cli", "index", str(corpus), "--index-dir", str(index_dir),
                    "--device", "cpu", "-q"], env=env, cwd=cwd, check=True)


@asynccontextmanager
async def mcp_session(code: Path, index_dir: Path, errlog):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    argv, env, cwd = server_command(code, index_dir)
    params = StdioServerParameters(command=argv[0], args=argv[1:], cwd=str(cwd), env=env)
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def received_from_json(doc: dict) -> list[tuple[str, int, int, int]]:
    """(path, start_line, end_line, lines of content received) per result of a JSON response."""
    out = []
    for r in doc.get("results", []):
        content, shown = r.get("content") or "", r.get("shown", "all" if r.get("content") else "none")
        n = received_count(content, shown)
        out.append((r["path"], r["start_line"], r["end_line"], n))
    return out


def received_count(content: str, shown: str) -> int:
    if shown == "none" or not content:
        return 0
    m = _MARKER.search(content)
    if shown == "partial" or m:
        return int(m.group(1)) if m else 0
    return 10**9  # all of it


def received_from_text(text: str) -> list[tuple[str, int, int, int]]:
    """The same from the compact text: head lines `[N] ref path:A-B ...` in rank order, each
    followed by its content (cut content ends with the truncation marker)."""
    lines = text.split("\n")
    heads = []  # (line index, match) of head N, N = 1, 2, ... in order
    for i, line in enumerate(lines):
        m = _HEAD.match(line)
        if m and int(m.group(1)) == len(heads) + 1:
            heads.append((i, m))
    out = []
    for j, (i, m) in enumerate(heads):
        body = "\n".join(lines[i + 1:heads[j + 1][0] if j + 1 < len(heads) else len(lines)])
        shown = "none" if lines[i].endswith("[no content]") else "partial" if _MARKER.search(body) else "all"
        out.append((m.group(3), int(m.group(4)), int(m.group(5)), received_count(body, shown)))
    return out


def answer(received: list[tuple[str, int, int, int]], target: dict) -> tuple[str, int | None]:
    """("yes" | "part" | "no", rank of the first result overlapping the target) for one response."""
    want = set(range(target["start_line"], target["end_line"] + 1))
    got: set[int] = set()
    rank = None
    for i, (path, start, end, n) in enumerate(received, 1):
        if path != target["path"]:
            continue
        if rank is None and start <= target["end_line"] and end >= target["start_line"]:
            rank = i
        got |= set(range(start, min(end, start + n - 1) + 1))
    covered = len(want & got)
    return ("yes" if covered == len(want) else "part" if covered else "no"), rank


async def measure_side(name: str, code: Path, index_dir: Path, queries: list[dict], calls: dict,
                       errlog) -> list[dict]:
    """One row per query: tokens of each format's whole response, and whether its answer was sent."""
    rows = []
    async with mcp_session(code, index_dir, errlog) as session:
        for q in queries:
            row = {}
            for fmt, args in calls.items():
                result = await session.call_tool("search", {"query": q["query"], **args})
                if result.is_error:
                    raise SystemExit(f"{name} {fmt}: {result.content[0].text}")
                text = "".join(getattr(b, "text", "") for b in result.content)
                wire = result.model_dump_json(by_alias=True, exclude_none=True)
                is_json = text.startswith("{")  # an old server answers JSON whatever it is asked
                received = received_from_json(json.loads(text)) if is_json else received_from_text(text)
                found, rank = answer(received, q)
                row[fmt] = {"text_tokens": response_tokens(text), "wire_tokens": response_tokens(wire),
                            "structured": result.structured_content is not None, "results": len(received),
                            "answer": found, "rank": rank}
            rows.append(row)
    return rows


def totals(rows: list[dict], fmt: str) -> dict:
    col = [r[fmt] for r in rows]
    found = sum(c["answer"] == "yes" for c in col)
    text, wire = sum(c["text_tokens"] for c in col), sum(c["wire_tokens"] for c in col)
    out = {"queries": len(col), "text_tokens": text, "wire_tokens": wire,
           "answer_inside": found, "answer_partly_inside": sum(c["answer"] == "part" for c in col),
           "answer_in_results": sum(c["rank"] is not None for c in col),
           "sent_twice": sum(c["structured"] for c in col)}
    if found:
        out["text_tokens_per_answer_found"] = round(text / found, 1)
        out["wire_tokens_per_answer_found"] = round(wire / found, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", type=Path, required=True, help="eval-kit folder: corpus/ and queries.jsonl")
    ap.add_argument("--subset", nargs="*", default=None, help="top-level packages or modules to keep")
    ap.add_argument("--work", type=Path, required=True, help="subset corpus and the two indexes")
    ap.add_argument("--before", default=BEFORE_ISSUE_15, help="the older codesift's commit")
    ap.add_argument("-n", type=int, default=None, help="first N queries")
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    eval_dir = make_subset(args.eval, args.subset, args.work) if args.subset else args.eval
    corpus = eval_dir / "corpus"
    with open(eval_dir / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line) for line in f][:args.n]
    old_code = checkout(args.before, args.work)
    before_index, after_index = args.work / f"index-{old_code.name[5:]}", corpus / ".codesift"
    ensure_index(old_code, corpus, before_index)
    ensure_index(ROOT, corpus, after_index)

    common = {"k": args.k, "max_tokens": args.max_tokens}

    async def run() -> tuple[list[dict], list[dict]]:
        with open(args.work / "servers.log", "w") as errlog:
            before = await measure_side("before", old_code, before_index, queries,
                                        {"json": common}, errlog)
            after = await measure_side("after", ROOT, after_index, queries,
                                       {"text": common, "json": {**common, "format": "json"}}, errlog)
        return before, after

    before, after = anyio.run(run)
    summary = {"eval": str(args.eval), "subset": args.subset, "queries": len(queries), "k": args.k,
               "max_tokens": args.max_tokens, "before_code": old_code.name[5:],
               "before_json": totals(before, "json"), "after_text": totals(after, "text"),
               "after_json": totals(after, "json")}
    for label in ("before_json", "after_text", "after_json"):
        t = summary[label]
        print(f"{label:12} text {t['text_tokens']:>8} tokens, wire {t['wire_tokens']:>8}; answer inside "
              f"{t['answer_inside']}/{t['queries']} (partly {t['answer_partly_inside']}, in results "
              f"{t['answer_in_results']}); per answer found: text {t.get('text_tokens_per_answer_found')}, "
              f"wire {t.get('wire_tokens_per_answer_found')}")
    print(json.dumps(summary))
    rows = [{"id": q["id"], "path": q["path"], "query": q["query"], "before_json": b["json"],
             "after_text": a["text"], "after_json": a["json"]} for q, b, a in zip(queries, before, after)]
    write_result("agent_tokens", {**summary, "rows": rows})


if __name__ == "__main__":
    main()
