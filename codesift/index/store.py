"""The on-disk index: one SQLite database (WAL) holding files, chunks, references and a BM25
table, and vector segment files beside it (index/vectors.py). Every SQL statement of codesift
lives in this module.

SQLite gives us what an index must never lose: each batch of files is replaced in one
transaction, so a crash leaves the last committed state, and readers (searches) keep a
consistent snapshot while an indexer writes. Schema changes are numbered migrations.
"""
from __future__ import annotations

import json
import pickle
import sqlite3
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from codesift.chunk.names import MIN_REF_LENGTH, chunk_ref
from codesift.errors import StoreError
from codesift.index import vectors as vector_files
from codesift.walk.ignore import DEFAULT_INDEX_DIR_NAME as DEFAULT_DIR_NAME
from codesift.walk.roles import file_role

DB_NAME = "index.db"
# The page cache of a connection that writes, in MiB (SQLite's default is 2). A transaction's pages
# stay in it until it commits (beyond it, SQLite writes them to the WAL early); the pages a run
# reads (the FTS5 segments it merges, the b-trees it adds to) are found there again. Bounded, and
# not a share of the index: it is the most memory a connection's pages take, at any size of tree.
CACHE_MIB = 64
# SQLite limits the parameters of one statement; IN lists are sent in slices of this many.
IN_CLAUSE_SIZE = 500
FTS_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '_'"

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
    # 3: vectors move to int8 segment files (index/vectors.py); chunk text is stored once (the BM25
    # table keeps only its index), deflated (`pack_text`); text hashes are 16-byte blobs. The tables `vectors` and
    # `chunks_fts` of schema 2 are read until the upgrading index run completes, then dropped.
    f"""
    ALTER TABLE chunks ADD COLUMN seg INTEGER;
    ALTER TABLE chunks ADD COLUMN seg_row INTEGER;
    CREATE TABLE segments (id INTEGER PRIMARY KEY AUTOINCREMENT, rows INTEGER NOT NULL, dead INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE tombstones (seg INTEGER NOT NULL, seg_row INTEGER NOT NULL, embed_hash BLOB, head_hash BLOB);
    CREATE INDEX tombstones_seg ON tombstones(seg);
    CREATE INDEX tombstones_embed ON tombstones(embed_hash);
    CREATE INDEX tombstones_head ON tombstones(head_hash);
    CREATE VIRTUAL TABLE terms_fts USING fts5(name, path, body, content='', tokenize = "{FTS_TOKENIZER}");
    """,
    # 4: each file's role (walk/roles.py: source, test, docs, changelog, manifest, lock, bundle,
    # generated), a ranking prior; NULL in rows written before, filled by the next index run.
    """
    ALTER TABLE files ADD COLUMN role TEXT;
    """,
    # 5: the mtime of each folder the last completed index run walked, as it saw it before listing
    # the folder: a search tells files added, removed or renamed since from a stat per folder, where
    # stats of every file would grow with the tree (`Store.folder_stamps`).
    """
    CREATE TABLE folders (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
    """,
    # 6: chunk ids (content hashes) lose their UNIQUE constraint for a plain index that a first build
    # defers (DEFERRED_INDEXES): a constraint's index cannot be dropped, and kept through a build
    # every transaction's random inserts rewrote most of its pages, so a build wrote it over and
    # over, more times the bigger the tree. Ids stay unique by construction (chunk/model.py:
    # path, content, occurrence). SQLite changes a constraint by copying the table; `_migrate`
    # turns foreign keys off meanwhile, or dropping the old table would delete every call.
    """
    CREATE TABLE chunks_v6 (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
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
        embed_hash TEXT NOT NULL,
        head_hash TEXT,
        seg INTEGER,
        seg_row INTEGER
    );
    INSERT INTO chunks_v6(rowid, id, file_id, ord, kind, language, start_line, end_line, symbol, heading_path,
                          context, part, token_estimate, content, embed_hash, head_hash, seg, seg_row)
        SELECT rowid, id, file_id, ord, kind, language, start_line, end_line, symbol, heading_path,
               context, part, token_estimate, content, embed_hash, head_hash, seg, seg_row FROM chunks;
    DROP TABLE chunks;
    ALTER TABLE chunks_v6 RENAME TO chunks;
    CREATE INDEX chunks_file ON chunks(file_id, ord);
    CREATE INDEX chunks_id ON chunks(id);
    CREATE INDEX chunks_symbol ON chunks(symbol);
    CREATE INDEX chunks_embed ON chunks(embed_hash);
    CREATE INDEX chunks_head ON chunks(head_hash);
    """,
]
LEGACY_TABLES = ("vectors", "chunks_fts")
# Secondary indexes, made by the migrations, and remade by `ensure_indexes` where missing.
SECONDARY_INDEXES = {
    "chunks_id": "chunks(id)",
    "chunks_symbol": "chunks(symbol)",
    "chunks_embed": "chunks(embed_hash)",
    "chunks_head": "chunks(head_hash)",
    "calls_name": "calls(name)",
    "calls_chunk": "calls(chunk_rowid)",
    "imports_file": "imports(file_id)",
    "imports_name": "imports(name)",
}
# Those a first build does without, and makes once at its end: keyed by hashes and names, each
# insert would touch a random page, and each commit write those pages again. (Those keyed by chunk
# or file grow at their end as rows are added: kept.)
DEFERRED_INDEXES = ("chunks_id", "chunks_symbol", "chunks_embed", "chunks_head", "calls_name", "imports_name")
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
    role: str = "source"  # walk/roles.py; from the path for an index written before schema 4

    @property
    def ref(self) -> str:
        return chunk_ref(self.id)


