#!/usr/bin/env python3
"""Cold CLI search latency: `codesift search` as a fresh process, against an index already built.

Each run is a new process, as when a user or an agent types the command. The peer in the same
run is the cold path a sentence-transformers user would have: a fresh process that loads
SentenceTransformer and encodes the query (the vector search itself not even counted).

  python benchmarks/search_latency.py INDEXED_ROOT [--runs 10] [--mode hybrid]

A/B against another codesift (e.g. a checkout of an earlier commit, with its own index), runs
interleaved so that the machine's drift hits both alike:

  python benchmarks/search_latency.py INDEXED_ROOT --against-code OLD_CHECKOUT --against-root OLD_INDEXED_ROOT

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _results import write_result

QUERIES = [
    "Return the number of seconds since the epoch",
    "parse a configuration file into sections",
    "compute the greatest common divisor",
    "send an email message over SMTP",
    "decode base64 encoded data",
]

ST_PEER = """
import sys
from sentence_transformers import SentenceTransformer
from codesift.embed.model_files import resolve_model
m = SentenceTransformer(str(resolve_model().root), device="cpu")
m.encode([sys.argv[1]])
"""


def time_cmd(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a folder indexed with `codesift index`")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--peer-runs", type=int, default=3)
    ap.add_argument("--against-code", type=Path, help="another codesift source tree (put first on PYTHONPATH)")
    ap.add_argument("--against-root", type=Path, help="a folder indexed by that codesift")
    args = ap.parse_args()
    codesift = [sys.executable, "-m", "codesift.cli"]
    env_cli = Path(sys.executable).parent / "codesift"
    if env_cli.exists():
        codesift = [str(env_cli)]  # the installed entry point, as users run it

    time_cmd(codesift + ["search", QUERIES[0], "--mode", args.mode], args.root)  # page cache warm, as in daily use
    times, other = [], []
    other_env = dict(os.environ, PYTHONPATH=str(args.against_code)) if args.against_code else None
    for i in range(args.runs):
        cmd = codesift + ["search", QUERIES[i % len(QUERIES)], "--mode", args.mode]
        times.append(time_cmd(cmd, args.root))
        if other_env:
            other.append(time_cmd(cmd, args.against_root or args.root, other_env))
    peer = [time_cmd([sys.executable, "-c", ST_PEER, QUERIES[i % len(QUERIES)]], args.root)
            for i in range(args.peer_runs)]
    result = {"benchmark": "search_latency", "mode": args.mode, "runs": args.runs,
              "median_s": round(statistics.median(times), 3), "p90_s": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
              "min_s": round(min(times), 3), "max_s": round(max(times), 3),
              "st_cold_query_median_s": round(statistics.median(peer), 3),
              "ratio_st_over_codesift": round(statistics.median(peer) / statistics.median(times), 1),
              "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    if other:
        result.update(against_median_s=round(statistics.median(other), 3),
                      against_p90_s=round(sorted(other)[int(0.9 * (len(other) - 1))], 3))
    print(f"codesift search median {result['median_s']} s (p90 {result['p90_s']}) | "
          f"cold sentence-transformers query {result['st_cold_query_median_s']} s"
          + (f" | against {result['against_median_s']} s (p90 {result['against_p90_s']})" if other else ""))
    print(json.dumps(result))
    write_result("search_latency", result)


if __name__ == "__main__":
    main()
