"""Each architecture against transformers' own implementation: tiny models with random weights,
built with transformers' classes, saved as safetensors and loaded by us. Our padded and packed
torch paths, our numpy twin and, for the architectures it expresses, our ONNX graph must all give
transformers' vectors (CPU fp32)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from codesift.embed.model_files import read_model_folder
from tests.embed.conftest import embed_packed, import_reference

MIN_COS = 0.99999
SEED = 1234
TINY = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=96)


def _transformers_model(arch: str):
    tf = import_reference("transformers")
    if arch == "xlm-roberta":
        return tf.XLMRobertaModel(tf.XLMRobertaConfig(**TINY, max_position_embeddings=514, layer_norm_eps=1e-5))
    if arch == "mpnet":
        return tf.MPNetModel(tf.MPNetConfig(**TINY, max_position_embeddings=514))
    if arch == "modernbert":
        # a window of 16 (8 either side), far shorter than the texts: local layers differ from global ones
        return tf.ModernBertModel(tf.ModernBertConfig(**TINY, max_position_embeddings=512, local_attention=16,
                                                      global_attn_every_n_layers=3, pad_token_id=0,
                                                      bos_token_id=101, eos_token_id=102, cls_token_id=101,
                                                      sep_token_id=102))
    if arch == "nomic-bert":
        return tf.NomicBertModel(tf.NomicBertConfig(**TINY, max_position_embeddings=512))
    raise ValueError(arch)


def _randomize(model) -> None:
    """Weights of unit scale: transformers' init (std 0.02) makes near-constant token states, which
    would hide a wrong position, bias or window behind cosines close to 1 anyway."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_((1.0 if name.endswith(("norm.weight", "LayerNorm.weight")) else 0.0) + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / (p.shape[1] ** 0.5 if "embeddings" not in name else 1.0))


def build_tiny(arch: str, folder, tokenizer):
    """A transformers model of `arch` with seeded random weights, saved in `folder` (config.json,
    model.safetensors) beside a copy of `tokenizer`."""
    torch = import_reference("torch")
    torch.manual_seed(SEED)
    model = _transformers_model(arch)
    _randomize(model)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(tokenizer, folder / "tokenizer.json")
    return model


@pytest.fixture(scope="module", params=["xlm-roberta", "mpnet", "modernbert", "nomic-bert"])
def tiny(request, tmp_path_factory, model_files):
    """(architecture, folder, transformers model); the folder has the default model's tokenizer."""
    folder = tmp_path_factory.mktemp(request.param)
    return request.param, folder, build_tiny(request.param, folder, model_files.tokenizer)


@pytest.fixture(scope="module")
def texts():
    from tests.embed.texts import parity_texts

    sample = parity_texts()[::40]
    # long inputs: relative distances past MPNet's last bucket, many local windows, XLM-R's last positions
    sample += ["def handler(request):\n    " + "value = compute(value, request.args) + 1\n    " * 60,
               "word " * 600, "x", ""]
    return sample


