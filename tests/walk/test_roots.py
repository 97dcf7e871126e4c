"""Refusing to index /, the home folder and system folders without force (issue 14, #5)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from codesift.errors import CodesiftError
from codesift.walk import UnsafeRootError, check_root, walk

from tests.walk.helpers import listed, write


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home folder of our own, as $HOME says (the password database's is refused too)."""
    path = tmp_path / "home" / "me"
    path.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(path))
    return path


@pytest.mark.parametrize("root", ["/", "/usr", "/etc", "/var", "/tmp", "/mnt", "/proc", "/sys", "/dev",
                                  "/proc/self", "/sys/kernel", "/dev/shm"])
def test_system_roots_are_refused(root):
    if not os.path.isdir(root):
        pytest.skip(f"{root} does not exist here")
    with pytest.raises(UnsafeRootError, match="pass --force"):
        check_root(root)
    with pytest.raises(UnsafeRootError):  # the walk checks too, before reading anything
        walk(root)


def test_refusal_is_a_codesift_error_naming_the_reason():
    with pytest.raises(CodesiftError, match=r"Refusing to index '/': it is the file system root; pass --force"):
        check_root("/")


def test_home_folder_and_its_parents_are_refused(home):
    write(home, ".ssh/id_ed25519", "key\n")
    with pytest.raises(UnsafeRootError, match="your home folder"):
        check_root(home)
    with pytest.raises(UnsafeRootError, match="a folder holding your home folder"):
        check_root(home.parent)
    link = home.parent.parent / "alias"
    link.symlink_to(home, target_is_directory=True)
    with pytest.raises(UnsafeRootError, match="your home folder"):  # judged by its real path
        check_root(link)
    with pytest.raises(UnsafeRootError):
        walk(home)


def test_folders_inside_home_are_fine(home):
    project = home / "src" / "project"
    write(project, "main.py")
    assert check_root(project) == project.resolve()
    assert listed(walk(project)) == ["main.py"]


def test_force_allows_it(home):
    write(home, "notes.md")
    write(home, ".bashrc", "export PATH=$PATH\n")
    write(home, ".env", "TOKEN=abc\n")
    assert check_root("/", force=True) == Path("/")
    assert check_root(home, force=True) == home.resolve()
    result = walk(home, force=True)  # secrets are still skipped: only the refusal is lifted
    assert listed(result) == [".bashrc", "notes.md"]


def test_root_with_an_undecodable_path_is_refused_even_with_force(tmp_path):
    root = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(root)
    with pytest.raises(CodesiftError, match=r"caf\\xe9.*not valid UTF-8"):
        check_root(os.fsdecode(root), force=True)


def test_missing_root_still_says_so(tmp_path):
    with pytest.raises(CodesiftError, match="does not exist"):
        check_root(tmp_path / "missing", force=True)
