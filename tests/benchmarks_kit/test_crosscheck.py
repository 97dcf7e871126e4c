"""Our kit against the outside eval kit (../shared/eval beside the repo; CI has it): both must
make the same eval set from the same tree, and give the same scores for the same results, so
that figures from either can be compared. The outside kit is only read here, never imported by
the benchmarks."""
from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from benchmarks.evalkit.generate import generate
from benchmarks.evalkit.score import score

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_KIT = Path(os.environ.get("CODESIFT_EVAL_KIT") or ROOT.parent / "shared" / "eval")


@pytest.fixture(scope="module")
def kit() -> Path:
    if not (OUTSIDE_KIT / "score.py").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI runs with the outside eval kit at {OUTSIDE_KIT}, and it is not there")
        pytest.skip(f"the outside eval kit is not at {OUTSIDE_KIT} (set CODESIFT_EVAL_KIT to its folder)")
    return OUTSIDE_KIT


@pytest.fixture(scope="module")
def kit_score(kit):
    spec = importlib.util.spec_from_file_location("outside_eval_kit_score", kit / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score


def random_case(rng: random.Random, n_queries: int) -> tuple[list[dict], dict]:
    """Targets and results over a few files, with spans of every size near each other."""
    paths = ["a.py", "b.py", "pkg/c.py"]
    targets, results = [], {}
    for i in range(n_queries):
        start = rng.randint(1, 300)
        t = {"query": f"query {i}", "path": rng.choice(paths), "start_line": start,
             "end_line": start + rng.choice([0, 1, 4, 9, 30, 120])}
        targets.append(t)
        if rng.random() < 0.05:
            continue  # missing
        got = []
        for _ in range(rng.randint(0, 14)):
            s = max(1, t["start_line"] + rng.randint(-40, 40))
            got.append({"path": rng.choice(paths + [t["path"]] * 3), "start_line": s,
                        "end_line": s + rng.choice([0, 2, 5, 10, 60, 149, 150, 200])})
        results[t["query"]] = got
    return targets, results


@pytest.mark.parametrize("seed", range(5))
def test_scores_agree_with_the_outside_kit(kit_score, seed):
    targets, results = random_case(random.Random(seed), 400)
    for k in (1, 10):
        ours = score(targets, results, k=k)
        assert ours == kit_score(targets, results, k=k)
    assert 0 < ours["mrr@10"] < 1  # a case with hits and misses both


def test_eval_sets_agree_with_the_outside_kit(kit, tmp_path):
    # a real package, with no form feed in it: there the outside kit's lines shift (see test_generate)
    src = Path(sysconfig.get_paths()["stdlib"]) / "email"
    records = generate(src, tmp_path / "ours", max_queries=50, seed=5)
    subprocess.run([sys.executable, str(kit / "make_codesearch_eval.py"), str(src), str(tmp_path / "theirs"),
                    "--max-queries", "50", "--seed", "5"], check=True, capture_output=True)
    assert len(records) == 50
    ours = (tmp_path / "ours" / "queries.jsonl").read_text()
    assert ours == (tmp_path / "theirs" / "queries.jsonl").read_text()
    files = sorted(p.relative_to(tmp_path / "ours").as_posix() for p in (tmp_path / "ours").rglob("*.py"))
    assert files == sorted(p.relative_to(tmp_path / "theirs").as_posix() for p in (tmp_path / "theirs").rglob("*.py"))
    for f in files:
        assert (tmp_path / "ours" / f).read_bytes() == (tmp_path / "theirs" / f).read_bytes(), f
