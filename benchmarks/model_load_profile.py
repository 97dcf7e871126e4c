#!/usr/bin/env python3
"""Where a cold model load goes: torch import, CUDA start, weights, runner (CUDA graph capture).

  python benchmarks/model_load_profile.py MODEL_DIR [--device cuda]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    marks = {}
    t0 = time.perf_counter()
    import torch
    marks["import torch"] = time.perf_counter() - t0
    t = time.perf_counter()
    torch.zeros(1, device=args.device)
    marks["cuda start"] = time.perf_counter() - t
    prof = cProfile.Profile()
    prof.enable()
    t = time.perf_counter()
    from codesift.embed.embedder import Embedder
    from codesift.embed.scheduler import make_runner
    e = Embedder.load(args.model, device=args.device)
    marks["Embedder.load"] = time.perf_counter() - t
    t = time.perf_counter()
    make_runner(e.backend, None, batch_size=32)
    marks["make_runner"] = time.perf_counter() - t
    prof.disable()
    print({k: round(v, 3) for k, v in marks.items()})
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
