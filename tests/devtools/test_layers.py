"""The layering check: on synthetic packages (it must catch each kind of wrong import) and on codesift."""
from __future__ import annotations

import textwrap
from pathlib import Path

import codesift
from codesift.devtools import layers


def make_package(root: Path, files: dict[str, str]) -> Path:
    """A package named codesift under `root`, with an __init__.py in every folder."""
    package = root / "codesift"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in [package, *[p for p in package.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    return package


def found(violations: list[layers.Violation]) -> set[tuple[str, int, str, str, str]]:
    return {(v.path.as_posix(), v.line, v.source, v.target, v.why) for v in violations}


def test_clean_package_passes(tmp_path):
    package = make_package(tmp_path, {
        "errors.py": "class CodesiftError(Exception): pass\n",
        "walk/walker.py": "from codesift.errors import CodesiftError\nfrom . import model\n",
        "walk/model.py": "",
        "chunk/code.py": "from codesift import errors\nimport codesift.errors as e\n",
        "index/store.py": "from codesift.walk.walker import CodesiftError\nfrom ..chunk import code\n",
        "search/searcher.py": "def load():\n    from codesift.index.store import CodesiftError\n",
        "cli.py": "from codesift.search import searcher\nfrom codesift import cli_agents\n",
        "cli_agents.py": "from codesift.search.searcher import load\n",
    })
    assert layers.check(package) == []
    edges = layers.graph(layers.scan(package))
    assert edges[("index", "walk")] == 1 and edges[("index", "chunk")] == 1 and edges[("chunk", "errors")] == 2
    assert ("walk", "walk") not in edges  # imports within a stage are not edges
    assert layers.main([str(package)]) == 0


def test_each_wrong_import_is_caught(tmp_path):
    package = make_package(tmp_path, {
        "errors.py": "",
        "walk/walker.py": "import os\nfrom codesift.chunk.code import x  # sideways within tier 1\n",
        "chunk/code.py": "",
        "embed/backend.py": "\n\nimport codesift.walk.walker\n",  # sideways, plain import
        "index/document.py": """\
            import json


            def terms_of(text):
                from codesift.search.terms import terms  # upward, inside a function
                return terms(text)
            """,
        "index/relative.py": "from ..search import terms\n",  # upward, relative
        "index/version.py": "from codesift import __version__\n",  # upward to the package __init__
        "index/dynamic.py": "import importlib\nm = importlib.import_module('codesift.serve.mcp')\n",
        "search/terms.py": "from codesift.index import document\nfrom . import terms\n",  # both fine
        "serve/mcp.py": "",
    })
    assert found(layers.check(package)) == {
        ("codesift/walk/walker.py", 2, "walk", "chunk", "sideways"),
        ("codesift/embed/backend.py", 3, "embed", "walk", "sideways"),
        ("codesift/index/document.py", 5, "index", "search", "upward"),
        ("codesift/index/relative.py", 1, "index", "search", "upward"),
        ("codesift/index/version.py", 1, "index", "__init__", "upward"),
        ("codesift/index/dynamic.py", 2, "index", "serve", "upward"),
    }


def test_modules_outside_the_table_and_relative_imports_out_of_the_package_fail(tmp_path):
    package = make_package(tmp_path, {
        "errors.py": "",
        "plugins/extra.py": "from codesift.errors import x\n",  # a stage TIERS does not know
        "walk/walker.py": "from codesift.plugins import extra\nfrom ... import elsewhere\n",
    })
    assert found(layers.check(package)) == {
        ("codesift/plugins/__init__.py", 1, "?", "?", "a module in no stage of TIERS: add its stage to the table"),
        ("codesift/plugins/extra.py", 1, "?", "?", "a module in no stage of TIERS: add its stage to the table"),
        ("codesift/walk/walker.py", 1, "walk", "?", "the imported module is in no stage of TIERS"),
        ("codesift/walk/walker.py", 2, "walk", "?", "leaves the package"),
    }


def test_main_prints_the_graph_and_each_violation(tmp_path, capsys):
    package = make_package(tmp_path, {
        "index/document.py": "from codesift.search.terms import terms\n",
        "search/terms.py": "from codesift.index import document\n",
    })
    assert layers.main([str(package)]) == 1
    out = capsys.readouterr().out
    assert "  index -> search: 1   NOT ALLOWED" in out and "  search -> index: 1\n" in out
    assert "codesift/index/document.py:1  index -> search  (codesift.search.terms: upward)" in out


def test_every_stage_folder_of_codesift_is_in_the_table():
    root = Path(codesift.__file__).parent
    names = {p.stem for p in root.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    known = {name for tier in layers.TIERS for names in tier.values() for name in names}
    assert names <= known, names - known


def test_codesift_has_no_upward_imports():
    violations = layers.check(Path(codesift.__file__).parent)
    assert not violations, "\n".join(map(str, violations))
