"""Stages depend only downward: print the import graph between codesift's stages and fail on any
import that goes up a tier or sideways within one.

    python -m codesift.devtools.layers [PACKAGE_DIR]

Every module under the package is parsed with `ast` (nothing is imported, so a broken or heavy
module is still checked); every import counts, including ones inside functions or under
`if TYPE_CHECKING:`, relative imports and `importlib.import_module("codesift...")` with a literal
name. Exit status 1 lists `file:line  stage -> stage` for each import that breaks the order.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# The allowed order, lowest tier first: a module may import its own stage and any stage of a lower
# tier, nothing else (so stages of one tier never import one another). Each stage names the
# top-level modules or folders of the package that belong to it; "__init__" is the package's own
# `__init__.py` (what `import codesift` or `from codesift import __version__` loads).
TIERS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"errors": ("errors",), "terms": ("terms",), "version": ("version",), "lazy": ("lazy",)},
    {"walk": ("walk",), "chunk": ("chunk",), "embed": ("embed",)},
    {"index": ("index",)},
    # distributed: the cluster job (walk, chunk and embed on Ray workers, shards, their import into an index)
    {"search": ("search",), "distributed": ("distributed",)},
    {"export": ("export",)},
    {"serve": ("serve",)},
    # cli.py and cli_agents.py are one CLI split over two files (the README's stage table says so).
    {"cli": ("cli", "cli_agents"), "__init__": ("__init__",), "devtools": ("devtools",)},
)

_STAGE_OF_NAME = {name: stage for tier in TIERS for stage, names in tier.items() for name in names}
_TIER_OF_STAGE = {stage: n for n, tier in enumerate(TIERS) for stage in tier}
UNKNOWN = "?"  # the stage of a module that no stage of TIERS claims
BEYOND = "(a relative import above the package)"


@dataclass(frozen=True)
class Import:
    """One import of a module of the package from another of its modules."""

    path: Path  # the importing file, relative to the folder above the package
    line: int
    source: str  # the importing module's stage
    target: str  # the imported module's stage
    module: str  # the imported module, as resolved (e.g. codesift.search.terms)


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    source: str
    target: str
    module: str
    why: str  # "upward", "sideways", or what could not be placed

    def __str__(self) -> str:
        return f"{self.path}:{self.line}  {self.source} -> {self.target}  ({self.module}: {self.why})"


def stage_of(module: str, package: str) -> str:
    """The stage of a dotted module name inside `package` ("codesift.index.store" -> "index")."""
    parts = module.split(".")
    if parts[0] != package:
        raise ValueError(f"{module} is not inside {package}")
    return _STAGE_OF_NAME.get(parts[1] if len(parts) > 1 else "__init__", UNKNOWN)


def _targets(node: ast.AST, module: str, is_package: bool, package: str) -> list[str]:
    """The package's modules an import node loads, as dotted names (others are dropped);
    `BEYOND` for a relative import that climbs out of the package."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            if node.level > len(base):
                return [BEYOND]
            base = base[:len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        # `from codesift import errors` loads codesift.errors, not only codesift/__init__.py; for a
        # deeper origin the names are members or submodules of one stage, the same either way.
        if origin == package:
            names = [f"{origin}.{alias.name}" if alias.name in _STAGE_OF_NAME else origin for alias in node.names]
        else:
            names = [origin]
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if called in ("import_module", "__import__"):
            names = [node.args[0].value]
    return [n for n in dict.fromkeys(names) if n == package or n.startswith(package + ".")]


def _modules(package_dir: Path) -> list[tuple[Path, str, bool]]:
    """(file, dotted name, is a package's __init__) for every module of the package."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found.append((path, ".".join(parts[:-1] if is_package else parts), is_package))
    return found


def scan(package_dir: Path) -> list[Import]:
    """Every import between modules of the package at `package_dir`, in file and line order."""
    package_dir = Path(package_dir).resolve()
    package = package_dir.name
    found: list[Import] = []
    for path, module, is_package in _modules(package_dir):
        source = stage_of(module, package)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _targets(node, module, is_package, package):
                target_stage = UNKNOWN if target == BEYOND else stage_of(target, package)
                found.append(Import(path.relative_to(package_dir.parent), node.lineno, source, target_stage, target))
    return sorted(found, key=lambda i: (str(i.path), i.line, i.module))


def _why(imp: Import) -> str | None:
    if imp.module == BEYOND:
        return "leaves the package"
    if imp.target == UNKNOWN:
        return "the imported module is in no stage of TIERS"
    if imp.source == imp.target:
        return None
    source, target = _TIER_OF_STAGE[imp.source], _TIER_OF_STAGE[imp.target]
    if target > source:
        return "upward"
    if target == source:
        return "sideways"
    return None


def check(package_dir: Path) -> list[Violation]:
    """Every import in the package at `package_dir` that goes upward or sideways, and every module
    that no stage of TIERS claims (empty: all good)."""
    package_dir = Path(package_dir).resolve()
    violations = [Violation(path.relative_to(package_dir.parent), 1, UNKNOWN, UNKNOWN, module,
                            "a module in no stage of TIERS: add its stage to the table")
                  for path, module, _ in _modules(package_dir) if stage_of(module, package_dir.name) == UNKNOWN]
    for imp in scan(package_dir):
        why = None if imp.source == UNKNOWN else _why(imp)  # an unplaced module is reported once, above
        if why:
            violations.append(Violation(imp.path, imp.line, imp.source, imp.target, imp.module, why))
    return violations


def graph(imports: list[Import]) -> Counter[tuple[str, str]]:
    """Number of imports for each (importing stage, imported stage), own stage excluded."""
    return Counter((i.source, i.target) for i in imports if i.source != i.target)


def _order(stage: str) -> tuple[int, str]:
    return _TIER_OF_STAGE.get(stage, len(TIERS)), stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codesift.devtools.layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("package_dir", nargs="?", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the package folder to check (default: this codesift)")
    args = parser.parse_args(argv)
    imports = scan(args.package_dir)
    violations = check(args.package_dir)
    bad = {(v.source, v.target) for v in violations}
    print("tiers, lowest first:")
    for n, tier in enumerate(TIERS):
        print(f"  {n}: {', '.join(tier)}")
    print("imports between stages (importer -> imported: count):")
    for (source, target), count in sorted(graph(imports).items(), key=lambda e: (_order(e[0][0]), _order(e[0][1]))):
        print(f"  {source} -> {target}: {count}{'   NOT ALLOWED' if (source, target) in bad else ''}")
    if violations:
        print(f"{len(violations)} import(s) against the order:")
        for v in violations:
            print(f"  {v}")
        return 1
    print("every import goes downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
