"""Models ollama has pulled: its manifests name a GGUF blob we can load as it is.

Layout (under $OLLAMA_MODELS, default ~/.ollama/models):
  manifests/<host>/<namespace>/<name>/<tag>   JSON; the layer whose mediaType is
                                               `application/vnd.ollama.image.model` holds the weights
  blobs/sha256-<hex>                          the GGUF file that layer's digest names
"NAME" means registry.ollama.ai/library/NAME, "USER/NAME" registry.ollama.ai/USER/NAME; the tag
defaults to "latest". Nothing here talks to ollama or the network.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from codesift.errors import ModelLoadError, ModelNotFoundError

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"


def ollama_dir() -> Path:
    """$OLLAMA_MODELS, else ~/.ollama/models."""
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def _split(spec: str) -> tuple[str, str, str, str]:
    """"NAME[:TAG]", "USER/NAME[:TAG]" or "HOST/USER/NAME[:TAG]" -> (host, namespace, name, tag)."""
    path, _, tag = spec.partition(":")
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 3 or any(p in (".", "..") for p in parts) or "/" in tag or tag in (".", ".."):
        raise ModelNotFoundError(f"ollama model {spec!r} is not a model name; use ollama:NAME[:TAG]")
    host, ns = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, ns, name = parts
    elif len(parts) == 2:
        ns, name = parts
    else:
        name = parts[0]
    return host, ns, name, tag or DEFAULT_TAG


def short_name(host: str, ns: str, name: str, tag: str) -> str:
    """The name as `ollama list` shows it: library models without host and namespace."""
    base = name if (host, ns) == (DEFAULT_HOST, DEFAULT_NAMESPACE) else (
        f"{ns}/{name}" if host == DEFAULT_HOST else f"{host}/{ns}/{name}")
    return f"{base}:{tag}"


def blob_of_manifest(manifest: Path, root: Path) -> Path:
    """The weights blob a manifest names (ModelLoadError when it names none or the blob is missing)."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{manifest}: cannot read ollama manifest ({e}); run `ollama pull` again") from e
    layers = [layer for layer in data.get("layers") or [] if isinstance(layer, dict)]
    digest = next((str(layer.get("digest", "")) for layer in layers
                   if layer.get("mediaType") == MODEL_MEDIA_TYPE), "")
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or not hexdigest or not all(c in "0123456789abcdef" for c in hexdigest.lower()):
        raise ModelLoadError(f"{manifest}: no {MODEL_MEDIA_TYPE} layer with a sha256 digest; "
                             f"not a model manifest")
    blob = root / "blobs" / f"sha256-{hexdigest}"
    if not blob.is_file():
        raise ModelLoadError(f"{manifest}: its weights blob {blob} is missing; run `ollama pull` again")
    return blob


def resolve_ollama(spec: str) -> tuple[Path, str]:
    """The GGUF blob of `ollama:SPEC` and the model's full name ("NAME:TAG")."""
    root = ollama_dir()
    host, ns, name, tag = _split(spec)
    manifest = root / "manifests" / host / ns / name / tag
    if not manifest.is_file():
        have = [n for n, _ in ollama_models(root)]
        listed = f"; ollama has: {', '.join(have)}" if have else ""
        raise ModelNotFoundError(f"ollama model {spec!r} not found (no manifest {manifest}){listed}. "
                                 f"To fix: `ollama pull {name}:{tag}`, or set OLLAMA_MODELS to ollama's models folder")
    return blob_of_manifest(manifest, root), short_name(host, ns, name, tag)


def ollama_models(root: Path | None = None) -> list[tuple[str, Path]]:
    """(NAME:TAG, blob) for every manifest under `root` whose blob is present, sorted by name."""
    root = ollama_dir() if root is None else root
    manifests = root / "manifests"
    out = []
    if not manifests.is_dir():
        return out
    for m in sorted(manifests.glob("*/*/*/*")):
        if not m.is_file():
            continue
        host, ns, name, tag = m.relative_to(manifests).parts
        try:
            out.append((short_name(host, ns, name, tag), blob_of_manifest(m, root)))
        except ModelLoadError:
            continue  # half-pulled or not a model (e.g. an adapter): nothing we could load
    return out
