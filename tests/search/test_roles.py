"""File roles in search (issue 15 #3): bundles and lock files left out unless asked, manifests and
changelogs ranked below the code they talk about, roles shown, and stored by migration 4."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.searcher import DEFAULT_CONFIG, Searcher

DRAFT = '''export function finalizeDraftState(draft, patches) {
  const state = draft.base;
  for (const patch of patches) {
    applyPatchToState(state, patch);
  }
  return freezeFinalizedState(state);
}
'''
FILES = {
    "src/finalize.ts": DRAFT,
    "dist/immer.js": "// built\n" + DRAFT,
    "dist/immer.min.js": DRAFT.replace("\n", " "),
    "src/config.py": '''import json


def read_json_settings(path):
    """Read the JSON settings file and return its values."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
''',
    "package.json": json.dumps({"name": "json-settings", "description": "read json settings",
                                "keywords": ["json", "settings"]}, indent=2) + "\n",
    "yarn.lock": "json-settings@^1.0.0:\n  version \"1.0.0\"\n  resolved json settings\n",
    "src/redirects.py": '''def follow_redirects(response, session, max_redirects=30):
    """Follow the redirects of a response: where redirects are handled."""
    seen = 0
    while response.is_redirect and seen < max_redirects:
        response = session.send(response.next_request)
        seen += 1
    return response
''',
    "HISTORY.md": '''# History

## 2.3.0
- Redirects are handled for every redirect code, and where redirects loop they stop.
''',
}


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("roles")
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index_tree(root, embedder=embedder, workers=1)
    return root / ".codesift"


def _paths(searcher, query, mode="bm25", **kw):
    return [r.chunk.path for r in searcher.search(query, mode=mode, k=10, **kw)]


def test_roles_are_stored_and_shown(index):
    with Store(index, readonly=True) as store:
        roles = {c.path: c.role for c in store.iter_chunks()}
    assert roles["src/finalize.ts"] == "source" and roles["dist/immer.js"] == "bundle"
    assert roles["package.json"] == "manifest" and roles["yarn.lock"] == "lock" and roles["HISTORY.md"] == "changelog"
    searcher = Searcher(index)
    hit = next(r for r in searcher.search("json settings", mode="bm25", k=10) if r.chunk.path == "package.json")
    assert hit.to_dict()["role"] == "manifest"


def test_bundles_and_lock_files_are_left_out_unless_asked(index):
    searcher = Searcher(index)
    for mode in ("bm25", "hybrid"):
        default = _paths(searcher, "finalizeDraftState", mode)
        assert default[0] == "src/finalize.ts" and not any(p.startswith("dist/") for p in default)
        assert "yarn.lock" not in _paths(searcher, "json settings", mode)
        everything = _paths(searcher, "finalizeDraftState", mode, include_generated=True)
        assert {"dist/immer.js", "dist/immer.min.js"} <= set(everything)
        assert everything[0] == "src/finalize.ts"  # same text: source first
        assert "yarn.lock" in _paths(searcher, "json settings", mode, include_generated=True)
    assert _paths(searcher, "finalizeDraftState", path_glob="dist/*")  # a path asked for is searched


def test_manifests_and_changelogs_rank_below_code(index):
    """The role prior multiplies their fused scores (config.role_weights, under 1): code they talk
    about comes first. Against the ablation (no role prior), their scores are that weight times as high."""
    plain = Searcher(index, config=replace(DEFAULT_CONFIG, role_weights=()))
    searcher = Searcher(index)
    weights = dict(DEFAULT_CONFIG.role_weights)
    assert weights["manifest"] < 1 and weights["changelog"] < 1
    for query, other in (("json settings", "package.json"), ("where are redirects handled", "HISTORY.md")):
        weight = weights["manifest" if other == "package.json" else "changelog"]
        for mode in ("bm25", "hybrid"):
            ranked = searcher.search(query, mode=mode, k=10)
            assert ranked[0].chunk.role == "source", (query, mode)
            weighted = max(r.score for r in ranked if r.chunk.path == other)
            unweighted = max(r.score for r in plain.search(query, mode=mode, k=10) if r.chunk.path == other)
            assert weighted == pytest.approx(weight * unweighted), (query, mode)


def test_an_index_from_before_roles_gets_them(index, tmp_path, embedder):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(index.parent, root, ignore=shutil.ignore_patterns(".codesift"))
    index_tree(root, embedder=embedder, workers=1)
    with Store(root / ".codesift") as store:
        store.db.execute("UPDATE files SET role = NULL")  # as migration 4 leaves files indexed before it
    with Store(root / ".codesift", readonly=True) as store:  # read meanwhile: roles from the paths
        assert {c.path: c.role for c in store.iter_chunks()}["yarn.lock"] == "lock"
    index_tree(root, embedder=embedder, workers=1)  # nothing changed; the run fills the roles in
    with Store(root / ".codesift", readonly=True) as store:
        stored = dict(store.db.execute("SELECT path, role FROM files"))
    assert stored["yarn.lock"] == "lock" and stored["src/config.py"] == "source" and None not in stored.values()


def test_cli_and_mcp_show_roles_and_take_include_generated(index):
    from click.testing import CliRunner

    from codesift.cli import cli
    from codesift.serve.workspace import Workspace

    def cli_paths(*extra):
        r = CliRunner().invoke(cli, ["search", "finalizeDraftState", "--mode", "bm25", "--json",
                                     "--index-dir", str(index), *extra])
        assert r.exit_code == 0, r.output
        return {x["path"]: x["role"] for x in json.loads(r.stdout)["results"]}

    assert "dist/immer.js" not in cli_paths()
    assert cli_paths("--include-generated")["dist/immer.js"] == "bundle"
    ws = Workspace(index.parent, index)
    assert "dist/immer.js" not in ws.search("finalizeDraftState", mode="bm25")
    text = ws.search("finalizeDraftState", mode="bm25", include_generated=True)
    assert "dist/immer.js" in text and "[bundle]" in text
    doc = ws.search("json settings", mode="bm25", format="json")
    roles = {r["path"]: r.get("role") for r in doc["results"]}
    assert roles["package.json"] == "manifest" and roles["src/config.py"] is None  # source: not sent
