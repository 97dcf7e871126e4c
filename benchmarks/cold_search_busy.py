#!/usr/bin/env python3
"""Cold `codesift search` while other processes keep every core busy: BLAS threads capped or not.

Each search is a fresh process (cold: imports, model map, query encoding, vector scan). With
`--busy N`, N spinning processes (default: one per core) compete for the cores throughout.
The "threads" setting runs with OPENBLAS_NUM_THREADS/OMP_NUM_THREADS set to the core count,
as before the CLI capped them; "capped" leaves the CLI's own setting (one thread for search).

  python benchmarks/cold_search_busy.py --index-dir IDX --runs 15
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _results import write_result

SPIN = "while True: pass"


def cold_searches(args, env: dict) -> list[float]:
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "codesift.cli", "search", args.query, "--index-dir", args.index_dir,
                        "-k", "5"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--query", default="parse the patterns of an ignore file")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="spinning processes")
    args = ap.parse_args()

    base = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    cores = str(os.cpu_count() or 2)
    settings = {"threads": {**base, "OPENBLAS_NUM_THREADS": cores, "OMP_NUM_THREADS": cores}, "capped": base}
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    result = {"runs": args.runs, "busy_processes": args.busy, "cpu_count": os.cpu_count(), "query": args.query}
    try:
        for name, env in settings.items():
            times = cold_searches(args, env)
            result[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                            "times_s": times}
            print(f"{name}: median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})")
    finally:
        for p in spinners:
            p.kill()
    write_result("cold_search_busy", result)


if __name__ == "__main__":
    main()
