#!/usr/bin/env python3
"""What `codesift index` costs on the CPU per MB of source, before and after a change, in one run.

Two checkouts are measured side by side: this one, and `--before` (e.g. a `git worktree` of the
commit the change started from). Each measurement is a fresh Python process importing codesift
from one checkout, with TOKENIZERS_PARALLELISM=false as in the prepare workers:

  cost    one cold pass of the prepare workers' function over the corpus, as a worker runs it
          (prepare_file, for_transport, the pool's pickling), in one process: CPU seconds (user +
          sys) per MB of source and per million tokens; then the indexing process's share of the
          same files, replayed in that process: unpickling them, and indexer._index's loop over
          them (the writer's bookkeeping, batches packed and laid out for a GPU by fill_packed
          with constant vectors back, transactions pickled for the writer process)
  stages  the same pass with the prepare steps timed one by one (the timers cost a little)
  index   the whole indexer with the model replaced by constant vectors (`--workers` processes,
          a writer process as in a big run): the indexing process's own CPU seconds per MB, i.e.
          the one process every file goes through (unpickling, the writer's queue, batches for
          the model, hand-over to the writer process)

Outputs must not change: every file's prepared result (text hashes, token ids, BM25 fields, chunk
rows, calls, imports) is hashed in each cost pass, and the index run's tables are dumped and
hashed; the two checkouts must agree (`identical` in the log). `--parity` adds trees that are
only checked, not timed (other languages, odd encodings).

  python benchmarks/prepare_cost.py /tmp/evals/stdlib/corpus --before /tmp/before --repeats 3 \\
      --parity /usr/lib/python3.11/test .

Cost passes alternate between the checkouts (the machine may be shared); each figure is the
median of the repeats, with the load average logged beside each run. The last line printed is
one JSON object; the log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_result  # noqa: E402

# Prepare steps timed by `stages`: (module, attribute), each replaced by a timing wrapper where the
# checkout has it (a step inside another is counted in both).
STAGES = [
    ("codesift.index.prepare", "read_source"),
    ("codesift.index.prepare", "file_sha256"),
    ("codesift.walk.text", "decode_text"),
    ("codesift.chunk.lines", "split_lines"),
    ("codesift.chunk", "chunk_file"),
    ("codesift.chunk.code", "chunk_code"),
    ("codesift.index.prepare", "bm25_fields"),
    ("codesift.index.prepare", "embed_text"),
    ("codesift.index.prepare", "head_text"),
    ("codesift.index.prepare", "embed_hash"),
    ("codesift.index.prepare", "chunk_rows"),
    ("codesift.index.prepare", "chunk_calls"),
    ("codesift.index.prepare", "tokenize_documents"),
]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def file_digest(p) -> str:
    """One prepared file's outputs, as a hash: what the index stores and what the model is given."""
    h = hashlib.sha256()
    stored = pickle.loads(p.stored) if p.stored is not None else None
    if stored is not None:
        # Imports from several statements on one line come out of tree-sitter's captures in an order
        # that varies from one process to another (e.g. `from __future__ import a; import b` twice on
        # a line): compared as a set per line, as the index's imports table is read.
        rows, fts, calls, imports = stored
        stored = rows, fts, calls, sorted(imports, key=lambda i: (i.line, i.module, i.name or "", i.alias or ""))
    for part in (p.source.rel, p.sha256, p.language, p.n_lines, p.decode_errors, p.n_chunks, p.hashes,
                 p.truncated, p.fallback, p.error, stored):
        h.update(repr(part).encode("utf-8", "surrogatepass"))
    for array in (p.token_ids, p.token_lengths):
        h.update(b"-" if array is None else array.astype("<i4").tobytes())
    return h.hexdigest()


def warm_up(model) -> None:
    """Imports, the tokenizer and the Python grammar, on a file of no corpus: the one-time costs a
    pool worker pays before its first file (its caches of words stay all but empty)."""
    from codesift.index.prepare import prepare_file
    from codesift.walk import walk

    with tempfile.TemporaryDirectory() as d:
        Path(d, "warm.py").write_text("def f(x):\n    return x\n")
        Path(d, "warm.md").write_text("# Title\n\ntext\n")
        for f in walk(Path(d)).files:
            prepare_file(f, None, model)


