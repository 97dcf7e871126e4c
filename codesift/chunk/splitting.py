"""Cutting a line range into pieces of about `target` lines and never more than `max_lines`.

Chunkers say where a cut reads well (a statement, paragraph or key starts there); fixed windows
with a small overlap are the last resort, for stretches with no such place.

A piece is bounded in characters too, whatever the file's line structure: `max_lines` lines of
LINE_CHARS characters. A piece over that (lines of data, a minified bundle that is one line) is
packed again by characters, and a line longer than that on its own is cut into pieces of the line
where its chunker says a cut reads well (`LineCuts`: a statement's start in a parsed line), else
after `;`, `}` or `,` outside a string, else between words, else anywhere.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import replace
from typing import Callable, Iterable

from codesift.chunk.lines import Piece, SourceLines

WINDOW_OVERLAP = 5
# Characters a chunk may hold per line of its line budget: 80 lines make 4,000 characters, about
# 1,000 tokens (typical code lines are shorter: the bound only bites on long lines).
LINE_CHARS = 50

# (first line, last line, columns [a, b) when it is a piece of one line, else None)
Span = tuple[int, int, "tuple[int, int] | None"]
# A line's places to cut, best kind first: lists of columns, each sorted
LineCuts = Callable[[int], "list[list[int]]"]

# In a line without a parse: a string literal (skipped whole), a `;`, `}` or `,` (cut after it),
# white space (cut after it).
_CODE_TOKENS = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|([;},])|(\s+)""")
_SENTENCE_END = re.compile(r"""[.!?:;][)\]"'*_]*\s+""")
_SPACE = re.compile(r"\s+")


def limits(target: int, max_lines: int) -> tuple[int, int]:
    """Sane (target, max_lines) whatever the caller passed."""
    max_lines = max(1, int(max_lines))
    return max(1, min(int(target), max_lines)), max_lines


def char_limits(target: int, max_lines: int) -> tuple[int, int]:
    """(characters aimed at, most characters) of a piece, for the line budget (target, max_lines)."""
    return target * LINE_CHARS, max_lines * LINE_CHARS


