"""Chunkers for text without a structure we parse: prose by paragraphs, anything else by windows."""
from __future__ import annotations

from codesift.chunk.lines import Piece, SourceLines
from codesift.chunk.splitting import pack, windows


def paragraph_starts(source: SourceLines, start: int = 1, end: int | None = None) -> list[int]:
    """Lines in [start, end] that open a paragraph: non-blank after a blank line."""
    end = len(source) if end is None else end
    blank = source.blank
    return [line for line in range(max(start, 2), end + 1) if blank[line - 2] and not blank[line - 1]]


def chunk_paragraphs(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """Blank-line separated paragraphs grouped up to `target` lines; text without any blank
    line between its lines has no paragraphs to follow and gets line windows instead."""
    span = source.trim(1, len(source))
    if span is None:
        return []
    starts = paragraph_starts(source, *span)
    if not starts:
        return chunk_windows(source, target, max_lines)
    return [Piece(s, e, "paragraph") for s, e in _trimmed(source, pack(*span, starts, target, max_lines))]


def chunk_windows(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """Fixed windows of `target` lines overlapping by a few: for code we have no grammar for."""
    span = source.trim(1, len(source))
    if span is None:
        return []
    return [Piece(s, e, "lines") for s, e in _trimmed(source, windows(*span, target, max_lines))]


def _trimmed(source: SourceLines, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [t for s, e in spans if (t := source.trim(s, e))]
