"""benchmarks/agent_tokens.py runs on a small tree and counts the whole MCP response."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from codesift.index.indexer import index_tree
from tests.index.repo import make_repo

ROOT = Path(__file__).resolve().parents[2]


def test_agent_tokens_counts_the_whole_response(tmp_path, embedder):
    corpus = make_repo(tmp_path / "eval" / "corpus")
    index_tree(corpus, embedder=embedder, workers=1)
    queries = [{"id": 1, "query": "load the configuration from a json file", "path": "src/config.py",
                "start_line": 5, "end_line": 7},
               {"id": 2, "query": "start the http server", "path": "src/server.py", "start_line": 11, "end_line": 13}]
    (tmp_path / "eval" / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CODESIFT_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.run([sys.executable, "benchmarks/agent_tokens.py", "--eval", str(tmp_path / "eval"),
                           "-n", "2", "--max-tokens", "300", "--mode", "bm25", "-k", "5"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["queries"] == 2 and summary["over_budget"] == 0
    assert summary["answer_inside"] == 2
    # the whole response costs more than its content alone, and the JSON on the wire more than its text
    assert summary["text_response_tokens"] > summary["content_tokens"] > 0
    assert summary["json_wire_tokens"] > summary["json_response_tokens"]
    assert len(list((tmp_path / "results").glob("agent_tokens-*.json"))) == 1
