from __future__ import annotations

import pytest

from codesift.chunk import language_for


@pytest.mark.parametrize("path,language", [
    ("pkg/mod.py", "python"), ("stubs/x.pyi", "python"), ("a.mjs", "javascript"), ("a.jsx", "javascript"),
    ("a.ts", "typescript"), ("a.cts", "typescript"), ("a.tsx", "tsx"), ("src/lib.rs", "rust"), ("main.go", "go"),
    ("A.java", "java"), ("x.c", "c"), ("x.h", "c"), ("x.hpp", "cpp"), ("x.cc", "cpp"), ("x.c++", "cpp"),
    ("README.md", "markdown"), ("doc.mdx", "markdown"), ("package.json", "json"), ("ci.yml", "yaml"),
    ("Cargo.toml", "toml"), ("notes.txt", "text"), ("index.rst", "text"), ("README", "text"),
    ("LICENSE", "text"), ("LICENSE-MIT", "text"), ("COPYING.LIB", "text"), ("run.sh", "shell"),
    ("Makefile", "make"), ("Dockerfile", "dockerfile"), ("app.rb", "ruby"), ("Main.kt", "kotlin"),
    ("Program.cs", "csharp"), ("q.sql", "sql"), ("page.html", "html"), ("s.css", "css"), ("UPPER.PY", "python"),
    ("dir.d/file", None), ("image.png", None), ("archive.tar.gz", None), (".gitignore", None),
])
def test_language_for(path, language):
    assert language_for(path) == language


def test_every_code_language_has_a_spec():
    from codesift.chunk.code_specs import SPECS
    from codesift.chunk.languages import CODE_LANGUAGES

    assert set(SPECS) == CODE_LANGUAGES
