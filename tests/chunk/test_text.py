"""Prose by paragraphs, code without a grammar by windows."""
from __future__ import annotations

from codesift.chunk import chunk_file
from tests.chunk.helpers import chunk_fixture, outline


def test_short_text_is_one_paragraph_chunk():
    assert outline(chunk_fixture("notes.txt")) == [("paragraph", None, 1, 6, None)]


def test_paragraphs_are_grouped_up_to_the_target():
    text = "".join(f"Paragraph {i} line one.\nParagraph {i} line two.\n\n" for i in range(40))
    chunks = chunk_file("notes.txt", text, target_lines=12).chunks
    assert all(c.kind == "paragraph" and c.n_lines <= 12 for c in chunks)
    assert all(c.content.startswith("Paragraph") for c in chunks)
    assert [c.start_line for c in chunks] == list(range(1, 120, 12))


def test_text_without_blank_lines_gets_overlapping_windows():
    text = "".join(f"line {i}\n" for i in range(1, 101))
    assert outline(chunk_file("LICENSE", text)) == [
        ("lines", None, 1, 40, None), ("lines", None, 36, 75, None), ("lines", None, 71, 100, None)]


def test_code_without_a_grammar_gets_windows():
    text = "#!/bin/sh\n\n" + "".join(f"echo {i}\n" for i in range(60))
    chunks = chunk_file("run.sh", text).chunks
    assert {c.kind for c in chunks} == {"lines"} and chunks[0].language == "shell"
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 62


def test_unknown_files_are_text():
    chunks = chunk_file("data.unknownext", "a\n\nb\n").chunks
    assert [(c.language, c.kind) for c in chunks] == [("text", "paragraph")]
