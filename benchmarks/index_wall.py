#!/usr/bin/env python3
"""Wall time of `codesift index` on a whole tree: a cold process, and a warm one.

cold: a fresh `codesift index ROOT --rebuild` process (imports, model load, worker start-up included).
warm: in one process that has already indexed once (model loaded, worker pool started), the
      time of a second full `index_tree(..., rebuild=True)`.

  python benchmarks/index_wall.py ROOT [--device cuda] [--model PATH]

With --dtypes, only cold runs, one per dtype in turn for --rounds rounds (so that a shared
machine's load hits all alike), each with its wall time, its CPU time (user + system, the
index process and its children) and the load average before it:

  python benchmarks/index_wall.py ROOT --device cpu --dtypes fp32,int8 --rounds 3 [--base-checkout DIR]

--base-checkout adds, in each round, a cold run of another checkout's codesift (its default dtype):
before and after a change, in one run.

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_result


def cold_run(args, index_dir: str, dtype: str | None, checkout: str | None = None) -> dict:
    """One cold `codesift index --rebuild` process (of `checkout`'s codesift, in its default dtype,
    when given): wall and CPU seconds, and what it did."""
    command = [sys.executable, "-m", "codesift.cli", "index", str(args.root), "--index-dir", index_dir,
               "--device", args.device, "--model", args.model, "--rebuild", "--json"]
    env = {**os.environ, "PYTHONPATH": checkout} if checkout else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    # cwd: `python -m` puts its working directory first on sys.path, ahead of PYTHONPATH; in a
    # checkout, that checkout's codesift would run whatever `checkout` says.
    proc = subprocess.run(command + (["--dtype", dtype] if dtype else []), check=True, capture_output=True,
                          text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(proc.stdout)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_avg_1m_before": round(load, 2),
            "files": summary["files"], "chunks": summary["chunks"], "embedded": summary["embedded"],
            "tokens": summary.get("tokens")}


def cold_rounds(args, dtypes: list[str]) -> dict:
    """Cold runs of each dtype (and the base checkout) in turn, --rounds times; medians of each."""
    contenders = {dt: (dt, None) for dt in dtypes}
    if args.base_checkout:
        contenders["base"] = (None, str(Path(args.base_checkout).resolve()))
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, (dt, checkout) in contenders.items():
            with tempfile.TemporaryDirectory() as d:
                runs[name].append(cold_run(args, d, dt, checkout))
            print(f"round {r + 1} {name}: {runs[name][-1]}", flush=True)
    medians = {name: {"wall_s_median": statistics.median(x["wall_s"] for x in rs),
                      "cpu_s_median": statistics.median(x["cpu_s"] for x in rs), "runs": rs}
               for name, rs in runs.items()}
    return {"base_checkout": args.base_checkout, "dtypes": medians, "load_avg_1m_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--dtypes", default=None, help="cold runs only, these dtypes in turn (e.g. fp32,int8)")
    ap.add_argument("--rounds", type=int, default=3, help="with --dtypes: rounds of cold runs")
    ap.add_argument("--base-checkout", default=None, help="with --dtypes: also cold runs of this checkout's codesift")
    args = ap.parse_args()
    out: dict = {"benchmark": "index_wall", "root": str(args.root), "cpus": os.cpu_count(), "device": args.device}
    if args.dtypes:
        out.update(cold_rounds(args, args.dtypes.split(",")))
        print(json.dumps(out))
        write_result("index_wall", out)
        return

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "codesift.cli", "index", str(args.root), "--index-dir", d,
                        "--device", args.device, "--model", args.model, "--rebuild", "-q"], check=True)
        out["cold_s"] = round(time.perf_counter() - t0, 2)

    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree

    embedder = Embedder.load(args.model, device=args.device)
    out["gpu"] = None
    if embedder.backend.device.type == "cuda":
        import torch

        out["gpu"] = torch.cuda.get_device_name()
    times = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(1 + args.warm_runs):
            t0 = time.perf_counter()
            summary = index_tree(args.root, d, embedder=embedder, rebuild=True)
            times.append(time.perf_counter() - t0)
    out.update(warm_s=round(min(times[1:]), 2) if times[1:] else None, warm_runs_s=[round(t, 2) for t in times[1:]],
               first_in_process_s=round(times[0], 2), files=summary.files, chunks=summary.chunks,
               embedded=summary.embedded)
    print(f"cold {out['cold_s']} s, warm {out['warm_s']} s ({summary.files} files, {summary.chunks} chunks)")
    print(json.dumps(out))
    write_result("index_wall", out)


if __name__ == "__main__":
    main()
