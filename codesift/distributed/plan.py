"""What a cluster job has to do: the input trees, each one's files and content key, its parts, and
which part embeds which text.

A repository is surveyed in one CPU task: walked by our walker (the rules of `codesift index`)
and every file read and hashed. Its content key hashes the sorted (path, content hash) pairs with
everything else that shapes its chunks (chunker and embedding formats, model, part size): a
repository whose key is the one its manifest records is skipped. Its files are then cut into
parts of about `part_bytes` of source, in path order: a part is the unit of work (one chunk task,
one embedding call, two shard files) and of resumption.

The texts a file is embedded as are those `codesift index` of its repository alone embeds: they
begin with the file's path in its repository, not with the repository's name. So the texts of a
file are a function of its path there and its content (`FileKey`), and identical files in two
repositories (forks, vendored copies, a LICENSE) have identical texts, to be embedded once. Texts
at different paths differ (the path is in them); the only texts two different files share are
those of files at one path whose content differs between repositories (a fork's edited file).
`share_work` decides, before anything is embedded and from the file lists alone (plus those
contested files' text hashes), which one part embeds each: the first, in repository name and part
order.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

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


FileKey = tuple[str, str]  # (path in its repository, content sha256): equal keys, equal texts embedded
PartRef = tuple[str, int]  # (repository name, part index)


def file_key(f: FileEntry) -> FileKey:
    return (f.rel, f.sha256)


@dataclass(frozen=True)
class PartWork:
    """What one part embeds: the texts of its files (each once), but not those of its `borrowed`
    files (indexes in the part: an identical file of an earlier part embeds them) nor the `skip`
    hashes (texts of its own files that an earlier part's different file embeds); `deps`, the
    parts that embed those. Texts some committed shard holds already are left out as well, at
    chunking time (job.py)."""

    borrowed: tuple[int, ...] = ()
    skip: tuple[str, ...] = ()
    deps: tuple[PartRef, ...] = ()

    def task(self, lookup_id: str) -> str:
        """The hash of what the part's vector shard holds, given the job's lookup of committed texts."""
        text = json.dumps({"borrowed": list(self.borrowed), "lookup": lookup_id, "skip": list(self.skip)},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


RepoParts = tuple[str, Sequence[Sequence[FileEntry]]]  # a repository's name and its parts


def contested_files(repos: Sequence[RepoParts]) -> list[FileEntry]:
    """One file for each FileKey at a path that holds different contents in different repositories:
    the files whose texts another, different file may share, so `share_work` needs their text
    hashes. Sorted by key."""
    shas: dict[str, set[str]] = {}
    first: dict[FileKey, FileEntry] = {}
    for _, parts in repos:
        for part in parts:
            for f in part:
                shas.setdefault(f.rel, set()).add(f.sha256)
                first.setdefault(file_key(f), f)
    return [first[k] for k in sorted(first) if len(shas[k[0]]) > 1]


def share_work(repos: Sequence[RepoParts], text_hashes: Mapping[FileKey, Sequence[str]]) -> dict[PartRef, PartWork]:
    """Who embeds what among `repos` (those of a job with work to do): each file key's texts are
    embedded by the first part, in name and part order, holding such a file; of the texts of
    contested files (`text_hashes`, see `contested_files`), each by the first part that embeds a
    file holding it. A function of the file lists alone: the same whatever has run already."""
    ordered = sorted(repos, key=lambda r: r[0])
    file_owner: dict[FileKey, PartRef] = {}
    for name, parts in ordered:
        for k, part in enumerate(parts):
            for f in part:
                file_owner.setdefault(file_key(f), (name, k))
    text_owner: dict[str, PartRef] = {}
    for name, parts in ordered:
        for k, part in enumerate(parts):
            for f in part:
                if file_owner[file_key(f)] == (name, k):
                    for h in text_hashes.get(file_key(f), ()):
                        text_owner.setdefault(h, (name, k))
    work: dict[PartRef, PartWork] = {}
    for name, parts in ordered:
        for k, part in enumerate(parts):
            here = (name, k)
            borrowed: list[int] = []
            skip: set[str] = set()
            deps: set[PartRef] = set()
            for i, f in enumerate(part):
                owner = file_owner[file_key(f)]
                if owner != here:
                    borrowed.append(i)
                    deps.add(owner)
                    continue
                for h in text_hashes.get(file_key(f), ()):
                    if text_owner[h] != here:
                        skip.add(h)
                        deps.add(text_owner[h])
            work[here] = PartWork(tuple(borrowed), tuple(sorted(skip)), tuple(sorted(deps)))
    return work
