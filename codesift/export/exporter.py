"""Exporting an index as plain files an agent (or a person) can read without codesift:

    llm.md             how to use the export, then an outline of every file
    manifest.llm.tsv   one row per chunk: ref, path, lines, kind, symbol or heading, tokens
    chunks/<ref>.md    each chunk: the YAML header of seed document 000, a blank line, the content

The output depends only on the index's content: no timestamps, fixed order, so the same
tree exports to byte-identical files (and, with zip=True, a byte-identical archive).
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from codesift.chunk.model import REF_LENGTH, symbol_or_heading
from codesift.errors import CodesiftError
from codesift.export.archive import write_zip
from codesift.export.header import render_header
from codesift.index.store import ChunkRow, Store

GUIDE = """# Code export for agents

This folder holds every indexed chunk of one source tree, as plain files.

How to use it:
1. Skim the outline below (or grep `manifest.llm.tsv`, one row per chunk: ref, path,
   lines, kind, symbol_or_heading, token_estimate) to find the files and symbols you need.
2. Read a chunk with `chunks/<ref>.md`: a YAML header (path, lines, symbol, heading_path,
   content_sha256, ...), a blank line, then the chunk's exact source lines.
3. Cite code as `path:start-end`; line numbers are the source file's.

Token counts are estimates (about 4 characters per token).

## Outline
"""

CALLABLE_KINDS = {"function", "method"}
MANIFEST_COLUMNS = ("ref", "path", "lines", "kind", "symbol_or_heading", "token_estimate")
EXPORT_FILES = ("llm.md", "manifest.llm.tsv")


@dataclass
class ExportSummary:
    out: Path
    files: int
    chunks: int


def export_index(store: Store, out_dir: str | Path, zip: bool = False) -> ExportSummary:
    """Write the export of `store` to the folder `out_dir`, or with `zip` to `out_dir`.zip."""
    out_dir = Path(out_dir)
    chunks = sorted(store.iter_chunks(), key=lambda c: (c.path, c.start_line, c.end_line, c.id))
    files = {path: (row.language, row.n_lines) for path, row in store.files().items()}
    refs = unique_refs([c.id for c in chunks])
    entries = _render(chunks, files, refs)
    if zip:
        target = out_dir if out_dir.suffix == ".zip" else out_dir.with_name(out_dir.name + ".zip")
        write_zip(target, entries, folder=target.stem)
    else:
        target = out_dir
        _write_folder(target, entries)
    return ExportSummary(target, len({c.path for c in chunks}), len(chunks))


def _render(chunks: list[ChunkRow], files: dict[str, tuple[str, int]], refs: dict[str, str]) -> dict[str, bytes]:
    """Every output file's relative path and bytes."""
    entries: dict[str, bytes] = {}
    outline, manifest = [GUIDE], ["\t".join(MANIFEST_COLUMNS)]
    current = None
    for i, c in enumerate(chunks):
        ref = refs[c.id]
        if c.path != current:
            current = c.path
            language, n_lines = files.get(c.path, (c.language, 0))
            outline.append(f"\n### {c.path} ({language}, {n_lines} lines)\n")
        outline.append(f"- {ref} ({c.start_line}-{c.end_line}) {outline_label(c)}\n")
        manifest.append("\t".join(_tsv(v) for v in (ref, c.path, f"{c.start_line}-{c.end_line}", c.kind,
                                                      symbol_or_heading(c), str(c.token_estimate))))
        body = c.content.encode("utf-8", "surrogatepass")
        header = render_header({
            "chunk_index": i, "ref": ref, "id": c.id, "slug": slug(c), "path": c.path, "kind": c.kind,
            "lines": [c.start_line, c.end_line], "token_estimate": c.token_estimate,
            "content_sha256": hashlib.sha256(body).hexdigest(), "compacted": False,
            "heading_path": list(c.heading_path), "symbol": c.symbol, "address": None, "asset_path": None})
        entries[f"chunks/{ref}.md"] = header.encode("utf-8", "surrogatepass") + body
    entries["llm.md"] = "".join(outline).encode("utf-8", "surrogatepass")
    entries["manifest.llm.tsv"] = ("\n".join(manifest) + "\n").encode("utf-8", "surrogatepass")
    return entries


def outline_label(c: ChunkRow) -> str:
    """`name()` for functions and methods, `Name (class)` for other code, `A > B > C` for headings."""
    if c.symbol:
        return f"{c.symbol}()" if c.kind in CALLABLE_KINDS else f"{c.symbol} ({c.kind})"
    return symbol_or_heading(c) or f"({c.kind})"


def _tsv(value: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", value)


def _slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # é -> e
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def slug(c: ChunkRow) -> str:
    """A readable name: the path without extension, `--`, then the symbol or innermost heading
    (or, for a chunk with neither, its kind and lines)."""
    base = _slugify(posixpath.splitext(c.path)[0]) or "file"
    label = c.symbol or (c.heading_path[-1] if c.heading_path else "")
    tail = _slugify(label) or f"{c.kind}-{c.start_line}-{c.end_line}"
    return f"{base[:60].strip('-')}--{tail[:60].strip('-')}"


def unique_refs(ids: list[str], length: int = REF_LENGTH) -> dict[str, str]:
    """id -> ref: the 12-character prefix, longer where two ids share it (so file names never clash)."""
    refs: dict[str, str] = {}
    by_prefix: dict[str, list[str]] = {}
    for i in ids:
        by_prefix.setdefault(i[:length], []).append(i)
    for prefix, group in by_prefix.items():
        if len(group) == 1:
            refs[group[0]] = prefix
            continue
        n = length
        while len({i[:n] for i in group}) < len(group):
            n += 4
        refs.update((i, i[:n]) for i in group)
    return refs


def _write_folder(out: Path, entries: dict[str, bytes]) -> None:
    """Write the export, replacing a previous export in `out` (and refusing any other folder)."""
    if out.exists():
        if not out.is_dir():
            raise CodesiftError(f"{out} exists and is not a folder; choose another output path")
        if any(out.iterdir()) and not (out / "manifest.llm.tsv").is_file():
            raise CodesiftError(f"{out} is not empty and holds no previous codesift export; "
                                "choose a new or empty folder")
        shutil.rmtree(out / "chunks", ignore_errors=True)  # stale chunk files from the last export
        for name in EXPORT_FILES:
            (out / name).unlink(missing_ok=True)
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    for rel, data in sorted(entries.items()):
        (out / rel).write_bytes(data)
