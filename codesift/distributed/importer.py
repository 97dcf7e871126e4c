"""The other half of a cluster job: its shards into a local index, searchable without the trees.

    summary = import_shards("/shared/shards", "~/indexes/org")

Each repository of the shards folder (each committed manifest) becomes the files under NAME/ in
the index, with the chunks, text and vectors the cluster made: `codesift search`, `get`, `lookup`
and the MCP server answer from the index alone. A chunk's vectors are found by the hashes of its
texts in the vector shards its manifest lists: its parts' own, its older versions', and other
repositories' (a text shared by several repositories is in one shard, see job.py). Run again, it
imports only the repositories whose content key changed since (and drops those whose manifest is
gone). A repository is replaced in
transactions of the indexer's size and recorded as imported in the last one: an import stopped
half-way leaves what was committed, and the next import redoes the repository it was in.

The index records where its shards came from and has no root: `codesift index` refuses it, and
search does not look for its files on disk.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from codesift.distributed.layout import Layout
from codesift.distributed.shards import iter_files, read_vector_hashes, read_vectors
from codesift.errors import ClusterError, ModelMismatchError, StoreError

IMPORTED_META = "shards_repos"  # meta key: JSON {repository name: content key imported}
VECTOR_FILES_CACHED = 4  # shards other than a part's own held at once while their vectors are copied


@dataclass
class ImportSummary:
    index_dir: Path
    shards: Path
    repos: int = 0
    imported: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    files: int = 0  # written now
    chunks: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"imported {len(self.imported)} of {self.repos} repositories ({self.unchanged} unchanged, "
                f"{len(self.removed)} removed): {self.files} files, {self.chunks} chunks in {self.seconds:.1f} s")


def import_shards(shards_dir: str | Path, index_dir: str | Path, *, model: str | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  notify: Callable[[str], None] | None = None) -> ImportSummary:
    """Bring the index at `index_dir` (created if need be) up to date with the shards folder.
    `model`: where this machine has the job's model, if not where job.json says."""
    from codesift.embed.model_files import resolve_model
    from codesift.index.formats import INDEX_FORMAT
    from codesift.index.indexer import exclusive, finish_index
    from codesift.index.model_stamp import check_model, model_stamp
    from codesift.index.store import Store, now

    t0 = time.perf_counter()
    layout = Layout(Path(shards_dir).expanduser().resolve())
    job = layout.read_job()
    if job is None:
        raise ClusterError(f"{layout.root} holds no cluster-index shards (no job.json); give the --out folder "
                           "of a `codesift cluster-index` run")
    manifests = layout.manifests()
    for name, m in manifests.items():
        if m.get("index_format") != INDEX_FORMAT:
            raise ClusterError(f"the shards of {name} were made by a codesift with index format "
                               f"{m.get('index_format')}, this one reads {INDEX_FORMAT}; run cluster-index again "
                               "with this codesift (or import with that one)")
    spec = model or job["model_spec"]
    files = resolve_model(spec)
    stamp = model_stamp(files, spec)
    if stamp["model_sha256"] != job["model_sha256"]:
        raise ModelMismatchError(f"the shards were embedded with {job['model_name']} (weights sha256 "
                                 f"{job['model_sha256'][:12]}), this machine's {files.name} has other weights "
                                 f"({stamp['model_sha256'][:12]}); give --model the job's model")
    index_dir = Path(index_dir).expanduser().resolve()
    index_dir.mkdir(parents=True, exist_ok=True)
    summary = ImportSummary(index_dir, layout.root, repos=len(manifests))
    with exclusive(index_dir, notify), Store(index_dir, create=True) as store:
        store.check_integrity()
        meta = store.meta()
        paths = set(store.files())
        if meta.get("root"):
            raise StoreError(f"the index at {index_dir} is the index of {meta['root']}; import shards into "
                             "another --index-dir")
        check_model(meta if paths else {}, files, spec)
        imported: dict[str, str] = json.loads(meta.get(IMPORTED_META) or "{}")
        with store.transaction():
            from codesift.version import __version__

            store.set_meta(**stamp, state="indexing", shards=str(layout.root), codesift_version=__version__,
                           created_at=meta.get("created_at", now()))
            if not paths:
                store.set_meta(index_format=INDEX_FORMAT)
                store.defer_indexes()
                store.set_bm25_merging(False)  # as a first build does: until finish_index
            else:
                store.ensure_indexes()
        total = sum(m.get("files", 0) for m in manifests.values())
        shared = _SharedVectors(layout)
        for name in sorted(set(imported) | set(manifests)):
            manifest = manifests.get(name)
            if manifest is not None and imported.get(name) == manifest["key"]:
                summary.unchanged += 1
                continue
            _remove_repo(store, name, paths)
            imported.pop(name, None)
            if manifest is None:
                with store.transaction():
                    store.set_meta(**{IMPORTED_META: json.dumps(imported, sort_keys=True)})
                summary.removed.append(name)
                continue
            _import_repo(store, layout, manifest, int(job["dim"]), shared, summary, progress, total)
            imported[name] = manifest["key"]
            with store.transaction():
                store.set_meta(**{IMPORTED_META: json.dumps(imported, sort_keys=True)})
            summary.imported.append(name)
        finish_index(store)
    summary.seconds = time.perf_counter() - t0
    return summary


