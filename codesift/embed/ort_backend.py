"""ONNX Runtime as a CPU backend: the encoder graph we build from our own weights
(`onnx_graph.build_bert`), run by ONNX Runtime's CPU kernels.

fp32 by default (same vectors as the numpy backend); dtype "int8" runs the attention output
and feed-forward layers in 8 bits (`onnx_graph.INT8_LINEARS`; on a CPU with VNNI, the query and
key products too, in the formats that CPU runs exactly), and runs of short inputs in
float32 through a second session (their few tokens each weigh much in the pooled vector, and
cost little to compute). dtype "int8-file", for an ONNX file that onnxruntime's dynamic
quantisation wrote: the file's own 8-bit arithmetic (its stored integers, every input quantised
as its graph does: `onnx_graph.FILE_FORMATS`), the vectors onnxruntime computes from the file.
BERT-family and MPNet models only (`onnx_graph.supports`); MPNet's second feed-forward layer
stays in float32 in int8 (`onnx_graph.FLOAT_LAYERS`), and MPNet runs fp32 unless int8 is asked for;
`backend.load_backend` picks this where onnxruntime is installed and falls back to the numpy
backend elsewhere.

Inputs run a few at a time (about GROUP_TOKENS padded tokens per run): the activations of a
run then stay in cache from one operator to the next, and similar lengths waste little on
padding. Runs go in parallel, one per core, each on one thread (as the numpy backend's
groups): ONNX Runtime's threads within one run wait for each other at every operator, the
more so on a busy machine.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from codesift.embed.batches import pad_batch
from codesift.embed.model_files import ModelFiles
from codesift.embed.models import Architecture
from codesift.embed.numpy_backend import FP32_NAMES, CpuDevice, CpuWorkers, length_groups
from codesift.embed.pooling import normalize_array, pool_array
from codesift.errors import UnsupportedDeviceError

if TYPE_CHECKING:
    from codesift.embed.onnx_file import StoredInt8

INT8_NAMES = ("int8", "qint8")  # as str(dtype).lower()
FILE_INT8 = "int8-file"  # the int8 ONNX file's own arithmetic
# Padded tokens per ONNX Runtime run (a longer input runs alone).
GROUP_TOKENS = 256
# int8: inputs of at most this many tokens run in float32 (in runs of their own).
INT8_MIN_TOKENS = 32


def ort_available() -> bool:
    """Whether onnxruntime and onnx (which builds the graph) import here."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def groups(lengths: Sequence[int], budget: int = GROUP_TOKENS, split_at: int | None = None) -> list[list[int]]:
    """`length_groups` at this backend's run size; with `split_at`, inputs of at most that many
    tokens never share a run with longer ones."""
    if split_at is None:
        return length_groups(lengths, budget)
    out = []
    long = [i for i, n in enumerate(lengths) if n > split_at]
    short = [i for i, n in enumerate(lengths) if n <= split_at]
    for part in (long, short):
        out += [[part[j] for j in run] for run in length_groups([lengths[i] for i in part], budget)]
    return out


