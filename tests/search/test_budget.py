"""budgeted(): over random results and budgets, the returned content never exceeds the budget,
whole chunks come first in rank order, and at most one chunk is cut, at a line boundary."""
from __future__ import annotations

import random
import re

import pytest

from codesift.chunk.model import estimate_tokens
from codesift.errors import CodesiftError
from codesift.index.store import ChunkRow
from codesift.search.budget import MIN_USEFUL_TOKENS, budgeted, content_lines
from codesift.search.searcher import SearchResult


def fake_result(rng: random.Random, i: int) -> SearchResult:
    n_lines = rng.choice([1, 2, 5, 20, 80, 300])
    lines = ["".join(rng.choice("abc xyz_()é\t\x0c") for _ in range(rng.choice([0, 3, 40, 120, 400])))
             for _ in range(n_lines)]
    content = "\n".join(lines)
    cid = f"{i:04x}" + "ab" * 30
    row = ChunkRow(i, cid, f"f{i}.py", "python", "function", 1, n_lines, f"f{i}", (), "", None,
                   estimate_tokens(content), content)
    return SearchResult(row, 1.0 / (i + 1))


@pytest.mark.parametrize("seed", range(200))
def test_budget_is_never_exceeded_and_whole_chunks_come_first(seed):
    rng = random.Random(seed)
    results = [fake_result(rng, i) for i in range(rng.randint(0, 12))]
    budget = rng.choice([0, 1, 5, 47, 48, 49, 100, 500, 2000, rng.randint(0, 20000)])
    items = budgeted(results, budget)

    assert [b.result for b in items] == results  # every result, in rank order, metadata at least
    assert sum(estimate_tokens(b.content) for b in items) <= budget
    assert all(b.tokens == estimate_tokens(b.content) for b in items)
    shown = "".join({"all": "A", "partial": "P", "none": "N"}[b.shown] for b in items)
    assert re.fullmatch("A*P?N*", shown)  # whole chunks, at most one cut, then metadata only
    n_whole = len(shown) - len(shown.lstrip("A"))
    for b in items[:n_whole]:
        assert b.content == b.result.chunk.content
    left = budget - sum(b.tokens for b in items[:n_whole])
    if n_whole < len(items):  # the first chunk not returned whole did not fit
        nxt = items[n_whole]
        assert estimate_tokens(nxt.result.chunk.content) > left
        if nxt.shown == "partial":
            assert left >= MIN_USEFUL_TOKENS
            body, marker = nxt.content.rsplit("… [truncated: ", 1)
            lines = content_lines(nxt.result.chunk.content)
            n = len(content_lines(body))
            assert body == "".join(lines[:n]) and 1 <= n < len(lines)
            assert marker == f"{n} of {len(lines)} lines; get_chunk {nxt.result.chunk.ref} for the rest]\n"


def test_cut_is_as_long_as_the_budget_allows():
    lines = [f"line {i:03d} " + "x" * 30 for i in range(100)]  # 40 characters + newline each
    row = ChunkRow(1, "c" * 64, "a.py", "python", "function", 1, 100, "f", (), "", None, 0, "\n".join(lines))
    (item,) = budgeted([SearchResult(row, 1.0)], 200)
    assert item.shown == "partial" and item.tokens <= 200
    n = int(item.content.split("[truncated: ")[1].split(" of")[0])
    longer = "".join(content_lines(row.content)[:n + 1]) + f"… [truncated: {n + 1} of 100 lines; get_chunk cccccccccccc for the rest]\n"
    assert estimate_tokens(longer) > 200  # one more line would not have fitted


def test_tiny_budgets_still_return_metadata():
    rng = random.Random(1)
    results = [fake_result(rng, i) for i in range(5)]
    items = budgeted(results, 0)
    assert len(items) == 5 and all(b.content == "" or b.shown == "all" for b in items)
    with pytest.raises(CodesiftError, match="0 or more"):
        budgeted(results, -1)


@pytest.mark.parametrize("seed", range(100))
@pytest.mark.parametrize("form", ["text", "json"])
def test_whole_responses_fit_their_budget(seed, form):
    """fit_response over random results and budgets, with the MCP renderings: the whole response is
    within budget whenever the response with no result is, results keep rank order, content
    shrinks monotonically (all, then at most one partial, then none), and left-out results come last."""
    import json

    from codesift.search.budget import Fitted, fit_response, response_tokens
    from codesift.search.views import search_json, search_text

    rng = random.Random(seed)
    results = [fake_result(rng, i) for i in range(rng.randint(0, 12))]
    budget = rng.choice([20, 60, 100, 300, 1000, 5000, rng.randint(0, 40000)])
    if form == "text":
        def render(kept, left):
            return search_text("q \"x\"", "hybrid", kept, left, note="a note")
    else:
        def render(kept, left):
            return json.dumps(search_json("q", "hybrid", kept, left, budget), ensure_ascii=False,
                              separators=(",", ":"))
    kept, text = fit_response(results, budget, render)
    assert text == render(kept, len(results) - len(kept))
    if response_tokens(render([], len(results))) <= budget:
        assert response_tokens(text) <= budget
    assert [f.result for f in kept] == results[:len(kept)]
    if response_tokens(render([Fitted(r, "", "none") for r in results], 0)) <= budget:
        assert len(kept) == len(results)  # content never pushes a result's head line out
    shown = "".join({"all": "A", "partial": "P", "none": "N"}[f.shown] for f in kept)
    assert re.fullmatch("A*P?N*", shown)
    for f in kept:
        if f.shown == "partial":
            assert f.content.startswith(f.result.chunk.content[:len(f.content.split("… [truncated")[0])])
            assert estimate_tokens(f.content) >= MIN_USEFUL_TOKENS
    if budget >= 40000 and sum(len(r.chunk.content) for r in results) < 40000:
        assert shown == "A" * len(results)
