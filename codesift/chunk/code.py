"""Code: one chunk per function, method and class, read from a tree-sitter parse.

The walk visits only nodes that can hold definitions: the top level, class bodies and the
bodies of whatever the language's spec says to descend into. Function bodies are never
entered, and calls and imports come from one query over the file.

Every line ends up in exactly one place: in a definition (with the comments and attributes
directly above it), or among the lines its container's definitions leave over: a class keeps
its header, docstring and fields as "class" chunks, a file its imports and statements as
"module" chunks. Lines that are only structure (`}`, `#endif`, `else:`) join a neighbour.
"""
from __future__ import annotations

import importlib
import re
import threading
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import Iterator

from tree_sitter import Language, Node, Parser, Query, QueryCursor

from codesift.chunk.code_specs import SPECS, CodeSpec, Definition, Role, Walk
from codesift.chunk.lines import CallIndex, Piece, SourceLines
from codesift.chunk.model import Import
from codesift.chunk.splitting import char_limits, code_line_cuts, split_piece

# Big statements are looked into this many levels deep for places to cut a long definition, and
# a line too long for one chunk this many (a minified bundle nests its code in wrappers).
_CUT_DEPTH = 6
_LINE_CUT_DEPTH = 24
_HEADER_CHARS = 200
# Constructs C does not have: a file "in C" showing them is C++ (headers are named .h either way).
_CPP_HINTS = re.compile(r"^[ \t]*(?:namespace\s+\w+\s*\{|template\s*<|class\s+\w+[^;()]*\{|"
                        r"(?:public|private|protected)\s*:)|\w::~?\w", re.MULTILINE)
_LONE_CR = re.compile(rb"\r(?!\n)")
_SEPARATORS = re.compile(rb"[;},]")
_LEADING_ANNOTATIONS = re.compile(r"^(?:@[\w.]+(?:\((?:[^()]|\([^()]*\))*\))?\s*)+")


@lru_cache(maxsize=None)
def _language(language: str) -> Language:
    module, function = SPECS[language].grammar
    return Language(getattr(importlib.import_module(module), function)())


_per_thread = threading.local()  # a Parser holds parse state: one per thread (and so per process)


def _parser(language: str) -> Parser:
    parsers = _per_thread.__dict__.setdefault("parsers", {})
    if language not in parsers:
        parsers[language] = Parser(_language(language))
    return parsers[language]


@lru_cache(maxsize=None)
def _query(language: str) -> Query:
    return Query(_language(language), SPECS[language].query)


def chunk_code(source: SourceLines, language: str, target: int,
               max_lines: int) -> tuple[list[Piece], list[Import], CallIndex]:
    """Pieces, imports and called names of one file in a language of SPECS."""
    if language == "c" and _CPP_HINTS.search(source.text):
        language = "cpp"  # a C++ header named .h
    spec = SPECS[language]
    data = source.data
    if b"\r" in data:  # old Mac line ends: tree-sitter only knows \n; same length keeps offsets
        data = _LONE_CR.sub(b"\n", data)
    root = _parser(language).parse(data).root_node
    pieces = _SyntaxWalker(spec, source, root, target, max_lines).pieces()
    captures = QueryCursor(_query(language)).captures(root)
    line_of = source.line_of_byte
    calls = CallIndex((name.start_byte, name.text.decode("utf-8", "replace")) for name in captures.get("call", ()))
    imports = sorted(spec.imports(captures, line_of), key=lambda i: i.line)
    return pieces, imports, calls


@dataclass(eq=False)
class _Unit:
    """A definition, or the file: its lines, labels, and the definitions carved out of it."""

    kind: str
    symbol: str | None
    start: int
    end: int
    header_line: int  # the line its header starts on (0 for the file); members start below it
    first_byte: int  # its code's bytes [first_byte, end_byte) (the file's, for the file)
    end_byte: int
    header: str = ""  # its own header: context for its split parts and its leftover lines
    context: str = ""  # the enclosing definition's header
    members: list[_Unit] = field(default_factory=list)
    statements: list[Node] = field(default_factory=list)  # its own code, where long stretches are cut


