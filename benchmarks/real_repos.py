#!/usr/bin/env python3
"""Search quality on three real packages nobody here wrote, with questions written before searching.

requests 2.32.3 (PyPI sdist), immer 10.1.1 (npm tarball) and starlette 0.41.3 (PyPI sdist: its
docs/ in markdown; httpx's sdist ships no docs). Each package is fetched with its registry's own
client (pip download, npm pack; the npm registry's tarball address where npm is missing), checked
against its sha256, unpacked and indexed under a cache folder (git-ignored `.cache/real_repos/`):
a second run downloads nothing and only brings the index up to date.

Per package: hybrid / bm25 / semantic MRR@10, recall@1 and recall@10 over the questions in
benchmarks/real_repos/NAME.jsonl (answers scored with the eval kit's rule; any listed target
counts), the rank of each question's first answer, and issue 15's numbered defects re-checked on
the real tree (`checks`): k results, nested TypeScript definitions, build output and bundles,
manifests and changelogs crowding source, heading-only docs chunks.

  python benchmarks/real_repos.py [--repos requests immer starlette] [--device cpu]

The last line printed is one JSON object; the log goes through benchmarks/_results.py.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from _kit import ROOT
from _results import write_result

from benchmarks.evalkit.score import is_hit

QUESTIONS = Path(__file__).resolve().parent / "real_repos"
DEFAULT_CACHE = ROOT / ".cache" / "real_repos"
K = 10
MODES = ("hybrid", "bm25", "semantic")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    registry: str  # "pypi" or "npm"
    sha256: str

    @property
    def archive(self) -> str:
        return f"{self.name}-{self.version}.{'tgz' if self.registry == 'npm' else 'tar.gz'}"

    @property
    def tree(self) -> str:
        return f"{self.name}-{self.version}"


PACKAGES = {p.name: p for p in (
    Package("requests", "2.32.3", "pypi", "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760"),
    Package("immer", "10.1.1", "npm", "946cc79684ad1e080b09d4f2da14247b272aa667f3aaa100f35846148689f08f"),
    Package("starlette", "0.41.3", "pypi", "0e4ab3d16522a255be6b28260b938eae2482f98ce5cc934cb08dce8dc3ba5835"),
)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(pkg: Package, cache: Path) -> Path:
    """The package's archive in `cache`, downloaded only when it is not there with the right hash."""
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / pkg.archive
    if archive.is_file() and sha256(archive) == pkg.sha256:
        return archive
    if pkg.registry == "pypi":
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                        "-d", str(cache), f"{pkg.name}=={pkg.version}"], check=True)
    elif shutil.which("npm"):
        subprocess.run(["npm", "pack", "-q", f"{pkg.name}@{pkg.version}", "--pack-destination", str(cache)],
                       check=True, stdout=subprocess.DEVNULL)
    else:
        url = f"https://registry.npmjs.org/{pkg.name}/-/{pkg.archive}"
        with urllib.request.urlopen(url, timeout=60) as r:
            archive.write_bytes(r.read())
    got = sha256(archive)
    if got != pkg.sha256:
        raise SystemExit(f"{archive}: sha256 {got}, expected {pkg.sha256}")
    return archive


def unpack(pkg: Package, cache: Path) -> Path:
    """The package's files under cache/trees/NAME-VERSION (its archive's top folder stripped)."""
    root = cache / "trees" / pkg.tree
    if (root / ".unpacked").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(fetch(pkg, cache)) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts[1:]
            if not parts or not (member.isfile() or member.isdir()):
                continue
            member.name = str(Path(*parts))
            tar.extract(member, root, filter="data")
    (root / ".unpacked").write_text(pkg.sha256)
    return root


