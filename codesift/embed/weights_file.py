"""Opening a weights file in whichever format it is: safetensors, GGUF or ONNX.

Both present the same surface to the architecture registry: tensors under Hugging Face names
with Hugging Face shapes (`tensors`, `in`, `keys()`), `array(name)` and `rows(name, ids)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from codesift.embed.safetensors_file import SafetensorsFile

if TYPE_CHECKING:
    from codesift.embed.gguf_file import GGUFFile
    from codesift.embed.onnx_file import OnnxFile

WeightsFile = Union[SafetensorsFile, "GGUFFile", "OnnxFile"]


def open_weights(path: str | Path) -> WeightsFile:
    """A `.safetensors` file, a GGUF file (recognised by its magic, ollama blobs have no suffix), an
    ONNX file (`.onnx`), else safetensors. The GGUF and ONNX readers are imported only for a file
    that is not `.safetensors`: a search loads the default model on every cold start."""
    if Path(path).suffix == ".safetensors":
        return SafetensorsFile(path)
    from codesift.embed.gguf_file import GGUFFile, is_gguf
    from codesift.embed.onnx_file import is_onnx, open_onnx

    if is_gguf(path):
        return GGUFFile(path)
    if is_onnx(path):
        return open_onnx(path)
    return SafetensorsFile(path)
