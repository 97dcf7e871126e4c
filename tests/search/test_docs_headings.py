"""Markdown headings with no text of their own (issue 15 #3: 57 docs chunks were headings of 10
tokens or fewer): no chunk of their own, and their words still find the section they open."""
from __future__ import annotations

import pytest

from codesift.index.store import Store
from codesift.search.searcher import Searcher
from tests.index.repo import index_files

NOTES = """# Release notes

## 0.41.3 (November 18, 2024)

### Fixed

* Exclude the query string from `raw_path` in the test client.

## 0.41.2 (October 27, 2024)

### Fixed

* Allow a lifespan handler to be a plain generator.

### Added

* Accept a `headers` argument in `FileResponse`.
"""
FILES = {
    "docs/release-notes.md": NOTES,
    "docs/staticfiles.md": "# Static files\n\n## Mounting\n\nServe a folder of static files under a path prefix.\n",
    "app/files.py": "def file_response(path, headers=None):\n    return open(path, 'rb'), headers or {}\n",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    return index_files(tmp_path_factory.mktemp("docs_headings"), FILES, embedder)


def test_no_chunk_is_a_heading_alone(index):
    with Store(index, readonly=True) as store:
        chunks = list(store.iter_chunks())
    docs = [c for c in chunks if c.language == "markdown"]
    assert [c.heading_path for c in docs if c.path == "docs/release-notes.md"] == [
        ("Release notes", "0.41.3 (November 18, 2024)", "Fixed"),
        ("Release notes", "0.41.2 (October 27, 2024)", "Fixed"),
        ("Release notes", "0.41.2 (October 27, 2024)", "Added")]
    # every line of the file is still in a chunk, the headings with no text too
    assert "\n\n".join(c.content for c in docs if c.path == "docs/release-notes.md") + "\n" == NOTES


@pytest.mark.parametrize("mode", ["bm25", "hybrid", "semantic"])
def test_a_heading_with_no_text_finds_the_text_of_the_section_it_opens(index, mode):
    """The best result for the words of a heading with no text is the section it opens, its text
    included (it was the heading alone). A model does not tell versions apart: that question is
    not asked of semantic search alone."""
    questions = [("static files", "Static files", "Serve a folder")]
    if mode != "semantic":
        questions.append(("0.41.3 November 2024", "0.41.3 (November 18, 2024)", "Exclude the query string"))
    searcher = Searcher(index)
    try:
        for query, heading, text in questions:
            top = searcher.search(query, mode=mode, k=5)[0].chunk
            assert heading in top.heading_path and text in top.content, (query, top.heading_path)
    finally:
        searcher.close()
