"""The eval kit as the benchmarks use it: benchmarks/evalkit, in this repo.

Scripts here run as `python benchmarks/NAME.py`, which puts benchmarks/ on sys.path but not the
repo root; the root is added so that the kit has one module name (benchmarks.evalkit) everywhere.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from benchmarks.evalkit.score import load_jsonl, score  # noqa: E402

__all__ = ["load_jsonl", "score"]
