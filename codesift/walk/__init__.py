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

import importlib
from typing import TYPE_CHECKING

# The names above, imported on first use: a search imports walk.ignore and walk.roles, and would
# otherwise pay for the walker, the secret rules and the readers on every cold start.
_EXPORTS = {
    "is_binary": "binary", "Skipped": "model", "SourceFile": "model", "WalkResult": "model",
    "ReadRefused": "read", "read_source": "read", "UnsafeRootError": "roots", "check_root": "roots",
    "read_text": "text", "walk": "walker",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from codesift.walk.binary import is_binary
    from codesift.walk.model import Skipped, SourceFile, WalkResult
    from codesift.walk.read import ReadRefused, read_source
    from codesift.walk.roots import UnsafeRootError, check_root
    from codesift.walk.text import read_text
    from codesift.walk.walker import walk


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
