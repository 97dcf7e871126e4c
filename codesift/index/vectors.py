"""Chunk vectors on disk: append-only int8 segment files, searched exactly.

Each chunk has two vectors (its text and its head, see index/document.py). A write
transaction appends one segment: `seg-<id>.i8.npy`, int8 [n, 2, dim], `seg-<id>.rows.npy`,
the n chunk rowids, and `seg-<id>.norms.npy`, float32 [n, 2], each int8 vector's length (a
segment written before norms were kept has none). The files are complete and synced before the
transaction that records it (the `segments` table) commits, so a reader that sees a
chunk sees its vectors, and a crash leaves at worst an unrecorded file that the next
writer deletes. Replaced or deleted chunks become tombstones until a merge rewrites the
segment without them (`merge_plan`), as Lucene does with its segments.

Each vector is quantised on its own scale (its largest component maps to 127). Scores are
cosines between the query and the int8 vector, which that scale does not change; the
query stays in float32 where numpy computes, and is quantised alike where the SIMD kernels do.
A large segment is scored by NumKong's int8 dot products divided by the stored lengths, far less
work than a cosine kernel, which computes both lengths again for every pair (usearch's exact
cosine search is the path for segments without lengths).
"""
from __future__ import annotations

import math
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from codesift.embed.models.common import product

VECTORS_DIR = "vectors"
VECTORS_PER_CHUNK = 2  # text, head
# Below this many vectors in one segment numpy scores in float32 blocks; above, int8 SIMD kernels
# (NumKong's dot products over the stored lengths, or usearch's exact cosine search where a
# segment has no lengths; no graph: the same top candidates, found faster).
NUMPY_MAX_VECTORS = 8_192
BLOCK_ROWS = 16_384  # numpy scoring converts this many int8 rows to float32 at a time
# A big run writes one segment per transaction of about this many chunks (index/pipeline.py).
SEGMENT_ROWS = 8_192
# Merge policy: after a run, segments below SMALL_SEGMENT_ROWS are merged once more than
# MAX_SMALL_SEGMENTS of them have about the same size, and any segment whose tombstones exceed
# MAX_DEAD_FRACTION of its rows is rewritten. Both keep the work of a merge in proportion to what changed.
# A segment of a whole transaction is not small: merging a first build's segments for their size
# would write every vector twice and every chunk's row again (its segment and row change), for a
# search that opens fewer files.
SMALL_SEGMENT_ROWS = SEGMENT_ROWS
MAX_SMALL_SEGMENTS = 8
MERGED_ROWS = 131_072  # the most live rows one merge writes (memory: rows x 2 x dim bytes)
TIER_FACTOR = 8  # small segments are merged with others of about their size: within this factor
MAX_DEAD_FRACTION = 0.25


def quantize(vectors: np.ndarray) -> np.ndarray:
    """float vectors [..., dim] -> int8 on a per-vector scale (the largest component -> 127)."""
    v = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(v).max(axis=-1, keepdims=True)
    scale = np.where(peak > 0, 127.0 / np.maximum(peak, 1e-30), 0.0).astype(np.float32)
    return np.clip(np.rint(v * scale), -127, 127).astype(np.int8)


def dequantize(q: np.ndarray) -> np.ndarray:
    """int8 vectors -> unit float32 vectors pointing the same way."""
    v = np.asarray(q, dtype=np.float32)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-30)


def segment_paths(index_dir: Path, seg_id: int) -> tuple[Path, Path, Path]:
    """(vectors, rowids, norms) files of a segment."""
    folder = Path(index_dir) / VECTORS_DIR
    stem = f"seg-{seg_id:08d}"
    return folder / f"{stem}.i8.npy", folder / f"{stem}.rows.npy", folder / f"{stem}.norms.npy"


