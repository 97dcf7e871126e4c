"""codesift: local-first code and document search.

Importing the package is cheap: heavy parts (torch) load only when used.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Embedder", "__version__"]


def __getattr__(name: str):
    if name == "Embedder":
        from codesift.embed.embedder import Embedder

        return Embedder
    raise AttributeError(f"module 'codesift' has no attribute {name!r}")
