#!/usr/bin/env python3
"""Would a second vector per chunk help semantic search? An offline estimate on a built index.

Variants (the chunk's text vector is kept; a chunk's similarity is the max over its vectors):
  head     one more vector per chunk for its head, as shipped since (document.head_text:
           path | symbol | first line, identifiers spelled as words)
  name     one more vector per chunk for its header alone, "path | symbol" (or heading path)
  windows  for chunks cut at the model's limit, up to 3 more vectors for the text past the cut,
           each window prefixed with that header

Nothing here changes the index: the extra vectors live in memory for the run. Scored with
benchmarks/evalkit/score.py, semantic and hybrid, against the text vector alone (the index's head
vectors are not used here).

  python benchmarks/extra_vectors.py EVAL_DIR [--variant head|name|windows]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _kit import load_jsonl, score
from _results import write_result


def extra_sequences(chunks, tokenizer, variant: str, cls: int, sep: int, limit: int):
    """(chunk rowid, token ids) of every extra vector the variant adds."""
    from codesift.chunk.model import symbol_or_heading
    from codesift.index.document import embed_text, head_text

    for c in chunks:
        if variant == "head":
            ids = tokenizer.encode(head_text(c), add_special_tokens=False).ids
            yield c.rowid, [cls] + ids[:limit - 2] + [sep]
            continue
        header = tokenizer.encode(f"{c.path} | {symbol_or_heading(c)}".lower(), add_special_tokens=False).ids
        if variant == "name":
            yield c.rowid, [cls] + header[:limit - 2] + [sep]
            continue
        ids = tokenizer.encode(embed_text(c).strip().lower(), add_special_tokens=False).ids
        header = header[:40]
        room, pos = limit - 2 - len(header), limit - 2
        for _ in range(3):
            if pos >= len(ids):
                break
            yield c.rowid, [cls] + header + ids[pos:pos + room] + [sep]
            pos += room


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--variant", choices=["head", "name", "windows"], default="head")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import codesift.search.searcher as searcher_module
    from codesift.embed.embedder import Embedder

    emb = Embedder.load("default", device=args.device)
    tk = emb.tokenizer._tk
    tk.no_truncation()  # the windows variant needs the text past the cut
    cls, sep = tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")
    from dataclasses import replace

    text_only = replace(searcher_module.DEFAULT_CONFIG, head_vectors=False)
    s = searcher_module.Searcher(args.eval_dir / "corpus" / ".codesift", config=text_only)
    pairs = list(extra_sequences(s.store.iter_chunks(), tk, args.variant, cls, sep, emb.backend.max_tokens))
    t0 = time.perf_counter()
    seqs = [ids for _, ids in pairs]
    extra = np.concatenate([emb.backend.embed_batch(seqs[i:i + 64]) for i in range(0, len(seqs), 64)])
    embed_s = time.perf_counter() - t0
    rows, _ = s.dense()
    where = {int(r): i for i, r in enumerate(rows)}
    extra_pos = np.array([where[r] for r, _ in pairs])

    single = searcher_module.Searcher.semantic_scores

    def with_extra(self, qvec, allowed, n):
        if allowed is not None:
            return single(self, qvec, allowed, n)
        rows, mat = self.dense()
        sims = np.asarray(mat[:, 0] @ qvec.astype(mat.dtype), dtype=np.float32)
        np.maximum.at(sims, extra_pos, extra @ qvec.astype(np.float32))
        n = min(n, len(rows))
        idx = np.argpartition(-sims, n - 1)[:n]
        return {int(rows[i]): float(sims[i]) for i in idx}

    targets = load_jsonl(args.eval_dir / "queries.jsonl")
    queries = [t["query"] for t in targets]
    qvecs = s.encode_queries(queries)
    out = {"benchmark": "extra_vectors", "eval": args.eval_dir.name, "variant": args.variant,
           "extra_vectors": len(pairs), "chunks_with_extra": len({r for r, _ in pairs}), "embed_s": round(embed_s, 1)}
    for label, fn in (("single", single), ("extra", with_extra)):
        searcher_module.Searcher.semantic_scores = fn
        for mode in ("semantic", "hybrid"):
            res = {q: [r.to_dict() for r in s.search(q, mode, 10, qvec=v)] for q, v in zip(queries, qvecs)}
            out[f"{label}_{mode}"] = score(targets, res)["mrr@10"]
    searcher_module.Searcher.semantic_scores = single
    s.close()
    print(f"{args.eval_dir.name} {args.variant}: semantic {out['single_semantic']:.4f} -> {out['extra_semantic']:.4f}, "
          f"hybrid {out['single_hybrid']:.4f} -> {out['extra_hybrid']:.4f} ({len(pairs)} extra vectors)")
    print(json.dumps(out))
    write_result("extra_vectors", out)


if __name__ == "__main__":
    main()
