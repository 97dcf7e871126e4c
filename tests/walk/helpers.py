"""Building small trees for walk tests."""
from __future__ import annotations

import os
from pathlib import Path

from codesift.walk import WalkResult


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
