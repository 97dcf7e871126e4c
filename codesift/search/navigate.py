"""Ways for an agent to move around an index without a query: find a symbol by name, follow
its references, list the tree or a file's outline, and read one chunk whole.

All reference information is by name, as the chunkers record it: a call to `close()` is a
call to every symbol whose last component is `close`. Results can include false positives
and say so (`resolved: "by-name"`).
"""
from __future__ import annotations

import builtins
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


# Names every program calls that no index defines usefully: listing them as callees is noise.
BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_")) | frozenset({
    # JavaScript / TypeScript globals
    "require", "console", "log", "parseInt", "parseFloat", "setTimeout", "setInterval", "clearTimeout",
    "clearInterval", "Array", "Object", "String", "Number", "Boolean", "Promise", "JSON", "Symbol", "Error",
    "Map", "Set", "Date", "Math", "RegExp", "structuredClone",
    # Rust, Go, C and C++ built-ins and macros
    "println", "print", "format", "vec", "panic", "assert", "assert_eq", "unwrap", "expect", "clone", "to_string",
    "append", "make", "new", "delete", "cap", "printf", "sprintf", "malloc", "free", "sizeof", "memcpy", "strlen",
})


@dataclass
class Refs:
    symbol: str
    definitions: list[ChunkRow]
    callers: list[ChunkRow] = field(default_factory=list)
    callees: list[Callee] = field(default_factory=list)  # only names defined in the index
    imports: list[ImportRef] = field(default_factory=list)
    total_callers: int = 0  # before the limit
    total_imports: int = 0
    unresolved_callees: int = 0  # names called that the index does not define (not listed)
    builtin_callees: int = 0  # built-in names called (len, print, console, ...: not listed)
    dropped_imports: int = 0  # imports from the symbol's module of other names, or of the name from elsewhere
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
        names = list(dict.fromkeys(store.called_names([c.rowid for c in out.definitions])))
        defined = _definitions_by_last_name(store, set(names) - BUILTIN_NAMES)
        for n in names:
            if n in BUILTIN_NAMES:
                out.builtin_callees += 1
            elif n in defined:
                out.callees.append(Callee(n, defined[n]))
            else:
                out.unresolved_callees += 1
    imports, out.dropped_imports = _imports_of(store, symbol, out.definitions)
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


def _imports_of(store: Store, symbol: str, definitions: list[ChunkRow]) -> tuple[list[ImportRef], int]:
    """(imports that bring in `symbol` or its module, how many other imports were looked at and left
    out). Kept: the name from the defining module (name+module) or from a package above it, as a
    re-export (name); the defining module itself (module). Left out: other names imported from
    that module, and the same name imported from an unrelated module. With no definition in the
    index, every import of the name is kept."""
    top = symbol.split(".", 1)[0]  # `Class.method` is imported as `Class`
    modules = set().union(*(module_names(c.path) for c in definitions)) if definitions else set()
    own = {c.path for c in definitions}
    found, dropped = [], 0
    for path, module, name, alias, line in store.imports():
        if path in own:
            continue
        m = _normalize_module(module)
        imports_module = (name is None and m in modules) or (name is not None and f"{m}.{name}".lstrip(".") in modules)
        from_home = m in modules
        from_above = not m or any(x.startswith(m + ".") for x in modules)  # `from pkg import X`: a re-export
        if name == top and (not modules or from_home or from_above):
            match = "name+module" if from_home else "name"
        elif imports_module:
            match = "module"
        else:
            dropped += name == top or (from_home and name is not None)
            continue
        found.append(ImportRef(path, line, module, name, alias, match))
    return found, dropped


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
    omitted_files: int = 0  # files below the folder not listed (too deep, or past the limit)
    omitted_folders: int = 0
    depth: int | None = None


@dataclass
class Outline:
    file: FileEntry
    chunks: list[ChunkRow]


