"""The word path of encode_flat (tokenizer.WordPieceWords) against the library tokenizing whole texts."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from codesift.embed.tokenizer import TextTokenizer
from tests.embed.texts import parity_texts

# Plain texts and near misses: what the word path takes, and what it must leave to the library.
EDGES = [
    "[CLS] def f(): pass", "x[SEP]y", "a [cls] b", "[MASK]", "see [UNK] and [PAD]", "[ CLS ]",
    "vertical\x0btab", "form\x0cfeed", "del\x7fchar", "nul\x00byte", "bell\x07", "esc\x1b[0m",
    "tab\tand\r\nCRLF\rCR", "a" * 99, "b" * 100, "c" * 101, "d" * 300 + " tail", "x" * 5000,
    "##ing ##s", "___init___", "!!!", "a.b.c(d)[e]{f}", "`~!@#$%^&*()-_=+[]{}|;:'\",.<>/?\\",
    "MixedCase WORDS and CamelCaseIdentifiers", "12345 67.89 0x1F 1e-9", "   leading and trailing   ",
    "word " * 253, "word " * 254, "word " * 255, "word " * 256, "word " * 2000,
    "unbelievable " * 100, "supercalifragilistic " * 300, "a\n" * 3000,
]


def texts() -> list[str]:
    return parity_texts() + EDGES


def assert_same(words: TextTokenizer, library: TextTokenizer, batch: list[str]) -> None:
    got, want = words.encode_flat(batch), library.encode_flat(batch)
    assert got[1].tolist() == want[1].tolist()
    assert np.array_equal(got[0], want[0])
    assert got[2] == want[2]


@pytest.mark.parametrize("max_tokens", [None, 8])
def test_word_path_matches_library(model_files, max_tokens):
    words = TextTokenizer(model_files, max_tokens, by_words=True)
    library = TextTokenizer(model_files, max_tokens, by_words=False)
    assert words._words is not None and library._words is None  # the default model's tokenizer is BERT's
    batch = texts()
    assert_same(words, library, batch)
    assert len(words._words.ids) > 300  # most texts took the word path
    assert_same(words, library, batch[::-1])  # again, every word known now
    for text in batch[:100] + EDGES:  # one at a time: what the first texts' words leave unknown
        assert_same(words, library, [text])


def test_word_path_matches_library_on_a_cased_tokenizer(model_files, tmp_path):
    config = json.loads(model_files.tokenizer.read_text(encoding="utf-8"))
    assert config["normalizer"]["type"] == "BertNormalizer"
    config["normalizer"]["lowercase"] = False
    (tmp_path / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    cased = dataclasses.replace(model_files, tokenizer=tmp_path / "tokenizer.json")
    words, library = TextTokenizer(cased), TextTokenizer(cased, by_words=False)
    assert words._words is not None and not words._words.lowercase
    assert_same(words, library, texts())
    assert any(w != w.lower() for w in words._words.ids)  # words kept their case


def test_word_path_declines_other_pipelines(model_files, tmp_path):
    config = json.loads(model_files.tokenizer.read_text(encoding="utf-8"))
    config["pre_tokenizer"] = {"type": "Whitespace"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    other = dataclasses.replace(model_files, tokenizer=tmp_path / "tokenizer.json")
    assert TextTokenizer(other)._words is None


def test_word_cache_starts_again_when_full(model_files, monkeypatch):
    import codesift.embed.tokenizer as tokenizer

    monkeypatch.setattr(tokenizer, "WORD_CACHE_SIZE", 50)
    words, library = TextTokenizer(model_files), TextTokenizer(model_files, by_words=False)
    batch = texts()[:200]
    for start in range(0, len(batch), 20):
        assert_same(words, library, batch[start:start + 20])
        assert len(words._words.ids) <= 50 + 20 * 256  # emptied before a batch once over the size
