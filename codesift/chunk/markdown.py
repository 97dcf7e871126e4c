"""Markdown: one chunk per heading section, labelled with the headings above it.

A heading with no text of its own, right above its first subsection (a page title over its first
section), is no chunk of its own: a chunk of a few tokens that says nothing. It opens its
subsection's chunk instead, and its words live on in that chunk's heading path, as the words of
every heading above a section do (`own_section_text` leaves them out of what is searched, so a
section reads the same to search whether its parents had text or not).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from codesift.chunk.lines import Piece, SourceLines
from codesift.chunk.splitting import prose_line_cuts, split_piece

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?=[ \t]|$)(.*)$")
_ATX_CLOSING = re.compile(r"(?:^|[ \t])#+[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(={2,}|-{2,})[ \t]*$")
# List items and quotes interrupt a paragraph; their text is never a setext heading, nor is
# indented code (an indented line only continues a paragraph already started).
_BLOCK_START = re.compile(r"^ {0,3}(?:(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)|>)")
_INDENTED = re.compile(r"^(?: {4,}|\t)")
_FRONT_MATTER_OPEN = re.compile(r"^---[ \t]*$")
_FRONT_MATTER_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$")


@dataclass(frozen=True)
class Heading:
    line: int  # where its section starts (the first text line of a setext heading)
    level: int
    text: str
    source_line: str  # the heading as written, for the context of split parts


def chunk_markdown(source: SourceLines, target: int, max_lines: int) -> list[Piece]:
    """A section per heading (ATX or setext), through the line before the next heading of any
    level; long sections are cut between paragraphs and keep their heading as context."""
    headings, cuts = _scan(source)
    line_cuts = prose_line_cuts(source)
    pieces: list[Piece] = []
    starts = [h.line for h in headings] + [len(source) + 1]
    if starts[0] > 1:  # text before the first heading
        pieces += split_piece(source, Piece(1, starts[0] - 1, "section"), cuts, target, max_lines,
                              line_cuts=line_cuts)
    ancestry: list[Heading] = []
    held: int | None = None  # the first line of headings with no text of their own, not yet emitted
    for heading, following, next_start in zip(headings, [*headings[1:], None], starts[1:]):
        while ancestry and ancestry[-1].level >= heading.level:
            ancestry.pop()
        ancestry.append(heading)
        if _opens_its_subsection(source, heading, following, next_start):
            held = heading.line if held is None else held
            continue
        start = heading.line if held is None else held
        held = None
        section = Piece(start, next_start - 1, "section", heading_path=tuple(h.text for h in ancestry))
        pieces += split_piece(source, section, cuts, target, max_lines, heading.source_line, line_cuts)
    return pieces


def _opens_its_subsection(source: SourceLines, heading: Heading, following: Heading | None,
                          next_start: int) -> bool:
    """Whether `heading` has no text of its own and the next heading is below it (so its text is in
    the next section's heading path): a sibling or a higher heading next leaves it a chunk of its own."""
    if following is None or following.level <= heading.level:
        return False
    rest = [n for n in range(heading.line + 1, next_start) if not source.is_blank(n)]
    # a setext heading's text runs from heading.line to its underline, the one line left
    return not rest or (rest == [heading.line + 1] and _SETEXT.match(source.lines[heading.line]) is not None)


def own_section_text(content: str) -> str:
    """A section chunk's text from its own heading on: without the headings with no text of their
    own that `chunk_markdown` put above it (their words are in its heading path already)."""
    source = SourceLines(content)
    headings, _ = _scan(source)
    if len(headings) < 2 or headings[0].line != 1:
        return content
    own = headings[0]
    for following in headings[1:]:
        if not _opens_its_subsection(source, own, following, following.line):
            break
        own = following
    return content if own.line == 1 else "\n".join(source.lines[own.line - 1:])


def _scan(source: SourceLines) -> tuple[list[Heading], list[int]]:
    """The headings outside code fences and front matter, and the lines where a long section
    may be cut (paragraph and fence starts, never inside a fence)."""
    lines, blank = source.lines, source.blank
    headings: list[Heading] = []
    cuts: list[int] = []
    fence: tuple[str, int] | None = None  # (character, length) of the open fence
    run_start: int | None = None  # first line of the current run of paragraph text
    line_no = _front_matter_end(lines)
    while line_no < len(lines):
        line_no += 1
        line = lines[line_no - 1]
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence[0] * fence[1]) and not stripped.strip(fence[0]) \
                    and len(line) - len(line.lstrip(" ")) < 4:
                fence = None
            continue
        if blank[line_no - 1]:
            run_start = None
            continue
        if line_no > 1 and blank[line_no - 2]:
            cuts.append(line_no)
        opening = _FENCE.match(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence, run_start = (opening.group(1)[0], len(opening.group(1))), None
            cuts.append(line_no)
            continue
        atx = _ATX.match(line)
        if atx:
            text = _ATX_CLOSING.sub("", atx.group(2).strip()).strip()
            headings.append(Heading(line_no, len(atx.group(1)), text, line.strip()))
            run_start = None
            continue
        if run_start is not None and run_start > 0 and _SETEXT.match(line):
            text = " ".join(lines[i - 1].strip() for i in range(run_start, line_no))
            level = 1 if line.lstrip()[0] == "=" else 2
            headings.append(Heading(run_start, level, text, lines[run_start - 1].strip()))
            run_start = None
            continue
        if _BLOCK_START.match(line):
            run_start = -1  # -1: a run of text that is not a paragraph
        elif run_start is None:
            run_start = -1 if _INDENTED.match(line) else line_no
    return headings, cuts


def _front_matter_end(lines: list[str]) -> int:
    """Last line of a YAML front matter block opening the file, or 0 without one."""
    if not lines or not _FRONT_MATTER_OPEN.match(lines[0]):
        return 0
    for i in range(1, len(lines)):
        if _FRONT_MATTER_CLOSE.match(lines[i]):
            return i + 1
    return 0
