"""Shared parts of the fault suite: generated trees, the CLI as a real process, process tables."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
# The numpy engine: these runs must last long enough to be stopped, killed or searched half-way,
# and ONNX Runtime (the default CPU engine where installed) embeds their small trees in one go.
ENV = {**os.environ, "PYTHONPATH": str(PROJECT), "CODESIFT_DEVICE": "cpu", "CODESIFT_ENGINE": "numpy"}
NOBODY = 65534

# Commands that only read an index, as a user types them (after `codesift`, before --index-dir).
READ_COMMANDS = [
    ["status"], ["status", "--json"],
    ["search", "load config file"], ["search", "load config file", "--mode", "semantic"],
    ["search", "load_config", "--mode", "bm25", "--json"], ["search", "server", "--max-tokens", "200"],
    ["lookup", "load_config"], ["refs", "HttpServer.stop"], ["explore"], ["explore", "src/server.py"],
]


def run_cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess:
    """`codesift ARGS` in a process of its own; output as bytes (it may not be UTF-8)."""
    return subprocess.run([sys.executable, "-m", "codesift.cli", *args], input=stdin, capture_output=True,
                          env=ENV, cwd=cwd or PROJECT, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error a failed command printed, checked to be one line starting 'Error: ' and no traceback."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def start_index(root: Path, *args: str, quiet: bool = True, session: bool = False) -> subprocess.Popen:
    """`codesift index ROOT` started in the background, with SIGINT at its default (a shell
    running tests in the background would otherwise hand it down ignored); with `session`, in a
    process group of its own, as a terminal's foreground job (Ctrl-C reaches the whole group)."""
    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "codesift.cli", "index", str(root), "--device", "cpu",
                             *(["-q"] if quiet else []), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                            preexec_fn=default_sigint, start_new_session=session)


def committed_files(index_dir: Path) -> int:
    """Files committed to the index so far, read as another process would (0 before it exists)."""
    db = index_dir / "index.db"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def wait_for(predicate, proc: subprocess.Popen | None = None, limit_s: float = 300, what: str = "") -> None:
    """Poll `predicate` until true; fail if `proc` ends first or after a generous limit."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended ({proc.returncode}) before {what}: "
                                 + proc.stderr.read().decode("utf-8", "replace")[-2000:])
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (zombies count as gone)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat and stat[1] == pid and stat[0] != "Z":
                out.add(int(entry))
    return out


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text[text.rindex(")") + 2:].split()[:2]
    return state, int(ppid)


def make_tree(root: Path, n_files: int, tag: str = "alpha", minified: int = 0) -> Path:
    """`n_files` Python files, each one small function with names and words of its own (so a
    search can tell them apart); and `minified` files of long lines, which the workers read and
    skip, to give the index run enough bytes to start its worker processes."""
    for i in range(n_files):
        p = root / f"pkg{i % 5}" / f"mod_{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"def {tag}_handler_{i}(request):\n"
                     f'    """Handle {tag} request {i}: check token {tag}{i}, then forward it."""\n'
                     f"    return forward_{tag}_{i}(request, retries={i % 7})\n")
    for i in range(minified):
        p = root / "dist" / f"bundle_{i}.js"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(("var a" + str(i) + "=function(){return 1};") * 1500 + "\n")
    return root
