#!/usr/bin/env python3
"""Cold `codesift search` while other processes keep every core busy: BLAS threads capped or not.

Each search is a fresh process (cold: imports, model map, query encoding, vector scan). With
`--busy N`, N spinning processes (default: one per core) compete for the cores throughout.
The "threads" setting runs with OPENBLAS_NUM_THREADS/OMP_NUM_THREADS set to the core count,
as before the CLI capped them; "capped" leaves the CLI's own setting (one thread for search);
with --base-checkout, "base" is "capped" with another checkout's codesift (before and after a
change). The settings take turns, one search each, so that the machine's drift hits all alike;
each search's CPU time (user + system) is logged with its wall time, and the load average.

  python benchmarks/cold_search_busy.py --index-dir IDX --runs 15 [--base-checkout DIR]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _kit import CODESIFT, user_env
from _results import write_result

SPIN = "while True: pass"
NEUTRAL_CWD = tempfile.gettempdir()


def cold_search(args, env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one `codesift search` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # run from a folder without a codesift package: `python -c` puts the working folder first on
    # sys.path, ahead of PYTHONPATH, so from a checkout's root the base would import this checkout
    subprocess.run([*CODESIFT, "search", args.query, "--index-dir", str(Path(args.index_dir).resolve()),
                    "-k", "5"], env=user_env(env), check=True, capture_output=True, cwd=NEUTRAL_CWD)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--query", default="parse the patterns of an ignore file")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="spinning processes")
    ap.add_argument("--base-checkout", default=None, help="also searches with this checkout's codesift")
    args = ap.parse_args()

    base = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    cores = str(os.cpu_count() or 2)
    settings = {"threads": {**base, "OPENBLAS_NUM_THREADS": cores, "OMP_NUM_THREADS": cores}, "capped": base}
    if args.base_checkout:
        settings["base"] = {**base, "PYTHONPATH": str(Path(args.base_checkout).resolve())}
    result = {"runs": args.runs, "busy_processes": args.busy, "cpu_count": os.cpu_count(), "query": args.query,
              "base_checkout": args.base_checkout, "load_avg_1m_before": os.getloadavg()[0]}
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    walls: dict[str, list[float]] = {name: [] for name in settings}
    cpus: dict[str, list[float]] = {name: [] for name in settings}
    loads = []
    try:
        for _ in range(args.runs):
            for name, env in settings.items():
                wall, cpu = cold_search(args, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
            loads.append(os.getloadavg()[0])
    finally:
        for p in spinners:
            p.kill()
    result["load_avg_1m"] = loads
    for name in settings:
        times = walls[name]
        result[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                        "times_s": times, "cpu_median_s": statistics.median(cpus[name]), "cpu_s": cpus[name]}
        print(f"{name}: median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f}), "
              f"CPU median {statistics.median(cpus[name]):.3f} s")
    write_result("cold_search_busy", result)


if __name__ == "__main__":
    main()
