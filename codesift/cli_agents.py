"""Command-line commands for navigating an index the way an agent does (lookup, refs, explore,
get), serving it over MCP, and exporting it. Thin like the rest of the CLI: each parses
options, calls one library function, and prints (human text, or JSON with --json).

They are plain click commands: `codesift.cli` adds them to the `codesift` group, and its
`search` takes `print_budgeted` from here for --max-tokens.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import click


INDEX_DIR_OPTION = click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                                envvar="CODESIFT_INDEX_DIR",
                                help="Index folder. Default: the nearest .codesift folder from the current "
                                     "directory up. [env: CODESIFT_INDEX_DIR]")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
NOT_UTF8 = "not valid UTF-8"


def utf8_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuses argv text that is not valid UTF-8 (Python hands such bytes on as lone surrogates),
    in one line: the search, tokenizer and database below it take only Unicode."""
    if value is not None and not_utf8(value):
        raise click.ClickException(f"{param.human_readable_name} is {NOT_UTF8} ({value!r}); give it as UTF-8 text")
    return value


def not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _open_store(index_dir: Path | None):
    from codesift.index.store import Store, locate_index

    return Store(locate_index(index_dir), readonly=True)


def _echo_json(obj: dict) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def no_match(message: str) -> NoReturn:
    """Nothing matched: say so on stderr and exit 1, as grep does, so that scripts can tell."""
    click.echo(message, err=True)
    raise SystemExit(1)


def _where(c) -> str:
    return click.style(f"{c.path}:{c.start_line}-{c.end_line}", fg="green")


def _chunk_line(c) -> str:
    from codesift.search.views import chunk_label

    return f"{c.ref}  {_where(c)}  {chunk_label(c)}  " + click.style(f"[{c.kind}]", dim=True)


@click.command()
@click.argument("name", callback=utf8_text)
@click.option("--prefix", is_flag=True, help="Match names starting with NAME (at the start or after any dot).")
@INDEX_DIR_OPTION
@JSON_OPTION
def lookup(name: str, prefix: bool, index_dir: Path | None, as_json: bool) -> None:
    """Where symbol NAME is defined: `Class.method`, or `method` for every `X.method`."""
    from codesift.search.navigate import lookup as find
    from codesift.search.views import chunk_meta

    with _open_store(index_dir) as store:
        rows = find(store, name, prefix=prefix)
    if as_json:
        _echo_json({"name": name, "prefix": prefix, "results": [chunk_meta(c) for c in rows]})
    else:
        for c in rows:
            click.echo(_chunk_line(c))
    if not rows:
        no_match(f"no symbol named {name!r}" + ("" if prefix else "; try --prefix"))


@click.command()
@click.argument("symbol", callback=utf8_text)
@INDEX_DIR_OPTION
@JSON_OPTION
def refs(symbol: str, index_dir: Path | None, as_json: bool) -> None:
    """Callers, callees and importers of SYMBOL (matched by name: expect some false positives)."""
    from codesift.search.navigate import refs as find_refs
    from codesift.search.views import refs_dict

    with _open_store(index_dir) as store:
        found = find_refs(store, symbol)
    nothing = not (found.definitions or found.callers or found.imports)
    if as_json:
        _echo_json(refs_dict(found))
        if nothing:
            no_match(f"no definition, caller or importer of {symbol!r} in the index")
        return
    if nothing:
        no_match(f"no definition, caller or importer of {symbol!r} in the index; "
                 "try `codesift lookup --prefix` for similar names")
    sections = [("defined in", [_chunk_line(c) for c in found.definitions]),
                ("called by", [_chunk_line(c) for c in found.callers]),
                ("calls", [f"{c.name}  " + ", ".join(f"{x.path}:{x.start_line} {x.symbol}" for x in c.candidates)
                           for c in found.callees]),
                ("imported by", [f"{i.path}:{i.line}  {i.module}" + (f" import {i.name}" if i.name else "")
                                 + click.style(f"  (by {i.match})", dim=True) for i in found.imports])]
    left_out = {"calls": f"{found.unresolved_callees} not in the index, {found.builtin_callees} built-in",
                "called by": f"{found.total_callers} in all", "imported by": f"{found.total_imports} in all, "
                f"{found.dropped_imports} of other names or modules left out"}
    for title, lines in sections:
        extra = left_out.get(title)
        click.echo(click.style(f"{title} ({len(lines)})", bold=True) + (click.style(f"  {extra}", dim=True)
                                                                        if extra else ""))
        for line in lines:
            click.echo("  " + line)
    click.echo(click.style(f"note: {found.note}", dim=True), err=True)