class OrtBackend:
    """Our encoder graph in ONNX Runtime on the CPU, pooled and normalised as the model folder says."""

    packed_supported = False
    is_gpu = False
    groups_inputs = True  # embed_batch cuts any number of inputs into runs of its own (batches.batch_bounds)

    def __init__(self, arch: Architecture, files: ModelFiles, dtype: str | None = None,
                 normalize: bool | None = None, workers: int | None = None):
        from codesift.embed.onnx_graph import INT8_LINEARS, build_bert, cpu_has_vnni

        kind = str(dtype).lower()
        if kind not in FP32_NAMES + INT8_NAMES + (FILE_INT8,):
            raise UnsupportedDeviceError(f"dtype {dtype!r} is not supported by the ONNX Runtime CPU backend; "
                                         f"use fp32, int8 or {FILE_INT8}")
        self.dtype = "int8" if kind in INT8_NAMES else kind if kind == FILE_INT8 else "fp32"
        self.arch, self.files = arch, files
        source = str(files.root / "config.json")
        cfg = arch.read_config(files.config, source=source)
        weights = arch.numpy_model(files.weights, cfg).w
        self.workers = CpuWorkers("codesift-onnx", workers)
        # The weights the graphs share (the embedding table, most of the model, among them) are
        # held once: both sessions are handed the same arrays.
        self._weights: dict[str, np.ndarray] = {}
        self.int8_session = None
        if self.dtype == FILE_INT8:  # one graph, every input in the file's arithmetic
            graph = build_bert(cfg, weights, int8=INT8_LINEARS(cfg, file=True), outside=self._weights,
                               stored_int8=file_int8_weights(files, weights))
            self.session = cpu_session(graph, self._weights)
        else:
            self.session = cpu_session(build_bert(cfg, weights, outside=self._weights), self._weights)
        if self.dtype == "int8":
            int8 = INT8_LINEARS(cfg, cpu_has_vnni(), arch_name=arch.name)
            self.int8_session = cpu_session(build_bert(cfg, weights, int8=int8, outside=self._weights), self._weights)
        self.normalize = files.normalize if normalize is None else normalize
        self.max_tokens = files.max_tokens
        self.dim = files.hidden_size  # pooled width; Embedder applies files.truncate_dim (Matryoshka)
        self.device = CpuDevice()
        self.pad_id = int(files.config.get("pad_token_id", 0) or 0)
        self.name = f"onnx-{arch.name}-cpu-{self.dtype}"

    def memory(self) -> dict[str, int]:
        """Bytes of the weights the sessions share (as ONNX Runtime was handed them)."""
        return {} if self.session is None else {"cpu": sum(a.nbytes for a in self._weights.values())}

    def close(self) -> None:
        self.session = self.int8_session = None
        self._weights = {}
        self.workers.close()

    def embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """[n, dim] float32 vectors for pre-tokenized inputs (id lists with the model's specials)."""
        out = np.empty((len(batch), self.dim), dtype=np.float32)

        def run(idx: list[int]) -> None:
            ids, mask = pad_batch([batch[i] for i in idx], self.pad_id, self.max_tokens, mask_dtype=np.int32)
            feed = {"input_ids": ids.astype(np.int32), "attention_mask": mask}
            int8 = self.int8_session is not None and ids.shape[1] > INT8_MIN_TOKENS
            hidden = (self.int8_session if int8 else self.session).run(None, feed)[0]
            out[idx] = pool_array(hidden, mask, self.files.pooling)

        # int8: a short input runs in float32 whatever it is batched with
        split = INT8_MIN_TOKENS if self.int8_session is not None else None
        self.workers.run(run, groups([len(x) for x in batch], split_at=split))
        return normalize_array(out) if self.normalize else out


def file_int8_weights(files: ModelFiles, weights) -> "Callable[[str], StoredInt8 | None]":
    """Our weight name -> the integers the model's ONNX file stores for it; an UnsupportedDeviceError
    where the file has none (dtype int8-file needs a file quantised as onnxruntime's
    `quantize_dynamic` writes one)."""
    linears = [name for name in weights.names
               if name.startswith("layers.") and name.endswith((".wq.weight", ".wk.weight", ".wv.weight", ".wo.weight",
                                                               ".w1.weight", ".w2.weight"))]
    stored = ({name: weights.st.stored_int8(weights.names[name]) for name in linears}
              if files.weights_format == "onnx" else {})
    missing = [name for name in linears if stored.get(name) is None]
    if missing:
        raise UnsupportedDeviceError(f"dtype {FILE_INT8} needs an ONNX file quantised to int8 on the fly "
                                     f"(MatMulInteger fed by DynamicQuantizeLinear); {files.weights} is not "
                                     f"one ({len(missing)} of {len(linears)} linear weights are not): use int8 or fp32")
    return stored.get


def cpu_session(model, weights: dict[str, np.ndarray]):
    """An ONNX Runtime session for one of our graphs, on one thread (runs go in parallel), handed
    the weights the graph names but leaves out (`build_bert(outside=...)`). ONNX Runtime reads
    them where they are: `weights` must outlive the session."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Threads that spin between operators take cores from everything else on a busy machine,
    # and from each other.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    names = [t.name for t in model.graph.initializer if t.name in weights]
    options.add_external_initializers(names, [ort.OrtValue.ortvalue_from_numpy(weights[n]) for n in names])
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