def _remove_repo(store, name: str, paths: set[str]) -> None:
    from codesift.index.document import bm25_fields

    prefix = name + "/"
    gone = sorted(p for p in paths if p.startswith(prefix))
    if gone:
        with store.transaction():
            for p in gone:
                store.delete_file(p, bm25_fields)
        paths.difference_update(gone)


def _import_repo(store, layout: Layout, manifest: dict, dim: int, shared: "_SharedVectors", summary: ImportSummary,
                 progress: Callable[[int, int], None] | None, total: int) -> None:
    from codesift.index.document import bm25_fields
    from codesift.index.pipeline import BATCH_CHUNKS

    own = {p["vectors"] for p in manifest["parts"]}
    older = shared.finder([f for f in manifest["vectors"] if f not in own])
    for part in manifest["parts"]:
        hashes, vectors = read_vectors(layout.path(part["vectors"]))
        own = dict(zip(hashes, vectors))
        batch, n = [], 0
        for record in _records(layout.path(part["chunks"]), own, older, dim):
            batch.append(record)
            n += len(record.rows)
            if n >= BATCH_CHUNKS:
                _write(store, batch, bm25_fields, summary, progress, total)
                batch, n = [], 0
        if batch:
            _write(store, batch, bm25_fields, summary, progress, total)


def _write(store, records: list, fts_fields, summary: ImportSummary, progress, total: int) -> None:
    with store.transaction():
        store.write_files(records, fts_fields)
    summary.files += len(records)
    summary.chunks += sum(len(r.rows) for r in records)
    if progress:
        progress(summary.files, total)


def _records(path: Path, own: dict[str, np.ndarray], older: "_Finder", dim: int) -> Iterator:
    """The index's FileRecords of a chunk shard's files, with their int8 vectors [chunks, 2, dim]."""
    from codesift.chunk.model import Chunk, Import
    from codesift.index.document import bm25_fields
    from codesift.index.store import FileRecord, chunk_calls, chunk_rows
    from codesift.index.vectors import quantize

    for row in iter_files(path):
        if row["skipped"] is not None:
            continue
        chunks = [Chunk(row["path"], c["language"], c["kind"], c["start_line"], c["end_line"], c["content"],
                        c["symbol"], tuple(c["heading_path"] or ()), c["context"],
                        tuple(c["part"]) if c["part"] else None, tuple(c["calls"] or ()), c["id"])
                  for c in row["chunks"]]
        embed_hashes = [c["embed_hash"] for c in row["chunks"]]
        head_hashes = [c["head_hash"] for c in row["chunks"]]
        vectors = np.zeros((len(chunks), 2, dim), dtype=np.float32)
        wanted = [h for h in embed_hashes + head_hashes if h not in own]
        found = older.get(wanted) if wanted else {}
        for i, (eh, hh) in enumerate(zip(embed_hashes, head_hashes)):
            for slot, h in enumerate((eh, hh)):
                v = own.get(h)
                if v is None:
                    v = found.get(h)
                if v is None:
                    raise ClusterError(f"{path}: no vector for a text of {row['path']}; the shards are incomplete: "
                                       "run the cluster job again")
                vectors[i, slot] = v
        imports = [Import(i["module"], i["name"], i["alias"], i["line"]) for i in row["imports"]]
        yield FileRecord(row["path"], row["sha256"], row["size"], 0, row["language"], row["n_lines"],
                         row["decode_errors"], chunk_rows(chunks, embed_hashes, head_hashes),
                         [bm25_fields(c) for c in chunks], chunk_calls(chunks), imports, quantize(vectors))


class _SharedVectors:
    """Vectors a repository takes from shards other than its parts' own (its older versions',
    other repositories'), found by text hash. Each shard's hashes are read once per import (many
    repositories may take texts from one shard); a few shards' vectors are held at a time."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.hashes: dict[str, list[str]] = {}
        self.cache: dict[str, dict[str, np.ndarray]] = {}

    def finder(self, files: list[str]) -> "_Finder":
        return _Finder(self, files)

    def hashes_of(self, f: str) -> list[str]:
        if f not in self.hashes:
            self.hashes[f] = read_vector_hashes(self.layout.path(f))
        return self.hashes[f]

    def vectors_of(self, f: str) -> dict[str, np.ndarray]:
        if f not in self.cache:
            if len(self.cache) >= VECTOR_FILES_CACHED:
                self.cache.pop(next(iter(self.cache)))
            names, vectors = read_vectors(self.layout.path(f))
            self.cache[f] = dict(zip(names, vectors))
        return self.cache[f]


class _Finder:
    """The vectors of one repository's texts in the shards its manifest lists besides its parts'
    (in the manifest's order: the first shard holding a text gives its vector)."""

    def __init__(self, shared: _SharedVectors, files: list[str]):
        self.shared, self.files = shared, files
        self.where: dict[str, str] | None = None

    def get(self, hashes: list[str]) -> dict[str, np.ndarray]:
        if self.where is None:
            self.where = {}
            for f in self.files:
                for h in self.shared.hashes_of(f):
                    self.where.setdefault(h, f)
        out = {}
        for h in hashes:
            f = self.where.get(h)
            if f is not None:
                out[h] = self.shared.vectors_of(f)[h]
        return out
