"""The MCP server as an agent meets it: `codesift mcp` started as a subprocess, spoken to with
the official SDK's stdio client (and once over HTTP on 127.0.0.1)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from codesift.chunk.model import estimate_tokens
from codesift.index.indexer import index_tree
from tests.index.repo import make_repo

PROJECT = Path(__file__).resolve().parents[2]
SERVER_ENV = {"PYTHONPATH": str(PROJECT), "CODESIFT_DEVICE": "cpu"}
TOOLS = {"status", "search", "get_chunk", "get_symbol", "read_lines", "similar", "lookup", "refs", "explore",
         "index"}


@asynccontextmanager
async def stdio_session(args: list[str], errlog):
    params = StdioServerParameters(command=sys.executable, args=["-m", "codesift.cli", "mcp", *args],
                                   cwd=str(PROJECT), env=SERVER_ENV)
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


class Client:
    """A blocking handle on an MCP session that lives in a background event loop."""

    def __init__(self, portal, session: ClientSession):
        self.portal, self.session = portal, session

    def call(self, tool: str, **arguments):
        return self.portal.call(self.session.call_tool, tool, arguments)

    def ok(self, tool: str, **arguments) -> dict:
        """The JSON object a tool answers with, read from its one text block."""
        return json.loads(self.text(tool, **arguments))

    def text(self, tool: str, **arguments) -> str:
        """The response as the agent reads it: its one text block."""
        result = self.call(tool, **arguments)
        assert not result.is_error and len(result.content) == 1, result.content
        return result.content[0].text

    def error(self, tool: str, **arguments) -> str:
        result = self.call(tool, **arguments)
        assert result.is_error, result.content
        return result.content[0].text


@contextmanager
def mcp_server(args: list[str], log: Path):
    with open(log, "w") as errlog, start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(stdio_session(args, errlog)) as session:
            yield Client(portal, session)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, embedder):
    base = tmp_path_factory.mktemp("mcp")
    root = make_repo(base / "repo")
    (base / "outside").mkdir()
    (base / "outside" / "passwd").write_text("root:x:0:0\n")
    os.symlink(base / "outside", root / "escape")
    index_tree(root, embedder=embedder, workers=1)
    return root


@pytest.fixture(scope="module")
def server(repo, tmp_path_factory):
    with mcp_server(["--index-dir", str(repo / ".codesift")], tmp_path_factory.mktemp("log") / "server.log") as c:
        yield c


def test_tools_are_described_with_schemas(server):
    tools = {t.name: t for t in server.portal.call(server.session.list_tools).tools}
    assert set(tools) == TOOLS
    for t in tools.values():
        assert len(t.description) > 60 and t.input_schema["type"] == "object"
        for name, prop in t.input_schema.get("properties", {}).items():
            assert prop.get("description"), (t.name, name)
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    assert set(search["properties"]) == {"query", "mode", "k", "path", "language", "max_tokens", "format",
                                         "include_generated", "rerank"}
    assert search["properties"]["mode"]["enum"] == ["hybrid", "bm25", "semantic"]
    assert tools["search"].annotations.read_only_hint is True


def test_status_reports_the_index(server, repo):
    status = server.ok("status")
    assert status["root"] == str(repo) and status["state"] == "complete" and status["searchable"]
    assert status["files"] == 7 and status["languages"]["python"]["files"] == 2
    assert status["job"]["state"] == "idle" and status["model"]


@pytest.mark.parametrize("tool, arguments", [
    ("status", {}), ("search", {"query": "start the http server", "format": "json"}), ("lookup", {"name": "start"}),
    ("explore", {}), ("refs", {"symbol": "HttpServer.stop"}), ("get_symbol", {"target": "HttpServer"}),
    ("read_lines", {"path": "src/server.py", "end_line": 3}), ("similar", {"target": "src/server.py:16"})])
def test_json_answers_are_sent_once(server, tool, arguments):
    """The object goes to the client once, as compact JSON text: no structured copy of it beside
    (the tools declare no output schema, so the copy would only double what a client forwards)."""
    result = server.call(tool, **arguments)
    assert not result.is_error, result.content
    assert result.structured_content is None and len(result.content) == 1
    text = result.content[0].text
    doc = json.loads(text)
    assert isinstance(doc, dict) and text == json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    assert "structuredContent" not in result.model_dump_json(by_alias=True, exclude_none=True)


@pytest.mark.parametrize("budget", [100, 150, 300, 600, 1500, 100_000])
def test_the_budget_covers_the_whole_response(server, budget):
    """Issue 15 #6: max_tokens bounds everything the agent reads (3 characters a token), not only content."""
    from codesift.search.budget import response_tokens

    query = "start the http server socket"
    text = server.text("search", query=query, k=8, max_tokens=budget)
    assert response_tokens(text) <= budget
    heads = [line for line in text.splitlines() if line.startswith("[")]
    assert [int(h[1:h.index("]")]) for h in heads if h[1].isdigit()] == list(range(1, len(heads) + 1 - (
        "[no content]: the budget" in text)))
    as_json = server.call("search", query=query, k=8, max_tokens=budget, format="json")
    doc = json.loads(as_json.content[0].text)
    assert response_tokens(as_json.content[0].text) <= budget
    results = doc["results"]
    assert len(results) + doc.get("omitted", 0) == 8  # every result sent, or counted as left out
    shown = [r["shown"] for r in results]
    assert shown == sorted(shown, key=["all", "partial", "none"].index)
    for r in results:
        assert len(r["ref"]) == 12 and "id" not in r and None not in r.values()  # nothing empty is sent
        assert ("content" in r) == (r["shown"] != "none")
        if r["shown"] == "partial":
            assert f"get_chunk {r['ref']} for the rest]" in r["content"]
    if budget >= 100_000:
        assert shown == ["all"] * 8 and "omitted" not in doc and "more results not sent" not in text
    if budget <= 150:
        assert doc.get("omitted") and "more results not sent" in text


