"""The on-disk index: one SQLite database (WAL) holding files, chunks, vectors and a BM25 table.

SQLite gives us what an index must never lose: each batch of files is replaced in one
transaction, so a crash leaves the last committed state, and readers (searches) keep a
consistent snapshot while an indexer writes. Schema changes are numbered migrations.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from codesift.errors import StoreError

DB_NAME = "index.db"
DEFAULT_DIR_NAME = ".codesift"

# Numbered migrations: index i brings the schema from version i to i + 1. Never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        language TEXT NOT NULL,
        n_lines INTEGER NOT NULL,
        decode_errors INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE chunks (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        kind TEXT NOT NULL,
        language TEXT NOT NULL,
        start_line INTEGER NOT NULL,
        end_line INTEGER NOT NULL,
        symbol TEXT,
        heading_path TEXT,
        context TEXT NOT NULL DEFAULT '',
        part TEXT,
        token_estimate INTEGER NOT NULL,
        content TEXT NOT NULL,
        embed_hash TEXT NOT NULL
    );
    CREATE INDEX chunks_file ON chunks(file_id, ord);
    CREATE INDEX chunks_symbol ON chunks(symbol);
    CREATE INDEX chunks_embed ON chunks(embed_hash);
    CREATE TABLE vectors (embed_hash TEXT PRIMARY KEY, vec BLOB NOT NULL);
    CREATE TABLE calls (chunk_rowid INTEGER NOT NULL REFERENCES chunks(rowid) ON DELETE CASCADE,
                        name TEXT NOT NULL);
    CREATE INDEX calls_name ON calls(name);
    CREATE INDEX calls_chunk ON calls(chunk_rowid);
    CREATE TABLE imports (file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
                          module TEXT NOT NULL, name TEXT, alias TEXT, line INTEGER NOT NULL);
    CREATE INDEX imports_file ON imports(file_id);
    CREATE INDEX imports_name ON imports(name);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        name, path, body, tokenize = "unicode61 remove_diacritics 0 tokenchars '_'"
    );
    """,
    # 2: a second vector per chunk, for its head (path, name, signature): see index/document.py
    """
    ALTER TABLE chunks ADD COLUMN head_hash TEXT;
    CREATE INDEX chunks_head ON chunks(head_hash);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class FileRow:
    id: int
    path: str
    sha256: str
    size: int
    mtime_ns: int
    language: str
    n_lines: int


@dataclass(frozen=True)
class ChunkRow:
    rowid: int
    id: str
    path: str
    language: str
    kind: str
    start_line: int
    end_line: int
    symbol: str | None
    heading_path: tuple[str, ...]
    context: str
    part: str | None
    token_estimate: int
    content: str

    @property
    def ref(self) -> str:
        return self.id[:12]


CHUNK_COLUMNS = ("c.rowid, c.id, f.path, c.language, c.kind, c.start_line, c.end_line, c.symbol, "
                 "c.heading_path, c.context, c.part, c.token_estimate, c.content")


def _chunk_row(r: tuple) -> ChunkRow:
    hp = tuple(json.loads(r[8])) if r[8] else ()
    return ChunkRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], hp, r[9], r[10], r[11], r[12])


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (complete_statement knows about quotes and triggers)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def find_index_dir(start: Path) -> Path | None:
    """The nearest `.codesift` folder holding an index, from `start` upwards (as git finds .git)."""
    start = start.resolve()
    for d in (start, *start.parents):
        if (d / DEFAULT_DIR_NAME / DB_NAME).is_file():
            return d / DEFAULT_DIR_NAME
    return None


def locate_index(index_dir: Path | None) -> Path:
    """The index folder given, else the nearest one from the current directory up."""
    found = index_dir or find_index_dir(Path.cwd())
    if found is None:
        raise StoreError("no index found here or in any parent folder; create one with `codesift index .`")
    return found


def _set_wal(db: sqlite3.Connection, patience_s: float = 10.0) -> None:
    """Switch to WAL. When several processes open a new database at once, SQLite can answer
    "database is locked" here at once instead of waiting (no busy handler for this case): retry."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Store:
    """A connection to one index database. Not shared between threads."""

    def __init__(self, index_dir: Path, create: bool = False, readonly: bool = False):
        self.dir = Path(index_dir)
        self.path = self.dir / DB_NAME
        if not self.path.exists():
            if not create:
                raise StoreError(f"no index at {self.dir}; create one with `codesift index <root>`")
            self.dir.mkdir(parents=True, exist_ok=True)
            # keep the index out of git status without touching the user's .gitignore
            (self.dir / ".gitignore").write_text("*\n")
        try:
            # autocommit mode: transactions are explicit (`transaction()`), never implicit
            if readonly:
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                _set_wal(self.db)
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.execute("PRAGMA cache_size = -65536")  # 64 MiB: FTS segment merges stay in memory
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable codesift index ({e}); "
                             "rebuild it with `codesift index --rebuild`") from e
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer codesift (schema {version}, this one "
                             f"reads up to {SCHEMA_VERSION}); upgrade codesift or rebuild with --rebuild")
        if version < SCHEMA_VERSION:
            if readonly:
                raise StoreError(f"{self.path} has an older schema ({version}); run `codesift index` to upgrade it")
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        # the version is read again under the write lock: another process may have migrated meanwhile
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for i in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[i]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {i + 1}")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a crash or an exception inside leaves the last committed state."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- meta -------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, **values) -> None:
        self.db.executemany("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            [(k, str(v)) for k, v in values.items()])

    def generation(self) -> int:
        return int(self.get_meta("generation", "0"))

    # --- files ------------------------------------------------------------------------
    def files(self) -> dict[str, FileRow]:
        return {r[1]: FileRow(*r) for r in self.db.execute(
            "SELECT id, path, sha256, size, mtime_ns, language, n_lines FROM files")}

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

    def delete_file(self, path: str) -> None:
        row = self.db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row:
            self.db.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE file_id = ?)", row)
            self.db.execute("DELETE FROM files WHERE id = ?", row)  # chunks, calls, imports cascade

    def replace_file(self, path: str, sha256: str, size: int, mtime_ns: int, language: str, n_lines: int,
                     decode_errors: int, chunks: list, fts_rows: list[tuple[str, str, str]],
                     embed_hashes: list[str], head_hashes: list[str], imports: Iterable = ()) -> None:
        """Swap in a file's new chunks (call inside a transaction)."""
        self.delete_file(path)
        cur = self.db.execute(
            "INSERT INTO files(path, sha256, size, mtime_ns, language, n_lines, decode_errors) VALUES(?,?,?,?,?,?,?)",
            (path, sha256, size, mtime_ns, language, n_lines, decode_errors))
        file_id = cur.lastrowid
        self.db.executemany(
            "INSERT INTO chunks(id, file_id, ord, kind, language, start_line, end_line, symbol, heading_path,"
            " context, part, token_estimate, content, embed_hash, head_hash) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(c.id, file_id, i, c.kind, c.language, c.start_line, c.end_line, c.symbol,
              json.dumps(list(c.heading_path), ensure_ascii=False) if c.heading_path else None,
              c.context, f"{c.part[0]}/{c.part[1]}" if c.part else None, c.token_estimate, c.content, eh, hh)
             for i, (c, eh, hh) in enumerate(zip(chunks, embed_hashes, head_hashes, strict=True))])
        rowids = [r[0] for r in self.db.execute("SELECT rowid FROM chunks WHERE file_id = ? ORDER BY ord", (file_id,))]
        self.db.executemany("INSERT INTO chunks_fts(rowid, name, path, body) VALUES(?,?,?,?)",
                            [(rowid, *fts) for rowid, fts in zip(rowids, fts_rows)])
        self.db.executemany("INSERT INTO calls(chunk_rowid, name) VALUES(?, ?)",
                            [(rowid, n) for rowid, c in zip(rowids, chunks) for n in c.calls])
        self.db.executemany("INSERT INTO imports(file_id, module, name, alias, line) VALUES(?,?,?,?,?)",
                            [(file_id, i.module, i.name, i.alias, i.line) for i in imports])

    # --- vectors ----------------------------------------------------------------------
    def known_vectors(self, hashes: Iterable[str]) -> set[str]:
        hashes = list(dict.fromkeys(hashes))
        found: set[str] = set()
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            q = f"SELECT embed_hash FROM vectors WHERE embed_hash IN ({','.join('?' * len(part))})"
            found.update(r[0] for r in self.db.execute(q, part))
        return found

    def put_vectors(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO vectors(embed_hash, vec) VALUES(?, ?)",
                            ((h, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in items))

    def prune_vectors(self) -> int:
        cur = self.db.execute("DELETE FROM vectors WHERE embed_hash NOT IN (SELECT embed_hash FROM chunks) "
                              "AND embed_hash NOT IN (SELECT head_hash FROM chunks WHERE head_hash IS NOT NULL)")
        return cur.rowcount

    def dense_matrix(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk rowids [n], vectors [n, 2, dim]) for every chunk, in rowid order: each chunk's
        text vector, then its head vector (the text vector again where the head has none: a chunk
        written before heads were embedded)."""
        rows, blobs = [], []
        for rowid, text_vec, head_vec in self.db.execute(
                "SELECT c.rowid, v.vec, h.vec FROM chunks c JOIN vectors v ON v.embed_hash = c.embed_hash "
                "LEFT JOIN vectors h ON h.embed_hash = c.head_hash ORDER BY c.rowid"):
            rows.append(rowid)
            blobs += (text_vec, head_vec or text_vec)
        mat = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(rows), 2, dim) if blobs \
            else np.zeros((0, 2, dim), np.float32)
        return np.asarray(rows, dtype=np.int64), mat

    # --- chunks -----------------------------------------------------------------------
    def chunks_by_rowid(self, rowids: Iterable[int]) -> dict[int, ChunkRow]:
        rowids = list(rowids)
        out: dict[int, ChunkRow] = {}
        for i in range(0, len(rowids), 500):
            part = rowids[i:i + 500]
            q = (f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
                 f"WHERE c.rowid IN ({','.join('?' * len(part))})")
            out.update((r[0], _chunk_row(r)) for r in self.db.execute(q, part))
        return out

    def chunk_by_id(self, chunk_id: str) -> ChunkRow | None:
        """By full id or a unique prefix of at least 6 characters (the 12-character `ref`)."""
        if len(chunk_id) < 6:
            return None
        rows = self.db.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id "
                               "WHERE c.id >= ? AND c.id < ? LIMIT 2", (chunk_id, chunk_id + "\U0010ffff")).fetchall()
        return _chunk_row(rows[0]) if len(rows) == 1 else None

    def iter_chunks(self, path: str | None = None) -> Iterator[ChunkRow]:
        q = f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
        args: tuple = ()
        if path is not None:
            q += " WHERE f.path = ?"
            args = (path,)
        q += " ORDER BY f.path, c.ord"
        for r in self.db.execute(q, args):
            yield _chunk_row(r)

    def counts(self) -> dict[str, int]:
        files = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return {"files": files, "chunks": chunks}

    def languages(self) -> dict[str, tuple[int, int]]:
        """language -> (files, chunks)"""
        out = {}
        for lang, nf in self.db.execute("SELECT language, count(*) FROM files GROUP BY language"):
            out[lang] = (nf, 0)
        for lang, nc in self.db.execute(
                "SELECT f.language, count(*) FROM chunks c JOIN files f ON f.id = c.file_id GROUP BY f.language"):
            out[lang] = (out.get(lang, (0, 0))[0], nc)
        return dict(sorted(out.items(), key=lambda kv: -kv[1][1]))

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
