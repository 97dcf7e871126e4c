"""#6 and #13: text that is not valid Unicode gets an error for itself, and nothing else is lost.

From argv, Python hands bytes that are not UTF-8 on as lone surrogates ('\\udcff'); in JSON a
lone surrogate escape is legal syntax that many parsers refuse."""
from __future__ import annotations

import json
import select
import subprocess
import sys

import pytest

from tests.faults.helpers import ENV, PROJECT, one_line_error, run_cli

BAD = b"conf\xffig"  # not UTF-8


@pytest.mark.parametrize("args", [
    ["search", BAD], ["search", BAD, "--mode", "semantic"], ["search", BAD, "--mode", "bm25"],
    ["search", BAD, "--json"], ["lookup", BAD], ["refs", BAD], ["explore", BAD], ["get", b"32456d\xff"],
])
def test_argv_not_utf8(indexed_repo, args):
    # argv as bytes: the child's Python decodes it with surrogateescape, as from a shell
    proc = run_cli(*args, "--index-dir", str(indexed_repo / ".codesift"))
    assert "not valid UTF-8" in one_line_error(proc)
    assert proc.stdout == b""


def test_jsonl_line_not_utf8_answers_the_others(indexed_repo):
    lines = b"load config file\n" + BAD + b" file\n\nHttpServer\n\xc3\n"
    for mode in ("hybrid", "semantic", "bm25"):
        proc = run_cli("search", "--jsonl", "--mode", mode, "--index-dir", str(indexed_repo / ".codesift"),
                       stdin=lines)
        out = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
        assert [o["query"] for o in out] == ["load config file", "conf\ufffdig file", "HttpServer", "\ufffd"]
        assert out[0]["results"][0]["path"] == "src/config.py"
        assert out[2]["results"][0]["path"] == "src/server.py"
        assert "not valid UTF-8" in out[1]["error"] and "not valid UTF-8" in out[3]["error"]
        assert "results" not in out[1] and "results" not in out[3]
        assert "2 of 4 queries" in one_line_error(proc)  # exit status 1: the batch was not all answered


def test_jsonl_all_good_still_exits_zero(indexed_repo):
    proc = run_cli("search", "--jsonl", "--mode", "bm25", "--index-dir", str(indexed_repo / ".codesift"),
                   stdin=b"load_config\nHttpServer\n")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2


class RawMcp:
    """`codesift mcp` spoken to in raw JSON-RPC lines over stdio: the official client cannot send
    a lone surrogate escape, which is what a faulty or hostile client may send."""

    def __init__(self, index_dir):
        self.proc = subprocess.Popen([sys.executable, "-m", "codesift.cli", "mcp", "--index-dir", str(index_dir)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=ENV, cwd=PROJECT)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def receive(self, limit_s: float = 60) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], limit_s)
        assert ready, "no response from the MCP server"
        line = self.proc.stdout.readline()
        assert line, "the MCP server closed its output"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture
def raw_mcp(indexed_repo):
    client = RawMcp(indexed_repo / ".codesift")
    client.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "faults", "version": "1"}}}))
    assert client.receive()["result"]["serverInfo"]["name"] == "codesift"
    client.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    yield client
    client.close()


def _call(request_id, tool: str, arguments: str) -> str:
    """A tools/call line with `arguments` as raw JSON text (so it can hold a lone surrogate escape)."""
    return (f'{{"jsonrpc":"2.0","id":{json.dumps(request_id)},"method":"tools/call",'
            f'"params":{{"name":"{tool}","arguments":{arguments}}}}}')


def test_mcp_lone_surrogate_gets_an_error_response(raw_mcp):
    bad = [(1, "search", r'{"query":"conf\udcffig"}'), ("two", "lookup", r'{"name":"\udcff"}'),
           (3, "get_chunk", r'{"ref":"32456db878e\ud800"}'), (4, "explore", r'{"path":"src/\udcff.py"}')]
    for request_id, tool, arguments in bad:
        raw_mcp.send(_call(request_id, tool, arguments))
        response = raw_mcp.receive()
        assert response["id"] == request_id and "result" not in response, response
        assert "not valid Unicode" in response["error"]["message"]
    # the server still answers, and a notification with a bad string gets no answer (JSON-RPC)
    raw_mcp.send(r'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9,"reason":"\udcff"}}')
    raw_mcp.send(_call(5, "lookup", '{"name":"load_config"}'))
    response = raw_mcp.receive()
    assert response["id"] == 5 and not response["result"].get("isError")
    assert json.loads(response["result"]["content"][0]["text"])["results"][0]["symbol"] == "load_config"


def test_mcp_unparseable_line_gets_a_parse_error(raw_mcp):
    raw_mcp.send('{"jsonrpc": "2.0", "id": 7, "method": ')
    response = raw_mcp.receive()
    assert response["id"] is None and response["error"]["code"] == -32700
    raw_mcp.send(_call(8, "search", '{"query":"load config","mode":"bm25"}'))
    assert raw_mcp.receive()["id"] == 8