def explore(store: Store, path: str | None = None, max_files: int = 500, depth: int | None = None,
            limit: int | None = None) -> Tree | Outline:
    """With no path (or a folder), the indexed files below it with chunk counts and languages;
    with a file path, that file's outline: its chunks in order.

    `depth` lists only folders and files that many levels below the folder (deeper ones count in
    their folder's totals); `limit` caps the folders and files listed (folders first). Without
    them, every folder is listed, and the files only if there are at most `max_files`."""
    if depth is not None and depth < 1 or limit is not None and limit < 1:
        raise CodesiftError("depth and limit must be 1 or more")
    rel = safe_relative_path(index_root(store), path) if path else ""
    files = _file_entries(store, rel)
    if len(files) == 1 and files[0].path == rel:
        return Outline(files[0], list(store.iter_chunks(rel)))
    if rel and not files:
        raise CodesiftError(f"{rel!r} is not an indexed file or folder; call explore with no path to list the "
                            "indexed files (ignored, binary and oversized files are not indexed)")
    base = len(rel.split("/")) if rel else 0
    folders: dict[str, dict] = {}
    for f in files:
        parts = f.path.split("/")[:-1]
        for level in range(base, len(parts) + 1):
            key = "/".join(parts[:level])
            agg = folders.setdefault(key, {"path": key, "files": 0, "chunks": 0, "tokens": 0,
                                           "languages": defaultdict(int)})
            agg["files"] += 1
            agg["chunks"] += f.chunks
            agg["tokens"] += f.tokens
            agg["languages"][f.language] += 1
    for agg in folders.values():
        agg["languages"] = dict(sorted(agg["languages"].items(), key=lambda kv: (-kv[1], kv[0])))
    listed = [folders[k] for k in sorted(folders)]
    if depth is None and limit is None:
        shown = files if len(files) <= max_files else []
        return Tree(rel, listed, shown, len(files), len(files) - len(shown))

    def below(p: str) -> int:  # levels below the folder asked for: its own files and subfolders are 1
        return len(p.split("/")) - base

    every = len(listed)
    listed = [d for d in listed if d["path"] == rel or depth is None or below(d["path"]) <= depth]
    shown = [f for f in files if depth is None or below(f.path) <= depth]
    if limit is not None:
        listed = listed[:limit]
        shown = shown[:max(0, limit - len(listed))]
    return Tree(rel, listed, shown, len(files), len(files) - len(shown), every - len(listed), depth)


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


# --- whole definitions and line ranges ---------------------------------------------------
# How many definitions one `get_symbol` returns: a common last name (`start`) can match many.
MAX_DEFINITIONS = 10


@dataclass
class Lines:
    """Lines start_line..end_line of an indexed file, as the index holds them."""

    path: str
    language: str
    start_line: int
    end_line: int
    total_lines: int  # in the file
    content: str


@dataclass
class Definition:
    """A symbol's complete definition: every part of a split symbol, or a class with its members,
    as one span of lines."""

    symbol: str | None
    kind: str
    chunks: list[ChunkRow]  # in line order; several for a split symbol or a class and its methods
    lines: Lines


def _file_entry(store: Store, path: str) -> FileEntry:
    rel = safe_relative_path(index_root(store), path)
    for f in _file_entries(store, rel):
        if f.path == rel:
            return f
    raise CodesiftError(f"{rel!r} is not an indexed file; `codesift explore` lists the indexed files")


def _lines_of(chunks: list[ChunkRow], f: FileEntry, start: int, end: int) -> Lines:
    """Lines start..end rebuilt from the chunks that hold them (a chunk's content is exactly its
    lines, or a piece of a line too long for one chunk: the pieces of a line, in the index's order,
    make it). Lines no chunk holds (blank lines between definitions) come back empty."""
    text: dict[int, str] = {}
    one_line: dict[int, list[str]] = {}  # the contents of the chunks of one line each, in order
    for c in chunks:
        if c.end_line >= start and c.start_line <= end:
            if c.start_line == c.end_line:
                one_line.setdefault(c.start_line, []).append(c.content)
                continue
            for i, line in enumerate(c.content.split("\n")):
                text.setdefault(c.start_line + i, line)
    for line, contents in one_line.items():
        # one: the whole line (maybe also in a neighbour's window); several: the line's pieces
        text.setdefault(line, contents[0] if len(contents) == 1 else "".join(contents))
    content = "\n".join(text.get(i, "") for i in range(start, end + 1))
    return Lines(f.path, f.language, start, end, f.lines, content)


def read_lines(store: Store, path: str, start: int = 1, end: int | None = None) -> Lines:
    """Lines start..end (1-based, inclusive; end clipped to the file) of the indexed file `path`,
    read from the index: what search and get_chunk answer from, even if the file changed since."""
    f = _file_entry(store, path)
    end = f.lines if end is None else min(end, f.lines)
    if start < 1 or start > end:
        raise CodesiftError(f"lines {start}-{end} are not in {f.path} (it has {f.lines} lines in the index); "
                            "give a range like 10-40 within them")
    return _lines_of(list(store.iter_chunks(f.path)), f, start, end)


def _starts_definition(c: ChunkRow, symbol: str) -> bool:
    """Whether `c` can open a definition of `symbol`: the symbol itself, unsplit or its part 1."""
    return c.symbol == symbol and (c.part is None or c.part.startswith("1/"))


