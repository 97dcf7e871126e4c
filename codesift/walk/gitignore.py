"""Gitignore patterns, matched the way git matches them while it walks a tree.

Git decides folder by folder: it tests each path *itself* against the patterns (the last
matching pattern wins) and never descends into an excluded folder, so a file below an
excluded folder cannot be re-included. The walker does the same, so what it needs is
"does this pattern match this very path?".

We translate patterns ourselves instead of using `pathspec.GitIgnoreSpec`: that class
answers "is this file ignored, directly or through a folder above it?", which cannot
decide a folder on its own (with `*`, `!*/`, `!*.py` it reports `a/` as ignored, where git
re-includes it) and lets a negated folder pattern in `.ignore` shadow every rule below it.

The translation follows git's `wildmatch.c` and `dir.c` rather than a glob dialect: it works
on bytes (so `?` matches one byte of a UTF-8 name, as in git, and undecodable names match
like any other), and odd brackets mean what they mean to git (`[z-a]` matches `z`, `[]-]`
matches `]` and `-`); a pattern git can never match (`[abc`, a trailing `\\`) matches nothing.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# POSIX classes inside brackets, as git's own ctype table defines them (ASCII only; "space"
# is tab, LF, CR and space).
_POSIX_CLASSES: dict[bytes, frozenset[int]] = {
    name.encode(): frozenset(b for b in range(256) if test(b)) for name, test in {
        "alnum": lambda b: chr(b).isascii() and chr(b).isalnum(),
        "alpha": lambda b: chr(b).isascii() and chr(b).isalpha(),
        "blank": lambda b: b in b" \t",
        "cntrl": lambda b: b < 0x20 or b == 0x7F,
        "digit": lambda b: 0x30 <= b <= 0x39,
        "graph": lambda b: 0x21 <= b <= 0x7E,
        "lower": lambda b: 0x61 <= b <= 0x7A,
        "print": lambda b: 0x20 <= b <= 0x7E,
        "punct": lambda b: 0x21 <= b <= 0x7E and not chr(b).isalnum(),
        "space": lambda b: b in b" \t\n\r",
        "upper": lambda b: 0x41 <= b <= 0x5A,
        "xdigit": lambda b: chr(b) in "0123456789abcdefABCDEF",
    }.items()
}
_SLASH = ord("/")
_WILDCARD = re.compile(rb"[*?[\\]")  # where git's literal comparison of a pattern stops
_NEVER = b"(?!)"  # a regex that matches nothing


@dataclass(frozen=True)
class Pattern:
    """One gitignore line: a bytes regex for the whole path relative to the ignore file's folder."""

    regex: bytes
    negated: bool   # "!pattern": re-includes what earlier patterns excluded
    dir_only: bool  # "pattern/": matches folders only


def path_bytes(path: str) -> bytes:
    """A path as the bytes git sees: names from the OS carry undecodable bytes as surrogates."""
    try:
        return path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file system name produced
        return path.encode("utf-8", "surrogatepass")


def parse_line(line: str | bytes) -> Pattern | None:
    """The pattern on one gitignore line, or None for blanks and comments."""
    raw = path_bytes(line) if isinstance(line, str) else line
    raw = raw.removesuffix(b"\r")      # files edited on Windows
    if not raw or raw.startswith(b"#"):
        return None
    raw = raw.partition(b"\0")[0]      # git reads each line as a C string
    raw = _strip_trailing_spaces(raw)
    negated = raw.startswith(b"!")
    if negated:
        raw = raw[1:]
    dir_only = raw.endswith(b"/")
    if dir_only:
        raw = raw[:-1]                 # one slash only: "a//" is "a/" that must be a folder
    if not raw:
        return None
    if b"/" not in raw:
        # no slash: matches the name at any depth below the ignore file
        body = _wildmatch_regex(raw)
        regex = _NEVER if body is None else b"(?:.*/)?" + body
    else:
        raw = raw[1:] if raw.startswith(b"/") else raw  # a leading slash only anchors
        # git compares the part before the first wildcard literally and hands only the rest to
        # wildmatch, where a "**" right after that part then counts as the pattern's start:
        # "a**/b" matches "a/b" and "ab/c/b", "a/b**" matches "a/bc/d".
        wildcard = _WILDCARD.search(raw)
        body = _wildmatch_regex(raw, wildcard.start() if wildcard else len(raw))
        regex = _NEVER if body is None else body
    return Pattern(regex, negated, dir_only)


