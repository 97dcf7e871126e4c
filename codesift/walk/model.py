"""What a walk returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    """A file to index."""

    rel: str        # path relative to the walk root, with "/" separators; always valid UTF-8
    path: Path      # absolute real path to read from (symlinks resolved); read it with `read_source`
    size: int       # bytes
    mtime_ns: int
    dev: int        # device and inode the walk saw at `path`: `read_source` reads only that file
    ino: int


@dataclass(frozen=True)
class Skipped:
    """A path not indexed for a reason the user should hear about."""

    rel: str        # as in SourceFile; bytes of an undecodable name are shown as \x escapes: bad\xff.py
    reason: str     # short and user-facing, e.g. "binary", "broken symlink", "secret (private key)"


@dataclass
class WalkResult:
    files: list[SourceFile]   # sorted by rel
    skipped: list[Skipped]    # sorted by rel
    # Paths left out silently: excluded by ignore rules or by default (a folder counts once,
    # its contents are not visited), special files (fifos, sockets, devices), and symlinks
    # to files or folders that are already listed.
    ignored: int
    # (rel, mtime_ns) of each folder listed ("" is the root), its mtime taken before listing it: a
    # later mtime means entries were added, removed or renamed there since (see Store.folder_stamps).
    folders: list[tuple[str, int]] = field(default_factory=list)
