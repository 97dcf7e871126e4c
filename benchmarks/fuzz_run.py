#!/usr/bin/env python3
"""One fuzz run of the walk, the gitignore parser, the chunkers and the query side, for the record:
each hypothesis test (tests/walk/test_fuzz.py, tests/fuzz/) run on its own with its case count,
its wall time and whether it passed.

  python benchmarks/fuzz_run.py [--examples N]   (default: each test's fixed, reproducible cases)

The last line printed is one JSON object; the run's log goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = ("tests/walk/test_fuzz.py", "tests/fuzz/test_chunk_and_query_fuzz.py")


def declared_examples(path: Path) -> dict[str, int]:
    """test name -> the case count its @fuzz(N) declares."""
    out, pending = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"@fuzz\((\d+)\)", line.strip())
        if m:
            pending = int(m.group(1))
        m = re.match(r"def (test_\w+)", line.strip())
        if m and pending is not None:
            out[m.group(1)], pending = pending, None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=None, help="random cases per test instead of the fixed ones")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.examples:
        env["CODESIFT_FUZZ_EXAMPLES"] = str(args.examples)
    rows = []
    for rel in FILES:
        for test, declared in declared_examples(ROOT / rel).items():
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   f"{rel}::{test}"], cwd=ROOT, env=env, capture_output=True, text=True)
            rows.append({"test": f"{rel}::{test}", "cases": args.examples or declared,
                         "seconds": round(time.perf_counter() - t0, 1), "passed": proc.returncode == 0,
                         "tail": proc.stdout.strip().splitlines()[-1:] if proc.stdout else []})
            print(f"{rows[-1]['test']}: {rows[-1]['cases']} cases, {rows[-1]['seconds']} s, "
                  f"{'passed' if rows[-1]['passed'] else 'FAILED'}", flush=True)
    out = {"rows": rows, "cases": sum(r["cases"] for r in rows), "failed": sum(not r["passed"] for r in rows),
           "seconds": round(sum(r["seconds"] for r in rows), 1), "random": bool(args.examples)}
    write_result("fuzz_run", out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
