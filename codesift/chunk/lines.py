"""A file's lines as `Chunk.content` counts them, and the pieces every chunker cuts them into."""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Callable, Iterable

from codesift.chunk.model import Chunk, chunk_ids


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """Lines as editors, git and Python's tokenizer number them: only `\\n`, `\\r\\n` and `\\r` end a
    line (`str.splitlines` also breaks at form feeds and `\\u2028`, which would shift line numbers)."""
    if "\r" not in text:  # the usual case, and str.split is many times faster than the regex
        lines = text.split("\n")
        last = lines.pop()  # what follows the last line end: "" when the text ends with one
        if keepends:
            lines = [line + "\n" for line in lines]
        if last:
            lines.append(last)
        return lines
    parts = _LINE.findall(text)
    return parts if keepends else [p.rstrip("\r\n") for p in parts]


class SourceLines:
    """One file's text split into lines (`split_lines`), with 1-based line numbers throughout and
    byte offsets for tree-sitter, whose own row count only knows `\\n` and so cannot be trusted."""

    def __init__(self, text: str):
        self.text = text
        self.lines = split_lines(text)

    def __len__(self) -> int:
        return len(self.lines)

    @cached_property
    def blank(self) -> list[bool]:
        """blank[i] tells whether line i + 1 holds only whitespace."""
        return [not line.strip() for line in self.lines]

    def is_blank(self, line: int) -> bool:
        return self.blank[line - 1]

    def indent(self, line: int) -> int:
        text = self.lines[line - 1]
        return len(text) - len(text.lstrip())

    def content(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start - 1:end])

    @cached_property
    def _length_before(self) -> list[int]:
        """_length_before[i]: characters of lines 1..i, one line end counted after each."""
        return list(accumulate((len(line) + 1 for line in self.lines), initial=0))

    def chars(self, start: int, end: int) -> int:
        """How many characters `content(start, end)` has."""
        return self._length_before[end] - self._length_before[start - 1] - 1

    def trim(self, start: int, end: int) -> tuple[int, int] | None:
        """The range without its leading and trailing blank lines; None if nothing is left."""
        blank = self.blank
        while start <= end and blank[start - 1]:
            start += 1
        while end >= start and blank[end - 1]:
            end -= 1
        return (start, end) if start <= end else None

    # -- byte offsets, for parsers -------------------------------------------------------------

    @cached_property
    def data(self) -> bytes:
        return self.text.encode("utf-8", "surrogatepass")

    @cached_property
    def line_starts(self) -> list[int]:
        """Byte offset in `data` where each line starts."""
        with_ends = split_lines(self.text, keepends=True)
        sizes: Iterable[int] = map(len, with_ends) if self.text.isascii() else map(_utf8_size, with_ends)
        return list(accumulate(sizes, initial=0))[:-1] or [0]

    def line_of_byte(self, offset: int) -> int:
        """The 1-based line holding byte `offset` (clamped to the file)."""
        line = bisect_right(self.line_starts, offset)  # called for every node the chunkers look at
        return line if 1 <= line <= len(self.lines) else max(1, min(line, len(self.lines)))

    def line_span(self, start_byte: int, end_byte: int) -> tuple[int, int]:
        """First and last line of the bytes [start_byte, end_byte)."""
        return self.line_of_byte(start_byte), self.line_of_byte(end_byte - 1 if end_byte > start_byte else start_byte)

    @cached_property
    def char_line_starts(self) -> list[int]:
        """Character offset in `text` where each line starts."""
        return list(accumulate(map(len, split_lines(self.text, keepends=True)), initial=0))[:-1] or [0]

    def line_of_char(self, offset: int) -> int:
        """The 1-based line holding character `offset` of `text` (clamped to the file)."""
        return max(1, min(bisect_right(self.char_line_starts, offset), len(self.lines)))

    def byte_of_column(self, line: int, column: int) -> int:
        """Byte offset in `data` of character `column` (0-based) of `line`."""
        return self.line_starts[line - 1] + _utf8_size(self.lines[line - 1][:column])

    def line_bytes(self, line: int) -> tuple[int, int]:
        """Byte offsets in `data` of the start and the end (its line ending left out) of `line`."""
        start = self.line_starts[line - 1]
        return start, start + _utf8_size(self.lines[line - 1])

    def code_bytes(self, line: int) -> tuple[int, int]:
        """Byte offsets of a line's first non-blank character and just past its last one."""
        text = self.lines[line - 1]
        stripped = text.strip()
        first = self.line_starts[line - 1] + _utf8_size(text[:len(text) - len(text.lstrip())])
        return first, first + _utf8_size(stripped)


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass
class Piece:
    """A chunk before it is built: lines and labels, still adjustable by the chunker."""

    start: int
    end: int
    kind: str
    symbol: str | None = None
    heading_path: tuple[str, ...] = ()
    context: str = ""
    part: tuple[int, int] | None = None
    # Characters [a, b) of line `start` (= `end`): a piece of a line too long for one chunk
    columns: tuple[int, int] | None = None

    def byte_span(self, source: SourceLines) -> tuple[int, int]:
        """Byte offsets in `source.data` of the piece's first character and just past its last."""
        if self.columns is not None:
            return source.byte_of_column(self.start, self.columns[0]), source.byte_of_column(self.start, self.columns[1])
        return source.line_bytes(self.start)[0], source.line_bytes(self.end)[1]

    def text(self, source: SourceLines) -> str:
        if self.columns is not None:
            return source.lines[self.start - 1][self.columns[0]:self.columns[1]]
        return source.content(self.start, self.end)


class CallIndex:
    """Called names by byte offset, so each chunk can collect the calls made within it."""

    def __init__(self, calls: Iterable[tuple[int, str]]):
        ordered = sorted(calls)
        self._offsets = [offset for offset, _ in ordered]
        self._names = [name for _, name in ordered]

    def between(self, start_byte: int, end_byte: int) -> tuple[str, ...]:
        """The names called at offsets [start_byte, end_byte)."""
        lo, hi = bisect_left(self._offsets, start_byte), bisect_left(self._offsets, end_byte)
        return tuple(sorted(set(self._names[lo:hi])))


def build_chunks(path: str, language: str, source: SourceLines, pieces: Iterable[Piece],
                 calls: CallIndex | None = None) -> list[Chunk]:
    """Chunks for the pieces, in line order, each holding exactly its lines of the file (or its
    piece of one line), with their ids."""
    called: Callable[[Piece], tuple[str, ...]] = (lambda p: calls.between(*p.byte_span(source))) if calls \
        else (lambda p: ())
    ordered = sorted(pieces, key=lambda p: (p.start, p.end, p.columns or (0, 0)))
    contents = [p.text(source) for p in ordered]
    ids = chunk_ids(path, [(p.kind, p.symbol, p.heading_path, content) for p, content in zip(ordered, contents)])
    return [
        Chunk(path=path, language=language, kind=p.kind, start_line=p.start, end_line=p.end,
              content=content, symbol=p.symbol, heading_path=p.heading_path,
              context=p.context, part=p.part, calls=called(p), id=chunk_id)
        for p, content, chunk_id in zip(ordered, contents, ids)
    ]
