"""llama.cpp as the reference for our GGUF path (issue 12): the default model converted to GGUF,
embedded by llama.cpp (through llama-cpp-python) and by our loader of the same file.

llama-cpp-python is not a codesift dependency, nor in the `test` extra (installing it compiles
llama.cpp, minutes on a small machine): these tests skip without it. The converter case also needs
llama.cpp's `convert_hf_to_gguf.py`, from the unpacked llama-cpp-python source package named by
CODESIFT_LLAMA_CPP_SRC (see benchmarks/llama_cpp_parity.py, which logs the same comparison); the
other case runs llama.cpp on the GGUF our test writer makes (tests/embed/gguf_writer.py).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.llama_cpp_parity import (MIN_COSINE_LLAMA, MIN_COSINE_OURS, compare, compare_with_llama, convert,
                                         llama_cpp_dir)
from tests.embed.texts import parity_texts

pytestmark = pytest.mark.slow

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (`pip install llama-cpp-python` "
                                        "compiles llama.cpp); it is the reference here, not a dependency")

# every fourth parity text (every kind, a quarter of the time), and two that llama.cpp tokenizes
# otherwise than the model's tokenizer.json: special tokens written as text, and Hangul
TEXTS = parity_texts()[::4] + ["[CLS] [SEP] [PAD] [MASK] [UNK]", "한국어 문장입니다"]


def converter_dir():
    src = os.environ.get("CODESIFT_LLAMA_CPP_SRC")
    if not src:
        pytest.skip("CODESIFT_LLAMA_CPP_SRC is not set: point it at the unpacked llama-cpp-python source "
                    "package (`pip download llama-cpp-python --no-deps --no-binary :all:`) for its converter")
    return llama_cpp_dir(src)


@pytest.mark.parametrize("outtype", ["f16", "q8_0"])
def test_llama_cpp_agrees_on_its_converters_gguf(outtype, model_files, tmp_path):
    gguf = convert(model_files.root, tmp_path / f"minilm-{outtype}.gguf", outtype, converter_dir())
    r = compare(gguf, TEXTS, model_files)
    llama, ours = r["llama_cpp_vs_ours"], r["ours_gguf_vs_safetensors"]
    print(f"\n{outtype}: llama.cpp vs ours {llama}; ours GGUF vs safetensors {ours}")
    assert_agrees(llama, outtype)
    # where llama.cpp tokenizes otherwise (literal "[CLS]" text, Hangul), ours is the folder's tokenizer
    assert llama["differing_ours_equal_folder_tokenizer"] == llama["token_ids_differ"], llama
    assert ours["min_cosine"] >= MIN_COSINE_OURS[outtype], ours


def assert_agrees(llama: dict, outtype: str) -> None:
    """Most texts compared (only those over 512 tokens left out, few tokenized otherwise), all close."""
    assert llama["texts"] > 0.9 * len(TEXTS) and llama["token_ids_differ"] <= 0.05 * llama["texts"], llama
    assert llama["same_token_ids"]["min_cosine"] >= MIN_COSINE_LLAMA[outtype], llama


def test_llama_cpp_agrees_on_our_writers_gguf(model_files, tmp_path):
    """The GGUF our test writer makes (as the converter does) reads the same in llama.cpp and in ours."""
    from tests.embed.gguf_writer import write_bert_gguf

    r = compare(write_bert_gguf(model_files.root, tmp_path / "minilm.gguf", "F16"), TEXTS, model_files)
    assert_agrees(r["llama_cpp_vs_ours"], "f16")


def test_llama_cpp_runs_tiny_nomic_bert_as_we_do(model_files, tmp_path):
    """NomicBERT (rotary, SwiGLU): a tiny random-weight model (transformers' class, seeded) written as a
    `nomic-bert` GGUF with the `gguf` package; llama.cpp and our loader of that file agree."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model
    from tests.embed.gguf_writer import write_nomic_bert_gguf
    from tests.embed.test_architectures import build_tiny

    folder = tmp_path / "nomic"
    folder.mkdir()
    build_tiny("nomic-bert", folder, model_files.tokenizer)
    for ftype in ("F32", "F16"):
        gguf = write_nomic_bert_gguf(folder, model_files.root, tmp_path / f"nomic-{ftype}.gguf", ftype)
        files = resolve_model(gguf)
        assert files.architecture == "NomicBertModel"
        r = compare_with_llama(gguf, TEXTS)
        print(f"\nnomic-bert {ftype}: llama.cpp vs ours {r}")
        assert_agrees(r, "f16")
    # the same texts through the same file give vectors far apart: the agreement is not a constant's
    vecs = Embedder.load(files, device="cpu", dtype="fp32").embed(TEXTS[:20])
    assert (vecs @ vecs.T)[~np.eye(20, dtype=bool)].mean() < 0.99
