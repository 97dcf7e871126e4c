"""Which paths the walk leaves out: ignore files, their nesting and precedence.

Precedence follows ripgrep. Rules are grouped in layers, highest first:

1. patterns given on the command line (`extra_excludes`), relative to the root;
2. `.codesiftignore` files;
3. `.ignore` files;
4. `.gitignore` files;
5. `.git/info/exclude` of the repository.

The first layer with a matching pattern decides, so a `!pattern` in `.ignore` can re-include
a file that `.gitignore` excludes. Within a layer the deepest ignore file with a match
decides, and within a file the last matching line (git's rule).

Folders that are never source (VCS data, our own index, dependency and cache folders) are
left out by name before any rule is consulted; see `ALWAYS_SKIPPED_NAMES`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from codesift.walk.gitignore import PatternList, path_bytes

# Ignore files read in every folder, highest precedence first (layers 2-4 above).
IGNORE_FILE_NAMES: tuple[str, ...] = (".codesiftignore", ".ignore", ".gitignore")

VCS_DIR_NAMES = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"})
DEFAULT_INDEX_DIR_NAME = ".codesift"
# Never source, even in projects without a .gitignore. (A folder holding pyvenv.cfg is a
# virtualenv whatever its name; the walker checks that separately.)
DEPENDENCY_DIR_NAMES = frozenset({
    "node_modules", "__pycache__", ".venv", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
})
ALWAYS_SKIPPED_NAMES = VCS_DIR_NAMES | DEPENDENCY_DIR_NAMES | {DEFAULT_INDEX_DIR_NAME}

_EXTRA, _GIT_EXCLUDE = 0, len(IGNORE_FILE_NAMES) + 1
_LAYER_COUNT = len(IGNORE_FILE_NAMES) + 2


class RuleFile:
    """The patterns of one ignore file, anchored at the folder that holds it."""

    __slots__ = ("patterns", "_strip", "_prefix")

    def __init__(self, patterns: PatternList, base: str, prefix: str = ""):
        # A path relative to the walk root becomes relative to the ignore file's folder by
        # dropping `base/` (folders below the root) or prepending `prefix` (folders above it).
        self.patterns = patterns
        self._strip = len(path_bytes(base)) + 1 if base else 0
        self._prefix = path_bytes(prefix)

    def match(self, rel: bytes, is_dir: bool) -> bool | None:
        """`rel` is the path relative to the walk root, as bytes (see `path_bytes`)."""
        return self.patterns.match(self._prefix + rel[self._strip:], is_dir)


class IgnoreRules:
    """The ignore files in effect in one folder, by layer. Immutable: cheap to share."""

    __slots__ = ("_layers",)

    def __init__(self, layers: tuple[tuple[RuleFile, ...], ...] = ((),) * _LAYER_COUNT):
        self._layers = layers

    def _with(self, layer: int, rule_file: RuleFile) -> IgnoreRules:
        layers = list(self._layers)
        layers[layer] = layers[layer] + (rule_file,)  # deepest last
        return IgnoreRules(tuple(layers))

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether the path `rel` (relative to the walk root) is excluded by the rules."""
        rel_bytes = path_bytes(rel)  # git matches bytes: "?" is one byte of a UTF-8 name
        for layer in self._layers:
            for rule_file in reversed(layer):
                verdict = rule_file.match(rel_bytes, is_dir)
                if verdict is not None:
                    return verdict
        return False

    def for_folder(self, rel: str, folder: str, names: Iterable[str], prefix: str = "") -> IgnoreRules:
        """The rules inside a folder: these plus the folder's own ignore files among `names`."""
        rules = self
        for name in names:
            if name in IGNORE_FILE_NAMES:
                patterns = _read_patterns(os.path.join(folder, name))
                if patterns:
                    rules = rules._with(IGNORE_FILE_NAMES.index(name) + 1, RuleFile(patterns, rel, prefix))
        return rules

    @classmethod
    def for_root(cls, root: str, extra_excludes: Sequence[str] = ()) -> IgnoreRules:
        """Rules in force at the walk root before its own ignore files are read.

        These are the command-line patterns and, when the root is inside a git repository,
        the repository's `.git/info/exclude` and the ignore files of the folders between the
        repository's top and the root (git applies those to the root too).
        """
        rules = cls()
        extra = PatternList.from_lines(extra_excludes)
        if extra:
            rules = rules._with(_EXTRA, RuleFile(extra, ""))
        top = _repository_top(root)
        if top is None:
            return rules
        exclude = _read_patterns(os.path.join(top, ".git", "info", "exclude"))
        if exclude:
            rules = rules._with(_GIT_EXCLUDE, RuleFile(exclude, "", _relative_prefix(root, top)))
        folder = top
        while folder != root:
            rules = rules.for_folder("", folder, IGNORE_FILE_NAMES, _relative_prefix(root, folder))
            folder = os.path.join(folder, os.path.relpath(root, folder).split(os.sep)[0])
        return rules


def _read_patterns(path: str) -> PatternList | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None  # unreadable or not a file: no rules (the file itself is reported if walked)
    return PatternList.from_file_contents(data)


def _repository_top(root: str) -> str | None:
    """The nearest folder at or above `root` holding `.git`, or None outside any repository."""
    folder = root
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _relative_prefix(root: str, folder: str) -> str:
    """`root` relative to `folder` (which contains it) as a prefix ending in `/`, or ""."""
    rel = os.path.relpath(root, folder)
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"
