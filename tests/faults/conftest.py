from __future__ import annotations

from pathlib import Path

import pytest

from codesift.index.indexer import index_tree
from tests.index.repo import make_repo


@pytest.fixture(scope="module")
def indexed_repo(tmp_path_factory, embedder) -> Path:
    """tests/index/repo.py's small repository, indexed once (treat as read-only)."""
    root = make_repo(tmp_path_factory.mktemp("faults") / "repo")
    index_tree(root, embedder=embedder, workers=1)
    return root
