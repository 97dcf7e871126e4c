"""The shards' columns (Parquet, through pyarrow) and the conversions to and from what the index stores.

A chunk shard has one row per file of a part: the file's own fields, its imports, and its chunks
(every field the index keeps, the text included, and the hashes of the two texts embedded for it,
see index/document.py). No modification time: a shard is a function of the files' contents. A
vector shard has one row per embedded text: its hash and its float32 vector. Hashes are the
index's own (`document.embed_hash`) of the texts `codesift index` of the repository alone embeds:
a text embedded once is found by any chunk that needs it, in this part, another part, a later
version of the repository or another repository.

Parquet rather than Lance: every shard is written once, whole, by one task, and read whole by the
import, which is what Parquet does; it is what Ray Data and pyarrow write natively, and any tool
(DuckDB, pandas, Spark) reads it. Lance's strengths (appends, versions, random access, its own
vector index) go unused when the search runs from the local index.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from codesift.errors import ClusterError

if TYPE_CHECKING:  # pyarrow is the `ray` extra's: imported where shards are read or written
    import pyarrow as pa

    from codesift.index.prepare import PreparedFile

RAY_EXTRA_HINT = "pip install 'codesift[ray]'"
COMPRESSION = "zstd"


def pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ClusterError(f"reading and writing shards needs pyarrow; {RAY_EXTRA_HINT}") from None
    return pa


def chunk_schema() -> "pa.Schema":
    pa = pyarrow()
    chunk = pa.struct([
        ("id", pa.string()), ("kind", pa.string()), ("language", pa.string()),
        ("start_line", pa.int32()), ("end_line", pa.int32()), ("symbol", pa.string()),
        ("heading_path", pa.list_(pa.string())), ("context", pa.string()),
        ("part", pa.list_(pa.int32())),  # [i, n] for a piece of a split symbol, else null
        ("calls", pa.list_(pa.string())), ("content", pa.string()),
        ("embed_hash", pa.string()), ("head_hash", pa.string()),
    ])
    imported = pa.struct([("module", pa.string()), ("name", pa.string()), ("alias", pa.string()),
                          ("line", pa.int32())])
    return pa.schema([
        ("path", pa.string()), ("sha256", pa.string()), ("size", pa.int64()),
        ("language", pa.string()), ("n_lines", pa.int32()), ("decode_errors", pa.int32()),
        ("fallback", pa.string()),  # why the chunker fell back to line windows, if it did
        ("skipped", pa.string()),  # why the file was left out when it was read (its chunks are then empty)
        ("imports", pa.list_(imported)), ("chunks", pa.list_(chunk)),
    ])


def vector_schema(dim: int) -> "pa.Schema":
    pa = pyarrow()
    return pa.schema([("hash", pa.string()), ("vector", pa.list_(pa.float32(), dim))])


def chunk_table(files: Iterable["PreparedFile"]) -> "pa.Table":
    """One row per prepared file (index/prepare.py), in the given order."""
    pa = pyarrow()
    rows = []
    for p in files:
        chunks = [{"id": c.id, "kind": c.kind, "language": c.language, "start_line": c.start_line,
                   "end_line": c.end_line, "symbol": c.symbol, "heading_path": list(c.heading_path),
                   "context": c.context, "part": list(c.part) if c.part else None, "calls": list(c.calls),
                   "content": c.content, "embed_hash": eh, "head_hash": hh}
                  for c, eh, hh in zip(p.chunks, p.embed_hashes, p.head_hashes, strict=True)]
        rows.append({"path": p.source.rel, "sha256": p.sha256, "size": p.source.size,
                     "language": p.language, "n_lines": p.n_lines, "decode_errors": p.decode_errors,
                     "fallback": p.fallback, "skipped": p.error,
                     "imports": [{"module": i.module, "name": i.name, "alias": i.alias, "line": i.line}
                                 for i in p.imports],
                     "chunks": chunks})
    return pa.Table.from_pylist(rows, schema=chunk_schema())


def vector_table(hashes: list[str], vectors: np.ndarray) -> "pa.Table":
    pa = pyarrow()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays([pa.array(hashes, type=pa.string()), column], schema=vector_schema(dim))


def list_column(arrays: list[np.ndarray], value_type) -> "pa.Array":
    """A list column from numpy arrays, one per row, without a Python object per value."""
    pa = pyarrow()
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def list_values(column, row: int) -> np.ndarray:
    """Row `row` of a list column as a numpy array."""
    return column[row].values.to_numpy(zero_copy_only=False)


def write_table(table: "pa.Table", path: Path) -> None:
    """Write a shard (the caller renames it into place: layout.write_atomic)."""
    import pyarrow.parquet as pq

    # one row group; no statistics or page index to differ between writers: the same table is
    # the same bytes
    pq.write_table(table, path, compression=COMPRESSION, row_group_size=max(1, table.num_rows),
                   write_statistics=False, store_schema=True)


def read_vectors(path: Path) -> tuple[list[str], np.ndarray]:
    """(hashes, float32 [n, dim]) of a vector shard."""
    pq = _parquet()
    table = pq.read_table(path)
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return table.column("hash").to_pylist(), values.reshape(len(column), dim)


def read_vector_hashes(path: Path) -> list[str]:
    return _parquet().read_table(path, columns=["hash"]).column("hash").to_pylist()


def read_chunk_summary(path: Path) -> tuple[int, int, set[str], list[tuple[str, str]]]:
    """(files, chunks, every text hash the chunks need, [(path, why)] of files left out) of a chunk shard."""
    table = _parquet().read_table(path, columns=["path", "skipped", "chunks"])
    chunks = table.column("chunks").combine_chunks().flatten()
    hashes = set(chunks.field("embed_hash").to_pylist()) | set(chunks.field("head_hash").to_pylist())
    left_out = [(p, why) for p, why in zip(table.column("path").to_pylist(), table.column("skipped").to_pylist())
                if why is not None]
    return table.num_rows - len(left_out), len(chunks), hashes, left_out


def iter_files(path: Path) -> Iterator[dict]:
    """The rows of a chunk shard as dicts (one per file), in order."""
    table = _parquet().read_table(path)
    for batch in table.to_batches(max_chunksize=256):
        yield from batch.to_pylist()


def _parquet():
    pyarrow()
    import pyarrow.parquet as pq

    return pq
