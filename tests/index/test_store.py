"""The store on its own: schema creation under concurrency, transactions."""
from __future__ import annotations

import threading

import pytest

from codesift.index.store import SCHEMA_VERSION, Store


def test_concurrent_creation_migrates_once(tmp_path):
    errors, barrier = [], threading.Barrier(6)

    def open_store():
        try:
            barrier.wait()
            with Store(tmp_path / "idx", create=True) as s:
                assert s.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_transaction_rolls_back_on_error(tmp_path):
    with Store(tmp_path, create=True) as s:
        s.set_meta(a="1")
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.set_meta(a="2")
                raise RuntimeError("boom")
        assert s.get_meta("a") == "1"