def windows(start: int, end: int, target: int, max_lines: int) -> list[tuple[int, int]]:
    """Fixed windows of `target` lines overlapping by a few; a short remainder joins the last one."""
    overlap = min(WINDOW_OVERLAP, target // 4)
    last_window = min(max_lines, target + target // 2)
    spans = []
    while end - start + 1 > last_window:
        spans.append((start, start + target - 1))
        start += target - overlap
    spans.append((start, end))
    return spans


def pack(start: int, end: int, cuts: Iterable[int], target: int, max_lines: int) -> list[tuple[int, int]]:
    """Group the units that `cuts` (lines where a unit starts) delimit into pieces of at most
    `target` lines; a unit longer than `max_lines` on its own is cut into windows."""
    bounds = sorted({c for c in cuts if start < c <= end})
    units = list(zip([start, *bounds], [b - 1 for b in bounds] + [end]))
    spans: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for unit_start, unit_end in units:
        if unit_end - unit_start + 1 > max_lines:
            # The piece gathered so far leads the windows rather than standing alone.
            spans.extend(windows(current[0] if current else unit_start, unit_end, target, max_lines))
            current = None
            continue
        if current is None:
            current = (unit_start, unit_end)
            continue
        size, combined = current[1] - current[0] + 1, unit_end - current[0] + 1
        # A tiny piece (a signature, a lone comment) may grow past target rather than stand alone.
        if combined <= target or (size < target // 4 and combined <= max_lines):
            current = (current[0], unit_end)
        else:
            spans.append(current)
            current = (unit_start, unit_end)
    if current:
        # A tiny tail (a closing brace, a last short statement) joins its predecessor if it fits.
        if spans and current[1] - current[0] + 1 < target // 4 and current[1] - spans[-1][0] + 1 <= max_lines:
            current = (spans.pop()[0], current[1])
        spans.append(current)
    return spans


def split(start: int, end: int, cuts: Iterable[int], target: int, max_lines: int) -> list[tuple[int, int]]:
    """The range whole if it fits in `max_lines`, else packed at `cuts`."""
    if end - start + 1 <= max_lines:
        return [(start, end)]
    return pack(start, end, cuts, target, max_lines)


def split_piece(source: SourceLines, piece: Piece, cuts: Iterable[int], target: int, max_lines: int,
                split_context: str | None = None, line_cuts: LineCuts | None = None) -> list[Piece]:
    """The piece, trimmed of blank edges, or its parts (i, n) when it is too long; every part
    keeps the piece's labels and gets `split_context` (the symbol's header line) as context.
    `line_cuts` says where a line too long for one piece reads well cut (`code_line_cuts` if none)."""
    cuts = list(cuts)
    lines = [t for s, e in split(piece.start, piece.end, cuts, target, max_lines) if (t := source.trim(s, e))]
    spans = fit_chars(source, lines, cuts, target, max_lines, line_cuts)
    if len(spans) == 1 and spans[0][2] is None:
        piece.start, piece.end = spans[0][:2]
        return [piece]
    context = piece.context if split_context is None else split_context
    return [replace(piece, start=s, end=e, columns=columns, context=context, part=(i, len(spans)))
            for i, (s, e, columns) in enumerate(spans, 1)]


def fit_chars(source: SourceLines, spans: Iterable[tuple[int, int]], cuts: Iterable[int], target: int,
              max_lines: int, line_cuts: LineCuts | None = None) -> list[Span]:
    """The spans (trimmed, in order) as they are when within the character bound, else packed again
    by characters at `cuts` (lines where a unit starts), a line too long on its own cut into pieces
    of the line. Windows' overlap is dropped before a long span is cut, so that no line is cut twice."""
    target_chars, max_chars = char_limits(target, max_lines)
    out: list[Span] = []
    done = 0  # the last line already in a span packed by characters
    for start, end in spans:
        if source.chars(start, end) <= max_chars:
            out.append((start, end, None))
            continue
        start = max(start, done + 1)
        if start > end:
            continue
        out += pack_chars(source, start, end, cuts, target_chars, max_chars, line_cuts or code_line_cuts(source))
        done = end
    return out


def pack_chars(source: SourceLines, start: int, end: int, cuts: Iterable[int], target_chars: int, max_chars: int,
               line_cuts: LineCuts) -> list[Span]:
    """Lines start..end grouped at `cuts` into spans of about `target_chars` characters and never
    more than `max_chars`; a unit over `max_chars` is taken line by line, and a line over it is
    cut into pieces of the line. Blank lines are left out of the edges."""
    bounds = sorted({c for c in cuts if start < c <= end})
    units: list[tuple[int, int]] = []
    for unit_start, unit_end in zip([start, *bounds], [b - 1 for b in bounds] + [end]):
        if source.chars(unit_start, unit_end) > max_chars:
            units += [(n, n) for n in range(unit_start, unit_end + 1)]
        else:
            units.append((unit_start, unit_end))
    spans: list[Span] = []
    current: tuple[int, int] | None = None

    def close() -> None:
        if current is not None and (trimmed := source.trim(*current)):
            spans.append((*trimmed, None))

    for unit_start, unit_end in units:
        if source.chars(unit_start, unit_end) > max_chars:  # one line
            close()
            current = None
            line = source.lines[unit_start - 1]
            spans += [(unit_start, unit_start, cols) for cols in
                      cut_line(len(line), line_cuts(unit_start), target_chars, max_chars)]
            continue
        if current is None:
            current = (unit_start, unit_end)
            continue
        size, combined = source.chars(*current), source.chars(current[0], unit_end)
        if combined <= target_chars or (size < target_chars // 4 and combined <= max_chars):
            current = (current[0], unit_end)
        else:
            close()
            current = (unit_start, unit_end)
    close()
    return spans


def cut_line(length: int, cuts: list[list[int]], target_chars: int, max_chars: int) -> list[tuple[int, int]]:
    """Columns [a, b) of the pieces of a line of `length` characters: each ends at a cut of the
    best kind there is between half the target and `max_chars` from its start (the one nearest the
    target), else at any cut, else at `max_chars`; a tiny last piece joins the one before."""
    pieces: list[tuple[int, int]] = []
    position = 0
    while length - position > max_chars:
        limit = position + max_chars
        cut = None
        for lowest in (position + target_chars // 2, position + 1):
            for kind in cuts:
                near = kind[bisect_left(kind, lowest):bisect_right(kind, limit)]
                if near:
                    cut = min(near, key=lambda c: abs(c - position - target_chars))
                    break
            if cut is not None:
                break
        cut = cut if cut is not None else limit
        pieces.append((position, cut))
        position = cut
    if pieces and length - position < target_chars // 4 and length - pieces[-1][0] <= max_chars:
        position = pieces.pop()[0]
    pieces.append((position, length))
    return pieces


def code_line_cuts(source: SourceLines) -> LineCuts:
    """Places to cut a line of code nothing parsed: after `;`, `}` or `,` outside string literals,
    then after white space outside them, then after white space in a string (a long literal)."""
    def cuts(line: int) -> list[list[int]]:
        text = source.lines[line - 1]
        punctuation, space = [], []
        for m in _CODE_TOKENS.finditer(text):
            if m.group(1):
                punctuation.append(m.end())
            elif m.group(2):
                space.append(m.end())
        return [punctuation, space, [m.end() for m in _SPACE.finditer(text)]]
    return cuts


def prose_line_cuts(source: SourceLines) -> LineCuts:
    """Places to cut a line of prose: after a sentence, then between words."""
    def cuts(line: int) -> list[list[int]]:
        text = source.lines[line - 1]
        return [[m.end() for m in _SENTENCE_END.finditer(text)], [m.end() for m in _SPACE.finditer(text)]]
    return cuts
