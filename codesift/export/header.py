"""The YAML header that opens every exported chunk file (the format of the project's seed
document 000): fixed keys in a fixed order, each value written as a flow scalar.

We write the YAML ourselves rather than depend on a YAML library at run time. Strings are
double-quoted with escapes for everything YAML would not take literally, so any path or
heading reads back exactly.
"""
from __future__ import annotations

import json

HEADER_KEYS = ("chunk_index", "ref", "id", "slug", "path", "kind", "lines", "token_estimate", "content_sha256",
               "compacted", "heading_path", "symbol", "address", "asset_path")


def _yaml_char(ch: str) -> str:
    """`ch` as it may appear inside a YAML double-quoted scalar."""
    cp = ord(ch)
    printable = (0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xD7FF or 0xE000 <= cp <= 0xFFFD or cp >= 0x10000) \
        and ch not in "\u2028\u2029\ufeff"  # line and paragraph separators would fold; a BOM is stripped
    if printable:
        return ch
    return f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def yaml_string(text: str) -> str:
    """A double-quoted YAML scalar for `text` (also valid JSON when `text` is plain printable text)."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]  # escapes quotes, backslashes, controls
    return '"' + "".join(_yaml_char(ch) if ch != "\\" else ch for ch in body) + '"'


def yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return yaml_string(value)
    if isinstance(value, (list, tuple)):  # spaced as in document 000: [75, 155], ["A","B"]
        sep = ", " if all(isinstance(v, int) for v in value) else ","
        return "[" + sep.join(yaml_value(v) for v in value) + "]"
    raise TypeError(f"no YAML form for {type(value).__name__}")


def render_header(fields: dict) -> str:
    """The `---`-fenced header, keys in HEADER_KEYS order, then the blank line before the content."""
    missing = [k for k in HEADER_KEYS if k not in fields]
    if missing:
        raise ValueError(f"header fields missing: {', '.join(missing)}")
    lines = [f"{k}: {yaml_value(fields[k])}" for k in HEADER_KEYS]
    return "---\n" + "\n".join(lines) + "\n---\n\n"
