"""Reading the vector segments' .npy files (index/vectors.read_npy) as np.load reads them."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("mapped", [False, True])
def test_read_npy_reads_what_np_save_wrote_as_np_load_does(tmp_path, mapped):
    from codesift.index.vectors import read_npy

    rng = np.random.default_rng(0)
    arrays = [np.arange(7, dtype=np.int64), rng.integers(-127, 128, (5, 2, 8), dtype=np.int8),
              rng.random((3, 2), dtype=np.float32), np.zeros((0, 2, 4), np.int8), np.int64(3),
              np.asfortranarray(rng.random((3, 4))),  # not the header read here: np.load reads it
              np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])]
    for i, array in enumerate(arrays):
        path = tmp_path / f"a{i}.npy"
        np.save(path, array)
        got, want = read_npy(path, mapped=mapped), np.load(path, mmap_mode="r" if mapped else None)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        assert not got.flags.writeable or not mapped


def test_read_npy_refuses_a_file_cut_short(tmp_path):
    from codesift.index.vectors import read_npy

    path = tmp_path / "cut.npy"
    np.save(path, np.arange(100, dtype=np.int64))
    path.write_bytes(path.read_bytes()[:-80])
    for mapped in (False, True):
        with pytest.raises(ValueError):
            read_npy(path, mapped=mapped)