@click.command()
@click.argument("path", required=False, callback=utf8_text)
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="List folders and files only this many levels below PATH (deeper ones count in their folder).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="List at most this many folders and files.")
@INDEX_DIR_OPTION
@JSON_OPTION
def explore(path: str | None, depth: int | None, limit: int | None, index_dir: Path | None, as_json: bool) -> None:
    """The indexed tree (or the folder PATH), or the outline of the file PATH."""
    from codesift.search.navigate import Outline, explore as browse
    from codesift.search.views import chunk_label, explore_dict

    with _open_store(index_dir) as store:
        found = browse(store, path, depth=depth, limit=limit)
    if as_json:
        _echo_json(explore_dict(found))
        return
    if isinstance(found, Outline):
        f = found.file
        click.echo(click.style(f"{f.path}", bold=True) + f"  ({f.language}, {f.lines} lines, {f.chunks} chunks)")
        for c in found.chunks:
            click.echo(f"  {c.ref}  {c.start_line:>5}-{c.end_line:<5} {c.kind:<9} {chunk_label(c)}  "
                       + click.style(f"~{c.token_estimate} tokens", dim=True))
        return
    for d in found.folders:
        langs = ", ".join(f"{k} {v}" for k, v in d["languages"].items())
        click.echo(click.style(f"{d['path'] or '.'}/", bold=True)
                   + f"  {d['files']} files, {d['chunks']} chunks  " + click.style(f"({langs})", dim=True))
    for f in found.files:
        click.echo(f"  {f.path}  ({f.language}, {f.lines} lines, {f.chunks} chunks)")
    if found.omitted_files or found.omitted_folders:
        click.echo(f"{found.omitted_files} files and {found.omitted_folders} folders not listed; give a folder "
                   "(codesift explore FOLDER) or a larger --depth / --limit", err=True)


@click.command(name="get")
@click.argument("target", callback=utf8_text)
@click.option("--lines", "line_range", default=None, metavar="A-B",
              help="Read lines A to B of the file TARGET from the index (A- for A to the end).")
@click.option("--whole", is_flag=True, help="For a ref: the whole definition its chunk belongs to.")
@INDEX_DIR_OPTION
@JSON_OPTION
def get(target: str, line_range: str | None, whole: bool, index_dir: Path | None, as_json: bool) -> None:
    """Print TARGET in full, read from the index.

    \b
    TARGET is one of:
      REF             one chunk, by its ref (12 hex characters) or id
      SYMBOL          the complete definition of a symbol (every part of a split one;
                      a class with its methods), e.g. HttpServer.start
      PATH:LINE       the complete definition holding that line, e.g. src/app.py:42
      PATH --lines A-B  lines A to B of a file (PATH alone: the whole file)
    """
    from codesift.search import navigate
    from codesift.search.views import chunk_dict, definition_dict, definition_label, lines_dict

    with _open_store(index_dir) as store:
        kind, found = _resolve_get(store, target, line_range, whole)
    if kind == "chunk":
        if as_json:
            _echo_json(chunk_dict(found))
            return
        click.echo(_chunk_line(found), err=True)
        click.echo(found.content)
    elif kind == "lines":
        if as_json:
            _echo_json(lines_dict(found))
            return
        click.echo(click.style(f"{found.path}:{found.start_line}-{found.end_line}", fg="green")
                   + click.style(f"  (of {found.total_lines} lines)", dim=True), err=True)
        click.echo(found.content)
    else:
        definitions, total = found
        if as_json:
            _echo_json({"target": target, "total": total, "definitions": [definition_dict(d) for d in definitions]})
            return
        for d in definitions:
            click.echo(click.style(definition_label(d), fg="green"), err=True)
            click.echo(d.lines.content)
        if total > len(definitions):
            click.echo(f"{total - len(definitions)} more definitions not shown (at most "
                       f"{navigate.MAX_DEFINITIONS}); qualify the name, e.g. Class.method", err=True)


