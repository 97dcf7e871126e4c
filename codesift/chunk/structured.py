"""JSON, YAML and TOML: one chunk per top-level key (per table in TOML).

Plain line scanning, no parser dependency: a top-level key is found from how it is written
(depth 1 in JSON, column 0 in YAML, a `[table]` header in TOML). Anything that does not look
like one mapping falls back to paragraphs, so bad input costs structure, never an error.
"""
from __future__ import annotations

import json
import re
from typing import Callable, Iterator

from codesift.chunk.lines import Piece, SourceLines
from codesift.chunk.splitting import split_piece
from codesift.chunk.text import chunk_paragraphs

# Consecutive keys are merged into one "keys" chunk while together they stay this short.
MERGE_KEYS_LINES = 10

_CLOSER_ONLY = re.compile(r"^\s*[\]}][\]},\s]*$")


class _NotAMapping(Exception):
    """The file is not one mapping we can cut by keys."""


# Where each top-level unit starts (1-based line) and its key path; () for an unnamed unit.
KeyStarts = list[tuple[int, tuple[str, ...]]]


def chunk_json(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """Object-rooted JSON: a chunk per top-level key; other or invalid JSON by paragraphs."""
    return _chunk_by_keys(_scan_json, source, target, max_lines, merge=True)


def chunk_yaml(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """Single-document, mapping-rooted YAML: a chunk per top-level key; anything else by paragraphs."""
    return _chunk_by_keys(_scan_yaml, source, target, max_lines, merge=True)


def chunk_toml(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """TOML: the root keys, then a chunk per `[table]` / `[[array of tables]]` (never merged:
    tables are sections in their own right)."""
    return _chunk_by_keys(_scan_toml, source, target, max_lines, merge=False)


def _chunk_by_keys(scan: Callable[[SourceLines], KeyStarts], source: SourceLines, target: int,
                   max_lines: int, merge: bool) -> list[Piece]:
    try:
        starts = scan(source)
    except _NotAMapping:
        starts = []
    if not starts:
        return chunk_paragraphs(source, target, max_lines)
    pieces: list[Piece] = []
    for group in _groups(_units(source, starts), min(MERGE_KEYS_LINES, max_lines) if merge else 0):
        start, end = group[0][0][0], group[-1][0][1]
        if len(group) > 1:
            pieces.append(Piece(start, end, "keys"))
            continue
        path = group[0][1]
        piece = Piece(start, end, "key" if path else "keys", heading_path=path)
        cuts = _indent_cuts(source, start, end) if end - start + 1 > max_lines else ()
        pieces += split_piece(source, piece, cuts, target, max_lines, _key_line(source, start, end))
    return pieces


Unit = tuple[tuple[int, int], tuple[str, ...]]  # ((start, end), key path)


def _units(source: SourceLines, starts: KeyStarts) -> list[Unit]:
    """Each unit runs to the line before the next; the first also takes any lines above it."""
    bounds = [line for line, _ in starts[1:]] + [len(source) + 1]
    units: list[Unit] = []
    for (line, path), next_start in zip(starts, bounds):
        span = source.trim(1 if not units else line, next_start - 1)
        if span:
            units.append((span, path))
    return units


def _groups(units: list[Unit], merged_lines: int) -> Iterator[list[Unit]]:
    """Runs of consecutive named units that together fit in `merged_lines`; others alone."""
    group: list[Unit] = []
    for unit in units:
        (_, end), path = unit
        if group and path and end - group[0][0][0] + 1 <= merged_lines:
            group.append(unit)
            continue
        if group:
            yield group
        group = [unit]
    if group:
        yield group


def _key_line(source: SourceLines, start: int, end: int) -> str:
    """The line naming a unit (the first that is not a comment), for the context of its parts."""
    for line in source.lines[start - 1:end]:
        if not line.lstrip().startswith("#"):
            return line.strip()
    return source.lines[start - 1].strip()


def _indent_cuts(source: SourceLines, start: int, end: int) -> list[int]:
    """Lines inside a long value that start one of its own entries: the least indented lines
    after the first, not counting closing brackets."""
    lines = source.lines
    candidates = [n for n in range(start + 1, end + 1)
                  if not source.is_blank(n) and not _CLOSER_ONLY.match(lines[n - 1])]
    if not candidates:
        return []
    base = min(source.indent(n) for n in candidates)
    return [n for n in candidates if source.indent(n) == base]


# -- JSON --------------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_JSON_COLON = re.compile(r"\s*:")


def _scan_json(source: SourceLines) -> KeyStarts:
    text = source.text
    try:
        if not isinstance(json.loads(text.lstrip("\ufeff")), dict):
            raise _NotAMapping
    except (ValueError, RecursionError):
        raise _NotAMapping from None
    starts: KeyStarts = []
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        first = token.group()[0]
        if first == '"':
            if depth == 1 and _JSON_COLON.match(text, token.end()):
                line = source.line_of_char(token.start())
                if starts and starts[-1][0] == line:  # several keys on one line: one unit, unnamed
                    starts[-1] = (line, ())
                else:
                    starts.append((line, (json.loads(token.group()),)))
        elif first in "{[":
            depth += 1
        else:
            depth -= 1
    return starts


# -- YAML --------------------------------------------------------------------------------------

_YAML_KEY = re.compile(r"""^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'"""  # "double" or 'single' quoted
                       r"""|([^\s#'"?:,\[\]{}&*!|>%@`-][^#]*?|-[^\s#][^#]*?))"""  # or plain
                       r"""[ \t]*:(?:[ \t]|$)""")
_YAML_COMPLEX_KEY = re.compile(r"^\?[ \t]+(.*?)[ \t]*$")  # ? long key (its value follows on a `:` line)
_YAML_DOCUMENT_MARK = re.compile(r"^(?:---|\.\.\.)(?:[ \t]|$)")


def _scan_yaml(source: SourceLines) -> KeyStarts:
    lines, blank = source.lines, source.blank
    starts: KeyStarts = []
    document_ended = False
    for n, line in enumerate(lines, 1):
        if blank[n - 1] or line[0] in " \t#":
            continue  # indented lines continue the current key
        if document_ended:
            raise _NotAMapping  # content after the end of the first document
        if _YAML_DOCUMENT_MARK.match(line):
            if starts:
                document_ended = True
            continue
        key = _YAML_KEY.match(line) or _YAML_COMPLEX_KEY.match(line)
        if key:
            name = next(g for g in key.groups() if g is not None).strip()
            starts.append((_comments_above(source, n, indented=False), (name,)))
        elif line.startswith("%") and not starts:
            continue  # a directive
        elif line.startswith(("-", ":")) and starts:
            continue  # a sequence at the indentation of its key, or the value of a `? key`
        else:
            raise _NotAMapping
    return starts


def _comments_above(source: SourceLines, line: int, indented: bool) -> int:
    """The first line of the `#` comment block directly above `line` (or `line` itself); in YAML
    only comments at column 0 count, indented ones belong to the value above them."""
    lines = source.lines
    while line > 1 and (lines[line - 2].lstrip() if indented else lines[line - 2]).startswith("#"):
        line -= 1
    return line


# -- TOML --------------------------------------------------------------------------------------

_TOML_KEY = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_TOML_TABLE = re.compile(rf"""^\s*(\[\[?)\s*((?:{_TOML_KEY})(?:\s*\.\s*(?:{_TOML_KEY}))*)\s*(\]\]?)\s*(?:#.*)?$""")
_TOML_KEY_PART = re.compile(_TOML_KEY)
_TOML_TOKEN = re.compile(r"""#|\"\"\"|'''|"(?:[^"\\]|\\.)*"?|'[^']*'?|[\[\]{}]""")


def _scan_toml(source: SourceLines) -> KeyStarts:
    starts: KeyStarts = []
    open_string: str | None = None  # the quotes of a multi-line string still open
    depth = 0  # brackets of a multi-line array or inline table still open
    for n, line in enumerate(source.lines, 1):
        position = 0
        if open_string:
            close = _closing_quotes(line, 0, open_string)
            if close < 0:
                continue
            open_string, position = None, close
        elif depth == 0:
            table = _TOML_TABLE.match(line)
            if table and len(table.group(1)) == len(table.group(3)):
                path = tuple(_unquote_toml_key(k) for k in _TOML_KEY_PART.findall(table.group(2)))
                starts.append((_comments_above(source, n, indented=True), path))
                continue
        open_string, depth = _scan_toml_line(line, position, depth)
    if not starts or starts[0][0] > 1:
        starts.insert(0, (1, ()))  # the root table: keys before the first header
    return starts


def _scan_toml_line(line: str, position: int, depth: int) -> tuple[str | None, int]:
    """Follow strings, comments and brackets through one line: (open multi-line quotes, depth)."""
    while True:
        token = _TOML_TOKEN.search(line, position)
        if token is None:
            return None, depth
        text = token.group()
        if text == "#":
            return None, depth
        if text in ('"""', "'''"):
            close = _closing_quotes(line, token.end(), text)
            if close < 0:
                return text, depth
            position = close
            continue
        if text in "[{":
            depth += 1
        elif text in "]}":
            depth = max(0, depth - 1)
        position = token.end()


def _closing_quotes(line: str, start: int, quotes: str) -> int:
    """Position just past the quotes closing a multi-line string, or -1."""
    while True:
        found = line.find(quotes, start)
        if found < 0:
            return -1
        backslashes = len(line[:found]) - len(line[:found].rstrip("\\"))
        if quotes == "'''" or backslashes % 2 == 0:
            end = found + 3
            while line[end:end + 1] == quotes[0]:  # up to two quotes may end the content itself
                end += 1
            return end
        start = found + 1


def _unquote_toml_key(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        return key[1:-1]
    return key