def _save_synced(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_segment(index_dir: Path, seg_id: int, rowids: np.ndarray, vectors: np.ndarray) -> int:
    """Write (and sync) one segment; returns the bytes written. vectors: int8 [n, 2, dim]."""
    paths = segment_paths(index_dir, seg_id)
    vec_path, rows_path, norms_path = paths
    vec_path.parent.mkdir(parents=True, exist_ok=True)
    assert vectors.dtype == np.int8 and vectors.ndim == 3 and len(vectors) == len(rowids)
    vectors = np.ascontiguousarray(vectors)
    _save_synced(rows_path, np.asarray(rowids, dtype=np.int64))
    _save_synced(norms_path, vector_norms(vectors.reshape(-1, vectors.shape[-1])).reshape(vectors.shape[:2]))
    _save_synced(vec_path, vectors)
    return sum(p.stat().st_size for p in paths)


def write_merged_segment(index_dir: Path, seg_id: int, parts: Sequence["Segment"]) -> tuple[np.ndarray, int]:
    """Write (and sync) one segment from the live rows of `parts`, in order; returns (its rowids,
    the bytes written). The vectors are copied BLOCK_ROWS rows at a time, read from the files
    rather than mapped, so the memory a merge takes does not grow with the rows it rewrites."""
    vec_path, rows_path, norms_path = segment_paths(index_dir, seg_id)
    rowids = np.concatenate([s.rowids if s.live is None else s.rowids[s.live] for s in parts]) \
        if parts else np.zeros(0, np.int64)
    dim = parts[0].vectors.shape[-1] if parts else 0
    norms = np.empty((len(rowids), VECTORS_PER_CHUNK), dtype=np.float32)
    tmp = vec_path.with_name(vec_path.name + f".tmp{os.getpid()}")
    done = 0
    with open(tmp, "wb") as out:
        np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int8)),
                                                   "fortran_order": False,
                                                   "shape": (len(rowids), VECTORS_PER_CHUNK, dim)})
        for seg in parts:
            src_path = segment_paths(index_dir, seg.id)[0]
            for start, block in _read_blocks(src_path, len(seg), VECTORS_PER_CHUNK * dim):
                block = block.reshape(-1, VECTORS_PER_CHUNK, dim)
                if seg.live is not None:
                    block = block[seg.live[start:start + len(block)]]
                out.write(block.tobytes())
                norms[done:done + len(block)] = vector_norms(block.reshape(-1, dim)).reshape(-1, VECTORS_PER_CHUNK)
                done += len(block)
        out.flush()
        os.fsync(out.fileno())
    assert done == len(rowids)
    _save_synced(rows_path, np.asarray(rowids, dtype=np.int64))
    _save_synced(norms_path, norms)
    os.replace(tmp, vec_path)
    return rowids, sum(p.stat().st_size for p in (vec_path, rows_path, norms_path))


def _read_blocks(path: Path, rows: int, row_bytes: int):
    """(first row, int8 [rows, row_bytes]) blocks of an .npy file of `rows` rows, BLOCK_ROWS at a time."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        for start in range(0, rows, BLOCK_ROWS):
            n = min(BLOCK_ROWS, rows - start)
            block = np.fromfile(f, dtype=np.int8, count=n * row_bytes)
            if len(block) != n * row_bytes:
                raise ValueError(f"{path} is damaged: it ends before its {rows} rows")
            yield start, block.reshape(n, row_bytes)


# The header np.save writes for a C-ordered array: (dtype, shape).
_NPY_HEADER = re.compile(rb"\{'descr': '([<>|=]?[a-z]\d+)', 'fortran_order': False, 'shape': \(([\d, ]*)\), \} *\n")


def read_npy(path: Path, mapped: bool = False) -> np.ndarray:
    """The array np.save wrote to `path` (memory-mapped read-only with `mapped`), as np.load reads
    it. The header that np.save writes is read here with one regular expression: np.load parses
    it as Python (ast), which costs a cold search more than reading a segment's row ids. Any
    other header is left to np.load."""
    with open(path, "rb") as f:
        head = f.read(256)
        if head[:8] in (b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00"):
            size_bytes = 2 if head[6] == 1 else 4
            start = 8 + size_bytes
            end = start + int.from_bytes(head[8:start], "little")
            found = _NPY_HEADER.fullmatch(head[start:end]) if end <= len(head) else None
            if found:
                dtype = np.dtype(found.group(1).decode("ascii"))
                shape = tuple(int(d) for d in found.group(2).split(b",") if d.strip())
                count = math.prod(shape)
                if count and mapped:
                    return np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), dtype=dtype,
                                         count=count, offset=end).reshape(shape)
                if count and not mapped:
                    f.seek(end)
                    data = np.fromfile(f, dtype=dtype, count=count)
                    if len(data) == count:
                        return data.reshape(shape)
    return np.load(path, mmap_mode="r" if mapped else None)


def vector_norms(vectors: np.ndarray) -> np.ndarray:
    """The length of each int8 vector [m, dim], float32 [m] (exact: the squares sum in integers)."""
    nk = _numkong()
    if nk is not None and len(vectors):
        return np.asarray(nk.norm(np.ascontiguousarray(vectors), axis=1), dtype=np.float32).reshape(len(vectors))
    out = np.empty(len(vectors), dtype=np.float32)
    for s in range(0, len(vectors), BLOCK_ROWS):
        out[s:s + BLOCK_ROWS] = np.linalg.norm(np.asarray(vectors[s:s + BLOCK_ROWS], dtype=np.float32), axis=1)
    return out


def write_missing_norms(index_dir: Path, seg_ids: Iterable[int]) -> int:
    """Write the lengths of segments written before lengths were kept (read once, then scored by
    the faster kernel); returns the bytes written. The segment's other files never change."""
    written = 0
    for seg_id in seg_ids:
        vec_path, _, norms_path = segment_paths(index_dir, seg_id)
        if norms_path.exists() or not vec_path.exists():
            continue
        vectors = np.load(vec_path, mmap_mode="r")
        _save_synced(norms_path, vector_norms(vectors.reshape(-1, vectors.shape[-1])).reshape(vectors.shape[:2]))
        written += norms_path.stat().st_size
    return written


