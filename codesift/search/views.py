"""How chunks and results are shown: labels, JSON shapes and notes, shared by the CLI (text and
--json), the MCP server and the export, so that all speak the same way."""
from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

from codesift.chunk.model import symbol_or_heading
from codesift.index.store import ChunkRow
from codesift.search.navigate import Definition, Lines, Outline, Refs, Tree


def chunk_label(c: ChunkRow) -> str:
    """What a person calls the chunk: its symbol, else its heading breadcrumb, else its kind."""
    return symbol_or_heading(c) or c.kind


def chunk_meta(c: ChunkRow) -> dict:
    """A chunk without its content: enough to cite it and to fetch it with get_chunk."""
    return {"ref": c.ref, "id": c.id, "path": c.path, "start_line": c.start_line, "end_line": c.end_line,
            "kind": c.kind, "language": c.language, "symbol": c.symbol,
            "heading_path": list(c.heading_path) if c.heading_path else None, "part": c.part,
            "tokens": c.token_estimate}


def index_note(searcher) -> str | None:
    """What a reader of results should know about the index they came from, if anything."""
    if searcher.incomplete:
        return ("the index is incomplete (indexing was interrupted or is running): results may miss files; "
                "run `codesift index` to finish it")
    if searcher.outdated:
        return ("the index was built by an older codesift; run `codesift index` to bring it up to date "
                "(text that has not changed is not embedded again)")
    return None


def search_response(query: str, results: Sequence, max_tokens: int | None, mode: str | None = None,
                    note: str | None = None) -> dict:
    """A search as one JSON object: {query, results}; with a token budget each result also carries
    its inline content (shown: all, partial or none)."""
    out: dict = {"query": query}
    if mode is not None:
        out["mode"] = mode
    if max_tokens is None:
        out["results"] = [r.to_dict() for r in results]
    else:
        from codesift.search.budget import budgeted

        items = [b.to_dict() for b in budgeted(results, max_tokens)]
        out.update(max_tokens=max_tokens, used_tokens=sum(b["tokens"] for b in items), results=items)
    if note:
        out["note"] = note
    return out


def chunk_dict(c: ChunkRow, content: bool = True) -> dict:
    out = chunk_meta(c)
    if content:
        out["content"] = c.content
    return out


def chunk_brief(c: ChunkRow) -> dict:
    """A chunk in a long list: where it is and what it is, with the ref to fetch it."""
    return {"ref": c.ref, "path": c.path, "start_line": c.start_line, "end_line": c.end_line, "kind": c.kind,
            "symbol": c.symbol}


def refs_dict(r: Refs) -> dict:
    return {
        "symbol": r.symbol,
        "resolved": r.resolved,
        "note": r.note,
        "definitions": [chunk_brief(c) for c in r.definitions],
        "callers": [chunk_brief(c) for c in r.callers],
        "callees": [{"name": c.name, "resolved": r.resolved if c.candidates else "not-in-index",
                     "ambiguous": len(c.candidates) > 1, "candidates": [chunk_brief(x) for x in c.candidates]}
                    for c in r.callees],
        "imports": [asdict(i) for i in r.imports],
        "total_callers": r.total_callers,
        "total_imports": r.total_imports,
    }


def explore_dict(result: Tree | Outline) -> dict:
    if isinstance(result, Outline):
        return {"type": "outline", "file": asdict(result.file),
                "chunks": [{"ref": c.ref, "kind": c.kind, "label": chunk_label(c), "symbol": c.symbol,
                            "heading_path": list(c.heading_path) if c.heading_path else None,
                            "start_line": c.start_line, "end_line": c.end_line, "tokens": c.token_estimate}
                           for c in result.chunks]}
    out = {"type": "tree", "folder": result.folder, "total_files": result.total_files,
           "folders": result.folders, "files": [asdict(f) for f in result.files]}
    if result.omitted_files:
        out["omitted_files"] = result.omitted_files
        out["note"] = (f"{result.omitted_files} files not listed; call explore with a folder path "
                       "from `folders` to list the files below it")
    return out


def lines_dict(lines: Lines) -> dict:
    return {"path": lines.path, "language": lines.language, "start_line": lines.start_line,
            "end_line": lines.end_line, "total_lines": lines.total_lines, "content": lines.content}


def definition_dict(d: Definition) -> dict:
    """A whole definition: where it is, the refs of its chunks (parts, members) and its full text."""
    return {"symbol": d.symbol, "kind": d.kind, "path": d.lines.path, "language": d.lines.language,
            "start_line": d.lines.start_line, "end_line": d.lines.end_line, "refs": [c.ref for c in d.chunks],
            "content": d.lines.content}


def definition_label(d: Definition) -> str:
    """One line naming a definition, for people: path:lines, symbol, kind and how many chunks it joins."""
    parts = f", {len(d.chunks)} chunks" if len(d.chunks) > 1 else ""
    return f"{d.lines.path}:{d.lines.start_line}-{d.lines.end_line}  {d.symbol or d.kind}  [{d.kind}{parts}]"
