"""What a file is for, from its path: source, or one of the kinds of files that crowd source out of
search results (build output and bundles, lock files, dependency manifests, changelogs) or answer
other questions than source does (tests, docs).

Search uses the role as a ranking prior (search.searcher.SearchConfig.role_weights) and leaves
lock files and bundles out unless asked (`--include-generated`). Detection is by path alone, so
it is cheap, the same on every machine, and needs no reading.
"""
from __future__ import annotations

import re

SOURCE = "source"
ROLES = (SOURCE, "test", "docs", "changelog", "manifest", "lock", "bundle", "generated")
# Left out of search results unless asked for: nobody searches a lock file or a bundle for an answer.
SKIPPED_BY_DEFAULT = ("lock", "bundle")

LOCK_NAMES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock",
    "poetry.lock", "pipfile.lock", "pdm.lock", "uv.lock", "cargo.lock", "go.sum", "go.work.sum",
    "composer.lock", "gemfile.lock", "podfile.lock", "mix.lock", "flake.lock", "pubspec.lock",
    "packages.lock.json", "gradle.lockfile", "deno.lock", "conda-lock.yml", "paket.lock",
})
MANIFEST_NAMES = frozenset({
    "package.json", "pyproject.toml", "setup.cfg", "setup.py", "pipfile", "cargo.toml", "go.mod", "go.work",
    "pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "gemfile", "composer.json",
    "pubspec.yaml", "mix.exs", "project.clj", "deno.json", "environment.yml", "meta.yaml",
})
_REQUIREMENTS = re.compile(r"requirements([-_.][\w.-]*)?\.(txt|in)$")
# Folders of build output, bundles and vendored copies of other projects.
GENERATED_DIRS = frozenset({"dist", "build", "_build", "target", "out-tsc", "vendor", "vendored", "_vendor",
                            "third_party", "third-party", "thirdparty", "node_modules", "bower_components",
                            "generated", "__generated__", "_generated", "site-packages"})
_BUNDLE_NAME = re.compile(r"\.(min|bundle|chunk|prod|production|umd)\.(m?js|cjs|css)$|\.(js|mjs|cjs|css)\.map$|\.map$")
_WEB_OUTPUT = re.compile(r"\.(m?js|cjs|css)$")
_GENERATED_NAME = re.compile(r"(_pb2(_grpc)?\.pyi?|\.pb\.go|\.pb\.(cc|h)|\.g\.dart|\.generated\.\w+|_generated\.\w+)$")
_CHANGELOG = re.compile(r"(changelog|changes|history|news|release[-_ ]?notes|releases)(\.(md|rst|txt|adoc|markdown))?$")
CHANGELOG_DIRS = frozenset({"changelog.d", "changes.d", "newsfragments", "changelog", "release-notes", "release_notes"})
TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "__test__", "spec", "specs", "e2e", "testdata"})
_TEST_NAME = re.compile(r"(^test_.*\.py$|^.*_test\.(py|go|rs|rb|exs?|cc|cpp|c)$|^conftest\.py$|"
                        r"\.(test|spec)\.(m?[jt]sx?|cjs)$)")
_TEST_CLASS_FILE = re.compile(r"[a-z0-9](Test|Tests|Spec|IT)\.(java|kt|scala|cs|swift|php)$")  # FooTest.java, not Latest.java
DOCS_DIRS = frozenset({"doc", "docs", "documentation", "man", "examples_docs"})
DOCS_SUFFIXES = (".md", ".markdown", ".rst", ".adoc", ".asciidoc", ".txt", ".tex")


def file_role(rel: str) -> str:
    """The role of the file at `rel` (relative to the indexed root, "/" separators): one of ROLES."""
    parts = rel.lower().split("/")
    name, folders = parts[-1], parts[:-1]
    if name in LOCK_NAMES or name.endswith(".lockfile"):
        return "lock"
    generated_dir = any(f in GENERATED_DIRS for f in folders)
    if _BUNDLE_NAME.search(name) or (generated_dir and _WEB_OUTPUT.search(name)):
        return "bundle"
    if generated_dir or _GENERATED_NAME.search(name):
        return "generated"
    if _CHANGELOG.fullmatch(name) or any(f in CHANGELOG_DIRS for f in folders):
        return "changelog"
    if name in MANIFEST_NAMES or _REQUIREMENTS.match(name):
        return "manifest"
    if _TEST_NAME.search(name) or _TEST_CLASS_FILE.search(rel) or any(f in TEST_DIRS for f in folders):
        return "test"
    if (name.endswith(DOCS_SUFFIXES) and name != "cmakelists.txt") or any(f in DOCS_DIRS for f in folders):
        return "docs"
    return SOURCE
