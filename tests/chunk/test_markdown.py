"""Markdown: sections by heading, with their ancestry."""
from __future__ import annotations

from codesift.chunk import chunk_file
from tests.chunk.helpers import chunk_fixture, outline


def test_sections_follow_headings_not_fenced_hashes():
    assert outline(chunk_fixture("sample.md")) == [
        ("section", None, 1, 4, None),  # front matter and text before the first heading
        ("section", ("Install",), 6, 8, None),
        ("section", ("Install", "From source"), 10, 15, None),  # its ``` block holds a `# comment`
        ("section", ("Install", "From source", "Linux"), 17, 19, None),  # `### Linux ###`
        ("section", ("Usage",), 21, 24, None),  # setext =====
        ("section", ("Usage", "Options"), 26, 31, None),  # setext -----, its ~~~ block holds `##`
        ("section", ("Usage", "Long walkthrough"), 33, 69, (1, 3)),
        ("section", ("Usage", "Long walkthrough"), 71, 108, (2, 3)),
        ("section", ("Usage", "Long walkthrough"), 110, 123, (3, 3)),
        ("section", ("FAQ",), 125, 126, None),
    ]


def test_split_sections_keep_their_heading_as_context():
    parts = [c for c in chunk_fixture("sample.md").chunks if c.part]
    assert {c.context for c in parts} == {"## Long walkthrough"}
    assert all(c.content.startswith(("## Long", "Step")) for c in parts)  # cut between paragraphs


def test_long_fence_is_not_cut_when_it_fits():
    fence = "```python\n" + "".join(f"x{i} = {i}\n\n" for i in range(30)) + "```\n"
    text = "# Code\n\n" + "Intro paragraph.\n\n" * 20 + fence + "\nAfter.\n"
    chunks = chunk_file("doc.md", text).chunks
    fence_start = text.splitlines().index("```python") + 1
    fence_end = fence_start + fence.count("\n") - 1
    holding = [c for c in chunks if c.start_line <= fence_start <= c.end_line]
    assert len(holding) == 1 and holding[0].end_line >= fence_end
    assert all(not (fence_start < c.start_line <= fence_end) for c in chunks)


def test_heading_levels_pop_the_ancestry():
    text = "# A\na\n## B\nb\n### C\nc\n## D\nd\n# E\ne\n#### F\nf\n"
    assert [c.heading_path for c in chunk_file("x.md", text).chunks] == [
        ("A",), ("A", "B"), ("A", "B", "C"), ("A", "D"), ("E",), ("E", "F")]


def test_not_headings():
    text = ("#hashtag is not a heading\n    # indented code\n- item\n---\n> quote\n===\n\nC# language\n"
            "# C# ##\n")
    assert [c.heading_path for c in chunk_file("x.md", text).chunks] == [(), ("C#",)]


def test_unclosed_fence_runs_to_the_end():
    text = "# Top\n```\n# inside\n"
    assert [c.heading_path for c in chunk_file("x.md", text).chunks] == [("Top",)]


def test_document_without_headings_is_one_preamble_section():
    chunks = chunk_file("x.md", "Just text.\n\nMore text.\n").chunks
    assert [(c.kind, c.heading_path, c.start_line, c.end_line) for c in chunks] == [("section", (), 1, 3)]



def test_a_heading_with_no_text_opens_its_subsection():
    """Issue 15 #3: a title right above its first subsection was a chunk of a few tokens saying
    nothing; it now opens the subsection's chunk, whose heading path names both."""
    text = ("# Guide\n\n## Install\n\nRun pip.\n\nTitle\n=====\n\nSub\n---\n\ntext here\n\n"
            "## Empty\n\n# Next\n\n## Last\n")
    chunks = chunk_file("docs/a.md", text).chunks
    assert [(c.start_line, c.end_line, c.heading_path) for c in chunks] == [
        (1, 5, ("Guide", "Install")),  # `# Guide` has no text: it opens `## Install`
        (7, 13, ("Title", "Sub")),  # setext headings alike
        (15, 15, ("Title", "Empty")),  # a sibling follows: nothing below it to open, so it stays
        (17, 19, ("Next", "Last")),
    ]


def test_a_heading_path_names_every_heading_a_chunk_starts_with():
    text = "# A\n\n## B\n\n### C\n\ntext\n\n### D\n\nmore\n"
    chunks = chunk_file("x.md", text).chunks
    assert [(c.content.split("\n")[0], c.heading_path) for c in chunks] == [("# A", ("A", "B", "C")), ("### D", ("A", "B", "D"))]
    for c in chunks:
        headings = [line.lstrip("#").strip() for line in c.content.split("\n") if line.startswith("#")]
        assert set(headings) <= set(c.heading_path)


def test_own_section_text_leaves_out_the_headings_above():
    from codesift.chunk.markdown import own_section_text

    assert own_section_text("# A\n\n## B\n\n### C\n\ntext") == "### C\n\ntext"
    assert own_section_text("Title\n=====\n\nSub\n---\n\ntext") == "Sub\n---\n\ntext"
    assert own_section_text("## B\n\ntext\n\nmore") == "## B\n\ntext\n\nmore"  # a section of its own
    assert own_section_text("Run pip.\n\n# not a heading at the top") == "Run pip.\n\n# not a heading at the top"