def _reference(model, ids: list[list[int]]) -> np.ndarray:
    """transformers' token states for each input alone (no padding at all), mean-pooled, normalised."""
    import torch

    out = []
    with torch.no_grad():
        for x in ids:
            hidden = model(input_ids=torch.tensor([x])).last_hidden_state[0].numpy()
            out.append(hidden.mean(0))
    out = np.array(out)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _worst(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def test_matches_transformers_padded_packed_numpy(tiny, texts):
    from codesift.embed.embedder import Embedder
    from codesift.embed.query_encoder import QueryEncoder

    arch, folder, model = tiny
    files = read_model_folder(folder)
    emb = Embedder.load(files, device="cpu", dtype="fp32", engine="torch")
    assert emb.backend.name.startswith(f"torch-{arch}-cpu")
    ids = emb.tokenizer.encode(texts).ids
    assert max(map(len, ids)) == files.max_tokens == 512  # XLM-R and MPNet: 514 rows, 2 unused
    ref = _reference(model, ids)
    # different texts lie far apart next to MIN_COS, so a wrong position offset, bias or window
    # (which moves each vector by a fraction of that spread) cannot pass
    off_diagonal = (ref @ ref.T)[~np.eye(len(ref), dtype=bool)]
    assert off_diagonal.mean() < 0.99

    padded = emb.embed(texts, batch_size=8)  # batches of mixed lengths: padding in play
    packed = embed_packed(emb.backend, ids, token_budget=4096)
    numpy_twin = QueryEncoder(files).encode(texts)
    got = {"padded": _worst(padded, ref), "packed": _worst(packed, ref), "numpy": _worst(numpy_twin, ref)}
    if arch in ("xlm-roberta", "mpnet"):  # our ONNX graph (ort_backend) runs these too, in batches of mixed lengths
        import_reference("onnxruntime")
        onnx = Embedder.load(files, device="cpu", dtype="fp32", engine="onnx")
        assert onnx.backend.name == f"onnx-{arch}-cpu-fp32"
        got["onnx"] = _worst(onnx.embed(texts), ref)
    if arch == "mpnet":  # fp32 unless int8 is asked for, and then its second feed-forward layer stays float32
        assert Embedder.load(files, device="cpu").backend.name == "onnx-mpnet-cpu-fp32"
        int8 = Embedder.load(files, device="cpu", dtype="int8")
        assert int8.backend.name == "onnx-mpnet-cpu-int8" and _worst(int8.embed(texts), ref) >= 0.99
    print(f"\n{arch}: min cos vs transformers {got}")
    assert min(got.values()) >= MIN_COS, got


def test_modernbert_reads_the_original_config_spelling(tmp_path, model_files, texts):
    """Hub configs say global_attn_every_n_layers / global_rope_theta / local_rope_theta, not the
    layer_types / rope_parameters that transformers 5 writes: both give the same model."""
    from codesift.embed.embedder import Embedder

    folder = tmp_path / "modernbert"
    folder.mkdir()
    build_tiny("modernbert", folder, model_files.tokenizer)
    cfg = json.loads((folder / "config.json").read_text())
    kinds, rope = cfg.pop("layer_types"), cfg.pop("rope_parameters")
    assert kinds == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    cfg.update(global_attn_every_n_layers=3, global_rope_theta=rope["full_attention"]["rope_theta"],
               local_rope_theta=rope["sliding_attention"]["rope_theta"])
    hub = tmp_path / "modernbert-hub-config"
    shutil.copytree(folder, hub, dirs_exist_ok=True)
    (hub / "config.json").write_text(json.dumps(cfg))
    a = Embedder.load(read_model_folder(folder), device="cpu", dtype="fp32").embed(texts[:4])
    b = Embedder.load(read_model_folder(hub), device="cpu").embed(texts[:4])
    assert _worst(a, b) >= 0.999999


def test_nomicbert_reads_the_original_config_spelling(tmp_path, model_files, texts):
    """nomic's own config.json (n_embd, activation_function "swiglu", rotary_emb_base...), which the
    released models carry, gives the same model as transformers' spelling."""
    from codesift.embed.embedder import Embedder

    folder = tmp_path / "nomic"
    folder.mkdir()
    build_tiny("nomic-bert", folder, model_files.tokenizer)
    cfg = json.loads((folder / "config.json").read_text())
    original = {"model_type": "nomic_bert", "architectures": ["NomicBertModel"], "vocab_size": cfg["vocab_size"],
                "n_embd": cfg["hidden_size"], "n_layer": cfg["num_hidden_layers"], "n_head": cfg["num_attention_heads"],
                "n_inner": cfg["intermediate_size"], "n_positions": cfg["max_position_embeddings"],
                "layer_norm_epsilon": cfg["layer_norm_eps"], "activation_function": "swiglu",
                "rotary_emb_base": cfg["rope_parameters"]["rope_theta"], "rotary_emb_fraction": 1.0,
                "rotary_emb_interleaved": False, "rotary_scaling_factor": None, "qkv_proj_bias": False,
                "mlp_fc1_bias": False, "mlp_fc2_bias": False, "prenorm": False, "type_vocab_size": 2}
    hub = tmp_path / "nomic-hub-config"
    shutil.copytree(folder, hub)
    (hub / "config.json").write_text(json.dumps(original))
    a = Embedder.load(read_model_folder(folder), device="cpu").embed(texts[:4])
    b = Embedder.load(read_model_folder(hub), device="cpu").embed(texts[:4])
    assert _worst(a, b) >= 0.999999
    (hub / "config.json").write_text(json.dumps({**original, "rotary_emb_interleaved": True}))
    from codesift.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="rotary_emb_interleaved"):
        Embedder.load(read_model_folder(hub), device="cpu")


