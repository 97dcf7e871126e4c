"""Issue 15 #2: definitions inside a function too long for one chunk (a TypeScript plugin's
closure, a factory) are chunks of their own, named `outer.inner`; inside a short function they
stay where they are read."""
from __future__ import annotations

import pytest

from codesift.chunk import chunk_file

FILLER = "".join(f"  const v{i} = {i}\n" for i in range(45))
TS = ("export function enableMapSet() {\n" + FILLER +
      "  class DraftMap extends Map {\n    get size(): number {\n      return 1\n    }\n  }\n"
      "  function generatePatches_(a: number, b: number) {\n    return a + b\n  }\n"
      "  const applyPatches_ = (x: number) => {\n    return x\n  }\n"
      + FILLER.replace("v", "w") + "  return DraftMap\n}\n")
PY = ("def outer():\n" + "".join(f"    v{i} = {i}\n" for i in range(50)) +
      "    def inner(a):\n        return a\n\n    class Helper:\n        def m(self):\n            return 1\n"
      + "".join(f"    w{i} = {i}\n" for i in range(50)) + "    return inner\n")
SHORT = "function small() {\n  function helper() {\n    return 1\n  }\n  return helper()\n}\n"


@pytest.mark.parametrize("path, text, outer, nested", [
    ("src/plugins/mapset.ts", TS, "enableMapSet",
     {"enableMapSet.DraftMap", "enableMapSet.DraftMap.size", "enableMapSet.generatePatches_",
      "enableMapSet.applyPatches_"}),
    ("src/plugins/mapset.js", TS.replace(": number", ""), "enableMapSet",
     {"enableMapSet.DraftMap", "enableMapSet.DraftMap.size", "enableMapSet.generatePatches_",
      "enableMapSet.applyPatches_"}),
    ("pkg/factory.py", PY, "outer", {"outer.inner", "outer.Helper", "outer.Helper.m"}),
])
def test_definitions_nested_in_a_long_function_are_chunks(path, text, outer, nested):
    chunks = chunk_file(path, text).chunks
    symbols = {c.symbol for c in chunks}
    assert nested <= symbols and outer in symbols
    lines = text.split("\n")
    for c in chunks:  # every chunk is exactly its lines, and none overlaps another
        assert c.content == "\n".join(lines[c.start_line - 1:c.end_line])
    spans = sorted((c.start_line, c.end_line) for c in chunks)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    inner = next(c for c in chunks if c.symbol == sorted(nested)[0])
    assert inner.context  # situated in its enclosing definition


def test_definitions_in_a_short_function_stay_inside():
    (chunk,) = chunk_file("a.js", SHORT).chunks
    assert chunk.symbol == "small" and "function helper()" in chunk.content


OBJECT_TRAPS = ("export const objectTraps: ProxyHandler<ProxyState> = {\n"
                "  get(state, prop) {\n    return latest(state)[prop]\n  },\n"
                "  has(state, prop) {\n    return prop in latest(state)\n  }\n}\n"
                "const plain = { a: 1, b: 2 }\n")


@pytest.mark.parametrize("path", ["src/core/proxy.ts", "src/core/proxy.js"])
def test_object_of_methods_is_a_symbol_with_its_methods(path):
    """Issue 15 #2, immer's `objectTraps`: a const object literal of methods is looked up by its
    name, and each method by `objectTraps.method`; a plain data object stays module text."""
    text = OBJECT_TRAPS if path.endswith(".ts") else OBJECT_TRAPS.replace(": ProxyHandler<ProxyState>", "")
    symbols = {c.symbol for c in chunk_file(path, text, "typescript" if path.endswith(".ts") else "javascript").chunks}
    assert {"objectTraps", "objectTraps.get", "objectTraps.has"} <= symbols
    assert "plain" not in symbols
