"""Which paths the walk leaves out by rule: ignore files, default folders, the index."""
from __future__ import annotations

from codesift.walk import walk

from tests.walk.helpers import listed, spy_on_scandir, write


def test_nested_gitignore_with_negation_and_folder_patterns(tmp_path):
    write(tmp_path, ".gitignore", "*.log\nbuild/\n/only_top.txt\n")
    write(tmp_path, "app.log")
    write(tmp_path, "only_top.txt")
    write(tmp_path, "build/out.txt")
    write(tmp_path, "src/only_top.txt")                      # anchored pattern: top only
    write(tmp_path, "src/main.py")
    write(tmp_path, "src/.gitignore", "!keep.log\ngen/\n/local.txt\n")
    write(tmp_path, "src/keep.log")                          # re-included below
    write(tmp_path, "src/other.log")
    write(tmp_path, "src/local.txt")                         # anchored to src/
    write(tmp_path, "src/deep/local.txt")
    write(tmp_path, "src/gen/code.py")
    write(tmp_path, "docs/build")                            # a file: "build/" is folders only

    result = walk(tmp_path)

    assert listed(result) == [
        ".gitignore", "docs/build", "src/.gitignore", "src/deep/local.txt", "src/keep.log",
        "src/main.py", "src/only_top.txt",
    ]
    assert result.skipped == []
    # app.log, only_top.txt, build/, src/other.log, src/local.txt, src/gen/
    assert result.ignored == 6


def test_excluded_folder_cannot_be_reincluded_from_inside(tmp_path):
    write(tmp_path, ".gitignore", "vendor/\n!vendor/keep.py\n")
    write(tmp_path, "vendor/keep.py")
    write(tmp_path, "vendor/.gitignore", "!keep.py\n")
    assert listed(walk(tmp_path)) == [".gitignore"]  # as in git


def test_whitelist_idiom(tmp_path):
    write(tmp_path, ".gitignore", "*\n!*/\n!*.py\n")
    write(tmp_path, "a/b/c.py")
    write(tmp_path, "a/b/c.txt")
    assert listed(walk(tmp_path)) == ["a/b/c.py"]


def test_ignore_and_codesiftignore_override_gitignore(tmp_path):
    write(tmp_path, ".gitignore", "*.gen.py\ndata/\nnotes.md\n")
    write(tmp_path, ".ignore", "!wanted.gen.py\n!data/\n")
    write(tmp_path, ".codesiftignore", "secret.py\n!notes.md\n")
    write(tmp_path, "wanted.gen.py")
    write(tmp_path, "other.gen.py")
    write(tmp_path, "data/table.csv")
    write(tmp_path, "notes.md")
    write(tmp_path, "secret.py")
    assert listed(walk(tmp_path)) == [
        ".codesiftignore", ".gitignore", ".ignore", "data/table.csv", "notes.md", "wanted.gen.py",
    ]


def test_reincluded_folder_still_gets_gitignore_file_rules(tmp_path):
    # .ignore re-includes build/ but says nothing about *.o inside: .gitignore still applies.
    write(tmp_path, ".gitignore", "build/\n*.tmp\n")
    write(tmp_path, ".ignore", "!build/\n")
    write(tmp_path, "build/gen.c")
    write(tmp_path, "build/scratch.tmp")
    assert listed(walk(tmp_path)) == [".gitignore", ".ignore", "build/gen.c"]


def test_nested_ignore_file_overrides_root_gitignore(tmp_path):
    write(tmp_path, ".gitignore", "*.txt\n")
    write(tmp_path, "pkg/.ignore", "!readme.txt\n")
    write(tmp_path, "pkg/readme.txt")
    write(tmp_path, "pkg/other.txt")
    assert listed(walk(tmp_path)) == [".gitignore", "pkg/.ignore", "pkg/readme.txt"]


def test_git_info_exclude(tmp_path):
    write(tmp_path, ".git/info/exclude", "local-notes.md\n")
    write(tmp_path, "local-notes.md")
    write(tmp_path, "main.py")
    assert listed(walk(tmp_path)) == ["main.py"]


def test_gitignore_above_the_root_applies_inside_a_repository(tmp_path):
    write(tmp_path, ".git/info/exclude", "sub/excluded.py\n")
    write(tmp_path, ".gitignore", "*.log\n/sub/gen/\n")
    write(tmp_path, "sub/a.log")
    write(tmp_path, "sub/gen/x.py")
    write(tmp_path, "sub/excluded.py")
    write(tmp_path, "sub/main.py")
    assert listed(walk(tmp_path / "sub")) == ["main.py"]


def test_extra_excludes_have_the_last_word(tmp_path):
    write(tmp_path, ".ignore", "!*.snap\n")
    write(tmp_path, "tests/a.snap")
    write(tmp_path, "tests/b.py")
    write(tmp_path, "fixtures/big.json")
    result = walk(tmp_path, extra_excludes=["*.snap", "/fixtures/"])
    assert listed(result) == [".ignore", "tests/b.py"]


def test_ignored_folder_is_not_descended(tmp_path, monkeypatch):
    write(tmp_path, ".gitignore", "dist/\n")
    for i in range(50):
        write(tmp_path, f"node_modules/pkg{i}/index.js")
        write(tmp_path, f"dist/chunk{i}.js")
    write(tmp_path, "index.js")
    seen = spy_on_scandir(monkeypatch)
    result = walk(tmp_path)
    assert listed(result) == [".gitignore", "index.js"]
    assert result.ignored == 2
    assert not [p for p in seen if "node_modules" in p or "dist" in p]


def test_default_folders_skipped_without_any_gitignore(tmp_path):
    for folder in [".git", ".hg", ".svn", ".jj", "node_modules", "__pycache__", ".venv", ".tox",
                   ".mypy_cache", ".pytest_cache", ".ruff_cache", ".codesift", "a/node_modules"]:
        write(tmp_path, f"{folder}/x.py")
    write(tmp_path, "venv/pyvenv.cfg")          # a virtualenv, by its marker file
    write(tmp_path, "venv/lib/site.py")
    write(tmp_path, "env-3.11/pyvenv.cfg")
    write(tmp_path, "venvs/notes.md")            # no marker: ordinary folder
    write(tmp_path, ".cache/kept.txt")           # too broad a name to skip
    result = walk(tmp_path)
    assert listed(result) == [".cache/kept.txt", "venvs/notes.md"]
    assert result.ignored == 15


def test_hidden_files_and_folders_are_kept(tmp_path):
    write(tmp_path, ".github/workflows/ci.yml")
    write(tmp_path, ".editorconfig")
    assert listed(walk(tmp_path)) == [".editorconfig", ".github/workflows/ci.yml"]


def test_index_dir_is_skipped(tmp_path):
    write(tmp_path, "store/index/chunks.jsonl", '{"a": 1}\n')
    write(tmp_path, "store/keep.py")
    write(tmp_path, ".codesift/meta.json", "{}\n")
    result = walk(tmp_path, index_dir=tmp_path / "store" / "index")
    assert listed(result) == ["store/keep.py"]
    assert result.ignored == 2


def test_ignore_file_with_bom_and_crlf(tmp_path):
    write(tmp_path, ".gitignore", b"\xef\xbb\xbf*.log\r\n!keep.log\r\n")
    write(tmp_path, "a.log")
    write(tmp_path, "keep.log")
    assert listed(walk(tmp_path)) == [".gitignore", "keep.log"]
