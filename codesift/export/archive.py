"""A zip archive whose bytes depend only on its entries: sorted names, fixed timestamps and
permissions, no extra fields. Exporting the same tree twice gives the same archive."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can record


def write_zip(target: Path, entries: dict[str, bytes], folder: str) -> None:
    """Write `entries` (relative path -> bytes) under `folder/` in the archive `target`, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever system writes it
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            zf.writestr(info, entries[name], compresslevel=6)
    os.replace(tmp, target)
