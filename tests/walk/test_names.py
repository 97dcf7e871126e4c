"""File and folder names that are not valid UTF-8: reported, never passed on (issue 14, #1)."""
from __future__ import annotations

import json
import os
import sqlite3

import pytest

from codesift.walk import walk

from tests.walk.helpers import listed, reasons, write

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX file names are bytes")


def make(root, rel: bytes, content: bytes = b"x = 1\n") -> None:
    path = os.path.join(os.fsencode(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def test_undecodable_names_are_reported_and_the_rest_is_listed(tmp_path):
    write(tmp_path, "a.py", "def f():\n  return 1\n")
    make(tmp_path, b"bad\xff.py")                 # the reproduction
    make(tmp_path, b"caf\xe9/inner.py")           # a Latin-1 folder name: not descended
    make(tmp_path, b"ok/\xed\xa0\x80.txt")        # an encoded surrogate is not UTF-8 either
    os.symlink(b"a.py", os.path.join(os.fsencode(tmp_path), b"link\xfe.py"))
    result = walk(tmp_path)
    assert listed(result) == ["a.py"]
    assert reasons(result) == {
        "bad\\xff.py": "undecodable file name",
        "caf\\xe9": "undecodable folder name",
        "link\\xfe.py": "undecodable file name",
        "ok/\\xed\\xa0\\x80.txt": "undecodable file name",
    }
    # What the walk hands on is plain text: no lone surrogates anywhere.
    texts = [f.rel for f in result.files] + [s.rel for s in result.skipped]
    json.dumps(texts, ensure_ascii=False).encode("utf-8")
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (rel TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(t,) for t in texts])


def test_ignored_undecodable_names_stay_silent(tmp_path):
    write(tmp_path, ".gitignore", "*.log\n")
    make(tmp_path, b"\xff.log")
    assert reasons(walk(tmp_path)) == {}


def test_undecodable_name_listed_through_a_decodable_link(tmp_path):
    make(tmp_path, b"data\xff.py", b"found = True\n")
    os.symlink(b"data\xff.py", os.path.join(os.fsencode(tmp_path), b"alias.py"))
    result = walk(tmp_path)
    assert listed(result) == ["alias.py"]
    assert reasons(result) == {"data\\xff.py": "undecodable file name"}


@pytest.mark.slow  # loads the model
def test_index_goes_on_past_an_undecodable_name(tmp_path):
    """End to end (the original failure: a tokenizer TypeError stopped the whole run, and an
    empty such file an SQLite UnicodeEncodeError)."""
    from codesift.index.indexer import index_tree
    from codesift.index.store import Store

    root = tmp_path / "t"
    write(root, "a.py", "def f():\n  return 1\n")
    make(root, b"bad\xff.py", b"x=1\n")
    make(root, b"empty\xfe.py", b"")
    summary = index_tree(root, device="cpu", workers=1)
    assert {s.rel: s.reason for s in summary.skipped} == {
        "bad\\xff.py": "undecodable file name", "empty\\xfe.py": "undecodable file name",
    }
    with Store(summary.index_dir, readonly=True) as store:
        assert list(store.files()) == ["a.py"]
        assert store.meta()["state"] == "complete"
