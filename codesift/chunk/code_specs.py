"""What a definition looks like in each language's tree-sitter grammar.

A spec maps node types to a rule: a resolver that reads a node as a `Definition` (or declines
it: then it is ordinary code), `Walk.DESCEND` for nodes whose children are looked at as if they
stood in the node's place (namespaces' bodies, `#ifdef` blocks, `if TYPE_CHECKING:`), or
`Walk.UNWRAP` for nodes that wrap one definition and lend it their lines (decorators,
`export`, `template <...>`). Node types without a rule are ordinary code and never entered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable, Mapping, Union

from tree_sitter import Node

from codesift.chunk import code_imports
from codesift.chunk.code_imports import ImportExtractor


class Role(Enum):
    FUNCTION = "function"  # its own chunk; anything nested in it stays inside
    CLASS = "class"  # its own chunk for the lines its member definitions leave over
    SCOPE = "scope"  # namespace / mod: qualifies its members' names; its own lines are module code


class Walk(Enum):
    DESCEND = "descend"
    UNWRAP = "unwrap"


@dataclass(frozen=True)
class Definition:
    role: Role
    name: str  # may be qualified already ("Foo.bar" for Go receivers, C++ `Foo::bar`); "" anonymous
    node: Node  # the definition proper: its header line starts here
    body: Node | None  # where members are looked for and where long definitions are cut


Resolver = Callable[[Node], "Definition | None"]
Rule = Union[Resolver, Walk]


@dataclass(frozen=True)
class CodeSpec:
    grammar: tuple[str, str]  # (module, function) that gives the tree-sitter language
    rules: Mapping[str, Rule]
    leading: frozenset[str]  # comments/attributes directly above a definition belong to it
    query: str  # captures @call (the called name) and @import (import statements)
    imports: ImportExtractor
    frame: re.Pattern  # a line that is only structure: `}`, `#endif`, `else:`
    opener: re.Pattern  # a frame line that opens what follows (`#ifdef X`, `else:`, `public:`)
    indent_scoped: bool = False  # blocks end where indentation does (Python)


# -- resolvers -----------------------------------------------------------------------------------

def text(node: Node) -> str:
    return node.text.decode("utf-8", "replace")


def named(role: Role, name: str = "name", body: str = "body", needs_body: bool = False) -> Resolver:
    """The common case: the name and body are fields of the node."""

    def resolve(node: Node) -> Definition | None:
        name_node, body_node = node.child_by_field_name(name), node.child_by_field_name(body)
        if name_node is None or (needs_body and body_node is None):
            return None
        return Definition(role, qualified(text(name_node)), node, body_node)

    return resolve


def anonymous_ok(role: Role) -> Resolver:
    """Like `named`, but a missing name (anonymous namespace) qualifies nothing."""

    def resolve(node: Node) -> Definition | None:
        name_node = node.child_by_field_name("name")
        name = qualified(text(name_node).strip("\"'")) if name_node is not None else ""
        return Definition(role, name, node, node.child_by_field_name("body"))

    return resolve


_TEMPLATE_ARGUMENTS = re.compile(r"<[^<>]*>")


def qualified(name: str) -> str:
    """`ns::Foo<T>::bar` -> `ns.Foo.bar`."""
    name = "".join(name.split())
    while "<" in name and _TEMPLATE_ARGUMENTS.search(name):
        name = _TEMPLATE_ARGUMENTS.sub("", name)
    return name.replace("::", ".").strip(".")


def c_function(node: Node) -> Definition | None:
    """C/C++ functions: the name sits at the bottom of a chain of (pointer, reference) declarators."""
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    name = declarator.child_by_field_name("declarator") if declarator is not None else None
    if name is None:
        return None
    return Definition(Role.FUNCTION, qualified(text(name)), node, node.child_by_field_name("body"))


_C_TYPE_SPECIFIERS = frozenset({"struct_specifier", "union_specifier", "enum_specifier", "class_specifier"})


def c_typedef(node: Node) -> Definition | None:
    """`typedef struct {...} name;` is a type definition; other typedefs are ordinary code."""
    specifier = node.child_by_field_name("type")
    if specifier is None or specifier.type not in _C_TYPE_SPECIFIERS:
        return None
    body = specifier.child_by_field_name("body")
    name = node.child_by_field_name("declarator") or specifier.child_by_field_name("name")
    if body is None or name is None:
        return None
    return Definition(Role.CLASS, qualified(text(name)), node, body)


def rust_impl(node: Node) -> Definition | None:
    """`impl<T> Trait for Foo<T>`: the methods belong to Foo."""
    implemented = node.child_by_field_name("type")
    while implemented is not None and implemented.type in ("generic_type", "reference_type", "pointer_type"):
        implemented = implemented.child_by_field_name("type")  # Foo<T>, &'a Foo, *const Foo -> Foo
    if implemented is not None and implemented.type == "scoped_type_identifier":
        implemented = implemented.child_by_field_name("name")  # crate::shapes::Foo -> Foo
    if implemented is None:
        return None
    return Definition(Role.CLASS, qualified(text(implemented)), node, node.child_by_field_name("body"))


def go_method(node: Node) -> Definition | None:
    """`func (s *Server) Start()` is `Server.Start`."""
    name, receiver = node.child_by_field_name("name"), node.child_by_field_name("receiver")
    if name is None:
        return None
    receiver_type = _first_of_type(receiver, "type_identifier") if receiver is not None else None
    full_name = f"{text(receiver_type)}.{text(name)}" if receiver_type is not None else text(name)
    return Definition(Role.FUNCTION, full_name, node, node.child_by_field_name("body"))


def go_type(node: Node) -> Definition | None:
    """`type Foo struct {...}`, or a `type (...)` group named after its first type."""
    for spec in node.named_children:
        name = spec.child_by_field_name("name")
        if name is not None:
            return Definition(Role.CLASS, text(name), node, None)
    return None


def _first_of_type(node: Node, node_type: str, depth: int = 4) -> Node | None:
    for child in node.named_children:
        if child.type == node_type:
            return child
        if depth and (found := _first_of_type(child, node_type, depth - 1)) is not None:
            return found
    return None


_JS_FUNCTIONS = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_JS_CLASSES = frozenset({"class"})


def js_variable(node: Node) -> Definition | None:
    """`const f = (x) => ...`, `let g = function () {}`, `const C = class {}`, `const o = { m() {} }`:
    one declarator only."""
    declarators = [c for c in node.named_children if c.type == "variable_declarator"]
    if len(declarators) != 1:
        return None
    name, value = declarators[0].child_by_field_name("name"), declarators[0].child_by_field_name("value")
    if name is None or value is None or name.type != "identifier":
        return None
    if value.type in _JS_FUNCTIONS:
        return Definition(Role.FUNCTION, text(name), node, value.child_by_field_name("body"))
    if value.type in _JS_CLASSES:
        return Definition(Role.CLASS, text(name), node, value.child_by_field_name("body"))
    if value.type == "object" and any(c.type == "method_definition" for c in value.named_children):
        # `const objectTraps = { get(state, prop) {...}, set(...) {...} }`: an object of methods
        # reads as a class does (a name to look up, its methods inside)
        return Definition(Role.CLASS, text(name), node, value)
    return None


def js_field(node: Node) -> Definition | None:
    """A class field holding a function (`handle = () => {...}`) is a method."""
    name = node.child_by_field_name("name") or node.child_by_field_name("property")
    value = node.child_by_field_name("value")
    if name is None or value is None or value.type not in _JS_FUNCTIONS:
        return None
    return Definition(Role.FUNCTION, text(name), node, value.child_by_field_name("body"))


def js_statement(node: Node) -> Definition | None:
    """`Foo.prototype.bar = function () {}` is `Foo.bar`; in TypeScript `namespace N {}` hides
    in an expression statement too."""
    inner = node.named_children[0] if node.named_child_count else None
    if inner is None:
        return None
    if inner.type == "internal_module":
        return anonymous_ok(Role.SCOPE)(inner)
    if inner.type != "assignment_expression":
        return None
    left, right = inner.child_by_field_name("left"), inner.child_by_field_name("right")
    if left is None or right is None or right.type not in _JS_FUNCTIONS \
            or left.type not in ("identifier", "member_expression"):
        return None
    name = "".join(text(left).split()).replace(".prototype.", ".")
    return Definition(Role.FUNCTION, name, node, right.child_by_field_name("body"))


# -- frames --------------------------------------------------------------------------------------

_TRAILING_C_COMMENT = r"\s*(?://.*|/\*.*)?$"
_C_CONDITIONAL = r"#\s*(?:if|ifdef|ifndef|elif|elifdef|elifndef|else)\b"
_ACCESS = r"(?:public|private|protected)\s*:"  # C++
BRACE_FRAME = re.compile(r"^\s*(?:[})\]][})\];,()]*|#\s*endif\b.*|" + _C_CONDITIONAL + r".*|}?\s*else\s*\{|"
                         + _ACCESS + ")" + _TRAILING_C_COMMENT)
BRACE_OPENER = re.compile(r"\{" + _TRAILING_C_COMMENT + r"|^\s*(?:" + _C_CONDITIONAL + "|" + _ACCESS + ")")
PYTHON_FRAME = re.compile(r"^\s*(?:(?:if|elif|else|try|except|finally|with|async\s+with)\b.*:|[)\]}]+)"
                          r"\s*(?:#.*)?$")
PYTHON_OPENER = re.compile(r":\s*(?:#.*)?$")


# -- the table -----------------------------------------------------------------------------------

FUNCTION = named(Role.FUNCTION)
CLASS = named(Role.CLASS)

_PYTHON = CodeSpec(
    grammar=("tree_sitter_python", "language"),
    rules={
        "function_definition": FUNCTION,
        "class_definition": CLASS,
        "decorated_definition": Walk.UNWRAP,
        **dict.fromkeys(["if_statement", "elif_clause", "else_clause", "try_statement", "except_clause",
                         "except_group_clause", "finally_clause", "with_statement", "block"], Walk.DESCEND),
    },
    leading=frozenset({"comment"}),
    query="""
        (call function: (identifier) @call)
        (call function: (attribute attribute: (identifier) @call))
        [(import_statement) (import_from_statement) (future_import_statement)] @import
    """,
    imports=code_imports.python,
    frame=PYTHON_FRAME,
    opener=PYTHON_OPENER,
    indent_scoped=True,
)

_JS_RULES: dict[str, Rule] = {
    "function_declaration": FUNCTION,
    "generator_function_declaration": FUNCTION,
    "class_declaration": CLASS,
    "method_definition": FUNCTION,
    "field_definition": js_field,
    "lexical_declaration": js_variable,
    "variable_declaration": js_variable,
    "expression_statement": js_statement,
    "export_statement": Walk.UNWRAP,
}
_JS_QUERY = """
    (call_expression function: (identifier) @call)
    (call_expression function: (member_expression property: (property_identifier) @call))
    (new_expression constructor: (identifier) @call)
    (new_expression constructor: (member_expression property: (property_identifier) @call))
    (import_statement) @import
