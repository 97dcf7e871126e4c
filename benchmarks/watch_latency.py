#!/usr/bin/env python3
"""`codesift watch` measured: edit -> searchable latency, and CPU used while idle.

Copies a corpus (default: the stdlib eval corpus, else this Python's stdlib) to a temp folder,
indexes it (on --index-device: a GPU makes the first build quick), then pins this process to
--cores CPU cores and runs the watcher in a thread with the model on --device, as `codesift
watch` does. Measures:

- idle: CPU seconds (resource.getrusage, this process and its threads) over --idle-seconds with
  the watcher running and nothing changing, as a share of one core;
- latency: --edits times, append a new function with a unique name to a file (a different file
  each time), then poll a BM25 search for the name every 20 ms; the time from the write to the
  first search that finds it. Median and p95 over the edits.

  python benchmarks/watch_latency.py [CORPUS] --edits 20 --idle-seconds 30 --cores 2

The last line printed is one JSON object; the log goes through _results.write_result.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from _results import write_result

POLL_S = 0.02


def default_corpus() -> Path:
    for p in (Path("/tmp/evals/stdlib/corpus"), Path("/work/evals/stdlib/corpus")):
        if p.is_dir():
            return p
    return Path(sysconfig.get_paths()["stdlib"])


def copy_corpus(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
        "__pycache__", "site-packages", ".codesift", "*.pyc"))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path, nargs="?", default=None)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu", help="where the watcher's runs embed")
    ap.add_argument("--index-device", default=None, help="where the first build embeds (default: --device)")
    ap.add_argument("--cores", type=int, default=2, help="CPU cores the watcher may use (0: all)")
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--quiet-ms", type=int, default=300)
    ap.add_argument("--timeout", type=float, default=120.0, help="give up on one edit after this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree
    from codesift.search.searcher import Searcher
    from codesift.serve.watch import Watcher

    src = (args.corpus or default_corpus()).resolve()
    work = Path(tempfile.mkdtemp(prefix="codesift-watch-"))
    root = work / "corpus"
    try:
        copy_corpus(src, root)
        index_dir = root / ".codesift"
        t0 = time.perf_counter()
        first = index_tree(root, index_dir, model=args.model, device=args.index_device or args.device)
        build_s = time.perf_counter() - t0
        print(f"first build: {first.line()}", flush=True)

        if args.cores:
            os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.cores]))
        import torch

        torch.set_num_threads(max(1, args.cores or os.cpu_count() or 1))
        embedder = Embedder.load(args.model, device=args.device)
        runs: list[dict] = []

        def run_index() -> str:
            t = time.perf_counter()
            s = index_tree(root, index_dir, embedder=embedder, model=args.model, workers=args.cores or None)
            runs.append({"seconds": round(time.perf_counter() - t, 3), "changed": s.changed, "new": s.new,
                         "embedded": s.embedded, "timings": s.timings})
            return s.line()

        watcher = Watcher(root, index_dir, run_index, quiet_ms=args.quiet_ms).start()
        deadline = time.monotonic() + args.timeout
        while watcher.stats.runs < 1 and time.monotonic() < deadline:  # the catch-up run
            time.sleep(0.05)

        time.sleep(1.0)  # let the catch-up settle before counting idle time
        runs_before_idle = watcher.stats.runs
        c0, w0 = cpu_seconds(), time.perf_counter()
        time.sleep(args.idle_seconds)
        idle_cpu, idle_wall = cpu_seconds() - c0, time.perf_counter() - w0
        idle_runs = watcher.stats.runs
        print(f"idle: {idle_cpu:.3f} CPU s over {idle_wall:.1f} s ({100 * idle_cpu / idle_wall:.2f}% of one core)",
              flush=True)

        rng = random.Random(args.seed)
        files = sorted(p for p in root.rglob("*.py") if ".codesift" not in p.parts)
        targets = rng.sample(files, min(args.edits, len(files)))
        searcher = Searcher(index_dir)
        latencies, missed = [], []
        for i, path in enumerate(targets):
            name = f"watch_probe_{i}_{rng.randrange(1 << 30):x}"
            t_edit = time.perf_counter()
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"\n\ndef {name}(value):\n    return value\n")
            found = None
            while time.perf_counter() - t_edit < args.timeout:
                if searcher.store.get_meta("generation") != searcher.meta.get("generation"):
                    searcher.close()
                    searcher = Searcher(index_dir)
                if any(r.chunk.symbol == name for r in searcher.search(name, mode="bm25", k=3)):
                    found = time.perf_counter() - t_edit
                    break
                time.sleep(POLL_S)
            rel = path.relative_to(root).as_posix()
            if found is None:
                missed.append(rel)
            else:
                latencies.append(found)
            print(f"edit {i + 1}/{len(targets)} {rel}: "
                  f"{'not found' if found is None else f'{found:.3f} s'}", flush=True)
            time.sleep(0.5)  # separate edits: one group each
        searcher.close()
        watcher.stop()

        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))] if latencies else None
        summary = {
            "corpus": str(src), "files": first.files, "chunks": first.chunks, "first_build_s": round(build_s, 1),
            "device": args.device, "index_device": args.index_device or args.device, "cores": args.cores,
            "quiet_ms": args.quiet_ms, "edits": len(targets), "found": len(latencies), "missed": missed,
            "latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p95_s": round(p95, 3) if p95 is not None else None,
            "latency_max_s": round(latencies[-1], 3) if latencies else None,
            "idle_seconds": round(idle_wall, 1), "idle_cpu_s": round(idle_cpu, 3),
            "idle_cpu_percent_of_core": round(100 * idle_cpu / idle_wall, 3), "idle_index_runs": idle_runs - runs_before_idle,
            "watch_runs": watcher.stats.runs, "watch_failures": watcher.stats.failures,
        }
        print(json.dumps(summary), flush=True)
        write_result("watch_latency", {**summary, "latencies_s": [round(x, 3) for x in latencies], "runs": runs})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
