"""Properties every chunking must have, checked on every fixture and on hostile input."""
from __future__ import annotations

import logging
import random

import pytest

from codesift.chunk import chunk_file
from tests.chunk.helpers import FIXTURES, read_fixture
from tests.chunk.invariants import invariant_violations

FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if p.is_file())
LIMITS = [(80, 40), (12, 6), (3, 1)]  # (max_lines, target_lines)


@pytest.fixture
def no_fallback(caplog):
    """Fail if a chunker raised and chunk_file quietly fell back to windows."""
    caplog.set_level(logging.DEBUG, logger="codesift.chunk")
    yield
    assert not [r for r in caplog.records if "falling back" in r.getMessage()]


@pytest.mark.parametrize("max_lines,target", LIMITS)
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_chunks_hold_exactly_their_lines(name, max_lines, target, no_fallback):
    text = read_fixture(name)
    result = chunk_file(name, text, max_lines=max_lines, target_lines=target)
    assert result.chunks
    assert invariant_violations(text, result, max_lines) == []


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_other_line_endings_give_the_same_chunks(name, no_fallback):
    text = read_fixture(name)
    plain = chunk_file(name, text)
    for ending in ("\r\n", "\r"):
        variant = text.replace("\n", ending)
        result = chunk_file(name, variant)
        assert invariant_violations(variant, result) == []
        assert [(c.kind, c.symbol, c.heading_path, c.start_line, c.end_line) for c in result.chunks] == \
            [(c.kind, c.symbol, c.heading_path, c.start_line, c.end_line) for c in plain.chunks]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_chunking_is_deterministic(name):
    text = read_fixture(name)
    assert chunk_file(name, text) == chunk_file(name, text)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_missing_final_newline_and_form_feeds(name, no_fallback):
    text = read_fixture(name).rstrip("\n")
    text = text.replace("\n\n", "\n\x0c\n", 3)  # a form feed is a character, not a line end
    result = chunk_file(name, text)
    assert invariant_violations(text, result) == []


def test_line_numbers_as_editors_count_them():
    """Only \\n, \\r\\n and \\r end lines: a form feed or U+2028 must not shift later line numbers."""
    text = "import os\n\x0c\nx = '\u2028'\n\n\ndef late():\n    return 1\n"
    late = [c for c in chunk_file("m.py", text).chunks if c.symbol == "late"][0]
    assert (late.start_line, late.end_line) == (6, 7)


LANGUAGES = ["python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp",
             "markdown", "json", "yaml", "toml", "text", "shell", None, "no-such-language"]
HOSTILE = [
    "", " \n\t\n", "\n\n\n", "\x00\x01\x02\xff\xfe binary junk \x00", "\ud800 a lone surrogate\n",
    "\u2028\u2029\x85\x1c", "def f(:\n    return (\n", "{", "}}}}\n]]", "<<<<<<< HEAD\n=======\n>>>>>>>\n",
    "x" * 5000, "a\rb\rc", "#" * 10 + "\n" + "-" * 10,
]


def _junk(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("{}()[];:\n \t#\"'/*abc=<>\\`-~\r") for _ in range(rng.randint(0, 2000)))


@pytest.mark.parametrize("language", LANGUAGES)
def test_bad_input_never_raises(language):
    for text in HOSTILE + [_junk(seed) for seed in range(8)]:
        for max_lines, target in LIMITS:
            result = chunk_file("junk", text, language, max_lines=max_lines, target_lines=target)
            assert invariant_violations(text, result, max_lines) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_empty_and_blank_files_have_no_chunks(language):
    for text in ("", "\n", "   \n\t\n\r\n"):
        result = chunk_file("empty", text, language)
        assert result.chunks == [] and result.imports == []


def test_bytes_are_accepted_too():
    assert chunk_file("a.py", b"def f():\n    return 1\n").chunks[0].symbol == "f"
