"""Issue 15 #6: refs lists what resolves to the symbol asked: built-in and unresolved callees are
counted, not listed; imports of other names from the same module are left out."""
from __future__ import annotations

import pytest

from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.navigate import explore, refs
from codesift.search.views import explore_dict

FILES = {
    "pkg/__init__.py": "from pkg.models import Session\n",
    "pkg/models.py": "class Session:\n    def send(self):\n        return 1\n\n\ndef build():\n    return Session()\n",
    "app.py": ("from pkg.models import build, Session\nimport pkg.models\n\n\n"
               "def run(items):\n    print(len(items))\n    unknown_helper(items)\n    return build()\n"),
    "client.py": "from pkg import Session\n\n\ndef go():\n    return Session().send()\n",
    "other.py": "from elsewhere import Session\nfrom pkg.models import build\n",
    "deep/a/b/c.py": "def deep():\n    return 1\n",
    "deep/a/x.py": "X = 1\n",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("refs") / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index_tree(root, embedder=embedder, workers=1)
    with Store(root / ".codesift", readonly=True) as s:
        yield s


def test_callees_only_names_the_index_defines(store):
    found = refs(store, "run")
    assert [c.name for c in found.callees] == ["build"]
    assert found.builtin_callees == 2 and found.unresolved_callees == 1  # print, len; unknown_helper


def test_imports_of_the_symbol_not_its_neighbours(store):
    found = refs(store, "Session")
    got = {(i.path, i.module, i.name, i.match) for i in found.imports}
    assert got == {("app.py", "pkg.models", "Session", "name+module"),  # from its module
                   ("pkg/__init__.py", "pkg.models", "Session", "name+module"),
                   ("client.py", "pkg", "Session", "name"),  # re-exported by the package above
                   ("app.py", "pkg.models", None, "module")}  # its module itself
    # left out: `build` from the same module (twice), and a Session from an unrelated module
    assert found.dropped_imports == 3 and found.total_imports == 4


def test_explore_depth_and_limit(store):
    one = explore(store, depth=1)
    assert {d["path"] for d in one.folders} == {"", "pkg", "deep"}
    assert {f.path for f in one.files} == {"app.py", "client.py", "other.py"}
    assert one.omitted_files == len(FILES) - 3 and one.omitted_folders == 2  # deep/a, deep/a/b
    two = explore_dict(explore(store, "deep", depth=2))
    assert [d["path"] for d in two["folders"]] == ["deep", "deep/a", "deep/a/b"]
    assert [f["path"] for f in two["files"]] == ["deep/a/x.py"] and two["omitted_files"] == 1
    assert two["folders"][0]["files"] == 2  # deeper files count in their folder
    few = explore(store, limit=2)
    assert len(few.folders) + len(few.files) == 2 and few.omitted_files == len(FILES)
