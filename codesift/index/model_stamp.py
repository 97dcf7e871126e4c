"""What an index records about the model that embedded it, and the check that a model matches.

A search reads this too (to refuse a query model other than the index's), so it imports
nothing heavy: no torch, no chunkers, no indexer.
"""
from __future__ import annotations

from pathlib import Path

from codesift.embed.model_files import ModelFiles
from codesift.errors import ModelMismatchError

STAMP_KEYS = ("model_name", "model_spec", "model_sha256", "model_size", "model_mtime_ns", "dim")


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
            "model_size": str(fp["size"]), "model_mtime_ns": str(fp["mtime_ns"]), "dim": str(files.dim)}


def check_model(meta: dict[str, str], files: ModelFiles, spec: str) -> dict[str, str]:
    """The stamp for `files`; raises ModelMismatchError if the index was built with other weights."""
    stamp = model_stamp(files, spec, meta)
    if meta.get("model_sha256") and meta["model_sha256"] != stamp["model_sha256"]:
        raise ModelMismatchError(
            f"this index was built with model {meta.get('model_name')} (weights sha256 "
            f"{meta['model_sha256'][:12]}), not {files.name} (weights sha256 {stamp['model_sha256'][:12]}); "
            f"rebuild it with `codesift index --rebuild --model {spec}`, or use that model")
    return stamp
