"""Issue 15 #7: a symbol split into parts comes back whole, in one call; a line range of a file
is read from the index."""
from __future__ import annotations

import pytest

from codesift.errors import CodesiftError
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search import navigate

HUGE = "def migrate(db):\n" + "".join(f"    db.execute('step {i}')\n" for i in range(400)) + "    return db\n"
SOURCE = f'''import os


{HUGE}

class Cache:
    """Keeps things."""

    def get(self, key):
        return self.items[key]

    def put(self, key, value):
        self.items[key] = value


def helper():
    return os.sep
'''
LINES = SOURCE.split("\n")


def span(first: str, last: str) -> tuple[int, int]:
    """1-based line numbers of the first line starting with `first` and the next starting with `last`."""
    a = next(i for i, line in enumerate(LINES) if line.startswith(first))
    b = next(i for i, line in enumerate(LINES) if i >= a and line.startswith(last))
    return a + 1, b + 1


def text(a: int, b: int) -> str:
    return "\n".join(LINES[a - 1:b])


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("whole") / "repo"
    root.mkdir()
    (root / "app.py").write_text(SOURCE, encoding="utf-8")
    index_tree(root, embedder=embedder, workers=1)
    with Store(root / ".codesift", readonly=True) as s:
        yield s


def test_a_split_symbol_comes_back_whole_and_in_order(store):
    parts = [c for c in store.iter_chunks("app.py") if c.symbol == "migrate"]
    assert len(parts) > 3 and all(c.part for c in parts)
    (d,), total = navigate.get_symbol(store, "migrate")
    assert total == 1 and [c.rowid for c in d.chunks] == [c.rowid for c in parts]
    a, b = span("def migrate", "    return db")
    assert (d.lines.start_line, d.lines.end_line) == (a, b) and d.lines.content == text(a, b)
    # from any part, or any line inside it, the same whole definition
    middle = parts[len(parts) // 2]
    assert navigate.definition_of(store, middle).lines.content == text(a, b)
    assert navigate.definition_at(store, "app.py", middle.start_line + 1).lines.content == text(a, b)


def test_a_class_comes_with_its_methods_and_a_method_alone(store):
    (cls,), _ = navigate.get_symbol(store, "Cache")
    a, b = span("class Cache", "        self.items[key] = value")
    assert cls.lines.content == text(a, b) and [c.symbol for c in cls.chunks] == ["Cache", "Cache.get", "Cache.put"]
    (put,), _ = navigate.get_symbol(store, "put")
    a, b = span("    def put", "        self.items[key] = value")
    assert put.symbol == "Cache.put" and put.lines.content == text(a, b)
    line = span("        return self.items", "        return self.items")[0]
    assert navigate.definition_at(store, "app.py", line).symbol == "Cache.get"


def test_read_lines_from_the_index(store):
    assert navigate.read_lines(store, "app.py", 1, 5).content == text(1, 5)
    whole = navigate.read_lines(store, "app.py")
    assert whole.content.rstrip("\n") == SOURCE.rstrip("\n") and whole.total_lines == len(SOURCE.splitlines())
    assert navigate.read_lines(store, "app.py", 3, 10_000).end_line == whole.total_lines  # clipped to the file
    for bad, message in [((0, 2), "not in app.py"), ((9, 3), "not in app.py"), ((10_000, None), "not in app.py")]:
        with pytest.raises(CodesiftError, match=message):
            navigate.read_lines(store, "app.py", *bad)
    with pytest.raises(CodesiftError, match="not an indexed file"):
        navigate.read_lines(store, "nope.py", 1, 2)
    with pytest.raises(CodesiftError, match="refusing path"):
        navigate.read_lines(store, "../app.py", 1, 2)


def test_unknown_symbols_and_locations(store):
    with pytest.raises(CodesiftError, match="no symbol named 'Nope'"):
        navigate.get_symbol(store, "Nope")
    assert navigate.parse_location("src/app.py:42") == ("src/app.py", 42)
    assert navigate.parse_location("ns::Foo") is None and navigate.parse_location("Foo") is None


def test_nested_definitions_are_found_and_their_parent_comes_back_whole(tmp_path, embedder):
    """Issue 15 #2 through the index: `lookup DraftMap` finds a class inside a long function, and
    the function's complete definition still includes it."""
    from tests.chunk.test_nested import TS

    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "mapset.ts").write_text(TS)
    index_tree(root, embedder=embedder, workers=1)
    with Store(root / ".codesift", readonly=True) as s:
        (draft,) = navigate.lookup(s, "DraftMap")
        assert draft.symbol == "enableMapSet.DraftMap" and draft.path == "src/mapset.ts"
        (whole,), _ = navigate.get_symbol(s, "enableMapSet")
        assert whole.lines.content == TS.rstrip("\n") and len(whole.chunks) > 4
        (cls,), _ = navigate.get_symbol(s, "DraftMap")
        assert cls.lines.content.startswith("  class DraftMap") and cls.lines.content.endswith("    }\n  }")
