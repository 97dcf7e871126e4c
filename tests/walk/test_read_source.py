"""Reading a listed file never follows a symlink out of the root (issue 14, #11).

Each test swaps something on disk between the walk and the read, as another process could.
"""
from __future__ import annotations

import os

import pytest

from codesift.walk import ReadRefused, read_source, walk

from tests.walk.helpers import listed, reasons, write

pytestmark = pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="needs O_NOFOLLOW")

OUTSIDE_TEXT = "outside_secret = 'must never be indexed'\n"


@pytest.fixture
def root(tmp_path):
    write(tmp_path, "outside/a.py", OUTSIDE_TEXT)
    write(tmp_path, "root/src/a.py", "inside = True\n")
    return tmp_path / "root"


def only_file(root):
    (source,) = walk(root).files
    return source


def test_unchanged_file_is_read(root):
    assert read_source(only_file(root)) == b"inside = True\n"


def test_file_swapped_for_a_symlink_out_of_the_root(root):
    source = only_file(root)
    path = root / "src" / "a.py"
    path.unlink()
    path.symlink_to(root.parent / "outside" / "a.py")
    with pytest.raises(ReadRefused, match=r"changed while indexing \(now a symlink\)"):
        read_source(source)


def test_folder_on_the_path_swapped_for_a_symlink(root):
    source = only_file(root)
    (root / "src").rename(root / "src.old")
    (root / "src").symlink_to(root.parent / "outside", target_is_directory=True)
    with pytest.raises(ReadRefused, match=r"a folder on its path is now a symlink"):
        read_source(source)


def test_file_replaced_by_rename_is_read_afresh(root):
    # Editors save by writing a new file and renaming it over the old one.
    source = only_file(root)
    write(root, "src/a.py.tmp", "inside = 'saved again'\n")
    os.replace(root / "src" / "a.py.tmp", root / "src" / "a.py")
    assert read_source(source) == b"inside = 'saved again'\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos")
def test_file_swapped_for_a_fifo_does_not_hang(root):
    source = only_file(root)
    path = root / "src" / "a.py"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ReadRefused, match=r"no longer a regular file"):
        read_source(source)


def test_file_swapped_for_a_folder(root):
    source = only_file(root)
    path = root / "src" / "a.py"
    path.unlink()
    path.mkdir()
    with pytest.raises(ReadRefused, match=r"no longer a regular file"):
        read_source(source)


def test_deleted_file_raises_file_not_found(root):
    source = only_file(root)
    (root / "src" / "a.py").unlink()
    with pytest.raises(FileNotFoundError):
        read_source(source)


def test_file_swapped_during_the_walk_is_not_sampled_through_the_link(root, monkeypatch):
    """Swapped after its folder was listed and before the walk reads its first bytes."""
    write(root, "src/b.py", "b = 1\n")
    real_scandir = os.scandir

    class SwapAfterListing:
        def __init__(self, path):
            self.path = path

        def __enter__(self):
            with real_scandir(self.path) as scan:
                entries = list(scan)
            if os.path.basename(self.path) == "src":
                target = root / "src" / "a.py"
                target.unlink()
                target.symlink_to(root.parent / "outside" / "a.py")
            return iter(entries)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(os, "scandir", SwapAfterListing)
    result = walk(root)
    assert listed(result) == ["src/b.py"]
    assert reasons(result) == {"src/a.py": "changed while indexing (now a symlink)"}


@pytest.mark.slow  # loads the model
def test_index_never_takes_text_from_outside_the_root(root, monkeypatch):
    """End to end: the file is swapped for a symlink to a file outside the root after the walk."""
    import codesift.index.indexer as indexer
    from codesift.index.store import Store

    real_walk = indexer.walk

    def walk_then_swap(*args, **kwargs):
        result = real_walk(*args, **kwargs)
        path = root / "src" / "a.py"
        path.unlink()
        path.symlink_to(root.parent / "outside" / "a.py")
        return result

    monkeypatch.setattr(indexer, "walk", walk_then_swap)
    summary = indexer.index_tree(root, device="cpu", workers=1)
    assert "src/a.py" in {s.rel for s in summary.skipped}
    with Store(summary.index_dir, readonly=True) as store:
        assert "src/a.py" not in store.files()
