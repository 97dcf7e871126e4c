"""GGUF models: a GGUF written from the default model's real weights (as llama.cpp's converter
writes BERT) loads through our GGUF path to the same vectors as our safetensors path; its
vocabulary gives the same token ids; loading is bounded in memory; ollama's layout resolves."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from codesift.embed.gguf_file import TENSOR_NAMES, GGUFFile, hf_tensor_name
from codesift.embed.model_files import list_models, resolve_model
from codesift.errors import ModelLoadError, ModelNotFoundError, UnsupportedModelError
from tests.embed.texts import EDGE, PROSE, SNIPPETS, UNICODE

gguf = pytest.importorskip("gguf")

from tests.embed.gguf_writer import write_bert_gguf  # noqa: E402  (needs gguf)

TEXTS = SNIPPETS + PROSE + UNICODE + EDGE
MIN_COSINE = {"F16": 0.9999, "BF16": 0.999, "Q8_0": 0.999}


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf")


@pytest.fixture(scope="session")
def gguf_path(model_files, gguf_dir):
    made = {}

    def get(ftype: str) -> Path:
        if ftype not in made:
            made[ftype] = write_bert_gguf(model_files.root, gguf_dir / f"minilm-{ftype}.gguf", ftype)
        return made[ftype]

    return get


def as_safetensors_files(gguf_files, model_files):
    """The GGUF model with the folder's token limit (sentence_bert_config's 256; GGUF carries only
    the position table's 512), so that long texts are cut at the same place on both paths."""
    return dataclasses.replace(gguf_files, max_seq_length=model_files.max_seq_length)


def test_tensor_names_are_llama_cpps():
    """Our llama.cpp -> Hugging Face table agrees with the gguf package's TensorNameMap (llama.cpp's own)."""
    arches = {"bert": gguf.MODEL_ARCH.BERT, "nomic-bert": gguf.MODEL_ARCH.NOMIC_BERT}
    for arch, (glob, block) in TENSOR_NAMES.items():
        names = gguf.TensorNameMap(arches[arch], 3)
        for ours, hf in list(glob.items()) + [(f"blk.2.{k}", v.format(2)) for k, v in block.items()]:
            assert names.get_name(hf) == ours, (arch, hf)
            assert hf_tensor_name(arch, ours + ".weight") == hf + ".weight"
    assert hf_tensor_name("bert", "blk.0.unknown.weight") == "blk.0.unknown.weight"


def test_metadata_to_config(gguf_path, model_files):
    g = GGUFFile(gguf_path("F16"))
    cfg = g.config()
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size"):
        assert cfg[key] == model_files.config[key], key
    assert cfg["model_type"] == "bert" and g.pooling == "mean"
    assert abs(cfg["layer_norm_eps"] - model_files.config["layer_norm_eps"]) < 1e-15
    assert g.float32_bytes == 4 * sum(int(np.prod(t.shape)) for t in g.tensors.values())
    files = resolve_model(gguf_path("F16"))
    assert (files.weights_format, files.architecture, files.dim, files.source) == ("gguf", "BertModel", 384, "path")


def test_cls_pooling_from_metadata(model_files, gguf_dir):
    path = write_bert_gguf(model_files.root, gguf_dir / "cls.gguf", "F16", pooling=2)
    assert resolve_model(path).pooling == "cls"


def test_vocabulary_gives_the_same_ids(gguf_path, model_files):
    """The tokenizer built from the GGUF's tokens, types and special ids tokenizes as tokenizer.json."""
    from tokenizers import Tokenizer

    ours = GGUFFile(gguf_path("Q8_0")).tokenizer()
    ref = Tokenizer.from_file(str(model_files.tokenizer))
    ref.no_truncation()
    ref.no_padding()
    assert ours.get_vocab() == ref.get_vocab()
    texts = [t for t in TEXTS if len(t) < 3000] + ["Ünïcödé ÀÉÎ straße", "foo[MASK]bar [SEP]"]
    for t in texts:
        assert ours.encode(t).ids == ref.encode(t).ids, t


