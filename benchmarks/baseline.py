#!/usr/bin/env python3
"""The afternoon baseline the issues compare against: sentence-transformers all-MiniLM-L6-v2 +
bm25s + reciprocal rank fusion, over one chunk per function (ast), and BM25 over 50-line windows.

  python benchmarks/baseline.py EVAL_DIR [EVAL_DIR...]

Scored with benchmarks/evalkit/score.py. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import numpy as np

from _kit import load_jsonl, score
from _results import write_result


def function_chunks(corpus: Path) -> list[tuple[str, int, int, str]]:
    out = []
    for p in sorted(corpus.rglob("*.py")):
        if ".codesift" in p.parts:
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        lines = text.split("\n")
        rel = p.relative_to(corpus).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                out.append((rel, start, node.end_lineno, "\n".join(lines[start - 1:node.end_lineno])))
    return out


def window_chunks(corpus: Path, size: int = 50) -> list[tuple[str, int, int, str]]:
    out = []
    for p in sorted(corpus.rglob("*.py")):
        if ".codesift" in p.parts:
            continue
        lines = p.read_text(encoding="utf-8", errors="replace").split("\n")
        rel = p.relative_to(corpus).as_posix()
        for s in range(0, len(lines), size):
            out.append((rel, s + 1, min(len(lines), s + size), "\n".join(lines[s:s + size])))
    return out


def bm25_rank(chunks, queries, k=100):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([c[3] for c in chunks], stopwords="en", show_progress=False),
                    show_progress=False)
    docs, scores = retriever.retrieve(bm25s.tokenize(queries, stopwords="en", show_progress=False),
                                      k=min(k, len(chunks)), show_progress=False)
    return [{int(d): float(s) for d, s in zip(dr, sr) if s > 0} for dr, sr in zip(docs, scores)]


def rrf(a: dict, b: dict, k: int = 60) -> dict:
    out: dict = {}
    for lst in (a, b):
        for rank, key in enumerate(sorted(lst, key=lambda x: -lst[x])):
            out[key] = out.get(key, 0.0) + 1.0 / (k + rank + 1)
    return out


def results(chunks, ranked, queries):
    return {q: [{"path": chunks[i][0], "start_line": chunks[i][1], "end_line": chunks[i][2]}
                for i in sorted(r, key=lambda x: -r[x])[:10]] for q, r in zip(queries, ranked)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dirs", type=Path, nargs="+")
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    from codesift.embed.model_files import resolve_model

    model = SentenceTransformer(str(resolve_model().root), device="cpu")
    table = {}
    for d in args.eval_dirs:
        targets = load_jsonl(d / "queries.jsonl")
        queries = [t["query"] for t in targets]
        row = {}
        funcs = function_chunks(d / "corpus")
        lex = bm25_rank(funcs, queries)
        doc_vecs = model.encode([c[3] for c in funcs], batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
        q_vecs = model.encode(queries, convert_to_numpy=True, normalize_embeddings=True)
        sims = q_vecs @ doc_vecs.T
        sem = []
        for srow in sims:
            top = np.argpartition(-srow, 100)[:100]
            sem.append({int(i): float(srow[i]) for i in top})
        for name, ranked in (("functions_semantic", sem), ("functions_bm25", lex),
                             ("functions_hybrid_rrf", [rrf(a, b) for a, b in zip(lex, sem)])):
            row[name] = score(targets, results(funcs, ranked, queries))
        wins = window_chunks(d / "corpus")
        row["windows_bm25"] = score(targets, results(wins, bm25_rank(wins, queries), queries))
        table[d.name] = row
        for name, s in row.items():
            print(f"{d.name:8} {name:22} MRR@10 {s['mrr@10']:.4f}  lines {s['mean_result_lines']}", flush=True)
    print(json.dumps(table))
    write_result("baseline", table)


if __name__ == "__main__":
    main()
