"""The eval kit as the benchmarks use it: benchmarks/evalkit, in this repo.

Scripts here run as `python benchmarks/NAME.py`, which puts benchmarks/ on sys.path but not the
repo root; the root is added so that the kit has one module name (benchmarks.evalkit) everywhere.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from benchmarks.evalkit.score import load_jsonl, score  # noqa: E402

__all__ = ["CODESIFT", "STAND_IN_MODEL", "checkout", "checkout_commit", "checkout_sides", "load_jsonl", "run_driver",
           "score", "user_env", "write_sides_result"]

# A user's `codesift` is its console script: it imports codesift.cli as a module, whose bytecode pip
# wrote at install. `python -m codesift.cli` compiles cli.py at every start, and with
# PYTHONDONTWRITEBYTECODE set (as on this machine and the GPU machine) every module edited since its
# bytecode was written is compiled again in every process: costs a user's cold start never pays.
CODESIFT = [sys.executable, "-c", "import sys; sys.argv[0] = 'codesift'; from codesift.cli import main; main()"]

# Driver code (for `python -c`) that replaces the model by a stand-in: deterministic unit vectors from
# the sequences' keys, no weights loaded, so a run's CPU goes to the tokenizer, chunks, terms and writes.
# Defines `files` (the default model's files: tokenizer, dim) and `embedder`, for index_tree(embedder=...).
STAND_IN_MODEL = r"""
import numpy as np
from types import SimpleNamespace
import codesift.embed.scheduler as scheduler
from codesift.embed.model_files import resolve_model


class StandInRunner:
    # unit vectors from the keys: every text gets its own, nothing to compute
    def __init__(self, dim):
        self.dim, self.token_budget, self.max_seqs = dim, 65536, 8192
        self.basis = np.random.default_rng(0).standard_normal((4099, dim)).astype(np.float32)

    def run(self, batches):
        for b in batches:
            v = self.basis[b.keys % len(self.basis)] + (b.keys[:, None] % 7).astype(np.float32)
            yield b.keys, v / np.linalg.norm(v, axis=1, keepdims=True)


files = resolve_model("default")
scheduler.make_runner = lambda backend, *a, **k: StandInRunner(files.dim)
embedder = SimpleNamespace(files=files, backend=SimpleNamespace(is_gpu=False, name="stand-in", dim=files.dim),
                           cut_to_dim=lambda v: v)
"""


def user_env(env: dict | None = None) -> dict:
    """`env` (default: this process's) as a user's shell has it: bytecode written and reused."""
    out = dict(os.environ if env is None else env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def checkout(commit: str, work: Path) -> Path:
    """WORK/code-COMMIT: the codesift package as it was at `commit` (git archive; no worktree)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    out = work / f"code-{sha[:12]}"
    if not (out / "codesift").is_dir():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "codesift"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def checkout_commit(path: Path) -> str | None:
    """The commit a checkout (a git worktree) is at; None for a folder outside git."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or None


def checkout_sides(against: Path | None) -> dict[str, Path]:
    """The checkouts a before/after benchmark runs, by side: this one, and `against` (the base) first if given."""
    return {"this": ROOT} if against is None else {"base": against.resolve(), "this": ROOT}


def write_sides_result(name: str, src: Path, sides: dict[str, Path], rows: list[dict]) -> None:
    """Log a before/after benchmark's rows (benchmarks/results/), with each side's checkout and commit,
    and print the summary line."""
    from _results import write_result

    out = {"src": str(src), "cpus": os.cpu_count(),
           "checkouts": {side: {"path": str(c), "commit": checkout_commit(c)} for side, c in sides.items()},
           "rows": rows}
    write_result(name, out)
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))


def run_driver(argv: list[str], **popen) -> tuple[dict, float]:
    """Run a child (`python -c DRIVER ...`) that prints one `RESULT {json}` line: (that object, wall
    seconds). A child that fails ends the benchmark with the end of its stderr."""
    popen["env"] = user_env(popen.get("env"))
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **popen)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"index failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), wall
