"""The chunk stage: a file's text in, search-sized chunks out.

    chunk_file(path, text) -> FileChunks

Code in a language with a grammar is cut at its definitions, Markdown at its headings,
JSON/YAML/TOML at their top-level keys, prose at paragraphs and anything else into line
windows. Bad input never raises: whatever cannot be read structurally is cut into windows.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from codesift.chunk.languages import CODE_LANGUAGES, KNOWN_LANGUAGES, language_for
from codesift.chunk.model import Chunk, FileChunks, Import, with_ids

if TYPE_CHECKING:
    from codesift.chunk.lines import CallIndex, Piece, SourceLines

# The chunkers are imported by the first chunk_file call, not with this package: a search reads
# chunk.model (through the store) on every cold start and never chunks.

__all__ = ["chunk_file", "language_for", "Chunk", "FileChunks", "Import"]

log = logging.getLogger(__name__)


def _document_chunkers() -> dict[str, Callable[[SourceLines, int, int], list[Piece]]]:
    from codesift.chunk.markdown import chunk_markdown
    from codesift.chunk.structured import chunk_json, chunk_toml, chunk_yaml
    from codesift.chunk.text import chunk_paragraphs

    return {"markdown": chunk_markdown, "json": chunk_json, "yaml": chunk_yaml, "toml": chunk_toml,
            "text": chunk_paragraphs}


def chunk_file(path: str, text: str, language: str | None = None, *, max_lines: int = 80,
               target_lines: int = 40) -> FileChunks:
    """Chunks of one file. `path` is the posix path relative to the indexed root and is stored
    as given; `language` defaults to what the file name says ("text" when it says nothing)."""
    from codesift.chunk.lines import SourceLines, build_chunks
    from codesift.chunk.splitting import limits
    from codesift.chunk.text import chunk_windows

    language = language or language_for(path) or "text"
    target, max_lines = limits(target_lines, max_lines)
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace")
    source = SourceLines(text)
    fallback = None
    try:
        pieces, imports, calls = _pieces(source, language, target, max_lines)
    except Exception as e:  # a parser surprise must cost this file its structure, not the index run
        log.debug("chunking %s as %s failed; falling back to line windows", path, language, exc_info=True)
        fallback = f"{language} chunker failed ({type(e).__name__}): cut into line windows"
        pieces, imports, calls = chunk_windows(source, target, max_lines), [], None
    return FileChunks(with_ids(build_chunks(path, language, source, pieces, calls)), imports, fallback)


def _pieces(source: SourceLines, language: str, target: int,
            max_lines: int) -> tuple[list[Piece], list[Import], CallIndex | None]:
    if source.trim(1, len(source)) is None:
        return [], [], None
    if language in CODE_LANGUAGES:
        from codesift.chunk.code import chunk_code  # tree-sitter is only loaded where code is chunked

        return chunk_code(source, language, target, max_lines)
    from codesift.chunk.text import chunk_paragraphs, chunk_windows

    chunker = _document_chunkers().get(language)
    if chunker is None:  # code without a grammar here gets windows; unknown names are prose
        chunker = chunk_windows if language in KNOWN_LANGUAGES else chunk_paragraphs
    return chunker(source, target, max_lines), [], None
