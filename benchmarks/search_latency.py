#!/usr/bin/env python3
"""Cold CLI search latency: `codesift search` as a fresh process, against an index already built.

Each run is a new process, as when a user or an agent types the command. The peer in the same
run is the cold path a sentence-transformers user would have: a fresh process that loads
SentenceTransformer and encodes the query (the vector search itself not even counted).

  python benchmarks/search_latency.py INDEXED_ROOT [--runs 10] [--mode hybrid]

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


def time_cmd(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="a folder indexed with `codesift index`")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--peer-runs", type=int, default=3)
    args = ap.parse_args()
    codesift = [sys.executable, "-m", "codesift.cli"]
    env_cli = Path(sys.executable).parent / "codesift"
    if env_cli.exists():
        codesift = [str(env_cli)]  # the installed entry point, as users run it

    time_cmd(codesift + ["search", QUERIES[0], "--mode", args.mode], args.root)  # page cache warm, as in daily use
    times = [time_cmd(codesift + ["search", QUERIES[i % len(QUERIES)], "--mode", args.mode], args.root)
             for i in range(args.runs)]
    peer = [time_cmd([sys.executable, "-c", ST_PEER, QUERIES[i % len(QUERIES)]], args.root)
            for i in range(args.peer_runs)]
    result = {"benchmark": "search_latency", "mode": args.mode, "runs": args.runs,
              "median_s": round(statistics.median(times), 3), "p90_s": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
              "min_s": round(min(times), 3), "max_s": round(max(times), 3),
              "st_cold_query_median_s": round(statistics.median(peer), 3),
              "ratio_st_over_codesift": round(statistics.median(peer) / statistics.median(times), 1),
              "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    print(f"codesift search median {result['median_s']} s (p90 {result['p90_s']}) | "
          f"cold sentence-transformers query {result['st_cold_query_median_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