def prepare(pkg: Package, cache: Path, device: str = "auto", model: str = "default",
            index_dir: Path | None = None) -> tuple[Path, Path]:
    """(tree, index folder): fetched, unpacked and indexed (an existing index is brought up to date);
    the index goes to cache/indexes/NAME-VERSION unless `index_dir` says where."""
    from codesift.index.indexer import index_tree

    root = unpack(pkg, cache)
    index_dir = index_dir or cache / "indexes" / pkg.tree
    summary = index_tree(root, index_dir, device=device, model=model)
    print(f"{pkg.tree}: {summary.line()}", file=sys.stderr, flush=True)
    return root, index_dir


def load_questions(name: str) -> list[dict]:
    with open(QUESTIONS / f"{name}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def first_answer(results: Sequence[dict], targets: Sequence[dict], k: int = K) -> int | None:
    """1-based rank of the first result (dicts with path, start_line, end_line) that answers any target."""
    return next((rank for rank, r in enumerate(results[:k], 1) if any(is_hit(r, t) for t in targets)), None)


def scores(questions: Sequence[dict], ranked: Sequence[Sequence[dict]], k: int = K) -> dict:
    ranks = [first_answer(r, q["targets"], k) for q, r in zip(questions, ranked)]
    n = len(questions)
    return {"mrr@10": round(sum(1 / r for r in ranks if r) / n, 4),
            "recall@1": round(sum(r == 1 for r in ranks) / n, 4),
            "recall@10": round(sum(r is not None for r in ranks) / n, 4), "ranks": ranks}


def as_dict(result) -> dict:
    c = result.chunk
    return {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "symbol": c.symbol,
            "role": c.role, "tokens": c.token_estimate}


# --- issue 15's defects, on the real trees ------------------------------------------------
def check_k(searcher, questions: Sequence[dict]) -> dict:
    """#1: a search returns k results when the index holds more than k candidates."""
    short = [q["query"] for q in questions if len(searcher.search(q["query"], k=K)) < K]
    return {"questions": len(questions), "fewer_than_k": len(short), "short_queries": short}


def check_nested(store) -> dict:
    """#2: definitions nested in a TypeScript function are symbols of their own."""
    from codesift.search import navigate

    names = ("generatePatches_", "applyPatches_", "DraftMap", "DraftSet", "objectTraps")
    found = {n: [f"{c.path}:{c.start_line}" for c in navigate.lookup(store, n)] for n in names}
    mapset = list(store.iter_chunks("src/plugins/mapset.ts"))
    labels = [c.symbol for c in mapset]
    return {"lookup": found, "not_found": [n for n, hits in found.items() if not hits],
            "mapset_chunks": len(mapset), "mapset_labelled_enableMapSet_only": labels.count("enableMapSet"),
            "mapset_distinct_symbols": len(set(labels))}


def check_build_output(searcher, store, questions: Sequence[dict]) -> dict:
    """#3: dist/ bundles do not outrank src/; minified bundles are not one huge chunk; manifests do not crowd."""
    dist_default = dist_above_src = questions_with_dist_above = 0
    for q in questions:
        dist_default += sum(r.chunk.path.startswith("dist/") for r in searcher.search(q["query"], k=K))
        both = searcher.search(q["query"], k=K, include_generated=True)
        first_src = next((i for i, r in enumerate(both) if r.chunk.path.startswith("src/")), len(both))
        above = sum(r.chunk.path.startswith("dist/") for r in both[:first_src])
        dist_above_src += above
        questions_with_dist_above += above > 0
    dist_chunks = [c for c in store.iter_chunks() if c.path.startswith("dist/")]
    biggest = max(dist_chunks, key=lambda c: c.token_estimate, default=None)
    json_query = next(q["query"] for q in questions if "JSON" in q["query"])
    manifests = [r.chunk.path for r in searcher.search(json_query, k=K) if r.chunk.role == "manifest"]
    return {"dist_results_default": dist_default,
            "with_include_generated": {"dist_results_above_first_src": dist_above_src,
                                       "questions_with_dist_above_src": questions_with_dist_above},
            "dist_roles": sorted({c.role for c in dist_chunks}),
            "largest_dist_chunk": biggest and {"path": biggest.path, "tokens": biggest.token_estimate,
                                               "lines": biggest.end_line - biggest.start_line + 1},
            "json_query": json_query, "manifest_results_for_json_query": len(manifests)}


def check_crowding(searcher, questions: Sequence[dict], probe: str | None = None) -> dict:
    """#3/#4 of the roles: changelogs, manifests and lock files in the results of questions about code."""
    roles: dict[str, int] = {}
    code = [q for q in questions if q["answer_role"] == "code"]
    for q in code:
        for r in searcher.search(q["query"], k=K):
            roles[r.chunk.role] = roles.get(r.chunk.role, 0) + 1
    out = {"code_questions": len(code), "result_roles": dict(sorted(roles.items()))}
    if probe:
        ranked = searcher.search(probe, k=K)
        out["probe"] = probe
        out["probe_changelog_rank"] = next((i for i, r in enumerate(ranked, 1) if r.chunk.role == "changelog"), None)
        out["probe_top"] = as_dict(ranked[0]) if ranked else None
    return out


def check_docs_chunks(store) -> dict:
    """#3: heading-only markdown chunks (10 tokens or fewer) that crowd docs results."""
    docs = [c for c in store.iter_chunks() if c.language == "markdown"]
    return {"markdown_chunks": len(docs), "at_most_10_tokens": sum(c.token_estimate <= 10 for c in docs)}


def run_package(pkg: Package, cache: Path, device: str, model: str, index_dir: Path | None = None) -> dict:
    from codesift.index.store import Store
    from codesift.search.searcher import Searcher

    root, index_dir = prepare(pkg, cache, device, model, index_dir)
    questions = load_questions(pkg.name)
    searcher = Searcher(index_dir)
    store = Store(index_dir, readonly=True)
    try:
        qvecs = searcher.encode_queries([q["query"] for q in questions])
        by_mode = {}
        for mode in MODES:
            ranked = [[as_dict(r) for r in searcher.search(q["query"], mode, K, qvec=v)]
                      for q, v in zip(questions, qvecs)]
            by_mode[mode] = scores(questions, ranked)
        counts = store.counts()
        checks = {"k_results": check_k(searcher, questions)}
        if pkg.name == "immer":
            checks["nested_definitions"] = check_nested(store)
            checks["build_output"] = check_build_output(searcher, store, questions)
        checks["crowding"] = check_crowding(searcher, questions,
                                            "where are redirects handled" if pkg.name == "requests" else None)
        checks["docs_chunks"] = check_docs_chunks(store)
    finally:
        searcher.close()
        store.close()
    by_role: dict[str, list[int | None]] = {}
    for q, rank in zip(questions, by_mode["hybrid"]["ranks"]):
        by_role.setdefault(q["answer_role"], []).append(rank)
    return {"package": pkg.tree, "registry": pkg.registry, "sha256": pkg.sha256, **counts,
            "questions": len(questions), **{m: s for m, s in by_mode.items()},
            "hybrid_mrr_by_answer_role": {role: round(sum(1 / r for r in ranks if r) / len(ranks), 4)
                                          for role, ranks in sorted(by_role.items())},
            "checks": checks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repos", nargs="+", default=list(PACKAGES), choices=list(PACKAGES))
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="downloads, trees and indexes")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    table = {}
    for name in args.repos:
        out = table[name] = run_package(PACKAGES[name], args.cache, args.device, args.model)
        print(f"{out['package']:18} files {out['files']:>4} chunks {out['chunks']:>5}  "
              + "  ".join(f"{m} {out[m]['mrr@10']:.4f}" for m in MODES)
              + f"  (recall@10 {out['hybrid']['recall@10']:.4f}, {out['questions']} questions)", flush=True)
    print(json.dumps(table))
    write_result("real_repos", table)


if __name__ == "__main__":
    main()