def test_search_text_is_compact_and_lists_refs(server):
    text = server.text("search", query="stop the server", k=3, max_tokens=100_000)
    head = text.splitlines()[1]
    rank, ref, where = head.split()[:3]
    assert rank == "[1]" and len(ref) == 12 and where.startswith("src/server.py:")
    assert "def stop(self):" in text
    json_text = server.call("search", query="stop the server", k=3, max_tokens=100_000, format="json").content[0].text
    assert len(text) < len(json_text)  # no escapes, keys or quotes


def test_search_filters(server):
    docs = server.ok("search", query="configuration", path="docs/*", max_tokens=300, format="json")["results"]
    assert docs and all(r["path"].startswith("docs/") for r in docs)
    rust = server.ok("search", query="distance", language="rust", mode="bm25", format="json")["results"]
    assert {r["path"] for r in rust} == {"src/geometry.rs"}


def test_navigation_tools(server):
    (start,) = server.ok("lookup", name="start")["results"]
    assert (start["symbol"], start["path"], start["start_line"]) == ("HttpServer.start", "src/server.py", 11)
    names = [r["symbol"] for r in server.ok("lookup", name="Http", prefix=True)["results"]]
    assert names[0] == "HttpServer" and "HttpServer.stop" in names

    chunk = server.ok("get_chunk", ref=start["ref"])
    assert chunk["content"].lstrip().startswith("def start(self):") and chunk["id"] == start["id"]

    refs = server.ok("refs", symbol="HttpServer.stop")
    assert refs["resolved"] == "by-name" and refs["definitions"][0]["symbol"] == "HttpServer.stop"
    assert refs["callees"] == [] and refs["unresolved_callees"] == 1  # sock.close(): not in the index

    tree = server.ok("explore")
    assert tree["type"] == "tree" and "src/server.py" in {f["path"] for f in tree["files"]}
    outline = server.ok("explore", path="src/server.py")
    assert outline["type"] == "outline" and outline["chunks"][1]["label"] == "HttpServer"
    assert all(len(c["ref"]) == 12 for c in outline["chunks"])


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "escape/passwd", "src/\x00server.py"])
def test_paths_outside_the_root_are_refused(server, path):
    message = server.error("explore", path=path)
    assert "refusing path" in message and "relative to the indexed root" in message


