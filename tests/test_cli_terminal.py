"""Issue 15 #9: the command line behaves as terminal tools do: colour rules, repeatable path
filters, one JSON document per --json, progress a log can show, and a way to remove an index."""
from __future__ import annotations

import fcntl
import io
import json
import os

import pytest
from click.testing import CliRunner

from codesift.cli import _Progress, cli
from codesift.index.indexer import LOCK_NAME, index_tree
from tests.index.repo import make_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory, embedder):
    root = make_repo(tmp_path_factory.mktemp("terminal") / "repo")
    index_tree(root, embedder=embedder, workers=1)
    return root


def run(args, cwd, **kwargs):
    old = os.getcwd()
    try:
        os.chdir(cwd)
        return CliRunner().invoke(cli, args, **kwargs)
    finally:
        os.chdir(old)


def test_no_color_turns_styles_off(repo):
    assert "\x1b[" in run(["lookup", "start"], repo, color=True).stdout  # a terminal that takes colour
    assert "\x1b[" not in run(["lookup", "start"], repo).stdout  # not a terminal
    r = run(["lookup", "start"], repo, color=True, env={"NO_COLOR": "1"})
    assert r.exit_code == 0 and "src/server.py:11" in r.stdout and "\x1b[" not in r.output
    assert "\x1b[" in run(["lookup", "start"], repo, color=True, env={"NO_COLOR": ""}).stdout  # empty: not set


def _paths(r) -> set[str]:
    assert r.exit_code == 0, r.output
    return {x["path"] for x in json.loads(r.stdout)["results"]}


def test_path_repeats_and_exclude_path_leaves_out(repo):
    both = _paths(run(["search", "configuration", "--json", "-k", "50", "--path", "docs/*", "--path", "src/config.py"],
                      repo))
    assert both == {"docs/guide.md", "src/config.py"}
    everything = _paths(run(["search", "configuration", "--json", "-k", "50"], repo))
    no_src = _paths(run(["search", "configuration", "--json", "-k", "50", "--exclude-path", "src"], repo))
    assert no_src == {p for p in everything if not p.startswith("src/")} and no_src
    some = _paths(run(["search", "configuration", "--json", "-k", "50", "--path", "src",
                       "--exclude-path", "*.rs", "--exclude-path", "src/server.py"], repo))
    assert some == {"src/config.py"}


def test_models_json_is_one_document():
    r = CliRunner().invoke(cli, ["models", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # one document, however many models
    assert doc["models"] and all("path" in m for m in doc["models"])


def test_index_and_export_json_print_one_summary(tmp_path, embedder):
    root = make_repo(tmp_path / "repo")
    r = run(["index", str(root), "--json", "--workers", "1", "--device", "cpu"], tmp_path)
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["files"] == 7 and first["new"] == 7 and first["chunks"] > 0
    assert {"path": "huge.txt", "reason": first["skipped"][0]["reason"]} in first["skipped"]
    assert "indexing: 7/7 files" in r.stderr  # progress without a terminal: lines, not a bar
    again = json.loads(run(["index", str(root), "--json", "-q"], tmp_path).stdout)
    assert again["unchanged"] == 7 and again["new"] == 0
    r = run(["export", "-o", str(tmp_path / "out"), "--json"], root)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"out": str(tmp_path / "out"), "files": 7, "chunks": first["chunks"]}


def test_remove_deletes_the_index_and_nothing_else(tmp_path, embedder):
    root = make_repo(tmp_path / "repo")
    index_tree(root, embedder=embedder, workers=1)
    r = run(["remove", "--index-dir", str(root / "src")], tmp_path)
    assert r.exit_code == 1 and "holds no codesift index" in r.stderr and (root / "src" / "config.py").exists()
    with open(root / ".codesift" / LOCK_NAME, "a+") as lock:  # an index run going on
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = run(["remove"], root / "src")
        assert r.exit_code == 1 and "index run is updating" in r.stderr
    r = run(["remove"], root / "src")  # the nearest index above
    assert r.exit_code == 0 and "removed the index" in r.stderr, r.output
    assert not (root / ".codesift").exists() and (root / "src" / "config.py").exists()
    r = run(["remove", str(root)], tmp_path)
    assert r.exit_code == 1 and "nothing to remove" in r.stderr


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_without_a_terminal_is_a_line_every_few_seconds():
    clock, out = FakeClock(), io.StringIO()
    p = _Progress(True, out, tty=False, clock=clock, line_seconds=5)
    for t, done in [(1, 10), (2, 20), (4, 40)]:
        clock.t = t
        p(done, 100)
    assert out.getvalue() == ""  # not yet five seconds
    clock.t = 5
    p(50, 100)
    assert out.getvalue() == "indexing: 50/100 files, 10.0 files/s, 0:05 left\n"
    clock.t = 6
    p(100, 100)  # the end is always shown
    assert out.getvalue().splitlines()[-1] == "indexing: 100/100 files, 16.7 files/s"
    p.close()
    quiet = io.StringIO()
    _Progress(False, quiet, tty=False)(1, 1)
    assert quiet.getvalue() == ""


def test_progress_bar_shows_rate_and_time_left():
    clock, out = FakeClock(), io.StringIO()
    p = _Progress(True, out, tty=True, clock=clock)
    clock.t = 20
    p(100, 400)
    assert out.getvalue().startswith("\r[#######.......................] 100/400 files, 5.0 files/s, 1:00 left")
    p.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_index_in_a_subfolder_updates_the_enclosing_index(tmp_path, embedder):
    """Issue 15 #5: no second index inside an indexed tree, unless --index-dir asks for one."""
    root = make_repo(tmp_path / "repo")
    index_tree(root, embedder=embedder, workers=1)
    (root / "src" / "extra.py").write_text("def extra_function():\n    return 42\n")
    r = run(["index", "--json", "--workers", "1", "--device", "cpu"], root / "src")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["root"] == str(root.resolve()) and out["new"] == 1 and out["unchanged"] == 7
    assert "updating the index of" in r.stderr and not (root / "src" / ".codesift").exists()
    found = json.loads(run(["lookup", "extra_function", "--json"], root).stdout)["results"]
    assert found[0]["path"] == "src/extra.py"
    own = tmp_path / "src-index"
    r = run(["index", "src", "--json", "-q", "--workers", "1", "--device", "cpu", "--index-dir", str(own)], root)
    assert r.exit_code == 0 and json.loads(r.stdout)["files"] == 4 and (own / "index.db").is_file()
