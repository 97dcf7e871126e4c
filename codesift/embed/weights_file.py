"""Opening a weights file in whichever format it is: safetensors, GGUF or ONNX.

Both present the same surface to the architecture registry: tensors under Hugging Face names
with Hugging Face shapes (`tensors`, `in`, `keys()`), `array(name)` and `rows(name, ids)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from codesift.embed.gguf_file import GGUFFile, is_gguf
from codesift.embed.onnx_file import OnnxFile, is_onnx, open_onnx
from codesift.embed.safetensors_file import SafetensorsFile

WeightsFile = Union[SafetensorsFile, GGUFFile, OnnxFile]


def open_weights(path: str | Path) -> WeightsFile:
    """A GGUF file (recognised by its magic, ollama blobs have no suffix), an ONNX file (`.onnx`),
    else safetensors."""
    if is_gguf(path):
        return GGUFFile(path)
    if is_onnx(path):
        return open_onnx(path)
    return SafetensorsFile(path)
