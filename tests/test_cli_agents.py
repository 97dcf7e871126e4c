"""The agent-facing commands (lookup, refs, explore, get, export, search --max-tokens) as a user
runs them, in-process through click's runner."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from codesift.chunk.model import estimate_tokens
from codesift.cli import cli
from codesift.index.indexer import index_tree
from tests.index.repo import make_repo

RESULT_KEYS = {"path", "start_line", "end_line", "score", "kind", "role", "symbol", "heading_path", "id"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, embedder):
    root = make_repo(tmp_path_factory.mktemp("cli_agents") / "repo")
    index_tree(root, embedder=embedder, workers=1)
    return root


def run(args, cwd):
    old = os.getcwd()
    try:
        os.chdir(cwd)
        return CliRunner().invoke(cli, args)
    finally:
        os.chdir(old)


def ok_json(args, cwd) -> dict:
    r = run([*args, "--json"], cwd)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_lookup_refs_explore_get(repo):
    found = ok_json(["lookup", "start"], repo / "src")  # the index is found from a subfolder
    assert [x["symbol"] for x in found["results"]] == ["HttpServer.start"]
    assert "HttpServer.stop" in run(["lookup", "Http", "--prefix"], repo).stdout
    ref = found["results"][0]["ref"]

    chunk = ok_json(["get", ref], repo)
    assert chunk["content"].lstrip().startswith("def start(self):")
    assert run(["get", ref], repo).stdout.lstrip().startswith("def start(self):")

    refs = ok_json(["refs", "HttpServer.stop"], repo)
    assert refs["resolved"] == "by-name" and refs["callees"] == [] and refs["unresolved_callees"] == 1
    assert "calls (0)  1 not in the index, 0 built-in" in run(["refs", "HttpServer.stop"], repo).stdout

    assert ok_json(["explore"], repo)["total_files"] == 7
    outline = run(["explore", "src/server.py"], repo).stdout
    assert "HttpServer.handle_request" in outline and "20-23" in outline


def test_user_errors_are_clean_messages(repo):
    for args, message in [(["explore", "../../etc/passwd"], "'..' is not allowed"),
                          (["explore", "/etc/passwd"], "absolute paths are not allowed"),
                          (["get", "xyz"], "not a chunk id or ref")]:
        r = run(args, repo)
        assert r.exit_code == 1 and message in r.stderr and "Traceback" not in r.output


def test_search_with_a_token_budget(repo):
    for budget in (0, 30, 80, 1000):
        out = ok_json(["search", "http server", "-k", "5", "--max-tokens", str(budget)], repo)
        assert len(out["results"]) == 5 and out["max_tokens"] == budget
        assert sum(estimate_tokens(x["content"]) for x in out["results"]) == out["used_tokens"] <= budget
    plain = ok_json(["search", "http server", "-k", "5"], repo)
    assert all(set(x) == RESULT_KEYS for x in plain["results"])  # unchanged without --max-tokens
    human = run(["search", "load the configuration", "--max-tokens", "200"], repo)
    assert "def load_config(path):" in human.stdout and "tokens of content" in human.stderr


def test_export_folder_and_zip(repo, tmp_path):
    r = run(["export", "-o", str(tmp_path / "out")], repo)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "llm.md").is_file() and (tmp_path / "out" / "manifest.llm.tsv").is_file()
    r = run(["export", "-o", str(tmp_path / "out"), "--zip"], repo)
    assert r.exit_code == 0 and (tmp_path / "out.zip").is_file() and "out.zip" in r.stderr


def test_mcp_help_names_the_root_rules(repo):
    r = run(["mcp", "--help"], repo)
    assert r.exit_code == 0 and "--http" in r.stdout and "nearest" in r.stdout


def test_nothing_found_exits_1_with_a_message(repo):
    """Issue 15 #8: a search, lookup or refs that finds nothing says so on stderr and exits 1."""
    for args, message in [(["lookup", "NoSuchThing"], "no symbol named 'NoSuchThing'"),
                          (["lookup", "NoSuchThing", "--json"], "no symbol named"),
                          (["refs", "NoSuch"], "no definition, caller or importer of 'NoSuch'"),
                          (["search", "zzqqxxv", "--mode", "bm25"], "no results for 'zzqqxxv'"),
                          (["search", "server", "--path", "nowhere/*"], "with these filters"),
                          (["search", "server", "--path", "nowhere/*", "--json"], "no results")]:
        r = run(args, repo)
        assert r.exit_code == 1 and message in r.stderr, (args, r.output)
    assert json.loads(run(["lookup", "NoSuchThing", "--json"], repo).stdout)["results"] == []
    for args in (["lookup", "start"], ["refs", "HttpServer.stop"], ["search", "server", "--mode", "bm25"]):
        assert run(args, repo).exit_code == 0, args


