"""What a search says about files changed on disk since the index was built, and what it looks at
to say it: its results' files and every folder (a stat each), not every file of the tree."""
from __future__ import annotations

import os

import pytest

from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.search.searcher import Searcher
from tests.index.repo import make_repo

RESULTS = {"src/server.py"}  # the files of a search's results, as the CLI passes them


@pytest.fixture()
def repo(tmp_path, embedder):
    root = make_repo(tmp_path / "repo")
    index_tree(root, embedder=embedder, workers=1)
    return root


def _freshness(repo, paths=RESULTS):
    searcher = Searcher(repo / ".codesift")
    try:
        return searcher.freshness(paths)
    finally:
        searcher.close()


def test_the_index_run_records_the_folders_it_walked(repo):
    with Store(repo / ".codesift", readonly=True) as store:
        stamps = store.folder_stamps()
    assert set(stamps) == {"", "docs", "src"}  # build/ is ignored (.gitignore), .codesift is the index
    assert stamps["src"] == os.stat(repo / "src").st_mtime_ns


def test_a_fresh_index_reports_nothing_and_says_what_it_checked(repo):
    fresh = _freshness(repo)
    assert fresh.changed == {} and fresh.folders == () and not fresh.every_file
    assert fresh.indexed_at


def test_an_edited_result_file_is_reported(repo):
    server = repo / "src" / "server.py"
    server.write_text(server.read_text() + "\n# edited\n")
    fresh = _freshness(repo)
    assert fresh.changed == {"src/server.py": "changed"} and fresh.folders == ()


def test_an_edit_in_place_outside_the_results_is_left_to_the_whole_check(repo):
    guide = repo / "docs" / "guide.md"
    guide.write_text(guide.read_text() + "\nmore\n")  # in place: its folder's entries do not change
    assert _freshness(repo).changed == {}
    whole = _freshness(repo, None)
    assert whole.every_file and whole.changed == {"docs/guide.md": "changed"}


def test_files_added_or_deleted_show_in_their_folder_whose_files_are_then_checked(repo, embedder):
    (repo / "src" / "quota.py").write_text("def enforce_quota(user):\n    return user.quota\n")
    config = repo / "src" / "config.py"
    config.write_text(config.read_text() + "\n# edited in place, beside the new file\n")
    (repo / "docs" / "guide.md").unlink()
    fresh = _freshness(repo)
    assert fresh.folders == ("docs", "src")
    assert fresh.changed == {"docs/guide.md": "deleted", "src/config.py": "changed"}
    index_tree(repo, embedder=embedder, workers=1)
    after = _freshness(repo)
    assert after.changed == {} and after.folders == ()


def test_a_deleted_folder_and_the_root_are_folders_too(repo):
    for p in (repo / "docs").iterdir():
        p.unlink()
    (repo / "docs").rmdir()
    (repo / "added_at_root.txt").write_text("a new file at the root\n")
    fresh = _freshness(repo)
    assert fresh.folders == ("", "docs")
    assert fresh.changed == {"docs/guide.md": "deleted"}  # the root's own files are unchanged


def test_an_index_without_recorded_folders_gets_the_whole_check(repo):
    with Store(repo / ".codesift") as store, store.transaction():
        store.db.execute("DELETE FROM folders")  # as an index written before folders were recorded
    guide = repo / "docs" / "guide.md"
    guide.write_text(guide.read_text() + "\nmore\n")
    fresh = _freshness(repo)
    assert fresh.every_file and fresh.changed == {"docs/guide.md": "changed"}


def test_a_rebuild_does_not_report_the_folder_that_holds_the_index(repo, embedder):
    """The rebuild's staging folder comes and goes beside the index, in the root."""
    root_mtime = os.stat(repo).st_mtime_ns
    index_tree(repo, embedder=embedder, workers=1, rebuild=True)
    assert os.stat(repo).st_mtime_ns != root_mtime  # the staging folder did change the root
    fresh = _freshness(repo)
    assert fresh.folders == () and fresh.changed == {}


def test_files_in_folders_are_the_files_directly_inside(tmp_path):
    from codesift.index.store import FileRecord

    with Store(tmp_path / "idx", create=True) as store, store.transaction():
        paths = ["a.py", "src/a.py", "src/sub/b.py", "src2/c.py", "src-x/d.py", "srcs.py"]
        store.write_files([FileRecord(p, "0" * 64, i, i, "python", 1, 0, [], [], [], [], None)
                           for i, p in enumerate(paths)], lambda c: ("", "", ""))
        assert set(store.files_in_folders(["src"])) == {"src/a.py"}
        assert set(store.files_in_folders([""])) == {"a.py", "srcs.py"}
        assert set(store.files_in_folders(["src/sub", "src2"])) == {"src/sub/b.py", "src2/c.py"}
        assert store.files_in_folders(["nowhere"]) == {}
        assert store.files_in_folders(["src"])["src/a.py"] == (1, 1)
