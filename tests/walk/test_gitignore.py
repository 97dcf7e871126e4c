"""Gitignore pattern matching, one path at a time, checked against git itself."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from codesift.walk import walk
from codesift.walk.gitignore import PatternList, parse_line

from tests.walk.helpers import git_ignored, ignored_like_git


def matcher(*lines: str) -> PatternList:
    return PatternList.from_lines(lines)


@pytest.mark.parametrize(
    ("lines", "path", "is_dir", "expected"),
    [
        (["*.log"], "a/b/x.log", False, True),             # no slash: any depth
        (["/top.txt"], "top.txt", False, True),            # leading slash anchors
        (["/top.txt"], "a/top.txt", False, None),
        (["doc/*.txt"], "doc/a.txt", False, True),         # middle slash anchors too
        (["doc/*.txt"], "x/doc/a.txt", False, None),
        (["doc/*.txt"], "doc/sub/a.txt", False, None),     # * does not cross folders
        (["build/"], "build", True, True),                 # trailing slash: folders only
        (["build/"], "build", False, None),
        (["a/**/b"], "a/b", True, True),                   # ** is zero or more folders
        (["a/**/b"], "a/x/y/b", False, True),
        (["**/b"], "x/y/b", False, True),
        (["a/**"], "a/x/y", False, True),
        (["a/**"], "a", True, None),                       # the folder itself is not inside
        (["*.log", "!keep.log"], "x/keep.log", False, False),  # last match wins
        (["!keep.log", "*.log"], "x/keep.log", False, True),
        (["*", "!*/", "!*.py"], "a", True, False),         # whitelist idiom: folders re-included
        (["*", "!*/", "!*.py"], "a/x.txt", False, True),
        (["*", "!*/", "!*.py"], "a/x.py", False, False),
        (["[ab].py"], "b.py", False, True),
        (["[!ab].py"], "c.py", False, True),
        (["[!ab].py"], "a.py", False, None),
        (["[[:digit:]]*"], "7up", False, True),
        (["?.c"], "x.c", False, True),
        (["\\!important"], "!important", False, True),     # escaped ! and # are literal
        (["\\#hash"], "#hash", False, True),
        (["# comment"], "# comment", False, None),
        (["trailing   "], "trailing", False, True),        # trailing spaces dropped
        (["space\\ "], "space ", False, True),             # unless escaped
        (["crlf\r"], "crlf", False, True),
        (["[unterminated"], "[unterminated", False, None),
        (["[abc", "ok"], "ok", False, True),               # a pattern git cannot match, others kept
        (["?"], "é", False, None),                         # git matches bytes: "é" is two
        (["??"], "é", False, True),
        (["a**/*"], "aa", False, True),                    # git compares "a" literally, then "**/*"
        (["a/b**"], "a/bc/d", True, True),                 # ... is at the start and crosses "/"
        (["a/b**"], "a/bc/d", False, True),
        (["a/b*"], "a/bc/d", False, None),
    ],
)
def test_pattern_matches_like_git(lines, path, is_dir, expected):
    assert matcher(*lines).match(path, is_dir) is expected


# Odd patterns, the names each one matches among ODD_NAMES (what `git check-ignore` says, checked
# below), and why.
ODD_NAMES = ["z", "a", "m", "-", "]", "[", "!", "^", "\\", ":", "b", "x/a", "x,y"]
ODD_PATTERNS = {
    "[z-a]": {"z"},              # a reversed range is empty, but its first end is a member
    "[]-]": {"]", "-"},          # "]" first is a member; "-" before "]" is literal
    "[!]": set(),                # "!" then "]" as a member: unterminated, never matches
    "[!]]": {"z", "a", "m", "-", "[", "!", "^", "\\", ":", "b", "x/a"},  # x/a: through folder x
    "[a-]": {"a", "-", "x/a"},  # x/a: no slash in the pattern, so the name matches at any depth
    "[abc": set(),               # unterminated
    "[": set(),
    "[]": set(),
    "[a-c-z]": {"a", "b", "-", "z", "x/a"},        # after a range, "-" is literal
    "[\\]-a]": {"]", "^", "a", "x/a"},            # an escaped "]" starts a range
    "[a-\\]]": {"a", "x/a"},                   # ... or ends one (here reversed)
    "[[:alpha:]-z]": {"z", "a", "m", "b", "-", "x/a"},   # after a class, "-" is literal
    "[[:a]": {"[", ":", "a", "x/a"},    # no ":]": "[" is a literal member
    "[[:foo:]]": set(),          # unknown class: never matches
    "[^a]": {"z", "m", "-", "]", "[", "!", "^", "\\", ":", "b", "x/a"},
    "x[+-0]y": {"x,y"},          # a range over "/" never matches "/"
    "[!/]": {"z", "a", "m", "-", "]", "[", "!", "^", "\\", ":", "b", "x/a"},  # x/a: through folder x
    "a\\": set(),                # a trailing backslash never matches
}


@pytest.mark.parametrize("pattern", list(ODD_PATTERNS))
def test_odd_brackets_match_what_git_matches(pattern):
    patterns = matcher(pattern)
    ours = {name for name in ODD_NAMES if ignored_like_git(patterns, name.encode())}
    assert ours == ODD_PATTERNS[pattern]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_odd_pattern_table_is_what_git_says(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "x").mkdir()  # so that git judges "x" in "x/a" as a folder
    for pattern, expected in ODD_PATTERNS.items():
        (tmp_path / ".gitignore").write_bytes(pattern.encode() + b"\n")
        verdicts = git_ignored(tmp_path, [n.encode() for n in ODD_NAMES])
        assert {n for n, v in zip(ODD_NAMES, verdicts) if v} == expected, pattern
