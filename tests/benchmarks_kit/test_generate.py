"""The eval-set generator on a small tree written here: which functions become queries, what the
copied corpus holds, and that one tree and seed always give one set."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.evalkit.generate import first_sentence, generate

ROOT = Path(__file__).resolve().parents[2]

MODULE = '''\
import functools


def parse_config(path):
    """Read the configuration file and return its sections as a dict.

    More detail that is not part of the query.
    """
    text = open(path).read()
    return dict(line.split("=", 1) for line in text.splitlines())


def short(x):
    """Return x."""
    y = x
    return y


def one_statement(x):
    """Return the square of the number passed in by the caller."""
    return x * x


def same_line(x):
    """Sum the list of numbers given and return the total value."""; y = sum(x)
    return y


class Cache:
    def lookup(self, key):
        """Find the cached value stored for this key, or return None."""
        value = self.store.get(key)
        return value

    @functools.lru_cache
    def stats(self):
        """Count the hits and misses of the cache since it was created."""
        hits = self.hits
        return hits, self.misses

    def outer(self):
        def inner(a, b):
            """Merge two sorted lists into one sorted list of all items."""
            out = sorted(a + b)
            return out
        return inner


def dup_one():
    """Open a connection to the database server and return it."""
    c = 1
    return c


def dup_two():
    """Open a connection to the database server and return it."""
    c = 2
    return c
'''

# Functions (qualified name -> query) that must become queries, and only these.
EXPECTED = {
    "parse_config": "Read the configuration file and return its sections as a dict.",
    "Cache.lookup": "Find the cached value stored for this key, or return None.",
    "Cache.stats": "Count the hits and misses of the cache since it was created.",
    "Cache.outer.inner": "Merge two sorted lists into one sorted list of all items.",
}


def many_functions(n: int) -> str:
    return "".join(f'def f{i}(x):\n    """Compute the value number {i} of the series from x."""\n'
                   f"    y = x + {i}\n    return y\n\n\n" for i in range(n))


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "pkg" / "tests").mkdir(parents=True)
    (src / "pkg" / "core.py").write_text(MODULE)
    (src / "pkg" / "series.py").write_text(many_functions(30))
    # skipped: a tests folder, and a file that does not parse
    (src / "pkg" / "tests" / "test_core.py").write_text(many_functions(3).replace("def f", "def t"))
    (src / "pkg" / "broken.py").write_text('def f(:\n    """Never seen by anyone who reads this."""\n')
    # a form feed (which str.splitlines counts as a line end, Python does not) before a target
    (src / "pkg" / "paged.py").write_text('import os\n\x0c\ndef alpha(x):\n'
                                          '    """Compute the alpha value of the given number quickly."""\n'
                                          "    y = x + 1\n    return y\n")
    return src


def test_queries_are_the_long_first_sentences_of_removable_docstrings(tree, tmp_path):
    records = generate(tree, tmp_path / "out")
    core = {r["name"]: r["query"] for r in records if r["path"] == "pkg/core.py"}
    assert core == EXPECTED
    assert {r["path"] for r in records} == {"pkg/core.py", "pkg/series.py", "pkg/paged.py"}
    assert len(records) == len(EXPECTED) + 30 + 1
    assert sorted(r["id"] for r in records) == list(range(len(records)))
    assert all(list(r) == ["id", "query", "path", "start_line", "end_line", "name"] for r in records)
    lines = [json.loads(x) for x in (tmp_path / "out" / "queries.jsonl").read_text().splitlines()]
    assert lines == records


def test_corpus_has_target_docstrings_removed_and_spans_point_at_the_functions(tree, tmp_path):
    records = generate(tree, tmp_path / "out")
    corpus = tmp_path / "out" / "corpus"
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.py")) == [
        "pkg/core.py", "pkg/paged.py", "pkg/series.py"]
    core = (corpus / "pkg" / "core.py").read_text()
    ast.parse(core)
    for query in EXPECTED.values():
        assert query not in core
    for kept in ("Return x.", "Return the square of the number", "Sum the list of numbers"):
        assert kept in core  # not a target: short, one statement, on a line with code
    # an ambiguous query is no query, but its docstrings are gone all the same (a set is made once)
    assert "Open a connection" not in core
    for r in records:
        text = (corpus / r["path"]).read_text()
        fn_lines = text.split("\n")[r["start_line"] - 1:r["end_line"]]
        name = r["name"].rsplit(".", 1)[-1]
        assert fn_lines[0].lstrip().startswith(("def ", "@")), r
        assert any(line.lstrip().startswith(f"def {name}(") for line in fn_lines[:2]), r
        assert "return" in fn_lines[-1], r
    stats = next(r for r in records if r["name"] == "Cache.stats")
    assert (corpus / "pkg/core.py").read_text().split("\n")[stats["start_line"] - 1].strip() == "@functools.lru_cache"
    alpha = next(r for r in records if r["name"] == "alpha")
    assert (alpha["start_line"], alpha["end_line"]) == (3, 5)


def test_one_tree_and_seed_give_one_set(tree, tmp_path):
    a = generate(tree, tmp_path / "a", seed=1)
    b = generate(tree, tmp_path / "b", seed=1)
    c = generate(tree, tmp_path / "c", seed=2)
    assert a == b
    assert (tmp_path / "a" / "queries.jsonl").read_bytes() == (tmp_path / "b" / "queries.jsonl").read_bytes()
    assert [r["name"] for r in a] != [r["name"] for r in c]
    assert sorted(r["name"] for r in a) == sorted(r["name"] for r in c)
    few = generate(tree, tmp_path / "few", seed=1, max_queries=5)
    assert few == a[:5]


def test_refuses_to_replace_a_folder_that_is_not_an_eval_set(tree, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not an eval set"):
        generate(tree, out)
    assert (out / "notes.txt").read_text() == "keep me"
    generate(tree, tmp_path / "again")
    generate(tree, tmp_path / "again")  # an earlier set is replaced


def test_first_sentence():
    assert first_sentence("Do the thing.  Then more.") == "Do the thing."
    assert first_sentence("Wrapped over\n    two lines, e.g. this one! Rest") == "Wrapped over two lines, e.g."
    assert first_sentence("No full stop here\n\nSecond paragraph.") == "No full stop here"


def test_cli(tree, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.evalkit.generate", str(tree), str(tmp_path / "out"),
                           "--max-queries", "7", "--seed", "3"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "7 queries over 3 files" in proc.stderr
    assert len((tmp_path / "out" / "queries.jsonl").read_text().splitlines()) == 7
