"""Symlinks: never out of the root, never twice, never in circles."""
from __future__ import annotations

import os

import pytest

from codesift.walk import walk

from tests.walk.helpers import listed, reasons, write

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


def test_symlink_to_file_outside_root(root, tmp_path):
    outside = write(tmp_path, "outside/secret.py")
    (root / "link.py").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    result = walk(root)
    assert result.files == []
    assert reasons(result) == {"link.py": "symlink outside root", "linkdir": "symlink outside root"}


def test_symlink_to_listed_file_is_listed_once(root):
    target = write(root, "src/real.py")
    (root / "alias.py").symlink_to(target)
    (root / "src/relative.py").symlink_to("real.py")
    result = walk(root)
    assert listed(result) == ["src/real.py"]
    assert result.ignored == 2


def test_symlink_to_ignored_file_is_listed_under_its_own_path(root):
    write(root, ".gitignore", "generated/\n")
    target = write(root, "generated/schema.py")
    (root / "schema.py").symlink_to(target)
    (root / "schema_again.py").symlink_to(target)
    result = walk(root)
    assert listed(result) == [".gitignore", "schema.py"]
    assert result.files[1].path == target.resolve()


def test_symlinked_folder_inside_root(root):
    write(root, ".gitignore", "vendor/\n")
    write(root, "vendor/lib/util.py")
    (root / "lib").symlink_to(root / "vendor" / "lib", target_is_directory=True)
    write(root, "src/main.py")
    (root / "src_alias").symlink_to(root / "src", target_is_directory=True)  # already listed
    result = walk(root)
    assert listed(result) == [".gitignore", "lib/util.py", "src/main.py"]
    assert result.skipped == []


def test_symlink_loops_terminate(root):
    write(root, "a/b/file.py")
    (root / "a/b/up").symlink_to(root / "a", target_is_directory=True)
    (root / "a/self").symlink_to(".", target_is_directory=True)
    (root / "ping").symlink_to("pong")
    (root / "pong").symlink_to("ping")
    result = walk(root)
    assert listed(result) == ["a/b/file.py"]
    assert reasons(result) == {"ping": "broken symlink (loop)", "pong": "broken symlink (loop)"}


def test_broken_symlink(root):
    (root / "dangling.py").symlink_to(root / "missing.py")
    write(root, ".gitignore", "ignored-dangling\n")
    (root / "ignored-dangling").symlink_to(root / "nowhere")
    result = walk(root)
    assert reasons(result) == {"dangling.py": "broken symlink"}


def test_root_given_through_a_symlink(root, tmp_path):
    write(root, "x.py")
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert listed(walk(alias)) == ["x.py"]


def test_symlink_to_binary_file_is_reported_once(root):
    target = write(root, "img/logo.png", "png")
    (root / "logo.png").symlink_to(target)
    assert reasons(walk(root)) == {"img/logo.png": "binary"}


def test_symlinks_into_vcs_data_or_the_index_are_not_followed(root):
    write(root, ".git/hooks/pre-commit", "#!/bin/sh\n")
    write(root, "store/chunks.jsonl", "{}\n")
    (root / "hook.sh").symlink_to(root / ".git/hooks/pre-commit")
    (root / "git_dir").symlink_to(root / ".git", target_is_directory=True)
    (root / "store_alias").symlink_to(root / "store", target_is_directory=True)
    result = walk(root, index_dir=root / "store")
    assert result.files == [] and result.skipped == []
