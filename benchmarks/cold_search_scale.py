#!/usr/bin/env python3
"""Cold `codesift search` on the 1x and 16x stdlib indexes: this checkout against an older one, same run.

The trees are N distinct copies of SRC (scale_corpus.py). Their indexes are built on the CPU with
the real chunks and terms but random vectors (incremental_cpu.build_with_random_vectors: what a
search costs does not depend on the vectors' values) by the OLDER checkout (--against), so that
both can read them; a copy of each is then brought up to this checkout's schema by an index run of
this checkout (nothing to embed: migrations, and what the run records). Trees and indexes are kept
in --work and reused by later runs (built once: a 16x build takes about ten minutes on two cores).

Each search is a fresh process (`codesift search QUERY --index-dir ...`, as `_kit.CODESIFT` starts it), held to
--cores with taskset, the two sides interleaved (their order alternating) so that the machine's
load hits both alike; the page cache is warmed first, as in daily use. Per side: median wall time
and median CPU time (user + sys of the process: steadier than wall time on a busy machine), with
the load average at each run. Both sides must return the same results for the first query.

  python benchmarks/cold_search_scale.py SRC --against OLD_CHECKOUT [--copies 1 16] [--runs 9]

(a checkout of an older commit: `git worktree add --detach /tmp/base <commit>`). The last line
printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _kit import CODESIFT, user_env  # noqa: E402
from _results import write_result  # noqa: E402
from index_scale import QUERIES  # noqa: E402
from scale_corpus import build  # noqa: E402

ROOT = HERE.parent
# Run in a process whose codesift is the older checkout's (PYTHONPATH): the helper of
# incremental_cpu.py, imported from this checkout's benchmarks/.
BUILD = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from incremental_cpu import build_with_random_vectors
build_with_random_vectors(Path(sys.argv[2]), Path(sys.argv[3]))
"""


def git_commit(checkout: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_env(checkout: Path) -> dict:
    """The environment of a process running `checkout`'s codesift, with no thread settings of ours."""
    env = {k: v for k, v in user_env().items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = str(checkout)
    return env


def prepare(src: Path, work: Path, copies: int, against: Path) -> tuple[Path, Path, Path, dict]:
    """(tree, index by the older checkout, the same index upgraded by this one, what was done)."""
    root, old_index, new_index = work / f"x{copies}", work / f"x{copies}.old-index", work / f"x{copies}.new-index"
    marker = work / f"x{copies}.json"
    built_with = git_commit(against)
    done = json.loads(marker.read_text()) if marker.exists() else {}
    if done.get("built_with") != built_with or not (old_index / "index.db").exists():
        t0 = time.perf_counter()
        files, size = build(src, root, copies)
        shutil.rmtree(old_index, ignore_errors=True)
        subprocess.run([sys.executable, "-c", BUILD, str(HERE), str(root), str(old_index)], env=code_env(against),
                       check=True)
        done = {"copies": copies, "files": files, "source_bytes": size, "built_with": built_with,
                "build_s": round(time.perf_counter() - t0, 1)}
        marker.write_text(json.dumps(done))
    shutil.rmtree(new_index, ignore_errors=True)
    shutil.copytree(old_index, new_index)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "codesift.cli", "index", str(root), "--index-dir", str(new_index),
                           "-q"], env=code_env(ROOT), cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"upgrading the index failed:\n{proc.stderr[-3000:]}")
    return root, old_index, new_index, {**done, "upgrade_s": round(time.perf_counter() - t0, 2)}


def search_cmd(query: str, index_dir: Path, cores: str | None, as_json: bool = False) -> list[str]:
    prefix = ["taskset", "-c", cores] if cores else []
    return [*prefix, *CODESIFT, "search", query, "--index-dir", str(index_dir), "-k", "10",
            *(["--json"] if as_json else [])]


def one_search(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + sys) of one cold process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"search failed:\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(walls: list[float], cpus: list[float]) -> dict:
    return {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3), "median_cpu_s": round(statistics.median(cpus), 3),
            "min_cpu_s": round(min(cpus), 3), "runs": len(walls),
            "wall_s": [round(w, 3) for w in walls], "cpu_s": [round(c, 3) for c in cpus]}


def compare(old_index: Path, new_index: Path, against: Path, work: Path) -> bool:
    """Whether both sides return the same chunks, in the same order, for the first query."""
    ids = []
    for code, index_dir in ((against, old_index), (ROOT, new_index)):
        proc = subprocess.run(search_cmd(QUERIES[0], index_dir, None, as_json=True), env=code_env(code), cwd=work,
                              capture_output=True, text=True, check=True)
        ids.append([r["id"] for r in json.loads(proc.stdout)["results"]])
    return ids[0] == ids[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--against", type=Path, required=True, help="an older codesift checkout (the 'before')")
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--work", type=Path, default=Path("/tmp/codesift-cold-search"))
    ap.add_argument("--cores", default="0,1", help="CPUs for the searches (taskset -c); '' for no pinning")
    ap.add_argument("--runs", type=int, default=9, help="searches per side and size")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    against = args.against.resolve()
    sides = {"before": (against, "old"), "after": (ROOT, "new")}
    rows = []
    for n in args.copies:
        root, old_index, new_index, done = prepare(args.src, args.work, n, against)
        index_of = {"old": old_index, "new": new_index}
        same = compare(old_index, new_index, against, args.work)
        row: dict = {"copies": n, **done, "same_results": same, "load_before": os.getloadavg()}
        for name, (code, which) in sides.items():  # the page cache warmed, as in daily use
            one_search(search_cmd(QUERIES[0], index_of[which], args.cores or None), code_env(code), args.work)
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in sides}
        loads = []
        for i in range(args.runs):
            order = list(sides) if i % 2 == 0 else list(sides)[::-1]
            for name in order:
                code, which = sides[name]
                wall, cpu = one_search(search_cmd(QUERIES[i % len(QUERIES)], index_of[which], args.cores or None),
                                       code_env(code), args.work)
                times[name][0].append(wall)
                times[name][1].append(cpu)
            loads.append(round(os.getloadavg()[0], 2))
        for name in sides:
            row[name] = summary(*times[name])
        row["load_1min"] = loads
        row["load_after"] = os.getloadavg()
        row["after_over_before"] = round(row["after"]["median_s"] / row["before"]["median_s"], 3)
        row["after_over_before_cpu"] = round(row["after"]["median_cpu_s"] / row["before"]["median_cpu_s"], 3)
        rows.append(row)
        print(f"x{n}: before {row['before']['median_s']} s (cpu {row['before']['median_cpu_s']} s), after "
              f"{row['after']['median_s']} s (cpu {row['after']['median_cpu_s']} s), same results: {same}, "
              f"load {loads[0]}..{loads[-1]}", flush=True)
    result = {"src": str(args.src), "against": str(against), "against_commit": git_commit(against),
              "cores": args.cores, "cpus": os.cpu_count(), "rows": rows}
    print(json.dumps(result))
    write_result("cold_search_scale", result)


if __name__ == "__main__":
    main()
