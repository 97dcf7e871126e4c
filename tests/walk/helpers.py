"""Building small trees for walk tests."""
from __future__ import annotations

import os
from pathlib import Path

from codesift.walk import WalkResult
from codesift.walk.gitignore import PatternList


def write(root: Path, rel: str, content: str | bytes = "text\n") -> Path:
    """Create the file `rel` under `root` (and its folders); returns its path."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def listed(result: WalkResult) -> list[str]:
    return [f.rel for f in result.files]


def reasons(result: WalkResult) -> dict[str, str]:
    return {s.rel: s.reason for s in result.skipped}


def spy_on_scandir(monkeypatch) -> list[str]:
    """Record every folder the walk lists."""
    seen: list[str] = []
    real_scandir = os.scandir

    def scandir(path):
        seen.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return seen


def git_env(home: str | os.PathLike) -> dict[str, str]:
    """Environment for running git without the user's or the system's configuration."""
    home = os.fspath(home)
    return dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, GIT_CONFIG_NOSYSTEM="1")


def git_ignored(repo: Path, paths: list[bytes]) -> list[bool]:
    """For each path (bytes, relative to the repository `repo`), whether `git check-ignore` says
    it is ignored, by a pattern of its own or through an ignored folder above it. Folders must
    exist to be judged as folders; files need not exist."""
    import subprocess

    # "./" keeps names starting with ":" from being read as pathspec magic.
    queries = [b"./" + p for p in paths]
    done = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", "-z", "--stdin"],
                          cwd=repo, env=git_env(repo / ".git"), input=b"".join(q + b"\0" for q in queries),
                          capture_output=True)
    assert done.returncode in (0, 1), done.stderr  # 1: nothing ignored
    fields = done.stdout.split(b"\0")
    verdicts = {}
    for i in range(0, len(fields) - 1, 4):  # source, line number, pattern, path
        source, _, pattern, path = fields[i:i + 4]
        verdicts[path] = bool(source) and not pattern.startswith(b"!")
    return [verdicts[q] for q in queries]


def ignored_like_git(patterns: PatternList, path: bytes) -> bool:
    """Whether git ignores the file `path` under `patterns` (one .gitignore at the top), as
    `git check-ignore` answers: a folder above it is excluded, or the file itself is."""
    parts = path.split(b"/")
    for depth in range(1, len(parts)):
        if patterns.match(b"/".join(parts[:depth]), True) is True:
            return True
    return patterns.match(path, False) is True
