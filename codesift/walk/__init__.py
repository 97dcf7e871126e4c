"""The walk stage: which files under a root get indexed, and reading them safely.

    check_root(root, force=False)           # refuses /, the home folder, system folders
    result = walk(root)                     # WalkResult(files, skipped, ignored)
    data = read_source(result.files[0])     # bytes of the very file the walk listed

Modules: `walker` (the walk), `roots` (which roots may be indexed), `ignore` (ignore files and
their precedence), `gitignore` (pattern matching), `secrets` (keys and credentials, skipped by
default), `binary` (binary detection), `read` (reading a listed file), `text` (decoding),
`model` (results).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from codesift.lazy import lazy_names

if TYPE_CHECKING:
    from codesift.walk.binary import is_binary
    from codesift.walk.model import Skipped, SourceFile, WalkResult
    from codesift.walk.read import ReadRefused, read_source
    from codesift.walk.roots import UnsafeRootError, check_root
    from codesift.walk.text import read_text
    from codesift.walk.walker import walk

__all__ = [
    "SourceFile", "Skipped", "WalkResult", "walk", "check_root", "UnsafeRootError", "read_source",
    "ReadRefused", "read_text", "is_binary",
]

# The names above, imported from their modules on first use: a search imports `codesift.walk.roles`
# and `codesift.walk.ignore` (through the store), which run this file first, and walks nothing.
_HOMES = {"is_binary": "codesift.walk.binary", "Skipped": "codesift.walk.model", "SourceFile": "codesift.walk.model",
          "WalkResult": "codesift.walk.model", "ReadRefused": "codesift.walk.read", "read_source": "codesift.walk.read",
          "UnsafeRootError": "codesift.walk.roots", "check_root": "codesift.walk.roots",
          "read_text": "codesift.walk.text", "walk": "codesift.walk.walker"}

__getattr__ = lazy_names(globals(), _HOMES)
