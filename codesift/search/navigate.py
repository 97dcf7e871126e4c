"""Ways for an agent to move around an index without a query: find a symbol by name, follow
its references, list the tree or a file's outline, and read one chunk whole.

All reference information is by name, as the chunkers record it: a call to `close()` is a
call to every symbol whose last component is `close`. Results can include false positives
and say so (`resolved: "by-name"`).
"""
from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass, field

from codesift.errors import CodesiftError
from codesift.index.store import ChunkRow, Store
from codesift.search.paths import index_root, normalize_chunk_id, safe_relative_path

def _check_name(name: str) -> str:
    name = name.strip()
    if not name or "\x00" in name:
        raise CodesiftError(f"{name!r} is not a symbol name; give a name like `load_config` or `Class.method`")
    return name


def _in_order(store: Store, rowids: list[int]) -> list[ChunkRow]:
    found = store.chunks_by_rowid(rowids)
    return [found[r] for r in rowids if r in found]


# --- lookup ---------------------------------------------------------------------------
def lookup(store: Store, name: str, prefix: bool = False, limit: int = 50) -> list[ChunkRow]:
    """Chunks defining symbol `name`: the qualified name (`Class.method`) or a trailing part of it
    (`method` finds every `X.method`). With `prefix`, names starting with `name`, at the start or
    after any dot. Case-sensitive matches if there are any, else case-insensitive ones."""
    name = _check_name(name)
    for case_sensitive in (True, False):
        rows = _in_order(store, store.symbol_rowids(name, prefix, case_sensitive, limit))
        if rows:
            return rows
    return []


# --- refs -----------------------------------------------------------------------------
@dataclass
class Callee:
    name: str  # as called: the last component (`self.store.close()` -> "close")
    candidates: list[ChunkRow]  # chunks whose symbol ends with that name; empty: defined outside the index


@dataclass
class ImportRef:
    path: str
    line: int
    module: str
    name: str | None
    alias: str | None
    match: str  # "name", "module" or "name+module": which part of the import pointed at the symbol


@dataclass
class Refs:
    symbol: str
    definitions: list[ChunkRow]
    callers: list[ChunkRow] = field(default_factory=list)
    callees: list[Callee] = field(default_factory=list)
    imports: list[ImportRef] = field(default_factory=list)
    total_callers: int = 0  # before the limit
    total_imports: int = 0
    resolved: str = "by-name"
    note: str = ("references are matched by name only: a call or import of another symbol with the same "
                 "name counts too, so expect some false positives (and misses for dynamic calls)")


def refs(store: Store, symbol: str, limit: int = 50) -> Refs:
    """Who calls `symbol`, what it calls (each name resolved to candidate definitions), and which
    files import it or its module. Matching is by name; see `Refs.note`."""
    symbol = _check_name(symbol)
    last = symbol.rsplit(".", 1)[-1]
    out = Refs(symbol, lookup(store, symbol, limit=limit))
    callers, out.total_callers = store.caller_rowids(last, limit)
    out.callers = _in_order(store, callers)
    if out.definitions:
        names = store.called_names([c.rowid for c in out.definitions])
        defined = _definitions_by_last_name(store, set(names))
        out.callees = [Callee(n, defined.get(n, [])) for n in dict.fromkeys(names)]
    imports = _imports_of(store, symbol, out.definitions)
    out.imports, out.total_imports = imports[:limit], len(imports)
    return out


def _definitions_by_last_name(store: Store, names: set[str], per_name: int = 10) -> dict[str, list[ChunkRow]]:
    """name -> chunks whose symbol's last component is exactly that name (one scan of the symbols)."""
    rowids: dict[str, list[int]] = defaultdict(list)
    for rowid, sym in store.symbols():
        last = sym.rsplit(".", 1)[-1]
        if last in names and len(rowids[last]) < per_name:
            rowids[last].append(rowid)
    rows = store.chunks_by_rowid(r for ids in rowids.values() for r in ids)
    return {name: [rows[r] for r in ids] for name, ids in rowids.items()}


def module_names(path: str) -> set[str]:
    """Dotted names a file may be imported by: `src/pkg/util.py` -> src.pkg.util, pkg.util, util."""
    stem = posixpath.splitext(path)[0].split("/")
    if len(stem) > 1 and stem[-1] in ("__init__", "index", "mod"):
        stem = stem[:-1]
    return {".".join(stem[i:]) for i in range(len(stem))}


