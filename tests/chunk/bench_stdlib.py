"""Chunk the Python standard library in one process and report time, files, chunks, lines per chunk.

    python -m tests.chunk.bench_stdlib [STDLIB_DIR] [--check]
"""
from __future__ import annotations

import sys
import sysconfig
import time
from pathlib import Path

from codesift.chunk import chunk_file

SKIPPED_DIRS = {"test", "tests", "site-packages"}


def stdlib_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1]))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0] if args else sysconfig.get_paths()["stdlib"])
    files = [(p.relative_to(root).as_posix(), p.read_text("utf-8", "surrogateescape")) for p in stdlib_files(root)]
    started = time.perf_counter()
    results = [chunk_file(path, text) for path, text in files]
    elapsed = time.perf_counter() - started
    chunks = [c for r in results for c in r.chunks]
    size = sum(len(t.encode("utf-8", "surrogateescape")) for _, t in files)
    print(f"{len(files)} files, {size / 1e6:.1f} MB, {elapsed:.2f} s: {len(chunks)} chunks, "
          f"{sum(c.n_lines for c in chunks) / len(chunks):.1f} mean lines per chunk, "
          f"{sum(len(r.imports) for r in results)} imports")
    if "--check" in sys.argv:
        from tests.chunk.invariants import invariant_violations

        bad = 0
        for (path, text), result in zip(files, results):
            problems = invariant_violations(text, result)
            if problems:
                bad += 1
                print(path, problems[:3])
        print(f"{bad} files with invariant violations")


if __name__ == "__main__":
    main()
