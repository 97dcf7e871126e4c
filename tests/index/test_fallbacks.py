"""A file whose structure the chunker cannot read is cut into line windows, and the run says so."""
from __future__ import annotations

import codesift.chunk.chunker as chunk_stage
from codesift.chunk import chunk_file


def test_chunker_failure_is_reported_not_hidden(monkeypatch):
    def broken(*_args, **_kwargs):
        raise RecursionError("a parser surprise")

    monkeypatch.setattr(chunk_stage, "_pieces", broken)
    result = chunk_file("src/a.py", "def f():\n    return 1\n")
    assert result.chunks and all(c.kind == "lines" for c in result.chunks)
    assert result.fallback == "python chunker failed (RecursionError): cut into line windows"


def test_readable_file_has_no_fallback():
    assert chunk_file("src/a.py", "def f():\n    return 1\n").fallback is None


def test_index_summary_counts_fallbacks(tmp_path, embedder, monkeypatch):
    from codesift.index.indexer import index_tree

    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    (tmp_path / "b.md").write_text("# Title\n\nSome text.\n")
    real = chunk_stage._pieces

    def broken_for_python(source, language, *args):
        if language == "python":
            raise ValueError("a parser surprise")
        return real(source, language, *args)

    monkeypatch.setattr(chunk_stage, "_pieces", broken_for_python)
    summary = index_tree(tmp_path, embedder=embedder, workers=1)
    assert [(s.rel, s.reason) for s in summary.fallbacks] == [
        ("a.py", "python chunker failed (ValueError): cut into line windows")]
    assert "1 file(s) cut into line windows after a chunker error" in summary.line()