def remove_segment_files(index_dir: Path, keep: Iterable[int]) -> int:
    """Delete segment files not in `keep` (merged away, or left by a crashed writer); returns bytes freed."""
    keep_names = set()
    for seg_id in keep:
        keep_names.update(p.name for p in segment_paths(index_dir, seg_id))
    folder = Path(index_dir) / VECTORS_DIR
    freed = 0
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name not in keep_names:
                try:
                    freed += p.stat().st_size
                    p.unlink()
                except OSError:
                    pass
    return freed


@dataclass
class Segment:
    id: int
    rowids: np.ndarray  # int64 [n]
    vectors: np.ndarray  # int8 [n, 2, dim], memory-mapped
    live: np.ndarray | None  # bool [n]; None when every row is live
    norms: np.ndarray | None = None  # float32 [n, 2], each vector's length; None in a segment written without

    @classmethod
    def open(cls, index_dir: Path, seg_id: int, dead_rows: Sequence[int] = ()) -> "Segment":
        vec_path, rows_path, norms_path = segment_paths(index_dir, seg_id)
        rowids = read_npy(rows_path)
        vectors = read_npy(vec_path, mapped=True)
        if vectors.ndim != 3 or len(vectors) != len(rowids):
            raise ValueError(f"segment {seg_id} is damaged: {vectors.shape} vectors for {len(rowids)} rows")
        try:
            norms = read_npy(norms_path)
        except FileNotFoundError:  # written before lengths were kept: scored by a cosine kernel
            norms = None
        if norms is not None and norms.shape != vectors.shape[:2]:
            raise ValueError(f"segment {seg_id} is damaged: {norms.shape} lengths for {vectors.shape[:2]} vectors")
        return cls(seg_id, rowids, vectors, None, norms).with_dead(dead_rows)

    def __len__(self) -> int:
        return len(self.rowids)

    def with_dead(self, dead_rows: Sequence[int]) -> "Segment":
        """The same files with these rows tombstoned."""
        live = None
        if len(dead_rows):
            live = np.ones(len(self.rowids), dtype=bool)
            live[np.asarray(dead_rows, dtype=np.int64)] = False
        return Segment(self.id, self.rowids, self.vectors, live, self.norms)


