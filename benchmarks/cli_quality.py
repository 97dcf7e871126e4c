#!/usr/bin/env python3
"""Search quality through the CLI, as a user runs it: index an eval set's corpus, search its queries.

Inside EVAL_DIR/corpus (from `python -m benchmarks.evalkit.generate SRC EVAL_DIR`) it runs
  codesift index . [EXTRA]                                      (timed; left out with --no-index)
  codesift search --jsonl -k 10 [--mode M] [EXTRA] < queries    (timed, one query a line)
and scores the printed results with benchmarks/evalkit/score.py. quality.py gives the same scores
in-process; this one also covers the CLI's own path (argument parsing, JSON output).

  python benchmarks/cli_quality.py EVAL_DIR [--mode hybrid] [--extra "--device cpu"] [--no-index]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from _kit import load_jsonl, score
from _results import write_result


def codesift_command() -> list[str]:
    """The installed entry point beside this interpreter, as users run it; else the module."""
    entry = Path(sys.executable).parent / "codesift"
    return [str(entry)] if entry.exists() else [sys.executable, "-m", "codesift.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--mode", default=None, help="hybrid, bm25 or semantic (default: the CLI's)")
    ap.add_argument("--extra", default="", help="more options for both commands, e.g. \"--device cpu\"")
    ap.add_argument("--no-index", action="store_true", help="search the index already there")
    args = ap.parse_args()

    corpus = args.eval_dir / "corpus"
    targets = load_jsonl(args.eval_dir / "queries.jsonl")
    cli, extra = codesift_command(), shlex.split(args.extra)
    index_s = None
    if not args.no_index:
        t0 = time.perf_counter()
        subprocess.run(cli + ["index", ".", "-q"] + extra, cwd=corpus, check=True, stdout=subprocess.DEVNULL)
        index_s = round(time.perf_counter() - t0, 2)
    cmd = cli + ["search", "--jsonl", "-k", "10"] + (["--mode", args.mode] if args.mode else []) + extra
    stdin = "".join(t["query"].replace("\n", " ") + "\n" for t in targets)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=corpus, input=stdin, capture_output=True, text=True, check=True)
    search_s = round(time.perf_counter() - t0, 2)
    results = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            rec = json.loads(line)
            results[rec["query"]] = rec["results"]
    out = {"benchmark": "cli_quality", "eval": args.eval_dir.name, "mode": args.mode or "default",
           "index_s": index_s, "search_s": search_s, **score(targets, results)}
    print(f"{args.eval_dir.name} {out['mode']}: MRR@10 {out['mrr@10']:.4f}  R@1 {out['recall@1']:.3f}  "
          f"R@10 {out['recall@10']:.3f}  lines {out['mean_result_lines']}  (index {index_s} s, search {search_s} s)")
    print(json.dumps(out))
    write_result("cli_quality", out)


if __name__ == "__main__":
    main()
