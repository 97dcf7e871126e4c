"""The whole Python standard library: every invariant on real code. (How fast is a benchmark's
question: tests/chunk/bench_stdlib.py; a wall-clock limit here failed on a busy machine.)"""
from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from codesift.chunk import chunk_file
from tests.chunk.bench_stdlib import stdlib_files
from tests.chunk.invariants import invariant_violations


@pytest.mark.slow
def test_stdlib_chunks_are_sound():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [(p.relative_to(root).as_posix(), p.read_text("utf-8", "surrogateescape")) for p in stdlib_files(root)]
    if len(files) < 100:
        pytest.skip("no standard library sources here")
    results = [chunk_file(path, text) for path, text in files]
    problems = {path: found for (path, text), result in zip(files, results)
                if (found := invariant_violations(text, result))}
    assert problems == {}
