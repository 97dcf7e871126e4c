"""The scorer on cases worked out by hand."""
from __future__ import annotations

import json

import pytest

from benchmarks.evalkit.score import MAX_RESULT_LINES, first_hit, is_hit, main, score

TARGET = {"query": "q", "path": "a.py", "start_line": 10, "end_line": 19}  # 10 lines


def r(path: str, start: int, end: int) -> dict:
    return {"path": path, "start_line": start, "end_line": end}


@pytest.mark.parametrize("result, hit", [
    (r("a.py", 10, 19), True),           # the function itself
    (r("b.py", 10, 19), False),          # same lines, another file
    (r("a.py", 1, 9), False),            # just before it
    (r("a.py", 15, 30), True),           # overlap 5 = half of the smaller span (10)
    (r("a.py", 16, 30), False),          # overlap 4 < 5
    (r("a.py", 12, 12), True),           # one line inside: overlap 1 >= half of 1
    (r("a.py", 1, 150), True),           # a whole class holding it, at the length limit
    (r("a.py", 1, 151), False),          # one line longer: too long to count
    (r("a.py", 19, 25), False),          # grazing its last line: overlap 1 < half of the smaller span (7)
])
def test_is_hit(result, hit):
    assert is_hit(result, TARGET) is hit


def test_length_limit_is_the_constant():
    assert MAX_RESULT_LINES == 150
    assert is_hit(r("a.py", 1, 151), TARGET, max_result_lines=151)


def test_first_hit_rank_is_one_based_and_within_k():
    results = [r("b.py", 1, 5)] * 2 + [r("a.py", 10, 19)]
    assert first_hit(results, TARGET) == 3
    assert first_hit(results, TARGET, k=2) is None
    assert first_hit([], TARGET) is None


def test_score_by_hand():
    targets = [
        {"query": "one", "path": "a.py", "start_line": 1, "end_line": 10},
        {"query": "two", "path": "a.py", "start_line": 1, "end_line": 10},
        {"query": "three", "path": "b.py", "start_line": 5, "end_line": 8},
        {"query": "four", "path": "c.py", "start_line": 1, "end_line": 2},
        {"query": "five", "path": "d.py", "start_line": 1, "end_line": 2},
    ]
    miss = r("z.py", 1, 4)  # 4 lines
    results = {
        "one": [r("a.py", 1, 10), miss],                   # rank 1
        "two": [miss, miss, miss, r("a.py", 2, 9)],        # rank 4
        "three": [miss] * 10 + [r("b.py", 5, 8)],          # rank 11: outside the top 10
        "four": [],                                        # nothing found
        # "five" is missing altogether
    }
    s = score(targets, results)
    assert s == {"queries": 5, "missing": 1, "mrr@10": round((1 + 1 / 4) / 5, 4), "recall@1": 0.2,
                 "recall@10": 0.4, "mean_result_lines": round((10 + 4 + 4 * 3 + 8 + 4 * 10) / 16, 1)}
    assert score(targets, results, k=11)["mrr@11"] == round((1 + 1 / 4 + 1 / 11) / 5, 4)
    assert score(targets, results, k=3)["recall@3"] == 0.2


def test_score_needs_queries():
    with pytest.raises(ValueError):
        score([], {})


def test_cli(tmp_path, capsys):
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"id": i, **t}) + "\n" for i, t in enumerate([
        {"query": "one", "path": "a.py", "start_line": 1, "end_line": 10, "name": "f"},
        {"query": "two", "path": "a.py", "start_line": 20, "end_line": 30, "name": "g"}])))
    (tmp_path / "r.jsonl").write_text(
        json.dumps({"query": "two", "results": [r("a.py", 1, 10), r("a.py", 20, 30)]}) + "\n\n"
        + json.dumps({"query": "one", "results": [r("a.py", 1, 10)]}) + "\n")
    assert main([str(tmp_path / "q.jsonl"), str(tmp_path / "r.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mrr@10"] == 0.75 and out["recall@1"] == 0.5 and out["recall@10"] == 1.0 and out["missing"] == 0
