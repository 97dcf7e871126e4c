#!/usr/bin/env python3
"""Where the time of `codesift index` goes, phase by phase, in one warm process.

  walk      listing the tree (ignore rules, stat)
  prepare   read + hash + chunk + tokenize in the worker pool, results collected in order
  no_embed  the whole indexer with the model replaced by a runner that returns constant
            vectors: everything but the model (prepare, SQLite writes, FTS, dense cache)
  full      the real indexer on --device
Each is timed after one warm-up run, in wall and CPU seconds (this process's threads; worker
processes not included). Also logged: the model's load (the ONNX Runtime sessions' build on
the CPU), and the texts the model embeds: their count and tokens, the padded tokens of the runs
the backend cuts them into, and the time of embedding them alone (`embed_only`: `Embedder.embed_ids`;
`runner_only`: the indexer's runner, in its lots). With
--profile, the main thread's top functions of the full run are printed (cProfile).

  python benchmarks/index_phases.py ROOT [--device cuda] [--model PATH] [--workers N]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _results import write_result  # noqa: E402


class ConstantRunner:
    """Stands in for the model: the indexer's cost with embedding taken out."""

    def __init__(self, dim: int):
        self.dim, self.token_budget, self.max_seqs = dim, 65536, 8192

    def run(self, batches):
        for b in batches:
            v = np.zeros((len(b.lengths), self.dim), np.float32)
            v[:, 0] = 1
            yield b.keys, v


def timed(fn, runs: int = 2) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `runs` runs."""
    best, cpu = float("inf"), 0.0
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return round(best, 3), round(cpu, 3)


def texts_to_embed(prepared) -> list[np.ndarray]:
    """Every text's token ids, as the indexer hands them to the model (a text twice in the tree, once)."""
    seen, out = set(), []
    for p in prepared:
        if p.token_ids is None:
            continue
        offsets = np.concatenate(([0], np.cumsum(p.token_lengths)))
        for i, h in enumerate(p.hashes):
            if h not in seen:
                seen.add(h)
                out.append(p.token_ids[offsets[i]:offsets[i + 1]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--dtype", default=None, help="the model's dtype (default: the device's default)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--skip-full", action="store_true", help="leave out the real model (e.g. on CPU, where it is minutes)")
    args = ap.parse_args()

    import codesift.embed.scheduler as scheduler
    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree
    from codesift.index.prepare import prepare_files
    from codesift.walk import walk

    out: dict = {"benchmark": "index_phases", "root": str(args.root), "cpus": os.cpu_count(), "device": args.device,
                 "workers": args.workers}
    t0, c0 = time.perf_counter(), time.process_time()
    embedder = Embedder.load(args.model, device=args.device, dtype=args.dtype)
    out.update(backend=embedder.backend.name, load_s=round(time.perf_counter() - t0, 3),
               load_cpu_s=round(time.process_time() - c0, 3))
    files = walk(args.root).files
    out["walk_s"] = timed(lambda: walk(args.root))[0]
    out["prepare_s"], out["prepare_cpu_s"] = timed(
        lambda: sum(1 for _ in prepare_files([(f, None) for f in files], args.workers, embedder.files)))
    seqs = texts_to_embed(prepare_files([(f, None) for f in files], args.workers, embedder.files))
    lengths = [len(x) for x in seqs]
    out.update(texts=len(seqs), tokens=int(sum(lengths)))
    if embedder.backend.name.startswith("onnx"):
        from codesift.embed.ort_backend import INT8_MIN_TOKENS, groups

        split = INT8_MIN_TOKENS if embedder.backend.dtype == "int8" else None
        out["padded_tokens"] = sum(len(g) * max(lengths[i] for i in g) for g in groups(lengths, split_at=split))
    if not args.skip_full:
        out["embed_only_s"], out["embed_only_cpu_s"] = timed(lambda: embedder.embed_ids(seqs))
        # the same texts through the runner the indexer uses (packed batches and CUDA graphs on a
        # GPU), in the indexer's lots, with nothing else running: the model's own speed on them
        from codesift.embed.batches import TokenBatch, pack
        from codesift.index.pipeline import HAND_OVER_TOKENS

        runner = scheduler.make_runner(embedder.backend, None)
        lots, start = [], 0
        while start < len(seqs):
            end, n = start, 0
            while end < len(seqs) and n < HAND_OVER_TOKENS:
                n += len(seqs[end])
                end += 1
            part = seqs[start:end]
            lots.append(TokenBatch(np.arange(start, end, dtype=np.int64), np.concatenate(part).astype(np.int32),
                                   np.asarray([len(x) for x in part], np.int32)))
            start = end

        def run_all():
            for _ in runner.run(pack(iter(lots), runner.token_budget, runner.max_seqs)):
                pass
        out["runner_only_s"], out["runner_only_cpu_s"] = timed(run_all)
    d = tempfile.mkdtemp()

    def index():
        return index_tree(args.root, d, embedder=embedder, rebuild=True, workers=args.workers)

    real_make_runner = scheduler.make_runner
    scheduler.make_runner = lambda backend, *a, **k: ConstantRunner(backend.dim)
    out["no_embed_s"], out["no_embed_cpu_s"] = timed(index)
    out["no_embed_timings"] = index().timings
    scheduler.make_runner = real_make_runner
    if not args.skip_full:
        out["full_s"], out["full_cpu_s"] = timed(index)
        out["full_timings"] = index().timings
    if args.profile and not args.skip_full:
        prof = cProfile.Profile()
        prof.enable()
        index()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    out["load_avg_1m"] = os.getloadavg()[0]
    print(" ".join(f"{k} {v}" for k, v in out.items() if k.endswith("_s") or k.endswith("timings")))
    print(json.dumps(out))
    write_result("index_phases", out)


if __name__ == "__main__":
    main()
