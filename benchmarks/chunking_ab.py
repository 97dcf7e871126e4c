#!/usr/bin/env python3
"""A chunker change measured against the chunker before it, in one run on one machine.

Each side is a codesift package: a commit (`git archive`), optionally with a patch applied to
its `codesift/` files (a variant that was tried and not committed; the patch text goes into the
log). Per side, in a process of its own that imports that side's codesift:

- the real packages of benchmarks/real_repos.py (their questions, written before searching),
  each indexed by that side's code (the first side's index is copied in first, so that only the
  chunks whose embedded text changed are embedded again) and scored as real_repos.py scores them:
  hybrid / bm25 / semantic MRR@10 and recall, the rank of every question's first answer, issue
  15's checks (heading-only docs chunks, the largest bundle chunk), and the largest chunk of all;
- optionally (`--stdlib`), the standard library's Python files chunked (no index): chunk counts
  and sizes, and a digest of each file's chunks, so that the log says how many files the change
  touched on code nobody wrote for it.

CPU time (user+sys) of each side's process and the load average around it are recorded: the
machine is shared.

  python benchmarks/chunking_ab.py --side before=0941068 --side after=HEAD \\
      --side fold-only=0941068+/tmp/fold.diff --repos starlette requests immer --stdlib

The last line printed is one JSON object; the log goes through benchmarks/_results.py.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from _kit import ROOT, checkout
from _results import write_result

import real_repos

DEFAULT_WORK = ROOT / ".cache" / "chunking_ab"


def side_code(spec: str, work: Path) -> tuple[str, Path, dict]:
    """(name, folder holding that side's `codesift/`, what it is) for NAME=REV[+PATCH] (a patch of
    files under codesift/ only)."""
    name, _, rev = spec.partition("=")
    rev, _, patch_path = rev.partition("+")
    code = checkout(rev, work)
    sha = code.name[5:]
    about = {"commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True,
                                      check=True).stdout.strip()}
    if patch_path:
        patch = Path(patch_path).read_text(encoding="utf-8")
        digest = hashlib.sha256(patch.encode()).hexdigest()[:8]
        patched = work / f"code-{sha}-{digest}"
        if not (patched / "codesift").is_dir():
            shutil.copytree(code, patched)
            # `patch`, not `git apply`: inside this repository's work tree git would apply the paths to it
            subprocess.run(["patch", "-p1", "--quiet", "--forward", "-d", str(patched)], input=patch.encode(),
                           check=True)
        code = patched
        about.update(patch=patch, patch_sha256_8=digest)
    return name, code, about


def run_side(code: Path, args: list[str]) -> tuple[dict, dict]:
    """(the worker's JSON, its CPU seconds and the load average around it), run with `code` first
    on the path."""
    env = {**os.environ, "PYTHONPATH": str(code), "CODESIFT_DEVICE": "cpu"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", *args], env=env,
                          stdout=subprocess.PIPE, check=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {"cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1),
           "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()]}
    return json.loads(proc.stdout.strip().splitlines()[-1]), cpu


# --- inside a side's process --------------------------------------------------------------
def worker_package(name: str, cache: Path, index_dir: Path) -> dict:
    import codesift
    from codesift.index.store import Store

    out = real_repos.run_package(real_repos.PACKAGES[name], cache, "cpu", "default", index_dir)
    with Store(index_dir, readonly=True) as store:
        chunks = list(store.iter_chunks())
    biggest = max(chunks, key=lambda c: c.token_estimate)
    out["largest_chunk"] = {"path": biggest.path, "lines": [biggest.start_line, biggest.end_line],
                            "kind": biggest.kind, "tokens": biggest.token_estimate}
    out["chunks_over_1000_tokens"] = sum(c.token_estimate > 1000 for c in chunks)
    out["codesift"] = str(Path(codesift.__file__).parent)
    return out


def worker_stdlib() -> dict:
    import codesift
    from codesift.chunk import chunk_file

    root = Path(sysconfig.get_paths()["stdlib"])
    digests, sizes, fallbacks = {}, [], 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(root).as_posix()
        result = chunk_file(rel, text)
        fallbacks += result.fallback is not None
        h = hashlib.sha256()
        for c in result.chunks:
            h.update(f"{c.kind}\x00{c.symbol}\x00{c.start_line}\x00{c.end_line}\x00{c.id}\x00".encode())
            sizes.append(len(c.content))
        digests[rel] = h.hexdigest()[:16]
    sizes.sort()
    return {"files": len(digests), "chunks": len(sizes), "fallbacks": fallbacks,
            "max_chars": sizes[-1], "p999_chars": sizes[int(len(sizes) * 0.999)],
            "over_4000_chars": sum(s > 4000 for s in sizes), "digests": digests,
            "codesift": str(Path(codesift.__file__).parent)}


def worker(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--index-dir", type=Path)
    ap.add_argument("--stdlib", action="store_true")
    a = ap.parse_args(argv)
    out = worker_stdlib() if a.stdlib else worker_package(a.package, a.cache, a.index_dir)
    print(json.dumps(out))


# --- the comparison -----------------------------------------------------------------------
def by_role(questions: list[dict], ranks: list[int | None]) -> dict:
    roles: dict[str, list[int | None]] = {}
    for q, r in zip(questions, ranks):
        roles.setdefault(q["answer_role"], []).append(r)
    return {role: {"n": len(rs), "mrr@10": round(sum(1 / r for r in rs if r) / len(rs), 4)}
            for role, rs in sorted(roles.items())}


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", action="append", required=True, help="NAME=REV or NAME=REV+PATCH; the first is the base")
    ap.add_argument("--repos", nargs="*", default=list(real_repos.PACKAGES), choices=list(real_repos.PACKAGES))
    ap.add_argument("--stdlib", action="store_true", help="also chunk the standard library with each side")
    ap.add_argument("--cache", type=Path, default=real_repos.DEFAULT_CACHE, help="real_repos.py's downloads")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="code copies and each side's indexes")
    args = ap.parse_args()

    sides = [side_code(spec, args.work) for spec in args.side]
    table: dict = {"sides": {name: about for name, _, about in sides}, "packages": {}, "stdlib": {}}
    for pkg_name in args.repos:
        pkg = real_repos.PACKAGES[pkg_name]
        questions = real_repos.load_questions(pkg_name)
        per_side = table["packages"][pkg_name] = {}
        first_index = None
        for name, code, _ in sides:
            index_dir = args.work / "indexes" / code.name[5:] / pkg.tree
            if not index_dir.exists() and first_index is not None:
                shutil.copytree(first_index, index_dir)  # only chunks whose embedded text changed are embedded
            first_index = first_index or index_dir
            out, cpu = run_side(code, ["--package", pkg_name, "--cache", str(args.cache), "--index-dir", str(index_dir)])
            out["cpu"] = cpu
            out["by_answer_role"] = {m: by_role(questions, out[m]["ranks"]) for m in real_repos.MODES}
            per_side[name] = out
            print(f"{pkg.tree:18} {name:12} chunks {out['chunks']:>5}  "
                  + "  ".join(f"{m} {out[m]['mrr@10']:.4f}" for m in real_repos.MODES)
                  + f"  largest chunk {out['largest_chunk']['tokens']} tokens", flush=True)
    if args.stdlib:
        base = None
        for name, code, _ in sides:
            out, cpu = run_side(code, ["--stdlib"])
            digests = out.pop("digests")
            base = base or digests
            out["files_changed_vs_first"] = sorted(p for p, d in digests.items() if base.get(p) != d)
            out["cpu"] = cpu
            table["stdlib"][name] = out
            print(f"stdlib {name:12} chunks {out['chunks']}  max {out['max_chars']} chars  "
                  f"files changed {len(out['files_changed_vs_first'])}", flush=True)
    print(json.dumps(table))
    write_result("chunking_ab", table)


if __name__ == "__main__":
    main()
