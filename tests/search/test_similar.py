"""`similar`: chunks nearest a given chunk's own stored vector: near duplicates first, never the
chunk itself or the other parts of its split symbol."""
from __future__ import annotations

import pytest

from codesift.errors import CodesiftError
from codesift.index.indexer import index_tree
from codesift.search.navigate import chunk_of, lookup
from codesift.search.searcher import Searcher

ORIGINAL = '''def parse_header(line):
    """Split an HTTP header line into a lower-cased name and a stripped value."""
    name, sep, value = line.partition(":")
    if not sep:
        raise ValueError("not a header: " + line)
    return name.strip().lower(), value.strip()
'''
COPY = ORIGINAL.replace("parse_header", "read_header_line").replace("line", "text")
FILES = {
    "http/headers.py": ORIGINAL,
    "vendor/copied.py": COPY,
    "math/stats.py": "def mean(values):\n    return sum(values) / len(values)\n\n\n"
                     "def variance(values):\n    m = mean(values)\n    return sum((v - m) ** 2 for v in values) / len(values)\n",
    "io/files.py": "def write_all(path, data):\n    with open(path, 'wb') as f:\n        f.write(data)\n",
    "big.py": "def transform(rows):\n" + "".join(f"    rows[{i}] = rows[{i}] * {i} + 1\n" for i in range(300))
              + "    return rows\n",
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("similar") / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index_tree(root, embedder=embedder, workers=1)
    s = Searcher(root / ".codesift")
    yield s
    s.close()


def test_the_near_duplicate_comes_first(searcher):
    (chunk,) = lookup(searcher.store, "parse_header")
    results = searcher.similar(chunk, k=3)
    assert len(results) == 3 and results[0].chunk.symbol == "read_header_text"
    assert results[0].score > 0.8 and results[0].score - results[1].score > 0.3  # a copy stands out
    assert chunk.rowid not in {r.chunk.rowid for r in results}
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    # PATH:LINE points at the same chunk
    assert chunk_of(searcher.store, "http/headers.py:3").rowid == chunk.rowid


def test_other_parts_of_a_split_symbol_are_left_out(searcher):
    parts = lookup(searcher.store, "transform")
    assert len(parts) > 2
    results = searcher.similar(parts[1], k=4)
    assert len(results) == 4 and "transform" not in {r.chunk.symbol for r in results}


def test_filters_apply(searcher):
    (chunk,) = lookup(searcher.store, "parse_header")
    results = searcher.similar(chunk, k=10, exclude_paths=["vendor"])
    assert results and all(not r.chunk.path.startswith("vendor/") for r in results)
    assert {r.chunk.path for r in searcher.similar(chunk, k=10, path_glob="math/*")} == {"math/stats.py"}
    with pytest.raises(CodesiftError, match="not in the index|no indexed file"):
        searcher.similar(chunk, languages=["cobol"])
