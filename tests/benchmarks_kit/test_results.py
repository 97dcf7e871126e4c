"""The JSON log every benchmark run writes."""
from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

from benchmarks._results import commit_info, write_result

ROOT = Path(__file__).resolve().parents[2]


def git(*args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_log_names_date_host_commit_command_and_holds_the_payload(tmp_path):
    payload = {"mrr@10": 0.5, "rows": [1, 2], "where": Path("/x")}
    path = write_result("quality", payload, argv=["benchmarks/quality.py", "/evals/x"], results_dir=tmp_path)
    rec = json.loads(path.read_text())
    head = git("rev-parse", "HEAD")
    short = git("rev-parse", "--short", "HEAD") or "nogit"
    assert path.parent == tmp_path
    assert re.fullmatch(rf"quality-\d{{8}}-\d{{6}}-{short}\.json", path.name)
    assert rec["name"] == "quality"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", rec["date"])
    assert path.name[len("quality-"):][:15] == rec["date"][:19].replace("-", "").replace(":", "").replace("T", "-")
    assert rec["host"]["hostname"] == socket.gethostname()
    assert rec["host"]["cores"] >= 1 and rec["host"]["cpu"] and isinstance(rec["host"]["gpus"], list)
    assert rec["commit"] == head
    if head:
        assert rec["dirty"] == bool(git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results"))
    assert rec["command"] == ["benchmarks/quality.py", "/evals/x"]
    assert re.fullmatch(r"3\.\d+\.\d+.*", rec["python"])
    assert rec["result"] == {"mrr@10": 0.5, "rows": [1, 2], "where": "/x"}


def test_runs_in_one_second_do_not_overwrite_each_other(tmp_path):
    paths = [write_result("x", {"i": i}, argv=[], results_dir=tmp_path) for i in range(3)]
    assert len(set(paths)) == 3
    assert [json.loads(p.read_text())["result"]["i"] for p in paths] == [0, 1, 2]


def test_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIFT_RESULTS_DIR", str(tmp_path / "leased"))
    assert write_result("y", {}, argv=[]).parent == tmp_path / "leased"


def test_commit_without_git_comes_from_the_environment(monkeypatch):
    import benchmarks._results as results

    monkeypatch.setattr(results, "_git", lambda *args: None)
    monkeypatch.setenv("CODESIFT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    assert commit_info() == {"commit": "0123456789abcdef0123456789abcdef01234567", "short": "0123456", "dirty": None}
    monkeypatch.delenv("CODESIFT_COMMIT")
    assert commit_info() == {"commit": None, "short": None, "dirty": None}
