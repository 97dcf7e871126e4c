"""Make a code-search eval set from a Python source tree.

For every function or method whose docstring's first sentence has at least MIN_WORDS words, that
sentence becomes a query and the function its one relevant answer. The copied corpus has those
docstrings removed, so a search engine has to find the code from what it does, not from the words
of its own docstring.

Writes, in OUT (replaced if it exists):
  corpus/         the tree's .py files (outside SKIP_DIRS), target docstrings removed
  queries.jsonl   one line per query: {"id", "query", "path", "start_line", "end_line", "name"};
                  the line span is the function's in the copied file, decorators included

  python -m benchmarks.evalkit.generate SRC OUT [--max-queries N] [--seed S]
"""
from __future__ import annotations

import argparse
import ast
import json
import random
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# A first sentence shorter than this is usually a name restated ("Return the value."): no query.
MIN_WORDS = 6
# A first "sentence" longer than this is a paragraph that never ended with a full stop.
MAX_QUERY_CHARS = 300
# Tests, vendored code and caches are not what a user searches for.
SKIP_DIRS = frozenset({"test", "tests", "site-packages", "__pycache__", "idle_test", "lib2to3"})
DEFAULT_MAX_QUERIES = 1000
DEFAULT_SEED = 13

# Python's own line ends (what ast counts lines by); str.splitlines also splits at \f, \v, \x1c...
# which would shift line numbers in files that hold a form feed.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_SENTENCE = re.compile(r"(.+?[.!?])(\s|$)")


@dataclass(frozen=True)
class Target:
    """One query and the function that answers it, in the copied file."""

    query: str
    path: str
    start_line: int
    end_line: int
    name: str

    def to_dict(self) -> dict:
        return {"query": self.query, "path": self.path, "start_line": self.start_line,
                "end_line": self.end_line, "name": self.name}


def first_sentence(doc: str) -> str:
    """The docstring's first sentence: its first paragraph up to the first . ! or ? that ends a word."""
    paragraph = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
    m = _SENTENCE.match(paragraph)
    return (m.group(1) if m else paragraph).strip()


def split_source_lines(text: str) -> list[str]:
    """The lines of `text` as Python numbers them, each with its line end."""
    return _LINE.findall(text)


def functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every def, methods and nested functions named with dots (Class.method)."""
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                stack.append((child, name + "."))


def _removable_docstring(fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> tuple[int, int] | None:
    """The docstring's line span if cutting those whole lines leaves valid code with a real body."""
    body = fn.body
    # the docstring plus at least two statements: a one-line body is usually a trivial wrapper
    if len(body) < 3 or not isinstance(body[0], ast.Expr):
        return None
    doc = body[0]
    # nothing else may share the docstring's lines (`"""doc"""; x = 1`, or a def on the same line)
    if doc.end_lineno >= body[1].lineno or lines[doc.lineno - 1][: doc.col_offset].strip():
        return None
    return doc.lineno, doc.end_lineno


def strip_docstrings(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(text with the target docstrings cut, [(qualified name, query)]). Raises SyntaxError."""
    tree = ast.parse(text)
    lines = split_source_lines(text)
    seen: set[str] = set()
    cuts: list[tuple[int, int]] = []
    targets: list[tuple[str, str]] = []
    for name, fn in functions(tree):
        if name in seen:  # a redefinition (property setter, platform branch): the first one only
            continue
        seen.add(name)
        doc = ast.get_docstring(fn)
        if not doc:
            continue
        query = first_sentence(doc)
        if len(query.split()) < MIN_WORDS or len(query) > MAX_QUERY_CHARS:
            continue
        span = _removable_docstring(fn, lines)
        if span is None:
            continue
        cuts.append(span)
        targets.append((name, query))
    for start, end in sorted(cuts, reverse=True):
        del lines[start - 1:end]
    return "".join(lines), targets


def function_spans(text: str) -> dict[str, tuple[int, int]]:
    """Qualified name -> (first line including decorators, last line), first definition of each name."""
    spans: dict[str, tuple[int, int]] = {}
    for name, fn in functions(ast.parse(text)):
        start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
        spans.setdefault(name, (start, fn.end_lineno))
    return spans


def source_files(src: Path) -> list[tuple[Path, str]]:
    """(file, path relative to src in POSIX form) of the .py files outside SKIP_DIRS, in path order."""
    out = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if not any(part in SKIP_DIRS for part in rel.parts) and path.is_file():
            out.append((path, rel.as_posix()))
    return out


def generate(src: Path, out: Path, max_queries: int = DEFAULT_MAX_QUERIES, seed: int = DEFAULT_SEED) -> list[dict]:
    """Write OUT/corpus and OUT/queries.jsonl from the tree at `src`; returns the query records.

    Files that do not parse (or decode as UTF-8) are left out of the corpus. Queries that occur
    more than once (case-insensitively) are dropped: their answer is ambiguous. The rest are
    shuffled with `seed` and the first `max_queries` kept, so one tree and seed give one set.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise SystemExit(f"{src} is not a folder; give the root of a Python source tree")
    corpus = out / "corpus"
    if out.exists():
        # replace an earlier eval set, never a folder that may hold anything else
        if any(out.iterdir()) and not (out / "queries.jsonl").exists():
            raise SystemExit(f"{out} exists and is not an eval set; give a new or empty folder")
        shutil.rmtree(out)
    corpus.mkdir(parents=True)
    found: list[Target] = []
    for path, rel in source_files(src):
        try:
            text = path.read_text(encoding="utf-8")
            stripped, targets = strip_docstrings(text)
            spans = function_spans(stripped)
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        dest = corpus / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(stripped, encoding="utf-8")
        for name, query in targets:
            if name in spans:
                found.append(Target(query, rel, *spans[name], name))
    counts = Counter(t.query.lower() for t in found)
    unique = [t for t in found if counts[t.query.lower()] == 1]
    random.Random(seed).shuffle(unique)
    records = [{"id": i, **t.to_dict()} for i, t in enumerate(unique[:max_queries])]
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evalkit.generate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="root of a Python source tree")
    ap.add_argument("out", type=Path, help="folder to write (replaced if it exists)")
    ap.add_argument("--max-queries", type=int, default=DEFAULT_MAX_QUERIES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    records = generate(args.src, args.out, args.max_queries, args.seed)
    n_files = sum(1 for _ in (args.out / "corpus").rglob("*.py"))
    print(f"{len(records)} queries over {n_files} files in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
