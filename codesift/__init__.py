"""codesift: local-first code and document search.

Importing the package is cheap: heavy parts (torch) load only when used.
"""
from __future__ import annotations

from codesift.version import __version__

__all__ = ["Embedder", "__version__"]


def __getattr__(name: str):
    if name == "Embedder":
        from codesift.embed.embedder import Embedder

        return Embedder
    raise AttributeError(f"module 'codesift' has no attribute {name!r}")
