"""A memory-mappable copy of all chunk vectors, derived from the database.

The database is the truth; this file is a cache that makes a cold search cheap (one
mmap instead of decoding every vector row). It is named by the index generation it
was built from, so a stale cache is never used: it is rebuilt from the database.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from codesift.index.store import Store


def _paths(index_dir: Path, generation: int) -> tuple[Path, Path]:
    return index_dir / f"dense-{generation}.npy", index_dir / f"dense-{generation}.rows.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}.npy")  # unique per writer
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def write_dense_cache(store: Store, dim: int) -> tuple[np.ndarray, np.ndarray]:
    generation = store.generation()
    rows, mat = store.dense_matrix(dim)
    vec_path, rows_path = _paths(store.dir, generation)
    try:
        _save_atomic(rows_path, rows)
        _save_atomic(vec_path, mat)  # written last: its presence means the pair is complete
    except OSError:
        return rows, mat  # a read-only index folder still searches, just slower
    for p in store.dir.glob("dense-*.npy"):
        if p.name not in (vec_path.name, rows_path.name):
            try:
                p.unlink()
            except OSError:
                pass
    return rows, mat


def load_dense(store: Store, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk rowids [n], vectors [n, 2, dim]: text and head) for the store's current generation:
    the cache if fresh, else rebuilt."""
    vec_path, rows_path = _paths(store.dir, store.generation())
    try:
        mat = np.load(vec_path, mmap_mode="r")
        rows = np.load(rows_path)
        if mat.shape == (len(rows), 2, dim):
            return rows, mat
    except (OSError, ValueError):
        pass
    return write_dense_cache(store, dim)
