"""Imports, read from the nodes each language's query captured as @import (and @call, for
`require(...)`): one `Import` per imported name."""
from __future__ import annotations

import re
from typing import Callable, Iterator, Mapping, Sequence

from tree_sitter import Node

from codesift.chunk.model import Import

Captures = Mapping[str, Sequence[Node]]
LineOf = Callable[[int], int]  # byte offset -> 1-based line
ImportExtractor = Callable[[Captures, LineOf], Iterator[Import]]


def _text(node: Node | None) -> str | None:
    return None if node is None else node.text.decode("utf-8", "replace")


def _string_literal_value(literal: str) -> str:
    return literal.strip().strip("\"'`<>")


def python(captures: Captures, line_of: LineOf) -> Iterator[Import]:
    for node in captures.get("import", ()):
        line = line_of(node.start_byte)
        if node.type == "import_statement":  # import a.b as c, d
            for name in node.children_by_field_name("name"):
                module, alias = _aliased(name)
                yield Import(module, None, alias, line)
            continue
        if node.type == "future_import_statement":
            module = "__future__"
        else:  # from x import y as z
            module = _text(node.child_by_field_name("module_name")) or ""
        if any(child.type == "wildcard_import" for child in node.named_children):
            yield Import(module, "*", None, line)
        for name in node.children_by_field_name("name"):
            imported, alias = _aliased(name)
            yield Import(module, imported, alias, line)


def _aliased(node: Node) -> tuple[str, str | None]:
    if node.type == "aliased_import":
        return _text(node.child_by_field_name("name")) or "", _text(node.child_by_field_name("alias"))
    return _text(node) or "", None


_IMPORT_CLAUSES = ("import_clause", "import_require_clause")  # import x from "m" / import x = require("m")


def javascript(captures: Captures, line_of: LineOf) -> Iterator[Import]:
    """ES `import ... from "mod"` (names, default as "default", namespace as "*") and `require("mod")`."""
    for node in captures.get("import", ()):
        source = node.child_by_field_name("source")
        line = line_of(node.start_byte)
        clause = next((c for c in node.named_children if c.type in _IMPORT_CLAUSES), None)
        if source is None and clause is not None and clause.type == "import_require_clause":
            source = clause.child_by_field_name("source")
        if source is None:
            continue
        module = _string_literal_value(_text(source) or "")
        if clause is None:  # import "side-effect"
            yield Import(module, None, None, line)
            continue
        for part in clause.named_children:
            if part.type == "identifier":  # import React from / import x = require()
                yield Import(module, "default" if clause.type == "import_clause" else None, _text(part), line)
            elif part.type == "namespace_import":  # * as ns
                yield Import(module, "*", _text(part.named_children[-1]) if part.named_children else None, line)
            elif part.type == "named_imports":  # { a as b, c }
                for spec in part.named_children:
                    if spec.type == "import_specifier":
                        yield Import(module, _text(spec.child_by_field_name("name")),
                                     _text(spec.child_by_field_name("alias")), line)
    for name in captures.get("call", ()):
        if name.text != b"require" or name.parent is None:
            continue
        arguments = name.parent.child_by_field_name("arguments")
        first = arguments.named_children[0] if arguments is not None and arguments.named_children else None
        if first is not None and first.type == "string":
            declarator = name.parent.parent  # const fs = require("fs")
            alias = declarator.child_by_field_name("name") if declarator is not None \
                and declarator.type == "variable_declarator" else None
            yield Import(_string_literal_value(_text(first) or ""), None, _text(alias) if alias is not None \
                         and alias.type == "identifier" else None, line_of(name.start_byte))


def rust(captures: Captures, line_of: LineOf) -> Iterator[Import]:
    """`use a::b::C;` is module "a::b", name "C"; lists and `as` aliases are followed."""
    for node in captures.get("import", ()):
        argument = node.child_by_field_name("argument")
        if argument is not None:
            yield from _rust_use(argument, "", line_of(node.start_byte))


def _rust_use(node: Node, prefix: str, line: int) -> Iterator[Import]:
    def join(path: str | None) -> str:
        return f"{prefix}::{path}" if prefix and path else (prefix or path or "")

    kind = node.type
    if kind == "scoped_identifier":
        path, name = node.child_by_field_name("path"), node.child_by_field_name("name")
        yield Import(join(_text(path)), _text(name), None, line)
    elif kind == "use_as_clause":
        path, alias = node.child_by_field_name("path"), _text(node.child_by_field_name("alias"))
        if path is not None and path.type == "scoped_identifier":
            yield Import(join(_text(path.child_by_field_name("path"))), _text(path.child_by_field_name("name")),
                         alias, line)
        elif path is not None:
            yield Import(prefix, _text(path), alias, line) if prefix else \
                Import(_text(path) or "", None, alias, line)
    elif kind == "use_wildcard":
        path = node.named_children[0] if node.named_children else None
        yield Import(join(_text(path)), "*", None, line)
    elif kind == "scoped_use_list":
        inner = join(_text(node.child_by_field_name("path")))
        items = node.child_by_field_name("list")
        for item in items.named_children if items is not None else ():
            yield from _rust_use(item, inner, line)
    elif kind == "use_list":
        for item in node.named_children:
            yield from _rust_use(item, prefix, line)
    elif prefix:  # an identifier, `self`, `crate`... inside a list
        yield Import(prefix, _text(node), None, line)
    else:  # use foo;
        yield Import(_text(node) or "", None, None, line)


def go(captures: Captures, line_of: LineOf) -> Iterator[Import]:
    """Go import specs: the path, and the local name (`f "fmt"`, `. "x"`, `_ "y"`) as alias."""
    for spec in captures.get("import", ()):
        path = spec.child_by_field_name("path")
        if path is not None:
            yield Import(_string_literal_value(_text(path) or ""), None, _text(spec.child_by_field_name("name")),
                         line_of(spec.start_byte))


_JAVA_IMPORT = re.compile(r"import\s+(?:static\s+)?([\w$.\s]+?(?:\.\s*\*)?)\s*;")


def java(captures: Captures, line_of: LineOf) -> Iterator[Import]:
    """`import a.b.C;` is module "a.b", name "C"; `import a.b.*;` is name "*"."""
    for node in captures.get("import", ()):
        match = _JAVA_IMPORT.match(_text(node) or "")
        if match:
            module, _, name = "".join(match.group(1).split()).rpartition(".")
            yield Import(module, name, None, line_of(node.start_byte)) if module else \
                Import(name, None, None, line_of(node.start_byte))


def c(captures: Captures, line_of: LineOf) -> Iterator[Import]:
    """`#include <stdio.h>` / `#include "foo.h"`: the header is the module."""
    for node in captures.get("import", ()):
        path = node.child_by_field_name("path")
        if path is not None:
            yield Import(_string_literal_value(_text(path) or ""), None, None, line_of(node.start_byte))
