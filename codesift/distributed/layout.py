"""The shards folder of a cluster job: where each thing lives, and how it is written.

    DIR/job.json                              the model the vectors belong to (one model per folder)
    DIR/plan.json                             what a job that has not finished decided (job.py): a
                                              stopped job run again follows it
    DIR/repos/NAME.json                       a repository's manifest: written last, once all its
                                              shards are complete; what an import reads
    DIR/chunks/NAME/KEY-PART.parquet          files and chunks of one part of the repository
    DIR/vectors/NAME/KEY-PART-TASK.parquet    vectors of the texts that part embedded

KEY is the start of the repository's content key (a hash of its files' content hashes, the
chunker's format, the model and the part size, see `plan.tree_key`): every shard of one version
of a repository is named by it, so a re-run finds the shards a stopped run left and a changed
repository never mixes its old shards with its new ones. TASK names which of the part's texts it
was to embed (those no other shard holds or another part embeds, see job.py): a part's vector
shard made under another plan is not taken for this plan's. A manifest lists every vector shard
its repository's texts are in, its own and other repositories'. Every file is written under a
temporary name, synced, then renamed into place: a file with its final name is complete. Nothing
here records a time, so a resumed job leaves the very bytes a clean one would.
"""
from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from codesift.errors import ClusterError

JOB_FILE = "job.json"
PLAN_FILE = "plan.json"
REPOS_DIR = "repos"
CHUNKS_DIR = "chunks"
VECTORS_DIR = "vectors"
LOCK_FILE = ".lock"
TMP_MARK = ".tmp-"  # in the names of files being written
SHARD_SUFFIX = ".parquet"
KEY_CHARS = 16  # of the content key, in shard names
TASK_CHARS = 8  # of a part's task hash, in vector shard names
# What a repository may be called: its name is the first folder of every path in the index.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise ClusterError(f"{name!r} cannot name a repository (letters, digits, '.', '_', '-', not starting "
                           "with '.' or '-'); name it with NAME=PATH")
    return name


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` to fill a temporary file beside `path`, sync it, then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    _sync_dir(path.parent)


def write_json_atomic(path: Path, obj: dict) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Layout:
    """Paths inside one shards folder."""

    root: Path

    @property
    def job_file(self) -> Path:
        return self.root / JOB_FILE

    @property
    def plan_file(self) -> Path:
        return self.root / PLAN_FILE

    def manifest_path(self, name: str) -> Path:
        return self.root / REPOS_DIR / f"{name}.json"

    def chunk_shard(self, name: str, key: str, part: int) -> str:
        """A chunk shard's path relative to the folder (as manifests record it)."""
        return f"{CHUNKS_DIR}/{name}/{key[:KEY_CHARS]}-{part:05d}{SHARD_SUFFIX}"

    def vector_shard(self, name: str, key: str, part: int, task: str) -> str:
        """A vector shard's path relative to the folder; `task`: the hash of what the part embeds."""
        return f"{VECTORS_DIR}/{name}/{key[:KEY_CHARS]}-{part:05d}-{task[:TASK_CHARS]}{SHARD_SUFFIX}"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read_job(self) -> dict | None:
        try:
            return json.loads(self.job_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ClusterError(f"{self.job_file} is unreadable ({e}); write the shards to a new folder") from e

    def read_plan(self) -> dict | None:
        """The plan a job left unfinished, if any; None also when it cannot be read (it is then made again)."""
        try:
            return json.loads(self.plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def read_manifest(self, name: str) -> dict | None:
        try:
            return json.loads(self.manifest_path(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ClusterError(f"{self.manifest_path(name)} is unreadable ({e}); delete it and run the job "
                               "again to redo that repository") from e

    def manifests(self) -> dict[str, dict]:
        """Every committed repository's manifest, by name."""
        folder = self.root / REPOS_DIR
        if not folder.is_dir():
            return {}
        out = {}
        for p in sorted(folder.glob("*.json")):
            manifest = self.read_manifest(p.stem)
            if manifest is not None:
                out[p.stem] = manifest
        return out

    def shard_files(self, name: str | None = None) -> set[str]:
        """Every shard file on disk (relative paths) of a repository, whichever version, or (None) of
        every repository."""
        out = set()
        for top in (CHUNKS_DIR, VECTORS_DIR):
            folders = [self.root / top / name] if name is not None else \
                sorted(p for p in (self.root / top).glob("*") if p.is_dir())
            for folder in folders:
                if folder.is_dir():
                    out.update(f"{top}/{folder.name}/{p.name}" for p in folder.iterdir()
                               if p.name.endswith(SHARD_SUFFIX) and TMP_MARK not in p.name)
        return out

    def remove_shards(self, files: Iterable[str]) -> int:
        """Delete shard files (relative paths), then the repository folders left empty; returns how many."""
        removed = 0
        folders = set()
        for f in sorted(files):
            path = self.path(f)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
            removed += 1
        for folder in sorted(folders):
            try:
                folder.rmdir()  # only if empty
            except OSError:
                pass
        return removed

    def remove_leftovers(self) -> int:
        """Delete files a killed writer left under temporary names; returns how many."""
        removed = 0
        for p in self.root.glob(f"*{TMP_MARK}*"):  # job.json, plan.json
            p.unlink(missing_ok=True)
            removed += 1
        for top in (CHUNKS_DIR, VECTORS_DIR, REPOS_DIR):
            folder = self.root / top
            if folder.is_dir():
                for p in folder.rglob(f"*{TMP_MARK}*"):
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One job per shards folder at a time (on a local or shared filesystem that supports flock)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ClusterError(f"another cluster job is writing to {self.root}; wait for it to finish") from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