class _SyntaxWalker:
    """One file's walk: its definitions found as nested units, then cut into pieces."""

    def __init__(self, spec: CodeSpec, source: SourceLines, root: Node, target: int, max_lines: int):
        self.spec, self.source, self.root = spec, source, root
        self.target, self.max_lines = target, max_lines
        self.target_chars, self.max_chars = char_limits(target, max_lines)
        self._unparsed_line_cuts = code_line_cuts(source)

    def pieces(self) -> list[Piece]:
        file = _Unit("module", None, 1, len(self.source), header_line=0, first_byte=0, end_byte=len(self.source.data))
        self._collect(file, self.root, qualifier=(), in_class=False)
        return self._glue_frames(list(self._emit(file)))

    # -- finding definitions -------------------------------------------------------------------

    def _collect(self, container: _Unit, body: Node, qualifier: tuple[str, ...], in_class: bool) -> None:
        """Fill container.members with the definitions in body, in order, each owning its lines."""
        source = self.source
        floor = container.header_line  # the last line already taken
        for outer, definition in self._definitions(body, container.statements):
            start, end = source.line_span(outer.start_byte, outer.end_byte)
            indent = source.indent(start) if self.spec.indent_scoped else None
            if indent is not None:
                end = self._without_dedented_comments(start, end, indent)
            if start <= floor or end > container.end:  # shares a line with what came before
                container.statements.append(outer)
                continue
            start = self._with_leading_lines(start, floor, indent)
            container.members.append(self._unit(definition, start, end, qualifier, in_class, container.header,
                                                (outer.start_byte, outer.end_byte)))
            floor = end

    def _definitions(self, parent: Node, statements: list[Node]) -> Iterator[tuple[Node, Definition]]:
        """(outer node, definition) for each definition among parent's children, looking through
        DESCEND nodes; everything else is added to `statements`."""
        rules = self.spec.rules
        for child in parent.named_children:
            rule = rules.get(child.type)
            definition = None
            if rule is Walk.DESCEND:
                statements.append(child)
                yield from self._definitions(child, statements)
                continue
            if rule is Walk.UNWRAP:
                definition = self._unwrap(child)
            elif rule is not None:
                definition = rule(child)
            if definition is None:
                statements.append(child)
            else:
                yield child, definition

    def _unwrap(self, wrapper: Node) -> Definition | None:
        for child in wrapper.named_children:
            rule = self.spec.rules.get(child.type)
            if rule is Walk.UNWRAP:
                found = self._unwrap(child)
            elif rule is not None and rule is not Walk.DESCEND:
                found = rule(child)
            else:
                continue
            if found is not None:
                return found
        return None

    def _unit(self, definition: Definition, start: int, end: int, qualifier: tuple[str, ...], in_class: bool,
              context: str, span: tuple[int, int]) -> _Unit:
        name = definition.name
        path = (*qualifier, name) if name else qualifier
        symbol = ".".join(path) or None
        header_line = self.source.line_of_byte(definition.node.start_byte)
        header = self._header(definition)
        body = definition.body
        if definition.role is Role.FUNCTION:
            kind = "method" if in_class or "." in name else "function"
            unit = _Unit(kind, symbol, start, end, header_line, *span, header, context)
            if body is not None and end - start + 1 > self.max_lines:
                # A function too long for one chunk that defines functions or classes inside (a
                # plugin's closure, a factory): each of those becomes a chunk of its own, named
                # `outer.inner`, rather than an anonymous stretch of outer's parts.
                self._collect(unit, body, path, in_class=False)
            else:  # small: nested definitions stay in their parent, where they are read
                unit.statements = (body or definition.node).named_children
            return unit
        kind = "class" if definition.role is Role.CLASS else "module"
        unit = _Unit(kind, symbol, start, end, header_line, *span, header, context)
        if body is not None:
            self._collect(unit, body, path, in_class=definition.role is Role.CLASS)
        else:
            unit.statements = definition.node.named_children
        return unit

    def _header(self, definition: Definition) -> str:
        """The definition's signature on one line: from its start to its body (or its first line)."""
        node, body = definition.node, definition.body
        data = self.source.data
        if body is not None and body.start_byte > node.start_byte:
            raw = data[node.start_byte:min(body.start_byte, node.start_byte + 4 * _HEADER_CHARS)]
        else:
            raw = data[node.start_byte:node.end_byte].split(b"\n", 1)[0]
        header = _LEADING_ANNOTATIONS.sub("", " ".join(raw.decode("utf-8", "replace").split()))
        header = header.rstrip("{ ")
        return header if len(header) <= _HEADER_CHARS else header[:_HEADER_CHARS - 1] + "…"

    # -- comments that belong to a definition --------------------------------------------------

    def _with_leading_lines(self, start: int, floor: int, indent: int | None) -> int:
        """Move start up over the comment/attribute lines directly above (no blank line between)."""
        blank = self.source.blank
        while start - 1 > floor and not blank[start - 2] and self._is_leading_line(start - 1, indent):
            start -= 1
        return start

    def _without_dedented_comments(self, start: int, end: int, indent: int) -> int:
        """Python hands trailing comments to the block above even when they are dedented: they
        belong to what follows, so the definition ends before them."""
        blank = self.source.blank
        while end > start and (blank[end - 1] or self._is_leading_line(end, indent)):
            end -= 1
        return end

    def _is_leading_line(self, line: int, indent: int | None) -> bool:
        """Whether the line is wholly a comment or attribute (not code with one on its side)."""
        source = self.source
        if indent is not None and source.indent(line) > indent:
            return False
        first, last = source.code_bytes(line)
        node = self.root.descendant_for_byte_range(first, first)
        while node is not None:
            if node.type in self.spec.leading:
                return node.end_byte >= last
            node = node.parent
        return False

    # -- turning units into pieces -------------------------------------------------------------

    def _emit(self, unit: _Unit, enclosing: tuple[_Unit, ...] = ()) -> Iterator[tuple[Piece, bool]]:
        """(piece, is_frame) for the unit's own lines, then for its members, recursively."""
        for start, end, is_frame in self._own_lines(unit):
            holds_header = start <= unit.header_line <= end
            context = unit.context if holds_header else unit.header
            piece = Piece(start, end, unit.kind, unit.symbol, context=context)
            long = end - start + 1 > self.max_lines or self.source.chars(start, end) > self.max_chars
            cuts = self._cut_lines(unit.statements, start, end) if long else ()
            parts = split_piece(self.source, piece, cuts, self.target, self.max_lines, unit.header or None,
                                self._line_cuts)
            if any(part.columns for part in parts):
                parts = self._label_line_pieces(parts, (*enclosing, unit))
            for part in parts:
                yield part, is_frame
        for member in unit.members:
            yield from self._emit(member, (*enclosing, unit))

    def _line_cuts(self, line: int) -> list[list[int]]:
        """Where a line too long for one chunk reads well cut: first between two nodes of the program
        with a `;`, `}` or `,` between them (statements, members, items of a list), then between any
        two nodes (looked for down the tree inside nodes longer than the target), then where
        `code_line_cuts` says."""
        source = self.source
        first, last = source.line_bytes(line)
        data = source.data
        between_items, between_nodes = set(), set()
        stack = [(self.root, _LINE_CUT_DEPTH)]
        while stack:
            node, depth = stack.pop()
            previous = None
            for child in node.named_children:
                if child.end_byte <= first or child.start_byte >= last:
                    previous = child
                    continue
                if previous is not None:
                    gap = data[max(previous.start_byte, previous.end_byte - 1):child.start_byte]
                    (between_items if _SEPARATORS.search(gap) else between_nodes).add(child.start_byte)
                if depth and child.end_byte - child.start_byte > self.target_chars:
                    stack.append((child, depth - 1))
                previous = child
        return [self._columns(line, between_items), self._columns(line, between_nodes),
                *self._unparsed_line_cuts(line)]

    def _columns(self, line: int, offsets: set[int]) -> list[int]:
        """Byte offsets within `line` (past its first character) as its sorted character columns."""
        first, last = self.source.line_bytes(line)
        text = self.source.lines[line - 1]
        if text.isascii():
            return sorted(b - first for b in offsets if first < b < last)
        ends = list(accumulate(len(ch.encode("utf-8", "surrogatepass")) for ch in text))
        return sorted({bisect_left(ends, b - first) + 1 for b in offsets if first < b < last})

    def _label_line_pieces(self, parts: list[Piece], units: tuple[_Unit, ...]) -> list[Piece]:
        """A piece of a long line is labelled by the innermost of `units` (outermost first) whose
        code holds it: a minified line given to its first definition is mostly other code. Parts are
        numbered again within each label."""
        for part in parts:
            if part.columns is None:
                continue
            first, end = part.byte_span(self.source)
            owner = next((u for u in reversed(units[1:]) if u.first_byte <= first and end <= u.end_byte), units[0])
            if owner is not units[-1]:
                part.kind, part.symbol, part.context = owner.kind, owner.symbol, owner.header
        totals = Counter((p.kind, p.symbol) for p in parts)
        seen: Counter = Counter()
        for part in parts:
            label = (part.kind, part.symbol)
            seen[label] += 1
            part.part = (seen[label], totals[label]) if totals[label] > 1 else None
        return parts

    def _own_lines(self, unit: _Unit) -> list[tuple[int, int, bool]]:
        """The unit's lines its members leave over, as trimmed ranges, with frame lines at their
        edges (closers first, openers last) set apart: (start, end, is_frame)."""
        spans, cursor = [], unit.start
        for member in unit.members:
            if member.start > cursor:
                spans.append((cursor, member.start - 1))
            cursor = max(cursor, member.end + 1)
        if cursor <= unit.end:
            spans.append((cursor, unit.end))
        return [piece for start, end in spans for piece in self._frames_apart(start, end, unit.header_line)]

    def _frames_apart(self, start: int, end: int, header_line: int) -> list[tuple[int, int, bool]]:
        """Split a range into leading closers, its code, and trailing openers (frames alone
        make one frame range); blank edges go."""
        lines, frame, opener, blank = self.source.lines, self.spec.frame, self.spec.opener, self.source.blank
        code = [n for n in range(start, end + 1) if not blank[n - 1]]
        if not code:
            return []

        def is_frame(i: int) -> bool:  # asked of the edges only: most ranges have code on their first line
            return code[i] != header_line and frame.match(lines[code[i] - 1]) is not None

        first_code = next((i for i in range(len(code)) if not is_frame(i)), None)
        if first_code is None:
            return [(code[0], code[-1], True)]
        head = 0  # closers first: `}`, `#endif`
        while head < first_code and not opener.search(lines[code[head] - 1]):
            head += 1
        tail = len(code)  # openers last: `#ifdef X`, `if cond:`
        while tail - 1 > first_code and is_frame(tail - 1) and opener.search(lines[code[tail - 1] - 1]):
            tail -= 1
        pieces = [(code[head], code[tail - 1], False)]
        if head:
            pieces.insert(0, (code[0], code[head - 1], True))
        if tail < len(code):
            pieces.append((code[tail], code[-1], True))
        return pieces

    def _cut_lines(self, statements: list[Node], start: int, end: int) -> set[int]:
        """Lines in (start, end] where a statement starts; big statements are looked into."""
        cuts: set[int] = set()
        stack = [(node, _CUT_DEPTH) for node in statements]
        while stack:
            node, depth = stack.pop()
            first, last = self.source.line_span(node.start_byte, node.end_byte)
            if last < start or first > end:
                continue
            if first > start:
                cuts.add(first)
            if depth and last - first + 1 > self.target:
                stack.extend((child, depth - 1) for child in node.named_children)
        return cuts

    def _glue_frames(self, entries: list[tuple[Piece, bool]]) -> list[Piece]:
        """Join each frame piece to the neighbour it opens (the next) or closes (the previous),
        or to the other one if that does not fit in max_lines; else it stays a chunk."""
        entries.sort(key=lambda entry: (entry[0].start, entry[0].end))
        kept = []
        for i, (piece, is_frame) in enumerate(entries):
            if not is_frame:
                kept.append(piece)
                continue
            before = entries[i - 1] if i > 0 else None
            after = entries[i + 1] if i + 1 < len(entries) else None
            opens = self.spec.opener.search(self.source.lines[piece.end - 1])
            for neighbour, neighbour_is_frame in filter(None, (after, before) if opens else (before, after)):
                start, end = min(neighbour.start, piece.start), max(neighbour.end, piece.end)
                if not neighbour_is_frame and piece.columns is None and neighbour.columns is None \
                        and end - start + 1 <= self.max_lines and self.source.chars(start, end) <= self.max_chars:
                    neighbour.start, neighbour.end = start, end
                    break
            else:
                kept.append(piece)
        return kept
