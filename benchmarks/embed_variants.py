#!/usr/bin/env python3
"""Ablation of what is embedded for each chunk, and of fusion, on code-search eval sets.

For each eval set (already indexed with `codesift index`), every chunk stored in the index is
re-embedded under each text variant below (on a GPU this takes seconds), and semantic and
hybrid MRR@10 are scored with benchmarks/evalkit/score.py. BM25 is the index's own.

  python benchmarks/embed_variants.py EVAL_DIR [EVAL_DIR...] [--device cuda]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from _kit import load_jsonl, score
from _results import write_result

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")


def words(identifier: str) -> str:
    return _CAMEL.sub(" ", identifier).strip()


def header(c, with_path: bool = True) -> str:
    parts = [c.path] if with_path else []
    label = c.symbol or (" > ".join(c.heading_path) if c.heading_path else "")
    if label:
        parts.append(label)
    if c.context and c.context not in c.content[:200]:
        parts.append(c.context.strip())
    return " | ".join(parts)


def split_identifiers(text: str) -> str:
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: words(m.group(0)) if "_" in m.group(0) or
                  re.search(r"[a-z][A-Z]", m.group(0)) else m.group(0), text)


def split_and_segment(text: str) -> str:
    """Identifiers split at _ and camelCase, and run-together parts split into dictionary words."""
    from codesift.terms import segment

    def one(m):
        parts = words(m.group(0)).split()
        return " ".join(" ".join(segment(p.lower()) or (p,)) for p in parts)

    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", one, text)


VARIANTS = {
    "header+content (EMBED_FORMAT 1)": lambda c: header(c) + "\n" + c.content,
    "content only": lambda c: c.content,
    "header without path": lambda c: header(c, with_path=False) + "\n" + c.content,
    "header in words": lambda c: words(header(c).replace("/", " ").replace(".py", "")) + "\n" + c.content,
    "header + identifiers split": lambda c: header(c) + "\n" + split_identifiers(c.content),
    "header + identifiers split and segmented": lambda c: header(c) + "\n" + split_and_segment(c.content),
    "words header + identifiers split": lambda c: words(header(c).replace("/", " ").replace(".py", ""))
    + "\n" + split_identifiers(c.content),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dirs", type=Path, nargs="+")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()

    from codesift.embed.embedder import Embedder
    from codesift.search.fusion import normalized_fusion, reciprocal_rank_fusion
    from codesift.search.searcher import Searcher

    emb = Embedder.load(args.model, device=args.device)
    table: dict = {}
    for d in args.eval_dirs:
        targets = load_jsonl(d / "queries.jsonl")
        queries = [t["query"] for t in targets]
        s = Searcher(d / "corpus" / ".codesift", model=args.model)
        chunks = list(s.store.iter_chunks())
        rowids = np.array([c.rowid for c in chunks])
        qvec = emb.embed(queries)
        bm25 = [s.bm25_scores(q, None, 100) for q in queries]
        table[d.name] = {"bm25": score(targets, _results(bm25, chunks, queries), k=10)["mrr@10"]}
        for name in args.variants.split(","):
            mat = emb.embed([VARIANTS[name](c) for c in chunks])
            sims = qvec @ mat.T
            sem = []
            for row in sims:
                top = np.argpartition(-row, 100)[:100]
                sem.append({int(rowids[i]): float(row[i]) for i in top})
            rec = {"semantic": score(targets, _results(sem, chunks, queries), k=10)["mrr@10"],
                   "hybrid_rrf60": score(targets, _results([reciprocal_rank_fusion([b, x]) for b, x in zip(bm25, sem)],
                                                           chunks, queries), k=10)["mrr@10"],
                   "hybrid_norm": score(targets, _results([normalized_fusion([b, x]) for b, x in zip(bm25, sem)],
                                                          chunks, queries), k=10)["mrr@10"]}
            table[d.name][name] = rec
            print(f"{d.name:8} {name:34} " + "  ".join(f"{k} {v:.4f}" for k, v in rec.items()), flush=True)
        s.close()
    print(json.dumps(table))
    write_result("embed_variants", table)


def _results(score_dicts, chunks, queries) -> dict:
    by_row = {c.rowid: c for c in chunks}
    out = {}
    for q, sc in zip(queries, score_dicts):
        top = sorted(sc, key=lambda r: -sc[r])[:10]
        out[q] = [{"path": by_row[r].path, "start_line": by_row[r].start_line, "end_line": by_row[r].end_line}
                  for r in top]
    return out


if __name__ == "__main__":
    main()