def test_nomicbert_gguf_matches_transformers(tmp_path, model_files, texts):
    """The tiny NomicBERT written as llama.cpp's `nomic-bert` GGUF (the `gguf` package) loads through our
    GGUF path to transformers' vectors: tensor names, SwiGLU order and rope base all read right."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model
    from codesift.embed.query_encoder import QueryEncoder
    from tests.embed.gguf_writer import write_nomic_bert_gguf

    folder = tmp_path / "nomic"
    folder.mkdir()
    model = build_tiny("nomic-bert", folder, model_files.tokenizer)
    files = resolve_model(write_nomic_bert_gguf(folder, model_files.root, tmp_path / "nomic.gguf"))
    assert (files.model_type, files.weights_format, files.max_tokens) == ("nomic_bert", "gguf", 512)
    emb = Embedder.load(files, device="cpu", dtype="fp32")
    ids = emb.tokenizer.encode(texts).ids
    ref = _reference(model, ids)
    got = {"torch": _worst(emb.embed(texts, batch_size=8), ref), "numpy": _worst(QueryEncoder(files).encode(texts), ref)}
    print(f"\nnomic-bert GGUF: min cos vs transformers {got}")
    assert min(got.values()) >= MIN_COS, got


def test_mpnet_buckets_match_transformers():
    import torch

    from codesift.embed.models.mpnet import relative_buckets

    tf_mpnet = import_reference("transformers.models.mpnet.modeling_mpnet")
    t = 700
    pos = torch.arange(t)
    ref = tf_mpnet.MPNetEncoder.relative_position_bucket(pos[None, :] - pos[:, None]).numpy()
    assert np.array_equal(relative_buckets(t), ref)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_gpu_matches_cpu(tiny, texts, dtype):
    """On CUDA: XLM-R and ModernBERT (its local layers through flash attention's window) run packed
    batches, MPNet padded ones; all close to CPU fp32."""
    from codesift.embed.backend import load_backend
    from codesift.embed.embedder import Embedder
    from codesift.embed.scheduler import PackedRunner, make_runner
    from tests.embed.test_scheduler import run_all

    arch, folder, _ = tiny
    files = read_model_folder(folder)
    cpu = Embedder.load(files, device="cpu", dtype="fp32")
    runner = make_runner(load_backend(files, device="cuda", dtype=dtype), 4096)
    assert isinstance(runner, PackedRunner) == (arch != "mpnet")
    got = run_all(texts, cpu.tokenizer, runner, files.dim)
    cos = _worst(got, cpu.embed(texts))
    print(f"\n{arch} {dtype} on cuda vs cpu fp32: min cos {cos:.6f}")
    assert cos >= 0.999


@pytest.mark.slow
def test_all_mpnet_base_v2_matches_sentence_transformers():
    """The real MPNet model (assembled by `codesift models add all-mpnet-base-v2`) on the parity texts."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.model_files import resolve_model
    from codesift.embed.query_encoder import QueryEncoder
    from codesift.errors import ModelNotFoundError
    from tests.embed.texts import parity_texts

    try:
        files = resolve_model("all-mpnet-base-v2")
    except ModelNotFoundError:
        pytest.skip("all-mpnet-base-v2 is not in the models folder: codesift models add all-mpnet-base-v2")
    st = import_reference("sentence_transformers")
    texts = parity_texts()
    ours = Embedder.load(files, device="cpu", dtype="fp32").embed(texts)
    ref = st.SentenceTransformer(str(files.root), device="cpu").encode(texts, batch_size=32, convert_to_numpy=True)
    cos = _worst(ours, ref)
    numpy_cos = _worst(QueryEncoder(files).encode(texts[::10]), ours[::10])
    print(f"\nall-mpnet-base-v2 over {len(texts)} texts: min cos vs sentence-transformers {cos:.8f}, "
          f"numpy vs the CPU default engine {numpy_cos:.8f}")
    assert cos >= MIN_COS and numpy_cos >= MIN_COS
