"""What every architecture shares without torch: reading a config, finding its weights in a
safetensors file, and the numpy operations of the query-time forward pass.

Kept free of torch so that `codesift search` can encode a query without importing it.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Iterable, Union

import numpy as np

from codesift.embed.weights_file import WeightsFile
from codesift.errors import ModelLoadError, UnsupportedModelError

# A tensor's shape in a weight map: config attribute names (or fixed sizes), e.g. ("vocab_size", "hidden_size").
Shape = tuple[Union[str, int], ...]
# Hugging Face tensor name (without the checkpoint's prefix) -> (our name, shape).
WeightMap = dict[str, tuple[str, Shape]]

# Activations of config.json's `hidden_act` / `hidden_activation` that both forward passes implement.
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu")


@dataclass(frozen=True)
class ModelConfig:
    """Base of the per-architecture configs: fields named as in `config.json`, unknown keys ignored."""

    @classmethod
    def from_dict(cls, config: dict, source: str = "config.json"):
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            cfg = cls(**{k: v for k, v in config.items() if k in names})
        except TypeError as e:
            raise ModelLoadError(f"{source}: incomplete {cls.__name__} ({e})") from e
        cfg.check(source)
        return cfg

    def check(self, source: str) -> None:
        """Refuse settings the forward passes do not implement (UnsupportedModelError)."""
        hidden, heads = getattr(self, "hidden_size"), getattr(self, "num_attention_heads")
        if hidden % heads:
            raise ModelLoadError(f"{source}: hidden_size {hidden} is not a multiple of "
                                 f"num_attention_heads {heads}")

    @property
    def head_dim(self) -> int:
        return getattr(self, "hidden_size") // getattr(self, "num_attention_heads")

    @property
    def max_tokens(self) -> int:
        """The longest input (specials included) the weights can encode."""
        raise NotImplementedError


def check_activation(name: str, field: str, source: str) -> None:
    if name not in SUPPORTED_ACTIVATIONS:
        raise UnsupportedModelError(f"{source}: {field} {name!r} is not supported "
                                    f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})")


def per_layer(n_layers: int, templates: WeightMap, layers: Iterable[int] | None = None) -> WeightMap:
    """Expand "{}" (the layer index) in a weight map's names, for every layer or for `layers`."""
    out: WeightMap = {}
    for i in (range(n_layers) if layers is None else layers):
        for hf, (ours, shape) in templates.items():
            out[hf.format(i)] = (ours.format(i), shape)
    return out


def map_weights(st: WeightsFile, cfg: ModelConfig, weight_map: WeightMap, prefixes: tuple[str, ...],
                anchor: str) -> dict[str, str]:
    """Our name -> the tensor's name in the file, after checking every tensor exists with the right shape.

    The checkpoint's prefix (e.g. "bert." in BertForMaskedLM files) is the first of `prefixes`
    under which `anchor` exists. Tensors the map does not name (pooler, MLM heads) are ignored.
    A missing tensor or a wrong shape is a ModelLoadError naming the tensor and the file.
    """
    prefix = next((p for p in prefixes if p + anchor in st), None)
    if prefix is None:
        sample = ", ".join(sorted(st.keys())[:5])
        raise ModelLoadError(f"{st.path}: no {anchor!r} found under prefixes {prefixes} "
                             f"for {type(cfg).__name__}; file has e.g. {sample}")
    mapping = {}
    for hf, (ours, shape) in weight_map.items():
        name = prefix + hf
        if name not in st and "LayerNorm" in name:  # very old checkpoints: gamma/beta
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        if name not in st:
            raise ModelLoadError(f"{st.path}: missing tensor {prefix + hf!r} (needed for {ours})")
        want = tuple(d if isinstance(d, int) else int(getattr(cfg, d)) for d in shape)
        got = st.tensors[name].shape
        if got != want:
            raise ModelLoadError(f"{st.path}: tensor {name!r} has shape {list(got)}, "
                                 f"config.json implies {list(want)}")
        mapping[ours] = name
    return mapping


