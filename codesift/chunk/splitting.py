"""Cutting a line range into pieces of about `target` lines and never more than `max_lines`.

Chunkers say where a cut reads well (a statement, paragraph or key starts there); fixed windows
with a small overlap are the last resort, for stretches with no such place.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from codesift.chunk.lines import Piece, SourceLines

WINDOW_OVERLAP = 5


def limits(target: int, max_lines: int) -> tuple[int, int]:
    """Sane (target, max_lines) whatever the caller passed."""
    max_lines = max(1, int(max_lines))
    return max(1, min(int(target), max_lines)), max_lines


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
                split_context: str | None = None) -> list[Piece]:
    """The piece, trimmed of blank edges, or its parts (i, n) when it is too long; every part
    keeps the piece's labels and gets `split_context` (the symbol's header line) as context."""
    spans = [t for s, e in split(piece.start, piece.end, cuts, target, max_lines) if (t := source.trim(s, e))]
    if len(spans) == 1:
        piece.start, piece.end = spans[0]
        return [piece]
    context = piece.context if split_context is None else split_context
    return [replace(piece, start=s, end=e, context=context, part=(i, len(spans)))
            for i, (s, e) in enumerate(spans, 1)]
