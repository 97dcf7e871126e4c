"""The walk stage: which files under a root get indexed, and reading them as text.

    result = walk(root)            # WalkResult(files, skipped, ignored)
    text, replaced = read_text(result.files[0].path)

Modules: `walker` (the walk), `ignore` (ignore files and their precedence), `gitignore`
(pattern matching), `binary` (binary detection), `text` (decoding), `model` (results).
"""
from __future__ import annotations

from codesift.walk.binary import is_binary
from codesift.walk.model import Skipped, SourceFile, WalkResult
from codesift.walk.text import read_text
from codesift.walk.walker import walk

__all__ = ["SourceFile", "Skipped", "WalkResult", "walk", "read_text", "is_binary"]
