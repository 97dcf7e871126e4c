"""A minified bundle in the index (issue 15 #3: one line became one chunk of 3,086 tokens): its
line is cut into bounded pieces, each found by what it holds, the line comes back whole from the
index, and bundles stay out of results unless asked."""
from __future__ import annotations

import pytest

from codesift.chunk.splitting import LINE_CHARS
from codesift.index.formats import CHUNK_MAX_LINES
from codesift.index.store import Store
from codesift.search import navigate
from codesift.search.searcher import Searcher
from tests.chunk.test_long_lines import BUNDLE, BUNDLE_LINE
from tests.index.repo import index_files

MAX_CHARS = CHUNK_MAX_LINES * LINE_CHARS
FILES = {
    "dist/store.min.js": BUNDLE,  # a bundle by its path: left out unless asked
    "web/store.js": BUNDLE,  # the same minified code where nothing says it is built: searched
    "src/app.py": "def main(store):\n    return store.get_state()\n",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    return index_files(tmp_path_factory.mktemp("long_lines"), FILES, embedder)


def test_the_line_is_stored_in_bounded_pieces_and_read_back_whole(index):
    with Store(index, readonly=True) as store:
        for path in ("dist/store.min.js", "web/store.js"):
            pieces = [c for c in store.iter_chunks(path) if c.start_line == c.end_line == 1]
            assert len(pieces) >= 2 and all(len(c.content) <= MAX_CHARS for c in pieces)
            assert "".join(c.content for c in pieces) == BUNDLE_LINE
            assert navigate.read_lines(store, path, 1, 2).content == BUNDLE.rstrip("\n")
            piece = pieces[-1]  # its own definition: the chunk itself, shown as it is
            assert navigate.definition_of(store, piece).lines.content == piece.content


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_a_piece_is_found_by_what_it_holds(index, mode):
    searcher = Searcher(index)
    try:
        for query, name in (("bindActionCreators", "function bindActionCreators("),
                            ("ensureCanMutateNextListeners", "function ensureCanMutateNextListeners(")):
            default = searcher.search(query, mode=mode, k=10)
            assert not [r for r in default if r.chunk.path.startswith("dist/")]
            top = default[0].chunk
            assert top.path == "web/store.js" and name in top.content and len(top.content) <= MAX_CHARS
            everything = searcher.search(query, mode=mode, k=10, include_generated=True)
            assert any(r.chunk.path == "dist/store.min.js" and name in r.chunk.content for r in everything)
    finally:
        searcher.close()
