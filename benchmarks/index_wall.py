#!/usr/bin/env python3
"""Wall time of `codesift index` on a whole tree: a cold process, and a warm one.

cold: a fresh `codesift index ROOT --rebuild` process (imports, model load, worker start-up included).
warm: in one process that has already indexed once (model loaded, worker pool started), the
      time of a second full `index_tree(..., rebuild=True)`.

  python benchmarks/index_wall.py ROOT [--device cuda] [--model PATH]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--warm-runs", type=int, default=3)
    args = ap.parse_args()
    out: dict = {"benchmark": "index_wall", "root": str(args.root), "cpus": os.cpu_count(), "device": args.device}

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
