#!/usr/bin/env python3
"""`codesift cluster-index` with 1 and with 2 GPUs (one embedding actor each) on N copies of a tree.

The copies (scale_corpus.py: distinct, nothing deduplicated) are the job's repositories, each one's
files in a folder named after it inside it (`copy-03/copy-03/...`). The job embeds a file as its
repository alone would, so without that folder the copies' untagged files (and their chunks with
no def or class line) would be identical texts, embedded once for all copies; in it, every text
begins with its copy's name, as it did when the job embedded paths under the repository's name, and
N copies stay N times the work of one. One local Ray session for the whole run; a warm-up job on
one copy first (Ray's workers, the page cache), then one job per GPU count, each into a fresh
shards folder. For each: the job's wall time and tokens embedded per second of it, the actors'
summed time inside their embedding calls and the tokens per second of that (the per-GPU rate a
cost estimate starts from), and the ratio of the wall rates. The shards of the two runs are
compared (chunk shards byte for byte, vectors within fp16 noise).

  python benchmarks/cluster_index.py SRC --copies 8 --gpus 1 2 --model PATH [--work DIR]

The last line printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import write_result  # noqa: E402
from scale_corpus import build  # noqa: E402


def run_job(trees: list[Path], out: Path, gpus: int, model: str, part_bytes: int) -> dict:
    from codesift.distributed.job import cluster_index

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    s = cluster_index(trees, out, model=model, gpus=gpus, part_bytes=part_bytes)
    wall = time.perf_counter() - t0
    return {"gpus": gpus, "actors": s.actors, "repos": s.repos, "parts": s.parts, "files": s.files, "chunks": s.chunks,
            "texts_embedded": s.embedded, "tokens": s.tokens, "wall_s": round(wall, 3),
            "tokens_per_s": round(s.tokens / wall) if wall else None,
            "actor_busy_s": round(s.embed_seconds, 3),
            "per_gpu_tokens_per_s": round(s.tokens / s.embed_seconds) if s.embed_seconds else None,
            "timings": s.timings, "line": s.line()}


def compare(a: Path, b: Path) -> dict:
    """Whether two jobs' shards agree: chunk shards and manifests byte for byte, vectors closely."""
    import numpy as np

    from codesift.distributed.layout import Layout
    from codesift.distributed.shards import read_vectors

    def files(root: Path, top: str) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / top).rglob("*")) if p.is_file()}

    worst = 0.0
    la, lb = Layout(a), Layout(b)
    for name, manifest in la.manifests().items():
        for f in manifest["vectors"]:
            ha, va = read_vectors(la.path(f))
            hb, vb = read_vectors(lb.path(f))
            assert ha == hb, f
            worst = max(worst, float(np.abs(va - vb).max()) if len(va) else 0.0)
    return {"chunk_shards_identical": files(a, "chunks") == files(b, "chunks"),
            "manifests_identical": files(a, "repos") == files(b, "repos"), "vectors_max_abs_diff": worst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="the tree to copy (e.g. the stdlib eval corpus)")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", default="default")
    ap.add_argument("--part-size-mb", type=float, default=2.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/codesift-cluster"))
    ap.add_argument("--logical-gpus", type=int, default=None,
                    help="declare this many GPUs to Ray without any (the actors then embed on the CPU): to try "
                         "the script on a CPU machine")
    args = ap.parse_args()

    import ray

    corpus = args.work / "corpus"
    n_files, n_bytes = build(args.src, corpus, args.copies)
    repos = args.work / "repos"  # repos/copy-03/copy-03/...: see the docstring
    shutil.rmtree(repos, ignore_errors=True)
    trees = []
    for copy in sorted(p for p in corpus.iterdir() if p.is_dir()):
        (repos / copy.name).mkdir(parents=True)
        copy.rename(repos / copy.name / copy.name)
        trees.append(repos / copy.name)
    part_bytes = int(args.part_size_mb * (1 << 20))
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, object_store_memory=(4 << 30) if args.logical_gpus is None else (200 << 20),
             num_gpus=args.logical_gpus)
    ray_start_s = time.perf_counter() - t0
    gpus_seen = int(ray.cluster_resources().get("GPU", 0))
    print(f"{len(trees)} trees, {n_files} files, {n_bytes / 1e6:.1f} MB; Ray {ray.__version__} started in "
          f"{ray_start_s:.1f} s with {gpus_seen} GPU(s), {int(ray.cluster_resources().get('CPU', 0))} CPUs", flush=True)
    warm = run_job(trees[:1], args.work / "warmup", max(args.gpus), args.model, part_bytes)
    print(f"warm-up: {warm['line']}", flush=True)
    runs = []
    for gpus in args.gpus:
        r = run_job(trees, args.work / f"shards-{gpus}gpu", gpus, args.model, part_bytes)
        runs.append(r)
        print(f"{gpus} GPU(s): {r['tokens']:,} tokens in {r['wall_s']:.1f} s = {r['tokens_per_s']:,} tokens/s "
              f"(actors busy {r['actor_busy_s']:.1f} s: {r['per_gpu_tokens_per_s']:,} tokens/s per GPU)", flush=True)
    ratio = None
    if len(runs) >= 2 and runs[0]["tokens_per_s"]:
        ratio = round(runs[-1]["tokens_per_s"] / runs[0]["tokens_per_s"], 3)
        print(f"scaling: {runs[-1]['gpus']} GPUs / {runs[0]['gpus']} GPU = {ratio}x tokens/s", flush=True)
    same = compare(args.work / f"shards-{args.gpus[0]}gpu", args.work / f"shards-{args.gpus[-1]}gpu") \
        if len(runs) >= 2 else None
    ray.shutdown()
    import pyarrow

    payload = {"src": str(args.src), "copies": args.copies, "files": n_files, "source_bytes": n_bytes,
               "model": args.model, "part_bytes": part_bytes, "ray": ray.__version__, "pyarrow": pyarrow.__version__,
               "ray_start_s": round(ray_start_s, 3), "gpus_seen": gpus_seen, "logical_gpus": args.logical_gpus,
               "warmup": warm, "runs": runs, "ratio": ratio, "same_shards": same}
    write_result("cluster_index", payload)
    print(json.dumps(payload))


if __name__ == "__main__":
    main()
