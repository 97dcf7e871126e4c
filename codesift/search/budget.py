"""Fitting search results into an agent's token budget.

An agent pays for every token it reads. Given results in rank order and a budget, we
inline whole chunks while they fit, cut the first one that does not at a line boundary
(with a marker saying how to get the rest), and return only metadata after that. Tokens
are counted with the index's own estimate on exactly the text returned, and the total
never exceeds the budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from codesift.chunk.model import estimate_tokens
from codesift.errors import CodesiftError
from codesift.search.searcher import SearchResult

# Below this many tokens left, a cut chunk is mostly marker: return metadata instead.
MIN_USEFUL_TOKENS = 48


@dataclass(frozen=True)
class BudgetedResult:
    result: SearchResult
    content: str  # what is returned inline: the whole chunk, a cut prefix plus marker line, or ""
    shown: str  # "all", "partial" or "none"
    tokens: int  # estimate_tokens(content)

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "ref": self.result.chunk.ref, "shown": self.shown,
                "tokens": self.tokens, "content": self.content}


def truncation_marker(shown: int, total: int, ref: str) -> str:
    return f"… [truncated: {shown} of {total} lines; get_chunk {ref} for the rest]\n"


def content_lines(text: str) -> list[str]:
    """Lines with their "\n". Chunk content joins the file's lines with "\n" (codesift.chunk.lines),
    so splitting on "\n" alone gives back the lines the index numbers."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def cut_to_fit(content: str, ref: str, max_tokens: int) -> str | None:
    """The longest run of leading whole lines, plus the marker, whose estimate is within
    `max_tokens`; None if not even one line fits."""
    lines = content_lines(content)
    n, length = 0, 0
    # the estimate grows with the length (and the marker with its digits): stop at the first miss
    while n + 1 < len(lines):
        grown = length + len(lines[n]) + len(truncation_marker(n + 1, len(lines), ref))
        if (grown + 3) // 4 > max_tokens:
            break
        n, length = n + 1, length + len(lines[n])
    # the arithmetic above mirrors estimate_tokens; the returned text is measured for real
    while n >= 1:
        text = "".join(lines[:n]) + truncation_marker(n, len(lines), ref)
        if estimate_tokens(text) <= max_tokens:
            return text
        n -= 1
    return None


def budgeted(results: Sequence[SearchResult], max_tokens: int) -> list[BudgetedResult]:
    """Every result, in rank order, with as much content inline as `max_tokens` allows: whole
    chunks first while they fit, then the next one cut (if a useful amount of budget is left),
    then metadata only. sum(r.tokens) <= max_tokens always."""
    if max_tokens < 0:
        raise CodesiftError(f"max_tokens must be 0 or more, not {max_tokens}")
    left = max_tokens
    out: list[BudgetedResult] = []
    open_ = True  # still inlining content
    for r in results:
        content, shown = "", "none"
        if open_:
            whole = r.chunk.content
            if estimate_tokens(whole) <= left:
                content, shown = whole, "all"
            else:
                open_ = False
                cut = cut_to_fit(whole, r.chunk.ref, left) if left >= MIN_USEFUL_TOKENS else None
                if cut is not None:
                    content, shown = cut, "partial"
        tokens = estimate_tokens(content)
        left -= tokens
        out.append(BudgetedResult(r, content, shown, tokens))
    return out


# --- whole responses ----------------------------------------------------------------------
# An agent's context counts a response with its own tokenizer, which is not ours: code, paths,
# hex refs and JSON escapes run nearer three characters per token than four. Whole responses
# are therefore counted at three characters a token, so that a budget is not overrun in practice.
RESPONSE_CHARS_PER_TOKEN = 3


def response_tokens(text: str) -> int:
    """A generous estimate of the tokens `text` costs an agent (see RESPONSE_CHARS_PER_TOKEN)."""
    return -(-len(text) // RESPONSE_CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Fitted:
    """A result as a whole response carries it: content all, partial (cut, with a marker) or none."""

    result: SearchResult
    content: str
    shown: str


Render = Callable[[list[Fitted], int], str]  # (results kept, results left out) -> the whole response


def fit_response(results: Sequence[SearchResult], max_tokens: int, render: Render) -> tuple[list[Fitted], str]:
    """Results in rank order, each with as much content as fits, so that the whole rendered
    response stays within `max_tokens` (by `response_tokens`). The head lines of all results are
    worth more than the content of the last ones: content goes in (whole chunks first, then the
    next one cut at a line boundary) only while every later result still fits as a head line;
    when even the head lines do not all fit, the last results are left out (`render` is told how
    many). Returns the results kept and the response text.

    The only overrun: a budget smaller than the response with no result at all."""
    if max_tokens < 0:
        raise CodesiftError(f"max_tokens must be 0 or more, not {max_tokens}")
    heads = [Fitted(r, "", "none") for r in results]
    kept: list[Fitted] = []
    open_ = True  # still inlining content
    for i, r in enumerate(results):
        rest = len(results) - i - 1

        def fits(item: Fitted) -> bool:  # with every later result as a head line
            return response_tokens(render(kept + [item] + heads[i + 1:], 0)) <= max_tokens

        if open_:
            whole = Fitted(r, r.chunk.content, "all")
            if fits(whole):
                kept.append(whole)
                continue
            open_ = False
            cut = _cut_fitting(r, fits)
            if cut is not None:
                kept.append(cut)
                continue
        if fits(heads[i]) or response_tokens(render(kept + [heads[i]], rest)) <= max_tokens:
            kept.append(heads[i])
            continue
        break
    return kept, render(kept, len(results) - len(kept))


def _cut_fitting(r: SearchResult, fits: Callable[[Fitted], bool]) -> Fitted | None:
    """The longest cut of r's content (leading whole lines and the marker) that fits, if it shows
    at least MIN_USEFUL_TOKENS of content; None otherwise."""
    lines = content_lines(r.chunk.content)

    def cut(n: int) -> Fitted:
        return Fitted(r, "".join(lines[:n]) + truncation_marker(n, len(lines), r.chunk.ref), "partial")

    lo, hi = 0, len(lines) - 1  # lo lines fit (0: none yet); more than hi would be the whole chunk
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(cut(mid)):
            lo = mid
        else:
            hi = mid - 1
    if lo == 0 or estimate_tokens("".join(lines[:lo])) < MIN_USEFUL_TOKENS:
        return None
    return cut(lo)
