"""Every benchmark run leaves a JSON log: what it measured, on which machine, from which commit.

`write_result("quality", table)` writes benchmarks/results/quality-20250101-120000-abc1234.json
(the folder can be moved with CODESIFT_RESULTS_DIR, e.g. to a folder that a GPU lease sends back):

  {"name", "date", "host": {"hostname", "cpu", "cores", "gpus"}, "commit", "dirty",
   "command", "python", "result": payload}

`commit` is the checkout's HEAD and `dirty` says whether it had uncommitted changes (earlier logs
in the results folder do not count), so a figure can be traced to the code that produced it. A
copy without .git (a GPU lease gets the work tree only) takes the commit from CODESIFT_COMMIT, set
by whoever copied it (`CODESIFT_COMMIT=$(git rev-parse HEAD)`); `dirty` is then null.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit_info() -> dict:
    """{"commit": full sha or None, "short": abbreviated sha or None, "dirty": bool or None}."""
    # Whoever copied the tree says which commit it is: a copy may carry a stale .git of its own
    # (the GPU lease's copy holds the checkout's original HEAD, not the commit copied).
    given = os.environ.get("CODESIFT_COMMIT")
    sha = None if given else _git("rev-parse", "HEAD")
    if sha is None:
        return {"commit": given or None, "short": given[:7] if given else None, "dirty": None}
    top = _git("rev-parse", "--show-toplevel")
    results = os.path.relpath(RESULTS_DIR, top) if top else "benchmarks/results"
    status = _git("-C", top or str(HERE), "status", "--porcelain", "--", ".", f":(exclude){results}")
    return {"commit": sha, "short": _git("rev-parse", "--short", "HEAD") or sha[:7],
            "dirty": None if status is None else bool(status)}


def cpu_model() -> str:
    """The CPU's marketing name where Linux says it, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the CUDA devices torch sees (none without torch or a GPU)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def host_info() -> dict:
    return {"hostname": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count(), "gpus": gpu_names()}


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    return str(value)  # paths and the like


def write_result(name: str, payload: dict, argv: list[str] | None = None, results_dir: Path | None = None) -> Path:
    """Write one run's log as RESULTS_DIR/<name>-<YYYYmmdd-HHMMSS>-<short commit>.json; returns its path."""
    when = datetime.now().astimezone()
    git = commit_info()
    record = {"name": name, "date": when.isoformat(timespec="seconds"), "host": host_info(),
              "commit": git["commit"], "dirty": git["dirty"],
              "command": list(sys.argv if argv is None else argv),
              "python": platform.python_version(), "result": payload}
    folder = Path(results_dir or os.environ.get("CODESIFT_RESULTS_DIR") or RESULTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{when:%Y%m%d-%H%M%S}-{git['short'] or 'nogit'}"
    text = json.dumps(record, indent=1, default=_jsonable) + "\n"
    for n in range(1, 100):  # two runs within one second get -2, -3...
        path = folder / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{folder / stem}*.json: too many runs within one second")
    print(f"results written to {path}", file=sys.stderr)
    return path
