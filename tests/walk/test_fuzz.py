"""Fuzzing the walk and the gitignore parser (hypothesis): random byte names, patterns and trees.

Properties: the parser and the walk never raise; the walk never lists a path outside the root
nor a name that is not valid UTF-8; and on a bounded sample, patterns and whole walks agree
with git (`git check-ignore`, `git ls-files --others --exclude-standard`).

CODESIFT_FUZZ_EXAMPLES=N runs N random cases per test instead of the fixed, reproducible default.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from codesift.walk import ReadRefused, read_source, walk
from codesift.walk.gitignore import PatternList, parse_line
from codesift.walk.ignore import ALWAYS_SKIPPED_NAMES, IGNORE_FILE_NAMES

from tests.walk.helpers import git_env, git_ignored, ignored_like_git

pytestmark = pytest.mark.slow

_EXPLORING = "CODESIFT_FUZZ_EXAMPLES" in os.environ


def fuzz(examples: int) -> settings:
    return settings(max_examples=int(os.environ.get("CODESIFT_FUZZ_EXAMPLES", examples)),
                    derandomize=not _EXPLORING, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

# Pieces that exercise the parser's special cases, glued together at random; plus raw bytes.
_GLOB_PIECES = [b"*", b"**", b"?", b"[", b"]", b"!", b"^", b"-", b"\\", b"/", b"a", b"b", b"z", b":",
                b"[:alpha:]", b"[:x:]", b" ", b"#", b".", b"\xc3\xa9", b"\xff", b"\r", b"\t", b"\0"]
pattern_lines = st.one_of(
    st.lists(st.sampled_from(_GLOB_PIECES), max_size=8).map(b"".join),
    st.binary(max_size=10),
).map(lambda line: line.replace(b"\n", b""))

_NAME_PIECES = [b"a", b"b", b"z", b"-", b"]", b"[", b"!", b"^", b"\\", b":", b".", b" ", b"*", b"?",
                b"#", b"\t", b"\r", b"\xc3\xa9", b"\xff", b"\x80", b"x.log", b"\xed\xa0\x80"]
_EXCLUDED_NAMES = {n.encode() for n in ALWAYS_SKIPPED_NAMES | set(IGNORE_FILE_NAMES)} | {b".", b"..", b"pyvenv.cfg"}
names = st.one_of(
    st.lists(st.sampled_from(_NAME_PIECES), min_size=1, max_size=4).map(b"".join),
    st.binary(min_size=1, max_size=6),
).map(lambda n: n.replace(b"/", b"_").replace(b"\0", b"_")).filter(lambda n: n not in _EXCLUDED_NAMES)
paths = st.lists(names, min_size=1, max_size=3).map(b"/".join)


@fuzz(1000)
@given(lines=st.lists(st.one_of(pattern_lines, st.text(max_size=10)), max_size=6),
       probes=st.lists(st.tuples(st.one_of(paths, st.text(max_size=10)), st.booleans()), max_size=6),
       contents=st.binary(max_size=60))
def test_pattern_parser_never_raises(lines, probes, contents):
    for line in lines:
        parse_line(line)
    PatternList.from_file_contents(contents)
    patterns = PatternList.from_lines(lines)
    for path, is_dir in probes:
        assert patterns.match(path, is_dir) in (True, False, None)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-repo")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=git_env(root / ".git"))
    return root


@needs_git
@fuzz(300)
@given(lines=st.lists(pattern_lines, min_size=1, max_size=5), probes=st.lists(paths, max_size=8), data=st.data())
def test_patterns_agree_with_git_check_ignore(repo, lines, probes, data):
    probes = probes + [_probe_like(line, data) for line in lines]  # names near the patterns match more often
    probes = [p for p in probes if p and b".git" not in p.split(b"/")]
    contents = b"\n".join(lines) + b"\n"
    (repo / ".gitignore").write_bytes(contents)
    patterns = PatternList.from_file_contents(contents)
    ours = [ignored_like_git(patterns, p) for p in probes]
    event("some probe ignored" if any(ours) else "no probe ignored")
    assert ours == git_ignored(repo, probes), lines


def _probe_like(line: bytes, data: st.DataObject) -> bytes:
    """A path made from a pattern line by filling in its wildcards."""
    for wildcard in (b"**", b"*", b"?"):
        line = line.replace(wildcard, data.draw(st.sampled_from([b"", b"a", b"z", b"-", b"]", b"x/a", b"\xc3\xa9"])))
    if data.draw(st.booleans()):
        line = line.replace(b"\\", b"")
    segments = [s.replace(b"\0", b"") for s in line.lstrip(b"!").split(b"/")]
    return b"/".join(s for s in segments if s and s not in (b".", b".."))


@needs_git
@fuzz(150)
@given(tree=st.lists(st.tuples(paths, st.booleans()), min_size=1, max_size=10),
       lines=st.lists(pattern_lines, max_size=4), data=st.data())
def test_walk_lists_what_git_lists(repo, tree, lines, data):
    """Real files with random byte names under random patterns: the walk keeps (lists, or
    reports as skipped) exactly the files git does not ignore."""
    lines = lines + [_pattern_like(path, data) for path, _ in tree[:3]]  # patterns that match something
    with tempfile.TemporaryDirectory(dir=repo) as folder:
        root = Path(folder)
        _make_tree(root, tree)
        (root / ".gitignore").write_bytes(b"\n".join(lines) + b"\n")
        result = walk(root)
        git_files = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=root,
                                   env=git_env(repo / ".git"), capture_output=True, check=True).stdout
        git_kept = {_shown(p) for p in git_files.split(b"\0") if p}
        ours = {f.rel for f in result.files} | {s.rel for s in result.skipped if "folder" not in s.reason}
        skipped_folders = {s.rel + "/" for s in result.skipped if "folder" in s.reason}
        # A skipped folder (undecodable or secret name) is reported once, its files are not.
        git_kept = {p for p in git_kept if not any(p.startswith(f) for f in skipped_folders)}
        event("some file ignored" if result.ignored else "no file ignored")
        assert ours == git_kept, (lines, tree)


def _pattern_like(path: bytes, data: st.DataObject) -> bytes:
    """A pattern aimed at `path` or one of its folders: anchored or not, negated or not, for
    folders only or not, with a wildcard in place of one byte."""
    segments = path.split(b"/")
    depth = data.draw(st.integers(1, len(segments)))
    target = b"/".join(segments[:depth]) if data.draw(st.booleans()) else segments[depth - 1]
    if target and data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(target) - 1))
        target = target[:at] + data.draw(st.sampled_from([b"?", b"*", b"[!x]", b"**/"])) + target[at + 1:]
    prefix = data.draw(st.sampled_from([b"", b"/", b"!", b"**/"]))
    suffix = data.draw(st.sampled_from([b"", b"/", b"/**", b"*"]))
    return prefix + target + suffix


@fuzz(200)
@given(tree=st.lists(st.tuples(paths, st.booleans()), max_size=10),
       links=st.lists(st.tuples(paths, st.sampled_from(["inside", "outside", "dangling", "loop", "dir", "up"])),
                      max_size=4),
       ignore=st.binary(max_size=40))
def test_walk_never_raises_nor_leaves_the_root(tree, links, ignore):
    with tempfile.TemporaryDirectory() as top:
        root = Path(top) / "root"
        outside = Path(top) / "outside"
        root.mkdir()
        outside.mkdir()
        (outside / "secret.py").write_text("outside = True\n")
        made = _make_tree(root, tree)
        (root / ".gitignore").write_bytes(ignore)
        for where, kind in links:
            link = os.path.join(os.fsencode(root), where)
            target = {
                "inside": os.path.join(os.fsencode(root), made[0]) if made else b"nowhere",
                "outside": os.fsencode(outside / "secret.py"),
                "dangling": b"nowhere",
                "loop": os.path.basename(link),  # itself
                "dir": b".",                      # the folder holding it
                "up": os.fsencode(outside),
            }[kind]
            try:
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(target, link)
            except OSError:  # a name clash with a file made above
                pass
        result = walk(root)
        real_root = os.path.realpath(root)
        for f in result.files:
            assert os.path.realpath(f.path).startswith(real_root + os.sep)
            assert f.rel.encode("utf-8") and not f.rel.startswith("/") and ".." not in f.rel.split("/")
            try:
                assert read_source(f) is not None
            except ReadRefused:
                pass  # a secret past the first 8 KiB; not with these contents, but allowed
        for s in result.skipped:
            s.rel.encode("utf-8")
            s.reason.encode("utf-8")
        json.dumps([[f.rel for f in result.files], [[s.rel, s.reason] for s in result.skipped]],
                   ensure_ascii=False).encode("utf-8")
        assert [f.rel for f in result.files] == sorted({f.rel for f in result.files})


def _make_tree(root: Path, tree: list[tuple[bytes, bool]]) -> list[bytes]:
    """Create files (or folders, where the flag says so) at the given byte paths, skipping
    clashes; returns the paths of the files made."""
    made = []
    for path, is_dir in tree:
        full = os.path.join(os.fsencode(root), path)
        try:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if is_dir:
                os.mkdir(full)
            else:
                with open(full, "xb") as f:
                    f.write(b"text\n")
                made.append(path)
        except OSError:  # a file where a folder should be, or the other way round
            pass
    return made


def _shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")
