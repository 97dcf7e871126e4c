"""What a walk returns."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    """A file to index."""

    rel: str        # path relative to the walk root, with "/" separators
    path: Path      # absolute path to read from (symlinks resolved)
    size: int       # bytes
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A path not indexed for a reason the user should hear about."""

    rel: str
    reason: str     # short and user-facing, e.g. "binary", "broken symlink"


@dataclass
class WalkResult:
    files: list[SourceFile]   # sorted by rel
    skipped: list[Skipped]    # sorted by rel
    # Paths left out silently: excluded by ignore rules or by default (a folder counts once,
    # its contents are not visited), special files (fifos, sockets, devices), and symlinks
    # to files or folders that are already listed.
    ignored: int
