"""The eval kit as the benchmarks use it: benchmarks/evalkit, in this repo.

Scripts here run as `python benchmarks/NAME.py`, which puts benchmarks/ on sys.path but not the
repo root; the root is added so that the kit has one module name (benchmarks.evalkit) everywhere.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from benchmarks.evalkit.score import load_jsonl, score  # noqa: E402

__all__ = ["checkout", "load_jsonl", "score"]


def checkout(commit: str, work: Path) -> Path:
    """WORK/code-COMMIT: the codesift package as it was at `commit` (git archive; no worktree)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    out = work / f"code-{sha[:12]}"
    if not (out / "codesift").is_dir():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "codesift"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out
