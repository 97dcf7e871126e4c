#!/usr/bin/env python3
"""Host memory and the tail of a first `codesift index` build at scale, without a GPU.

For each N, N distinct copies of a tree (scale_corpus.py) are indexed by one cold process with
the model replaced by a stand-in (`StandInRunner`: deterministic unit vectors, no weights loaded;
the real tokenizer, chunks, BM25 terms, SQLite writes, segments and finalize), so the CPU goes to
what the issue is about rather than to embedding. A thread of that process samples, every
SAMPLE_SECONDS, its own resident memory and the writer process's (the child holding index.db open),
and reads each one's high-water mark (VmHWM); the tail is timed by the indexer itself
(`finalize` and its steps, the writer's busy time).

  python benchmarks/index_memory.py SRC --copies 1 4 8 16 [--work DIR] [--against PATH]

--against runs another checkout too (e.g. a `git worktree` of the base commit), size by size in
turn with this one, so that both meet the same load on a shared machine. The last line printed
is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kit import STAND_IN_MODEL, checkout_sides, run_driver, write_sides_result  # noqa: E402
from scale_corpus import build_once  # noqa: E402

SAMPLE_SECONDS = 0.1

DRIVER = r"""
import json, os, resource, sys, threading, time
from pathlib import Path

root, index_dir, workers = sys.argv[1], sys.argv[2], sys.argv[3]
from codesift.index.indexer import index_tree
%(stand_in)s

def status(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    return out


def writer_pid():
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]) != me:
                continue
            if any(os.readlink(f"/proc/{d}/fd/{fd}").endswith("/index.db") for fd in os.listdir(f"/proc/{d}/fd")):
                return int(d)
        except (OSError, ValueError, IndexError):
            continue
    return None


t0 = time.perf_counter()
samples, peaks, stop = [], {"main_hwm_mb": 0.0, "writer_hwm_mb": 0.0, "writer_rss_max_mb": 0.0}, threading.Event()
tick = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0.0


def sample():
    wpid = None
    while not stop.is_set():
        m = status("self")
        wpid = wpid or writer_pid()
        w = status(wpid) if wpid else {}
        peaks["main_hwm_mb"] = max(peaks["main_hwm_mb"], m.get("VmHWM", 0))
        peaks["writer_hwm_mb"] = max(peaks["writer_hwm_mb"], w.get("VmHWM", 0))
        peaks["writer_rss_max_mb"] = max(peaks["writer_rss_max_mb"], w.get("VmRSS", 0))
        if wpid:
            peaks["writer_cpu_s"] = max(peaks.get("writer_cpu_s", 0.0), cpu_s(wpid))
        samples.append((round(time.perf_counter() - t0, 2), round(m.get("VmRSS", 0), 1), round(w.get("VmRSS", 0), 1)))
        stop.wait(%(period)s)


threading.Thread(target=sample, daemon=True).start()
c0 = os.times()
s = index_tree(root, index_dir, embedder=embedder, rebuild=True, writer_process=True,
               workers=int(workers) if workers != "0" else None)
c1 = os.times()
stop.set()
time.sleep(0.2)
import codesift
out = {"codesift_from": codesift.__file__, "files": s.files, "chunks": s.chunks, "embedded": s.embedded, "tokens": s.tokens,
       "seconds_in_index_tree": round(s.seconds, 3), "timings": s.timings,
       "vector_bytes_written": s.vector_bytes_written,
       "main_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
       "main_hwm_mb": round(peaks["main_hwm_mb"], 1), "writer_hwm_mb": round(peaks["writer_hwm_mb"], 1),
       "writer_rss_max_mb": round(peaks["writer_rss_max_mb"], 1),
       "writer_cpu_s": round(peaks.get("writer_cpu_s", 0.0), 2),
       "main_cpu_s": round(c1.user - c0.user + c1.system - c0.system, 3),
       "rss_timeline": samples[::max(1, len(samples) // 200)]}
print("RESULT " + json.dumps(out))
""".replace("%(period)s", str(SAMPLE_SECONDS)).replace("%(stand_in)s", STAND_IN_MODEL)


def run_one(root: Path, index_dir: Path, checkout: Path, workers: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    load = os.getloadavg()[0]
    # run from the checkout: `python -c` puts the working folder first on sys.path, before PYTHONPATH
    out, wall = run_driver([sys.executable, "-c", DRIVER, str(root), str(index_dir), str(workers)],
                           env=env, cwd=checkout)
    out["wall_s"] = round(wall, 3)
    out["load_avg_1m_before"], out["load_avg_1m_after"] = load, os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--work", type=Path, default=Path("/tmp/codesift-memory"))
    ap.add_argument("--against", type=Path, default=None, help="another checkout to run in turn (the base)")
    ap.add_argument("--workers", type=int, default=0, help="prepare workers (0: the indexer's default)")
    args = ap.parse_args()
    sides = checkout_sides(args.against)
    rows = []
    for n in args.copies:
        root = args.work / f"x{n}"
        files, source_bytes = build_once(args.src, root, n)
        for side, checkout in sides.items():
            index_dir = args.work / f"x{n}.{side}.index"
            row = {"side": side, "copies": n, "source_files": files, "source_bytes": source_bytes,
                   **run_one(root, index_dir, checkout, args.workers)}
            rows.append(row)
            t = row["timings"]
            print(f"{side} x{n}: {row['wall_s']} s, main peak {row['main_peak_rss_mb']} MB, writer peak "
                  f"{row['writer_hwm_mb']} MB, finalize {t.get('finalize')} s, writer busy {t.get('write_thread')} s,"
                  f" writer CPU {row['writer_cpu_s']} s, load {row['load_avg_1m_before']}", flush=True)
    write_sides_result("index_memory", args.src, sides, rows)


if __name__ == "__main__":
    main()
