"""Reading files as text, and telling text from binary."""
from __future__ import annotations

import codecs

import pytest

from codesift.walk import is_binary, read_text, walk

from tests.walk.helpers import listed, write


def test_clean_utf8(tmp_path):
    assert read_text(write(tmp_path, "a.py", "naïve = '✓'\r\n")) == ("naïve = '✓'\r\n", 0)


def test_bad_utf8_replaced_and_counted(tmp_path):
    path = write(tmp_path, "latin1.txt", "café résumé".encode("latin-1"))
    text, replaced = read_text(path)
    assert text == "caf\ufffd r\ufffdsum\ufffd" and replaced == 3


def test_real_replacement_characters_are_not_counted(tmp_path):
    assert read_text(write(tmp_path, "a.txt", "already \ufffd here")) == ("already \ufffd here", 0)


def test_utf8_bom_stripped(tmp_path):
    path = write(tmp_path, "bom.py", codecs.BOM_UTF8 + b"x = 1\n")
    assert read_text(path) == ("x = 1\n", 0)


def test_utf16_with_bom(tmp_path):
    little = write(tmp_path, "le.txt", codecs.BOM_UTF16_LE + "héllo\n".encode("utf-16-le"))
    big = write(tmp_path, "be.txt", codecs.BOM_UTF16_BE + "héllo\n".encode("utf-16-be"))
    assert read_text(little) == read_text(big) == ("héllo\n", 0)
    odd = write(tmp_path, "odd.txt", codecs.BOM_UTF16_LE + "hi".encode("utf-16-le") + b"!")
    assert read_text(odd) == ("hi\ufffd", 1)
    # UTF-16 files are text to the walk, despite their NUL bytes.
    assert listed(walk(tmp_path)) == ["be.txt", "le.txt", "odd.txt"]


def test_max_bytes_truncates_without_counting_a_cut_character(tmp_path):
    path = write(tmp_path, "a.txt", "aé✓")  # 1 + 2 + 3 bytes
    assert read_text(path, max_bytes=4) == ("aé", 0)
    assert read_text(path, max_bytes=6) == ("aé✓", 0)
    assert read_text(path, max_bytes=100) == ("aé✓", 0)


def test_unreadable_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError):
        read_text(tmp_path)


def test_is_binary():
    assert not is_binary(b"")
    assert not is_binary(b"def f():\n\treturn 1\n")
    assert not is_binary("ünïcode ✓\n".encode())
    assert is_binary(b"text\0more text")
    assert is_binary(b"\x01\x02\x03" + b"a" * 20)       # many control bytes
    assert not is_binary(b"\x0c" + b"a" * 100)           # one form feed is fine
    assert not is_binary(b"a" * 9000 + b"\0")            # only the first 8 KiB count
    assert not is_binary(codecs.BOM_UTF16_LE + "text\n".encode("utf-16-le"))
    assert is_binary(codecs.BOM_UTF16_LE + "\x01\x02\x03abc".encode("utf-16-le") * 10)
    assert is_binary(codecs.BOM_UTF32_LE + "text".encode("utf-32-le"))
