"""Navigation without a query (lookup, refs, explore, get_chunk) and client path checks,
on a small indexed repository with calls and imports across files."""
from __future__ import annotations

import os

import pytest

from codesift.errors import CodesiftError, PathOutsideRootError
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.navigate import Outline, Tree, explore, get_chunk, lookup, module_names, refs
from codesift.search.views import explore_dict, refs_dict
from tests.index.repo import make_repo

APP_FILES = {
    "app/__init__.py": "",
    "app/util.py": "def helper(x):\n    return x * 2\n\n\nclass Cache:\n    def get(self, key):\n"
                   "        return helper(key)\n",
    "app/main.py": "from app.util import helper\nimport app.util\n\n\ndef run():\n"
                   "    return helper(1) + app.util.helper(2)\n",
    "lib/other.py": "def helper():\n    return 0\n",
    "app/aaa.py": "def helper_extra():\n    return 1\n",  # sorts first by path: best matches must still lead
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder):
    base = tmp_path_factory.mktemp("nav")
    repo = make_repo(base / "repo")
    for rel, text in APP_FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_text("secret\n")
    os.symlink(base / "outside", repo / "escape")  # the walker skips it; explore must refuse it
    index_tree(repo, embedder=embedder, workers=1)
    with Store(repo / ".codesift") as s:
        yield s


def symbols(rows) -> list[str]:
    return [c.symbol for c in rows]


def test_lookup_exact_last_component_prefix_and_case(store):
    assert symbols(lookup(store, "HttpServer.start")) == ["HttpServer.start"]
    assert symbols(lookup(store, "start")) == ["HttpServer.start"]  # any X.start
    assert sorted(symbols(lookup(store, "helper"))) == ["helper", "helper"]
    assert symbols(lookup(store, "httpserver.STOP")) == ["HttpServer.stop"]  # case-insensitive fallback
    assert symbols(lookup(store, "Http", prefix=True))[0] == "HttpServer"
    assert set(symbols(lookup(store, "Http", prefix=True))) >= {"HttpServer", "HttpServer.start", "HttpServer.stop"}
    assert symbols(lookup(store, "handle_", prefix=True)) == ["HttpServer.handle_request"]
    assert lookup(store, "no_such_symbol") == []
    assert len(lookup(store, "H", prefix=True, limit=2)) == 2
    assert symbols(lookup(store, "helper", prefix=True, limit=2)) == ["helper", "helper"]  # exact before longer
    assert symbols(lookup(store, "helper", prefix=True))[-1] == "helper_extra"
    row = lookup(store, "load_config")[0]
    assert (row.path, row.start_line, row.end_line, row.kind) == ("src/config.py", 5, 7, "function")
    with pytest.raises(CodesiftError, match="not a symbol name"):
        lookup(store, "  ")


def test_refs_callers_callees_imports(store):
    found = refs(store, "helper")
    assert {c.path for c in found.definitions} == {"app/util.py", "lib/other.py"}
    assert {c.symbol for c in found.callers} == {"Cache.get", "run"}
    imports = {(i.path, i.module, i.name, i.match) for i in found.imports}
    assert ("app/main.py", "app.util", "helper", "name+module") in imports
    assert ("app/main.py", "app.util", None, "module") in imports
    assert found.resolved == "by-name" and "false positives" in found.note

    run = refs(store, "run")
    (callee,) = run.callees
    assert callee.name == "helper" and {c.path for c in callee.candidates} == {"app/util.py", "lib/other.py"}
    as_json = refs_dict(run)
    assert as_json["callees"][0]["ambiguous"] is True and as_json["resolved"] == "by-name"

    stop = refs_dict(refs(store, "HttpServer.stop"))
    assert stop["callees"] == [] and stop["unresolved_callees"] == 1  # sock.close(): defined outside the index


def test_module_names():
    assert module_names("src/pkg/util.py") == {"src.pkg.util", "pkg.util", "util"}
    assert module_names("pkg/__init__.py") == {"pkg"}


def test_explore_tree_folder_and_outline(store):
    tree = explore(store)
    assert isinstance(tree, Tree) and tree.folder == ""
    paths = [f.path for f in tree.files]
    assert "src/server.py" in paths and "app/util.py" in paths and not any(p.startswith("escape") for p in paths)
    root = next(d for d in tree.folders if d["path"] == "")
    assert root["files"] == tree.total_files and root["chunks"] == sum(f.chunks for f in tree.files)
    assert root["languages"]["python"] >= 5

    src = explore(store, "./src/")
    assert isinstance(src, Tree) and {f.path for f in src.files} == {"src/config.py", "src/server.py", "src/geometry.rs"}

    outline = explore(store, "src/server.py")
    assert isinstance(outline, Outline) and outline.file.language == "python"
    assert [c.symbol for c in outline.chunks][1:3] == ["HttpServer", "HttpServer.__init__"]
    lines = [(c.start_line, c.end_line) for c in outline.chunks]
    assert lines == sorted(lines)
    md = explore_dict(explore(store, "docs/guide.md"))
    assert md["type"] == "outline"
    assert md["chunks"][-1]["label"] == "User guide > Configuration > Environment variables"

    few = explore_dict(explore(store, max_files=2))
    assert few["files"] == [] and few["omitted_files"] == few["total_files"] and "folder" in few["note"]
    with pytest.raises(CodesiftError, match="not an indexed file or folder"):
        explore(store, "src/missing.py")


@pytest.mark.parametrize("path, why", [
    ("../../etc/passwd", "'..'"), ("src/../../x", "'..'"), ("/etc/passwd", "absolute"),
    ("C:\\Windows", "absolute"), ("src/\x00config.py", "NUL"), ("escape/secret.txt", "symlink"),
    ("escape", "symlink"),
])
def test_paths_outside_the_root_are_refused(store, path, why):
    with pytest.raises(PathOutsideRootError, match=why) as e:
        explore(store, path)
    assert "relative to the indexed root" in str(e.value)


def test_get_chunk_by_ref_and_id(store):
    row = lookup(store, "merge_env")[0]
    assert get_chunk(store, row.ref).content.startswith("def merge_env(")
    assert get_chunk(store, row.id.upper()).id == row.id
    for bad in ("zz", "abc", "../../etc/passwd", "1234\x00"):
        with pytest.raises(CodesiftError, match="not a chunk id or ref"):
            get_chunk(store, bad)
    with pytest.raises(CodesiftError, match="no chunk"):
        get_chunk(store, "0" * 12)
