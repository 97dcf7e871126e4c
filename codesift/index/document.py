"""How a chunk is presented to the two retrievers: the texts the model embeds, and BM25's fields.

A chunk alone often lacks what a question is about: the file it lives in, the class a
method belongs to, the heading a paragraph sits under. Both views get a short header
with that context. The model embeds two texts per chunk: the whole chunk, and its head
alone (where it is, its name and its signature), which a question about what a function
does matches better than a body full of other words; search takes the better of the two.
"""
from __future__ import annotations

import hashlib
import re

from codesift.chunk.markdown import own_section_text
from codesift.chunk.model import Chunk, symbol_or_heading
from codesift.index.formats import EMBED_FORMAT
from codesift.terms import spaced_identifiers, terms_text

# Changing embed_text, bm25_fields or head_text? Bump its format in index/formats.py.
HEAD_LINE_CHARS = 200  # of the first line, in a head
# A context line (e.g. the enclosing class header) already near the top of the content is not
# repeated in the embedded text's header: this is how near.
CONTEXT_SEEN_CHARS = 200

_PATH_SPLIT = re.compile(r"[/\\._\-]+")


def searched_text(chunk) -> str:
    """The part of a chunk's content (a Chunk, or a chunk row read back) that the model and BM25
    read: all of it, but for a markdown section opened by headings with no text of their own, which
    its heading path already names in both views (counting their words again would favour such a
    section over its siblings, and change what a section is found by when its parent has no text)."""
    if chunk.language == "markdown" and chunk.kind == "section":
        return own_section_text(chunk.content)
    return chunk.content


def embed_text(chunk: Chunk) -> str:
    """The text given to the embedding model: a context header, then the content with its
    identifiers spelled as words, which a model trained on prose reads better (the gain is measured
    in benchmarks/RESULTS.md)."""
    header = [chunk.path]
    label = symbol_or_heading(chunk)
    if label:
        header.append(label)
    if chunk.context and chunk.context not in chunk.content[:CONTEXT_SEEN_CHARS]:
        header.append(chunk.context.strip())
    return " | ".join(header) + "\n" + spaced_identifiers(searched_text(chunk))


def _part_index(part: tuple[int, int] | str) -> int:
    """Which part of a split symbol: a Chunk's (i, n), or a stored row's "i/n"."""
    return int(part.split("/")[0]) if isinstance(part, str) else part[0]


def head_text(chunk: Chunk) -> str:
    """The chunk's head (a Chunk, or a chunk row read back), embedded as a second vector: path,
    name and first line (a function's signature, a class or heading line; for a later part of a
    split symbol, the symbol's signature), identifiers spelled as words. A question about what a
    function does matches its head better than a body full of other words (measured in
    benchmarks/RESULTS.md)."""
    if chunk.part and _part_index(chunk.part) > 1 and chunk.context:
        first = chunk.context.strip()
    else:
        first = next((s for s in (line.strip() for line in searched_text(chunk).splitlines())
                      if s and not s.startswith("@")), "")
    parts = [chunk.path, symbol_or_heading(chunk), first[:HEAD_LINE_CHARS]]
    return spaced_identifiers(" | ".join(p for p in parts if p))


def embed_hash(text: str) -> str:
    return hashlib.sha256(f"{EMBED_FORMAT}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()


def bm25_fields(chunk: Chunk) -> tuple[str, str, str]:
    """(name, path, body) term strings for the FTS table: names and paths weigh more than bodies."""
    name = terms_text(symbol_or_heading(chunk).replace(">", " "))
    path = terms_text(" ".join(_PATH_SPLIT.split(chunk.path)))
    body = terms_text(searched_text(chunk))
    return name, path, body
