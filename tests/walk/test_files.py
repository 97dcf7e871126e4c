"""Which files the walk reports instead of listing: binary, too large, unreadable."""
from __future__ import annotations

import os
import stat

import pytest

from codesift.errors import CodesiftError
from codesift.walk import walk

from tests.walk.helpers import listed, reasons, write

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_binary_by_extension_is_not_opened(tmp_path, monkeypatch):
    write(tmp_path, "logo.PNG", "not really an image, but the name says so")
    write(tmp_path, "model.safetensors", "{}")
    write(tmp_path, "lib/native.so", "x")
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    result = walk(tmp_path)
    assert reasons(result) == {"lib/native.so": "binary", "logo.PNG": "binary", "model.safetensors": "binary"}
    assert result.files == [] and opened == []


def test_binary_by_content(tmp_path):
    write(tmp_path, "data.weird", b"\x7fELF\x02\x01\x01\x00\x00\x00")
    write(tmp_path, "controls.txt", bytes(range(1, 9)) * 50)
    write(tmp_path, "colour.log", "\x1b[31mred\x1b[0m\n" * 20)  # ANSI escapes are text
    result = walk(tmp_path)
    assert reasons(result) == {"controls.txt": "binary", "data.weird": "binary"}
    assert listed(result) == ["colour.log"]


def test_too_large_reported_with_size_and_limit(tmp_path):
    write(tmp_path, "big.sql", "x" * 3_200_000)
    write(tmp_path, "just_over.txt", "x" * 1_000_001)
    write(tmp_path, "at_limit.txt", "x" * 1_000_000)
    write(tmp_path, "empty.py", "")
    result = walk(tmp_path)
    assert reasons(result) == {
        "big.sql": "too large (3.2 MB > 1 MB limit)",
        "just_over.txt": "too large (1,000,001 bytes > 1,000,000 bytes limit)",
    }
    assert listed(result) == ["at_limit.txt", "empty.py"]
    assert reasons(walk(tmp_path, max_file_bytes=2048))["at_limit.txt"] == "too large (1 MB > 2 KB limit)"


def test_source_file_fields(tmp_path):
    path = write(tmp_path, "pkg/mod.py", "print('hi')\n")
    (entry,) = walk(tmp_path).files
    st = path.stat()
    assert entry.rel == "pkg/mod.py"
    assert entry.path == path.resolve() and entry.path.is_absolute()
    assert (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_sorted_and_deterministic(tmp_path):
    for rel in ["b.py", "a/z.py", "a.py", "a/b/c.py", "B.py", "a-b.py", "_x.py"]:
        write(tmp_path, rel)
    write(tmp_path, "z.bin")
    write(tmp_path, "c.bin")
    first, second = walk(tmp_path), walk(tmp_path)
    assert listed(first) == sorted(listed(first)) == ["B.py", "_x.py", "a-b.py", "a.py", "a/b/c.py", "a/z.py", "b.py"]
    assert [s.rel for s in first.skipped] == ["c.bin", "z.bin"]
    assert first == second


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root can read files whatever their mode")
def test_unreadable_file_and_folder(tmp_path):
    write(tmp_path, "ok.py")
    secret = write(tmp_path, "secret.py")
    locked = write(tmp_path, "locked/inner.py").parent
    secret.chmod(0)
    locked.chmod(0)
    try:
        result = walk(tmp_path)
    finally:
        secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
        locked.chmod(stat.S_IRWXU)
    assert listed(result) == ["ok.py"]
    assert reasons(result) == {
        "locked": "unreadable directory (PermissionError)",
        "secret.py": "unreadable (PermissionError)",
    }


def test_unreadable_file_and_folder_simulated(tmp_path, monkeypatch):
    write(tmp_path, "ok.py")
    secret = str(write(tmp_path, "secret.py").resolve())
    locked = str(write(tmp_path, "locked/inner.py").parent.resolve())
    real_open, real_scandir = os.open, os.scandir

    def denying_open(path, *args, **kwargs):
        if os.fspath(path) == secret:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    def denying_scandir(path):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", denying_open)
    monkeypatch.setattr(os, "scandir", denying_scandir)
    result = walk(tmp_path)
    assert listed(result) == ["ok.py"]
    assert reasons(result) == {
        "locked": "unreadable directory (PermissionError)",
        "secret.py": "unreadable (PermissionError)",
    }


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos")
def test_special_files_skipped_silently(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    write(tmp_path, "a.py")
    result = walk(tmp_path)  # would hang if the fifo were opened
    assert listed(result) == ["a.py"] and result.skipped == [] and result.ignored == 1


def test_root_must_be_an_existing_folder(tmp_path):
    with pytest.raises(CodesiftError, match="does not exist"):
        walk(tmp_path / "missing")
    with pytest.raises(CodesiftError, match="is not a folder"):
        walk(write(tmp_path, "file.py"))
