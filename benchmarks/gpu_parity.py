#!/usr/bin/env python3
"""A model on the GPU in fp16 through codesift's packed runner against sentence-transformers in fp32,
on the 520 parity texts (issue 12's GPU parity figures).

  python benchmarks/gpu_parity.py MODEL_DIR [--dtype fp16]

Prints the minimum and mean cosine; writes its JSON log (benchmarks/_results.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    from codesift.embed.embedder import Embedder
    from tests.embed.texts import parity_texts

    texts = parity_texts()
    emb = Embedder.load(str(args.model), device=args.device, dtype=args.dtype)
    ours = emb.embed(texts)
    ref = SentenceTransformer(str(args.model), device=args.device).float().encode(texts, batch_size=32, convert_to_numpy=True)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (ours * ref).sum(1)
    out = {"model": str(args.model), "architecture": emb.files.config.get("model_type"), "device": args.device, "dtype": args.dtype,
           "texts": len(texts), "packed": bool(emb.backend.packed_supported),
           "min_cos": round(float(cos.min()), 6), "mean_cos": round(float(cos.mean()), 6)}
    print(json.dumps(out))
    write_result("gpu_parity", out)


if __name__ == "__main__":
    main()
