"""Small helpers shared by the chunk tests."""
from __future__ import annotations

from pathlib import Path

from codesift.chunk import FileChunks, chunk_file

FIXTURES = Path(__file__).parent / "fixtures"


def read_fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def chunk_fixture(name: str, **options) -> FileChunks:
    return chunk_file(name, read_fixture(name), **options)


def outline(result: FileChunks) -> list[tuple]:
    """(kind, symbol or heading path, start, end, part) per chunk: what the tests compare."""
    return [(c.kind, c.symbol if c.symbol is not None else c.heading_path or None, c.start_line, c.end_line, c.part)
            for c in result.chunks]