@pytest.mark.parametrize("ftype", ["F16", "Q8_0", "BF16"])
def test_embeddings_match_safetensors_path(ftype, gguf_path, model_files, embedder):
    """Same vectors through our GGUF path as through our safetensors path, torch and numpy."""
    from codesift.embed.embedder import Embedder
    from codesift.embed.query_encoder import QueryEncoder

    files = as_safetensors_files(resolve_model(gguf_path(ftype)), model_files)
    ref = embedder.embed(TEXTS)
    got = Embedder.load(files, device="cpu", dtype="fp32").embed(TEXTS)
    cos = (got * ref).sum(1)
    assert cos.min() >= MIN_COSINE[ftype], (ftype, cos.min())
    short = [t for t in TEXTS if len(t) < 400][:12]
    q = QueryEncoder(files).encode(short)
    assert (q * embedder.embed(short)).sum(1).min() >= MIN_COSINE[ftype]


def test_quantised_rows_equal_whole_table(gguf_path):
    g = GGUFFile(gguf_path("Q8_0"))
    name = "embeddings.word_embeddings.weight"
    assert g.tensors[name].dtype == "Q8_0"
    ids = np.array([[0, 101, 2023], [30521, 7, 7]])
    np.testing.assert_array_equal(g.rows(name, ids), g.array(name)[ids])


def test_load_peak_memory_is_bounded(gguf_path):
    """Peak RSS growth while loading the model (Embedder.load on the CPU) stays under the weights'
    float32 size + 64 MB, measured in a fresh process (VmHWM after resetting it)."""
    path = gguf_path("F16")
    limit = GGUFFile(path).float32_bytes + 64 * 2 ** 20
    code = textwrap.dedent(f"""
        import json, torch, tokenizers, gguf, numpy
        from codesift.embed.embedder import Embedder
        import codesift.embed.models.bert_torch, codesift.embed.gguf_file, codesift.embed.tokenizer
        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
        except OSError as e:
            print(json.dumps({{"skip": f"cannot reset VmHWM: {{e}}"}}))
            raise SystemExit(0)
        before = status("VmRSS:")
        assert status("VmHWM:") - before < 8 * 2 ** 20, "VmHWM was not reset"
        e = Embedder.load({str(path)!r}, device="cpu", dtype="fp32")
        e.embed(["warm"])
        print(json.dumps({{"growth": status("VmHWM:") - before}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    growth = result["growth"]
    assert growth <= limit, (growth, limit)


def fake_ollama(root: Path, blob_src: Path, name: str = "minilm", tag: str = "latest",
                namespace: str = "library") -> Path:
    """ollama's layout: a manifest naming the GGUF blob by digest, beside a config layer."""
    import hashlib

    digest = hashlib.sha256(blob_src.read_bytes()).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    blob = root / "blobs" / f"sha256-{digest}"
    if not blob.exists():
        blob.symlink_to(blob_src)
    manifest = root / "manifests" / "registry.ollama.ai" / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:" + "0" * 64, "size": 1},
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
         "size": blob_src.stat().st_size}]}))
    return blob


def test_ollama_model_resolves_to_its_blob(gguf_path, tmp_path, monkeypatch, model_files, embedder):
    root = tmp_path / "ollama"
    blob = fake_ollama(root, gguf_path("Q8_0"))
    fake_ollama(root, gguf_path("F16"), name="minilm-f16", tag="v1", namespace="someone")
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    monkeypatch.setenv("CODESIFT_MODELS", str(tmp_path / "none"))
    files = resolve_model("ollama:minilm")
    assert files.weights == blob and files.name == "ollama:minilm:latest" and files.source.startswith("ollama ")
    assert resolve_model("ollama:minilm:latest").weights == blob
    assert resolve_model("ollama:someone/minilm-f16:v1").name == "ollama:someone/minilm-f16:v1"
    from codesift.embed.embedder import Embedder

    got = Embedder.load(as_safetensors_files(files, model_files), device="cpu", dtype="fp32").embed(SNIPPETS[:4])
    assert (got * embedder.embed(SNIPPETS[:4])).sum(1).min() >= MIN_COSINE["Q8_0"]
    listed = {m.name: m for m in list_models() if not isinstance(m, tuple)}
    assert listed["ollama:minilm:latest"].architecture == "BertModel"
    assert listed["ollama:minilm:latest"].dim == 384
    assert listed["ollama:someone/minilm-f16:v1"].source == f"ollama {root}"
    with pytest.raises(ModelNotFoundError, match="ollama pull nomic-embed-text:latest"):
        resolve_model("ollama:nomic-embed-text")
    with pytest.raises(ModelNotFoundError, match="not a model name"):
        resolve_model("ollama:../x")
    blob.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        resolve_model("ollama:minilm")


