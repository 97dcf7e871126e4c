#!/usr/bin/env python3
"""The index's write path alone: the same transactions replayed into a new index by two checkouts.

On the GPU machine a big first build waits on its writer process (SQLite rows, BM25 terms, vector
segments), and the writer's time grew faster than the tree. Here the write path is taken out of the
run: for each N, N distinct copies of a tree (scale_corpus.py) are indexed once with the model
replaced by a stand-in (`_kit.STAND_IN_MODEL`), and every transaction handed to the writer
(`WriteBatch`) is saved as it is sent. Then each checkout replays those batches into a new index as a
first build does (deferred indexes, `ProcessSink` fed as fast as it takes them, `close(finish=True)`,
`finish_index`), in a fresh process, sides in turn. Per side: wall time from the first batch to a
complete index, the writer process's busy time, the bytes it and the run's end wrote (the kernel's
write accounting: pages dirtied, WAL and checkpoints included), its CPU time, and the busy time of
each batch in order (does a batch cost more as the index grows?).

  python benchmarks/writer_replay.py SRC --copies 4 8 [--work DIR] [--against CHECKOUT] [--rounds 1]

The batches are made by this checkout; both sides read them (WriteBatch and FileRecord must be the
same classes on both). The last line printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kit import STAND_IN_MODEL, checkout_commit, checkout_sides, run_driver, write_sides_result  # noqa: E402
from scale_corpus import build_once  # noqa: E402

CAPTURE = r"""
import pickle, sys
from pathlib import Path

root, index_dir, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
from codesift.index.indexer import index_tree
from codesift.index import write_sinks
%(stand_in)s

sent = []
put = write_sinks.ProcessSink.put


def saving_put(self, batch):
    path = out / f"batch-{len(sent):05d}.pkl"
    path.write_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    sent.append(path.name)
    put(self, batch)


write_sinks.ProcessSink.put = saving_put
s = index_tree(root, index_dir, embedder=embedder, rebuild=True, writer_process=True)
print("RESULT " + json.dumps({"batches": len(sent), "files": s.files, "chunks": s.chunks}))
""".replace("%(stand_in)s", STAND_IN_MODEL).replace("import pickle, sys", "import json, pickle, sys")

REPLAY = r"""
import json, os, pickle, resource, sys, time
from pathlib import Path

batches_dir, index_dir = Path(sys.argv[1]), Path(sys.argv[2])
from codesift.index.indexer import finish_index
from codesift.index.store import Store
from codesift.index.write_sinks import ProcessSink


def written_by_self():
    for line in open("/proc/self/io"):
        if line.startswith("write_bytes:"):
            return int(line.split()[1])


names = sorted(p.name for p in batches_dir.glob("batch-*.pkl"))
store = Store(index_dir, create=True)
with store.transaction():  # as a first build begins
    store.defer_indexes()
    if hasattr(store, "set_bm25_merging"):  # not in checkouts before it
        store.set_bm25_merging(False)
t0 = time.perf_counter()
sink = ProcessSink(index_dir)
sink.start()
busy = []
for name in names:
    sink.put(pickle.loads((batches_dir / name).read_bytes()))
    busy.append(round(sink.busy_s, 3))  # cumulative busy time of the batches answered so far
t_sent = time.perf_counter() - t0
sink.close(finish=True)
t_closed = time.perf_counter() - t0
self0 = written_by_self()  # Linux adds a reaped child's counts to its parent's: the writer's are in
timings = {}
finish_index(store, None, timings)
wall = time.perf_counter() - t0
counts = store.counts()
store.close()
children = resource.getrusage(resource.RUSAGE_CHILDREN)
out = {"batches": len(names), "chunks": counts["chunks"], "wall_s": round(wall, 3),
       "sent_s": round(t_sent, 3), "writer_closed_s": round(t_closed, 3),
       "writer_busy_s": round(sink.busy_s, 3), "writer_finish_s": round(sink.finish_s, 3),
       "finish_index": {k: round(v, 3) for k, v in timings.items()},
       "writer_cpu_s": round(children.ru_utime + children.ru_stime, 3),
       "writer_write_bytes": children.ru_oublock * 512,
       "finish_write_bytes": written_by_self() - self0,  # finish_index: deferred work, checkpoint
       "busy_cumulative_s": busy,
       "index_bytes": sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file())}
print("RESULT " + json.dumps(out))
"""


def capture(root: Path, work: Path, here: Path) -> Path:
    """The batches of a first build of `root` (made once per corpus and checkout commit)."""
    out = work / f"{root.name}.batches"
    marker = out / ".done"
    if marker.exists() and marker.read_text() == (checkout_commit(here) or ""):
        return out
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(here))
    result, _ = run_driver([sys.executable, "-c", CAPTURE, str(root), str(work / f"{root.name}.capture-index"),
                            str(out)], env=env, cwd=here)
    print(f"captured {result['batches']} batches of {root.name}: {result['files']} files, {result['chunks']} chunks",
          flush=True)
    marker.write_text(checkout_commit(here) or "")
    return out


def replay(batches: Path, index_dir: Path, checkout: Path) -> dict:
    subprocess.run(["rm", "-rf", str(index_dir)], check=True)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    load = os.getloadavg()[0]
    out, _ = run_driver([sys.executable, "-c", REPLAY, str(batches), str(index_dir)], env=env, cwd=checkout)
    out["load_avg_1m_before"] = load
    subprocess.run(["rm", "-rf", str(index_dir)], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--copies", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--work", type=Path, default=Path("/tmp/codesift-replay"))
    ap.add_argument("--against", type=Path, default=None, help="another checkout to replay in turn (the base)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    sides = checkout_sides(args.against)
    rows = []
    for n in args.copies:
        root = args.work / f"x{n}"
        files, source_bytes = build_once(args.src, root, n)
        batches = capture(root, args.work, here)
        for r in range(args.rounds):
            for side, checkout in (sides.items() if r % 2 == 0 else reversed(sides.items())):
                row = {"side": side, "copies": n, "round": r, "source_files": files, "source_bytes": source_bytes,
                       **replay(batches, args.work / f"x{n}.{side}.index", checkout)}
                rows.append(row)
                print(f"{side} x{n} round {r}: {row['wall_s']} s, writer busy {row['writer_busy_s']} s, "
                      f"CPU {row['writer_cpu_s']} s, wrote {row['writer_write_bytes'] + row['finish_write_bytes']:,} B,"
                      f" index {row['index_bytes']:,} B, load {row['load_avg_1m_before']}", flush=True)
    write_sides_result("writer_replay", args.src, sides, rows)


if __name__ == "__main__":
    main()
