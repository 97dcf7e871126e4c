"""Files go to the prepare workers in lots (prepare.lots): in order, each once, shared out."""
from __future__ import annotations

from pathlib import Path

from codesift.index.prepare import LOT_BYTES, LOTS_PER_WORKER, lots
from codesift.walk.model import SourceFile


def todo(sizes: list[int]) -> list[tuple[SourceFile, None]]:
    return [(SourceFile(f"f{i}.py", Path(f"/x/f{i}.py"), size, 0, 0, i), None) for i, size in enumerate(sizes)]


def test_lots_keep_every_file_in_order():
    files = todo([1000 * (i % 7) + 1 for i in range(500)])
    cut = list(lots(files, workers=4))
    assert [item for lot in cut for item in lot] == files
    assert all(cut)


def test_a_big_run_goes_in_lots_of_about_lot_bytes():
    files = todo([20_000] * 2000)  # 40 MB: many lots per worker even at LOT_BYTES
    cut = list(lots(files, workers=16))
    assert all(LOT_BYTES <= sum(f.size for f, _ in lot) < LOT_BYTES + 20_000 for lot in cut[:-1])


def test_a_small_run_still_gives_every_worker_several_lots():
    files = todo([10_000] * 200)  # 2 MB over 16 workers: lots of far less than LOT_BYTES
    assert len(list(lots(files, workers=16))) >= 16 * LOTS_PER_WORKER // 2


def test_a_file_bigger_than_a_lot_ends_its_lot():
    files = todo([100, 5 * LOT_BYTES, 100, 100])
    assert [len(lot) for lot in lots(files, workers=1)] == [2, 2]
