#!/usr/bin/env python3
"""N distinct copies of a source tree, for measuring indexing at scale.

Copy k of every file has each `def`/`class` line (and each Markdown heading) tagged with a comment
naming the copy, so no chunk's text repeats across copies and nothing is deduplicated: N copies
cost N times the embedding work of one.

  python benchmarks/scale_corpus.py SRC OUT --copies 8
"""
from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

_DEF = re.compile(r"^(\s*(?:async\s+def|def|class)\s.*?)(\s*)$")


def tag_python(text: str, copy: int) -> str:
    return "\n".join(_DEF.sub(rf"\1  # copy {copy}\2", line) for line in text.split("\n"))


def build(src: Path, out: Path, copies: int) -> tuple[int, int]:
    """Write the copies under out/copy-00 ... and return (files, bytes)."""
    if out.exists():
        shutil.rmtree(out)
    files = size = 0
    for k in range(copies):
        for p in sorted(src.rglob("*")):
            rel_parts = p.relative_to(src).parts
            if not p.is_file() or p.is_symlink() or any(x == "__pycache__" or x.startswith(".codesift") for x in rel_parts):
                continue
            target = out / f"copy-{k:02d}" / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            data = p.read_bytes()
            if p.suffix == ".py":
                data = tag_python(data.decode("utf-8", "surrogateescape"), k).encode("utf-8", "surrogateescape")
            target.write_bytes(data)
            files += 1
            size += len(data)
    return files, size


def build_once(src: Path, out: Path, copies: int) -> tuple[int, int]:
    """`build`, unless `out` was built by it already (the corpus is the same for every run)."""
    marker = out / ".built"
    if marker.exists():
        files, size = map(int, marker.read_text().split())
        return files, size
    files, size = build(src, out, copies)
    marker.write_text(f"{files} {size}")
    return files, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--copies", type=int, default=1)
    args = ap.parse_args()
    files, size = build(args.src, args.out, args.copies)
    print(f"{args.copies} copies of {args.src}: {files} files, {size / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
