"""The cluster job on a real local Ray runtime (2 CPUs, one logical GPU: the embedding actor is
given it and runs the default model on the CPU), against local indexes of the same trees.

Three trees: alpha, beta, and fork, which holds identical copies of most of beta's files, an edited
copy of one, and a file of its own. One clean job's shards serve every test; the other runs (a
re-run, a killed job and its resumption, an edited tree, a changed and a removed repository) each
compare what they leave with it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
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
from codesift.index.store import Store, hash_key  # noqa: E402
from codesift.search.searcher import Searcher  # noqa: E402
from tests.index.repo import make_repo  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "chunk" / "fixtures"
# Small parts: a repository is several units of work, so a job can be stopped between two of them.
PART_BYTES = 1500
BETA = ("sample.go", "sample.ts", "sample.md", "notes.txt", "Sample.java")
SHARED = ("sample.go", "sample.ts", "notes.txt", "Sample.java")  # fork's identical copies of beta's files
EDITED = "sample.md"  # fork's copy has a line more in its last section: its other sections' texts are beta's
SHARED_QUERY = "in-memory store: get returns the value for a key"  # sample.go's Get
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
    beta, fork = base / "beta", base / "fork"
    beta.mkdir(parents=True)
    fork.mkdir()
    for name in BETA:
        shutil.copy(FIXTURES / name, beta / name)
    for name in SHARED:
        shutil.copy(FIXTURES / name, fork / name)
    (fork / EDITED).write_text((FIXTURES / EDITED).read_text() + "\nThe fork adds this line to the last section.\n")
    (fork / "fork_only.py").write_text("def fork_only_feature():\n    return 'found only in the fork'\n")
    return base


def tree_paths(trees: Path, names=("alpha", "beta", "fork")) -> list[Path]:
    return [trees / name for name in names]


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> Path:
    return make_trees(tmp_path_factory.mktemp("cluster") / "trees")


@pytest.fixture(scope="module")
def model(model_files) -> str:
    return str(model_files.root)


@pytest.fixture(scope="module")
def clean(ray_runtime, trees, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "shards"
    summary = cluster_index(tree_paths(trees), out, model=model, part_bytes=PART_BYTES)
    return out, summary


@pytest.fixture(scope="module")
def local_index(trees, model, tmp_path_factory) -> Path:
    """`codesift index` of the folder holding the trees (the paths and chunk ids the cluster job gives
    them) with one rule changed, as the cluster job has it: a chunk's two texts are embedded as in
    its repository alone (its path there, without the repository's name). Made by the indexer's own
    code; `alone_indexes` checks its texts."""
    import codesift.index.prepare as prepare

    def alone(rule):
        return lambda chunk: rule(replace(chunk, path=chunk.path.split("/", 1)[1]))

    index_dir = tmp_path_factory.mktemp("local") / "index"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "embed_text", alone(embed_text))
        patch.setattr(prepare, "head_text", alone(head_text))
        index_tree(trees, index_dir, model=model, device="cpu", workers=1)
    return index_dir


@pytest.fixture(scope="module")
def alone_indexes(trees, model, tmp_path_factory) -> dict[str, Path]:
    """`codesift index` of each tree alone."""
    out = {}
    for tree in tree_paths(trees):
        out[tree.name] = tmp_path_factory.mktemp(f"alone-{tree.name}") / "index"
        index_tree(tree, out[tree.name], model=model, device="cpu", workers=1)
    return out


def stored_hashes(index_dir: Path, prefix: str = "") -> dict[tuple, tuple[str, str]]:
    """(prefix + path, lines, kind, symbol) -> the hashes of the two texts an index embedded for that chunk (as
    the index stores them: store.hash_key)."""
    with Store(index_dir, readonly=True) as store:
        rows = store.db.execute("SELECT f.path, c.start_line, c.end_line, c.kind, c.symbol, c.embed_hash, c.head_hash "
                                "FROM chunks c JOIN files f ON f.id = c.file_id").fetchall()
    found = {(prefix + path, start, end, kind, symbol): (eh, hh) for path, start, end, kind, symbol, eh, hh in rows}
    assert len(found) == len(rows)
    return found


def where(chunk: Chunk) -> tuple:
    return (chunk.path, chunk.start_line, chunk.end_line, chunk.kind, chunk.symbol)


def in_repository(chunk: Chunk) -> Chunk:
    """The chunk as its repository alone has it: its path there."""
    return replace(chunk, path=chunk.path.split("/", 1)[1])


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


def vector_files(out: Path) -> list[str]:
    """Every vector shard a manifest lists (several manifests may list one)."""
    return sorted({f for m in Layout(out).manifests().values() for f in m["vectors"]})


def shard_vectors(out: Path) -> dict[str, np.ndarray]:
    layout = Layout(out)
    found: dict[str, np.ndarray] = {}
    for f in vector_files(out):
        hashes, vectors = read_vectors(layout.path(f))
        assert not set(hashes) & set(found), "a text embedded twice"
        found.update(zip(hashes, vectors))
    return found


def listed_files(out: Path) -> set[str]:
    """Every shard file a manifest lists."""
    layout = Layout(out)
    return {f for m in layout.manifests().values() for f in [p["chunks"] for p in m["parts"]] + m["vectors"]}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_chunk_ids_of_a_local_index_texts_and_vectors_of_each_repository_alone(clean, local_index, alone_indexes,
                                                                               model_files):
    from codesift.embed.embedder import Embedder

    out, summary = clean
    assert summary.committed == ["alpha", "beta", "fork"] and summary.parts > 3 and summary.gpus == 1
    chunks = shard_chunks(out)
    with Store(local_index, readonly=True) as store:
        local = {(c.path, c.id) for c in store.iter_chunks()}
    assert {(c.path, c.id) for c, _, _ in chunks} == local and len(local) == summary.chunks

    # each chunk's two texts are the ones `codesift index` of its repository alone embeds for it
    alone = {}
    for name, index_dir in alone_indexes.items():
        alone.update(stored_hashes(index_dir, prefix=f"{name}/"))
    assert {where(c): (hash_key(eh), hash_key(hh)) for c, eh, hh in chunks} == alone
    assert stored_hashes(local_index) == alone  # and the reference index of the search test embeds them too
    texts = [t for c, _, _ in chunks for t in (embed_text(in_repository(c)), head_text(in_repository(c)))]
    stored = [h for _, eh, hh in chunks for h in (eh, hh)]
    assert [embed_hash(t) for t in texts] == stored
    vectors = shard_vectors(out)
    assert set(vectors) == set(stored) and summary.embedded == len(vectors)  # each text embedded once, in all
    with Embedder.load(model_files, device="cpu") as embedder:  # what `codesift index` embeds with here
        expected = embedder.embed(texts)
    got = np.stack([vectors[h] for h in stored])
    assert np.abs(got - expected).max() <= 1e-6


def test_files_shared_by_repositories_are_embedded_once(clean):
    out, summary = clean
    layout = Layout(out)
    chunks = shard_chunks(out)

    def texts(repo: str, rel: str) -> set[str]:
        return {h for c, eh, hh in chunks if c.path == f"{repo}/{rel}" for h in (eh, hh)}

    for rel in SHARED:
        assert texts("beta", rel) and texts("beta", rel) == texts("fork", rel)
    assert 0 < len(texts("beta", EDITED) & texts("fork", EDITED)) < len(texts("fork", EDITED))
    shared = {h for rel in BETA for h in texts("beta", rel) & texts("fork", rel)}
    per_repo = sum(len({h for c, eh, hh in chunks if c.path.startswith(f"{name}/") for h in (eh, hh)})
                   for name in ("alpha", "beta", "fork"))
    # what the actors embedded: every distinct text once, the shared ones not again for the fork
    assert summary.embedded == len({h for _, eh, hh in chunks for h in (eh, hh)}) == per_repo - len(shared)

    holder = {}
    for f in vector_files(out):
        for h in read_vectors(layout.path(f))[0]:
            holder[h] = f
    fork = layout.read_manifest("fork")
    taken = {holder[h] for h in shared}
    assert all(f.startswith("vectors/beta/") for f in taken)  # beta's parts embedded them (b before f)
    assert taken <= set(fork["vectors"]) - {p["vectors"] for p in fork["parts"]}  # the fork's manifest lists them


def test_a_rerun_writes_nothing(ray_runtime, clean, trees, model):
    out, _ = clean
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if p.is_file()}
    r = CliRunner().invoke(cli, ["cluster-index", *map(str, tree_paths(trees)), "--out", str(out),
                                 "--model", model, "--part-size", str(PART_BYTES), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["unchanged"], summary["committed"], summary["parts"], summary["embedded"]) == (3, [], 0, 0)
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


# Killed once a part's vectors are written (nothing committed yet), or once a repository is committed:
# the lookup of committed texts then holds more than when the job planned, and the job run again
# must follow the plan it wrote (plan.json) to leave the same bytes.
@pytest.mark.parametrize("stop_at", ["vectors/*/*.parquet", "repos/*.json"])
def test_a_killed_job_run_again_leaves_the_shards_of_a_clean_run(ray_runtime, clean, trees, model, tmp_path, stop_at):
    clean_out, clean_summary = clean
    out = tmp_path / "shards"
    job = (f"import ray, sys\nfrom codesift.distributed.job import cluster_index\n"
           f"ray.init(address='local', num_cpus=2, num_gpus=1, include_dashboard=False, object_store_memory=80 << 20)\n"
           f"cluster_index({list(map(str, tree_paths(trees)))!r}, {str(out)!r}, model={model!r}, "
           f"part_bytes={PART_BYTES})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", job], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while not list(out.glob(stop_at)):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        _kill_session(proc.pid)
        proc.wait()
    written = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("vectors/*/*.parquet")}
    assert 1 <= len(written) < clean_summary.parts and not (out / "repos" / "fork.json").exists()  # stopped half-way
    assert (out / "plan.json").exists()

    committed = len(list(out.glob("repos/*.json")))
    summary = cluster_index(tree_paths(trees), out, model=model, part_bytes=PART_BYTES)
    assert summary.committed and summary.unchanged == committed
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in written} == written  # taken as they were
    assert files_of(out) == files_of(clean_out)


# Scores closer than this are a tie: the copies of one text in two repositories have one vector, and
# score alike up to the float rounding of where each sits among the index's vectors (seen: 4e-8).
TIE = 1e-6


def assert_same_ranking(got: list, want: list, deeper: list, why) -> None:
    """`got` ranks as `want`: the same scores rank by rank, the same results, but for their order within
    a run of tied scores; the last run may be cut by k, so its results are any of the tie's (in `deeper`,
    the reference searched further)."""
    def key(r):
        return (r.chunk.path, r.chunk.id)

    assert len(got) == len(want), why
    assert all(abs(g.score - w.score) <= TIE for g, w in zip(got, want)), why
    runs: list[list] = []
    for r in want:
        if runs and abs(runs[-1][-1].score - r.score) <= TIE:
            runs[-1].append(r)
        else:
            runs.append([r])
    start = 0
    for n, run in enumerate(runs):
        mine = {key(r) for r in got[start:start + len(run)]}
        start += len(run)
        if n < len(runs) - 1:
            assert mine == {key(r) for r in run}, why
        else:
            assert mine <= {key(r) for r in deeper if abs(r.score - run[0].score) <= TIE}, why


def test_search_over_imported_shards_as_over_a_local_index(clean, local_index, trees, tmp_path):
    out, _ = clean
    imported = tmp_path / "imported"
    r = CliRunner().invoke(cli, ["import-shards", str(out), "--index-dir", str(imported), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["imported"] == ["alpha", "beta", "fork"] and summary["chunks"] == clean[1].chunks
    assert import_shards(out, imported).imported == []  # nothing changed since
    with Store(imported, readonly=True) as store:  # an import ends with BM25 merges on, for the edits after it
        assert store.db.execute("SELECT v FROM terms_fts_config WHERE k = 'automerge'").fetchone() == (4,)

    away = trees.with_name("trees-away")  # no checkout on this machine
    trees.rename(away)
    try:
        local, remote = Searcher(local_index), Searcher(imported)
        for mode in ("hybrid", "semantic", "bm25"):
            for query in QUERIES:
                got, want = remote.search(query, mode=mode, k=10), local.search(query, mode=mode, k=10)
                assert_same_ranking(got, want, local.search(query, mode=mode, k=20), (mode, query))
            # a file both repositories hold (embedded once): each one's copy is found, under its name
            found = [r.chunk for r in remote.search(SHARED_QUERY, mode=mode, k=10)]
            assert {"beta/sample.go", "fork/sample.go"} <= {c.path for c in found}, mode
        local.close()
        remote.close()
        hit = next(c for c in found if c.path == "fork/sample.go")
        r = CliRunner().invoke(cli, ["get", hit.ref, "--index-dir", str(imported)])
        assert r.exit_code == 0 and r.stdout.strip() == hit.content.strip()
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
    """beta's copy of a file the fork shares is edited, and the job runs without the fork: beta embeds
    only its new texts, and the shard its old texts are in stays for the fork."""
    clean_out, _ = clean
    trees = make_trees(tmp_path / "trees")  # the same content elsewhere: the same keys
    out = tmp_path / "shards"
    shutil.copytree(clean_out, out)
    imported = tmp_path / "imported"
    import_shards(out, imported)
    fork = Layout(out).read_manifest("fork")
    with open(trees / "beta" / "notes.txt", "a") as f:
        f.write("\nThe nightly build publishes its artefacts to the staging bucket at midnight.\n")
    old = shard_vectors(out)

    # two CPU actors on two CPUs: they must not book every core, or no chunk task could run to feed them
    summary = cluster_index(tree_paths(trees, ("alpha", "beta")), out, model=model, part_bytes=PART_BYTES, gpus=0,
                            cpu_actors=2)
    assert summary.unchanged == 1 and summary.committed == ["beta"] and (summary.actors, summary.gpus) == (2, 0)
    new = {h for c, eh, hh in shard_chunks(out) for h in (eh, hh)}
    fresh = new - set(old)
    assert 0 < summary.embedded == len(fresh) < len(new) / 2
    layout = Layout(out)
    beta = layout.read_manifest("beta")
    assert any(f not in {p["vectors"] for p in beta["parts"]} for f in beta["vectors"])  # kept from before
    assert layout.read_manifest("fork") == fork and all(layout.path(f).exists() for f in fork["vectors"])
    assert summary.deleted > 0 and layout.shard_files() == listed_files(out)  # beta's old chunk shards went

    again = import_shards(out, imported)
    assert (again.imported, again.unchanged) == (["beta"], 2)
    searcher = Searcher(imported)
    hit = searcher.search("nightly build artefacts staging bucket", k=1)[0].chunk
    assert hit.path == "beta/notes.txt" and "staging bucket" in hit.content
    fresh_import = import_shards(out, tmp_path / "fresh")  # every vector found, wherever it is
    assert fresh_import.imported == ["alpha", "beta", "fork"]
    found = Searcher(tmp_path / "fresh").search("release notes: version 1.2 fixes the crash on start-up", k=10)
    assert {"beta/notes.txt", "fork/notes.txt"} <= {r.chunk.path for r in found}


def test_a_removed_repository_leaves_the_vectors_others_take_from_it(ray_runtime, clean, trees, model, tmp_path):
    clean_out, _ = clean
    out = tmp_path / "shards"
    shutil.copytree(clean_out, out)
    layout = Layout(out)
    taken = {f for f in layout.read_manifest("fork")["vectors"] if f.startswith("vectors/beta/")}
    beta_files = layout.shard_files("beta")
    assert taken and taken < beta_files
    layout.manifest_path("beta").unlink()  # how a repository is removed from the shards

    summary = cluster_index(tree_paths(trees, ("alpha", "fork")), out, model=model, part_bytes=PART_BYTES)
    assert (summary.unchanged, summary.committed, summary.embedded) == (2, [], 0)
    assert layout.shard_files("beta") == taken and summary.deleted == len(beta_files) - len(taken)
    assert layout.shard_files() == listed_files(out)

    imported = import_shards(out, tmp_path / "imported")
    assert imported.imported == ["alpha", "fork"]
    found = Searcher(tmp_path / "imported").search(SHARED_QUERY, k=10)
    paths = {r.chunk.path for r in found}
    assert "fork/sample.go" in paths and not any(p.startswith("beta/") for p in paths)
