"""Code chunking: definitions, their comments, split parts, contexts, calls and imports."""
from __future__ import annotations

import pytest

from codesift.chunk import Import, chunk_file
from tests.chunk.helpers import chunk_fixture, outline, read_fixture

EXPECTED = {
    "sample.py": [
        ("module", None, 1, 9, None),
        ("function", "register", 12, 19, None),  # with its comment block; `wrap` stays inside
        ("class", "Inventory", 22, 26, None),  # decorator, header, docstring, attribute
        ("method", "Inventory.__init__", 28, 30, None),
        ("method", "Inventory.add", 32, 36, None),  # comment and decorator above it
        ("method", "Inventory.total", 38, 41, None),
        ("class", "Inventory.Entry", 43, 44, None),
        ("method", "Inventory.Entry.describe", 46, 47, None),
        ("class", "Inventory", 49, 49, None),  # class-level code after the methods
        ("function", "score_all", 52, 90, (1, 3)),
        ("function", "score_all", 92, 130, (2, 3)),
        ("function", "score_all", 132, 143, (3, 3)),
        ("module", None, 146, 148, None),
    ],
    "sample.js": [
        ("module", None, 1, 7, None),
        ("class", "TaskQueue", 9, 13, None),  # JSDoc, export, header, field
        ("method", "TaskQueue.onDone", 14, 16, None),  # a field holding an arrow function
        ("method", "TaskQueue.constructor", 18, 21, None),
        ("method", "TaskQueue.drain", 23, 31, None),  # its comment; the class's `}` joins it
        ("function", "createQueue", 33, 35, None),
        ("function", "formatJob", 37, 37, None),
        ("function", "classify", 39, 77, (1, 3)),
        ("function", "classify", 78, 116, (2, 3)),
        ("function", "classify", 117, 134, (3, 3)),
        ("method", "TaskQueue.size", 136, 138, None),  # Foo.prototype.size = function
        ("module", None, 140, 140, None),
    ],
    "sample.ts": [
        ("module", None, 1, 2, None),
        ("class", "User", 4, 9, None),  # interface
        ("class", "UserId", 11, 11, None),  # type alias
        ("class", "Role", 13, 16, None),  # enum
        ("class", "UserService", 18, 20, None),  # with its decorator
        ("method", "UserService.constructor", 22, 22, None),
        ("method", "UserService.find", 24, 28, None),
        ("method", "UserService.load", 30, 34, None),
        ("module", "Api", 36, 36, None),  # namespace: its own lines are module code
        ("function", "Api.handler", 37, 40, None),
        ("function", "render", 42, 79, (1, 3)),
        ("function", "render", 80, 118, (2, 3)),
        ("function", "render", 119, 132, (3, 3)),
    ],
    "sample.tsx": [
        ("module", None, 1, 1, None),
        ("class", "Props", 3, 3, None),
        ("function", "ItemList", 5, 20, None),
        ("class", "Panel", 22, 22, None),
        ("method", "Panel.render", 23, 26, None),
    ],
    "sample.rs": [
        ("module", None, 1, 5, None),
        ("class", "Point", 7, 12, None),  # doc comment and attribute above the struct
        ("class", "Point", 14, 14, None),  # impl Point {
        ("method", "Point.distance", 15, 20, None),
        ("method", "Point.new", 22, 25, None),
        ("class", "Point", 27, 27, None),  # impl fmt::Display for Point {
        ("method", "Point.fmt", 28, 31, None),
        ("class", "Shape", 33, 34, None),  # trait, with its bodiless method
        ("method", "Shape.describe", 35, 38, None),
        ("class", "Kind", 40, 43, None),
        ("function", "classify", 45, 82, (1, 2)),
        ("function", "classify", 83, 127, (2, 2)),
        ("module", "tests", 129, 130, None),  # mod tests { use super::*;
        ("function", "tests.distance_is_zero_to_self", 132, 137, None),
    ],
    "sample.go": [
        ("module", None, 1, 11, None),
        ("class", "Store", 13, 16, None),
        ("function", "New", 18, 21, None),
        ("method", "Store.Get", 23, 30, None),  # pointer receiver
        ("method", "Store.Len", 32, 32, None),  # value receiver
        ("function", "Describe", 34, 73, (1, 2)),
        ("function", "Describe", 74, 118, (2, 2)),
    ],
    "Sample.java": [
        ("module", None, 1, 5, None),
        ("class", "Cart", 7, 13, None),  # Javadoc, annotation, header, fields
        ("method", "Cart.Cart", 15, 17, None),
        ("method", "Cart.add", 19, 24, None),
        ("class", "Cart", 26, 26, None),  # an abstract method stays with its class
        ("class", "Cart.Status", 28, 29, None),
        ("method", "Cart.Status.isOpen", 31, 32, None),
        ("method", "Cart.describe", 34, 72, (1, 3)),
        ("method", "Cart.describe", 73, 111, (2, 3)),
        ("method", "Cart.describe", 112, 126, (3, 3)),
    ],
    "sample.c": [
        ("module", None, 1, 6, None),
        ("class", "slot", 8, 12, None),
        ("class", "ring_t", 14, 17, None),  # typedef struct {...} ring_t;
        ("module", None, 19, 19, None),
        ("function", "ring_new", 21, 26, None),
        ("function", "ring_dump", 28, 33, None),  # #ifdef / #endif around it join it
        ("function", "ring_classify", 35, 73, (1, 2)),
        ("function", "ring_classify", 74, 123, (2, 2)),  # and the header guard's #endif
    ],
    "sample.cpp": [
        ("module", None, 1, 3, None),
        ("module", "linalg", 5, 5, None),
        ("class", "linalg.Matrix", 7, 8, None),
        ("method", "linalg.Matrix.Matrix", 9, 10, None),  # ` public:` opens what follows
        ("method", "linalg.Matrix.size", 12, 13, None),
        ("class", "linalg.Matrix", 15, 20, None),  # declarations and private fields
        ("method", "linalg.Matrix.at", 22, 24, None),  # out-of-line Matrix::at
        ("function", "linalg.clamp", 26, 31, None),  # template; the namespace's `}` joins it
        ("function", "label", 33, 72, (1, 2)),
        ("function", "label", 73, 117, (2, 2)),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_definitions_become_chunks(name):
    assert outline(chunk_fixture(name)) == EXPECTED[name]


def by_symbol(result, symbol):
    return [c for c in result.chunks if c.symbol == symbol]


def test_python_contexts_calls_and_content():
    result = chunk_fixture("sample.py")
    add, = by_symbol(result, "Inventory.add")
    assert add.context == "class Inventory(object):"
    assert add.content.splitlines()[:2] == ["    # Adding is the hot path.", "    @staticmethod"]
    assert add.calls == ("log",)
    describe, = by_symbol(result, "Inventory.Entry.describe")
    assert describe.context == "class Entry:" and describe.calls == ("OD", "items")
    register, = by_symbol(result, "register")
    assert "def wrap(func):" in register.content  # nested functions stay in their parent
    assert register.context == ""
    parts = by_symbol(result, "score_all")
    assert {p.context for p in parts} == {"def score_all(kind, weights, scale=1.0):"}
    assert parts[-1].calls == ("add", "get", "sorted")
    assert all(p.language == "python" and p.path == "sample.py" for p in result.chunks)


def test_split_parts_start_at_statements():
    for part in by_symbol(chunk_fixture("sample.py"), "score_all")[1:]:
        assert part.content.lstrip().startswith("if kind ==")
    for part in by_symbol(chunk_fixture("sample.go"), "Describe")[1:]:
        assert part.content.lstrip().startswith("case ")


@pytest.mark.parametrize("name,symbol,context", [
    ("sample.js", "TaskQueue.drain", "class TaskQueue extends EventEmitter"),
    ("sample.ts", "UserService.find", "class UserService"),
    ("sample.ts", "Api.handler", "namespace Api"),
    ("sample.rs", "Point.fmt", "impl fmt::Display for Point"),
    ("sample.rs", "tests.distance_is_zero_to_self", "mod tests"),
    ("Sample.java", "Cart.add", "public class Cart extends Base implements Serializable"),
    ("sample.cpp", "linalg.Matrix.size", "class Matrix : public Base"),
    ("sample.go", "Store.Get", ""),
])
def test_members_carry_their_container_header(name, symbol, context):
    assert by_symbol(chunk_fixture(name), symbol)[0].context == context


@pytest.mark.parametrize("name,symbol,calls", [
    ("sample.js", "TaskQueue.drain", ("job", "run")),
    ("sample.js", "createQueue", ("TaskQueue",)),  # new TaskQueue()
    ("sample.ts", "UserService.find", ("debug", "get", "load")),
    ("sample.rs", "tests.distance_is_zero_to_self", ("new",)),  # Point::new, not assert_eq!
    ("sample.go", "Store.Get", ("Errorf",)),
    ("Sample.java", "Cart.add", ("add", "touch")),
    ("sample.c", "ring_new", ("calloc",)),
    ("sample.cpp", "linalg.clamp", ("max", "min")),
])
def test_calls_are_last_name_components(name, symbol, calls):
    assert by_symbol(chunk_fixture(name), symbol)[0].calls == calls


IMPORTS = {
    "sample.py": [Import("__future__", "annotations", None, 2), Import("os.path", None, "osp", 4),
                  Import("collections", "defaultdict", None, 5), Import("collections", "OrderedDict", "OD", 5),
                  Import("typing", "*", None, 6)],
    "sample.js": [Import("events", "default", "EventEmitter", 2), Import("fs/promises", "readFile", None, 3),
                  Import("fs/promises", "writeFile", "save", 3), Import("path", "*", "path", 4),
                  Import("util", None, "util", 5)],
    "sample.ts": [Import("express", "Request", None, 1), Import("express", "Response", None, 1),
                  Import("./logger", "Logger", None, 2)],
    "sample.rs": [Import("std::collections", "HashMap", None, 2),
                  Import("std::collections::hash_map", "Entry", "MapEntry", 2), Import("std", "fmt", None, 3),
                  Import("super", "*", None, 130)],
    "sample.go": [Import("errors", None, None, 5), Import("fmt", None, None, 6), Import("strings", None, "str", 7)],
    "Sample.java": [Import("java.util", "List", None, 3), Import("java.util", "ArrayList", None, 4),
                    Import("java.lang.Math", "*", None, 5)],
    "sample.c": [Import("stdlib.h", None, None, 5), Import("ring.h", None, None, 6)],
    "sample.cpp": [Import("vector", None, None, 2), Import("matrix.hpp", None, None, 3)],
}


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_imports(name):
    assert chunk_fixture(name).imports == IMPORTS[name]


def test_ids_survive_edits_elsewhere_in_the_file():
    text = read_fixture("sample.py")
    before = {(c.symbol, c.part): c.id for c in chunk_file("sample.py", text).chunks}
    edited = text.replace('    """Decorator that records a handler."""\n',
                          '    """Decorator that records a handler."""\n    assert name, "handlers need a name"\n')
    after = {(c.symbol, c.part): c.id for c in chunk_file("sample.py", edited).chunks}
    assert before.keys() == after.keys()
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("register", None)}


def test_ids_are_unique_even_for_identical_chunks():
    text = "def f():\n    return 1\n\n\ndef f():\n    return 1\n"
    chunks = chunk_file("dup.py", text).chunks
    assert [c.symbol for c in chunks] == ["f", "f"] and chunks[0].id != chunks[1].id


def test_python_parse_errors_keep_what_parses():
    text = "def good():\n    return 1\n\n\ndef broken(:\n    return (\n\n\nclass Fine:\n    def m(self):\n        pass\n"
    result = chunk_file("bad.py", text)
    symbols = [c.symbol for c in result.chunks]
    assert "good" in symbols and "Fine.m" in symbols


def test_python_conditional_definitions_are_found():
    text = ("import sys\n\nif sys.platform == 'win32':\n    def path_sep():\n        return '\\\\'\n"
            "else:\n    def path_sep():\n        return '/'\n")
    assert outline(chunk_file("c.py", text)) == [
        ("module", None, 1, 1, None),
        ("function", "path_sep", 3, 5, None),  # the `if` line opens what follows: it joins it
        ("function", "path_sep", 6, 8, None),
    ]


def test_python_comments_after_a_block_belong_to_what_follows():
    text = ("class A:\n    def f(self):\n        pass\n        # still f\n# about B\nclass B:\n    pass\n")
    assert outline(chunk_file("c.py", text)) == [
        ("class", "A", 1, 1, None),
        ("method", "A.f", 2, 4, None),
        ("class", "B", 5, 7, None),
    ]


def test_class_without_methods_is_one_chunk_or_split_parts():
    text = "class Table:\n" + "".join(f"    column_{i} = {i}\n" for i in range(200))
    chunks = chunk_file("t.py", text).chunks
    assert {c.symbol for c in chunks} == {"Table"} and {c.kind for c in chunks} == {"class"}
    assert [c.part for c in chunks] == [(i, len(chunks)) for i in range(1, len(chunks) + 1)]
    assert all(c.context == "class Table:" and c.n_lines <= 80 for c in chunks)


def test_c_header_with_cpp_content_is_read_as_cpp():
    text = "namespace ui {\nclass Button {\n public:\n  void click() { fire(); }\n};\n}\n"
    result = chunk_file("button.h", text)
    assert result.chunks[0].language == "c"
    assert ("method", "ui.Button.click") in {(c.kind, c.symbol) for c in result.chunks}


def test_rust_impl_methods_belong_to_the_bare_type():
    text = ("impl<'a, T> Iterator for &'a mut Foo<T> {\n    fn next(&mut self) {}\n}\n"
            "impl fmt::Debug for crate::shapes::Bar<u8> {\n    fn fmt(&self) {}\n}\n")
    symbols = [c.symbol for c in chunk_file("m.rs", text).chunks]
    assert symbols == ["Foo", "Foo.next", "Bar", "Bar.fmt"]
