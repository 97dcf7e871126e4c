"""The MCP server: codesift's search and navigation as tools, on the official MCP Python SDK.

Thin on purpose: each tool checks nothing itself and calls one `Workspace` method. Expected
failures (CodesiftError: a bad path, an unknown ref, no index yet) come back to the client
as tool errors carrying our message; the SDK turns anything else into a generic tool error
and logs it, so the server never goes down with a request. Starting is fast: torch is
imported only by an index run that has something to embed.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any, Callable, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from codesift.version import __version__
from codesift.errors import CodesiftError
from codesift.serve.workspace import Workspace

LOCALHOST = "127.0.0.1"  # HTTP is for local clients only; never bind to all interfaces

INSTRUCTIONS = """codesift searches and navigates one indexed source tree (paths are relative to its root).
Typical flow: status (is the index ready?) -> search with a max_tokens budget -> get_chunk for a
result shown partially (whole=true, or get_symbol, for a complete function) -> lookup / refs /
explore / read_lines to follow symbols and files. Results carry a 12-character `ref` for get_chunk. If status says "not indexed", call index and poll status."""

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

Ref = Annotated[str, Field(description="A chunk's ref (12 hex characters, from search, lookup or explore "
                                       "results) or its full 64-character id.")]
SymbolName = Annotated[str, Field(description="A symbol name: qualified like `HttpServer.start`, or just its "
                                              "last part like `start` (matches every `X.start`).")]


def _call(method: Callable[..., dict], **kwargs: Any) -> CallToolResult:
    """Run a Workspace method; its dict goes back once, as compact JSON text (the SDK's default
    text is indented, which costs an agent tokens for nothing).

    Not also as structured content: the SDK sends structured content only for a tool that
    declares an output schema (and then the spec asks for the same JSON as text beside it, so a
    client reads it twice); these tools declare none, and clients hand an agent the text."""
    try:
        result = method(**kwargs)
        if isinstance(result, str):  # a compact text rendering (search): the text is the whole response
            return CallToolResult(content=[TextContent(type="text", text=result)])
    except CodesiftError as e:
        raise ToolError(str(e)) from e
    except sqlite3.Error as e:  # e.g. locked for longer than the timeout by another process
        raise ToolError(f"the index could not be read ({e}); try again, or check `codesift status`") from e
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)])


def build_server(ws: Workspace) -> MCPServer:
    server = MCPServer("codesift", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=READ_ONLY)
    def status() -> CallToolResult:
        """Index readiness and contents: state (complete, indexing, not indexed), file and chunk counts per
        language, the embedding model, when it was indexed (indexed_at) and the indexed files changed on
        disk since (changed_files, the first few in changed; every file is checked), the background index
        job's progress (job.state idle/running/done/failed, files_done of files_total), and the file
        watcher's runs when the server keeps the index fresh (watch)."""
        return _call(ws.status)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=True, open_world_hint=False))
    def index() -> CallToolResult:
        """Build or update the index of the served root in the background and return at once. Only new and
        changed files are processed. Poll status until job.state is done (or failed, with job.error).
        Searches keep answering from the current index meanwhile."""
        return _call(ws.index)

    @server.tool(annotations=READ_ONLY)
    def search(
        query: Annotated[str, Field(description="What to find: words, a question, or an identifier.")],
        mode: Annotated[Literal["hybrid", "bm25", "semantic"], Field(
            description="hybrid (default) fuses keyword (BM25) and semantic ranking; bm25 is exact words and "
                        "identifiers; semantic is meaning.")] = "hybrid",
        k: Annotated[int, Field(ge=1, le=100, description="How many results to return.")] = 10,
        path: Annotated[str | None, Field(
            description="Only paths matching this glob, relative to the root: 'src/**/*.py', '*.md', or a "
                        "folder like 'src/api'.")] = None,
        language: Annotated[str | None, Field(
            description="Only this language, e.g. python, rust, markdown (see status for those indexed).")] = None,
        max_tokens: Annotated[int, Field(ge=100, le=200_000, description=(
            "Budget for the whole response, counted generously (3 characters a token). Whole chunks come "
            "first in rank order; the first that does not fit is cut at a line boundary with a marker; "
            "later results carry only their head line (ref, path:lines, symbol); results that do not fit "
            "even so are left out, and the response says how many."))] = 2000,
        format: Annotated[Literal["text", "json"], Field(
            description="text (default): compact, one head line per result (rank, ref, path:lines, symbol or "
                        "heading, kind) then its content. json: one object for programs, fields without a "
                        "value left out.")] = "text",
        include_generated: Annotated[bool, Field(
            description="Also search lock files and bundled or minified output (left out by default; a "
                        "path filter includes them).")] = False,
        rerank: Annotated[bool, Field(
            description="Re-order the best candidates with a second model (the server's reranker: a "
                        "cross-encoder, or a larger embedding model): a better order, and seconds slower on a CPU.")] = False,
    ) -> CallToolResult:
        """Search the index. Each result: its ref (for get_chunk, or get_chunk with whole=true for a split
        function), path and lines, symbol or heading, kind, the file's role when not plain source (test, docs,
        changelog, manifest, generated; ranked a little lower), and its content while the max_tokens budget
        lasts, then how fresh the index is (when indexed; the results' files changed since, and the folders
        where files were added or removed, whose files are checked too; status checks every file). The budget covers
        the whole response, not only the content."""
        return _call(ws.search, query=query, mode=mode, k=k, path=path, language=language, max_tokens=max_tokens,
                     format=format, include_generated=include_generated, rerank=rerank)

    @server.tool(annotations=READ_ONLY)
    def get_chunk(
        ref: Ref,
        whole: Annotated[bool, Field(description="Return the whole definition the chunk belongs to instead: "
                                                 "every part of a split function, or a class with its "
                                                 "methods.")] = False,
    ) -> CallToolResult:
        """One chunk in full: its content and metadata (path, start_line, end_line, kind, symbol,
        heading_path, tokens). With whole=true, the complete definition it is part of (path, lines, symbol,
        refs of its chunks, content)."""
        return _call(ws.get_chunk, id_or_ref=ref, whole=whole)

    @server.tool(annotations=READ_ONLY)
    def similar(
        target: Annotated[str, Field(description="A chunk's ref (from search, lookup or explore) or PATH:LINE "
                                                 "(`src/app.py:42`) for the chunk holding that line.")],
        k: Annotated[int, Field(ge=1, le=100, description="How many results to return.")] = 10,
        path: Annotated[str | None, Field(description="Only paths matching this glob, relative to the root.")] = None,
    ) -> CallToolResult:
        """Chunks most like a given one: near-duplicate or look-alike code (copies to change together,
        other implementations of the same idea). Each result: ref, path, lines, kind, symbol and score
        (cosine of the stored vectors; near 1 is a near duplicate). The chunk itself and the other parts of
        its symbol are left out."""
        return _call(ws.similar, target=target, k=k, path=path)

    @server.tool(annotations=READ_ONLY)
    def get_symbol(
        target: Annotated[str, Field(description="A symbol name (`HttpServer.start`, or `start` for every "
                                                 "`X.start`), or PATH:LINE (`src/app.py:42`) for the "
                                                 "definition holding that line.")],
    ) -> CallToolResult:
        """Complete definitions in one call: all parts of a symbol that the index split, or a class with
        its methods, as one text with path, start_line, end_line, kind and the refs of its chunks. At most
        10 definitions (total says how many matched)."""
        return _call(ws.get_symbol, target=target)

    @server.tool(annotations=READ_ONLY)
    def read_lines(
        path: Annotated[str, Field(description="An indexed file, relative to the root (as explore lists it).")],
        start_line: Annotated[int, Field(ge=1, description="First line (1-based).")] = 1,
        end_line: Annotated[int | None, Field(ge=1, description="Last line, inclusive; omit for the end of "
                                                                 "the file.")] = None,
    ) -> CallToolResult:
        """Lines start_line..end_line of an indexed file, read from the index (the text search answers from),
        with the file's total_lines."""
        return _call(ws.read_lines, path=path, start_line=start_line, end_line=end_line)

    @server.tool(annotations=READ_ONLY)
    def lookup(
        name: SymbolName,
        prefix: Annotated[bool, Field(description="Match names that start with `name` (at the start or after "
                                                  "any dot): `Http` finds `HttpServer`, `HttpServer.start`.")] = False,
    ) -> CallToolResult:
        """Find where symbols are defined, by exact name (case-sensitive first, then case-insensitive) or by
        prefix. Returns chunk metadata (ref, path, lines, kind, symbol), up to 50."""
        return _call(ws.lookup, name=name, prefix=prefix)

    @server.tool(annotations=READ_ONLY)
    def refs(symbol: SymbolName) -> CallToolResult:
        """References of a symbol, matched by name: definitions; callers (chunks that call its last name);
        callees (names it calls that the index defines, each with its candidate definitions; built-in and
        unresolved names are only counted); imports (of the name from its module or a package above it, or of
        its module; other names from that module are counted in dropped_imports). Name-based: expect some
        false positives; a qualified name (`Class.method`) narrows the definitions. Lists stop at 50 (see
        total_*)."""
        return _call(ws.refs, symbol=symbol)

    @server.tool(annotations=READ_ONLY)
    def explore(
        path: Annotated[str | None, Field(
            description="Omit for the whole tree; a folder for the files below it; a file for its outline. "
                        "Relative to the root, as listed by explore itself.")] = None,
        depth: Annotated[int, Field(ge=1, le=64, description="Levels below the folder to list: 1 is its own "
                                                             "files and subfolders.")] = 2,
        limit: Annotated[int, Field(ge=1, le=5000, description="At most this many folders and files listed "
                                                               "(folders first).")] = 100,
    ) -> CallToolResult:
        """Browse the index. Tree (no path or a folder): folders with file, chunk and token counts and
        languages, and files with line, chunk and token counts, down to `depth` and up to `limit` entries
        (omitted_files / omitted_folders say what was left out: explore a listed folder for more). Outline
        (a file): its chunks in order with kind, symbol or heading breadcrumb (label), line range, tokens
        and ref."""
        return _call(ws.explore, path=path, depth=depth, limit=limit)

    return server


