"""The query path of TextTokenizer (encode_queries, PlainWordPiece reading tokenizer.json as text)
against the library tokenizing the same texts."""
from __future__ import annotations

import dataclasses
import json

import pytest

from codesift.embed.tokenizer import PlainWordPiece, TextTokenizer
from tests.embed.test_tokenizer_words import EDGES, texts

QUERIES = [
    "parse the patterns of an ignore file", "HTTPConnection.request", "gitignore", "xyzzyqwv plugh",
    "json decoder for nested objects", "split a path into folder and file name", "compress data with zlib",
    "getUserName", "parse_header", "ns::Foo", "self.__dict__['x']", '"quoted" \\ backslash', "/ slash",
    "über", "naïve café", "日本語のテキスト", "emoji 🙂 here", "a" * 100, "b" * 101, "",
]


def check_same(files, max_tokens=None) -> int:
    """Assert both paths give the same ids; return how many texts the plain path took itself."""
    tk = TextTokenizer(files, max_tokens)
    batch = QUERIES + texts()
    assert tk.encode_queries(batch) == tk.encode(batch).ids
    plain = tk._plain
    assert plain is not None
    return sum(plain.encode(t, tk.max_tokens) is not None for t in tk.prepare(batch))


@pytest.mark.parametrize("max_tokens", [None, 8, 3])
def test_query_path_matches_library(model_files, max_tokens):
    taken = check_same(model_files, max_tokens)
    assert taken > len(QUERIES)  # most plain texts did not need the library


def test_query_path_leaves_what_it_does_not_know_to_the_library(model_files):
    tk = TextTokenizer(model_files)
    plain = tk._plain
    for text in ("über", "see [cls] here", "[MASK]", "b" * 101, "tab\x0bvertical"):
        assert plain.encode(text.lower(), tk.max_tokens) is None
        assert tk.encode_queries([text]) == tk.encode([text]).ids
    assert plain.encode("parse the header", tk.max_tokens) is not None


def test_query_path_reads_other_layouts_of_the_file(model_files, tmp_path):
    """tokenizer.json written with indentation, with the vocabulary first and in another order,
    and cased: the same ids as the library's from the same file."""
    config = json.loads(model_files.tokenizer.read_text(encoding="utf-8"))
    model = config["model"]
    reordered = {"vocab": dict(sorted(model["vocab"].items(), reverse=True)),
                 **{k: v for k, v in model.items() if k != "vocab"}}
    cased = {**config, "normalizer": {**config["normalizer"], "lowercase": False}}
    for i, variant in enumerate([config, {**config, "model": reordered}, cased]):
        path = tmp_path / f"v{i}" / "tokenizer.json"
        path.parent.mkdir()
        path.write_text(json.dumps(variant, indent=2, ensure_ascii=False), encoding="utf-8")
        assert check_same(dataclasses.replace(model_files, tokenizer=path)) > len(QUERIES)


@pytest.mark.parametrize("change", [
    {"pre_tokenizer": {"type": "Whitespace"}},
    {"normalizer": {"type": "Lowercase"}},
    {"post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}},
])
def test_query_path_declines_other_pipelines(model_files, tmp_path, change):
    config = {**json.loads(model_files.tokenizer.read_text(encoding="utf-8")), **change}
    (tmp_path / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    other = dataclasses.replace(model_files, tokenizer=tmp_path / "tokenizer.json")
    assert PlainWordPiece.load(other.tokenizer) is None
    tk = TextTokenizer(other)
    batch = QUERIES + EDGES
    assert tk.encode_queries(batch) == tk.encode(batch).ids


def test_a_key_inside_a_string_is_not_an_entry(tmp_path):
    """A piece is found only as a key of the vocabulary: not as text inside another key, nor
    outside the vocabulary; a cut that is not at the vocabulary's end is refused."""
    config = {
        "added_tokens": [{"id": 0, "content": "[UNK]"}],
        "normalizer": {"type": "BertNormalizer", "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, 'x, "abc"': 3, "ab": 4, "##c": 5}},
        "id": 9,
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    plain = PlainWordPiece.load(path)
    assert plain.token_id("abc") is None and plain.token_id("id") is None
    assert plain.encode("abc", 16) == [1, 4, 5, 2]
    config["model"]["vocab"]["q1}"] = 6  # a '}' after a digit inside a key
    path.write_text(json.dumps(config), encoding="utf-8")
    assert PlainWordPiece.load(path) is None
