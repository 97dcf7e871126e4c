#!/usr/bin/env python3
"""Incremental `codesift index` after editing one file, on the CPU: wall time and bytes written.

The index is built first with the real model's tokenizer and chunking but random vectors (an
embedding of a whole tree on a small CPU takes long, and what an incremental run costs does not
depend on the vectors already stored). Each round appends a function to one file and runs one
cold `codesift index ROOT --device cpu` process, which embeds the edited file's chunks with the
real model.

  python benchmarks/incremental_cpu.py SRC [--rounds 5] [--work DIR] [--base-checkout DIR]

With --base-checkout, each round edits two files and indexes one edit with this checkout's codesift
and the other with that checkout's (PYTHONPATH), in turns, on the same index: the figures to compare
come from the same minutes of a shared machine. CPU seconds (user + sys) and the load average are logged.

Prints one line per round and the median; writes its JSON log (benchmarks/_results.py).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_result  # noqa: E402
from index_scale import run_index  # noqa: E402


class RandomRunner:
    """Stands in for the model in the first build: unit vectors, random."""

    def __init__(self, dim: int):
        self.dim, self.token_budget, self.max_seqs = dim, 65536, 8192
        self.rng = np.random.default_rng(0)

    def run(self, batches):
        for b in batches:
            v = self.rng.standard_normal((len(b.lengths), self.dim)).astype(np.float32)
            yield b.keys, v / np.linalg.norm(v, axis=1, keepdims=True)


def build_with_random_vectors(root: Path, index_dir: Path) -> None:
    import codesift.embed.scheduler as scheduler
    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree

    real = scheduler.make_runner
    scheduler.make_runner = lambda backend, *a, **k: RandomRunner(backend.dim)
    try:
        index_tree(root, index_dir, embedder=Embedder.load("default", device="cpu"), rebuild=True)
    finally:
        scheduler.make_runner = real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "codesift-incremental")
    ap.add_argument("--base-checkout", default=None, help="also runs of this checkout's codesift, in turns")
    args = ap.parse_args()
    root, index_dir = args.work / "tree", args.work / "index"
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.src, root, ignore=shutil.ignore_patterns(".codesift*", "__pycache__"))
    build_with_random_vectors(root, index_dir)
    # The `python -c` child puts its working directory first on sys.path: it must not be a checkout,
    # or that checkout's codesift runs whatever PYTHONPATH says.
    os.chdir(args.work)
    targets = sorted(root.rglob("*.py"))
    contenders = {"this": None}
    if args.base_checkout:
        contenders["base"] = str(Path(args.base_checkout).resolve())
    load_before = os.getloadavg()
    edits = args.rounds * len(contenders)
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for i in range(args.rounds):
        for k, (name, checkout) in enumerate(contenders.items()):
            n = i * len(contenders) + k
            target = targets[(n + 1) * len(targets) // (edits + 1)]
            with open(target, "a", encoding="utf-8") as f:
                f.write(f"\n\ndef incremental_benchmark_edit_{n}(value):\n    return value * {n + 2}\n")
            load = os.getloadavg()[0]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            saved = os.environ.get("PYTHONPATH")
            if checkout:
                os.environ["PYTHONPATH"] = checkout
            try:
                r = run_index(root, index_dir, "cpu", "default", rebuild=False)
            finally:
                if checkout:
                    os.environ.pop("PYTHONPATH") if saved is None else os.environ.update(PYTHONPATH=saved)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            r["cpu_s"] = round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 3)
            r["load_avg_1m_before"] = round(load, 2)
            r["edited"] = str(target.relative_to(root))
            runs[name].append(r)
            print(f"round {i} {name}: {r['wall_s']} s, CPU {r['cpu_s']} s, load {load:.2f}, wrote "
                  f"{r.get('write_bytes')} B, embedded {r['embedded']}, timings {r['timings']}", flush=True)
    rounds = runs["this"]
    walls = [r["wall_s"] for r in rounds]
    out = {"src": str(args.src), "cpus": os.cpu_count(), "load_before": load_before, "rounds": rounds,
           "median_wall_s": round(statistics.median(walls), 3),
           "median_cpu_s": round(statistics.median(r["cpu_s"] for r in rounds), 3),
           "median_model_load_s": round(statistics.median(r["timings"].get("model_load", 0) for r in rounds), 3),
           "max_write_bytes": max(r.get("write_bytes", 0) for r in rounds), "load_after": os.getloadavg()}
    if args.base_checkout:
        base = runs["base"]
        out["base"] = {"checkout": contenders["base"], "rounds": base,
                       "median_wall_s": round(statistics.median(r["wall_s"] for r in base), 3),
                       "median_cpu_s": round(statistics.median(r["cpu_s"] for r in base), 3),
                       "median_model_load_s": round(statistics.median(r["timings"].get("model_load", 0)
                                                                      for r in base), 3)}
    for name, o in (("this", out), ("base", out.get("base"))):
        if o:
            print(f"{name}: median {o['median_wall_s']} s, CPU {o['median_cpu_s']} s, "
                  f"model_load {o['median_model_load_s']} s")
    print(f"at most {out['max_write_bytes']:,} bytes written")
    write_result("incremental_cpu", out)


if __name__ == "__main__":
    main()
