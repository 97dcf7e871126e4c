"""Checks on paths and ids that come from a client (an agent, an MCP peer, the command line).

The index stores posix paths relative to its root. A client path is accepted only when it
names something inside that root: no NUL byte, not absolute, no `..`, and no symlink on the
way that leads out (the path is resolved against the root on disk and checked again).
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from codesift.chunk.names import MIN_REF_LENGTH
from codesift.errors import CodesiftError, PathOutsideRootError
from codesift.index.store import Store

_HEX_ID = re.compile(rf"[0-9a-f]{{{MIN_REF_LENGTH},64}}")


def index_root(store: Store) -> Path:
    """The folder the index was built from (recorded in its meta; the index folder's parent before that)."""
    root = store.get_meta("root")
    return Path(root) if root else store.dir.resolve().parent


def safe_relative_path(root: Path, path: str) -> str:
    """`path` normalised to the index's form ("src/app.py"; "" for the root itself), or
    PathOutsideRootError when it would lead outside `root`."""
    def refuse(why: str) -> PathOutsideRootError:
        return PathOutsideRootError(f"refusing path {path!r}: {why}; give a path relative to the indexed "
                                    f"root {root}, as listed by explore")

    if "\x00" in path:
        raise refuse("it contains a NUL byte")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).anchor:
        raise refuse("absolute paths are not allowed")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise refuse("'..' is not allowed")
    real_root = root.resolve()
    try:
        real = real_root.joinpath(*parts).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise refuse(f"it cannot be resolved ({e})") from e
    if real != real_root and real_root not in real.parents:
        raise refuse("a symlink in it leads outside the root")
    return "/".join(parts)


def normalize_chunk_id(id_or_ref: str) -> str:
    """A chunk id (64 hex characters) or ref (its first 12), lower-cased; anything else is refused."""
    text = id_or_ref.strip().lower()
    if not _HEX_ID.fullmatch(text):
        shown = id_or_ref if len(id_or_ref) <= 80 else id_or_ref[:77] + "..."
        raise CodesiftError(f"{shown!r} is not a chunk id or ref: expected 6 to 64 hex characters, "
                            "like the 12-character refs that search, lookup and explore return")
    return text