def _normalize_module(module: str) -> str:
    """`.config`, `./config.js`, `crate::config`, `"config.h"` -> `config`."""
    m = module.strip()
    if "/" in m:
        m = posixpath.splitext(m)[0] if posixpath.splitext(m)[1] in (".js", ".ts", ".h", ".hpp") else m
        m = m.replace("/", ".")
    elif m.endswith((".h", ".hpp")):
        m = posixpath.splitext(m)[0]
    m = m.replace("::", ".").lstrip(".")
    for head in ("crate.", "self.", "super."):
        while m.startswith(head):
            m = m[len(head):]
    return m


def _imports_of(store: Store, symbol: str, definitions: list[ChunkRow]) -> list[ImportRef]:
    top = symbol.split(".", 1)[0]  # `Class.method` is imported as `Class`
    modules = set().union(*(module_names(c.path) for c in definitions)) if definitions else set()
    own = {c.path for c in definitions}
    found = []
    for path, module, name, alias, line in store.imports():
        if path in own:
            continue
        m = _normalize_module(module)
        by_module = m in modules or (name is not None and f"{m}.{name}".lstrip(".") in modules)
        by_name = name == top
        if by_name or by_module:
            match = "name+module" if by_name and by_module else "name" if by_name else "module"
            found.append(ImportRef(path, line, module, name, alias, match))
    return found


# --- explore --------------------------------------------------------------------------
@dataclass
class FileEntry:
    path: str
    language: str
    lines: int
    chunks: int
    tokens: int


@dataclass
class Tree:
    folder: str  # "" for the root
    folders: list[dict]  # {"path", "files", "chunks", "tokens", "languages": {lang: files}}
    files: list[FileEntry]  # empty when there were more than `max_files`
    total_files: int
    omitted_files: int = 0


@dataclass
class Outline:
    file: FileEntry
    chunks: list[ChunkRow]


def explore(store: Store, path: str | None = None, max_files: int = 500) -> Tree | Outline:
    """With no path (or a folder), the indexed files below it with chunk counts and languages;
    with a file path, that file's outline: its chunks in order."""
    rel = safe_relative_path(index_root(store), path) if path else ""
    files = _file_entries(store, rel)
    if len(files) == 1 and files[0].path == rel:
        return Outline(files[0], list(store.iter_chunks(rel)))
    if rel and not files:
        raise CodesiftError(f"{rel!r} is not an indexed file or folder; call explore with no path to list the "
                            "indexed files (ignored, binary and oversized files are not indexed)")
    folders: dict[str, dict] = {}
    for f in files:
        parts = f.path.split("/")[:-1]
        for depth in range(len(rel.split("/")) if rel else 0, len(parts) + 1):
            key = "/".join(parts[:depth])
            agg = folders.setdefault(key, {"path": key, "files": 0, "chunks": 0, "tokens": 0,
                                           "languages": defaultdict(int)})
            agg["files"] += 1
            agg["chunks"] += f.chunks
            agg["tokens"] += f.tokens
            agg["languages"][f.language] += 1
    for agg in folders.values():
        agg["languages"] = dict(sorted(agg["languages"].items(), key=lambda kv: (-kv[1], kv[0])))
    shown = files if len(files) <= max_files else []
    return Tree(rel, [folders[k] for k in sorted(folders)], shown, len(files), len(files) - len(shown))


def _file_entries(store: Store, rel: str) -> list[FileEntry]:
    return [FileEntry(*r) for r in store.file_entries(rel)]


# --- get_chunk ------------------------------------------------------------------------
def get_chunk(store: Store, id_or_ref: str) -> ChunkRow:
    """One chunk, content included, by its 64-hex id or a unique prefix of it (the 12-hex ref)."""
    key = normalize_chunk_id(id_or_ref)
    chunk = store.chunk_by_id(key)
    if chunk is None:
        n = store.count_id_prefix(key)
        if n > 1:
            raise CodesiftError(f"ref {key!r} matches {n} chunks; give more characters of the id")
        raise CodesiftError(f"no chunk with id or ref {key!r}; the index may have changed since you got it: "
                            "search or lookup again for current refs")
    safe_relative_path(index_root(store), chunk.path)  # the index itself should never point outside
    return chunk
