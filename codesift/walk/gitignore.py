"""Gitignore patterns, matched the way git matches them while it walks a tree.

Git decides folder by folder: it tests each path *itself* against the patterns (the last
matching pattern wins) and never descends into an excluded folder, so a file below an
excluded folder cannot be re-included. The walker does the same, so what it needs is
"does this pattern match this very path?".

We translate patterns ourselves instead of using `pathspec.GitIgnoreSpec`: that class
answers "is this file ignored, directly or through a folder above it?", which cannot
decide a folder on its own (with `*`, `!*/`, `!*.py` it reports `a/` as ignored, where git
re-includes it) and lets a negated folder pattern in `.ignore` shadow every rule below it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# POSIX classes allowed inside brackets, as in git's wildmatch.
_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class Pattern:
    """One gitignore line: a regex for the whole path relative to the ignore file's folder."""

    regex: str
    negated: bool   # "!pattern": re-includes what earlier patterns excluded
    dir_only: bool  # "pattern/": matches folders only


def parse_line(line: str) -> Pattern | None:
    """The pattern on one gitignore line, or None for blanks, comments and invalid patterns."""
    line = line.removesuffix("\r")  # files edited on Windows
    if not line or line.startswith("#"):
        return None
    line = _strip_trailing_spaces(line)
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    if "/" not in line:
        line = "**/" + line  # no slash: matches at any depth below the ignore file
    elif line.startswith("/"):
        line = line[1:]  # leading slash only anchors
    regex = _path_regex(line)
    if regex is None:
        return None
    try:
        re.compile(regex)
    except re.error:  # e.g. a reversed range "[z-a]"; git drops such patterns too
        return None
    return Pattern(regex, negated, dir_only)


class PatternList:
    """The patterns of one ignore file, compiled into one regex per kind of path.

    Alternatives are ordered last pattern first, so the first alternative that matches is
    the one git would pick; its group number says whether it excludes or re-includes.
    """

    __slots__ = ("_file_regex", "_file_negated", "_dir_regex", "_dir_negated")

    def __init__(self, patterns: Iterable[Pattern]):
        latest_first = list(patterns)[::-1]
        self._dir_regex, self._dir_negated = _combine(latest_first)
        self._file_regex, self._file_negated = _combine([p for p in latest_first if not p.dir_only])

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> PatternList:
        return cls(p for p in map(parse_line, lines) if p is not None)

    def __bool__(self) -> bool:
        return self._dir_regex is not None

    def match(self, path: str, is_dir: bool) -> bool | None:
        """True if excluded, False if re-included by a `!` pattern, None if no pattern matches.

        `path` is relative to the ignore file's folder, with `/` separators.
        """
        regex, negated = (self._dir_regex, self._dir_negated) if is_dir else (self._file_regex, self._file_negated)
        if regex is None:
            return None
        found = regex.fullmatch(path)
        if found is None:
            return None
        return not negated[found.lastindex - 1]


def _combine(patterns: list[Pattern]) -> tuple[re.Pattern[str] | None, list[bool]]:
    if not patterns:
        return None, []
    regex = re.compile("|".join(f"({p.regex})" for p in patterns), re.DOTALL)
    return regex, [p.negated for p in patterns]


def _strip_trailing_spaces(line: str) -> str:
    """Drop trailing spaces unless the last one is escaped with a backslash ("a\\ ")."""
    stripped = line.rstrip(" ")
    if stripped == line:
        return line
    backslashes = len(stripped) - len(stripped.rstrip("\\"))
    return stripped + " " if backslashes % 2 else stripped


def _path_regex(pattern: str) -> str | None:
    """Regex (no capturing groups) for a slash-separated glob with git's `**` rules."""
    segments: list[str] = []
    for segment in pattern.split("/"):
        if not (segment == "**" and segments and segments[-1] == "**"):  # "**/**" is "**"
            segments.append(segment)
    if segments == ["**"]:
        return ".*"
    parts: list[str] = []
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment == "**":
            if i == 0:
                parts.append("(?:.*/)?")   # leading "**/": any number of folders
            elif i == last:
                parts.append("/.*")        # trailing "/**": everything inside
            else:
                parts.append("(?:/.*)?/")  # inner "/**/": zero or more folders
            continue
        if i > 0 and segments[i - 1] != "**":
            parts.append("/")
        regex = _segment_regex(segment)
        if regex is None:
            return None
        parts.append(regex)
    return "".join(parts)


def _segment_regex(segment: str) -> str | None:
    """Regex for one path segment: `*` and `?` never match `/`; other `**` act as `*`."""
    parts: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[":
            bracket = _bracket_regex(segment, i)
            if bracket is None:
                return None  # unterminated or unknown class: git never matches such a pattern
            regex, i = bracket
            parts.append(regex)
            continue
        elif char == "\\" and i + 1 < len(segment):
            i += 1
            parts.append(re.escape(segment[i]))
        else:
            parts.append(re.escape(char))
        i += 1
    return "".join(parts)


def _bracket_regex(segment: str, start: int) -> tuple[str, int] | None:
    """Translate the bracket expression at `start`; returns (regex, index after it)."""
    i = start + 1
    negated = i < len(segment) and segment[i] in "!^"
    if negated:
        i += 1
    members: list[str] = []
    first = True
    while i < len(segment):
        char = segment[i]
        if char == "]" and not first:
            body = "".join(members)
            return (f"[^/{body}]" if negated else f"[{body}]"), i + 1
        first = False
        if char == "[" and segment.startswith("[:", i):
            end = segment.find(":]", i + 2)
            if end == -1 or segment[i + 2:end] not in _POSIX_CLASSES:
                return None
            members.append(_POSIX_CLASSES[segment[i + 2:end]])
            i = end + 2
            continue
        escaped = char == "\\" and i + 1 < len(segment)
        if escaped:
            i += 1
            char = segment[i]
        is_range = char == "-" and not escaped and _is_range_dash(segment, i, start)
        members.append("-" if is_range else re.escape(char))
        i += 1
    return None


def _is_range_dash(segment: str, i: int, start: int) -> bool:
    """A dash between two members is a range; first or last in the brackets it is literal."""
    opening = start + 1 + (segment[start + 1:start + 2] in ("!", "^"))
    return opening < i and i + 1 < len(segment) and segment[i + 1] != "]"
