"""The cluster job's plan, without Ray: naming trees, content keys, parts, the shards folder."""
from __future__ import annotations

import pytest

from codesift.distributed.layout import Layout, write_atomic
from codesift.distributed.plan import (FileEntry, PartWork, WalkOptions, contested_files, parse_trees, share_work,
                                       split_parts, survey_tree, tree_key)
from codesift.errors import ClusterError


def test_trees_are_named_after_their_folder_or_as_given(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "x" / "app").mkdir(parents=True)
    trees = parse_trees([tmp_path / "app", f"lib={tmp_path / 'x' / 'app'}"])
    assert [(t.name, t.root) for t in trees] == [("app", tmp_path / "app"), ("lib", tmp_path / "x" / "app")]
    with pytest.raises(ClusterError, match="NAME=PATH"):  # two trees would share app/
        parse_trees([tmp_path / "app", tmp_path / "x" / "app"])
    with pytest.raises(ClusterError, match="cannot name"):
        parse_trees([f".hidden={tmp_path / 'app'}"])
    with pytest.raises(ClusterError, match="not a folder"):
        parse_trees([tmp_path / "missing"])


def test_the_content_key_follows_content_not_time(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / "a.py").write_text("def f():\n    return 1\n")
    (root / "b.md").write_text("# B\n\ntext\n")
    tree = parse_trees([root])[0]
    key = tree_key(survey_tree(tree, WalkOptions()), "model-sha", 1000)
    (root / "a.py").touch()  # a new mtime, the same bytes
    assert tree_key(survey_tree(tree, WalkOptions()), "model-sha", 1000) == key
    assert tree_key(survey_tree(tree, WalkOptions()), "other-model", 1000) != key
    assert tree_key(survey_tree(tree, WalkOptions()), "model-sha", 2000) != key  # other parts, other shards
    (root / "a.py").write_text("def f():\n    return 2\n")
    assert tree_key(survey_tree(tree, WalkOptions()), "model-sha", 1000) != key


def test_parts_cut_files_in_order_by_size():
    files = [FileEntry(f"f{i}", f"/r/f{i}", size, "0") for i, size in enumerate([400, 500, 300, 2000, 100])]
    parts = split_parts(files, 1000)
    assert [[f.rel for f in p] for p in parts] == [["f0", "f1"], ["f2"], ["f3"], ["f4"]]
    assert split_parts([], 1000) == []


def _file(rel: str, sha: str) -> FileEntry:
    return FileEntry(rel, f"/src/{rel}", 100, sha)


def test_each_file_and_each_contested_text_is_given_to_one_part():
    """Identical files (path and content): the first part holding one embeds its texts, the others
    borrow it. A path whose content differs between repositories: its files' shared texts go to the
    first part embedding one of them, the rest of each file's texts to its own part."""
    repos = [
        ("fork", [[_file("LICENSE", "L"), _file("notes.txt", "n2")], [_file("new.py", "x")]]),
        ("app", [[_file("LICENSE", "L"), _file("main.py", "m")], [_file("notes.txt", "n1")]]),
        ("lib", [[_file("LICENSE", "L"), _file("notes.txt", "n1")]]),
    ]
    contested = contested_files(repos)
    assert [(f.rel, f.sha256) for f in contested] == [("notes.txt", "n1"), ("notes.txt", "n2")]
    hashes = {("notes.txt", "n1"): ["intro", "usage"], ("notes.txt", "n2"): ["intro", "usage v2"]}
    work = share_work(repos, hashes)
    assert work == share_work(list(reversed(repos)), hashes)  # the order given does not matter: the names do
    assert work[("app", 0)] == PartWork()
    assert work[("app", 1)] == PartWork()
    assert work[("lib", 0)] == PartWork(borrowed=(0, 1), deps=(("app", 0), ("app", 1)))
    assert work[("fork", 0)] == PartWork(borrowed=(0,), skip=("intro",), deps=(("app", 0), ("app", 1)))
    assert work[("fork", 1)] == PartWork()
    assert len({w.task("lookup") for w in work.values()}) == 3  # what a part embeds names its vector shard
    assert PartWork().task("lookup") != PartWork().task("another lookup")


def test_shards_are_written_whole_or_not_at_all(tmp_path):
    layout = Layout(tmp_path)
    target = layout.path(layout.chunk_shard("app", "ab" * 32, 3))
    assert target.name == "abababababababab-00003.parquet"
    assert layout.vector_shard("app", "ab" * 32, 3, "cd" * 32) == "vectors/app/abababababababab-00003-cdcdcdcd.parquet"

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk gone")

    with pytest.raises(OSError):
        write_atomic(target, fail)
    assert not target.exists() and list(target.parent.iterdir()) == []
    write_atomic(target, lambda tmp: tmp.write_bytes(b"whole"))
    assert target.read_bytes() == b"whole"
    (target.parent / f"{target.name}.tmp-999").write_bytes(b"left by a killed writer")
    assert layout.remove_leftovers() == 1 and layout.shard_files("app") == {"chunks/app/abababababababab-00003.parquet"}
    other = layout.path(layout.vector_shard("lib", "ef" * 32, 0, "00"))
    write_atomic(other, lambda tmp: tmp.write_bytes(b"whole"))
    assert layout.shard_files() == {"chunks/app/abababababababab-00003.parquet",
                                    "vectors/lib/efefefefefefefef-00000-00.parquet"}
    assert layout.remove_shards(["vectors/lib/efefefefefefefef-00000-00.parquet"]) == 1
    assert not other.parent.exists() and layout.shard_files() == {"chunks/app/abababababababab-00003.parquet"}


def test_one_job_per_folder(tmp_path):
    layout = Layout(tmp_path)
    with layout.locked():
        with pytest.raises(ClusterError, match="another cluster job"):
            with Layout(tmp_path).locked():
                pass


def test_our_error_behind_rays_is_raised_as_itself():
    """Ray Data hands a worker's exception on as the text of its traceback (checked with ray 2.60:
    a task's error and an actor's in its constructor); the job raises ours again from it."""
    from codesift.distributed.job import _codesift_error

    try:
        raise RuntimeError("UDF failed to process a data block.\n  File \"workers.py\", line 9\n"
                           "codesift.errors.ClusterError: app/x.py changed (or went) while the job ran; run it again")
    except RuntimeError as e:
        found = _codesift_error(e)
    assert type(found) is ClusterError and str(found) == "app/x.py changed (or went) while the job ran; run it again"
    assert _codesift_error(ValueError("codesift.errors.os: no such class")) is None
