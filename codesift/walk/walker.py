"""Listing the files under a root that are worth indexing."""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from codesift.walk.binary import SAMPLE_BYTES, has_binary_extension, is_binary
from codesift.walk.gitignore import path_bytes
from codesift.walk.ignore import ALWAYS_SKIPPED_NAMES, DEFAULT_INDEX_DIR_NAME, VCS_DIR_NAMES, IgnoreRules
from codesift.walk.model import Skipped, SourceFile, WalkResult
from codesift.walk.read import ReadRefused, open_listed
from codesift.walk.roots import check_root
from codesift.walk.secrets import secret_by_name, secret_in


def walk(
    root: str | Path,
    *,
    max_file_bytes: int = 1_000_000,
    index_dir: Path | None = None,
    extra_excludes: Sequence[str] = (),
    force: bool = False,
    include_secrets: bool = False,
) -> WalkResult:
    """The files under `root` to index, sorted by relative path, and what was left out.

    Follows `.gitignore`, `.ignore` and `.codesiftignore` files (see `codesift.walk.ignore`),
    skips VCS, dependency and index folders, binary files, files over `max_file_bytes`, files
    whose name is not valid UTF-8, and (unless `include_secrets`) secrets such as private keys
    and `.env` files (see `codesift.walk.secrets`). Problems with single files or folders are
    reported in `skipped`, never raised.
    Raises CodesiftError if `root` is not a readable folder, and UnsafeRootError if it is `/`,
    the home folder or a system folder, unless `force` (see `codesift.walk.roots.check_root`).
    """
    real_root = str(check_root(root, force=force))
    index_real = os.path.realpath(index_dir) if index_dir is not None else None
    walker = _Walker(real_root, max_file_bytes, index_real, include_secrets)
    return walker.run(IgnoreRules.for_root(real_root, extra_excludes))