def serve(ws: Workspace, http: bool = False, port: int = 8765) -> None:
    """Serve `ws` over stdio, or over streamable HTTP at http://127.0.0.1:PORT/mcp."""
    server = build_server(ws)
    if http:
        server.run("streamable-http", host=LOCALHOST, port=port)
    else:
        import anyio

        anyio.run(_serve_stdio, server)


async def _serve_stdio(server: MCPServer) -> None:
    """The SDK's stdio transport, except that a line it cannot parse is answered (see AnsweringReader)."""
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async serves
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(AnsweringReader(read_stream, write_stream), write_stream,
                           lowlevel.create_initialization_options())


def error_for_unparsed(exc: Exception):
    """The JSON-RPC error response for a line the SDK could not parse, or None for a notification.

    The SDK's parser refuses JSON that Python's accepts, such as a lone surrogate escape
    (`"\\udcff"`), and then drops the line silently, so a client would wait forever for its
    answer. Python's parser usually still finds the request's id to answer to."""
    from mcp_types import ErrorData, JSONRPCError
    from mcp_types.jsonrpc import INVALID_REQUEST, PARSE_ERROR

    line = next((e.get("input") for e in getattr(exc, "errors", lambda: [])() if isinstance(e.get("input"), str)),
                None)
    try:
        request = json.loads(line) if line is not None else None
    except ValueError:
        request = None
    if not isinstance(request, dict):
        return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=PARSE_ERROR, message="parse error: "
                                                                    "the message is not one JSON object"))
    request_id = request.get("id")
    if "method" in request and request_id is None:
        return None  # a notification: JSON-RPC never answers one
    if not isinstance(request_id, (int, str)) or isinstance(request_id, bool) or _has_surrogate(request_id):
        request_id = None
    if _has_surrogate(request):
        message = ("the request holds a string that is not valid Unicode (a lone surrogate escape such as "
                   "\\udcff); send text as valid UTF-8")
    else:
        message = f"invalid request: {str(exc).splitlines()[-1].strip()}"
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=INVALID_REQUEST, message=message))


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_has_surrogate, value))
    return False


class AnsweringReader:
    """The server's read stream, answering the lines the transport could not parse (which it hands
    on as exceptions) with an error response instead of passing them to the SDK, which drops them."""

    def __init__(self, inner, write_stream):
        self._inner, self._write = inner, write_stream

    @property
    def last_context(self):
        return getattr(self._inner, "last_context", None)

    async def receive(self):
        from mcp.shared.message import SessionMessage

        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            response = error_for_unparsed(item)
            if response is not None:
                await self._write.send(SessionMessage(response))

    def __aiter__(self) -> "AnsweringReader":
        return self

    async def __anext__(self):
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> "AnsweringReader":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