def _resolve_get(store, target: str, line_range: str | None, whole: bool):
    """("chunk", ChunkRow) | ("lines", Lines) | ("definitions", ([Definition], total)) for `get`."""
    from codesift.errors import CodesiftError
    from codesift.search import navigate

    if line_range is not None:
        start, end = _parse_range(line_range)
        return "lines", navigate.read_lines(store, target, start, end)
    location = navigate.parse_location(target)
    if location is not None:
        d = navigate.definition_at(store, *location)
        return "definitions", ([d], 1)
    try:
        chunk = navigate.get_chunk(store, target)
        if whole:
            return "definitions", ([navigate.definition_of(store, chunk)], 1)
        return "chunk", chunk
    except CodesiftError as not_a_chunk:
        if navigate.is_indexed_file(store, target):
            return "lines", navigate.read_lines(store, target)
        try:
            return "definitions", navigate.get_symbol(store, target)
        except CodesiftError:
            if navigate.looks_like_ref(target):
                raise not_a_chunk from None
            raise CodesiftError(f"{target!r} is not a chunk id or ref, a symbol name, PATH:LINE or an indexed "
                                "file; find one with `codesift search`, `lookup --prefix` or `explore`") from None


def _parse_range(text: str) -> tuple[int, int | None]:
    """"10-40" -> (10, 40); "10-" -> (10, None); "7" -> (7, 7)."""
    a, sep, b = text.strip().partition("-")
    try:
        start = int(a)
        end = (int(b) if b.strip() else None) if sep else start
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a line range like 10-40", param_hint="--lines") from None
    return start, end


def print_budgeted(results, max_tokens: int) -> None:
    """`search --max-tokens` for people: each result with the content the budget allowed."""
    from codesift.search.budget import budgeted

    items = budgeted(results, max_tokens)
    for item in items:
        c = item.result.chunk
        click.echo(_chunk_line(c) + click.style(f"  ({item.result.score:.4f}, {item.shown}, "
                                                f"{item.tokens} tokens)", dim=True))
        if item.content:
            click.echo(item.content.rstrip("\n") + "\n")
    click.echo(f"{sum(i.tokens for i in items)} tokens of content", err=True)


@click.command()
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The tree to serve (its index is ROOT/.codesift, built by the index tool if missing).")
@INDEX_DIR_OPTION
@click.option("--http", is_flag=True, help="Serve streamable HTTP on 127.0.0.1 instead of stdio.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535), help="Port for --http.")
@click.option("--model", "-m", default=None, envvar="CODESIFT_MODEL",
              help="Model for the index tool; default: the index's own, else the default model.")
@click.option("--device", default="auto", envvar="CODESIFT_DEVICE", show_default=True,
              help="Device for the index tool: auto, cpu, cuda, cuda:N or mps.")
@click.option("--watch", is_flag=True,
              help="Keep the index fresh: index now, then again after each group of file changes.")
def mcp(root: Path | None, index_dir: Path | None, http: bool, port: int, model: str | None, device: str,
        watch: bool) -> None:
    """Serve one indexed tree to agents over MCP (stdio by default).

    \b
    The tree served: --index-dir's recorded root; else --root; else the nearest
    .codesift above the current folder; else the current folder (not indexed yet:
    the client calls the index tool).
    """
    from codesift.serve.mcp_server import serve
    from codesift.serve.workspace import Workspace

    ws = Workspace.locate(root=root, index_dir=index_dir, model=model, device=device)
    if http:
        click.echo(f"codesift MCP for {ws.root} at http://127.0.0.1:{port}/mcp", err=True)
    if watch:
        ws.watch()
    try:
        serve(ws, http=http, port=port)
    finally:
        ws.stop_watching()


@click.command()
@click.option("--output", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="Folder to write (replaced if it holds an earlier export), or with --zip, OUT.zip.")
@click.option("--zip", "as_zip", is_flag=True, help="Write one deterministic OUT.zip instead of a folder.")
@INDEX_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary: {out, files, chunks}.")
def export(out: Path, as_zip: bool, index_dir: Path | None, as_json: bool) -> None:
    """Export the index for agents: llm.md (guide and outline), manifest.llm.tsv, chunks/<ref>.md."""
    from codesift.export import export_index

    with _open_store(index_dir) as store:
        summary = export_index(store, out, zip=as_zip)
    click.echo(f"exported {summary.chunks} chunks from {summary.files} files to {summary.out}", err=True)
    if as_json:
        _echo_json({"out": str(summary.out), "files": summary.files, "chunks": summary.chunks})


AGENT_COMMANDS = (lookup, refs, explore, get, mcp, export)
