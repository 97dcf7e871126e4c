"""What an index records about the model that embedded it, and the check that a model matches.

A search reads this too (to refuse a query model other than the index's), so it imports
nothing heavy: no torch, no chunkers, no indexer.
"""
from __future__ import annotations

from pathlib import Path

from codesift.embed.model_files import ModelFiles
from codesift.errors import ModelMismatchError

# truncate_dim: the Matryoshka truncation (`--dim`), "" when the vectors have the model's full width
STAMP_KEYS = ("model_name", "model_spec", "model_sha256", "model_size", "model_mtime_ns", "dim", "truncate_dim")


def stored_spec(spec: str) -> str:
    """The model spec as the index records it: a folder or file given by a relative path is made
    absolute, so that a search from another folder finds the same model."""
    path = Path(spec).expanduser()
    if spec not in ("", "default") and path.exists():
        return str(path.resolve())
    return spec


def model_stamp(files: ModelFiles, spec: str, store_meta: dict[str, str] | None = None) -> dict[str, str]:
    """The meta keys describing `files`. The weights' hash is only recomputed when the weights
    file's size or mtime changed since `store_meta` recorded it."""
    fp = files.weights_fingerprint()
    meta = store_meta or {}
    if meta.get("model_size") == str(fp["size"]) and meta.get("model_mtime_ns") == str(fp["mtime_ns"]) \
            and meta.get("model_sha256"):
        sha = meta["model_sha256"]
    else:
        sha = files.weights_sha256()
    return {"model_name": files.name, "model_spec": stored_spec(spec), "model_sha256": sha,
            "model_size": str(fp["size"]), "model_mtime_ns": str(fp["mtime_ns"]), "dim": str(files.dim),
            "truncate_dim": str(files.truncate_dim or "")}


def recorded_truncation(meta: dict[str, str]) -> int | None:
    """The `--dim` an index was built with; None when its vectors have the model's full width (or the
    index predates the record, when only full-width indexes could be built)."""
    value = meta.get("truncate_dim") or ""
    return int(value) if value.isdigit() else None


def files_at_dim(files: ModelFiles, dim: int | None, meta: dict[str, str]) -> ModelFiles:
    """`files` producing the vectors an index run or a search needs: `dim` values each when given, else
    as many as the index (described by `meta`; {} for a new one) was built with. A recorded truncation
    this model cannot produce is left for `check_model` to report (the index is another model's)."""
    if dim is not None:
        return files.with_dim(dim)
    recorded = recorded_truncation(meta)
    if recorded is not None and recorded < files.hidden_size:
        return files.with_dim(recorded)
    return files


def check_dim(meta: dict[str, str], dim: int, truncate_dim: int | None) -> None:
    """Raises ModelMismatchError when `dim`-dimensional vectors (`truncate_dim`: the --dim asked for,
    None for the model's full width) cannot go with the index `meta` describes."""
    if not meta.get("dim") or meta["dim"] == str(dim):
        return
    built = recorded_truncation(meta)
    built_with = f"--dim {built}" if built is not None else "the model's full width"
    asked = f"--dim {truncate_dim}" if truncate_dim else f"the model's full width ({dim})"
    keep = f"give --dim {built}" if built is not None else "leave --dim out (and CODESIFT_DIM unset)"
    rebuild = f" --dim {truncate_dim}" if truncate_dim else ""
    raise ModelMismatchError(f"this index holds {meta['dim']}-dimensional vectors (built with {built_with}), "
                             f"not {asked}: {keep}, or rebuild it with `codesift index --rebuild{rebuild}`")


def check_model(meta: dict[str, str], files: ModelFiles, spec: str) -> dict[str, str]:
    """The stamp for `files`; raises ModelMismatchError if the index was built with other weights, or
    with another `--dim`."""
    stamp = model_stamp(files, spec, meta)
    if meta.get("model_sha256") and meta["model_sha256"] != stamp["model_sha256"]:
        raise ModelMismatchError(
            f"this index was built with model {meta.get('model_name')} (weights sha256 "
            f"{meta['model_sha256'][:12]}), not {files.name} (weights sha256 {stamp['model_sha256'][:12]}); "
            f"rebuild it with `codesift index --rebuild --model {spec}`, or use that model")
    check_dim(meta, files.dim, files.truncate_dim)
    return stamp