class _Walker:
    """One walk. Files are read only for their first 8 KiB (binary check).

    Symlinks are resolved after the plain tree is walked, so that a file or folder reached
    both directly and through a link is listed under its own path, once.
    """

    def __init__(self, real_root: str, max_file_bytes: int, index_real: str | None, include_secrets: bool):
        self.root = real_root
        self.max_file_bytes = max_file_bytes
        self.index_real = index_real
        self.include_secrets = include_secrets
        self.files: list[SourceFile] = []
        self.skipped: list[Skipped] = []
        self.ignored = 0
        self.seen_files: set[str] = set()    # real paths of files listed or skipped
        self.walked_dirs: set[str] = set()   # real paths of folders listed
        self.dir_links: list[tuple[str, str, IgnoreRules]] = []  # (rel, real target, rules)
        self.file_links: list[tuple[str, str, os.stat_result]] = []
        self.folders: list[tuple[str, int]] = []  # (rel, mtime_ns) of each folder listed

    def run(self, root_rules: IgnoreRules) -> WalkResult:
        self._walk_tree("", self.root, root_rules)
        while self.dir_links:  # following a link may find more links
            links, self.dir_links = sorted(self.dir_links, key=_first), []
            for rel, real, rules in links:
                self._walk_tree(rel, real, rules)
        for rel, real, st in sorted(self.file_links, key=_first):
            if real in self.seen_files:
                self.ignored += 1  # the target is listed under its own path
            else:
                self._add_file(rel, real, st, Path(real))
        self.files.sort(key=lambda f: f.rel)
        self.skipped.sort(key=lambda s: s.rel)
        self.folders.sort()
        return WalkResult(self.files, self.skipped, self.ignored, self.folders)

    def _walk_tree(self, top_rel: str, top_real: str, top_rules: IgnoreRules) -> None:
        # Each folder carries its Path: `folder / name` is cheaper than Path(full path).
        pending = [(top_rel, top_real, Path(top_real), top_rules)]
        while pending:
            rel, real, folder, rules = pending.pop()
            if real in self.walked_dirs:
                self.ignored += 1  # reached through a link before, or a loop back to an ancestor
                continue
            self.walked_dirs.add(real)
            try:
                mtime_ns = os.stat(real).st_mtime_ns  # before listing: an entry added meanwhile shows later
                with os.scandir(real) as scan:
                    entries = list(scan)
            except OSError as error:
                self._skip(rel or ".", f"unreadable directory ({type(error).__name__})")
                continue
            self.folders.append((rel, mtime_ns))
            rules = rules.for_folder(rel, real, [e.name for e in entries])
            prefix = rel + "/" if rel else ""
            for entry in entries:
                name = entry.name
                if name in ALWAYS_SKIPPED_NAMES:
                    self.ignored += 1
                    continue
                child_rel = prefix + name
                try:
                    if entry.is_symlink():
                        self._note_link(entry.path, child_rel, rules)
                    elif entry.is_dir(follow_symlinks=False):
                        if self._keeps_dir(child_rel, entry.path, rules):
                            pending.append((child_rel, entry.path, folder / name, rules))
                    elif entry.is_file(follow_symlinks=False):
                        if rules.is_ignored(child_rel, is_dir=False):
                            self.ignored += 1
                        elif not _decodable(name):
                            self._skip(child_rel, "undecodable file name")
                        else:
                            st = entry.stat(follow_symlinks=False)
                            self._add_file(child_rel, entry.path, st, folder / name)
                    else:
                        self.ignored += 1  # fifo, socket, device
                except OSError as error:  # vanished or unreadable between listing and stat
                    self._skip(child_rel, f"unreadable ({type(error).__name__})")

    def _keeps_dir(self, rel: str, real: str, rules: IgnoreRules) -> bool:
        if rules.is_ignored(rel, is_dir=True) or self._is_index(real) or _is_virtualenv(real):
            self.ignored += 1
            return False
        if not _decodable(rel.rpartition("/")[2]):
            self._skip(rel, "undecodable folder name")
            return False
        secret = None if self.include_secrets else secret_by_name(rel, is_dir=True)
        if secret is not None:
            self._skip(rel, secret)
            return False
        return True

    def _note_link(self, link: str, rel: str, rules: IgnoreRules) -> None:
        """Check a symlink now; list it later, once the plain tree is known."""
        try:
            st = os.stat(link)
        except OSError as error:
            if rules.is_ignored(rel, is_dir=False):
                self.ignored += 1
            elif isinstance(error, FileNotFoundError):
                self._skip(rel, "broken symlink")
            elif error.errno == errno.ELOOP:  # links pointing at each other
                self._skip(rel, "broken symlink (loop)")
            else:
                self._skip(rel, f"unreadable ({type(error).__name__})")
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if rules.is_ignored(rel, is_dir):
            self.ignored += 1
            return
        if not _decodable(rel.rpartition("/")[2]):
            self._skip(rel, "undecodable folder name" if is_dir else "undecodable file name")
            return
        real = os.path.realpath(link)
        if not _is_inside(real, self.root):
            self._skip(rel, "symlink outside root")
        elif self._is_private(real) or not (is_dir or stat.S_ISREG(st.st_mode)):
            self.ignored += 1  # into VCS data or the index; or to a fifo, socket, device
        elif is_dir:
            secret = None if self.include_secrets else (
                secret_by_name(rel, is_dir=True) or secret_by_name(real, is_dir=True))  # link's or target's name
            if secret is not None:
                self._skip(rel, secret)
            else:
                self.dir_links.append((rel, real, rules))
        else:
            self.file_links.append((rel, real, st))

    def _add_file(self, rel: str, real: str, st: os.stat_result, path: Path) -> None:
        """List a regular file (`real` is its real path; `rel` may be a link's) or say why not."""
        self.seen_files.add(real)
        name = rel.rpartition("/")[2]
        if not self.include_secrets:
            secret = secret_by_name(rel) or secret_by_name(real)  # a link's name or its target's
            if secret is not None:
                self._skip(rel, secret)
                return
        if has_binary_extension(name):
            self._skip(rel, "binary")
            return
        if st.st_size > self.max_file_bytes:
            self._skip(rel, f"too large ({_size_versus_limit(st.st_size, self.max_file_bytes)})")
            return
        try:
            # A file swapped for a link since it was listed is not followed.
            fd, st = open_listed(real, st.st_dev, st.st_ino)
            try:
                sample = os.read(fd, SAMPLE_BYTES)
            finally:
                os.close(fd)
        except ReadRefused as refused:
            self._skip(rel, refused.reason)
            return
        except OSError as error:
            self._skip(rel, f"unreadable ({type(error).__name__})")
            return
        if is_binary(sample):
            self._skip(rel, "binary")
            return
        secret = None if self.include_secrets else secret_in(sample, rel)
        if secret is not None:
            self._skip(rel, secret)
            return
        self.files.append(SourceFile(rel, path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino))

    def _skip(self, rel: str, reason: str) -> None:
        self.skipped.append(Skipped(_shown(rel), reason))

    def _is_index(self, real: str) -> bool:
        return self.index_real is not None and _is_inside(real, self.index_real)

    def _is_private(self, real: str) -> bool:
        """Whether a path inside the root is VCS data or an index, never to be listed."""
        parts = os.path.relpath(real, self.root).split(os.sep)
        return self._is_index(real) or not _NEVER_LISTED.isdisjoint(parts)


_NEVER_LISTED = VCS_DIR_NAMES | {DEFAULT_INDEX_DIR_NAME}


def _first(item: tuple) -> str:
    return item[0]


def _decodable(name: str) -> bool:
    """Whether a name from the file system is valid UTF-8. Undecodable bytes arrive as lone
    surrogates ("\\udcff"), which no tokenizer, SQLite TEXT column or JSON output accepts."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(rel: str) -> str:
    """`rel` for people: undecodable bytes as \\x escapes ("bad\\xff.py")."""
    if _decodable(rel):
        return rel
    return path_bytes(rel).decode("utf-8", "backslashreplace")


def _is_inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _is_virtualenv(folder: str) -> bool:
    # Every virtualenv (venv, env, .venv-3.11, ...) has pyvenv.cfg at its top.
    return os.path.isfile(os.path.join(folder, "pyvenv.cfg"))


def _size_versus_limit(size: int, limit: int) -> str:
    """'3.2 MB > 1 MB limit'; exact byte counts when both round to the same text."""
    size_text, limit_text = _human_size(size), _human_size(limit)
    if size_text == limit_text:
        size_text, limit_text = f"{size:,} bytes", f"{limit:,} bytes"
    return f"{size_text} > {limit_text} limit"


def _human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 999.95:
            break
        value /= 1000
    else:
        unit = "TB"
    if unit == "B":
        return f"{n} B"
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"