class NumpyWeights:
    """A model's tensors as float32 numpy arrays, read from the memory-mapped file on first use."""

    def __init__(self, st: WeightsFile, names: dict[str, str]):
        self.st, self.names = st, names
        self._cache: dict[str, np.ndarray] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __call__(self, name: str) -> np.ndarray:
        a = self._cache.get(name)
        if a is None:
            a = self._cache[name] = self.st.array(self.names[name], np.float32)
        return a

    def forget(self) -> None:
        """Drop the float32 copies read so far (a weight is read again when next used): once another
        engine holds its own copy of the weights, these would be a second one."""
        self._cache.clear()

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows `ids` of a table, float32, shape ids.shape + (dim,). Only those rows are read: an
        embedding table is most of the file, and a query needs a few dozen of its rows."""
        return self.st.rows(self.names[name], ids)


# --- numpy operations -------------------------------------------------------------------------

def erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1.5e-7 (Abramowitz and Stegun 7.1.26) in float32: numpy has no erf, scipy is heavy,
    and a short polynomial keeps the GELU of a large batch cheap."""
    a = np.abs(x)
    t = np.float32(0.3275911) * a
    t += 1
    np.reciprocal(t, out=t)
    p = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p += np.float32(c)
        p *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    p *= a
    np.subtract(1, p, out=p)
    return np.copysign(p, x, out=p).astype(x.dtype, copy=False)


def activation(x: np.ndarray, name: str) -> np.ndarray:
    """config.json's activation by name: exact GELU ("gelu"), its tanh approximations, or ReLU."""
    if name == "relu":
        return np.maximum(x, 0)
    if name == "gelu":
        y = erf(x * np.float32(0.7071067811865476))
        y += 1
        y *= x
        y *= np.float32(0.5)
        return y
    return 0.5 * x * (1.0 + np.tanh(np.float32(0.7978845608028654) * (x + np.float32(0.044715) * x ** 3)))


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdims=True)
    y = xc / np.sqrt(var + np.float32(eps)) * w
    return y if b is None else y + b


# numpy's OpenBLAS now and then returns a wrong product when several threads of one process call it
# at once (numpy issues 29391 and 31618 report such races in its 2025-26 releases; here a cross-encoder
# score came out 0.03 off in one CI run). Our CPU workers therefore take turns at the products and run
# the element-wise work between them in parallel.
BLAS_TURN = threading.Lock()


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, one BLAS call at a time in this process (see BLAS_TURN)."""
    with BLAS_TURN:
        return a @ b


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """x [..., in] @ w[out, in].T (+ b). One 2-D product: numpy runs a 3-D one as many small ones."""
    y = product(x.reshape(-1, x.shape[-1]), w.T).reshape(*x.shape[:-1], w.shape[0])
    if b is not None:
        y += b
    return y


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d) + bias) v for q, k, v [b, heads, t, d]; bias broadcasts to [b, heads, t, t]
    (0 where a query may attend a key, -inf where not).

    One input at a time: its scores ([heads, t, t]) stay in cache through the softmax passes.
    """
    b, nh, t, d = q.shape
    out = np.empty((b, t, nh, d), dtype=np.float32)  # merge_heads then needs no copy
    scale = np.float32(1.0 / np.sqrt(d))
    for i in range(b):
        s = product(q[i], np.swapaxes(k[i], 1, 2))
        s *= scale
        s += bias[i if bias.shape[0] > 1 else 0]
        s -= s.max(-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(-1, keepdims=True)
        # (v^T s^T)^T: numpy runs s @ v itself far slower for these shapes
        out[i] = product(np.swapaxes(v[i], 1, 2), np.swapaxes(s, 1, 2)).transpose(2, 0, 1)
    return out.transpose(0, 2, 1, 3)


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """[b, t, heads * d] -> [b, heads, t, d]"""
    b, t, _ = x.shape
    return x.reshape(b, t, n_heads, -1).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """[b, heads, t, d] -> [b, t, heads * d]"""
    b, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * d)


def key_mask_bias(mask: np.ndarray) -> np.ndarray:
    """[b, t] mask (1 = real token) -> additive [b, 1, 1, t] bias hiding padded keys."""
    return np.where(mask[:, None, None, :] > 0, 0.0, -np.inf).astype(np.float32)