def test_a_language_not_in_the_index_is_an_error_naming_those_that_are(repo):
    r = run(["search", "server", "--lang", "py"], repo)
    assert r.exit_code == 1 and "'py'" in r.stderr and "python" in r.stderr and "rust" in r.stderr
    assert run(["search", "server", "--lang", "Python"], repo).exit_code == 0  # case does not matter


def test_plain_search_shows_refs_that_get_accepts(repo):
    r = run(["search", "stop the server", "-k", "3"], repo)
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]
    ref, where = first.split()[:2]
    assert len(ref) == 12 and where.startswith("src/")
    got = run(["get", ref], repo)
    assert got.exit_code == 0 and got.stdout.strip()


def test_get_a_symbol_a_location_or_a_line_range(repo):
    from tests.index.repo import FILES

    lines = FILES["src/server.py"].split("\n")
    r = run(["get", "HttpServer.stop"], repo)
    assert r.exit_code == 0 and r.stdout == "\n".join(lines[14:18]) + "\n" and "src/server.py:15-18" in r.stderr
    assert run(["get", "src/server.py:12"], repo).stdout == "\n".join(lines[10:13]) + "\n"
    assert run(["get", "src/server.py", "--lines", "1-3"], repo).stdout == "\n".join(lines[:3]) + "\n"
    assert run(["get", "src/server.py"], repo).stdout.rstrip("\n") == FILES["src/server.py"].rstrip("\n")
    cls = ok_json(["get", "HttpServer"], repo)
    (d,) = cls["definitions"]
    assert (d["start_line"], d["end_line"], len(d["refs"])) == (4, 23, 5)
    assert d["content"] == "\n".join(lines[3:23])
    ref = ok_json(["lookup", "start"], repo)["results"][0]["ref"]
    assert ok_json(["get", ref, "--whole"], repo)["definitions"][0]["symbol"] == "HttpServer.start"
    for args, message in [(["get", "no_such_thing"], "not a chunk id or ref, a symbol name"),
                          (["get", "src/server.py", "--lines", "x-y"], "not a line range"),
                          (["get", "src/server.py", "--lines", "90-99"], "not in src/server.py")]:
        r = run(args, repo)
        assert r.exit_code != 0 and message in r.output, (args, r.output)


def test_explore_depth_and_limit(repo):
    top = ok_json(["explore", "--depth", "1"], repo)
    assert {f["path"] for f in top["files"]} == {"package.json", "notes.txt", ".gitignore"}
    assert top["omitted_files"] == 4
    assert {d["path"] for d in top["folders"]} == {"", "src", "docs"}
    r = run(["explore", "--limit", "2"], repo)
    assert r.exit_code == 0 and "not listed" in r.stderr


def test_similar_by_ref_or_location(repo):
    out = ok_json(["similar", "src/server.py:12", "-k", "3"], repo)
    assert out["target"]["symbol"] == "HttpServer.start" and len(out["results"]) == 3
    assert out["target"]["ref"] not in {r["ref"] for r in out["results"]}
    assert out["results"][0]["symbol"].startswith("HttpServer.")  # its siblings are the nearest code here
    by_ref = ok_json(["similar", out["target"]["ref"], "-k", "3"], repo)
    assert by_ref["results"] == out["results"]
    human = run(["similar", out["target"]["ref"], "-k", "2"], repo)
    assert human.exit_code == 0 and human.stdout.split()[0] == out["results"][0]["ref"]
    r = run(["similar", "src/server.py:12", "--path", "docs/*", "--lang", "rust"], repo)
    assert r.exit_code == 1 and "no other chunk" in r.stderr