def _continues(c: ChunkRow, head: ChunkRow) -> bool:
    """Whether `c` (of head's symbol) is a later piece of head's definition, such as a long
    function's own lines after a nested definition: the chunker gives those pieces the
    definition's header as context, and the header is in the head chunk."""
    header = c.context.rstrip("…").strip()
    return bool(header) and header in " ".join(head.content.split())


def _belongs(c: ChunkRow, symbol: str) -> bool:
    return c.symbol is not None and (c.symbol == symbol or c.symbol.startswith(symbol + "."))


def definition_of(store: Store, chunk: ChunkRow, chunks: list[ChunkRow] | None = None) -> Definition:
    """The whole definition `chunk` is part of: for a part of a split symbol, all its parts; for a
    class (or a function with nested definitions), its members too. A chunk with no symbol is
    its own definition."""
    f = _file_entry(store, chunk.path)
    chunks = chunks if chunks is not None else list(store.iter_chunks(chunk.path))
    symbol = chunk.symbol
    if not symbol or all(c.rowid != chunk.rowid for c in chunks):
        return Definition(chunk.symbol, chunk.kind, [chunk], _lines_of([chunk], f, chunk.start_line, chunk.end_line))
    # the file's definitions of `symbol`, as runs of consecutive chunks: the one holding `chunk`
    group: list[ChunkRow] = []
    for c in chunks:
        if not _belongs(c, symbol):
            if any(x.rowid == chunk.rowid for x in group):
                break
            group = []
            continue
        if _starts_definition(c, symbol) and not (group and _continues(c, group[0])):
            if any(x.rowid == chunk.rowid for x in group):
                break
            group = [c]
        elif group or c.rowid == chunk.rowid:
            group.append(c)
    members = group or [chunk]
    start, end = min(c.start_line for c in members), max(c.end_line for c in members)
    return Definition(symbol, members[0].kind, members, _lines_of(chunks, f, start, end))


def get_symbol(store: Store, name: str, limit: int = MAX_DEFINITIONS) -> tuple[list[Definition], int]:
    """(the complete definitions of symbol `name`, as `lookup` matches it, up to `limit`; how many
    there are). Parts of one split symbol make one definition."""
    found = lookup(store, name, limit=500)
    if not found:
        raise CodesiftError(f"no symbol named {name!r}; try `codesift lookup --prefix {name}`")
    out: list[Definition] = []
    seen: set[int] = set()
    by_path: dict[str, list[ChunkRow]] = {}
    total = 0
    for c in found:
        if c.rowid in seen:
            continue
        if c.path not in by_path:
            by_path[c.path] = list(store.iter_chunks(c.path))
        d = definition_of(store, c, by_path[c.path])
        seen.update(x.rowid for x in d.chunks)
        total += 1
        if len(out) < limit:
            out.append(d)
    return out, total


def chunk_at(store: Store, path: str, line: int, chunks: list[ChunkRow] | None = None) -> ChunkRow:
    """The chunk holding line `line` of `path`: the innermost symbol's, if several hold it."""
    f = _file_entry(store, path)
    chunks = chunks if chunks is not None else list(store.iter_chunks(f.path))
    here = [c for c in chunks if c.start_line <= line <= c.end_line]
    if not here:
        raise CodesiftError(f"line {line} of {f.path} is in no chunk (a blank line, or past its {f.lines} "
                            f"lines); try `codesift get {f.path} --lines {max(1, line - 5)}-{line + 5}`")
    return min(here, key=lambda c: (c.symbol is None, c.end_line - c.start_line))


def definition_at(store: Store, path: str, line: int) -> Definition:
    """The complete definition holding line `line` of `path`: the innermost symbol there."""
    chunks = list(store.iter_chunks(_file_entry(store, path).path))
    return definition_of(store, chunk_at(store, path, line, chunks), chunks)


def chunk_of(store: Store, target: str) -> ChunkRow:
    """The chunk a user points at: a ref (or id), or PATH:LINE."""
    location = parse_location(target)
    return chunk_at(store, *location) if location is not None else get_chunk(store, target)


def parse_location(text: str) -> tuple[str, int] | None:
    """`src/app.py:42` -> ("src/app.py", 42); None for anything else (a symbol like `ns::Foo`)."""
    path, sep, line = text.rpartition(":")
    if sep and path and line.isdigit() and int(line) > 0 and not path.endswith(":"):
        return path, int(line)
    return None


def is_indexed_file(store: Store, path: str) -> bool:
    try:
        _file_entry(store, path)
        return True
    except CodesiftError:
        return False


def looks_like_ref(text: str) -> bool:
    """Hex only, as long as a ref or id: meant as a chunk ref rather than a name."""
    try:
        normalize_chunk_id(text)
        return True
    except CodesiftError:
        return False
