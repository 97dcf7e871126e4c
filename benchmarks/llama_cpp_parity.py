#!/usr/bin/env python3
"""Our GGUF path against llama.cpp, the reference we did not write (issue 12).

The default model (all-MiniLM-L6-v2) is converted to GGUF by llama.cpp's own
`convert_hf_to_gguf.py` (the one vendored in the llama-cpp-python source package) at F16 and
Q8_0. Each file is embedded by llama.cpp (`Llama(path, embedding=True).embed(text)`: mean-pooled,
unnormalised) and by our GGUF loader; our GGUF path is also compared with our safetensors path.

  pip install llama-cpp-python            # compiles llama.cpp (minutes); not a codesift dependency
  pip download llama-cpp-python --no-deps --no-binary :all: && tar xzf llama_cpp_python-*.tar.gz
  python benchmarks/llama_cpp_parity.py --llama-src llama_cpp_python-X.Y.Z [--texts N]

`--llama-src` is the unpacked source package (or its vendor/llama.cpp): the converter and the
`gguf` package version it was written with come from there. The texts are the 520 parity texts of
tests/embed/texts.py; llama.cpp is only given texts that fit the GGUF's context (512 tokens):
past it, llama-cpp-python cuts the tokens without keeping the final [SEP], where we keep it, so
those inputs differ by construction. The models are compared on the texts both tokenizers turn
into the same ids; the others are counted and listed, with whether our ids there are those of the
model folder's own tokenizer (sentence-transformers'). The same functions run in
tests/embed/test_llama_cpp.py.
The last line printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

OUTTYPES = ("f16", "q8_0")
# llama.cpp against our loader of the same file; our GGUF against our safetensors. Q8_0 is allowed
# more: its weights are rounded, and llama.cpp also rounds the activations it multiplies them with
# to 8 bits (ggml's Q8_0 dot product takes both sides in Q8_0), where we multiply in float32.
MIN_COSINE_LLAMA = {"f16": 0.999, "q8_0": 0.998}
MIN_COSINE_OURS = {"f16": 0.9999, "q8_0": 0.999}


def llama_cpp_dir(src: str | os.PathLike) -> Path:
    """The folder holding `convert_hf_to_gguf.py` and `gguf-py/`: `src` itself or its vendor/llama.cpp."""
    src = Path(src)
    for cand in (src, src / "vendor" / "llama.cpp"):
        if (cand / "convert_hf_to_gguf.py").is_file() and (cand / "gguf-py").is_dir():
            return cand
    raise FileNotFoundError(f"{src}: no convert_hf_to_gguf.py and gguf-py/ here or in vendor/llama.cpp; "
                            "give the unpacked llama-cpp-python source package")


def convert(model_root: Path, out: Path, outtype: str, src: Path) -> Path:
    """`model_root` (a Hugging Face folder) to GGUF with llama.cpp's converter and its own gguf-py."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src / "gguf-py"),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(src / "convert_hf_to_gguf.py"), str(model_root),
                           "--outtype", outtype, "--outfile", str(out)], env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out


def llama_vectors(path: Path, texts: list[str]) -> tuple[np.ndarray, list[list[int]]]:
    """llama.cpp's embedding of each text (one text per call) and its token ids."""
    from llama_cpp import Llama

    llm = Llama(str(path), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512, verbose=False,
                n_threads=max(1, min(4, os.cpu_count() or 1)))
    try:
        vecs = np.array([llm.embed(t) for t in texts], dtype=np.float32)
        ids = [llm.tokenize(t.encode("utf-8"), add_bos=True, special=False) for t in texts]
    finally:
        llm.close()
    return vecs, ids


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
    return (a * b).sum(1)


def summary(cos: np.ndarray, texts: list[str]) -> dict:
    worst = int(cos.argmin())
    return {"texts": len(cos), "min_cosine": round(float(cos.min()), 7), "mean_cosine": round(float(cos.mean()), 7),
            "worst_text": texts[worst][:80]}


def compare_with_llama(gguf: Path, texts: list[str]) -> dict:
    """llama.cpp vs our loader of the same `gguf`, over those `texts` that fit its context.

    The model is compared on the texts that llama.cpp's tokenizer and ours turn into the same ids
    (`same_token_ids`); the others are counted and listed (`differing`: indices into `texts`), with
    the cosine over all texts beside: there the tokenizers differ, not the models."""
    return _llama_run(gguf, texts)[0]