def test_gguf_in_models_folder_listed_and_resolved(gguf_path, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "minilm.gguf").symlink_to(gguf_path("F16"))
    (folder / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 10)
    monkeypatch.setenv("CODESIFT_MODELS", str(folder))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    found = list_models()
    ok = {m.name: m for m in found if not isinstance(m, tuple)}
    assert ok["minilm.gguf"].dim == 384 and ok["minilm.gguf"].source == f"models folder {folder}"
    assert any(isinstance(m, tuple) and m[0].endswith("broken.gguf") for m in found)
    assert resolve_model("minilm.gguf").weights == folder / "minilm.gguf"
    with pytest.raises(ModelLoadError, match="damaged or truncated"):
        resolve_model(folder / "broken.gguf")


def test_unsupported_gguf_is_listed_and_refused_clearly(tmp_path):
    """A GGUF of an architecture we do not run (a chat model) lists with its architecture and width;
    loading it names what is supported."""
    path = tmp_path / "chat.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<s>", "</s>", "a"])
    w.add_tensor("token_embd.weight", np.zeros((3, 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    files = resolve_model(path)
    assert (files.architecture, files.dim) == ("llama", 64)
    from codesift.embed.embedder import Embedder

    with pytest.raises(UnsupportedModelError, match="not supported; supported: BERT"):
        Embedder.load(files, device="cpu")
    with pytest.raises(UnsupportedModelError, match="tokenizer model 'llama'"):
        GGUFFile(path).tokenizer()


def test_not_gguf_file_refused(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"\0" * 64)
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        resolve_model(p)


@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K", "Q5_K", "Q8_0"])
def test_k_quant_tensors_read_at_their_offsets(qtype, tmp_path):
    """K-quant tensors (256-value super-blocks) among others: each read at its offset, in Hugging Face
    shape, equal to llama.cpp's dequantisation of its own bytes; rows() equal to the whole table's.
    (The gguf package cannot quantise to K-quants, so the blocks are random bytes with sane scales.)"""
    from gguf.quants import dequantize

    qt = gguf.GGMLQuantizationType[qtype]
    block, type_size = gguf.GGML_QUANT_SIZES[qt]
    rng = np.random.default_rng(0)
    rows, cols = 6, 2 * block
    blocks = rng.integers(0, 256, size=(rows * cols // block, type_size), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    if qtype == "Q6_K":
        blocks[:, -2:] = scale  # d is the last field
    else:
        blocks[:, 0:2] = scale  # d (and, for Q4_K/Q5_K, dmin) lead the block
        if qtype != "Q8_0":
            blocks[:, 2:4] = scale
    raw = blocks.reshape(rows, -1)
    path = tmp_path / "k.gguf"
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_tensor("token_embd_norm.weight", np.arange(7, dtype=np.float32))  # an odd-sized tensor first
    w.add_tensor("blk.0.ffn_down.weight", raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    g = GGUFFile(path)
    name = "encoder.layer.0.output.dense.weight"
    assert (g.tensors[name].dtype, g.tensors[name].shape) == (qtype, (rows, cols))
    want = dequantize(raw, qt)
    assert np.isfinite(want).all() and np.abs(want).max() > 0
    np.testing.assert_array_equal(g.array(name), want)
    np.testing.assert_array_equal(g.rows(name, np.array([5, 0, 3])), want[[5, 0, 3]])
    np.testing.assert_array_equal(g.array("embeddings.LayerNorm.weight"), np.arange(7, dtype=np.float32))
