"""Properties every chunking must have, whatever the language: shared by the tests and the benchmark."""
from __future__ import annotations

from codesift.chunk.lines import split_lines
from codesift.chunk.model import FileChunks
from codesift.chunk.splitting import LINE_CHARS


def invariant_violations(text: str, result: FileChunks, max_lines: int = 80) -> list[str]:
    """What is wrong with `result` as a chunking of `text` (empty when nothing is)."""
    lines = split_lines(text)
    max_chars = max_lines * LINE_CHARS
    problems = []
    covered = [False] * len(lines)
    pieces: dict[int, list[str]] = {}  # a line too long for one chunk: its pieces' contents, in order
    previous_start = 0
    for chunk in result.chunks:
        where = f"{chunk.kind} {chunk.symbol or chunk.heading_path} {chunk.start_line}-{chunk.end_line}"
        if not 1 <= chunk.start_line <= chunk.end_line <= len(lines):
            problems.append(f"{where}: lines out of range")
            continue
        if chunk.content != "\n".join(lines[chunk.start_line - 1:chunk.end_line]):
            if chunk.start_line == chunk.end_line and chunk.content:
                pieces.setdefault(chunk.start_line, []).append(chunk.content)
            else:
                problems.append(f"{where}: content is not the file's lines")
        if chunk.n_lines > max_lines:
            problems.append(f"{where}: {chunk.n_lines} lines > {max_lines}")
        if len(chunk.content) > max_chars:
            problems.append(f"{where}: {len(chunk.content)} characters > {max_chars}")
        if chunk.start_line < previous_start:
            problems.append(f"{where}: not sorted by start line")
        if not lines[chunk.start_line - 1].strip():
            problems.append(f"{where}: starts with a blank line")
        previous_start = chunk.start_line
        for i in range(chunk.start_line - 1, chunk.end_line):
            covered[i] = True
    for line, contents in pieces.items():
        if len(contents) < 2 or "".join(contents) != lines[line - 1]:
            problems.append(f"line {line}: its pieces, in order, are not the line")
    for i, line in enumerate(lines):
        if line.strip() and not covered[i]:
            problems.append(f"line {i + 1} not covered: {line[:60]!r}")
            break
    for a, b in zip(result.chunks, result.chunks[1:]):
        overlap = a.end_line - b.start_line + 1
        if overlap > 0 and b.start_line in pieces:
            if not (a.start_line == a.end_line == b.start_line == b.end_line):
                problems.append(f"line {b.start_line} is cut into pieces and also in a chunk at {a.start_line}-{a.end_line}")
            continue
        # Only windows cut from one long unit may overlap, and only by a few lines.
        same_unit = (a.kind, a.symbol, a.heading_path) == (b.kind, b.symbol, b.heading_path)
        if overlap > 0 and not (same_unit and overlap <= 5):
            problems.append(f"chunks at {a.start_line}-{a.end_line} and {b.start_line}-{b.end_line} overlap")
    ids = [c.id for c in result.chunks]
    if len(set(ids)) != len(ids) or not all(ids):
        problems.append("chunk ids missing or not unique")
    return problems
