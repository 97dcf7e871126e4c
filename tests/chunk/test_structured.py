"""JSON, YAML and TOML: chunks per top-level key or table; anything odd by paragraphs."""
from __future__ import annotations

import json

import pytest

from codesift.chunk import chunk_file
from tests.chunk.helpers import chunk_fixture, outline


def test_json_keys():
    assert outline(chunk_fixture("package.json")) == [
        ("keys", None, 1, 4, None),  # name, version, private: small keys merged
        ("key", ("scripts",), 5, 13, None),
        ("key", ("dependencies",), 14, 53, (1, 3)),
        ("key", ("dependencies",), 54, 93, (2, 3)),
        ("key", ("dependencies",), 94, 105, (3, 3)),
        ("key", ("license",), 106, 107, None),  # and the closing brace
    ]


def test_json_split_parts_start_at_entries_and_name_their_key():
    parts = [c for c in chunk_fixture("package.json").chunks if c.part]
    assert {c.context for c in parts} == {'"dependencies": {'}
    assert all(c.content.lstrip().startswith('"') for c in parts)


def test_json_keys_are_decoded():
    text = json.dumps({"a\\u00e9\"b": list(range(30)), "z": 1}, indent=2)
    assert chunk_file("x.json", text).chunks[0].heading_path == ('a\\u00e9"b',)


@pytest.mark.parametrize("text", [
    '[\n  {"a": 1},\n\n  {"b": 2}\n]\n',  # not an object
    '{\n  "a": 1,\n  "b": \n',  # invalid
    '"just a string"\n',
    '{}\n',
])
def test_json_that_is_not_an_object_falls_back_to_paragraphs(text):
    chunks = chunk_file("x.json", text).chunks
    assert chunks and {c.kind for c in chunks} <= {"paragraph", "lines"}


def test_minified_json_is_one_chunk():
    text = json.dumps({f"k{i}": i for i in range(100)})
    assert outline(chunk_file("x.json", text)) == [("keys", None, 1, 1, None)]


def test_yaml_keys():
    assert outline(chunk_fixture("ci.yaml")) == [
        ("keys", None, 1, 6, None),  # name, on
        ("key", ("env",), 8, 14, None),  # with its comment
        ("key", ("jobs",), 16, 29, None),
        ("keys", None, 30, 33, None),  # stages (an unindented list), "quoted key"
    ]


def test_yaml_big_keys_stand_alone_and_names_are_unquoted():
    text = "'single': 1\n" + "big:\n" + "".join(f"  k{i}: {i}\n" for i in range(12)) + '"double": 2\n'
    assert outline(chunk_file("x.yml", text)) == [
        ("key", ("single",), 1, 1, None), ("key", ("big",), 2, 14, None), ("key", ("double",), 15, 15, None)]


@pytest.mark.parametrize("text", [
    "- a\n- b\n\n- c\n",  # a list
    "a: 1\n---\nb: 2\n",  # two documents
    "a: 1\nnot yaml at all\n",
    "just: [unclosed\n}\n",
])
def test_yaml_that_is_not_one_mapping_falls_back_to_paragraphs(text):
    chunks = chunk_file("x.yaml", text).chunks
    assert chunks and {c.kind for c in chunks} <= {"paragraph", "lines"}


def test_yaml_document_markers_are_fine():
    text = "%YAML 1.2\n---\na: 1\nb:\n  c: 2\n...\n"
    assert outline(chunk_file("x.yaml", text)) == [("keys", None, 1, 6, None)]


def test_toml_tables():
    assert outline(chunk_fixture("pyproject.toml")) == [
        ("keys", None, 1, 3, None),  # root keys
        ("key", ("tool", "widget"), 5, 13, None),  # `[not.a.table]` is inside a string, `[...]` in an array
        ("key", ("tool", "lint", "rules"), 15, 17, None),  # [[array of tables]] with its comment
        ("key", ("tool", "quoted.key"), 19, 20, None),
    ]


def test_toml_long_table_is_split_at_keys():
    text = "[deps]\n" + "".join(f'pkg{i} = "^{i}.0"\n' for i in range(100))
    chunks = chunk_file("x.toml", text).chunks
    assert {c.heading_path for c in chunks} == {("deps",)} and len(chunks) > 1
    assert all(c.n_lines <= 80 for c in chunks) and chunks[0].context == "[deps]"


def test_yaml_explicit_keys():
    text = "? a very long key\n: value\nb:\n" + "".join(f"  - {i}\n" for i in range(12))
    assert outline(chunk_file("x.yaml", text)) == [
        ("key", ("a very long key",), 1, 2, None), ("key", ("b",), 3, 15, None)]
