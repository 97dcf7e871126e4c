"""The chunk stage: a file's text in, search-sized chunks out.

    chunk_file(path, text) -> FileChunks

Code in a language with a grammar is cut at its definitions, Markdown at its headings,
JSON/YAML/TOML at their top-level keys, prose at paragraphs and anything else into line
windows (`chunker`). Bad input never raises: whatever cannot be read structurally is cut into windows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from codesift.lazy import lazy_names

if TYPE_CHECKING:
    from codesift.chunk.chunker import chunk_file
    from codesift.chunk.languages import language_for
    from codesift.chunk.model import Chunk, FileChunks, Import

__all__ = ["chunk_file", "language_for", "Chunk", "FileChunks", "Import"]

# The names above, imported from their modules on first use: a search imports
# `codesift.chunk.model` (through the store), which runs this file first, and needs none of the
# chunkers (their regular expressions and tables are a good part of a cold search's imports).
_HOMES = {"chunk_file": "codesift.chunk.chunker", "language_for": "codesift.chunk.languages",
          "Chunk": "codesift.chunk.model", "FileChunks": "codesift.chunk.model", "Import": "codesift.chunk.model"}

__getattr__ = lazy_names(globals(), _HOMES)
