"""Chunkers for text without a structure we parse: prose by paragraphs, anything else by windows."""
from __future__ import annotations

from codesift.chunk.lines import Piece, SourceLines
from codesift.chunk.splitting import fit_chars, pack, prose_line_cuts, windows


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
    spans = fit_chars(source, _trimmed(source, pack(*span, starts, target, max_lines)), starts, target, max_lines,
                      prose_line_cuts(source))
    return [Piece(s, e, "paragraph", columns=columns) for s, e, columns in spans]


def chunk_windows(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """Fixed windows of `target` lines overlapping by a few: for code we have no grammar for."""
    span = source.trim(1, len(source))
    if span is None:
        return []
    spans = fit_chars(source, _trimmed(source, windows(*span, target, max_lines)), (), target, max_lines)
    return [Piece(s, e, "lines", columns=columns) for s, e, columns in spans]


def _trimmed(source: SourceLines, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [t for s, e in spans if (t := source.trim(s, e))]
