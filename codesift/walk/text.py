"""Reading a source file as text without ever failing on its encoding."""
from __future__ import annotations

import codecs
import threading
from pathlib import Path

_ERRORS = "codesift-replace-counted"
_replaced = threading.local()


def _replace_counted(error: UnicodeDecodeError) -> tuple[str, int]:
    # Like errors="replace", but remembers how many bytes were replaced.
    _replaced.count += error.end - error.start
    return "\ufffd", error.end


codecs.register_error(_ERRORS, _replace_counted)


def read_text(path: Path, max_bytes: int | None = None) -> tuple[str, int]:
    """The file's text and how many undecodable bytes were replaced by U+FFFD (0 if clean).

    UTF-8 (a BOM is stripped), or UTF-16 when the file starts with a UTF-16 BOM. With
    `max_bytes`, only that many bytes are read; a character cut in half at the end is
    dropped, not counted. Line endings are kept as they are. Raises OSError subclasses
    (PermissionError, FileNotFoundError, IsADirectoryError) for unreadable files.
    """
    with open(path, "rb") as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    truncated = max_bytes is not None and len(data) > max_bytes
    if truncated:
        data = data[:max_bytes]
    return decode_text(data, complete=not truncated)


def decode_text(data: bytes, complete: bool = True) -> tuple[str, int]:
    """Decode file contents as `read_text` does; `complete=False` for a truncated prefix."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # the codec reads the BOM for byte order and drops it
    else:
        encoding = "utf-8"
        data = data.removeprefix(codecs.BOM_UTF8)
        if complete:
            try:
                return data.decode("utf-8"), 0  # the common case, fastest
            except UnicodeDecodeError:
                pass
    _replaced.count = 0
    decoder = codecs.getincrementaldecoder(encoding)(errors=_ERRORS)
    text = decoder.decode(data, final=complete)
    return text, _replaced.count