def measure_cost(root: Path, with_stages: bool) -> dict:
    from multiprocessing.reduction import ForkingPickler  # what the pool sends results back with

    from codesift.embed.model_files import resolve_model
    from codesift.index.prepare import prepare_file
    from codesift.walk import walk

    model = resolve_model("default")
    files = walk(root).files
    warm_up(model)
    spent: dict[str, float] = {}
    if with_stages:
        import importlib

        def timing(name, fn):
            def timed(*args, **kwargs):
                t0 = cpu()
                try:
                    return fn(*args, **kwargs)
                finally:
                    spent[name] = spent.get(name, 0.0) + cpu() - t0
            return timed

        for module, attr in STAGES:
            mod = importlib.import_module(module)
            if hasattr(mod, attr):
                setattr(mod, attr, timing(attr, getattr(mod, attr)))
        code = importlib.import_module("codesift.chunk.code")
        real_parser = code._parser

        class TimedParser:
            def __init__(self, parser):
                self.parser = parser

            def parse(self, data):
                t0 = cpu()
                try:
                    return self.parser.parse(data)
                finally:
                    spent["tree-sitter parse"] = spent.get("tree-sitter parse", 0.0) + cpu() - t0

        code._parser = lambda language: TimedParser(real_parser(language))
    sent: list[bytes] = []
    transport = 0.0
    t0, w0 = cpu(), time.perf_counter()
    for f in files:
        p = prepare_file(f, None, model)
        t1 = cpu()
        sent.append(bytes(ForkingPickler.dumps(p.for_transport())))
        transport += cpu() - t1
    worker_s, wall_s = cpu() - t0, time.perf_counter() - w0
    t0 = cpu()
    received = [pickle.loads(b) for b in sent]
    unpickle_s = cpu() - t0
    size = sum(f.size for f in files)
    tokens = sum(int(p.token_lengths.sum()) for p in received if p.token_lengths is not None)
    out = {"files": len(files), "bytes": size, "tokens": tokens, "chunks": sum(p.n_chunks for p in received),
           "worker_cpu_s": round(worker_s, 3), "worker_wall_s": round(wall_s, 3),
           "transport_cpu_s": round(transport, 3), "sent_bytes": sum(map(len, sent)),
           "main_unpickle_cpu_s": round(unpickle_s, 3), "loadavg": os.getloadavg()[0],
           "digest": hashlib.sha256("".join(map(file_digest, received)).encode()).hexdigest()}
    with tempfile.TemporaryDirectory() as d:
        out.update(replay_main(received, Path(d)))
    if with_stages:
        out["stages_cpu_s"] = {k: round(v, 3) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    return out


def measure_parity(roots: list[Path]) -> dict:
    from codesift.embed.model_files import resolve_model
    from codesift.index.prepare import prepare_file
    from codesift.walk import walk

    model = resolve_model("default")
    out = {}
    for root in roots:
        files = walk(root).files
        h = hashlib.sha256()
        for f in files:
            h.update(file_digest(prepare_file(f, None, model).for_transport()).encode())
        out[str(root)] = {"files": len(files), "digest": h.hexdigest()}
    return out


class ConstantRunner:
    """Stands in for the model: constant vectors, after laying each batch out as the GPU runner does
    on the host (fill_packed into buffers of its sizes), so that the indexing process's share of
    feeding a GPU is counted."""

    def __init__(self, dim: int, max_tokens: int = 256):
        import math

        import numpy as np

        self.dim, self.max_tokens, self.token_budget = dim, max_tokens, 65536
        self.max_seqs = self.token_budget // 8  # scheduler.TOKENS_PER_SEQUENCE_FLOOR
        n_segments = self.max_seqs + math.ceil(self.token_budget / max_tokens) + 1
        self.buffers = [np.zeros(self.token_budget, np.int32) for _ in range(3)] + [np.zeros(n_segments + 1, np.int32)]

    def run(self, batches):
        import numpy as np

        from codesift.embed.batches import fill_packed

        for b in batches:
            fill_packed(*self.buffers, b.ids, b.lengths, self.max_tokens)
            v = np.zeros((len(b.lengths), self.dim), np.float32)
            v[:, 0] = 1
            yield b.keys, v


class PickledSink:
    """Stands in for the writer process: each transaction pickled as ProcessSink sends it, then dropped."""

    def __init__(self):
        self.bytes_written, self.busy_s, self.sent = 0, 0.0, 0

    def start(self):
        pass

    def put(self, batch):
        self.sent += len(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self):
        pass


def replay_main(received: list, index_dir: Path) -> dict:
    """The indexing process's work on prepared files, as indexer._index does it, in this process:
    the writer's bookkeeping, batches packed and laid out for the model (ConstantRunner), vectors
    back, transactions pickled for the writer process. CPU seconds of the process (every thread)
    and of the thread that runs the loop."""
    import codesift.embed.scheduler as scheduler
    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import IndexSummary
    from codesift.index.pipeline import EmbedPipeline, Writer
    from codesift.index.store import Store

    embedder = Embedder.load("default", device="cpu")
    scheduler.make_runner = lambda backend, *a, **k: ConstantRunner(backend.dim, backend.max_tokens)
    summary = IndexSummary(root=index_dir, index_dir=index_dir)
    with Store(index_dir, create=True) as store:
        pipeline = EmbedPipeline(embedder.files, embedder, "cpu", None, 32, None)
        writer = Writer(store, {}, summary)
        writer.sink = PickledSink()
        t0, m0 = cpu(), time.thread_time()
        for p in received:
            writer.add(p, pipeline)
            writer.receive(pipeline.poll())
            writer.flush(final=False)
        pipeline.end_input()
        while not pipeline.finished:
            writer.receive(pipeline.wait())
            writer.flush(final=False)
        writer.flush(final=True)
        pipeline.close()
        process_s, thread_s = cpu() - t0, time.thread_time() - m0
    return {"main_replay_cpu_s": round(process_s, 3), "main_replay_loop_thread_cpu_s": round(thread_s, 3),
            "main_replay_sent_bytes": writer.sink.sent, "main_replay_tokens": summary.tokens}


def dump_index(index_dir: Path) -> dict:
    """Each table's rows as a hash (and a count), FTS terms read through fts5vocab, ids and row ids
    included (files are written in the order walked)."""
    import sqlite3

    db = sqlite3.connect(index_dir / "index.db")
    db.execute("CREATE VIRTUAL TABLE temp.terms_vocab USING fts5vocab(main, terms_fts, 'instance')")
    # not the vector segment a chunk's vectors went to: transactions close on a clock
    columns = ", ".join(c for _, c, *_ in db.execute("PRAGMA table_info(chunks)") if c not in ("seg", "seg_row"))
    queries = {
        "files": "SELECT path, sha256, size, language, n_lines, decode_errors, role FROM files ORDER BY id",
        "chunks": f"SELECT rowid, {columns} FROM chunks ORDER BY rowid",
        "calls": "SELECT chunk_rowid, name FROM calls ORDER BY chunk_rowid, name",
        "imports": "SELECT * FROM imports ORDER BY file_id, line, module, name, alias",
        "terms": "SELECT term, doc, col, offset FROM terms_vocab ORDER BY doc, col, offset",
    }
    out = {}
    for name, sql in queries.items():
        h, n = hashlib.sha256(), 0
        for row in db.execute(sql):
            h.update(repr(row).encode("utf-8", "surrogatepass"))
            n += 1
        out[name] = {"rows": n, "digest": h.hexdigest()}
    db.close()
    return out


def measure_index(root: Path, workers: int) -> dict:
    import codesift.embed.scheduler as scheduler
    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree
    from codesift.index.store import DB_NAME
    from codesift.walk import walk

    assert DB_NAME == "index.db"
    embedder = Embedder.load("default", device="cpu")
    scheduler.make_runner = lambda backend, *a, **k: ConstantRunner(backend.dim, backend.max_tokens)
    size = sum(f.size for f in walk(root).files)
    runs = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(2):  # the first starts the worker pool
            t0, w0 = cpu(), time.perf_counter()
            summary = index_tree(root, Path(d) / "index", embedder=embedder, rebuild=True, workers=workers,
                                 writer_process=True)
            runs.append({"main_cpu_s": round(cpu() - t0, 3), "wall_s": round(time.perf_counter() - w0, 3),
                         "loadavg": os.getloadavg()[0], "timings": summary.timings})
        tables = dump_index(Path(d) / "index")
    return {"runs": runs, "bytes": size, "files": summary.files, "chunks": summary.chunks,
            "tokens": summary.tokens, "workers": workers, "tables": tables}


def child(tree: Path, mode: str, args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, __file__, "--child", mode, *args], env=env, cwd=tree,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} in {tree} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git_head(tree: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or None


def summarize(costs: list[dict]) -> dict:
    first = costs[0]
    mb, mtok = first["bytes"] / 1e6, first["tokens"] / 1e6
    worker = statistics.median(c["worker_cpu_s"] for c in costs)
    unpickle = statistics.median(c["main_unpickle_cpu_s"] for c in costs)
    replay = statistics.median(c["main_replay_cpu_s"] for c in costs)
    return {"worker_cpu_s_median": round(worker, 3), "worker_cpu_s_per_mb": round(worker / mb, 4),
            "worker_cpu_s_per_mtok": round(worker / mtok, 4),
            "source_mb_per_worker_cpu_s": round(mb / worker, 4),
            "tokens_per_worker_cpu_s": round(first["tokens"] / worker),
            "main_unpickle_cpu_s_per_mb": round(unpickle / mb, 5), "main_replay_cpu_s_median": round(replay, 3),
            "main_replay_cpu_s_per_mb": round(replay / mb, 4),
            "files": first["files"], "bytes": first["bytes"], "tokens": first["tokens"], "chunks": first["chunks"],
            "sent_bytes": first["sent_bytes"]}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        mode, rest = sys.argv[2], sys.argv[3:]
        if mode in ("cost", "stages"):
            result = measure_cost(Path(rest[0]), with_stages=mode == "stages")
        elif mode == "parity":
            result = measure_parity([Path(r) for r in rest])
        else:
            result = measure_index(Path(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="the corpus to time (e.g. the stdlib eval corpus)")
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the commit to compare with")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="prepare workers of the index run")
    ap.add_argument("--parity", type=Path, nargs="*", default=[], help="more trees, checked for equal outputs only")
    ap.add_argument("--skip-index", action="store_true")
    args = ap.parse_args()
    root = args.root.resolve()
    trees = {"before": args.before.resolve(), "after": HERE.parent}
    out: dict = {"benchmark": "prepare_cost", "root": str(root), "cpus": os.cpu_count(),
                 "trees": {k: {"path": str(v), "commit": git_head(v)} for k, v in trees.items()},
                 "repeats": args.repeats, "loadavg_start": os.getloadavg()}
    costs: dict[str, list] = {k: [] for k in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            costs[name].append(child(tree, "cost", [str(root)]))
            print(f"cost {name}: {costs[name][-1]['worker_cpu_s']} CPU s (load {costs[name][-1]['loadavg']})",
                  file=sys.stderr)
    for name in trees:
        out[name] = {"cost_runs": costs[name], **summarize(costs[name]),
                     "stages": child(trees[name], "stages", [str(root)])}
        if args.parity:
            out[name]["parity"] = child(trees[name], "parity", [str(p.resolve()) for p in args.parity])
        if not args.skip_index:
            index = child(trees[name], "index", [str(root), str(args.workers)])
            runs = index["runs"]
            main_cpu = min(r["main_cpu_s"] for r in runs[1:])
            index["main_cpu_s_per_mb"] = round(main_cpu / (index["bytes"] / 1e6), 4)
            out[name]["index"] = index
        print(f"{name}: {out[name]['worker_cpu_s_per_mb']} worker CPU s/MB", file=sys.stderr)
    b, a = out["before"], out["after"]
    identical = {"prepared": {c["digest"] for c in b["cost_runs"] + a["cost_runs"]} == {b["cost_runs"][0]["digest"]}}
    if args.parity:
        identical["parity"] = b["parity"] == a["parity"]
    if not args.skip_index:
        identical["index_tables"] = b["index"]["tables"] == a["index"]["tables"]
        out["main_cpu_after_over_before"] = round(a["index"]["main_cpu_s_per_mb"] / b["index"]["main_cpu_s_per_mb"], 3)
    out["identical"] = identical
    out["worker_cpu_after_over_before"] = round(a["worker_cpu_s_median"] / b["worker_cpu_s_median"], 3)
    out["main_replay_after_over_before"] = round(a["main_replay_cpu_s_median"] / b["main_replay_cpu_s_median"], 3)
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out))
    write_result("prepare_cost", out)


if __name__ == "__main__":
    main()
