"""Errors that users see. Each says what went wrong and, where it can, how to fix it."""
from __future__ import annotations


class CodesiftError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class ModelNotFoundError(CodesiftError):
    """No model folder could be found for a model name or path."""


class ModelLoadError(CodesiftError):
    """A model folder was found but its files are missing, truncated or inconsistent."""


class UnsupportedModelError(CodesiftError):
    """The model's architecture (or one of its settings) is not implemented."""


class UnsupportedDeviceError(CodesiftError):
    """The device or dtype asked for is not available here."""


class StoreError(CodesiftError):
    """The on-disk index is missing, from another version, or cannot be opened."""


class ModelMismatchError(StoreError):
    """The index was built with another model (or weights) than the one asked for."""


class PathOutsideRootError(CodesiftError):
    """A path (or id) from a client would lead outside the indexed root: `..`, absolute, NUL, or an escaping symlink."""


class Cancelled(CodesiftError):
    """A long operation (e.g. `Embedder.embed`) was cancelled through its cancel token."""


class ClusterError(CodesiftError):
    """A cluster job (codesift.distributed) cannot run or its shards cannot be used: Ray or pyarrow
    missing, an input tree unusable, a shards folder from another model or left incomplete."""
