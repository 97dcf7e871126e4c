"""The eval kit (../shared/eval) as the benchmarks use it: its folder and its own scorer."""
from __future__ import annotations

import sys
from pathlib import Path

KIT = Path(__file__).resolve().parents[2] / "shared" / "eval"


def scorer(kit: Path = KIT):
    """(load_jsonl, score) from the kit's score.py, unchanged."""
    if str(kit) not in sys.path:
        sys.path.insert(0, str(kit))
    from score import load_jsonl, score

    return load_jsonl, score
