"""The ONNX Runtime CPU backend: our graph from our weights, fp32 parity with sentence-transformers,
int8 within its bounds of fp32, the kernels the graph relies on, the backend contract, and dispatch."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from codesift.embed.backend import load_backend  # noqa: E402
from codesift.embed.embedder import Embedder  # noqa: E402
from codesift.embed.onnx_graph import INT8_LINEARS, MS, build_bert, cpu_has_vnni, quantize_columns  # noqa: E402
from codesift.embed.ort_backend import INT8_MIN_TOKENS, groups  # noqa: E402
from codesift.embed.tokenizer import TextTokenizer  # noqa: E402
from codesift.errors import UnsupportedDeviceError  # noqa: E402
from tests.embed.texts import parity_texts  # noqa: E402


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def embedder_for(model_files, **kw) -> Embedder:
    return Embedder(model_files, load_backend(model_files, device="cpu", **kw), TextTokenizer(model_files))


@pytest.fixture(scope="module")
def onnx_fp32(model_files):
    return embedder_for(model_files, engine="onnx", dtype="fp32")


@pytest.fixture(scope="module")
def onnx_int8(model_files):
    return embedder_for(model_files, dtype="int8")


def int8_embedder(model_files, vnni: bool) -> Embedder:
    """The int8 backend with the weight formats for a CPU with VNNI or without (this CPU runs
    both exactly if it has VNNI; without it, only the formats without)."""
    if vnni and not cpu_has_vnni():
        pytest.skip("this CPU has no VNNI: its 8-bit kernel would saturate with full-range weights")
    with pytest.MonkeyPatch.context() as m:
        m.setattr("codesift.embed.onnx_graph.cpu_has_vnni", lambda: vnni)
        return embedder_for(model_files, dtype="int8")


@pytest.fixture(scope="module")
def texts():
    t = parity_texts()
    assert len(t) >= 500
    return t


@pytest.fixture(scope="module")
def fp32_vectors(onnx_fp32, texts):
    return onnx_fp32.embed(texts, batch_size=32)


@pytest.mark.slow
def test_fp32_parity_with_sentence_transformers(reference_model, texts, fp32_vectors):
    ref = reference_model.encode(texts, batch_size=32, convert_to_numpy=True)
    cos = cosines(fp32_vectors, ref)
    worst = int(cos.argmin())
    print(f"\nonnx fp32 over {len(texts)} texts: min cos {cos.min():.8f}, mean {cos.mean():.8f}")
    assert cos.min() >= 0.9999, f"text {worst} {texts[worst][:80]!r}: cos {cos[worst]}"
    np.testing.assert_allclose(np.linalg.norm(fp32_vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("vnni", [False, True], ids=["avx2-formats", "vnni-formats"])
def test_int8_within_bounds_of_fp32(model_files, vnni, texts, fp32_vectors):
    e = int8_embedder(model_files, vnni)
    got = e.embed(texts, batch_size=32)
    cos = cosines(got, fp32_vectors)
    worst = int(cos.argmin())
    print(f"\nonnx int8 ({'VNNI' if vnni else 'AVX2'} formats) against fp32 over {len(texts)} texts: "
          f"min cos {cos.min():.6f}, mean {cos.mean():.6f}")
    assert cos.min() >= 0.995, f"text {worst} {texts[worst][:80]!r}: cos {cos[worst]}"
    assert cos.mean() >= 0.999
    # int8 is not fp32 under another name: inputs past the short-run threshold do differ
    lengths = np.array([len(x) for x in e.tokenizer.encode(texts).ids])
    assert cos[lengths > INT8_MIN_TOKENS].max() < 0.99999


def test_int8_short_runs_are_fp32(onnx_int8, onnx_fp32):
    """Runs of short inputs go through in float32 (their few tokens each weigh much)."""
    ids = onnx_int8.tokenizer.encode(["def f(x):", "import os", "return None"]).ids
    assert max(len(x) for x in ids) <= INT8_MIN_TOKENS
    np.testing.assert_allclose(onnx_int8.backend.embed_batch(ids), onnx_fp32.backend.embed_batch(ids), atol=1e-5)


@pytest.mark.parametrize("which", ["onnx_fp32", "onnx_int8"])
def test_contract(which, request, embedder):
    e = request.getfixturevalue(which)
    b = e.backend
    assert (b.is_gpu, b.packed_supported, b.dim, b.max_tokens) == (False, False, embedder.dim, embedder.max_tokens)
    assert b.name == f"onnx-bert-cpu-{which.split('_')[1]}"
    assert b.embed_batch([]).shape == (0, b.dim)
    ids = e.tokenizer.encode(["def f(x):\n    return x + 1", "a longer text " * 20]).ids
    got = b.embed_batch(ids)
    assert got.dtype == np.float32 and got.shape == (2, b.dim)
    # a vector does not depend on what it was run with (int8: each token's activations have a scale of their own)
    np.testing.assert_allclose(b.embed_batch(ids[:1])[0], got[0], atol=1e-5)
    np.testing.assert_allclose(b.embed_batch(ids[1:])[0], got[1], atol=1e-5)
    with pytest.raises(ValueError, match="over this model's limit"):
        b.embed_batch([[1] * (b.max_tokens + 1)])
    assert e.memory()["cpu"] > 20_000_000


def test_groups_cut_sorted_inputs_to_the_token_budget():
    lengths = [3, 200, 50, 50, 50, 300, 10]
    runs = groups(lengths, budget=256)
    assert sorted(i for run in runs for i in run) == list(range(len(lengths)))
    assert runs[0] == [5]  # over the budget: alone
    for run in runs:
        assert [lengths[i] for i in run] == sorted((lengths[i] for i in run), reverse=True)
        assert len(run) == 1 or len(run) * lengths[run[0]] <= 256
    assert [len(r) for r in runs] == [1, 1, 5]
    split = groups(lengths, budget=256, split_at=10)  # short inputs apart from longer ones
    assert sorted(i for run in split for i in run) == list(range(len(lengths)))
    assert [[lengths[i] for i in run] for run in split] == [[300], [200], [50, 50, 50], [10, 3]]


def test_cpu_default_is_onnx_int8_and_others_on_request(model_files, monkeypatch):
    monkeypatch.delenv("CODESIFT_ENGINE", raising=False)
    for dtype in (None, "auto"):
        assert load_backend(model_files, device="cpu", dtype=dtype).name == "onnx-bert-cpu-int8"
    assert load_backend(model_files, device="cpu", engine="onnx").name == "onnx-bert-cpu-int8"
    assert load_backend(model_files, device="cpu", dtype="fp32").name == "onnx-bert-cpu-fp32"
    assert load_backend(model_files, device="cpu", engine="numpy").name.startswith("numpy-bert-cpu")
    monkeypatch.setenv("CODESIFT_ENGINE", "numpy")
    assert load_backend(model_files, device="cpu").name.startswith("numpy-bert-cpu")


def test_int8_layers_per_architecture(model_files):
    from codesift.embed.models.bert import BertConfig
    from codesift.embed.onnx_graph import default_cpu_dtype

    cfg = BertConfig.from_dict(model_files.config)
    for vnni in (False, True):
        bert = INT8_LINEARS(cfg, vnni)
        mpnet = INT8_LINEARS(cfg, vnni, arch_name="mpnet")
        assert any(name.endswith(".ffn.w2") for name in bert)
        assert mpnet == {name: kind for name, kind in bert.items() if not name.endswith(".ffn.w2")}
    assert INT8_LINEARS(cfg, file=True, arch_name="mpnet") == INT8_LINEARS(cfg, file=True)  # the file's, whole
    assert [default_cpu_dtype(a) for a in ("bert", "xlm-roberta", "mpnet")] == ["int8", "int8", "fp32"]


def test_onnx_engine_refusals(model_files):
    with pytest.raises(UnsupportedDeviceError, match="CPU only"):
        load_backend(model_files, device="cuda", engine="onnx")
    with pytest.raises(UnsupportedDeviceError, match="fp32, int8 or int8-file"):
        load_backend(model_files, device="cpu", dtype="bf16", engine="onnx")
    with pytest.raises(UnsupportedDeviceError, match="fp32"):
        load_backend(model_files, device="cpu", dtype="int8", engine="numpy")


def test_quantize_columns_formats():
    w = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32) * np.arange(1, 9, dtype=np.float32)
    for kind, dtype, lo, hi in (("s7", np.int8, -64, 63), ("s8", np.int8, -128, 127), ("u8", np.uint8, 0, 255)):
        q, scale, zero = quantize_columns(w, kind)
        assert q.dtype == dtype and int(q.min()) >= lo and int(q.max()) <= hi
        back = (q.astype(np.float32) - zero.astype(np.float32)) * scale
        assert np.abs(back - w).max(0).tolist() <= (scale * 0.5001).tolist()  # within half a step per column
    with pytest.raises(ValueError, match="unknown int8 weight format"):
        quantize_columns(w, "s6")


@pytest.mark.parametrize("lo,hi", [(-64, 63), (-128, 127)], ids=["s7", "s8"])
def test_unsigned_by_signed_products_are_exact(lo, hi):
    """The int8 graph's signed layers rely on ONNX Runtime's uint8 x int8 kernel summing without
    saturating: everywhere with weights in [-64, 63] (without VNNI it adds pairs of products in 16
    bits), and with full-range weights on a CPU with VNNI (its sums are 32-bit)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    if hi == 127 and not cpu_has_vnni():
        pytest.skip("full-range signed weights are only used on a CPU with VNNI")
    rng = np.random.default_rng(0)
    k, n = 384, 64
    q = rng.integers(lo, hi + 1, (k, n)).astype(np.int8)
    q[:, 0], q[:, 1] = hi, lo  # every pair of products at the extremes
    x = rng.integers(0, 256, (16, k)).astype(np.uint8)
    x[0] = 255
    one = np.array(1.0, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMulIntegerToFloat", ["x", "q", "one", "one", "", ""], ["y"], domain=MS)], "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [16, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, n])],
        initializer=[numpy_helper.from_array(q, "q"), numpy_helper.from_array(one, "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    model.ir_version = 9
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, x.astype(np.int64) @ q.astype(np.int64))


def test_graph_kernels(model_files, tmp_path):
    """What ONNX Runtime runs after its own optimiser: the 8-bit layers INT8_LINEARS names, and layer
    norms as LayerNormalization (its fused SkipLayerNormalization kernel is several times slower)."""
    import onnx
    import onnxruntime as ort

    from codesift.embed.models import architecture_for

    arch = architecture_for(model_files.config, source="config.json")
    cfg = arch.read_config(model_files.config, source="config.json")
    weights = arch.numpy_model(model_files.weights, cfg).w
    for int8 in ({}, INT8_LINEARS(cfg), INT8_LINEARS(cfg, vnni=True)):
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
        ort.InferenceSession(build_bert(cfg, weights, int8=int8).SerializeToString(), options,
                             providers=["CPUExecutionProvider"])
        ops = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
        assert "SkipLayerNormalization" not in ops
        assert ops.count("LayerNormalization") == 2 * cfg.num_hidden_layers
        assert ops.count("MatMulIntegerToFloat") == len(int8)
        # the query/key/value product: inside the fused Attention kernel, or query and key in 8 bits
        # beside the value's float32 product, for MultiHeadAttention
        qk = sum(name.endswith("attention.qk") for name in int8)
        assert (ops.count("Attention"), ops.count("MultiHeadAttention")) == (cfg.num_hidden_layers - qk, qk)
    assert set(INT8_LINEARS(cfg).values()) == {"s7", "u8"}
    vnni = INT8_LINEARS(cfg, vnni=True)
    assert set(vnni.values()) == {"s8"} and "layers.0.attention.qk" in vnni and set(INT8_LINEARS(cfg)) < set(vnni)


def test_batch_bounds():
    from codesift.embed.batches import GROUPED_LOT_TOKENS, batch_bounds

    lengths = [200] * 100 + [10] * 1000
    assert batch_bounds(lengths[:7], 3) == [(0, 3), (3, 6), (6, 7)]
    lots = batch_bounds(lengths, 32, groups_inputs=True)
    assert lots[0][0] == 0 and lots[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(lots, lots[1:]))  # consecutive, nothing left out
    for start, end in lots[:-1]:
        assert sum(lengths[start:end]) >= GROUPED_LOT_TOKENS and end - start >= 32
        assert sum(lengths[start:end - 1]) < GROUPED_LOT_TOKENS or end - 1 - start < 32
    assert batch_bounds([5] * 10, 32, groups_inputs=True) == [(0, 10)]


def test_onnx_embedder_gives_the_backend_lots(onnx_fp32, texts):
    """A backend that groups its inputs gets many at once: short texts in runs on every core, not 32 at a time."""
    seen = []
    backend = onnx_fp32.backend
    real = backend.embed_batch
    backend.embed_batch = lambda batch: seen.append(len(batch)) or real(batch)
    try:
        got = onnx_fp32.embed(texts[:200], batch_size=32)
    finally:
        del backend.embed_batch
    assert sum(seen) == 200 and max(seen) > 32
    np.testing.assert_allclose(got, onnx_fp32.embed(texts[:200], batch_size=200), atol=1e-5)


@pytest.mark.slow
def test_smoothing_brings_int8_closer_to_fp32(model_files, texts, fp32_vectors, monkeypatch):
    """The first feed-forward layer's input channels evened out (onnx_graph.smoothing): the int8 vectors
    move less from fp32 than with the channels as the norm writes them."""
    from codesift.embed import onnx_graph

    shipped = onnx_graph.SMOOTH_ALPHA
    assert shipped > 0
    long = np.array([len(x) > INT8_MIN_TOKENS for x in TextTokenizer(model_files).encode(texts).ids])
    mean_cos = {}
    for alpha in (shipped, 0.0):
        monkeypatch.setattr(onnx_graph, "SMOOTH_ALPHA", alpha)
        got = embedder_for(model_files, dtype="int8").embed(texts, batch_size=32)
        mean_cos[alpha] = float(cosines(got, fp32_vectors)[long].mean())
    print(f"\nint8 against fp32, mean cos over {long.sum()} texts: {mean_cos}")
    assert mean_cos[shipped] > mean_cos[0.0]


def test_weights_outside_the_graph(model_files, texts):
    """Weights handed to ONNX Runtime as arrays (not copied into the graph) run the same model; the
    fp32 and int8 graphs share the arrays they have in common; a name never has two values."""
    import onnxruntime as ort

    from codesift.embed.batches import pad_batch
    from codesift.embed.models import architecture_for
    from codesift.embed.ort_backend import cpu_session

    arch = architecture_for(model_files.config, source="config.json")
    cfg = arch.read_config(model_files.config, source="config.json")
    weights = arch.numpy_model(model_files.weights, cfg).w
    ids = TextTokenizer(model_files).encode(texts[:40]).ids
    batch, mask = pad_batch(ids, 0, 256, mask_dtype=np.int32)
    feed = {"input_ids": batch.astype(np.int32), "attention_mask": mask}
    outside: dict[str, np.ndarray] = {}
    for int8 in ({}, INT8_LINEARS(cfg), INT8_LINEARS(cfg, vnni=True)):
        inline = ort.InferenceSession(build_bert(cfg, weights, int8=int8).SerializeToString(),
                                      providers=["CPUExecutionProvider"])
        graph = build_bert(cfg, weights, int8=int8, outside=outside)
        assert graph.ByteSize() < 1 << 20  # the names, not the weights
        got = cpu_session(graph, outside).run(None, feed)[0]
        np.testing.assert_allclose(got, inline.run(None, feed)[0], rtol=0, atol=1e-5)
    assert np.shares_memory(outside["word_embeddings"], weights("tok_embeddings.weight"))  # no copy
    assert outside["layers.0.ffn.w1.s7"].dtype == np.int8  # the 8-bit weights too, per format
    assert outside["layers.0.ffn.w2.u8"].dtype == np.uint8 and outside["layers.0.ffn.w2.s8"].dtype == np.int8
    with pytest.raises(ValueError, match="two different weights"):
        build_bert(cfg, weights, outside={"word_embeddings": np.zeros_like(outside["word_embeddings"])})
