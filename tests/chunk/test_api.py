"""chunk_file as other stages call it: in worker processes, with results sent back."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from codesift.chunk import chunk_file
from tests.chunk.helpers import FIXTURES, read_fixture


def test_chunk_file_runs_in_spawned_workers():
    names = sorted(p.name for p in FIXTURES.iterdir())
    texts = [read_fixture(name) for name in names]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = list(pool.map(chunk_file, names, texts))
    assert remote == [chunk_file(name, text) for name, text in zip(names, texts)]


def test_path_is_stored_as_given_and_language_can_be_forced():
    result = chunk_file("src/a b/x.txt", "def f():\n    return 1\n", "python")
    assert [(c.path, c.language, c.symbol) for c in result.chunks] == [("src/a b/x.txt", "python", "f")]


def test_chunk_file_is_safe_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(p.name for p in FIXTURES.iterdir()) * 4
    texts = [read_fixture(name) for name in names]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(chunk_file, names, texts))
    assert threaded == [chunk_file(name, text) for name, text in zip(names, texts)]
