#!/usr/bin/env python3
"""Export an indexed tree and check every chunk file (issue 5): the header parses as YAML with
all fields in order, `content_sha256` matches the content, the content is the chunk's, and
`lines` are the source file's lines.

  python benchmarks/export_check.py INDEXED_ROOT [--zip]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _results import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    args = ap.parse_args()

    from codesift.chunk.lines import split_lines
    from codesift.export import export_index
    from codesift.export.header import HEADER_KEYS
    from codesift.index.store import Store
    from codesift.walk import read_text

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as d, Store(args.root / ".codesift") as store:
        t0 = time.perf_counter()
        summary = export_index(store, Path(d) / "out")
        export_s = time.perf_counter() - t0
        chunks = {c.id: c for c in store.iter_chunks()}
        sources: dict[str, list[str]] = {}
        files = sorted((Path(d) / "out" / "chunks").glob("*.md"))
        for f in files:
            data = f.read_bytes()
            head, body = data[4:].split(b"\n---\n\n", 1)
            header = yaml.safe_load(head.decode("utf-8"))
            if list(header) != list(HEADER_KEYS):
                problems.append(f"{f.name}: header fields {list(header)}")
                continue
            c = chunks.get(header["id"])
            if c is None or body.decode("utf-8") != c.content:
                problems.append(f"{f.name}: content is not the chunk's")
            if header["content_sha256"] != hashlib.sha256(body).hexdigest():
                problems.append(f"{f.name}: content_sha256 mismatch")
            if header["path"] not in sources:
                sources[header["path"]] = split_lines(read_text(args.root / header["path"])[0])
            start, end = header["lines"]
            if "\n".join(sources[header["path"]][start - 1:end]) != body.decode("utf-8"):
                problems.append(f"{f.name}: lines {start}-{end} are not the source's")
    out = {"benchmark": "export_check", "root": str(args.root), "chunk_files": len(files), "index_chunks": len(chunks),
           "summary_chunks": summary.chunks, "export_s": round(export_s, 2), "problems": len(problems)}
    for p in problems[:20]:
        print(p)
    print(f"{len(files)} chunk files checked, {len(problems)} problems (export {export_s:.1f} s)")
    print(json.dumps(out))
    write_result("export_check", {**out, "problem_list": problems[:1000]})
    sys.exit(1 if problems or len(files) != len(chunks) else 0)


if __name__ == "__main__":
    main()
