#!/usr/bin/env python3
"""`codesift index` with one GPU and with two, on a model big enough for the GPU to be the limit.

The model is BERT-base-sized (12 layers, 768 wide, 3072 feed-forward) with random weights and the
default model's tokenizer: embedding cost is what is measured, not what the vectors mean. Each
side is one cold `codesift index` process; the GPUs it sees are set with CUDA_VISIBLE_DEVICES.

  python benchmarks/multi_gpu_index.py ROOT --tokenizer-from MODEL_DIR [--gpus 1 2]

Prints one line per side and the ratio; writes its JSON log (benchmarks/_results.py).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_result  # noqa: E402
from index_scale import run_index  # noqa: E402

BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


def random_bert_base(tokenizer_from: Path, out: Path, seed: int = 0) -> Path:
    """A BERT-base-sized model folder with random fp16 weights and `tokenizer_from`'s tokenizer."""
    import numpy as np
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((tokenizer_from / "config.json").read_text())
    config.update(BASE)
    (out / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "modules.json",
                 "sentence_bert_config.json"):
        if (tokenizer_from / name).exists():
            shutil.copy(tokenizer_from / name, out / name)
    if (tokenizer_from / "1_Pooling").is_dir():
        shutil.copytree(tokenizer_from / "1_Pooling", out / "1_Pooling", dirs_exist_ok=True)
        pooling = json.loads((out / "1_Pooling/config.json").read_text())
        pooling["word_embedding_dimension"] = BASE["hidden_size"]
        (out / "1_Pooling/config.json").write_text(json.dumps(pooling))
    rng = np.random.default_rng(seed)
    h, f, v = BASE["hidden_size"], BASE["intermediate_size"], config["vocab_size"]

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    def ones(n):
        return np.ones(n, np.float16)

    def zeros(n):
        return np.zeros(n, np.float16)

    t = {"embeddings.word_embeddings.weight": w(v, h),
         "embeddings.position_embeddings.weight": w(config["max_position_embeddings"], h),
         "embeddings.token_type_embeddings.weight": w(config["type_vocab_size"], h),
         "embeddings.LayerNorm.weight": ones(h), "embeddings.LayerNorm.bias": zeros(h)}
    for i in range(BASE["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + name + ".weight"], t[p + name + ".bias"] = w(h, h), zeros(h)
        t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"] = ones(h), zeros(h)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = w(f, h), zeros(f)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = w(h, f), zeros(h)
        t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"] = ones(h), zeros(h)
    save_file(t, str(out / "model.safetensors"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--tokenizer-from", type=Path, required=True)
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "codesift-multi-gpu")
    args = ap.parse_args()
    model = random_bert_base(args.tokenizer_from, args.work / "bert-base-random")
    rows = []
    for n in args.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
        index_dir = args.work / f"index-{n}"
        shutil.rmtree(index_dir, ignore_errors=True)
        r = run_index(args.root, index_dir, "cuda", str(model), rebuild=True)
        r["gpus"] = n
        rows.append(r)
        print(f"{n} GPU(s): {r['wall_s']} s, {r['tokens']:,} tokens, {r['tokens_per_s']:,} tokens/s, "
              f"timings {r['timings']}", flush=True)
    out = {"root": str(args.root), "model": "BERT-base-sized, random weights", "rows": rows}
    if len(rows) >= 2:
        out["ratio"] = round(rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"], 3)
        print(f"{rows[1]['gpus']} GPUs / {rows[0]['gpus']}: {out['ratio']}x")
    print(json.dumps(out))
    write_result("multi_gpu_index", out)


if __name__ == "__main__":
    main()
