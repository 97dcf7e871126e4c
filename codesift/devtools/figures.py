"""Every measured figure in README.md and benchmarks/RESULTS.md cites the log it was printed in.

    python -m codesift.devtools.figures [--root REPO]

The convention (written out at the top of benchmarks/RESULTS.md):
- A figure is a decimal number (0.4540, 3.45, the 6.61 of 6.61M) or a number with thousands
  separators (22,970), outside code spans and fenced code; version strings (3.11.7) are not figures.
- A line holding a figure carries a link `[log](...)` to a file under benchmarks/results/ on that
  same line, and every figure of the line appears in one of the line's logs as a number written the
  same way (thousands separators aside: 22,970 matches 22970; 0.454 does not match 0.4540).
- A JSON log carries non-empty `date`, `host` and `commit`. Plain-text logs are accepted only from
  benchmarks/results/h100/ (written before logs recorded their commit), and only on a line that
  names the commit (`commit 1a2b3c4`, which must exist in the repository's history when git can
  tell) or says "not re-measured".
- A line with figures and no log fails unless it says "not re-measured". A heading that says it
  covers every line of its section (down to the next heading of the same or a higher level).
Exit status 1 lists `file:line: why` for each failure.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FILES = ("README.md", "benchmarks/RESULTS.md")
RESULTS_DIR = "benchmarks/results"
LEGACY_DIR = "benchmarks/results/h100"  # plain-text logs from before logs recorded date, host and commit
JSON_KEYS = ("date", "host", "commit")
MARKER = "not re-measured"

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_CODE_SPAN = re.compile(r"(`+).*?\1")
# digits, optional groups of three after commas, optional dotted parts; not glued to a word or a dot
# before it (x0.8, fp16, v2.0 are names or settings, not figures)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3}(?!\d))*(?:\.\d+)*")
_LOG_NUMBER = re.compile(r"\d+(?:,\d{3}(?!\d))*(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_COMMIT = re.compile(r"\bcommit\s+([0-9a-f]{7,40})\b")


@dataclass(frozen=True)
class Failure:
    path: str  # relative to the repository root
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}"


def figures(line: str) -> list[str]:
    """The figures of one markdown line, as written (code spans and link targets left out)."""
    text = _LINK.sub(lambda m: f" {m.group(1)} ", _CODE_SPAN.sub(" ", line))
    found = []
    for match in _NUMBER.finditer(text):
        number = match.group()
        dots = number.count(".")
        if dots <= 1 and (dots == 1 or "," in number):
            found.append(number)
    return found


def log_numbers(text: str) -> set[str]:
    """Every number in a log, thousands separators removed (both readings of `1,234` are kept)."""
    numbers = {m.group().replace(",", "") for m in _LOG_NUMBER.finditer(text)}
    return numbers | {m.group() for m in _PLAIN_NUMBER.finditer(text)}


class _Logs:
    """Reads each log once; says what is wrong with it, if anything, and which numbers it holds."""

    def __init__(self, root: Path):
        self.root = root
        self._seen: dict[Path, tuple[str | None, set[str]]] = {}

    def read(self, path: Path) -> tuple[str | None, set[str]]:
        if path not in self._seen:
            self._seen[path] = self._read(path)
        return self._seen[path]

    def _read(self, path: Path) -> tuple[str | None, set[str]]:
        name = path.relative_to(self.root).as_posix()
        if not path.is_file():
            return f"cites {name}, which does not exist", set()
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as e:
                return f"{name} is not valid JSON ({e})", set()
            missing = [k for k in JSON_KEYS if not (isinstance(data, dict) and data.get(k))]
            if missing:
                return f"{name} lacks {', '.join(missing)} (a JSON log carries {', '.join(JSON_KEYS)})", set()
        return None, log_numbers(text)


def _commit_known(root: Path, sha: str) -> bool | None:
    """Whether `sha` is a commit of the repository at `root`; None when git cannot tell (no git, not
    a repository, or a shallow clone that may lack old commits)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    try:
        shallow = git("rev-parse", "--is-shallow-repository")
    except OSError:
        return None
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        return None
    return git("rev-parse", "--quiet", "--verify", f"{sha}^{{commit}}").returncode == 0


def check_file(root: Path, relpath: str, logs: _Logs | None = None) -> list[Failure]:
    """The failures of one markdown file of the repository at `root`."""
    root = Path(root).resolve()
    logs = logs or _Logs(root)
    path = root / relpath
    if not path.is_file():
        return [Failure(relpath, 0, "file not found")]
    results = (root / RESULTS_DIR).resolve()
    legacy = (root / LEGACY_DIR).resolve()
    failures: list[Failure] = []
    in_fence = False
    marked_level: int | None = None  # level of the heading that says "not re-measured", if any is open
    commits: dict[str, bool | None] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = _CODE_SPAN.sub(" ", raw)  # a link, commit or number in a code span is only shown
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            if marked_level is not None and level <= marked_level:
                marked_level = None
            if marked_level is None and MARKER in line.lower():
                marked_level = level
        marked = marked_level is not None or MARKER in line.lower()

        def fail(why: str) -> None:
            failures.append(Failure(relpath, n, why))

        named = _COMMIT.findall(line)
        for sha in named:
            if sha not in commits:
                commits[sha] = _commit_known(root, sha)
            if commits[sha] is False:
                fail(f"commit {sha} is not a commit of this repository")
        cited: list[tuple[str, set[str]]] = []
        for text, target in _LINK.findall(line):
            if text.strip().lower() != "log":
                continue
            log = (path.parent / target).resolve()
            if not log.is_relative_to(results):
                fail(f"[log]({target}) is not under {RESULTS_DIR}/")
                continue
            problem, numbers = logs.read(log)
            if problem:
                fail(problem)
                continue
            if log.suffix != ".json":
                if not log.is_relative_to(legacy):
                    fail(f"[log]({target}) is plain text: logs under {RESULTS_DIR}/ are JSON with "
                         f"{', '.join(JSON_KEYS)} (plain text is accepted only from {LEGACY_DIR}/)")
                    continue
                if not marked and not named:
                    fail(f"[log]({target}) records no commit: name it on this line (`commit 1a2b3c4`) "
                         f"or say \"{MARKER}\"")
            cited.append((target, numbers))
        found = figures(line)
        if not found:
            continue
        if not cited:
            if not marked and not any(t.strip().lower() == "log" for t, _ in _LINK.findall(line)):
                fail(f"{', '.join(found)} cite no log: link one on this line, [log](path to a file under "
                     f"{RESULTS_DIR}/), or say \"{MARKER}\"")
            continue
        missing = [f for f in found if not any(f.replace(",", "") in numbers for _, numbers in cited)]
        if missing:
            fail(f"{', '.join(missing)} not in the cited log{'s' if len(cited) > 1 else ''} "
                 f"({', '.join(t for t, _ in cited)})")
    return failures


def check(root: Path, files: tuple[str, ...] = FILES) -> list[Failure]:
    """Every failure of the figure convention in `files` of the repository at `root` (empty: all cited)."""
    root = Path(root).resolve()
    logs = _Logs(root)
    return [failure for relpath in files for failure in check_file(root, relpath, logs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codesift.devtools.figures",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    failures = check(args.root)
    for failure in failures:
        print(failure)
    if failures:
        print(f"{len(failures)} figure line(s) without a log that holds them; the convention is at the top "
              f"of {FILES[1]}")
        return 1
    print(f"every figure in {' and '.join(FILES)} cites a log that holds it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