def test_bad_requests_are_tool_errors_and_the_server_lives_on(server):
    assert "not a chunk id or ref" in server.error("get_chunk", ref="../../etc/passwd")
    assert "no chunk with id or ref" in server.error("get_chunk", ref="0" * 12)
    assert "greater than or equal to 1" in server.error("search", query="x", k=0)
    assert "query is empty" in server.error("search", query="  ")
    assert "not an indexed file or folder" in server.error("explore", path="nope.py")
    assert server.ok("status")["state"] == "complete"


def test_server_starts_without_torch():
    code = ("import sys; from codesift.serve.mcp_server import build_server; "
            "from codesift.serve.workspace import Workspace; build_server(Workspace.locate(root='.')); "
            "assert 'torch' not in sys.modules, 'torch imported at startup'")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True, timeout=60)


@pytest.mark.slow
def test_index_tool_builds_in_the_background(tmp_path):
    root = make_repo(tmp_path / "fresh")
    with mcp_server(["--root", str(root)], tmp_path / "server.log") as server:
        assert server.ok("status")["state"] == "not indexed"
        assert "call the index tool" in server.error("search", query="config")
        assert server.ok("index")["started"] is True
        assert server.ok("index")["started"] is False  # one run at a time
        deadline = time.monotonic() + 120
        while (status := server.ok("status"))["job"]["state"] == "running":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["job"]["state"] == "done", status["job"]
        assert status["state"] == "complete" and status["files"] == 7
        assert "indexed 7 files" in status["job"]["summary"]
        top = server.ok("search", query="load the configuration from a json file", k=3, format="json")["results"][0]
        assert top["symbol"] == "load_config"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_http_transport_on_localhost(repo, tmp_path):
    port = _free_port()
    args = [sys.executable, "-m", "codesift.cli", "mcp", "--http", "--port", str(port),
            "--index-dir", str(repo / ".codesift")]
    with open(tmp_path / "http.log", "w") as log, \
            subprocess.Popen(args, cwd=PROJECT, env={**os.environ, **SERVER_ENV}, stderr=log) as proc:
        try:
            deadline = time.monotonic() + 30
            while not _listening(port):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "http.log").read_text()
                time.sleep(0.1)

            async def lookup() -> dict:
                async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        return json.loads((await session.call_tool("lookup", {"name": "load_config"})).content[0].text)

            with start_blocking_portal() as portal:
                assert portal.call(lookup)["results"][0]["path"] == "src/config.py"
        finally:
            proc.terminate()


def test_whole_definitions_and_line_ranges(server):
    from tests.index.repo import FILES

    lines = FILES["src/server.py"].split("\n")
    out = server.ok("get_symbol", target="HttpServer")
    (d,) = out["definitions"]
    assert out["total"] == 1 and d["content"] == "\n".join(lines[3:23]) and len(d["refs"]) == 5
    at = server.ok("get_symbol", target="src/server.py:16")["definitions"][0]
    assert at["symbol"] == "HttpServer.stop" and (at["start_line"], at["end_line"]) == (15, 18)
    read = server.ok("read_lines", path="src/server.py", start_line=11, end_line=13)
    assert read["content"] == "\n".join(lines[10:13]) and read["total_lines"] == 23
    whole = server.ok("get_chunk", ref=at["refs"][0], whole=True)
    assert whole["symbol"] == "HttpServer.stop" and whole["content"] == at["content"]
    assert "no symbol named" in server.error("get_symbol", target="Nope")
    assert "refusing path" in server.error("read_lines", path="../x.py")


def test_similar_tool(server):
    out = server.ok("similar", target="src/server.py:16", k=2)
    assert out["target"]["symbol"] == "HttpServer.stop" and len(out["results"]) == 2
    assert all(set(r) >= {"ref", "path", "start_line", "end_line", "score"} for r in out["results"])
    assert "not a chunk id or ref" in server.error("similar", target="nope")
