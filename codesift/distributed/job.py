"""The cluster job's driver: survey the trees, run the parts left to do as one Ray Data pipeline,
commit each repository's manifest once its shards are complete.

    summary = cluster_index(["/src/app", "lib=/src/library"], "/shared/shards", gpus=2)

Ray Data runs the stages of workers.py as one streaming pipeline: chunking in CPU tasks
(`num_cpus=1` each, as many at once as the cluster has cores), embedding in an actor pool of one
actor per GPU (`ActorPoolStrategy`, `num_gpus=1`), shard writing in small CPU tasks. One part
flows through as one row (`batch_size=1`): the actor packs its token sequences into token-budget
batches itself. The driver only plans and commits; every shard is written by the worker that made
it, so the shards folder (like the input trees) must be on a filesystem every node sees.

Idempotent: a repository whose content key (plan.py) equals its manifest's is not chunked or
embedded again, and a job with nothing new writes nothing. Resumable: a part whose two shards are
on disk is not run again, and parts are embedded alone, so a job stopped anywhere and run again
leaves the same bytes as one uninterrupted run. A changed repository embeds only the texts its
previous version had no vector for.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from codesift.distributed.layout import Layout, write_json_atomic
from codesift.distributed.plan import (DEFAULT_PART_BYTES, FileEntry, Survey, Tree, WalkOptions, parse_trees,
                                       split_parts, survey_tree, tree_key)
from codesift.distributed.shards import RAY_EXTRA_HINT, read_chunk_summary, read_vector_hashes
from codesift.errors import ClusterError, CodesiftError
from codesift.index.formats import INDEX_FORMAT

JOB_FORMAT = 1  # of job.json and the manifests
WRITE_CPUS = 0.25  # a shard writer mostly waits on the disk


@dataclass(frozen=True)
class ClusterOptions:
    """How to run the job (the `codesift cluster-index` options)."""

    model: str = "default"  # as `codesift index --model`; every node must find the same weights
    address: str | None = None  # a Ray cluster to join ("auto", "ray://head:10001"); None: RAY_ADDRESS or a local one
    gpus: int | None = None  # embedding actors, one GPU each; None: every GPU of the cluster; 0: CPU actors
    cpu_actors: int = 1  # embedding actors when there is no GPU
    device: str | None = "auto"  # what each actor embeds on: its GPU when Ray gave it one
    dtype: str | None = None  # fp16 on CUDA, fp32 elsewhere
    part_bytes: int = DEFAULT_PART_BYTES
    token_budget: int | None = None  # tokens per GPU batch; default: the scheduler's
    batch_size: int = 32  # texts per padded forward pass (CPU actors)
    walk: WalkOptions = WalkOptions()
    ship_code: bool | None = None  # send this codesift package to the workers; default: when joining `address`


@dataclass
class ClusterSummary:
    out: Path
    repos: int = 0
    unchanged: int = 0  # repositories skipped: their manifest has their content key
    committed: list[str] = field(default_factory=list)  # repositories whose manifest this run wrote
    parts: int = 0  # of the repositories not skipped
    parts_found: int = 0  # complete on disk already (a stopped run's)
    files: int = 0
    chunks: int = 0
    skipped: int = 0
    embedded: int = 0  # texts embedded now (two per chunk, less what was known)
    tokens: int = 0
    truncated: int = 0
    actors: int = 0
    gpus: int = 0
    embed_seconds: float = 0.0  # the actors' time inside their calls, summed
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds: survey, pipeline (chunk to last shard)

    def line(self) -> str:
        rate = f", {self.tokens / self.seconds:,.0f} tokens/s" if self.seconds and self.tokens else ""
        return (f"cluster-index: {self.repos} repositories ({self.unchanged} unchanged, {len(self.committed)} written), "
                f"{self.parts} parts ({self.parts_found} found complete), {self.files} files, {self.chunks} chunks, "
                f"{self.embedded} texts embedded ({self.tokens:,} tokens)"
                + (f" on {self.actors} {'GPU' if self.gpus else 'CPU'} actor(s)" if self.actors else "")
                + f" in {self.seconds:.1f} s{rate}")


@dataclass
class RepoPlan:
    survey: Survey
    key: str
    parts: list[list[FileEntry]]
    pending: list[int]  # parts whose shards are not both on disk
    previous: dict | None  # the manifest of the version before, if any
    unchanged: bool

    @property
    def name(self) -> str:
        return self.survey.tree.name


Progress = Callable[[int, int, int], None]  # (parts done, parts to run, tokens embedded)


def cluster_index(trees: Sequence[str | Path], out: str | Path, options: ClusterOptions | None = None, *,
                  progress: Progress | None = None, **overrides) -> ClusterSummary:
    """Chunk and embed `trees` (PATH or NAME=PATH each) on a Ray cluster into the shards folder `out`.
    Joins the running Ray session if there is one, else `options.address` (or starts a local one,
    shut down again at the end)."""
    options = replace(options or ClusterOptions(), **overrides)
    t0 = time.perf_counter()
    parsed = parse_trees(trees)
    layout = Layout(Path(out).expanduser().resolve())
    from codesift.embed.model_files import resolve_model
    from codesift.index.model_stamp import model_stamp

    files = resolve_model(options.model)
    stamp = model_stamp(files, options.model)
    summary = ClusterSummary(layout.root, repos=len(parsed))
    with layout.locked():
        layout.remove_leftovers()
        _check_job(layout, stamp)
        ray = _import_ray()
        started = _connect(ray, options)
        try:
            t = time.perf_counter()
            surveys = _survey(ray, parsed, options.walk)
            summary.timings["survey"] = round(time.perf_counter() - t, 3)
            plans = [_plan(layout, s, stamp["model_sha256"], options.part_bytes) for s in surveys]
            summary.unchanged = sum(p.unchanged for p in plans)
            todo = [p for p in plans if not p.unchanged]
            summary.parts = sum(len(p.parts) for p in todo)
            summary.parts_found = summary.parts - sum(len(p.pending) for p in todo)
            for p in todo:
                if not p.pending:  # a stopped run wrote every shard but not the manifest
                    _commit(layout, p, stamp, summary)
            if any(p.pending for p in todo):
                t = time.perf_counter()
                _run(ray, layout, [p for p in todo if p.pending], options, stamp, files.dim, summary, progress)
                summary.timings["pipeline"] = round(time.perf_counter() - t, 3)
        finally:
            if started:
                ray.shutdown()
    for p in plans:
        manifest = layout.read_manifest(p.name) or {}
        summary.files += manifest.get("files", 0)
        summary.chunks += manifest.get("chunks", 0)
        summary.skipped += len(manifest.get("skipped", ()))
    summary.seconds = time.perf_counter() - t0
    return summary


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ClusterError(f"cluster-index runs on Ray Data, which is not installed; {RAY_EXTRA_HINT}") from None
    return ray


def _connect(ray, options: ClusterOptions) -> bool:
    """Join or start a Ray session; returns whether this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
    if options.address:
        kwargs["address"] = options.address
    ship = options.ship_code if options.ship_code is not None else bool(options.address)
    if ship:  # the workers run the driver's codesift: the same chunker, the same chunk ids
        kwargs["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parents[1])]}  # the codesift folder
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {options.address} ({e}); check --address") from e
    return True


def _check_job(layout: Layout, stamp: dict) -> None:
    """One model per shards folder: the first job records it, later ones must use it."""
    job = layout.read_job()
    if job is None:
        write_json_atomic(layout.job_file, {"format": JOB_FORMAT, "model_name": stamp["model_name"],
                                            "model_spec": stamp["model_spec"], "model_sha256": stamp["model_sha256"],
                                            "dim": int(stamp["dim"])})
        return
    if job.get("format") != JOB_FORMAT:
        raise ClusterError(f"{layout.root} holds shards of another codesift (format {job.get('format')}); "
                           "write to a new --out folder")
    if job.get("model_sha256") != stamp["model_sha256"]:
        raise ClusterError(f"the shards in {layout.root} were embedded with {job.get('model_name')} (weights sha256 "
                           f"{str(job.get('model_sha256'))[:12]}), not {stamp['model_name']}; use that model or "
                           "another --out folder")


def _survey(ray, trees: list[Tree], walk_options: WalkOptions) -> list[Survey]:
    """Walk and hash every tree, each in a CPU task."""
    task = ray.remote(num_cpus=1)(survey_tree)
    return ray.get([task.remote(t, walk_options) for t in trees])


def _plan(layout: Layout, survey: Survey, model_sha256: str, part_bytes: int) -> RepoPlan:
    name = survey.tree.name
    key = tree_key(survey, model_sha256, part_bytes)
    manifest = layout.read_manifest(name)
    parts = split_parts(survey.files, part_bytes)
    if manifest is not None and manifest.get("key") == key and \
            all(layout.path(f).exists() for f in _manifest_files(manifest)):
        return RepoPlan(survey, key, parts, [], manifest, unchanged=True)
    pending = [k for k in range(len(parts))
               if not (layout.path(layout.chunk_shard(name, key, k)).exists()
                       and layout.path(layout.vector_shard(name, key, k)).exists())]
    previous = manifest if manifest is not None and manifest.get("key") != key else None
    return RepoPlan(survey, key, parts, pending, previous, unchanged=False)


def _manifest_files(manifest: dict) -> list[str]:
    return [p["chunks"] for p in manifest.get("parts", ())] + list(manifest.get("vectors", ()))


def _known(ray, layout: Layout, plans: list[RepoPlan]) -> dict:
    """Repository -> object ref of the text hashes its previous version has vectors for."""
    refs = {}
    for p in plans:
        if p.previous:
            hashes: set[str] = set()
            for f in p.previous.get("vectors", ()):
                if layout.path(f).exists():
                    hashes.update(read_vector_hashes(layout.path(f)))
            refs[p.name] = ray.put(frozenset(hashes))
    return refs


def _run(ray, layout: Layout, plans: list[RepoPlan], options: ClusterOptions, stamp: dict, dim: int,
         summary: ClusterSummary, progress: Progress | None) -> None:
    from ray.data import ActorPoolStrategy, DataContext

    from codesift.distributed.workers import EmbedParts, chunk_parts, write_vectors

    gpus = _gpus(ray, options)
    actors = gpus or max(1, options.cpu_actors)
    # An actor books a CPU for feeding its GPU, unless that would leave none for chunking: on a node
    # with as many GPUs as cores, the chunk tasks would wait forever on the actors they feed.
    actor_cpus = 1 if int(ray.cluster_resources().get("CPU", 0)) > actors else 0
    summary.actors, summary.gpus = actors, gpus
    DataContext.get_current().enable_progress_bars = False
    items = [{"repo": p.name, "key": p.key, "part": k, "files": [asdict(f) for f in p.parts[k]]}
             for p in plans for k in p.pending]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(chunk_parts, batch_size=1, batch_format="pyarrow", num_cpus=1,
                        fn_kwargs={"out": str(layout.root), "model": stamp["model_spec"],
                                   "include_secrets": options.walk.include_secrets, "known": _known(ray, layout, plans)})
    ds = ds.map_batches(EmbedParts, batch_size=1, batch_format="pyarrow", compute=ActorPoolStrategy(size=actors),
                        num_gpus=1 if gpus else 0, num_cpus=actor_cpus,
                        fn_constructor_kwargs={"model": stamp["model_spec"], "model_sha256": stamp["model_sha256"],
                                               "device": options.device, "dtype": options.dtype,
                                               "token_budget": options.token_budget, "batch_size": options.batch_size})
    ds = ds.map_batches(write_vectors, batch_size=1, batch_format="pyarrow", num_cpus=WRITE_CPUS,
                        fn_kwargs={"out": str(layout.root), "dim": dim})
    left = {p.name: set(p.pending) for p in plans}
    by_name = {p.name: p for p in plans}
    done = 0
    for row in _rows(ds):
        done += 1
        summary.embedded += row["vectors"]
        summary.tokens += row["tokens"]
        summary.truncated += row["truncated"]
        summary.embed_seconds += row["embed_s"]
        waiting = left[row["repo"]]
        waiting.discard(row["part"])
        if not waiting:
            _commit(layout, by_name[row["repo"]], stamp, summary)
        if progress:
            progress(done, len(items), summary.tokens)


def _rows(ds):
    """The pipeline's output rows; a task's or an actor's own error (a tree changed while the job ran,
    another model on a node) is raised as itself, not wrapped in Ray's exceptions."""
    try:
        yield from ds.iter_rows()
    except Exception as e:
        ours = _codesift_error(e)
        if ours is None:
            raise
        raise ours from None


_OUR_ERROR = re.compile(r"codesift\.errors\.(\w+): (.+)")


def _codesift_error(e: BaseException) -> CodesiftError | None:
    """Our error behind one of Ray's: Ray Data passes a worker's exception on as text (its
    traceback), so it is found there and made again."""
    import traceback

    from codesift import errors

    for line in reversed("".join(traceback.format_exception(e)).splitlines()):
        found = _OUR_ERROR.search(line)
        cls = getattr(errors, found.group(1), None) if found else None
        if isinstance(cls, type) and issubclass(cls, CodesiftError):
            return cls(found.group(2).strip())
    return None


def _gpus(ray, options: ClusterOptions) -> int:
    available = int(ray.cluster_resources().get("GPU", 0))
    if options.gpus is None:
        return available
    if options.gpus > available:
        raise ClusterError(f"{options.gpus} GPU(s) asked for, the Ray cluster has {available}; lower --gpus "
                           "(0 embeds on CPU actors)")
    return options.gpus


def _commit(layout: Layout, plan: RepoPlan, stamp: dict, summary: ClusterSummary) -> None:
    """Write the repository's manifest (its shards are complete), then delete its shards that no
    manifest needs any more."""
    name, key = plan.name, plan.key
    parts = [{"chunks": layout.chunk_shard(name, key, k), "vectors": layout.vector_shard(name, key, k)}
             for k in range(len(plan.parts))]
    needed: set[str] = set()
    files = chunks = 0
    skipped = list(plan.survey.skipped)
    for part in parts:
        n_files, n_chunks, hashes, left_out = read_chunk_summary(layout.path(part["chunks"]))
        files, chunks = files + n_files, chunks + n_chunks
        needed |= hashes
        skipped += [(path[len(name) + 1:], why) for path, why in left_out]
    vectors = [part["vectors"] for part in parts]
    for f in vectors:
        needed.difference_update(read_vector_hashes(layout.path(f)))
    # the previous version's shards that hold vectors this one still needs (files left unchanged)
    for f in sorted(plan.previous.get("vectors", ())) if plan.previous else ():
        if needed and layout.path(f).exists():
            hashes = set(read_vector_hashes(layout.path(f)))
            if hashes & needed:
                vectors.append(f)
                needed -= hashes
    if needed:
        raise ClusterError(f"{len(needed)} text(s) of {name} have no vector in its shards; delete "
                           f"{layout.manifest_path(name)} and run the job again")
    manifest = {"format": JOB_FORMAT, "name": name, "root": str(plan.survey.tree.root), "key": key,
                "index_format": INDEX_FORMAT, "model_sha256": stamp["model_sha256"], "files": files,
                "chunks": chunks, "skipped": sorted([list(s) for s in skipped]), "parts": parts, "vectors": vectors}
    write_json_atomic(layout.manifest_path(name), manifest)
    for stale in sorted(layout.shard_files(name) - set(_manifest_files(manifest))):
        layout.path(stale).unlink(missing_ok=True)
    summary.committed.append(name)
