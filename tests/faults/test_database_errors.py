"""#7: a damaged database and a full disk end every command with a one-line message, and an
index run on a damaged database fails before it marks anything complete."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from codesift.chunk import chunk_file
from codesift.index.store import Store
from tests.faults.helpers import (READ_COMMANDS, committed_files, make_tree, one_line_error, run_cli, start_index,
                                 wait_for)


def damage(db: Path, tables: tuple[str, ...]) -> None:
    """Overwrite the first bytes of each table's root page: the schema still reads, the table not."""
    con = sqlite3.connect(db)
    pages = [con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0] for t in tables]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    with open(db, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xff" * 64)


def meta(db: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT key, value FROM meta"))
    finally:
        con.close()


@pytest.fixture
def damaged(indexed_repo, tmp_path) -> Path:
    index_dir = tmp_path / "index"
    shutil.copytree(indexed_repo / ".codesift", index_dir)
    damage(index_dir / "index.db", ("chunks",))
    return index_dir


@pytest.mark.parametrize("args", [a for a in READ_COMMANDS if a[0] != "status"]
                         + [["get", "32456db878e3"], ["export", "-o", "{tmp}/out"]])
def test_read_commands_on_a_damaged_index(damaged, tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    message = one_line_error(run_cli(*args, "--index-dir", str(damaged)))
    assert "damaged" in message and "--rebuild" in message


def test_index_on_a_damaged_index_marks_nothing(damaged, indexed_repo, embedder):
    db = damaged / "index.db"
    before = meta(db)
    (indexed_repo / "src" / "new_module.py").write_text("def brand_new():\n    return 1\n")
    try:
        message = one_line_error(run_cli("index", str(indexed_repo), "--index-dir", str(damaged)))
        assert "damaged" in message and "--rebuild" in message
        assert meta(db) == before  # state, generation, indexed_at: all as they were
        # the hint works: a rebuild beside it replaces the damaged index with a sound one
        proc = run_cli("index", str(indexed_repo), "--index-dir", str(damaged), "--rebuild", "-q")
        assert proc.returncode == 0, proc.stderr.decode()
    finally:
        (indexed_repo / "src" / "new_module.py").unlink()
    with Store(damaged, readonly=True) as store:
        assert store.get_meta("state") == "complete" and store.missing_vectors() == 0
        assert "src/new_module.py" in store.files()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, or a skip saying why there is none."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` with one file until about `leave` bytes are free."""
    filler = disk / "filler"
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def expected_chunk_ids(root: Path) -> set[str]:
    return {c.id for p in root.rglob("*.py")
            for c in chunk_file(p.relative_to(root).as_posix(), p.read_text(), "python").chunks}


def converges(root: Path, index_dir: Path, n_files: int) -> None:
    """With room again, the next run completes: every file, exactly the chunks of a fresh index."""
    proc = run_cli("index", str(root), "--index-dir", str(index_dir), "--device", "cpu", "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert sound_files(index_dir) == n_files
    with Store(index_dir, readonly=True) as store:
        assert store.get_meta("state") == "complete"
        assert {c.id for c in store.iter_chunks()} == expected_chunk_ids(root)


@pytest.mark.slow
@pytest.mark.parametrize("leave", [20_000, 120_000])
def test_disk_full_from_the_start(small_disk, tmp_path, leave):
    """Index into a disk with `leave` bytes free (full while creating the index, or at its first
    transaction): one line, exit status 1; with room again the next run completes."""
    root = make_tree(tmp_path / "tree", 60)
    index_dir = small_disk / "index"
    filler = fill(small_disk, leave)
    message = one_line_error(run_cli("index", str(root), "--index-dir", str(index_dir), "--device", "cpu", "-q"))
    assert "disk is full" in message or "free some space" in message, message
    if (index_dir / "index.db").exists():
        assert sound_files(index_dir) == 0
    filler.unlink()
    converges(root, index_dir, 60)


@pytest.mark.slow
def test_disk_full_mid_run_keeps_what_was_committed(small_disk, tmp_path):
    """The disk fills up (another program) while files are being committed: the run ends with
    one line and exit status 1; what it had committed is intact; the next run completes."""
    root = make_tree(tmp_path / "tree", 300)
    index_dir = small_disk / "index"
    proc = start_index(root, "--index-dir", str(index_dir), "--workers", "1")
    try:
        wait_for(lambda: committed_files(index_dir) > 0, proc, what="the first commit")
        seen = committed_files(index_dir)
        filler = fill(small_disk, 0)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc.stderr = proc.stderr.read()
    message = one_line_error(proc)
    assert "disk is full" in message or "free some space" in message, message
    filler.unlink()
    assert 0 < seen <= sound_files(index_dir) < 300
    converges(root, index_dir, 300)


def sound_files(index_dir: Path) -> int:
    """Files in the index, after checking it opens, passes SQLite's check and has every vector."""
    with Store(index_dir, readonly=True) as store:
        store.check_integrity()
        if store.schema == 0:  # the disk filled up before the schema was committed
            return 0
        assert store.missing_vectors() == 0
        return store.counts()["files"]
