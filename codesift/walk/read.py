"""Reading a listed file's bytes: the very file the walk saw, never through a symlink.

Between the walk and the read a file can be swapped for a symlink (or a folder on its path
for a link to elsewhere). Opening by path would then read whatever the link points at, text
from outside the root. `read_source` opens without following a final symlink and checks with
`fstat` that it holds the same file (device and inode) the walk listed.
"""
from __future__ import annotations

import errno
import os
import stat

from codesift.walk.model import SourceFile
from codesift.walk.secrets import secret_in

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: a file swapped for a fifo must not hang the open.
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_DIR_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_DIRECTORY", 0)


class ReadRefused(OSError):
    """A file that is not read after all; `reason` is what the skipped list shows.

    An OSError, so that code which reports unreadable files reports these too."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_source(source: SourceFile, *, include_secrets: bool = False) -> bytes:
    """The contents of a file the walk listed, read only if it is still that file.

    A file replaced by another regular file at the same place (an editor saving through a
    rename) is read if no folder on its path has become a symlink. Raises ReadRefused if the
    file became a symlink, a folder or a special file, or now sits behind a symlink; or, unless
    `include_secrets`, if its contents turned out to be a secret (the walk judges only the
    first 8 KiB). Raises other OSErrors (FileNotFoundError, PermissionError) as `open` does.
    """
    fd, _ = open_listed(str(source.path), source.dev, source.ino)
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    if not include_secrets:
        reason = secret_in(data, source.rel)
        if reason is not None:
            raise ReadRefused(reason)
    return data


def open_listed(path: str, dev: int, ino: int) -> tuple[int, os.stat_result]:
    """A read-only file descriptor for the regular file at `path`, which the walk saw as the
    file (`dev`, `ino`) at that real path, and its `fstat`. Raises ReadRefused or another
    OSError. An `ino` of 0 (unknown: Windows' scandir) checks only that it is a regular file."""
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink where the file was
            raise ReadRefused("changed while indexing (now a symlink)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused("changed while indexing (no longer a regular file)")
        if ino and (st.st_dev, st.st_ino) != (dev, ino):
            # Replaced. The path was a real path (no symlinks) at walk time: accept the new
            # file only if it is reached the same way now.
            os.close(fd)
            fd = -1
            fd = _open_without_symlinks(path)
            st = os.fstat(fd)
        return fd, st
    except BaseException:
        if fd != -1:
            os.close(fd)
        raise


def _open_without_symlinks(path: str) -> int:
    """Open the regular file at the absolute `path` one component at a time, refusing any symlink."""
    if os.open not in os.supports_dir_fd:
        raise ReadRefused("changed while indexing (replaced)")
    head, *folders, name = path.split(os.sep)
    fd = os.open(head + os.sep, _DIR_FLAGS)
    try:
        for folder in folders:
            try:
                inner = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ReadRefused("changed while indexing (a folder on its path is now a symlink)") from None
                raise
            os.close(fd)
            fd = inner
        try:
            file_fd = os.open(name, _FILE_FLAGS, dir_fd=fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise ReadRefused("changed while indexing (now a symlink)") from None
            raise
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise ReadRefused("changed while indexing (no longer a regular file)")
    return file_fd
