"""Telling binary files from text: by extension first (no read), then by a sample's bytes."""
from __future__ import annotations

import codecs

SAMPLE_BYTES = 8192

# Extensions that are binary in practice: skipped without opening the file. Text formats that
# merely look generated (.svg, .min.js, .lock, .map) are not here.
BINARY_EXTENSIONS = frozenset("""
    png jpg jpeg gif bmp ico icns tif tiff webp psd heic heif avif xcf raw cr2 nef
    mp3 wav flac ogg oga opus m4a aac wma aiff mid midi
    mp4 m4v mov avi mkv webm wmv flv mpg mpeg 3gp
    zip tar gz tgz bz2 tbz2 xz txz zst lz lz4 lzma 7z rar cab iso dmg img deb rpm apk msi
    jar war ear whl egg
    ttf otf woff woff2 eot
    o obj so dll dylib a lib exe pdb class pyc pyo pyd elc beam wasm dex ko node
    pdf doc docx xls xlsx ppt pptx odt ods odp epub
    sqlite sqlite3 db mdb
    safetensors bin pt pth ckpt onnx gguf ggml h5 hdf5 pb tflite npy npz pkl pickle joblib
    parquet arrow feather
    swp swo pack idx
""".split())

# Control bytes that do not occur in text. Tab, newlines, form feed and ESC (ANSI colours
# in logs) are allowed.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\v\f\r\x1b") + b"\x7f"
_CONTROL_CHARS = frozenset(_CONTROL_BYTES.decode("ascii")) | {"\ufffd"}
_MAX_CONTROL_SHARE = 0.10
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def has_binary_extension(name: str) -> bool:
    """Whether the file name ends in an extension that is binary in practice."""
    dot = name.rfind(".")
    return dot > 0 and name[dot + 1:].lower() in BINARY_EXTENSIONS


def is_binary(sample: bytes) -> bool:
    """Whether a file starting with `sample` looks binary: a NUL byte in the first 8 KiB,
    or more than 10% control bytes. Text with a UTF-16 byte order mark is judged on its
    decoded characters, since its NUL bytes are part of the encoding."""
    sample = sample[:SAMPLE_BYTES]
    if not sample:
        return False
    if sample.startswith(_UTF16_BOMS):
        return _utf16_looks_binary(sample)
    if b"\0" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > _MAX_CONTROL_SHARE * len(sample)


def _utf16_looks_binary(sample: bytes) -> bool:
    text = sample[: len(sample) & ~1].decode("utf-16", errors="replace")
    # A UTF-32 file (whose BOM starts like UTF-16's) decodes to half NULs and lands here too.
    bad = sum(1 for char in text if char in _CONTROL_CHARS)
    return bad > _MAX_CONTROL_SHARE * max(len(text), 1)
