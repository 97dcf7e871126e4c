"""How chunks and results are shown: labels, JSON shapes and notes, shared by the CLI (text and
--json), the MCP server and the export, so that all speak the same way."""
from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Sequence

from codesift.chunk.names import symbol_or_heading
from codesift.index.store import ChunkRow
from codesift.walk.roles import SOURCE

if TYPE_CHECKING:  # a search shows none of these: navigate is imported where they are
    from codesift.search.navigate import Definition, Lines, Outline, Refs, Tree


def chunk_label(c: ChunkRow) -> str:
    """What a person calls the chunk: its symbol, else its heading breadcrumb, else its kind."""
    return symbol_or_heading(c) or c.kind


def chunk_meta(c: ChunkRow) -> dict:
    """A chunk without its content: enough to cite it and to fetch it with get_chunk."""
    return {"ref": c.ref, "id": c.id, "path": c.path, "start_line": c.start_line, "end_line": c.end_line,
            "kind": c.kind, "language": c.language, "role": shown_role(c), "symbol": c.symbol,
            "heading_path": list(c.heading_path) if c.heading_path else None, "part": c.part,
            "tokens": c.token_estimate}


def shown_role(c: ChunkRow) -> str | None:
    """The file's role where it is worth a reader's attention: anything but plain source."""
    return None if c.role == SOURCE else c.role


def index_note(searcher) -> str | None:
    """What a reader of results should know about the index they came from, if anything."""
    if searcher.incomplete:
        return ("the index is incomplete (indexing was interrupted or is running): results may miss files; "
                "run `codesift index` to finish it")
    if searcher.outdated:
        return ("the index was built by an older codesift; run `codesift index` to bring it up to date "
                "(text that has not changed is not embedded again)")
    return None


def freshness_note(changed: dict[str, str], shown: int = 3) -> str | None:
    """What a reader should know about result files edited or deleted since they were indexed."""
    if not changed:
        return None
    listed = ", ".join(f"{p} {why}" for p, why in list(changed.items())[:shown])
    more = f" and {len(changed) - shown} more" if len(changed) > shown else ""
    return (f"{len(changed)} result file(s) changed since indexing ({listed}{more}); "
            "run `codesift index` to update the index")


def folder_name(folder: str) -> str:
    """A folder as users read it: the root is "."."""
    return folder or "."


def freshness_dict(fresh, listed: int = 5) -> dict:
    """How fresh the index is, as JSON: indexed_at; changed_files, the indexed files seen edited or
    deleted on disk since (the first few named in `changed`); changed_folders, the folders where
    files were added, removed or renamed since (the first few in `folders`); and `checked`, which
    files were looked at: "every file", or "results and folders" (a search's own files, and those in
    the changed folders)."""
    out: dict = {"indexed_at": fresh.indexed_at, "changed_files": len(fresh.changed),
                 "checked": "every file" if fresh.every_file else "results and folders"}
    if fresh.changed:
        out["changed"] = [f"{p} {why}" for p, why in list(fresh.changed.items())[:listed]]
    if fresh.folders:
        out["changed_folders"] = len(fresh.folders)
        out["folders"] = [folder_name(f) for f in fresh.folders[:listed]]
    return without_nulls(out)


def freshness_line(fresh, listed: int = 3) -> str:
    """How fresh the index is, in one line for people and agents."""
    when = f"index updated {fresh.indexed_at}" if fresh.indexed_at else "index never completed"
    if not fresh.changed and not fresh.folders:
        return f"{when}; no indexed file changed since" if fresh.every_file else \
            f"{when}; no result file or folder changed since"
    parts = []
    if fresh.changed:
        names = ", ".join(f"{p} {why}" for p, why in list(fresh.changed.items())[:listed])
        more = f" and {len(fresh.changed) - listed} more" if len(fresh.changed) > listed else ""
        parts.append(f"{len(fresh.changed)} indexed file(s) changed since ({names}{more})")
    if fresh.folders:
        names = ", ".join(folder_name(f) for f in fresh.folders[:listed])
        more = f" and {len(fresh.folders) - listed} more" if len(fresh.folders) > listed else ""
        parts.append(f"files added, removed or renamed in {len(fresh.folders)} folder(s) ({names}{more})")
    return f"{when}; {'; '.join(parts)}; `codesift index` or `codesift watch` updates it"


def changed_results(fresh, results: Sequence) -> dict[str, str]:
    """Those of `fresh.changed` (a Freshness that checked these results' files) that are results' files."""
    paths = {r.chunk.path for r in results}
    return {p: why for p, why in fresh.changed.items() if p in paths}


def result_notes(searcher, results: Sequence, fresh) -> str | None:
    """Every note for one search's results: the index's state, then the freshness of their files
    (`fresh`: a Freshness that checked them, `searcher.freshness(their paths)`)."""
    notes = [index_note(searcher), freshness_note(changed_results(fresh, results))]
    return " ".join(n for n in notes if n) or None