class PatternList:
    """The patterns of one ignore file, compiled into one regex per kind of path.

    Alternatives are ordered last pattern first, so the first alternative that matches is
    the one git would pick; its group number says whether it excludes or re-includes.
    """

    __slots__ = ("_file_regex", "_file_negated", "_dir_regex", "_dir_negated")

    def __init__(self, patterns: Iterable[Pattern]):
        latest_first = [p for p in patterns if p.regex != _NEVER][::-1]
        self._dir_regex, self._dir_negated = _combine(latest_first)
        self._file_regex, self._file_negated = _combine([p for p in latest_first if not p.dir_only])

    @classmethod
    def from_lines(cls, lines: Iterable[str | bytes]) -> PatternList:
        return cls(p for p in map(parse_line, lines) if p is not None)

    @classmethod
    def from_file_contents(cls, data: bytes) -> PatternList:
        """The patterns of an ignore file with contents `data` (a UTF-8 BOM is skipped, as git does)."""
        return cls.from_lines(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"))

    def __bool__(self) -> bool:
        return self._dir_regex is not None

    def match(self, path: str | bytes, is_dir: bool) -> bool | None:
        """True if excluded, False if re-included by a `!` pattern, None if no pattern matches.

        `path` is relative to the ignore file's folder, with `/` separators.
        """
        regex, negated = (self._dir_regex, self._dir_negated) if is_dir else (self._file_regex, self._file_negated)
        if regex is None:
            return None
        found = regex.fullmatch(path_bytes(path) if isinstance(path, str) else path)
        if found is None:
            return None
        return not negated[found.lastindex - 1]


def _combine(patterns: list[Pattern]) -> tuple[re.Pattern[bytes] | None, list[bool]]:
    if not patterns:
        return None, []
    regex = re.compile(b"|".join(b"(" + p.regex + b")" for p in patterns), re.DOTALL)
    return regex, [p.negated for p in patterns]


def _strip_trailing_spaces(line: bytes) -> bytes:
    """Drop trailing spaces unless the last one is escaped with a backslash ("a\\ ")."""
    stripped = line.rstrip(b" ")
    if stripped == line:
        return line
    backslashes = len(stripped) - len(stripped.rstrip(b"\\"))
    return stripped + b" " if backslashes % 2 else stripped


def _wildmatch_regex(pattern: bytes, start: int = 0) -> bytes | None:
    """Regex (no capturing groups) for git's wildmatch with WM_PATHNAME, or None if git can
    never match the pattern (an unterminated bracket, an unknown class, a trailing `\\`).
    wildmatch sees the pattern from `start` on (see `parse_line`)."""
    parts: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == 0x5C:  # backslash: the next byte is literal, a slash included
            if i + 1 == n:
                return None
            parts.append(re.escape(pattern[i + 1:i + 2]))
            i += 2
        elif char == 0x3F:  # ?
            parts.append(b"[^/]")
            i += 1
        elif char == 0x5B:  # [
            bracket = _bracket(pattern, i)
            if bracket is None:
                return None
            members, i = bracket
            parts.append(_byte_class(members))
        elif char == 0x2A:  # *
            stars = i
            while i < n and pattern[i] == 0x2A:
                i += 1
            after = pattern[i:i + 1]
            # "**" is special only as a whole segment: after the start or a slash, and before
            # the end or a slash (an escaped one counts too); elsewhere it is "*".
            at_boundary = (i - stars >= 2 and (stars == start or pattern[stars - 1] == _SLASH)
                           and (after in (b"", b"/") or pattern[i:i + 2] == b"\\/"))
            if not at_boundary:
                parts.append(b"[^/]*")
            elif after == b"/":
                parts.append(b"(?:.*/)?")  # "**/": zero or more folders
                i += 1
            else:
                parts.append(b".*")        # trailing "**" (or "**\\/": one or more folders)
        else:
            parts.append(re.escape(pattern[i:i + 1]))
            i += 1
    return b"".join(parts)


def _bracket(pattern: bytes, start: int) -> tuple[frozenset[int], int] | None:
    """The bytes matched by the bracket expression at `start` and the index after it, read
    exactly as wildmatch reads it; None if git aborts on it."""
    n = len(pattern)
    i = start + 1
    negated = i < n and pattern[i] in b"!^"
    if negated:
        i += 1
    members: set[int] = set()
    previous = 0  # the last single member, which a following "-" can start a range from
    while True:  # the first member is read before looking for "]", so "[]" holds "]"
        if i >= n:
            return None
        char = pattern[i]
        if char == 0x5C:  # backslash
            i += 1
            if i >= n:
                return None
            char = pattern[i]
            members.add(char)
        elif char == 0x2D and previous and i + 1 < n and pattern[i + 1] != 0x5D:  # "a-z"
            i += 1
            high = pattern[i]
            if high == 0x5C:
                i += 1
                if i >= n:
                    return None
                high = pattern[i]
            members.update(range(previous, high + 1))  # empty when reversed: "[z-a]" is "[z]"
            char = 0
        elif char == 0x5B and pattern[i + 1:i + 2] == b":":  # "[:class:]"
            close = pattern.find(b"]", i + 2)
            if close == -1:
                return None
            if close - (i + 2) < 1 or pattern[close - 1] != 0x3A:
                members.add(char)  # no ":]" before the next "]": a literal "["
            else:
                cls = _POSIX_CLASSES.get(pattern[i + 2:close - 1])
                if cls is None:
                    return None
                members.update(cls)
                i = close
                char = 0
        else:
            members.add(char)
        previous = char
        i += 1
        if i < n and pattern[i] == 0x5D:
            break
    chosen = frozenset(range(256)) - members if negated else frozenset(members)
    return chosen - {_SLASH}, i + 1  # a bracket never matches a slash


def _byte_class(members: frozenset[int]) -> bytes:
    if not members:
        return _NEVER
    ranges: list[list[int]] = []
    for b in sorted(members):
        if ranges and ranges[-1][1] == b - 1:
            ranges[-1][1] = b
        else:
            ranges.append([b, b])
    body = b"".join(b"\\x%02x" % lo if lo == hi else b"\\x%02x-\\x%02x" % (lo, hi) for lo, hi in ranges)
    return b"[" + body + b"]"
