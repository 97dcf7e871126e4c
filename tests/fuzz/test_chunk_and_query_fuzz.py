"""Fuzzing the chunkers and the query side (hypothesis): random text in every language, random
queries. Properties: chunking never raises and every chunking keeps its invariants (the file's
own lines, in order, all non-blank lines covered, none over the size limit); term extraction
never raises; a search either answers or refuses with a one-line CodesiftError.

CODESIFT_FUZZ_EXAMPLES=N runs N random cases per test instead of the fixed, reproducible default.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesift.chunk import chunk_file
from codesift.errors import CodesiftError
from codesift.terms import query_terms, spaced_identifiers, terms
from tests.chunk.invariants import invariant_violations

pytestmark = pytest.mark.slow

_EXPLORING = "CODESIFT_FUZZ_EXAMPLES" in os.environ


def fuzz(examples: int) -> settings:
    return settings(max_examples=int(os.environ.get("CODESIFT_FUZZ_EXAMPLES", examples)),
                    derandomize=not _EXPLORING, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# Pieces of the syntax the chunkers look at, glued at random, with random text between them.
_SYNTAX = ["def ", "class ", "async def ", "(", ")", ":", "\n", "    ", "\t", "{", "}", ";", "fn ", "func ",
           "function ", "=>", "#", "## ", "```", "- ", "\"", "'", "\"\"\"", "/*", "*/", "//", "[", "]", "=",
           "key: ", "---", "\r\n", "\r", "\x0c", "\u2028", "é", "\udcff", "\x00", "@decorator\n", "import x\n"]
texts = st.one_of(
    st.lists(st.one_of(st.sampled_from(_SYNTAX), st.text(max_size=8)), max_size=60).map("".join),
    st.text(max_size=300),
)
FILES = ["a.py", "a.js", "a.ts", "a.tsx", "a.rs", "a.go", "A.java", "a.c", "a.cpp", "a.md", "a.json",
         "a.yaml", "a.toml", "a.txt", "Makefile"]


@fuzz(1500)
@given(text=texts, name=st.sampled_from(FILES))
def test_chunking_never_raises_and_keeps_its_invariants(text, name):
    result = chunk_file(f"src/{name}", text)
    assert invariant_violations(text, result) == []
    assert len({c.id for c in result.chunks}) == len(result.chunks)


queries = st.one_of(st.text(max_size=60), st.lists(st.sampled_from(_SYNTAX + ["AND", "OR", "NOT", "NEAR", "*",
                                                                             "\"", "^", "-", "+"]),
                                                   max_size=12).map(" ".join))


@fuzz(1500)
@given(q=queries)
def test_terms_never_raise(q):
    for t in query_terms(q):
        assert t and " " not in t
    terms(q)
    spaced_identifiers(q)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    from codesift.index.indexer import index_tree
    from codesift.search.searcher import Searcher
    from tests.index.repo import make_repo

    repo = make_repo(tmp_path_factory.mktemp("fuzz") / "repo")
    index_tree(repo, embedder=embedder, workers=1)
    s = Searcher(repo / ".codesift")
    yield s
    s.close()


@fuzz(100)
@given(q=queries, mode=st.sampled_from(["hybrid", "bm25", "semantic"]))
def test_search_answers_or_refuses_in_one_line(searcher, q, mode):
    try:
        results = searcher.search(q, mode=mode, k=5)
    except CodesiftError as e:
        assert "\n" not in str(e)
        return
    assert len(results) <= 5
