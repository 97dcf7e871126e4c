#!/usr/bin/env python3
"""The CPU install as a user gets it: a fresh virtual environment, `pip install` of this checkout
(not editable, no extras), then its size on disk, whether torch or any CUDA library came with it,
and one `codesift index` + `codesift search` of a small tree with it.

  python benchmarks/install_size.py [--tree PATH]

The last line printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=ROOT / "codesift" / "search", help="what to index with it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        venv, tree = Path(d) / "venv", Path(d) / "tree"
        shutil.copytree(args.tree, tree)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)], check=True)
        install_s = time.perf_counter() - t0
        site = next((venv / "lib").glob("python3*/site-packages"))
        names = [p.name.lower() for p in site.iterdir()]
        t0 = time.perf_counter()
        subprocess.run([str(venv / "bin" / "codesift"), "index", str(tree), "-q"], check=True)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([str(venv / "bin" / "codesift"), "search", "fuse ranked lists", "--index-dir",
                        str(tree / ".codesift")], check=True, capture_output=True)
        search_s = time.perf_counter() - t0
        out = {"venv_mb": round(folder_bytes(venv) / 1e6, 1), "install_s": round(install_s, 1),
               "torch": any(n.startswith("torch") for n in names),
               "cuda_libraries": any(n.startswith(("nvidia", "triton")) for n in names),
               "tree": str(args.tree.relative_to(ROOT)) if args.tree.is_relative_to(ROOT) else str(args.tree),
               "index_s": round(index_s, 1), "search_s": round(search_s, 2)}
    print(f"fresh CPU install: {out['venv_mb']} MB in {out['install_s']} s, torch {out['torch']}, "
          f"CUDA libraries {out['cuda_libraries']}; index {out['index_s']} s, search {out['search_s']} s")
    write_result("install_size", out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
