"""What runs on the Ray workers, one part (see plan.py) at a time: the three stages of the job.

    chunk_parts     CPU task: read and chunk the part's files (our chunkers, as `codesift index`
                    does), write its chunk shard, tokenize the texts it has to embed
    EmbedParts      actor, one per GPU: our Embedder's backend and runner, token-budget batches
    write_vectors   CPU task: write the part's vector shard

and, before them, `text_hashes` (CPU task): the hashes of the texts of files the plan must
compare text by text (plan.contested_files).

A file is chunked under its path in its repository and embedded as `codesift index` of that
repository alone would embed it; its chunks are then stored under NAME/ (paths and chunk ids as
`codesift index` of a folder holding every tree gives them). A part's texts are embedded together
and alone, in the same batches whatever else runs, so its vectors do not depend on how the job
was scheduled or resumed. A part embeds each text once, and leaves out what the plan gives other
parts (plan.PartWork) and what committed shards hold already (the job's lookup).

Each stage takes and returns a pyarrow table of rows (Ray Data's "pyarrow" batch format).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from codesift.distributed.layout import Layout, write_atomic
from codesift.distributed.shards import chunk_table, list_column, list_values, pyarrow, vector_table, write_table
from codesift.errors import ClusterError

_models: dict = {}
_lookups: dict = {}  # the job's lookup of committed text hashes, by object ref: fetched once per worker


def _model(spec: str):
    files = _models.get(spec)
    if files is None:
        from codesift.embed.model_files import resolve_model

        files = _models[spec] = resolve_model(spec)
    return files


def chunked_schema():
    pa = pyarrow()
    return pa.schema([("repo", pa.string()), ("key", pa.string()), ("part", pa.int64()), ("shard", pa.string()),
                      ("hashes", pa.list_(pa.string())), ("ids", pa.list_(pa.int32())),
                      ("lengths", pa.list_(pa.int32())), ("truncated", pa.int64())])


def embedded_schema():
    pa = pyarrow()
    return pa.schema([("repo", pa.string()), ("key", pa.string()), ("part", pa.int64()), ("shard", pa.string()),
                      ("hashes", pa.list_(pa.string())), ("vectors", pa.list_(pa.float32())),
                      ("tokens", pa.int64()), ("truncated", pa.int64()), ("embed_s", pa.float64())])


def written_schema():
    pa = pyarrow()
    return pa.schema([("repo", pa.string()), ("key", pa.string()), ("part", pa.int64()),
                      ("vectors", pa.int64()), ("tokens", pa.int64()), ("truncated", pa.int64()),
                      ("embed_s", pa.float64())])


def prepare_alone(rel: str, real: str, sha256: str, include_secrets: bool):
    """A file read and chunked as `codesift index` of its repository alone does (under `rel`, its path
    there): its chunks, texts and their hashes. Raises when it is not the content the survey hashed."""
    from codesift.index.prepare import prepare_file
    from codesift.walk import SourceFile

    try:
        st = os.lstat(real)  # this node's device and inode: read_source checks it reads that file
        source = SourceFile(rel, Path(real), st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
    except OSError:
        source = None
    prepared = prepare_file(source, None, None, include_secrets) if source is not None else None
    if prepared is None or prepared.sha256 != sha256:
        raise ClusterError(f"{real} changed (or went) while the job ran; run the job again")
    return prepared


def under(name: str, prepared):
    """A prepared file as the index holds it: under NAME/, its chunks' paths and ids those of
    `codesift index` of a folder holding every tree; its texts and their hashes stay those of the
    repository alone."""
    from dataclasses import replace

    from codesift.chunk.model import with_ids

    prepared.source = replace(prepared.source, rel=f"{name}/{prepared.source.rel}")
    prepared.chunks = with_ids([replace(c, path=f"{name}/{c.path}") for c in prepared.chunks])
    prepared.rows, prepared.fts, prepared.calls = [], [], []  # made from the unprefixed chunks: not for the index
    return prepared


def text_hashes(entries: list, include_secrets: bool) -> list[list[str]]:
    """The hashes of the texts each file (plan.FileEntry) is embedded as."""
    return [prepare_alone(f.rel, f.real, f.sha256, include_secrets).hashes for f in entries]


def _lookup(lookup: dict) -> frozenset:
    import ray

    ref = lookup["hashes"]
    if ref.hex() not in _lookups:
        _lookups.clear()
        _lookups[ref.hex()] = ray.get(ref)
    return _lookups[ref.hex()]


def chunk_parts(batch, *, out: str, model: str, include_secrets: bool, lookup: dict):
    """Chunk each part of `batch` and write its chunk shard (unless a stopped run already did);
    return the texts it must embed, tokenized: each text of its files once, less those of its
    borrowed files, its skip hashes, and those in the job's lookup (`lookup["hashes"]`: the object
    ref of the hashes committed shards hold)."""
    from codesift.index.prepare import tokenize_documents

    layout = Layout(Path(out))
    known = _lookup(lookup)
    columns: dict[str, list] = {name: [] for name in chunked_schema().names}
    for row in batch.to_pylist():
        name, key, part = row["repo"], row["key"], row["part"]
        prepared = [prepare_alone(f["rel"], f["real"], f["sha256"], include_secrets) for f in row["files"]]
        borrowed = set(row["borrowed"])
        seen = set(row["skip"])
        texts: list[str] = []
        hashes: list[str] = []
        for i, p in enumerate(prepared):
            if i in borrowed:
                continue
            for text, h in zip(p.texts, p.hashes):
                if h not in seen and h not in known:
                    seen.add(h)
                    texts.append(text)
                    hashes.append(h)
        shard = layout.path(layout.chunk_shard(name, key, part))
        if not shard.exists():
            table = chunk_table([under(name, p) for p in prepared])
            write_atomic(shard, lambda tmp: write_table(table, tmp))
        if texts:
            ids, lengths, truncated = tokenize_documents(_model(model), texts)
        else:
            ids, lengths, truncated = np.zeros(0, np.int32), np.zeros(0, np.int32), 0
        for column, value in (("repo", name), ("key", key), ("part", part), ("shard", row["shard"]),
                              ("hashes", hashes), ("ids", ids), ("lengths", lengths), ("truncated", truncated)):
            columns[column].append(value)
    return _table(columns, chunked_schema())


def _table(columns: dict[str, list], schema):
    """A table from per-row values; list columns of numpy arrays are built without Python objects."""
    pa = pyarrow()
    arrays = []
    for f in schema:
        values = columns[f.name]
        if pa.types.is_list(f.type) and values and isinstance(values[0], np.ndarray):
            arrays.append(list_column(values, f.type.value_type))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class EmbedParts:
    """The embedding actor: loads the model once, on the GPU Ray gave it (the CPU where there is
    none), and embeds each part's token sequences in token-budget batches."""

    def __init__(self, model: str, model_sha256: str, device: str | None, dtype: str | None,
                 token_budget: int | None, batch_size: int):
        from codesift.embed.embedder import Embedder
        from codesift.embed.scheduler import make_runner

        files = _model(model)
        if files.weights_sha256() != model_sha256:
            raise ClusterError(f"the model {model} on this worker is not the one the job started with "
                               f"(weights sha256 {model_sha256[:12]}); install the same model on every node")
        self.embedder = Embedder.load(files, device=device, dtype=dtype)
        self.runner = make_runner(self.embedder.backend, token_budget, batch_size=batch_size)
        self.dim = files.dim  # the model's width, or its Matryoshka truncation
        self.normalize = bool(getattr(self.embedder.backend, "normalize", files.normalize))

    def __call__(self, batch):
        from codesift.embed.batches import TokenBatch, pack
        from codesift.embed.pooling import truncate_and_normalize

        columns: dict[str, list] = {name: [] for name in embedded_schema().names}
        for i in range(batch.num_rows):
            t0 = time.perf_counter()
            lengths = list_values(batch.column("lengths"), i).astype(np.int32)
            ids = list_values(batch.column("ids"), i).astype(np.int32)
            vectors = np.zeros((len(lengths), self.embedder.backend.dim), dtype=np.float32)
            if len(lengths):
                sequences = TokenBatch(np.arange(len(lengths), dtype=np.int64), ids, lengths)
                for keys, vecs in self.runner.run(pack([sequences], self.runner.token_budget, self.runner.max_seqs)):
                    vectors[keys] = vecs
            vectors = truncate_and_normalize(vectors, self.dim, self.normalize)
            for column in ("repo", "key", "part", "shard", "hashes", "truncated"):
                columns[column].append(batch.column(column)[i].as_py())
            columns["vectors"].append(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
            columns["tokens"].append(int(lengths.sum()))
            columns["embed_s"].append(time.perf_counter() - t0)
        return _table(columns, embedded_schema())


def write_vectors(batch, *, out: str, dim: int):
    """Write each part's vector shard; return what was written (small rows, for the driver)."""
    layout = Layout(Path(out))
    columns: dict[str, list] = {name: [] for name in written_schema().names}
    for i in range(batch.num_rows):
        name, key, part, shard = (batch.column(c)[i].as_py() for c in ("repo", "key", "part", "shard"))
        hashes = batch.column("hashes")[i].as_py()
        vectors = list_values(batch.column("vectors"), i).astype(np.float32, copy=False).reshape(len(hashes), dim)
        table = vector_table(hashes, vectors)
        write_atomic(layout.path(shard), lambda tmp: write_table(table, tmp))
        for column, value in (("repo", name), ("key", key), ("part", part), ("vectors", len(hashes))):
            columns[column].append(value)
        for column in ("tokens", "truncated", "embed_s"):
            columns[column].append(batch.column(column)[i].as_py())
    return _table(columns, written_schema())
