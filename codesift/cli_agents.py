"""Command-line commands for navigating an index the way an agent does (lookup, refs, explore,
get), serving it over MCP, and exporting it. Thin like the rest of the CLI: each parses
options, calls one library function, and prints (human text, or JSON with --json).

They are plain click commands: `codesift.cli` adds them to the `codesift` group, and its
`search` takes `print_budgeted` from here for --max-tokens.
"""
from __future__ import annotations

import json
from pathlib import Path

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
        return
    if not rows:
        click.echo(f"no symbol named {name!r}" + ("" if prefix else "; try --prefix"), err=True)
    for c in rows:
        click.echo(_chunk_line(c))


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
    if as_json:
        _echo_json(refs_dict(found))
        return
    sections = [("defined in", [_chunk_line(c) for c in found.definitions]),
                ("called by", [_chunk_line(c) for c in found.callers]),
                ("calls", [f"{c.name}  " + (", ".join(f"{x.path}:{x.start_line} {x.symbol}" for x in c.candidates)
                                            or click.style("(not in the index)", dim=True)) for c in found.callees]),
                ("imported by", [f"{i.path}:{i.line}  {i.module}" + (f" import {i.name}" if i.name else "")
                                 + click.style(f"  (by {i.match})", dim=True) for i in found.imports])]
    for title, lines in sections:
        click.echo(click.style(f"{title} ({len(lines)})", bold=True))
        for line in lines:
            click.echo("  " + line)
    click.echo(click.style(f"note: {found.note}", dim=True), err=True)


@click.command()
@click.argument("path", required=False, callback=utf8_text)
@INDEX_DIR_OPTION
@JSON_OPTION
def explore(path: str | None, index_dir: Path | None, as_json: bool) -> None:
    """The indexed tree (or the folder PATH), or the outline of the file PATH."""
    from codesift.search.navigate import Outline, explore as browse
    from codesift.search.views import chunk_label, explore_dict

    with _open_store(index_dir) as store:
        found = browse(store, path)
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
    if found.omitted_files:
        click.echo(f"{found.omitted_files} files not listed; give a folder: codesift explore FOLDER", err=True)


@click.command(name="get")
@click.argument("id_or_ref", callback=utf8_text)
@INDEX_DIR_OPTION
@JSON_OPTION
def get(id_or_ref: str, index_dir: Path | None, as_json: bool) -> None:
    """Print one chunk in full, by its ref (12 hex characters) or id."""
    from codesift.search.navigate import get_chunk
    from codesift.search.views import chunk_dict

    with _open_store(index_dir) as store:
        c = get_chunk(store, id_or_ref)
    if as_json:
        _echo_json(chunk_dict(c))
        return
    click.echo(_chunk_line(c), err=True)
    click.echo(c.content)


def print_budgeted(results, max_tokens: int, query: str) -> None:
    """`search --max-tokens` for people: each result with the content the budget allowed."""
    from codesift.search.budget import budgeted

    items = budgeted(results, max_tokens)
    if not items:
        click.echo(f"no results for {query!r}", err=True)
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
def mcp(root: Path | None, index_dir: Path | None, http: bool, port: int, model: str | None, device: str) -> None:
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
    serve(ws, http=http, port=port)


@click.command()
@click.option("--output", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="Folder to write (replaced if it holds an earlier export), or with --zip, OUT.zip.")
@click.option("--zip", "as_zip", is_flag=True, help="Write one deterministic OUT.zip instead of a folder.")
@INDEX_DIR_OPTION
def export(out: Path, as_zip: bool, index_dir: Path | None) -> None:
    """Export the index for agents: llm.md (guide and outline), manifest.llm.tsv, chunks/<ref>.md."""
    from codesift.export import export_index

    with _open_store(index_dir) as store:
        summary = export_index(store, out, zip=as_zip)
    click.echo(f"exported {summary.chunks} chunks from {summary.files} files to {summary.out}", err=True)


AGENT_COMMANDS = (lookup, refs, explore, get, mcp, export)
