"""JSON forms of navigation results, shared by the CLI's --json output and the MCP server, so
that both speak the same shapes."""
from __future__ import annotations

from dataclasses import asdict

from codesift.index.store import ChunkRow
from codesift.search.navigate import Outline, Refs, Tree, chunk_label, chunk_meta


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