CHUNK_COLUMNS = ("c.rowid, c.id, f.path, c.language, c.kind, c.start_line, c.end_line, c.symbol, "
                 "c.heading_path, c.context, c.part, c.token_estimate, c.content")


def pack_text(text: str) -> bytes:
    """Chunk text as the index stores it: raw deflate (code and prose shrink to under half)."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return z.compress(text.encode("utf-8", "surrogatepass")) + z.flush()


def unpack_text(stored: str | bytes) -> str:
    if isinstance(stored, str):  # written before schema 3
        return stored
    return zlib.decompress(stored, -15).decode("utf-8", "surrogatepass")


def _chunk_row(r: tuple) -> ChunkRow:
    hp = tuple(json.loads(r[8])) if r[8] else ()
    role = (r[13] if len(r) > 13 else None) or file_role(r[2])
    return ChunkRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], hp, r[9], r[10], r[11], unpack_text(r[12]), role)


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


def hash_key(hex_hash: str) -> bytes:
    """A text hash as the index stores it: the first 16 bytes of the sha256 (ample for telling texts apart)."""
    return bytes.fromhex(hex_hash[:32])


def _slices(items: list, size: int = IN_CLAUSE_SIZE) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


@dataclass(frozen=True)
class VectorLocation:
    """Where an embedded text's vector is: a segment row and which of its two vectors (0 text,
    1 head); or, in an index not yet upgraded, the float32 vector itself."""

    seg: int = -1
    seg_row: int = -1
    slot: int = 0
    legacy: bytes | None = None


# A chunk's row as prepared outside the writer (`chunk_rows`): every column but those only the
# writer knows (rowid, file_id, segment and segment row), in this order.
PREPARED_CHUNK_COLUMNS = ("id, ord, kind, language, start_line, end_line, symbol, heading_path, context, part,"
                          " token_estimate, content, embed_hash, head_hash")


def chunk_rows(chunks: list, embed_hashes: list[str], head_hashes: list[str],
               packed: list[bytes] | None = None) -> list[tuple]:
    """The chunks' rows as `write_files` inserts them (PREPARED_CHUNK_COLUMNS). Built in the prepare
    workers, so the writer thread, which the whole run waits on, only binds them."""
    if packed is None:
        packed = [pack_text(c.content) for c in chunks]
    return [(c.id, i, c.kind, c.language, c.start_line, c.end_line, c.symbol,
             json.dumps(list(c.heading_path), ensure_ascii=False) if c.heading_path else None,
             c.context, f"{c.part[0]}/{c.part[1]}" if c.part else None, c.token_estimate, z,
             hash_key(eh), hash_key(hh))
            for i, (c, eh, hh, z) in enumerate(zip(chunks, embed_hashes, head_hashes, packed, strict=True))]


def chunk_calls(chunks: list) -> list[tuple[int, str]]:
    """(chunk's position in its file, called name) for each call the chunks make."""
    return [(i, name) for i, c in enumerate(chunks) for name in c.calls]


@dataclass
class FileRecord:
    """One file's rows, as the writer hands them to `write_files`."""

    path: str
    sha256: str
    size: int
    mtime_ns: int
    language: str
    n_lines: int
    decode_errors: int
    rows: list[tuple]  # chunk_rows
    fts: list[tuple[str, str, str]]  # each chunk's BM25 fields
    calls: list[tuple[int, str]]  # chunk_calls
    imports: list
    vectors: np.ndarray | None  # int8 [len(rows), 2, dim]
    role: str | None = None  # walk/roles.py; None: from the path
    stored: bytes | None = None  # rows, fts, calls and imports pickled together, as a prepare worker sends them


class Store:
    """A connection to one index. Not shared between threads.

    readonly=True never writes (not even the schema): it reads an index of an older schema as it
    is, and an index on a read-only mount or owned by another user."""

    def __init__(self, index_dir: Path, create: bool = False, readonly: bool = False):
        self.dir = Path(index_dir)
        self.path = self.dir / DB_NAME
        self.readonly = readonly
        if not self.path.exists():
            if not create or readonly:
                raise StoreError(f"no index at {self.dir}; create one with `codesift index <root>`")
            self.dir.mkdir(parents=True, exist_ok=True)
            # keep the index out of git status without touching the user's .gitignore
            (self.dir / ".gitignore").write_text("*\n")
        try:
            # autocommit mode: transactions are explicit (`transaction()`), never implicit
            self.db = self._connect(readonly)
            self.db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                _set_wal(self.db)
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.execute(f"PRAGMA cache_size = {-1024 * CACHE_MIB}")
                # checkpoints in bigger steps: each one copies the WAL's pages into the database
                self.db.execute("PRAGMA wal_autocheckpoint = 16384")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if readonly and version == 0 and self.path.stat().st_size == 0:
                raise sqlite3.DatabaseError("the database file is empty")
        except sqlite3.OperationalError:
            raise  # the disk, not the index (full, failing, locked): the caller says what to do
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable codesift index ({e}); "
                             "rebuild it with `codesift index --rebuild`") from e
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer codesift (schema {version}, this one "
                             f"reads up to {SCHEMA_VERSION}); upgrade codesift or rebuild with --rebuild")
        self.schema = version
        self.upgraded_from: int | None = None  # the schema this connection brought up to date, if any
        if version < SCHEMA_VERSION and not readonly:
            self._migrate(version)
            self.schema = SCHEMA_VERSION
            self.upgraded_from = version or None  # 0: a new index, created
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.legacy = tuple(t for t in LEGACY_TABLES if t in tables)
        self.fts_tables = tuple(t for t in ("terms_fts", "chunks_fts") if t in tables)
        if not readonly and self.legacy and version == 0:
            self._drop_legacy()  # a new index: schema 2's tables were created only to be replaced

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        if not readonly:
            return sqlite3.connect(self.path, timeout=30, isolation_level=None)
        uri = self.path.resolve().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, isolation_level=None)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            # A read-only folder (a read-only mount, another user's index): SQLite cannot create the
            # WAL's shared-memory file there. Nobody can write such an index, so reading it as
            # immutable is safe; index runs end with a checkpoint, so the WAL holds nothing unread.
            db.close()
            return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)

    def _checked_path(self) -> Path:
        return self.dir / (DB_NAME + ".checked")

    def _file_state(self) -> str:
        st = self.path.stat()
        wal = self.dir / (DB_NAME + "-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {wal_size}"

    def mark_checked(self) -> None:
        """Record the database file as it is now, sound: the end of a run that checked it (call
        after `checkpoint`). The next run skips the check while the file is untouched."""
        try:
            if (self.dir / (DB_NAME + "-wal")).exists() and (self.dir / (DB_NAME + "-wal")).stat().st_size:
                return  # pages still in the WAL (readers kept it): the file will change; check next time
            self._checked_path().write_text(self._file_state())
        except OSError:
            pass

    def check_integrity(self) -> None:
        """Raise StoreError if the database is damaged (SQLite's quick_check: every page and row
        read once, indexes not compared): an index run must not build on a damaged index and then
        mark it complete. Skipped when the file is exactly as the last run that checked it left it
        (size, time, inode, an empty WAL): reading every page costs seconds on a large index, and
        an edit of one file must not."""
        try:
            if self._checked_path().read_text() == self._file_state():
                return
        except OSError:
            pass
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as e:
            problems = [str(e)]
        if problems != ["ok"]:
            detail = " ".join(" ".join(problems).split())  # quick_check's lines, as one line
            raise StoreError(f"{self.path} is damaged ({detail[:200]}); rebuild it with "
                             "`codesift index --rebuild` (the damaged index is replaced only once the new one is complete)")

    def _migrate(self, version: int) -> None:
        # Foreign keys off while tables are copied and dropped (SQLite's way to change a table: a
        # DROP TABLE would otherwise run its cascades), checked before the commit; the pragma only
        # takes effect outside a transaction.
        self.db.execute("PRAGMA foreign_keys = OFF")
        # the version is read again under the write lock: another process may have migrated meanwhile
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for i in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[i]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {i + 1}")
            if self.db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise StoreError(f"{self.path}: the schema upgrade left rows without their parent; rebuild it with "
                                 "`codesift index --rebuild`")
        except BaseException:
            self.db.execute("ROLLBACK")
            self.db.execute("PRAGMA foreign_keys = ON")
            raise
        self.db.execute("COMMIT")
        self.db.execute("PRAGMA foreign_keys = ON")

    def _drop_legacy(self) -> None:
        with self.transaction():
            for table in self.legacy:
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.legacy = ()
        self.fts_tables = ("terms_fts",)

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

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state, however many statements they take."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    @property
    def _role_column(self) -> str:
        return "f.role" if self.schema >= 4 else "NULL"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def defer_indexes(self) -> None:
        """Drop the deferred secondary indexes (call inside a transaction, on an index with no file):
        a first build inserts without them and `ensure_indexes` makes them once, sorted."""
        for name in DEFERRED_INDEXES:
            self.db.execute(f"DROP INDEX IF EXISTS {name}")

    def ensure_indexes(self) -> None:
        for name, target in SECONDARY_INDEXES.items():
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")

    def set_bm25_merging(self, on: bool) -> None:
        """FTS5's automatic merges of its segments on (SQLite's default) or off (call inside a
        transaction). Off through a first build: each commit adds a segment, and merging them as
        they come rewrites the BM25 index again and again; FTS5 still merges once a level holds
        `crisismerge` segments, so their number stays bounded. The setting is kept in the index."""
        if "terms_fts" in self.fts_tables:
            self.db.execute("INSERT INTO terms_fts(terms_fts, rank) VALUES('automerge', ?)", (4 if on else 0,))

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

    def file_stamps(self, paths: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime_ns) as last indexed, for the given paths that are indexed (None: every file)."""
        out: dict[str, tuple[int, int]] = {}
        if paths is None:
            return {path: (size, mtime_ns) for path, size, mtime_ns in
                    self.db.execute("SELECT path, size, mtime_ns FROM files")}
        for part in _slices(list(paths)):
            for path, size, mtime_ns in self.db.execute(
                    f"SELECT path, size, mtime_ns FROM files WHERE path IN ({_marks(len(part))})", part):
                out[path] = (size, mtime_ns)
        return out

    def files_in_folders(self, folders: Iterable[str]) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime_ns) as last indexed, for the files directly inside `folders` ("" is
        the root; not their subfolders' files)."""
        out: dict[str, tuple[int, int]] = {}
        for folder in folders:
            if folder:  # the paths between "folder/" and "folder0" ('/' + 1) on the index of files.path
                rows = self.db.execute(
                    "SELECT path, size, mtime_ns FROM files WHERE path > ?1 || '/' AND path < ?1 || '0' "
                    "AND instr(substr(path, length(?1) + 2), '/') = 0", (folder,))
            else:
                rows = self.db.execute("SELECT path, size, mtime_ns FROM files WHERE instr(path, '/') = 0")
            out.update((path, (size, mtime_ns)) for path, size, mtime_ns in rows)
        return out

    def folder_stamps(self) -> dict[str, int] | None:
        """folder ("" for the root) -> mtime_ns as the last completed index run walked it; None when
        no run recorded them (an index of an older schema, or files with no folder recorded), where
        only a stat of every file tells what changed."""
        if self.schema < 5:
            return None
        stamps = dict(self.db.execute("SELECT path, mtime_ns FROM folders"))
        if not stamps and self.db.execute("SELECT 1 FROM files LIMIT 1").fetchone():
            return None
        return stamps

    def replace_folders(self, stamps: Iterable[tuple[str, int]]) -> None:
        """Record the folders a run walked, (path, mtime_ns), in place of the last run's (call inside
        a transaction)."""
        self.db.execute("DELETE FROM folders")
        self.db.executemany("INSERT INTO folders(path, mtime_ns) VALUES(?, ?)", stamps)

    def set_folder_stamp(self, path: str, mtime_ns: int) -> None:
        """Update one recorded folder's mtime (call inside a transaction); nothing if it is not recorded."""
        self.db.execute("UPDATE folders SET mtime_ns = ? WHERE path = ?", (mtime_ns, path))

    def fill_roles(self, role_of: Callable[[str], str] = file_role) -> int:
        """Give a role to files indexed before roles were (call inside a transaction); returns how many."""
        rows = self.db.execute("SELECT id, path FROM files WHERE role IS NULL").fetchall()
        self.db.executemany("UPDATE files SET role = ? WHERE id = ?", [(role_of(path), i) for i, path in rows])
        return len(rows)

    def chunk_kinds_roles(self, rowids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """rowid -> (kind, role of its file) for the given chunks."""
        role = "f.role" if self.schema >= 4 else "NULL"
        out: dict[int, tuple[str, str]] = {}
        for part in _slices(list(rowids)):
            for rowid, kind, r, path in self.db.execute(
                    f"SELECT c.rowid, c.kind, {role}, f.path FROM chunks c JOIN files f ON f.id = c.file_id "
                    f"WHERE c.rowid IN ({_marks(len(part))})", part):
                out[rowid] = (kind, r or file_role(path))
        return out

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

    def delete_file(self, path: str, fts_fields: Callable[[ChunkRow], tuple[str, str, str]]) -> None:
        """Remove a file and its chunks (call inside a transaction). Its vectors become tombstones;
        `fts_fields` gives back each chunk's BM25 fields, which the BM25 index needs to forget it."""
        row = self.db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if not row:
            return
        old = [(_chunk_row(r[:13]), r[13], r[14], r[15], r[16]) for r in self.db.execute(
            f"SELECT {CHUNK_COLUMNS}, c.seg, c.seg_row, c.embed_hash, c.head_hash FROM chunks c "
            "JOIN files f ON f.id = c.file_id WHERE c.file_id = ?", row)]
        if "terms_fts" in self.fts_tables:
            # chunks written before the last forget_all_terms are no longer in the BM25 index
            first = int(self.get_meta("terms_first_seg", "0"))
            in_new = [(c, seg) for c, seg, *_ in old if seg is not None and seg >= first]
            self.db.executemany("INSERT INTO terms_fts(terms_fts, rowid, name, path, body) VALUES('delete',?,?,?,?)",
                                [(c.rowid, *fts_fields(c)) for c, _ in in_new])
        if "chunks_fts" in self.fts_tables:
            self.db.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE file_id = ?)", row)
        dead = [(seg, seg_row, eh, hh) for _, seg, seg_row, eh, hh in old if seg is not None]
        self.db.executemany("INSERT INTO tombstones(seg, seg_row, embed_hash, head_hash) VALUES(?,?,?,?)", dead)
        counts: dict[int, int] = {}
        for seg, *_ in dead:
            counts[seg] = counts.get(seg, 0) + 1
        self.db.executemany("UPDATE segments SET dead = dead + ? WHERE id = ?", [(n, s) for s, n in counts.items()])
        self.db.execute("DELETE FROM files WHERE id = ?", row)  # chunks, calls, imports cascade

    def forget_all_terms(self) -> None:
        """Empty the BM25 index (call inside a transaction), before every file is chunked again with
        other terms: a contentless FTS5 table can only forget a row given the terms it was given."""
        if "terms_fts" in self.fts_tables:
            self.db.execute("INSERT INTO terms_fts(terms_fts) VALUES('delete-all')")
        next_seg = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM segments").fetchone()[0]
        self.set_meta(terms_first_seg=next_seg)

    def write_files(self, records: list[FileRecord], fts_fields: Callable[[ChunkRow], tuple[str, str, str]]) -> int:
        """Swap in new and changed files with their chunks and vectors (call inside a transaction):
        the vectors go to one new segment file, synced before the transaction commits. Returns the
        bytes written to the segment."""
        for r in records:
            self.delete_file(r.path, fts_fields)
        seg_id = self.db.execute("INSERT INTO segments(rows) VALUES(0)").lastrowid
        # rowids given, not read back: the writer is alone in its transaction
        next_rowid = self.db.execute("SELECT coalesce(max(rowid), 0) + 1 FROM chunks").fetchone()[0]
        seg_rowids: list[int] = []
        seg_vectors: list[np.ndarray] = []
        for r in records:
            if r.stored is not None:  # made by our own prepare worker (index/prepare.py)
                r.rows, r.fts, r.calls, r.imports = pickle.loads(r.stored)
            file_id = self.db.execute(
                "INSERT INTO files(path, sha256, size, mtime_ns, language, n_lines, decode_errors, role) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (r.path, r.sha256, r.size, r.mtime_ns, r.language, r.n_lines, r.decode_errors,
                 r.role or file_role(r.path))).lastrowid
            base = len(seg_rowids)
            rowids = range(next_rowid, next_rowid + len(r.rows))
            next_rowid += len(r.rows)
            self.db.executemany(
                f"INSERT INTO chunks(rowid, file_id, seg, seg_row, {PREPARED_CHUNK_COLUMNS})"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(rowid, file_id, seg_id, base + i, *row) for i, (rowid, row) in enumerate(zip(rowids, r.rows))])
            seg_rowids += rowids
            if r.rows:
                seg_vectors.append(r.vectors)
            self.db.executemany("INSERT INTO terms_fts(rowid, name, path, body) VALUES(?,?,?,?)",
                                [(rowid, *fts) for rowid, fts in zip(rowids, r.fts, strict=True)])
            self.db.executemany("INSERT INTO calls(chunk_rowid, name) VALUES(?, ?)",
                                [(rowids[i], name) for i, name in r.calls])
            self.db.executemany("INSERT INTO imports(file_id, module, name, alias, line) VALUES(?,?,?,?,?)",
                                [(file_id, i.module, i.name, i.alias, i.line) for i in r.imports])
        if not seg_rowids:
            self.db.execute("DELETE FROM segments WHERE id = ?", (seg_id,))
            return 0
        written = vector_files.write_segment(self.dir, seg_id, np.asarray(seg_rowids, np.int64),
                                             np.concatenate(seg_vectors))
        self.db.execute("UPDATE segments SET rows = ? WHERE id = ?", (len(seg_rowids), seg_id))
        return written

    # --- vectors ----------------------------------------------------------------------
    def vector_locations(self, hashes: Iterable[str]) -> dict[str, VectorLocation]:
        """Where each already-embedded text's vector is, for the hashes found: in a live chunk, a
        tombstone (a chunk replaced or deleted this run: e.g. a file renamed), or schema 2's table."""
        hexes = list(dict.fromkeys(hashes))
        by_key = {hash_key(h): h for h in hexes}
        found: dict[str, VectorLocation] = {}
        keys = list(by_key)
        for part in _slices(keys):
            m = _marks(len(part))
            for table in ("chunks", "tombstones"):
                for slot, col in ((0, "embed_hash"), (1, "head_hash")):
                    for key, seg, seg_row in self.db.execute(
                            f"SELECT {col}, seg, seg_row FROM {table} WHERE {col} IN ({m}) AND seg IS NOT NULL", part):
                        found.setdefault(by_key[key], VectorLocation(seg, seg_row, slot))
        if "vectors" in self.legacy:
            rest = [h for h in hexes if h not in found]
            for part in _slices(rest):
                for h, blob in self.db.execute(
                        f"SELECT embed_hash, vec FROM vectors WHERE embed_hash IN ({_marks(len(part))})", part):
                    found[h] = VectorLocation(legacy=blob)
        return found

    def segments(self) -> list[vector_files.SegmentInfo]:
        if self.schema < 3:  # read as it is (read-only): no segments yet
            return []
        return [vector_files.SegmentInfo(*r) for r in self.db.execute("SELECT id, rows, dead FROM segments ORDER BY id")]

    def dead_rows(self, seg_ids: list[int] | None = None) -> dict[int, list[int]]:
        """segment id -> its tombstoned rows, for every segment (or those of `seg_ids`)."""
        out: dict[int, list[int]] = {}
        if self.schema < 3:
            return out
        if seg_ids is None:
            rows = self.db.execute("SELECT seg, seg_row FROM tombstones ORDER BY seg, seg_row")
        else:
            rows = self.db.execute(f"SELECT seg, seg_row FROM tombstones WHERE seg IN ({_marks(len(seg_ids))}) "
                                   "ORDER BY seg, seg_row", seg_ids)
        for seg, seg_row in rows:
            out.setdefault(seg, []).append(seg_row)
        return out

    def open_segments(self) -> list[vector_files.Segment]:
        """The committed segments, tombstones applied (call inside `snapshot()` with the reads that
        use them, so that both see one state)."""
        dead = self.dead_rows()
        return [vector_files.Segment.open(self.dir, s.id, dead.get(s.id, ())) for s in self.segments() if s.rows]

    def legacy_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, float32 [n, 2, dim]) of chunks whose vectors are still in schema 2's table."""
        if "vectors" not in self.legacy:
            return np.zeros(0, np.int64), np.zeros((0, 2, dim), np.float32)
        rows, blobs = [], []
        head_join = "LEFT JOIN vectors h ON h.embed_hash = c.head_hash" if self.schema >= 2 else \
            "LEFT JOIN vectors h ON 0"
        seg_filter = "WHERE c.seg IS NULL" if self.schema >= 3 else ""
        for rowid, text_vec, head_vec in self.db.execute(
                f"SELECT c.rowid, v.vec, h.vec FROM chunks c JOIN vectors v ON v.embed_hash = c.embed_hash "
                f"{head_join} {seg_filter} ORDER BY c.rowid"):
            rows.append(rowid)
            blobs += (text_vec, head_vec or text_vec)
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 2, dim), np.float32)
        mat = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(rows), 2, dim)
        return np.asarray(rows, dtype=np.int64), mat

    def missing_vectors(self) -> int:
        """Chunks whose vectors are not where the index says (0 in a sound index): no segment row, a
        segment row holding another chunk, a tombstoned row, or no file."""
        dead = self.dead_rows()
        rows_of: dict[int, np.ndarray] = {}
        for info in self.segments():
            try:
                rows_of[info.id] = vector_files.Segment.open(self.dir, info.id).rowids
            except (OSError, ValueError):
                pass
        missing = 0
        for rowid, seg, seg_row in self.db.execute("SELECT rowid, seg, seg_row FROM chunks"):
            if seg is None:
                missing += "vectors" not in self.legacy
                continue
            rows = rows_of.get(seg)
            if rows is None or seg_row >= len(rows) or rows[seg_row] != rowid or seg_row in dead.get(seg, ()):
                missing += 1
        return missing

    def merge_segments(self, seg_ids: list[int]) -> int:
        """Rewrite the live rows of `seg_ids` as one new segment (call inside a transaction); returns
        the bytes written. The old files are removed by `remove_unused_segment_files` after commit."""
        dead = self.dead_rows(seg_ids)
        parts = [vector_files.Segment.open(self.dir, seg_id, dead.get(seg_id, ())) for seg_id in seg_ids]
        marks = _marks(len(seg_ids))
        self.db.execute(f"DELETE FROM segments WHERE id IN ({marks})", seg_ids)
        self.db.execute(f"DELETE FROM tombstones WHERE seg IN ({marks})", seg_ids)
        parts = [p for p in parts if p.live is None or p.live.any()]
        if not parts:
            return 0
        new_id = self.db.execute("INSERT INTO segments(rows) VALUES(0)").lastrowid
        rowids, written = vector_files.write_merged_segment(self.dir, new_id, parts)
        self.db.execute("UPDATE segments SET rows = ? WHERE id = ?", (len(rowids), new_id))
        self.db.executemany("UPDATE chunks SET seg = ?, seg_row = ? WHERE rowid = ?",
                            ((new_id, i, r) for i, r in enumerate(rowids.tolist())))
        return written

    def remove_unused_segment_files(self) -> int:
        return vector_files.remove_segment_files(self.dir, [s.id for s in self.segments()])

    def write_missing_norms(self) -> int:
        """Give the segments written before vector lengths were kept their lengths file; returns bytes written."""
        return vector_files.write_missing_norms(self.dir, [s.id for s in self.segments()])

    def finish_upgrade(self) -> None:
        """Drop schema 2's tables once every chunk has its vectors in segments, and give their space back."""
        if not self.legacy:
            return
        if self.db.execute("SELECT count(*) FROM chunks WHERE seg IS NULL").fetchone()[0]:
            return
        self._drop_legacy()
        self.db.execute("VACUUM")

    def checkpoint(self) -> None:
        """Move the WAL's pages into the database file and empty it: the index is then whole in one
        file, as a reader that opens it immutable (read-only folders) needs."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # readers hold the WAL open: the next run checkpoints

    # --- search -----------------------------------------------------------------------
    def bm25(self, match: str, weights: tuple[float, float, float], limit: int) -> list[tuple[int, float]]:
        """(chunk rowid, score: higher is better) for the FTS5 query `match`, best first."""
        out: list[tuple[int, float]] = []
        for table in self.fts_tables:
            out += [(r, -s) for r, s in self.db.execute(
                f"SELECT rowid, bm25({table}, ?, ?, ?) FROM {table} WHERE {table} MATCH ? ORDER BY 2 LIMIT ?",
                (*weights, match, limit))]
        if len(self.fts_tables) > 1:
            out.sort(key=lambda rs: -rs[1])
        return out

    def chunk_paths(self) -> Iterator[tuple[int, str, str]]:
        """(rowid, path, language) of every chunk: what path and language filters look at."""
        return self.db.execute("SELECT c.rowid, f.path, f.language FROM chunks c JOIN files f ON f.id = c.file_id")

    # --- chunks -----------------------------------------------------------------------
    def chunks_by_rowid(self, rowids: Iterable[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for part in _slices(list(rowids)):
            q = (f"SELECT {CHUNK_COLUMNS}, {self._role_column} FROM chunks c JOIN files f ON f.id = c.file_id "
                 f"WHERE c.rowid IN ({_marks(len(part))})")
            out.update((r[0], _chunk_row(r)) for r in self.db.execute(q, part))
        return out

    def chunk_by_id(self, chunk_id: str) -> ChunkRow | None:
        """By full id or a unique prefix of at least MIN_REF_LENGTH characters (the `ref`)."""
        if len(chunk_id) < MIN_REF_LENGTH:
            return None
        rows = self.db.execute(f"SELECT {CHUNK_COLUMNS}, {self._role_column} FROM chunks c "
                               "JOIN files f ON f.id = c.file_id WHERE c.id >= ? AND c.id < ? LIMIT 2", (chunk_id, chunk_id + "\U0010ffff")).fetchall()
        return _chunk_row(rows[0]) if len(rows) == 1 else None

    def vector_location(self, rowid: int) -> VectorLocation | None:
        """Where chunk `rowid`'s own vectors are: its segment row (slot 0, its text), or in an index
        not yet upgraded, its float32 text vector; None if it has none."""
        if self.schema >= 3:
            row = self.db.execute("SELECT seg, seg_row FROM chunks WHERE rowid = ?", (rowid,)).fetchone()
            if row and row[0] is not None:
                return VectorLocation(row[0], row[1], 0)
        if "vectors" in self.legacy:
            row = self.db.execute("SELECT v.vec FROM chunks c JOIN vectors v ON v.embed_hash = c.embed_hash "
                                  "WHERE c.rowid = ?", (rowid,)).fetchone()
            if row:
                return VectorLocation(legacy=row[0])
        return None

    def count_id_prefix(self, prefix: str) -> int:
        return self.db.execute("SELECT count(*) FROM chunks WHERE substr(id, 1, ?) = ?",
                               (len(prefix), prefix)).fetchone()[0]

    def iter_chunks(self, path: str | None = None) -> Iterator[ChunkRow]:
        q = f"SELECT {CHUNK_COLUMNS}, {self._role_column} FROM chunks c JOIN files f ON f.id = c.file_id"
        args: tuple = ()
        if path is not None:
            q += " WHERE f.path = ?"
            args = (path,)
        q += " ORDER BY f.path, c.ord"
        for r in self.db.execute(q, args):
            yield _chunk_row(r)

    # --- navigation -------------------------------------------------------------------
    def symbol_rowids(self, name: str, prefix: bool, case_sensitive: bool, limit: int) -> list[int]:
        """Chunks whose symbol is `name` or ends with `.name` (with `prefix`: starts with `name` at the
        start or after a dot), best first: the name itself, then names starting with it, then the rest."""
        if prefix:
            match = "substr(c.symbol, 1, length(?1)) = ?1 OR instr(c.symbol, '.' || ?1) > 0"
        else:  # the index on chunks.symbol serves the first test; the suffix test scans
            match = "c.symbol = ?1 OR substr(c.symbol, -length(?1) - 1) = '.' || ?1"
        if not case_sensitive:
            match = match.replace("c.symbol", "lower(c.symbol)").replace("?1", "lower(?1)")
        sql = (f"SELECT c.rowid FROM chunks c JOIN files f ON f.id = c.file_id "
               f"WHERE c.symbol IS NOT NULL AND ({match}) "
               "ORDER BY lower(c.symbol) != lower(?1), substr(lower(c.symbol), 1, length(?1)) != lower(?1), "
               "f.path, c.start_line, c.ord LIMIT ?2")
        return [r for (r,) in self.db.execute(sql, (name, limit))]

    def caller_rowids(self, name: str, limit: int) -> tuple[list[int], int]:
        """(chunks that call `name`, in path and line order, up to `limit`; how many there are)."""
        rows = [r for (r,) in self.db.execute(
            "SELECT c.rowid FROM chunks c JOIN files f ON f.id = c.file_id "
            "WHERE c.rowid IN (SELECT chunk_rowid FROM calls WHERE name = ?) "
            "ORDER BY f.path, c.start_line, c.ord LIMIT ?", (name, limit))]
        total = self.db.execute("SELECT count(DISTINCT chunk_rowid) FROM calls WHERE name = ?", (name,)).fetchone()[0]
        return rows, total

    def called_names(self, rowids: list[int]) -> list[str]:
        """Names the given chunks call, in the order recorded."""
        out: list[str] = []
        for part in _slices(rowids):
            out += [n for (n,) in self.db.execute(
                f"SELECT name FROM calls WHERE chunk_rowid IN ({_marks(len(part))}) ORDER BY rowid", part)]
        return out

    def symbols(self) -> Iterator[tuple[int, str]]:
        """(rowid, symbol) of every chunk with a symbol, in path and line order."""
        return self.db.execute("SELECT c.rowid, c.symbol FROM chunks c JOIN files f ON f.id = c.file_id "
                               "WHERE c.symbol IS NOT NULL ORDER BY f.path, c.start_line, c.ord")

    def imports(self) -> Iterator[tuple[str, str, str | None, str | None, int]]:
        """(path, module, name, alias, line) of every import, by path and line."""
        return self.db.execute("SELECT f.path, i.module, i.name, i.alias, i.line FROM imports i "
                               "JOIN files f ON f.id = i.file_id ORDER BY f.path, i.line")

    def file_entries(self, folder: str = "") -> list[tuple[str, str, int, int, int]]:
        """(path, language, lines, chunks, tokens) of the files at or below `folder` ("" for all)."""
        where, args = "", ()
        if folder:
            where, args = "WHERE f.path = ? OR substr(f.path, 1, length(?) + 1) = ? || '/'", (folder, folder, folder)
        sql = ("SELECT f.path, f.language, f.n_lines, count(c.rowid), coalesce(sum(c.token_estimate), 0) "
               f"FROM files f LEFT JOIN chunks c ON c.file_id = f.id {where} GROUP BY f.id ORDER BY f.path")
        return self.db.execute(sql, args).fetchall()

    # --- totals -----------------------------------------------------------------------
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

    def size_on_disk(self) -> dict[str, int]:
        """Bytes on disk: the database (with its WAL), the vector segments, and their total."""
        db = sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file() and p.name.startswith(DB_NAME))
        folder = self.dir / vector_files.VECTORS_DIR
        vec = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0
        return {"database": db, "vectors": vec, "total": db + vec}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
