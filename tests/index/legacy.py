"""An index as codesift wrote it before vector segments (schema 2: float32 vectors and a BM25
table with its own copy of the terms, inside the database), for upgrade tests. The SQL is that
release's, kept here as it was."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from codesift.index.model_stamp import model_stamp
from codesift.index.prepare import prepare_file
from codesift.index.store import MIGRATIONS, _statements
from codesift.walk import walk


def write_schema2_index(root: Path, index_dir: Path, embedder, index_format: str = "2.2.3.1") -> None:
    index_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(index_dir / "index.db", isolation_level=None)
    for migration in MIGRATIONS[:2]:
        for statement in _statements(migration):
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.execute("BEGIN")
    for f in walk(root, index_dir=index_dir).files:
        p = prepare_file(f, None, embedder.files)
        file_id = db.execute(
            "INSERT INTO files(path, sha256, size, mtime_ns, language, n_lines, decode_errors) VALUES(?,?,?,?,?,?,?)",
            (f.rel, p.sha256, f.size, f.mtime_ns, p.language, p.n_lines, p.decode_errors)).lastrowid
        for i, (c, eh, hh, fts) in enumerate(zip(p.chunks, p.embed_hashes, p.head_hashes, p.fts)):
            rowid = db.execute(
                "INSERT INTO chunks(id, file_id, ord, kind, language, start_line, end_line, symbol, heading_path,"
                " context, part, token_estimate, content, embed_hash, head_hash) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (c.id, file_id, i, c.kind, c.language, c.start_line, c.end_line, c.symbol,
                 json.dumps(list(c.heading_path)) if c.heading_path else None, c.context,
                 f"{c.part[0]}/{c.part[1]}" if c.part else None, c.token_estimate, c.content, eh, hh)).lastrowid
            db.execute("INSERT INTO chunks_fts(rowid, name, path, body) VALUES(?,?,?,?)", (rowid, *fts))
            db.executemany("INSERT INTO calls(chunk_rowid, name) VALUES(?, ?)", [(rowid, n) for n in c.calls])
        if p.texts:
            vecs = embedder.embed(p.texts)
            db.executemany("INSERT OR REPLACE INTO vectors(embed_hash, vec) VALUES(?, ?)",
                           [(h, np.ascontiguousarray(v, np.float32).tobytes()) for h, v in zip(p.hashes, vecs)])
    meta = {**model_stamp(embedder.files, "default"), "root": str(root), "state": "complete",
            "index_format": index_format, "generation": "1"}
    db.executemany("INSERT INTO meta(key, value) VALUES(?, ?)", list(meta.items()))
    db.execute("COMMIT")
    db.close()


def make_schema5(index_dir: Path) -> None:
    """Give a complete index of schema 6 the chunks table schema 5 had, rows and indexes as they were."""
    db = sqlite3.connect(index_dir / "index.db", isolation_level=None)
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("BEGIN")
    # made beside and renamed, as SQLite says to change a table: renaming the old one would
    # rename the references to it in other tables (calls) too. Schema 5's table: schema 1's,
    # with the columns schemas 2 and 3 added.
    chunks = next(x for x in _statements(MIGRATIONS[0]) if x.lstrip().startswith("CREATE TABLE chunks"))
    db.execute(chunks.replace("CREATE TABLE chunks", "CREATE TABLE chunks_v5"))
    for column in ("head_hash TEXT", "seg INTEGER", "seg_row INTEGER"):
        db.execute(f"ALTER TABLE chunks_v5 ADD COLUMN {column}")
    db.execute("INSERT INTO chunks_v5 SELECT * FROM chunks")
    db.execute("DROP TABLE chunks")
    db.execute("ALTER TABLE chunks_v5 RENAME TO chunks")
    for name, target in (("chunks_file", "chunks(file_id, ord)"), ("chunks_symbol", "chunks(symbol)"),
                         ("chunks_embed", "chunks(embed_hash)"), ("chunks_head", "chunks(head_hash)")):
        db.execute(f"CREATE INDEX {name} ON {target}")
    db.execute("PRAGMA user_version = 5")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
