"""Packaging and start-up guarantees."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import codesift


def test_every_stage_folder_is_a_regular_package():
    root = Path(codesift.__file__).parent
    for folder in root.iterdir():
        if folder.is_dir() and any(folder.glob("*.py")):
            assert (folder / "__init__.py").is_file(), f"{folder.name} has no __init__.py: a wheel would omit it"


def test_cli_import_is_light():
    """`codesift search` must not pay for torch: importing the CLI and the search path loads neither
    torch nor sentence-transformers."""
    code = ("import sys, codesift.cli, codesift.search.searcher, codesift.embed.query_encoder; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