"""
_JAVASCRIPT = CodeSpec(
    grammar=("tree_sitter_javascript", "language"),
    rules=_JS_RULES,
    leading=frozenset({"comment", "decorator"}),
    query=_JS_QUERY,
    imports=code_imports.javascript,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)
_TS_RULES: dict[str, Rule] = {
    **_JS_RULES,
    "public_field_definition": js_field,
    "abstract_class_declaration": CLASS,
    "interface_declaration": CLASS,
    "type_alias_declaration": CLASS,
    "enum_declaration": CLASS,
    "internal_module": anonymous_ok(Role.SCOPE),
    "module": anonymous_ok(Role.SCOPE),
    "ambient_declaration": Walk.DESCEND,
}
_TYPESCRIPT = CodeSpec(
    grammar=("tree_sitter_typescript", "language_typescript"),
    rules=_TS_RULES,
    leading=frozenset({"comment", "decorator"}),
    query=_JS_QUERY,
    imports=code_imports.javascript,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)
_TSX = replace(_TYPESCRIPT, grammar=("tree_sitter_typescript", "language_tsx"))

_RUST = CodeSpec(
    grammar=("tree_sitter_rust", "language"),
    rules={
        "function_item": FUNCTION,
        "macro_definition": FUNCTION,
        "struct_item": CLASS,
        "enum_item": CLASS,
        "union_item": CLASS,
        "trait_item": CLASS,
        "impl_item": rust_impl,
        "mod_item": named(Role.SCOPE, needs_body=True),
    },
    leading=frozenset({"line_comment", "block_comment", "attribute_item"}),
    query="""
        (call_expression function: [
            (identifier) @call
            (scoped_identifier name: (identifier) @call)
            (field_expression field: (field_identifier) @call)
            (generic_function function: [
                (identifier) @call
                (scoped_identifier name: (identifier) @call)
                (field_expression field: (field_identifier) @call)])])
        (use_declaration) @import
    """,
    imports=code_imports.rust,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)

_GO = CodeSpec(
    grammar=("tree_sitter_go", "language"),
    rules={
        "function_declaration": FUNCTION,
        "method_declaration": go_method,
        "type_declaration": go_type,
    },
    leading=frozenset({"comment"}),
    query="""
        (call_expression function: [
            (identifier) @call
            (selector_expression field: (field_identifier) @call)])
        (import_spec) @import
    """,
    imports=code_imports.go,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)

_JAVA_METHOD = named(Role.FUNCTION, needs_body=True)  # bodiless (abstract) methods stay with their class
_JAVA = CodeSpec(
    grammar=("tree_sitter_java", "language"),
    rules={
        **dict.fromkeys(["class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
                         "annotation_type_declaration"], CLASS),
        **dict.fromkeys(["method_declaration", "constructor_declaration", "compact_constructor_declaration"],
                        _JAVA_METHOD),
        "enum_body_declarations": Walk.DESCEND,
    },
    leading=frozenset({"line_comment", "block_comment"}),
    query="""
        (method_invocation name: (identifier) @call)
        (object_creation_expression type: [
            (type_identifier) @call
            (generic_type (type_identifier) @call)
            (scoped_type_identifier (type_identifier) @call .)])
        (import_declaration) @import
    """,
    imports=code_imports.java,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)

_C_TYPE = named(Role.CLASS, needs_body=True)
_C_RULES: dict[str, Rule] = {
    "function_definition": c_function,
    "struct_specifier": _C_TYPE,
    "union_specifier": _C_TYPE,
    "enum_specifier": _C_TYPE,
    "type_definition": c_typedef,
    **dict.fromkeys(["preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef",
                     "linkage_specification", "declaration_list"], Walk.DESCEND),
}
_C_QUERY = """
    (call_expression function: [
        (identifier) @call
        (field_expression field: (field_identifier) @call)])
    (preproc_include) @import
"""
_C = CodeSpec(
    grammar=("tree_sitter_c", "language"),
    rules=_C_RULES,
    leading=frozenset({"comment"}),
    query=_C_QUERY,
    imports=code_imports.c,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)
_CPP = CodeSpec(
    grammar=("tree_sitter_cpp", "language"),
    rules={
        **_C_RULES,
        "class_specifier": _C_TYPE,
        "namespace_definition": anonymous_ok(Role.SCOPE),
        "template_declaration": Walk.UNWRAP,
    },
    leading=frozenset({"comment"}),
    query=_C_QUERY + """
        (call_expression function: [
            (qualified_identifier name: (identifier) @call)
            (template_function name: (identifier) @call)
            (qualified_identifier name: (template_function name: (identifier) @call))])
        (new_expression type: [
            (type_identifier) @call
            (qualified_identifier name: (type_identifier) @call)])
    """,
    imports=code_imports.c,
    frame=BRACE_FRAME,
    opener=BRACE_OPENER,
)

SPECS: Mapping[str, CodeSpec] = {
    "python": _PYTHON,
    "javascript": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "tsx": _TSX,
    "rust": _RUST,
    "go": _GO,
    "java": _JAVA,
    "c": _C,
    "cpp": _CPP,
}
