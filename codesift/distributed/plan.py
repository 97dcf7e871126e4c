"""What a cluster job has to do: the input trees, each one's files and content key, and its parts.

A repository is surveyed in one CPU task: walked by our walker (the rules of `codesift index`)
and every file read and hashed. Its content key hashes the sorted (path, content hash) pairs with
everything else that shapes its shards (chunker and embedding formats, model, part size): equal
keys, equal shards, so a repository whose key is the one its manifest records is skipped. Its
files are then cut into parts of about `part_bytes` of source, in path order: a part is the unit
of work (one chunk task, one embedding call, two shard files) and of resumption.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from codesift.distributed.layout import check_name
from codesift.errors import ClusterError
from codesift.index.formats import INDEX_FORMAT
from codesift.walk import ReadRefused, read_source, walk

DEFAULT_PART_BYTES = 2 << 20  # of source per part: at the default model, well over 100k tokens to embed


@dataclass(frozen=True)
class Tree:
    """One input repository: the name its files are indexed under, and where it is."""

    name: str
    root: Path


def parse_trees(specs: Sequence[str | os.PathLike]) -> list[Tree]:
    """`PATH` (named after its folder) or `NAME=PATH`, each a folder; names must be unique."""
    trees: list[Tree] = []
    for spec in specs:
        text = os.fspath(spec)
        name, sep, path = text.partition("=")
        if not sep or not name or os.path.exists(text):
            name, path = "", text
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise ClusterError(f"{text}: not a folder; give each tree as PATH or NAME=PATH")
        trees.append(Tree(check_name(name or root.name), root))
    seen: dict[str, Path] = {}
    for t in trees:
        if t.name in seen:
            raise ClusterError(f"two trees are named {t.name!r} ({seen[t.name]} and {t.root}); name them with "
                               "NAME=PATH")
        seen[t.name] = t.root
    return trees


@dataclass(frozen=True)
class WalkOptions:
    """What to read from each tree (as `codesift index`'s options of the same names)."""

    max_file_bytes: int = 1_000_000
    excludes: tuple[str, ...] = ()
    include_secrets: bool = False
    force: bool = False


@dataclass(frozen=True)
class FileEntry:
    rel: str  # relative to the tree's root
    real: str  # the real path the walk found, to read it from
    size: int
    sha256: str


@dataclass
class Survey:
    """A tree walked and hashed."""

    tree: Tree
    files: list[FileEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (rel, reason) from the walk and the read
    ignored: int = 0


def survey_tree(tree: Tree, options: WalkOptions) -> Survey:
    """Walk a tree and hash each file it lists (runs in a CPU task)."""
    walked = walk(tree.root, max_file_bytes=options.max_file_bytes, extra_excludes=options.excludes,
                  force=options.force, include_secrets=options.include_secrets)
    out = Survey(tree, skipped=[(s.rel, s.reason) for s in walked.skipped], ignored=walked.ignored)
    for f in walked.files:
        try:
            data = read_source(f, include_secrets=options.include_secrets)
        except ReadRefused as e:
            out.skipped.append((f.rel, e.reason))
            continue
        except OSError as e:
            out.skipped.append((f.rel, f"unreadable ({type(e).__name__})"))
            continue
        out.files.append(FileEntry(f.rel, str(f.path), f.size, hashlib.sha256(data).hexdigest()))
    return out


def tree_key(survey: Survey, model_sha256: str, part_bytes: int) -> str:
    """The content key of a surveyed tree (hex sha256)."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": INDEX_FORMAT, "model": model_sha256, "name": survey.tree.name,
                         "part_bytes": part_bytes}, sort_keys=True).encode())
    for f in survey.files:  # in path order (the walk's)
        h.update(b"\x00" + f.rel.encode("utf-8", "surrogatepass") + b"\x00" + f.sha256.encode())
    return h.hexdigest()


def split_parts(files: Sequence[FileEntry], part_bytes: int) -> list[list[FileEntry]]:
    """Consecutive runs of files of at most `part_bytes` together (a bigger file alone)."""
    parts: list[list[FileEntry]] = []
    current: list[FileEntry] = []
    size = 0
    for f in files:
        if current and size + f.size > part_bytes:
            parts.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        parts.append(current)
    return parts
