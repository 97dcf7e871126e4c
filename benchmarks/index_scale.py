#!/usr/bin/env python3
"""`codesift index` at scale: N distinct copies of a tree (scale_corpus.py), one cold process each.

For each N: wall time and tokens embedded per second of wall time, peak host memory of the
indexing process and peak GPU memory, index size against the source; then, on that index, one
file edited and indexed again (wall time and bytes the process wrote), and cold `codesift
search` processes (median wall time; `--cores 0,1` holds them to two cores as on a laptop).

  python benchmarks/index_scale.py SRC --copies 1 4 8 16 --device cuda --model PATH [--work DIR]

The last line printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kit import CODESIFT, run_driver, user_env  # noqa: E402
from _results import write_result  # noqa: E402
from scale_corpus import build  # noqa: E402

# One cold indexing process: prints its summary, its own peak memory and what it wrote.
DRIVER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from codesift.index.indexer import index_tree
root, index_dir, device, model, rebuild = sys.argv[1:6]
s = index_tree(root, index_dir, model=model, device=device, rebuild=rebuild == "1")
out = {"files": s.files, "chunks": s.chunks, "embedded": s.embedded, "tokens": s.tokens,
       "changed": s.changed + s.new + s.deleted, "seconds_in_index_tree": round(s.seconds, 3),
       "timings": s.timings, "vector_bytes_written": s.vector_bytes_written,
       "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
if "torch" in sys.modules:
    import torch
    if torch.cuda.is_available():
        out["gpu_peak_mb"] = round(max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**20, 1)
try:
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    out["write_bytes"] = int(io["write_bytes"]); out["wchar"] = int(io["wchar"])
except (OSError, KeyError, ValueError):
    pass
print("RESULT " + json.dumps(out))
"""

QUERIES = ("parse the headers of an email message", "retry a connection with a timeout",
           "json decoder for nested objects", "split a path into folder and file name",
           "compress data with zlib", "HTTPConnection.request")


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_index(root: Path, index_dir: Path, device: str, model: str, rebuild: bool) -> dict:
    out, wall = run_driver([sys.executable, "-c", DRIVER, str(root), str(index_dir), device, model,
                            "1" if rebuild else "0"])
    out["wall_s"] = round(wall, 3)
    out["tokens_per_s"] = round(out["tokens"] / wall) if wall > 0 else None
    return out


def cold_searches(index_dir: Path, cores: str | None, repeats: int) -> dict:
    times = []
    prefix = ["taskset", "-c", cores] if cores else []
    for i in range(repeats):
        q = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        proc = subprocess.run([*prefix, *CODESIFT, "search", q, "--index-dir",
                               str(index_dir), "-k", "10"], capture_output=True, text=True, env=user_env())
        if proc.returncode != 0:
            raise SystemExit(f"search failed:\n{proc.stderr[-3000:]}")
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "runs": len(times)}


def index_size(index_dir: Path) -> dict:
    """Bytes per table and index of the database (SQLite's dbstat), and of the vector segments."""
    import sqlite3

    db = sqlite3.connect(f"file:{index_dir / 'index.db'}?mode=ro", uri=True)
    try:
        tables = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"))
    except sqlite3.OperationalError:
        tables = {}
    db.close()
    return {"tables": tables, "vectors": folder_bytes(index_dir / "vectors")}


def edit_one_file(root: Path) -> Path:
    target = sorted(root.rglob("*.py"))[len(list(root.rglob("*.py"))) // 2]
    with open(target, "a", encoding="utf-8") as f:
        f.write("\n\ndef scale_benchmark_edit(value):\n    \"\"\"Added by index_scale.py.\"\"\"\n    return value * 2\n")
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--work", type=Path, default=Path("/tmp/codesift-scale"))
    ap.add_argument("--cores", default="0,1", help="CPUs for the cold searches (taskset -c); '' for all")
    ap.add_argument("--searches", type=int, default=9)
    ap.add_argument("--incremental-device", default="cpu")
    ap.add_argument("--keep", action="store_true", help="keep the corpora and indexes")
    args = ap.parse_args()
    rows = []
    for n in args.copies:
        root = args.work / f"x{n}"
        files, source_bytes = build(args.src, root, n)
        index_dir = args.work / f"x{n}.index"
        shutil.rmtree(index_dir, ignore_errors=True)
        row = {"copies": n, "source_files": files, "source_bytes": source_bytes}
        row["index"] = run_index(root, index_dir, args.device, args.model, rebuild=True)
        row["index_bytes"] = folder_bytes(index_dir)
        row["index_over_source"] = round(row["index_bytes"] / source_bytes, 3)
        edited = edit_one_file(root)
        row["incremental"] = run_index(root, index_dir, args.incremental_device, args.model, rebuild=False)
        row["incremental"]["edited"] = str(edited.relative_to(root))
        row["cold_search"] = cold_searches(index_dir, args.cores or None, args.searches)
        row["size"] = index_size(index_dir)
        rows.append(row)
        ix, inc = row["index"], row["incremental"]
        print(f"x{n}: {ix['wall_s']} s, {ix['tokens']:,} tokens, {ix['tokens_per_s']:,} tokens/s, "
              f"rss {ix['peak_rss_mb']} MB, gpu {ix.get('gpu_peak_mb')} MB, index {row['index_bytes'] / 1e6:.1f} MB "
              f"= {row['index_over_source']}x source; edit: {inc['wall_s']} s, wrote {inc.get('write_bytes')} B; "
              f"cold search median {row['cold_search']['median_s']} s", flush=True)
        print("ROW " + json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(index_dir, ignore_errors=True)
    by_n = {r["copies"]: r for r in rows}
    summary = {"rows": rows, "device": args.device, "cpus": os.cpu_count()}
    if 8 in by_n and 16 in by_n:
        summary["wall_16_over_8"] = round(by_n[16]["index"]["wall_s"] / by_n[8]["index"]["wall_s"], 3)
    write_result("index_scale", summary)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
