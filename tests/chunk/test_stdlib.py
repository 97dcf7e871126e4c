"""The whole Python standard library: every invariant on real code, and the speed we promise."""
from __future__ import annotations

import sysconfig
import time
from pathlib import Path

import pytest

from codesift.chunk import chunk_file
from tests.chunk.bench_stdlib import stdlib_files
from tests.chunk.invariants import invariant_violations


@pytest.mark.slow
def test_stdlib_chunks_are_sound_and_fast():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [(p.relative_to(root).as_posix(), p.read_text("utf-8", "surrogateescape")) for p in stdlib_files(root)]
    if len(files) < 100:
        pytest.skip("no standard library sources here")
    started = time.perf_counter()
    results = [chunk_file(path, text) for path, text in files]
    assert time.perf_counter() - started < 10
    problems = {path: found for (path, text), result in zip(files, results)
                if (found := invariant_violations(text, result))}
    assert problems == {}