def search_response(query: str, results: Sequence, max_tokens: int | None, mode: str | None = None,
                    note: str | None = None, fresh=None) -> dict:
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
    if fresh is not None:
        out["index"] = freshness_dict(fresh)
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
    """References as JSON. Callees are only names the index defines; built-in and unresolved names
    are counted, not listed; imports of other names from the same module are left out (counted)."""
    return {
        "symbol": r.symbol,
        "resolved": r.resolved,
        "note": r.note,
        "definitions": [chunk_brief(c) for c in r.definitions],
        "callers": [chunk_brief(c) for c in r.callers],
        "callees": [{"name": c.name, "ambiguous": len(c.candidates) > 1,
                     "candidates": [chunk_brief(x) for x in c.candidates]} for c in r.callees],
        "imports": [{k: v for k, v in asdict(i).items() if v is not None} for i in r.imports],
        "total_callers": r.total_callers,
        "total_imports": r.total_imports,
        "unresolved_callees": r.unresolved_callees,
        "builtin_callees": r.builtin_callees,
        "dropped_imports": r.dropped_imports,
    }


def explore_dict(result: Tree | Outline) -> dict:
    from codesift.search.navigate import Outline

    if isinstance(result, Outline):
        return {"type": "outline", "file": asdict(result.file),
                "chunks": [{"ref": c.ref, "kind": c.kind, "label": chunk_label(c), "symbol": c.symbol,
                            "heading_path": list(c.heading_path) if c.heading_path else None,
                            "start_line": c.start_line, "end_line": c.end_line, "tokens": c.token_estimate}
                           for c in result.chunks]}
    out = {"type": "tree", "folder": result.folder, "total_files": result.total_files,
           "folders": result.folders, "files": [asdict(f) for f in result.files]}
    if result.depth is not None:
        out["depth"] = result.depth
    if result.omitted_folders:
        out["omitted_folders"] = result.omitted_folders
    if result.omitted_files:
        out["omitted_files"] = result.omitted_files
        out["note"] = (f"{result.omitted_files} files" + (f" and {result.omitted_folders} folders"
                                                        if result.omitted_folders else "")
                       + " not listed (counted in their folders); call explore with a folder path from "
                         "`folders` to list what is below it")
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


# --- search results for agents (MCP) --------------------------------------------------------
def _result_head(rank: int, f) -> str:
    c = f.result.chunk
    label = chunk_label(c)
    what = f"{label} ({c.kind})" if label != c.kind else c.kind
    role = f" [{c.role}]" if shown_role(c) else ""
    return f"[{rank}] {c.ref} {c.path}:{c.start_line}-{c.end_line} {what}{role}" + (
        " [no content]" if f.shown == "none" else "")


def search_text(query: str, mode: str, fitted: Sequence, omitted: int, note: str | None = None,
                fresh=None) -> str:
    """Search results as compact text for an agent: per result a head line (rank, ref, path:lines,
    symbol or heading, kind) and its content as is; then what was left out, and how to get it."""
    out = [f"{len(fitted)} results for {query!r} ({mode})"]
    for rank, f in enumerate(fitted, 1):
        out.append(_result_head(rank, f))
        if f.content:
            out.append(f.content.rstrip("\n"))
    if any(f.shown == "none" for f in fitted):
        out.append("[no content]: the budget was spent; get_chunk REF returns it")
    if omitted:
        out.append(f"{omitted} more results not sent: raise max_tokens or lower k")
    if note:
        out.append(f"note: {note}")
    if fresh is not None:
        out.append(freshness_line(fresh))
    return "\n".join(out)


def search_json(query: str, mode: str, fitted: Sequence, omitted: int, max_tokens: int,
                note: str | None = None, fresh=None) -> dict:
    """The same results as one JSON object, for programs; fields without a value are not sent."""
    results = []
    for f in fitted:
        c = f.result.chunk
        item = {"ref": c.ref, "path": c.path, "start_line": c.start_line, "end_line": c.end_line, "kind": c.kind,
                "role": shown_role(c), "symbol": c.symbol, "heading_path": list(c.heading_path) if c.heading_path else None,
                "score": round(float(f.result.score), 4), "shown": f.shown, "content": f.content or None}
        results.append({k: v for k, v in item.items() if v is not None})
    out: dict = {"query": query, "mode": mode, "max_tokens": max_tokens, "results": results}
    if omitted:
        out["omitted"] = omitted
    if note:
        out["note"] = note
    if fresh is not None:
        out["index"] = freshness_dict(fresh)
    return out


def without_nulls(obj):
    """`obj` with every None-valued key dropped, at any depth: what an agent need not read."""
    if isinstance(obj, dict):
        return {k: without_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [without_nulls(v) for v in obj]
    return obj


def similar_dict(chunk: ChunkRow, results: Sequence) -> dict:
    """`similar` as JSON: the chunk compared, then each result with its cosine score."""
    return {"target": chunk_brief(chunk),
            "results": [{**chunk_brief(r.chunk), "score": round(float(r.score), 4)} for r in results]}
