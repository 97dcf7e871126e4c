"""Which language a file is written in, judged from its name alone."""
from __future__ import annotations

import posixpath
import re

# Languages with a tree-sitter grammar: chunked by definitions (see code_specs.py).
CODE_LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp"})

_EXTENSIONS = {
    "python": "py pyi pyw",
    "javascript": "js mjs cjs jsx",
    "typescript": "ts mts cts",
    "tsx": "tsx",
    "rust": "rs",
    "go": "go",
    "java": "java",
    "c": "c h",
    "cpp": "cc cpp cxx c++ hpp hh hxx h++ ipp inl tpp",
    "markdown": "md markdown mdx",
    "json": "json",
    "yaml": "yml yaml",
    "toml": "toml",
    "text": "txt text rst adoc asciidoc",
    # Code without a grammar here: chunked into overlapping line windows.
    "shell": "sh bash zsh fish ksh",
    "powershell": "ps1 psm1",
    "batch": "bat cmd",
    "ruby": "rb rake gemspec",
    "php": "php",
    "perl": "pl pm",
    "kotlin": "kt kts",
    "swift": "swift",
    "scala": "scala sc",
    "groovy": "groovy gradle",
    "csharp": "cs",
    "fsharp": "fs fsi fsx",
    "objective-c": "m mm",
    "dart": "dart",
    "lua": "lua",
    "r": "r",
    "julia": "jl",
    "haskell": "hs",
    "ocaml": "ml mli",
    "elixir": "ex exs",
    "erlang": "erl hrl",
    "clojure": "clj cljs cljc edn",
    "zig": "zig",
    "nim": "nim",
    "sql": "sql",
    "html": "html htm xhtml",
    "xml": "xml xsd xsl svg plist",
    "css": "css scss sass less",
    "vue": "vue",
    "svelte": "svelte",
    "graphql": "graphql gql",
    "protobuf": "proto",
    "terraform": "tf tfvars hcl",
    "ini": "ini cfg conf",
    "cmake": "cmake",
    "make": "mk mak",
    "dockerfile": "dockerfile",
}
_BY_EXTENSION = {extension: language for language, extensions in _EXTENSIONS.items()
                 for extension in extensions.split()}

# Whole file names (lower-cased) that say more than their extension.
_BY_NAME = {
    "makefile": "make", "gnumakefile": "make", "cmakelists.txt": "cmake", "dockerfile": "dockerfile",
    "containerfile": "dockerfile", "gemfile": "ruby", "rakefile": "ruby", "vagrantfile": "ruby",
    "jenkinsfile": "groovy", "pipfile": "toml", "cargo.lock": "toml", "poetry.lock": "toml",
    ".bashrc": "shell", ".zshrc": "shell", ".profile": "shell",
}

# Every language name language_for can answer with.
KNOWN_LANGUAGES = frozenset(_BY_EXTENSION.values()) | frozenset(_BY_NAME.values())

# Extensionless files that are prose by convention (README, LICENSE, ...).
_PROSE_STEMS = frozenset({
    "readme", "license", "licence", "copying", "notice", "authors", "contributors", "changelog",
    "changes", "history", "news", "todo", "install", "contributing", "maintainers", "thanks", "patents",
})


def language_for(path: str) -> str | None:
    """The language name for a file path, or None when the name says nothing we recognise."""
    name = posixpath.basename(path.replace("\\", "/")).lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    stem, dot, extension = name.rpartition(".")
    if dot and stem:
        language = _BY_EXTENSION.get(extension)
        if language is not None:
            return language
    # README, LICENSE-MIT, COPYING.LIB, README.en: prose whatever follows the first word.
    first_word = re.split(r"[-_.]", name.lstrip("."), maxsplit=1)[0]
    return "text" if first_word in _PROSE_STEMS else None

