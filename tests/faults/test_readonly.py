"""#4: a read-only index is fully searchable, and read commands never write.

Read-only three ways: a read-only bind mount (what `mount -o ro` gives), a folder owned by
root and read by the user `nobody` (permissions, which root itself ignores), and, for the
claim that reads never write, a writable folder compared byte for byte before and after."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.faults.helpers import ENV, NOBODY, READ_COMMANDS, one_line_error, run_cli


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file below `folder`: (size, mtime_ns, bytes)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns, p.read_bytes())
    return out


def check_read_commands(index_dir: Path) -> None:
    for args in READ_COMMANDS:
        proc = run_cli(*args, "--index-dir", str(index_dir))
        err = proc.stderr.decode()
        assert proc.returncode == 0 and "Error" not in err and "Traceback" not in err, (args, err)
        assert proc.stdout.strip(), args
    status = json.loads(run_cli("status", "--json", "--index-dir", str(index_dir)).stdout)
    assert status["state"] == "complete" and status["files"] == 7
    hits = json.loads(run_cli("search", "load the json config", "--mode", "semantic", "--json",
                              "--index-dir", str(index_dir)).stdout)["results"]
    assert hits[0]["path"] == "src/config.py"


def test_reads_never_write(indexed_repo, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(indexed_repo / ".codesift", index_dir)
    before = snapshot(index_dir)
    check_read_commands(index_dir)
    out = tmp_path / "export"
    assert run_cli("export", "-o", str(out), "--index-dir", str(index_dir)).returncode == 0
    after = snapshot(index_dir)
    # A reader of a WAL database in a writable folder opens SQLite's shared-memory file (and an
    # empty log) beside it: how it reads while an indexer writes. Nothing else may appear or change.
    shm = after.pop("index.db-shm", None)
    wal = after.pop("index.db-wal", None)
    assert wal is None or wal[0] == 0
    assert shm is None or shm[0] <= 65536
    assert after == before


def test_read_only_mount(indexed_repo, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "--bind", str(indexed_repo / ".codesift"), str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root and mount rights): the read-only mount is not tested")
    try:
        r = subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], capture_output=True)
        if r.returncode:
            pytest.skip(f"cannot remount read-only: {r.stderr.decode().strip()}")
        with pytest.raises(OSError):
            (mnt / "probe").touch()
        before = snapshot(mnt)
        check_read_commands(mnt)
        # writing commands say why they cannot, in one line
        assert "read-only" in one_line_error(run_cli("index", str(indexed_repo), "--index-dir", str(mnt))).lower()
        assert snapshot(mnt) == before
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


NOBODY_SCRIPT = r"""
import json, os, sys
from click.testing import CliRunner
from codesift.cli import cli
warm, target = sys.argv[1], sys.argv[2]
commands = json.loads(sys.argv[3])
runner = CliRunner()
# import every module the commands load lazily while root can still read the interpreter's files
for args in commands:
    runner.invoke(cli, [*args, "--index-dir", warm])
os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
assert os.geteuid() == NOBODY and not os.access(target, os.W_OK)
out = []
for args in commands:
    r = runner.invoke(cli, [*args, "--index-dir", target])
    out.append([args, r.exit_code, r.output[-300:], repr(r.exception) if r.exit_code else None])
print(json.dumps(out))
""".replace("NOBODY", str(NOBODY))


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the user nobody needs root")
def test_index_of_another_user(indexed_repo):
    """The index belongs to root and is not writable by others; `nobody` reads it in full."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is root's alone (0700)
    try:
        base.chmod(0o755)
        warm, target = base / "warm", base / "target"
        shutil.copytree(indexed_repo / ".codesift", warm)
        shutil.copytree(indexed_repo / ".codesift", target)
        for p in [target, *target.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        before = snapshot(target)
        proc = subprocess.run([sys.executable, "-c", NOBODY_SCRIPT, str(warm), str(target), json.dumps(READ_COMMANDS)],
                              capture_output=True, env=ENV, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        for args, code, output, exc in json.loads(proc.stdout):
            assert code == 0 and "Error" not in output, (args, output, exc)
        assert snapshot(target) == before
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base)


def test_status_of_an_empty_database_creates_nothing(tmp_path):
    index_dir = tmp_path / ".codesift"
    index_dir.mkdir()
    (index_dir / "index.db").write_bytes(b"")
    for args in (["status"], ["search", "x"], ["lookup", "x"], ["explore"]):
        assert "not a readable codesift index" in one_line_error(run_cli(*args, "--index-dir", str(index_dir)))
    assert (index_dir / "index.db").stat().st_size == 0
    assert sorted(p.name for p in index_dir.iterdir()) == ["index.db"]
