"""What a chunk is called and how it is cited: its ref (the short form of its id) and its label
(symbol or heading path). Apart from `chunk.model` so that a search, which shows chunks read
back from the index, does not build the chunk stage's classes."""
from __future__ import annotations

# A chunk's ref: the first characters of its 64-hex id, enough to be unique in any real tree
# (an export lengthens the refs of the rare ids that share them).
REF_LENGTH = 12
# Shortest id prefix accepted when looking a chunk up.
MIN_REF_LENGTH = 6


def chunk_ref(chunk_id: str) -> str:
    return chunk_id[:REF_LENGTH]


def heading_label(heading_path: tuple[str, ...]) -> str:
    """A markdown heading path (or a config key path) as people write it: `A > B > C`."""
    return " > ".join(heading_path)


def symbol_or_heading(chunk) -> str:
    """What a chunk is called: its symbol, else its heading path, else "" (anything with `symbol`
    and `heading_path`: a Chunk, or a chunk row read back from the index)."""
    return chunk.symbol or heading_label(chunk.heading_path)