def _llama_run(gguf: Path, texts: list[str]) -> tuple[dict, np.ndarray, list[int]]:
    """compare_with_llama's summary, llama.cpp's vectors, and the indices (into `texts`) of the texts
    both tokenized alike, which those vectors' rows are."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model
    from codesift.embed.tokenizer import TextTokenizer

    files = resolve_model(gguf)
    tok = TextTokenizer(files)
    enc = [tok.encode([t]) for t in texts]
    fits = [i for i, e in enumerate(enc) if not e.truncated]
    shown = [texts[i] for i in fits]
    ref, ref_ids = llama_vectors(gguf, shown)
    cos = cosines(Embedder.load(files, device="cpu", dtype="fp32", engine="torch").embed(shown), ref)
    same = [k for k, i in enumerate(fits) if enc[i].ids[0] == list(ref_ids[k])]
    differ = [k for k in range(len(fits)) if k not in set(same)]
    out = {"texts": len(shown), "left_out_over_context": len(texts) - len(fits),
           "same_token_ids": summary(cos[same], [shown[k] for k in same]),
           "token_ids_differ": len(differ), "differing": [fits[k] for k in differ],
           "differing_texts": [shown[k][:60] for k in differ[:10]],
           "all_texts": summary(cos, shown)}
    return out, ref[same], [fits[k] for k in same]


def compare(gguf: Path, texts: list[str], model_files) -> dict:
    """llama.cpp vs ours on `gguf`; ours on `gguf`, and llama.cpp, vs ours on the safetensors
    `model_files`; where llama.cpp's token ids differ from ours, whether ours are the folder's."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model
    from codesift.embed.tokenizer import TextTokenizer

    files = resolve_model(gguf)
    llama, llama_vecs, rows = _llama_run(gguf, texts)
    ours_tok, folder_tok = TextTokenizer(files), TextTokenizer(model_files, max_tokens=files.max_tokens)
    llama["differing_ours_equal_folder_tokenizer"] = sum(
        ours_tok.encode([texts[i]]).ids == folder_tok.encode([texts[i]]).ids for i in llama["differing"])
    # ours GGUF vs ours safetensors: with the folder's own token limit, so long texts are cut alike
    same_limit = dataclasses.replace(files, max_seq_length=model_files.max_seq_length)
    cut = Embedder.load(same_limit, device="cpu", dtype="fp32", engine="torch").embed(texts)
    st = Embedder.load(model_files, device="cpu", dtype="fp32", engine="torch").embed(texts)
    # llama.cpp vs the safetensors model, on the texts it tokenized as we do and the folder does not cut
    whole = [k for k, i in enumerate(rows) if not TextTokenizer(model_files).encode([texts[i]]).truncated]
    return {"file_mb": round(gguf.stat().st_size / 1e6, 1), "llama_cpp_vs_ours": llama,
            "ours_gguf_vs_safetensors": summary(cosines(cut, st), texts),
            "llama_cpp_vs_safetensors": summary(cosines(llama_vecs[whole], st[[rows[k] for k in whole]]),
                                                [texts[rows[k]] for k in whole])}


def llama_cpp_version() -> str:
    import llama_cpp

    return getattr(llama_cpp, "__version__", "unknown")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-src", required=True, help="the unpacked llama-cpp-python source package")
    ap.add_argument("--texts", type=int, default=520, help="how many of the parity texts (default: all 520)")
    ap.add_argument("--model", default="default", help="a BERT model folder (default: the default model)")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_result

    from codesift.embed.model_files import resolve_model
    from tests.embed.texts import parity_texts

    src = llama_cpp_dir(args.llama_src)
    model_files = resolve_model(args.model)
    texts = parity_texts()[: args.texts]
    out: dict = {"model": model_files.name, "llama_cpp_python": llama_cpp_version(),
                 "converter": str(src / "convert_hf_to_gguf.py"), "results": {}}
    with tempfile.TemporaryDirectory() as d:
        for outtype in OUTTYPES:
            gguf = convert(model_files.root, Path(d) / f"model-{outtype}.gguf", outtype, src)
            r = compare(gguf, texts, model_files)
            out["results"][outtype] = r
            llama = r["llama_cpp_vs_ours"]
            print(f"{outtype}: llama.cpp vs ours min cos {llama['same_token_ids']['min_cosine']} over "
                  f"{llama['same_token_ids']['texts']} texts tokenized alike ({llama['token_ids_differ']} not); "
                  f"ours GGUF vs safetensors min cos {r['ours_gguf_vs_safetensors']['min_cosine']} over "
                  f"{len(texts)}; llama.cpp vs safetensors min cos {r['llama_cpp_vs_safetensors']['min_cosine']} "
                  f"over {r['llama_cpp_vs_safetensors']['texts']}", file=sys.stderr)
    out["passed"] = all(out["results"][t]["llama_cpp_vs_ours"]["same_token_ids"]["min_cosine"] >= MIN_COSINE_LLAMA[t]
                        and out["results"][t]["ours_gguf_vs_safetensors"]["min_cosine"] >= MIN_COSINE_OURS[t]
                        for t in OUTTYPES)
    write_result("llama_cpp_parity", out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
