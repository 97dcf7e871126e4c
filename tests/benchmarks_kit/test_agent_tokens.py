"""benchmarks/agent_tokens.py runs on a small tree, through real MCP servers and the SDK's client."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from codesift.index.indexer import index_tree
from tests.benchmarks_kit import benchmark_module
from tests.index.repo import make_repo

ROOT = Path(__file__).resolve().parents[2]


def test_agent_tokens_counts_the_whole_response(tmp_path, embedder):
    corpus = make_repo(tmp_path / "eval" / "corpus")
    queries = [{"id": 1, "query": "load the configuration from a json file", "path": "src/config.py",
                "start_line": 5, "end_line": 7},
               {"id": 2, "query": "start the http server", "path": "src/server.py", "start_line": 11, "end_line": 13}]
    (tmp_path / "eval" / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    # both sides' indexes built here with the test model, so that the script's own index runs find
    # nothing to embed; "before" is this commit's code, served from its own copy
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    work = tmp_path / "work"
    for index_dir in (work / f"index-{head[:12]}", corpus / ".codesift"):
        index_tree(corpus, index_dir, embedder=embedder, workers=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CODESIFT_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.run([sys.executable, "benchmarks/agent_tokens.py", "--eval", str(tmp_path / "eval"),
                           "--work", str(work), "--before", head, "--max-tokens", "300", "-k", "5"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr + (work / "servers.log").read_text()
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["queries"] == 2 and summary["before_code"] == head[:12]
    text, as_json = summary["after_text"], summary["after_json"]
    assert text["answer_inside"] == 2 and text["answer_in_results"] == 2
    assert text["text_tokens"] <= 2 * 300 and as_json["text_tokens"] <= 2 * 300  # the budget holds
    # nothing is sent twice: on the wire the text, escaped and wrapped, and no structured copy
    assert as_json["sent_twice"] == 0 and as_json["text_tokens"] < as_json["wire_tokens"] < 1.5 * as_json["text_tokens"]
    assert text["text_tokens_per_answer_found"] == text["text_tokens"] / 2
    log = json.loads(next((tmp_path / "results").glob("agent_tokens-*.json")).read_text())
    assert [r["after_text"]["answer"] for r in log["result"]["rows"]] == ["yes", "yes"]


def test_responses_are_read_back_as_the_agent_received_them():
    agent_tokens = benchmark_module("agent_tokens")
    answer, received_from_json, received_from_text = (agent_tokens.answer, agent_tokens.received_from_json,
                                                      agent_tokens.received_from_text)
    text = ("2 results for 'q' (hybrid)\n"
            "[1] 0123456789ab src/a.py:10-14 load (function)\n"
            "def load():\n    x = 1\n… [truncated: 2 of 5 lines; get_chunk 0123456789ab for the rest]\n"
            "[2] 0123456789ac src/b.py:1-3 save (function) [no content]\n"
            "[no content]: the budget was spent; get_chunk REF returns it")
    got = received_from_text(text)
    assert got == [("src/a.py", 10, 14, 2), ("src/b.py", 1, 3, 0)]
    assert answer(got, {"path": "src/a.py", "start_line": 10, "end_line": 11}) == ("yes", 1)
    assert answer(got, {"path": "src/a.py", "start_line": 11, "end_line": 13}) == ("part", 1)
    assert answer(got, {"path": "src/b.py", "start_line": 1, "end_line": 3}) == ("no", 2)
    doc = {"results": [{"path": "src/b.py", "start_line": 1, "end_line": 3, "shown": "all", "content": "x\ny\nz"},
                       {"path": "src/a.py", "start_line": 1, "end_line": 9, "shown": "none", "content": ""}]}
    assert answer(received_from_json(doc), {"path": "src/b.py", "start_line": 2, "end_line": 3}) == ("yes", 1)
    assert answer(received_from_json(doc), {"path": "src/a.py", "start_line": 2, "end_line": 3}) == ("no", 2)
