"""Gitignore pattern matching, one path at a time, checked against git itself."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from codesift.walk import walk
from codesift.walk.gitignore import PatternList, parse_line


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
        (["[z-a]", "ok"], "ok", False, True),              # invalid pattern dropped, others kept
        (["[unterminated"], "[unterminated", False, None),
    ],
)
def test_pattern_matches_like_git(lines, path, is_dir, expected):
    assert matcher(*lines).match(path, is_dir) is expected


def test_blank_comment_and_bare_slash_lines_are_not_patterns():
    assert [parse_line(line) for line in ["", "#x", "/", "!", "!/"]] == [None] * 5
    assert not matcher("", "# nothing")


NAMES = ["a", "b", "foo", "x.py", "y.log", "keep.txt", "doc", "build", "a.b", "sub"]
PATTERNS = [
    "*", "!*/", "!*.py", "*.log", "!keep.txt", "foo", "foo/", "/foo", "a/foo", "a/**/b", "**/b",
    "b/**", "!b/**/", "doc/*.txt", "doc/**", "!doc/keep.txt", "build/", "!build/", "*/", "**/",
    "sub/*", "!sub/x.py", "a*", "?.py", "[ab]", "[!a]*", "[a-c].b", "a/", "!a/", "/b/", "x.py ",
    "**/foo/**", "foo/**/", "!foo/**/", "a/*/b", "*.b", "!*.b", "sub/**/x.py", "/*", "!/a", "y.*",
    "doc", "!doc", "!doc/", "a**", "[[:alpha:]].py", "*/b/", "!*/b/", "!sub/**/x.py",
]


def _random_tree(root, rng, depth=0):
    for name in rng.sample(NAMES, rng.randint(2, 6)):
        path = os.path.join(root, name)
        if depth < 3 and "." not in name and rng.random() < 0.45:
            os.mkdir(path)
            _random_tree(path, rng, depth + 1)
            if rng.random() < 0.3:
                _write_gitignore(path, rng)
        else:
            with open(path, "w") as f:
                f.write("text\n")


def _write_gitignore(folder, rng):
    with open(os.path.join(folder, ".gitignore"), "w") as f:
        f.write("\n".join(rng.sample(PATTERNS, rng.randint(1, 6))) + "\n")


def _files_git_keeps(root) -> list[str]:
    # A fresh repository tracks nothing, so "untracked and not ignored" is "not ignored".
    home = os.path.join(root, ".git", "fake-home")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, GIT_CONFIG_NOSYSTEM="1")
    out = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"],
                         cwd=root, env=env, capture_output=True, check=True).stdout
    return sorted(p for p in out.decode().split("\0") if p)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_same_files_as_git_on_random_trees(tmp_path):
    """Nested .gitignore files with random patterns: we list exactly what git would."""
    for seed in range(120):
        rng = random.Random(seed)
        root = tmp_path / str(seed)
        root.mkdir()
        _random_tree(str(root), rng)
        _write_gitignore(str(root), rng)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        ours = [f.rel for f in walk(root).files]
        assert ours == _files_git_keeps(str(root)), f"seed {seed}"
