"""The cluster job's driver: survey the trees, decide which part embeds which text, run the parts
left to do as one Ray Data pipeline, commit each repository's manifest once the shards it needs are
complete.

    summary = cluster_index(["/src/app", "lib=/src/library"], "/shared/shards", gpus=2)

Ray Data runs the stages of workers.py as one streaming pipeline: chunking in CPU tasks
(`num_cpus=1` each, as many at once as the cluster has cores), embedding in an actor pool of one
actor per GPU (`ActorPoolStrategy`, `num_gpus=1`), shard writing in small CPU tasks. One part
flows through as one row (`batch_size=1`): the actor packs its token sequences into token-budget
batches itself. The driver only plans and commits; every shard is written by the worker that made
it, so the shards folder (like the input trees) must be on a filesystem every node sees.

Deduplication, across repositories and jobs: a text (the one `codesift index` of its repository
alone embeds, see plan.py) is embedded once. Texts some committed shard already holds (the
lookup: every vector shard a manifest lists, read when the job has work) are not embedded again;
among the texts that are new, the plan gives each to one part (plan.share_work). A manifest lists
every vector shard its texts are in, wherever they are, and a shard is deleted only once no
manifest lists it (at the end of a job).

Idempotent: a repository whose content key (plan.py) equals its manifest's is not chunked or
embedded again, and a job with nothing new writes nothing. Resumable: the plan (which
repositories had work, the lookup's shards) is written to plan.json before any part runs, and a
job run again with the same trees follows it; a part whose two shards are on disk is not run
again, and parts are embedded alone, so a job stopped anywhere and run again leaves the same bytes
as one uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from codesift.distributed.layout import Layout, write_json_atomic
from codesift.distributed.plan import (DEFAULT_PART_BYTES, FileEntry, PartRef, PartWork, Survey, Tree, WalkOptions,
                                       contested_files, file_key, parse_trees, share_work, split_parts, survey_tree,
                                       tree_key)
from codesift.distributed.shards import RAY_EXTRA_HINT, read_chunk_summary, read_vector_hashes
from codesift.errors import ClusterError, CodesiftError
from codesift.index.formats import INDEX_FORMAT

JOB_FORMAT = 2  # of job.json, plan.json and the manifests (2: texts as the repository alone embeds them, shared)
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
    embedded: int = 0  # texts embedded now (two per chunk, each distinct text once, less what shards held)
    tokens: int = 0
    truncated: int = 0
    actors: int = 0
    gpus: int = 0
    embed_seconds: float = 0.0  # the actors' time inside their calls, summed
    seconds: float = 0.0
    deleted: int = 0  # shard files no manifest lists any more (older versions', removed repositories')
    timings: dict[str, float] = field(default_factory=dict)  # seconds: survey, plan, pipeline (chunk to last shard)

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
    unchanged: bool  # its manifest has its content key and every shard the manifest lists is on disk
    # set by _share for the repositories the job has work for (and, resuming, had):
    work: list[PartWork] = field(default_factory=list)  # what each part embeds
    vectors: list[str] = field(default_factory=list)  # each part's vector shard
    pending: list[int] = field(default_factory=list)  # parts whose two shards are not both on disk

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
            if not all(p.unchanged for p in plans):
                t = time.perf_counter()
                lookup, sharing = _share(ray, layout, plans, options)
                summary.timings["plan"] = round(time.perf_counter() - t, 3)
                t = time.perf_counter()
                _run(ray, layout, sharing, lookup, options, stamp, files.dim, summary, progress)
                summary.timings["pipeline"] = round(time.perf_counter() - t, 3)
            summary.deleted = _collect_garbage(layout)
        finally:
            if started:
                ray.shutdown()
    summary.committed.sort()
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
    key = tree_key(survey, model_sha256, part_bytes)
    manifest = layout.read_manifest(survey.tree.name)
    unchanged = manifest is not None and manifest.get("key") == key and \
        all(layout.path(f).exists() for f in _manifest_files(manifest))
    return RepoPlan(survey, key, split_parts(survey.files, part_bytes), unchanged)


def _manifest_files(manifest: dict) -> list[str]:
    return [p["chunks"] for p in manifest.get("parts", ())] + list(manifest.get("vectors", ()))


class Lookup:
    """The texts committed shards hold: every vector shard the manifests listed when the job was
    planned, by text hash (the first such shard, in path order, that holds it); and the hashes of
    any vector shard, read once."""

    def __init__(self, layout: Layout, files: list[str]):
        self.layout, self.files = layout, list(files)
        self.id = hashlib.sha256("\n".join(self.files).encode()).hexdigest()
        self.where: dict[str, int] = {}
        for i, f in enumerate(self.files):
            for h in read_vector_hashes(layout.path(f)):
                self.where.setdefault(h, i)
        self._hashes: dict[str, frozenset[str]] = {}

    def hashes_of(self, shard: str) -> frozenset[str]:
        found = self._hashes.get(shard)
        if found is None:
            found = self._hashes[shard] = frozenset(read_vector_hashes(self.layout.path(shard)))
        return found


def _share(ray, layout: Layout, plans: list[RepoPlan], options: ClusterOptions) -> tuple[Lookup, list[RepoPlan]]:
    """Decide what each part of the repositories with work embeds (plan.share_work, less what the
    lookup holds) and name its vector shard by that. Which repositories had work and which shards
    the lookup read are written to plan.json first; a job run again with the same trees reads them
    back from there, so a stopped job's parts and the ones it runs now follow one plan. Returns the
    lookup and the plans of those repositories (the ones with work now, and any a stopped run of
    this job has committed since)."""
    run = hashlib.sha256(json.dumps(sorted([p.name, p.key] for p in plans)).encode()).hexdigest()
    by_name = {p.name: p for p in plans}
    todo = {p.name for p in plans if not p.unchanged}
    stored = layout.read_plan()
    if stored and stored.get("format") == JOB_FORMAT and stored.get("run") == run \
            and todo <= set(stored.get("todo", ())) <= set(by_name) \
            and all(layout.path(f).exists() for f in stored.get("lookup", ())):
        names, lookup_files = sorted(stored["todo"]), list(stored["lookup"])
    else:
        names = sorted(todo)
        lookup_files = sorted({f for m in layout.manifests().values() for f in m.get("vectors", ())
                               if layout.path(f).exists()})
        write_json_atomic(layout.plan_file, {"format": JOB_FORMAT, "run": run, "todo": names, "lookup": lookup_files})
    lookup = Lookup(layout, lookup_files)
    sharing = [by_name[n] for n in names]
    repos = [(p.name, p.parts) for p in sharing]
    work = share_work(repos, _text_hashes(ray, contested_files(repos), options))
    for p in sharing:
        p.work = [work[(p.name, k)] for k in range(len(p.parts))]
        p.vectors = [layout.vector_shard(p.name, p.key, k, w.task(lookup.id)) for k, w in enumerate(p.work)]
        if not p.unchanged:
            p.pending = [k for k in range(len(p.parts))
                         if not (layout.path(layout.chunk_shard(p.name, p.key, k)).exists()
                                 and layout.path(p.vectors[k]).exists())]
    return lookup, sharing


def _text_hashes(ray, files: list[FileEntry], options: ClusterOptions) -> dict:
    """FileKey -> the hashes of its texts, for `files` (read and chunked in CPU tasks)."""
    if not files:
        return {}
    from codesift.distributed.workers import text_hashes

    task = ray.remote(num_cpus=1)(text_hashes)
    groups = split_parts(files, options.part_bytes)
    try:
        found = ray.get([task.remote(g, options.walk.include_secrets) for g in groups])
    except Exception as e:
        ours = _codesift_error(e)
        if ours is None:
            raise
        raise ours from None
    return {file_key(f): hashes for g, r in zip(groups, found) for f, hashes in zip(g, r)}


def _run(ray, layout: Layout, sharing: list[RepoPlan], lookup: Lookup, options: ClusterOptions, stamp: dict,
         dim: int, summary: ClusterSummary, progress: Progress | None) -> None:
    """Run the pending parts; commit each repository as soon as its parts and the parts it takes
    texts from are on disk."""
    todo = [p for p in sharing if not p.unchanged]
    summary.parts = sum(len(p.parts) for p in todo)
    summary.parts_found = summary.parts - sum(len(p.pending) for p in todo)
    by_name = {p.name: p for p in sharing}
    done = {(p.name, k) for p in sharing for k in range(len(p.parts)) if k not in p.pending}
    missing: dict[str, set[PartRef]] = {}
    waiting: dict[PartRef, list[str]] = {}
    for p in todo:
        missing[p.name] = {(p.name, k) for k in p.pending} | {d for w in p.work for d in w.deps if d not in done}
        for ref in missing[p.name]:
            waiting.setdefault(ref, []).append(p.name)
    for p in todo:
        if not missing[p.name]:  # complete on disk already: a stopped run wrote the shards but not the manifest
            _commit(layout, p, by_name, lookup, stamp, summary)
    items = [{"repo": p.name, "key": p.key, "part": k, "shard": p.vectors[k], "borrowed": list(p.work[k].borrowed),
              "skip": list(p.work[k].skip), "files": [asdict(f) for f in p.parts[k]]}
             for p in todo for k in p.pending]
    if not items:
        return
    from ray.data import ActorPoolStrategy, DataContext

    from codesift.distributed.workers import EmbedParts, chunk_parts, write_vectors

    gpus = _gpus(ray, options)
    actors = gpus or max(1, options.cpu_actors)
    # An actor books a CPU for feeding its GPU, unless that would leave none for chunking: on a node
    # with as many GPUs as cores, the chunk tasks would wait forever on the actors they feed.
    actor_cpus = 1 if int(ray.cluster_resources().get("CPU", 0)) > actors else 0
    summary.actors, summary.gpus = actors, gpus
    DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(chunk_parts, batch_size=1, batch_format="pyarrow", num_cpus=1,
                        fn_kwargs={"out": str(layout.root), "model": stamp["model_spec"],
                                   "include_secrets": options.walk.include_secrets,
                                   "lookup": {"hashes": ray.put(frozenset(lookup.where))}})
    ds = ds.map_batches(EmbedParts, batch_size=1, batch_format="pyarrow", compute=ActorPoolStrategy(size=actors),
                        num_gpus=1 if gpus else 0, num_cpus=actor_cpus,
                        fn_constructor_kwargs={"model": stamp["model_spec"], "model_sha256": stamp["model_sha256"],
                                               "device": options.device, "dtype": options.dtype,
                                               "token_budget": options.token_budget, "batch_size": options.batch_size})
    ds = ds.map_batches(write_vectors, batch_size=1, batch_format="pyarrow", num_cpus=WRITE_CPUS,
                        fn_kwargs={"out": str(layout.root), "dim": dim})
    n = 0
    for row in _rows(ds):
        n += 1
        summary.embedded += row["vectors"]
        summary.tokens += row["tokens"]
        summary.truncated += row["truncated"]
        summary.embed_seconds += row["embed_s"]
        ref = (row["repo"], row["part"])
        for name in waiting.get(ref, ()):
            missing[name].discard(ref)
            if not missing[name]:
                _commit(layout, by_name[name], by_name, lookup, stamp, summary)
        if progress:
            progress(n, len(items), summary.tokens)
    left = sorted(name for name, refs in missing.items() if refs)
    if left:  # every part the plan waits on ran in this pipeline or was on disk: not expected
        raise ClusterError(f"the job ended before {', '.join(left)} could be committed; run it again")


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


def _commit(layout: Layout, plan: RepoPlan, by_name: dict[str, RepoPlan], lookup: Lookup, stamp: dict,
            summary: ClusterSummary) -> None:
    """Write the repository's manifest (the shards it needs are complete): its parts, and every
    vector shard its texts are in: its parts' own, then those of the parts the plan took texts
    from, then those of the lookup."""
    name, key = plan.name, plan.key
    parts = [{"chunks": layout.chunk_shard(name, key, k), "vectors": plan.vectors[k]} for k in range(len(plan.parts))]
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
    for f in sorted({by_name[repo].vectors[k] for w in plan.work for repo, k in w.deps}):
        hashes = lookup.hashes_of(f)  # read once for every repository that takes texts from it
        if needed & hashes:
            vectors.append(f)
            needed -= hashes
    held = {h for h in needed if h in lookup.where}
    vectors += sorted({lookup.files[lookup.where[h]] for h in held} - set(vectors))
    needed -= held
    if needed:
        raise ClusterError(f"{len(needed)} text(s) of {name} have no vector in the shards (a shard deleted by "
                           f"hand?); delete {layout.plan_file} and run the job again")
    manifest = {"format": JOB_FORMAT, "name": name, "root": str(plan.survey.tree.root), "key": key,
                "index_format": INDEX_FORMAT, "model_sha256": stamp["model_sha256"], "files": files,
                "chunks": chunks, "skipped": sorted([list(s) for s in skipped]), "parts": parts, "vectors": vectors}
    write_json_atomic(layout.manifest_path(name), manifest)
    summary.committed.append(name)


def _collect_garbage(layout: Layout) -> int:
    """Once a job has committed everything: delete every shard no manifest lists (a repository's
    older versions' that no manifest takes texts from, a removed repository's, parts of a stopped
    job's plan not followed), then the plan. Returns how many shard files went."""
    listed = {f for m in layout.manifests().values() for f in _manifest_files(m)}
    deleted = layout.remove_shards(layout.shard_files() - listed)
    layout.plan_file.unlink(missing_ok=True)
    return deleted
