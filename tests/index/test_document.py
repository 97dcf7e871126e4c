"""What the model embeds for a chunk: its text with a context header, and its head alone."""
from __future__ import annotations

from codesift.chunk import chunk_file
from codesift.chunk.model import Chunk
from codesift.index.document import HEAD_LINE_CHARS, embed_text, head_text

SOURCE = '''\
class Reader:
    """Reads records."""

    @staticmethod
    @cached
    def read_all(self, path, max_records=None):
        with open(path) as f:
            return f.read()
'''


def test_head_is_path_name_and_signature_spelled_as_words():
    chunks = chunk_file("io/record_reader.py", SOURCE, "python").chunks
    method = next(c for c in chunks if c.symbol == "Reader.read_all")
    head = head_text(method)
    # decorators are skipped: the first line that says what the function is, is its def
    assert head == "io/record reader.py | Reader.read all | def read all(self, path, max records=None):"
    assert head != embed_text(method) and "f.read()" not in head


def test_head_of_a_later_part_is_the_split_symbols_signature():
    part2 = Chunk("a.py", "python", "function", 40, 80, "    x = 1\n    return x\n", symbol="big_job",
                  context="def big_job(data, *, retries=3):", part=(2, 3))
    assert head_text(part2) == "a.py | big job | def big job(data, *, retries=3):"
    part1 = Chunk("a.py", "python", "function", 1, 39, "def big_job(data, *, retries=3):\n    pass\n",
                  symbol="big_job", context="def big_job(data, *, retries=3):", part=(1, 3))
    assert head_text(part1) == head_text(part2)  # the same text, so one vector for both


def test_head_of_a_stored_row_is_the_chunks():
    """The second stage reads heads of chunk rows read back from the store, whose part is "i/n"."""
    from codesift.index.store import ChunkRow

    part2 = Chunk("a.py", "python", "function", 40, 80, "    x = 1\n    return x\n", symbol="big_job",
                  context="def big_job(data, *, retries=3):", part=(2, 3))
    row = ChunkRow(7, "ab" * 32, part2.path, part2.language, part2.kind, part2.start_line, part2.end_line,
                   part2.symbol, (), part2.context, "2/3", 5, part2.content)
    assert head_text(row) == head_text(part2) == "a.py | big job | def big job(data, *, retries=3):"
    first = ChunkRow(8, "cd" * 32, "a.py", "python", "function", 1, 39, "big_job", (), "def other():", "1/3", 5,
                     "def big_job(data):\n    y = 2\n")
    assert head_text(first) == "a.py | big job | def big job(data):"  # part 1: its own first line


def test_head_of_a_markdown_section_and_of_a_long_line():
    section = Chunk("docs/guide.md", "markdown", "section", 3, 9, "## Install\n\nRun pip.\n",
                    heading_path=("Guide", "Install"))
    assert head_text(section) == "docs/guide.md | Guide > Install | ## Install"
    long_line = Chunk("data.txt", "text", "lines", 1, 1, "x" * 5000 + "\n")
    assert head_text(long_line) == "data.txt | " + "x" * HEAD_LINE_CHARS


def test_a_section_reads_the_same_to_search_whether_its_parent_had_text():
    """A heading with no text of its own opens its subsection's chunk (issue 15 #3); its words are
    in the subsection's heading path, and the model and BM25 read that chunk as they read the same
    subsection under a parent with text: counting the parent's words twice would rank it above
    its siblings."""
    from codesift.index.document import bm25_fields

    opened = chunk_file("docs/guide.md", "# Guide\n\n## Install\n\nRun pip.\n").chunks
    under_text = chunk_file("docs/guide.md", "# Guide\n\nAbout it.\n\n## Install\n\nRun pip.\n").chunks[1]
    assert len(opened) == 1 and opened[0].content.startswith("# Guide")
    assert opened[0].heading_path == under_text.heading_path == ("Guide", "Install")
    for view in (embed_text, head_text, bm25_fields):
        assert view(opened[0]) == view(under_text)
