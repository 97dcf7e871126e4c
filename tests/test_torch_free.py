"""A CPU install has no torch (it is the `codesift[gpu]` extra): index and search still work and
never import it, and asking for a GPU says which extra to install."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_TORCH = Path(__file__).resolve().parent / "no_torch.py"


def codesift_without_torch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CODESIFT_DEVICE", None)
    return subprocess.run([sys.executable, str(NO_TORCH), *args], capture_output=True, text=True, env=env,
                          timeout=900)


def test_the_blocker_blocks_torch():
    """The harness itself: `import torch` fails under it (else the tests below prove nothing)."""
    code = f"import runpy, sys; sys.argv = ['x']; runpy.run_path({str(NO_TORCH)!r}); import torch"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "blocked" in r.stderr


@pytest.mark.slow
def test_index_and_search_without_torch(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "shapes.py").write_text(
        "def circle_area(radius):\n    \"\"\"Area of a circle.\"\"\"\n    return 3.14159 * radius * radius\n\n\n"
        "def parse_config(path):\n    \"\"\"Read key=value lines from a config file.\"\"\"\n"
        "    with open(path) as f:\n        return dict(line.strip().split('=', 1) for line in f if '=' in line)\n")
    (tree / "notes.md").write_text("# Notes\n\nThe cache is flushed every night by a cron job.\n")
    index_dir = tmp_path / "idx"

    r = codesift_without_torch("index", str(tree), "--index-dir", str(index_dir), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "TORCH_LOADED=False" in r.stderr
    assert "indexed 2 files" in r.stdout + r.stderr

    r = codesift_without_torch("search", "area of a circle", "--index-dir", str(index_dir), "--json")
    assert r.returncode == 0, r.stderr
    assert "TORCH_LOADED=False" in r.stderr
    hits = json.loads(r.stdout)
    hits = hits["results"] if isinstance(hits, dict) else hits
    assert hits and "shapes.py" in json.dumps(hits[0])


def test_gpu_device_without_torch_names_the_extra(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "a.py").write_text("def f():\n    return 1\n")
    r = codesift_without_torch("index", str(tree), "--index-dir", str(tmp_path / "idx"), "--device", "cuda")
    assert r.returncode != 0
    message = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("TORCH_LOADED")]
    assert len(message) == 1, r.stderr
    assert "codesift[gpu]" in message[0]
    assert "Traceback" not in r.stderr


# The modules that are torch by nature: the torch backend and the torch twins of the architectures.
TORCH_MODULES = {"codesift.embed.torch_backend", "codesift.embed.models.layers"}


def test_every_other_module_imports_without_torch():
    code = (f"import runpy, sys; sys.argv = ['x']; runpy.run_path({str(NO_TORCH)!r}); "
            "import importlib, pkgutil, codesift\n"
            "for m in pkgutil.walk_packages(codesift.__path__, 'codesift.'):\n"
            "    try: importlib.import_module(m.name)\n"
            "    except ImportError as e: print(m.name)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    failed = set(r.stdout.split())
    assert {m for m in failed if not m.endswith("_torch")} <= TORCH_MODULES, failed
    assert "codesift.embed.torch_backend" in failed  # the blocker did block
    assert "TORCH_LOADED=False" in r.stderr


def test_cpu_embedding_skips_torch_even_where_installed():
    """Torch installed or not, embedding on the CPU (the ONNX Runtime engine, or numpy without it,
    and the padded runner) does not pay for importing it."""
    code = ("import sys\n"
            "from codesift.embed.embedder import Embedder\n"
            "from codesift.embed.scheduler import make_runner\n"
            "e = Embedder.load('default', device='cpu')\n"
            "make_runner(e.backend)\n"
            "assert e.embed(['def f(): pass']).shape == (1, e.dim)\n"
            "print(e.backend.name, 'torch' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CODESIFT_ENGINE", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["onnx-bert-cpu-int8", "False"]
