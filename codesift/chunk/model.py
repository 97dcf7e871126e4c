"""What a chunk is. Every chunker returns these; the index stores them as they are."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# What a chunk is called and its ref live in chunk/names.py (a search reads them without this
# module's classes); they are named here too, where the chunk stage has always found them.
from codesift.chunk.names import MIN_REF_LENGTH, REF_LENGTH, chunk_ref, heading_label, symbol_or_heading  # noqa: F401


def estimate_tokens(text: str) -> int:
    """A cheap, model-independent size estimate: about four characters per token."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Chunk:
    path: str  # posix path relative to the indexed root
    language: str  # "python", "markdown", "json", "text", ...
    kind: str  # "function", "method", "class", "module", "section", "key", "paragraph", "lines", ...
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    # exactly lines start_line..end_line of the file; for a line too long for one chunk (a minified
    # bundle), a piece of that one line: the pieces of a line, in order, make it
    content: str
    symbol: str | None = None  # qualified name for code: "Class.method", "outer.inner"
    heading_path: tuple[str, ...] = ()  # markdown ancestry, outermost first; JSON/YAML/TOML: the key
    context: str = ""  # a short line that situates the chunk: enclosing class header, signature of a split symbol
    part: tuple[int, int] | None = None  # (i, n) when an oversized symbol or section was split
    calls: tuple[str, ...] = ()  # names this code calls (last component: `self.foo()` -> "foo")
    id: str = field(default="")  # chunk_ids

    @property
    def ref(self) -> str:
        return chunk_ref(self.id)

    @property
    def token_estimate(self) -> int:
        return estimate_tokens(self.content)

    @property
    def n_lines(self) -> int:
        return self.end_line - self.start_line + 1


@dataclass(frozen=True)
class Import:
    """One imported name: `from os import path as p` -> Import("os", "path", "p", line)."""

    module: str
    name: str | None
    alias: str | None
    line: int


@dataclass
class FileChunks:
    chunks: list[Chunk]
    imports: list[Import] = field(default_factory=list)
    # Why the file's structure could not be read (it was cut into line windows instead), if so
    fallback: str | None = None


def chunk_id(path: str, kind: str, symbol: str | None, heading_path: tuple[str, ...], content: str,
             occurrence: int = 0) -> str:
    """Stable content hash: the same chunk in the same file keeps its id when other code moves."""
    h = hashlib.sha256()
    for part in (path, kind, symbol or "", "\x1f".join(heading_path), content, str(occurrence)):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def chunk_ids(path: str, chunks: list[tuple[str, str | None, tuple[str, ...], str]]) -> list[str]:
    """The ids of one file's chunks, given as (kind, symbol, heading_path, content) in file order:
    identical chunks within one file are told apart by occurrence number."""
    seen: dict[tuple, int] = {}
    out = []
    for key in chunks:
        n = seen.get(key, 0)
        seen[key] = n + 1
        kind, symbol, heading_path, content = key
        out.append(chunk_id(path, kind, symbol, heading_path, content, n))
    return out


def with_ids(chunks: list[Chunk]) -> list[Chunk]:
    """One file's chunks with their ids made again (e.g. once their path has changed)."""
    from dataclasses import replace

    if not chunks:
        return []
    ids = chunk_ids(chunks[0].path, [(c.kind, c.symbol, c.heading_path, c.content) for c in chunks])
    return [replace(c, id=i) for c, i in zip(chunks, ids)]
