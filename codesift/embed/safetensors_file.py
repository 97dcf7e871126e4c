"""Reading `model.safetensors` ourselves: header checks and zero-copy numpy views.

The format is an 8-byte little-endian header length, a JSON header mapping tensor
names to dtype, shape and byte offsets, then the raw data. Parsing it here lets us
(1) report a truncated or damaged file by name before anything else touches it and
(2) memory-map tensors into numpy on the search path without importing torch.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesift.errors import ModelLoadError

_NP_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
              "BF16": np.uint16}  # bf16 has no numpy dtype: read as raw bits, widen in `array`
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


class SafetensorsFile:
    """The validated header of a safetensors file; tensors are read on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise ModelLoadError(f"{self.path}: file is truncated ({size} bytes); reinstall the model")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8 or n > 100 * 1024 * 1024:
                    raise ModelLoadError(f"{self.path}: not a safetensors file or truncated "
                                         f"(header claims {n} bytes, file has {size})")
                header = json.loads(f.read(n))
        except OSError as e:
            raise ModelLoadError(f"{self.path}: cannot read ({e})") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{self.path}: damaged safetensors header ({e})") from e
        self.metadata = header.pop("__metadata__", {}) or {}
        base = 8 + n
        self.tensors: dict[str, TensorInfo] = {}
        data_end = 0
        for name, spec in header.items():
            dtype = spec.get("dtype")
            if dtype not in _ITEMSIZE:
                raise ModelLoadError(f"{self.path}: tensor {name!r} has unsupported dtype {dtype!r}")
            shape = tuple(int(x) for x in spec["shape"])
            start, end = (int(x) for x in spec["data_offsets"])
            if end - start != int(np.prod(shape, dtype=np.int64)) * _ITEMSIZE[dtype]:
                raise ModelLoadError(f"{self.path}: tensor {name!r} size does not match its shape {shape}")
            self.tensors[name] = TensorInfo(name, dtype, shape, base + start, base + end)
            data_end = max(data_end, base + end)
        if data_end > size:
            raise ModelLoadError(f"{self.path}: file is truncated: tensors need {data_end} bytes, "
                                 f"the file has {size}; reinstall or re-download the model")
        self._mmap: np.memmap | None = None

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def keys(self) -> list[str]:
        return list(self.tensors)

    def raw(self, name: str) -> np.ndarray:
        """The tensor as stored (bf16 as uint16 bits), a read-only view of the mapped file."""
        info = self.tensors[name]
        if self._mmap is None:
            self._mmap = np.memmap(self.path, dtype=np.uint8, mode="r")
        buf = self._mmap[info.start:info.end]
        return buf.view(_NP_DTYPES[info.dtype]).reshape(info.shape)

    def array(self, name: str, dtype=np.float32) -> np.ndarray:
        """The tensor converted to `dtype` (a view when no conversion is needed)."""
        info = self.tensors[name]
        a = self.raw(name)
        if info.dtype == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a if a.dtype == dtype else a.astype(dtype)

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows `ids` of a 2-d table as float32, shape ids.shape + (dim,): only those rows are read."""
        rows = self.raw(name)[ids.reshape(-1)]
        if self.tensors[name].dtype == "BF16":
            rows = (rows.astype(np.uint32) << 16).view(np.float32)
        return rows.astype(np.float32, copy=False).reshape(*ids.shape, -1)
