"""Which folders may be indexed: refusing the file system root, the home folder and system folders.

Indexing `/` walks `/proc` and `/sys` and writes `/.codesift`; indexing the home folder takes
in its dotfiles (keys, tokens) and serves them. Both are refused unless the user insists.
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import pwd
except ImportError:  # Windows
    pwd = None

from codesift.errors import CodesiftError


class UnsafeRootError(CodesiftError):
    """The folder to index is the file system root, a system folder or (a folder holding) the
    home folder; indexing it needs `force=True` (`--force`)."""


# Folders of the operating system, refused as roots themselves (a project below them is fine).
# Mount points in general are not refused: containers mount projects at /app, /src, /work.
SYSTEM_FOLDERS = frozenset({
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr",
    "/usr/local", "/var",
    # macOS
    "/Applications", "/Library", "/System", "/Users", "/Volumes", "/cores", "/private",
    "/private/etc", "/private/tmp", "/private/var",
})
# Kernel file systems: nothing below them is source, and reading them can block or never end.
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


def check_root(root: str | Path, *, force: bool = False) -> Path:
    """The real path of `root` if it can be indexed.

    Raises CodesiftError if `root` is not a readable folder or its path is not valid UTF-8
    (an index stores paths as text), and UnsafeRootError if it is the file system root, a
    system folder, inside /proc, /sys or /dev, or the home folder or a folder holding it,
    unless `force` is true.
    """
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        what = "does not exist" if not os.path.exists(real) else "is not a folder"
        raise CodesiftError(f"Cannot index {str(root)!r}: it {what}.")
    if not os.access(real, os.R_OK | os.X_OK):
        raise CodesiftError(f"Cannot index {str(root)!r}: permission denied.")
    try:
        real.encode("utf-8")
    except UnicodeEncodeError:
        shown = real.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise CodesiftError(f"Cannot index '{shown}': its path is not valid UTF-8; rename the folder.") from None
    if not force:
        what = unsafe_root_reason(real)
        if what is not None:
            raise UnsafeRootError(f"Refusing to index {real!r}: it is {what}; pass --force to index it anyway.")
    return Path(real)


def unsafe_root_reason(real: str) -> str | None:
    """What makes the real path `real` unsafe to index ("the file system root", ...), or None."""
    if os.path.dirname(real) == real:
        return "the file system root"
    for home in _home_folders():
        if home == real:
            return "your home folder"
        if home.startswith(real.rstrip(os.sep) + os.sep):
            return "a folder holding your home folder"
    if real in SYSTEM_FOLDERS:
        return "a system folder"
    for pseudo in PSEUDO_FILESYSTEMS:
        if real.startswith(pseudo + os.sep):
            return f"inside {pseudo}"
    return None


def _home_folders() -> set[str]:
    """The user's home folder as $HOME says and as the password database says."""
    homes = set()
    candidates = [os.environ.get("HOME"), os.environ.get("USERPROFILE")]
    if pwd is not None:
        try:
            candidates.append(pwd.getpwuid(os.getuid()).pw_dir)
        except KeyError:  # a uid without an entry (containers)
            pass
    for home in candidates:
        if home and os.path.isabs(home):
            homes.add(os.path.realpath(home))
    return homes
