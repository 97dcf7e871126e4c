"""The cluster job on a real local Ray runtime (2 CPUs, one logical GPU: the embedding actor is
given it and runs the default model on the CPU), against a local index of the same trees.

One clean job's shards serve every test; the other runs (a re-run, a killed job and its resumption,
an edited tree) each compare what they leave with it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data")
pytest.importorskip("pyarrow")

from click.testing import CliRunner  # noqa: E402

from codesift.chunk.model import Chunk  # noqa: E402
from codesift.cli import cli  # noqa: E402
from codesift.distributed.importer import import_shards  # noqa: E402
from codesift.distributed.job import cluster_index  # noqa: E402
from codesift.distributed.layout import Layout  # noqa: E402
from codesift.distributed.shards import iter_files, read_vectors  # noqa: E402
from codesift.index.document import embed_hash, embed_text, head_text  # noqa: E402
from codesift.index.indexer import index_tree  # noqa: E402
from codesift.index.store import Store  # noqa: E402
from codesift.search.searcher import Searcher  # noqa: E402
from tests.index.repo import make_repo  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "chunk" / "fixtures"
# Small parts: a repository is several units of work, so a job can be stopped between two of them.
PART_BYTES = 1500
QUERIES = ("load the configuration from a json file", "start the http server", "distance between two points",
           "HttpServer.start", "user guide installation", "parse command line arguments", "read a file line by line")


@pytest.fixture(scope="module")
def ray_runtime():
    import logging

    import ray

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, object_store_memory=100 << 20,
             logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def make_trees(base: Path) -> Path:
    make_repo(base / "alpha")
    beta = base / "beta"
    beta.mkdir(parents=True)
    for name in ("sample.go", "sample.ts", "sample.md", "notes.txt", "Sample.java"):
        shutil.copy(FIXTURES / name, beta / name)
    return base


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> Path:
    return make_trees(tmp_path_factory.mktemp("cluster") / "trees")


@pytest.fixture(scope="module")
def model(model_files) -> str:
    return str(model_files.root)


@pytest.fixture(scope="module")
def clean(ray_runtime, trees, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "shards"
    summary = cluster_index([trees / "alpha", trees / "beta"], out, model=model, part_bytes=PART_BYTES)
    return out, summary


@pytest.fixture(scope="module")
def local_index(trees, model, tmp_path_factory) -> Path:
    """`codesift index` of the folder holding both trees: the paths the cluster job gives them."""
    index_dir = tmp_path_factory.mktemp("local") / "index"
    index_tree(trees, index_dir, model=model, device="cpu", workers=1)
    return index_dir


def shard_chunks(out: Path) -> list[Chunk]:
    """Every chunk in the shards, with the hashes stored for its two texts."""
    layout = Layout(out)
    chunks = []
    for manifest in layout.manifests().values():
        for part in manifest["parts"]:
            for row in iter_files(layout.path(part["chunks"])):
                for c in row["chunks"]:
                    chunk = Chunk(row["path"], c["language"], c["kind"], c["start_line"], c["end_line"], c["content"],
                                  c["symbol"], tuple(c["heading_path"]), c["context"],
                                  tuple(c["part"]) if c["part"] else None, tuple(c["calls"]), c["id"])
                    chunks.append((chunk, c["embed_hash"], c["head_hash"]))
    return chunks


def shard_vectors(out: Path) -> dict[str, np.ndarray]:
    layout = Layout(out)
    found: dict[str, np.ndarray] = {}
    for manifest in layout.manifests().values():
        for f in manifest["vectors"]:
            hashes, vectors = read_vectors(layout.path(f))
            assert not set(hashes) & set(found), "a text embedded twice"
            found.update(zip(hashes, vectors))
    return found


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_chunk_ids_and_vectors_as_the_local_path(clean, local_index, model_files):
    from codesift.embed.embedder import Embedder

    out, summary = clean
    assert summary.committed == ["alpha", "beta"] and summary.parts > 2 and summary.gpus == 1
    chunks = shard_chunks(out)
    with Store(local_index, readonly=True) as store:
        local = {(c.path, c.id) for c in store.iter_chunks()}
    assert {(c.path, c.id) for c, _, _ in chunks} == local and len(local) == summary.chunks

    texts = [t for c, _, _ in chunks for t in (embed_text(c), head_text(c))]
    stored = [h for _, eh, hh in chunks for h in (eh, hh)]
    assert [embed_hash(t) for t in texts] == stored
    vectors = shard_vectors(out)
    assert set(vectors) == set(stored) and summary.embedded == len(vectors)  # each text embedded once
    with Embedder.load(model_files, device="cpu") as embedder:  # what `codesift index` embeds with here
        expected = embedder.embed(texts)
    got = np.stack([vectors[h] for h in stored])
    assert np.abs(got - expected).max() <= 1e-6


def test_a_rerun_writes_nothing(ray_runtime, clean, trees, model):
    out, _ = clean
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if p.is_file()}
    r = CliRunner().invoke(cli, ["cluster-index", str(trees / "alpha"), str(trees / "beta"), "--out", str(out),
                                 "--model", model, "--part-size", str(PART_BYTES), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["unchanged"], summary["committed"], summary["parts"], summary["embedded"]) == (2, [], 0, 0)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if p.is_file()} == before


def _kill_session(sid: int) -> None:
    """SIGKILL every process of a session (the job's driver and the Ray runtime it started)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # after ")": state, ppid, pgrp, session
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_a_killed_job_run_again_leaves_the_shards_of_a_clean_run(ray_runtime, clean, trees, model, tmp_path):
    clean_out, clean_summary = clean
    out = tmp_path / "shards"
    job = (f"import ray, sys\nfrom codesift.distributed.job import cluster_index\n"
           f"ray.init(address='local', num_cpus=2, num_gpus=1, include_dashboard=False, object_store_memory=80 << 20)\n"
           f"cluster_index([{str(trees / 'alpha')!r}, {str(trees / 'beta')!r}], {str(out)!r}, model={model!r}, "
           f"part_bytes={PART_BYTES})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", job], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while not list(out.glob("vectors/*/*.parquet")):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        _kill_session(proc.pid)
        proc.wait()
    written = len(list(out.glob("vectors/*/*.parquet")))
    assert written < clean_summary.parts and not (out / "repos" / "beta.json").exists()  # stopped half-way

    summary = cluster_index([trees / "alpha", trees / "beta"], out, model=model, part_bytes=PART_BYTES)
    assert summary.parts_found >= written >= 1 and summary.committed
    assert files_of(out) == files_of(clean_out)


def test_search_over_imported_shards_as_over_a_local_index(clean, local_index, trees, tmp_path):
    out, _ = clean
    imported = tmp_path / "imported"
    r = CliRunner().invoke(cli, ["import-shards", str(out), "--index-dir", str(imported), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["imported"] == ["alpha", "beta"] and summary["chunks"] == clean[1].chunks
    assert import_shards(out, imported).imported == []  # nothing changed since

    away = trees.with_name("trees-away")  # no checkout on this machine
    trees.rename(away)
    try:
        local, remote = Searcher(local_index), Searcher(imported)
        for mode in ("hybrid", "semantic", "bm25"):
            for query in QUERIES:
                want = [(r.chunk.path, r.chunk.id) for r in local.search(query, mode=mode, k=10)]
                got = [(r.chunk.path, r.chunk.id) for r in remote.search(query, mode=mode, k=10)]
                assert got == want, (mode, query)
        local.close()
        remote.close()
        hit = Searcher(imported).search("start the http server", k=1)[0].chunk
        r = CliRunner().invoke(cli, ["get", hit.ref, "--index-dir", str(imported)])
        assert r.exit_code == 0 and r.stdout.strip() == hit.content.strip()
        r = CliRunner().invoke(cli, ["lookup", "HttpServer.start", "--index-dir", str(imported), "--json"])
        assert r.exit_code == 0, r.output
        assert [x["path"] for x in json.loads(r.stdout)["results"]] == ["alpha/src/server.py"]
        r = CliRunner().invoke(cli, ["index", str(away), "--index-dir", str(imported)])
        assert r.exit_code != 0 and "import-shards" in r.output  # the imported files are not wiped
    finally:
        away.rename(trees)


def test_an_edited_tree_embeds_only_its_new_texts(ray_runtime, clean, model, tmp_path):
    clean_out, _ = clean
    trees = make_trees(tmp_path / "trees")  # the same content elsewhere: the same keys
    out = tmp_path / "shards"
    shutil.copytree(clean_out, out)
    imported = tmp_path / "imported"
    import_shards(out, imported)
    with open(trees / "beta" / "notes.txt", "a") as f:
        f.write("\nThe nightly build publishes its artefacts to the staging bucket at midnight.\n")
    old = shard_vectors(out)

    # two CPU actors on two CPUs: they must not book every core, or no chunk task could run to feed them
    summary = cluster_index([trees / "alpha", trees / "beta"], out, model=model, part_bytes=PART_BYTES, gpus=0,
                            cpu_actors=2)
    assert summary.unchanged == 1 and summary.committed == ["beta"] and (summary.actors, summary.gpus) == (2, 0)
    new = {h for c, eh, hh in shard_chunks(out) for h in (eh, hh)}
    fresh = new - set(old)
    assert 0 < summary.embedded == len(fresh) < len(new) / 2
    manifest = Layout(out).read_manifest("beta")
    assert any(f not in {p["vectors"] for p in manifest["parts"]} for f in manifest["vectors"])  # kept from before
    assert Layout(out).shard_files("beta") == {p["chunks"] for p in manifest["parts"]} | set(manifest["vectors"])

    again = import_shards(out, imported)
    assert (again.imported, again.unchanged) == (["beta"], 1)
    hit = Searcher(imported).search("nightly build artefacts staging bucket", k=1)[0].chunk
    assert hit.path == "beta/notes.txt" and "staging bucket" in hit.content
