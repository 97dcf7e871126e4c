"""Lines too long for one chunk (issue 15 #3: a minified one-line bundle became one chunk of 3,086
tokens): every chunk is bounded in characters whatever the file's line structure, and a long line
is cut into pieces of the line where a cut reads well."""
from __future__ import annotations

import json
import re

from codesift.chunk import chunk_file
from codesift.chunk.splitting import LINE_CHARS
from tests.chunk.helpers import read_fixture
from tests.chunk.invariants import invariant_violations

MAX_CHARS = 80 * LINE_CHARS  # the default line budget's


def minified(source: str) -> tuple[str, set[int]]:
    """The source on one line as a minifier leaves it (each line stripped, joined with nothing),
    and the columns where its lines start there: the places between statements."""
    line, starts = "", set()
    for text in source.splitlines():
        starts.add(len(line))
        line += text.strip()
    return line, starts


BUNDLE_LINE, STATEMENT_STARTS = minified(read_fixture("tiny_store.js"))
BUNDLE = BUNDLE_LINE + "\n//# sourceMappingURL=store.min.js.map\n"


def pieces_of(chunks, line: int = 1) -> list:
    return [c for c in chunks if c.start_line == c.end_line == line]


def boundaries(pieces) -> list[int]:
    """Columns where the second and later pieces start."""
    out, at = [], 0
    for p in pieces[:-1]:
        at += len(p.content)
        out.append(at)
    return out


def test_a_minified_bundle_is_cut_between_statements():
    for max_lines in (80, 20):  # 4,000 and 1,000 characters
        result = chunk_file("dist/store.min.js", BUNDLE, max_lines=max_lines, target_lines=max_lines // 2)
        assert invariant_violations(BUNDLE, result, max_lines) == []
        pieces = pieces_of(result.chunks)
        assert len(pieces) >= len(BUNDLE_LINE) // (max_lines * LINE_CHARS) + 1
        assert "".join(p.content for p in pieces) == BUNDLE_LINE
        assert all(len(p.content) <= max_lines * LINE_CHARS for p in pieces)
        # every cut falls where a line of the readable source started: between statements, never
        # inside one (nor in a string literal holding `;` or `}`)
        assert set(boundaries(pieces)) <= STATEMENT_STARTS
        assert [c.content for c in result.chunks if c.start_line == 2] == ["//# sourceMappingURL=store.min.js.map"]


def test_pieces_of_a_bundle_line_are_module_code_with_their_own_calls():
    """The line's first definition (`exportAll`) claims the line as a whole; its pieces are mostly
    other code, so they are labelled as the file's code, numbered among themselves."""
    pieces = pieces_of(chunk_file("dist/store.min.js", BUNDLE, max_lines=20, target_lines=10).chunks)
    assert {(p.kind, p.symbol) for p in pieces} == {("module", None)}
    assert [p.part for p in pieces] == [(i, len(pieces)) for i in range(1, len(pieces) + 1)]
    for p in pieces:
        assert all(re.search(rf"\b{re.escape(name)}\b", p.content) for name in p.calls)
        assert ("fail" in p.calls) == bool(re.search(r"(?<!function )\bfail\(", p.content))


def test_a_long_line_inside_a_function_keeps_its_label():
    text = "def banner():\n    return '" + "All work and no play. " * 500 + "'\n\n\ndef after():\n    return 1\n"
    chunks = chunk_file("banner.py", text).chunks
    assert invariant_violations(text, chunk_file("banner.py", text)) == []
    pieces = pieces_of(chunks, 2)
    assert len(pieces) >= 3 and {p.symbol for p in pieces} == {"banner"}
    parts = [c.part for c in chunks if c.symbol == "banner"]
    assert parts == [(i, len(parts)) for i in range(1, len(parts) + 1)]  # the def line, then the pieces
    assert all(p.content.endswith(" ") for p in pieces[:-1])  # a string holds no statement: between words
    assert [c.symbol for c in chunks if c.start_line > 2] == ["after"]


def test_a_one_line_json_document_is_cut_outside_its_strings():
    items = [{"id": i, "name": f"item {i}; see {{notes}}, then more", "tags": ["a,b", "c}d"]} for i in range(300)]
    line = json.dumps({"items": items})
    result = chunk_file("data.json", line + "\n")
    assert invariant_violations(line + "\n", result) == []
    pieces = pieces_of(result.chunks)
    assert len(pieces) >= len(line) // MAX_CHARS + 1
    strings = [m.span() for m in re.finditer(r'"(?:[^"\\]|\\.)*"', line)]
    assert not [b for b in boundaries(pieces) for a, z in strings if a < b < z]
    assert all(p.content[-1] in ",}" for p in pieces[:-1])


def test_a_paragraph_on_one_line_is_cut_after_sentences():
    sentence = "The quick brown fox jumps over the lazy dog, again and again. "
    text = "# Notes\n\n" + sentence * 200 + "\n"
    result = chunk_file("notes.md", text)
    assert invariant_violations(text, result) == []
    pieces = pieces_of(result.chunks, 3)
    assert len(pieces) >= 3 and all(p.content.endswith("again. ") for p in pieces[:-1])
    assert {p.heading_path for p in pieces} == {("Notes",)}


def test_a_line_with_no_place_to_cut_is_cut_at_the_bound():
    text = "x" * (3 * MAX_CHARS + 10) + "\n"
    result = chunk_file("blob.txt", text)
    assert invariant_violations(text, result) == []
    assert [len(c.content) for c in result.chunks] == [MAX_CHARS, MAX_CHARS, MAX_CHARS, 10]


def test_many_long_lines_make_chunks_bounded_in_characters_of_whole_lines():
    rows = "".join(f"    {'row_%03d' % i!r}: {'v' * 280!r},\n" for i in range(60))
    text = "TABLE = {\n" + rows + "}\n"
    result = chunk_file("table.py", text)
    assert invariant_violations(text, result) == []
    assert len(result.chunks) >= 5 and all(len(c.content) <= MAX_CHARS for c in result.chunks)
    assert not pieces_of(result.chunks, 2) or pieces_of(result.chunks, 2)[0].content == text.split("\n")[1]


def test_code_with_ordinary_lines_is_cut_as_before():
    """The bound only bites on long lines: a fixture of ordinary code has no piece of a line."""
    for name in ("sample.py", "sample.js", "tiny_store.js"):
        chunks = chunk_file(name, read_fixture(name)).chunks
        lines = read_fixture(name).split("\n")
        assert all(c.content == "\n".join(lines[c.start_line - 1:c.end_line]) for c in chunks)