def _cosines_numpy(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine of `query` (unit float32 [dim]) with each int8 vector [m, dim]."""
    out = np.empty(len(vectors), dtype=np.float32)
    for s in range(0, len(vectors), BLOCK_ROWS):
        block = np.asarray(vectors[s:s + BLOCK_ROWS], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1)
        out[s:s + BLOCK_ROWS] = product(block, query) / np.maximum(norms, 1e-30)  # a BLAS call: takes its turn
    return out


def _usearch_available() -> bool:
    try:
        import usearch.compiled  # noqa: F401
    except ImportError:  # a dependency, but a broken or missing install should cost speed, not answers
        return False
    return True


_NUMKONG: list = []  # [the numkong module, or None], once imported


def _numkong():
    """NumKong (usearch's SIMD kernels, a dependency of ours too), or None where it is missing or broken."""
    if not _NUMKONG:
        try:
            import numkong
        except ImportError:
            numkong = None
        _NUMKONG.append(numkong)
    return _NUMKONG[0]


def _top_dot(vectors: np.ndarray, norms: np.ndarray, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, cosines) of the n nearest int8 vectors [m, dim] whose lengths are `norms` [m]:
    the quantised query's int8 dot products (NumKong), divided by both lengths: the cosines of
    usearch's exact cosine search, without computing every length again."""
    q = quantize(query[None, :])
    dots = np.asarray(_numkong().cdist(q, np.ascontiguousarray(vectors), metric="dot", out_dtype="float32"),
                      dtype=np.float32).reshape(-1)
    dots /= np.maximum(norms, np.float32(1e-30))
    dots /= np.float32(max(float(np.linalg.norm(q.astype(np.float32))), 1e-30))
    pos = np.argpartition(-dots, n - 1)[:n] if n < len(dots) else np.arange(len(dots))
    return pos, dots[pos]


def _top_usearch(vectors: np.ndarray, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, cosines) of the n nearest int8 vectors [m, dim], by usearch's exact search: the
    path for segments written without their vectors' lengths.

    Its compiled module is called as `usearch.index.search(..., exact=True)` calls it: the Python
    module `usearch.index` imports tqdm and urllib first."""
    from usearch.compiled import MetricKind, MetricSignature, ScalarKind, exact_search

    q = quantize(query[None, :])
    keys, dist = exact_search(np.ascontiguousarray(vectors), q, metric_kind=MetricKind.Cos,
                              metric_signature=MetricSignature.ArrayArraySize, metric_pointer=0, count=n,
                              threads=1, dtype=ScalarKind.Unknown)[:2]
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    dist = np.asarray(dist, dtype=np.float32).reshape(-1)
    ok = keys >= 0
    return keys[ok], 1.0 - dist[ok]


def top_chunks(segments: Sequence[Segment], query: np.ndarray, n: int, use_head: bool = True,
               allowed: set[int] | None = None) -> dict[int, float]:
    """chunk rowid -> score for the n best chunks: a chunk scores the better of its text and head
    cosines (only its text with use_head=False). Tombstoned rows and rowids outside `allowed` are skipped."""
    query = np.asarray(query, dtype=np.float32)
    query = query / max(float(np.linalg.norm(query)), 1e-30)
    per = VECTORS_PER_CHUNK if use_head else 1
    best: dict[int, float] = {}
    allowed_arr = np.fromiter(allowed, dtype=np.int64, count=len(allowed)) if allowed is not None else None
    for seg in segments:
        keep = seg.live
        if allowed_arr is not None:
            inside = np.isin(seg.rowids, allowed_arr)
            keep = inside if keep is None else keep & inside
        rows = np.arange(len(seg)) if keep is None else np.flatnonzero(keep)
        if len(rows) == 0:
            continue
        whole = keep is None
        flat = seg.vectors[:, :per].reshape(len(seg) * per, -1) if whole and use_head \
            else None
        if flat is None:  # a subset (or text vectors only): gather it, then score
            sub = np.asarray(seg.vectors[rows, :per])
            flat = sub.reshape(len(rows) * per, -1)
        m = len(flat)
        want = min(m, n * per)
        if m > NUMPY_MAX_VECTORS and seg.norms is not None and _numkong() is not None:
            norms = seg.norms[:, :per] if whole else seg.norms[rows, :per]
            pos, scores = _top_dot(flat, norms.reshape(-1), query, want)
        elif m <= NUMPY_MAX_VECTORS or not _usearch_available():
            sims = _cosines_numpy(flat, query)
            pos = np.argpartition(-sims, want - 1)[:want] if want < m else np.arange(m)
            scores = sims[pos]
        else:
            pos, scores = _top_usearch(flat, query, want)
        chunk_pos = pos // per
        chunk_rows = seg.rowids[chunk_pos] if whole else seg.rowids[rows[chunk_pos]]
        for r, s in zip(chunk_rows.tolist(), scores.tolist()):
            if s > best.get(r, -np.inf):
                best[r] = s
    if len(best) > n:
        keep_rows = sorted(best, key=best.__getitem__, reverse=True)[:n]
        best = {r: best[r] for r in keep_rows}
    return best


@dataclass(frozen=True)
class SegmentInfo:
    id: int
    rows: int
    dead: int


def size_tier(live_rows: int) -> int:
    """Segments of about the same size share a tier (a factor of TIER_FACTOR apart at most)."""
    return int(math.log(max(live_rows, 1), TIER_FACTOR))


def merge_plan(segments: Sequence[SegmentInfo]) -> list[list[int]]:
    """Groups of segments to rewrite, each group into one new segment: every segment mostly dead,
    and the small segments of a size tier once that tier holds too many. Merging only segments of
    a like size (as Lucene's tiered merges do) keeps an edit's tiny segments from pulling a first
    build's segments into a rewrite; a group holds at most about MERGED_ROWS live rows, so a
    merge's memory and any segment's size stay bounded. Empty when nothing needs merging."""
    chosen = [s for s in segments if s.rows and s.dead / s.rows > MAX_DEAD_FRACTION]
    tiers: dict[int, list[SegmentInfo]] = {}
    for s in segments:
        if s.rows < SMALL_SEGMENT_ROWS and s not in chosen:
            tiers.setdefault(size_tier(s.rows - s.dead), []).append(s)
    for tier in tiers.values():
        if len(tier) > MAX_SMALL_SEGMENTS:
            chosen += tier
    groups: list[list[SegmentInfo]] = []
    rows = 0
    for s in sorted(chosen, key=lambda s: s.id):
        live = s.rows - s.dead
        if not groups or rows + live > MERGED_ROWS:
            groups.append([])
            rows = 0
        groups[-1].append(s)
        rows += live
    # a group of one sound segment would be rewritten as it is
    return [[s.id for s in g] for g in groups if len(g) > 1 or g[0].dead]
