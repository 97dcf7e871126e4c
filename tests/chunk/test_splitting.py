from __future__ import annotations

from codesift.chunk.splitting import limits, pack, split, windows


def test_windows_overlap_and_absorb_a_short_remainder():
    assert windows(1, 100, 40, 80) == [(1, 40), (36, 75), (71, 100)]
    assert windows(1, 55, 40, 80) == [(1, 55)]
    assert windows(1, 10, 1, 80)[:3] == [(1, 1), (2, 2), (3, 3)]


def test_pack_groups_units_up_to_the_target():
    assert pack(1, 100, range(11, 100, 10), 40, 80) == [(1, 40), (41, 80), (81, 100)]


def test_pack_cuts_an_oversized_unit_into_windows_led_by_what_came_before():
    assert pack(1, 200, [11, 191], 40, 80) == [(1, 40), (36, 75), (71, 110), (106, 145), (141, 190), (191, 200)]


def test_pack_joins_a_tiny_tail():
    assert pack(1, 83, [41, 81], 40, 80) == [(1, 40), (41, 83)]


def test_split_keeps_what_fits():
    assert split(5, 84, [10, 20], 40, 80) == [(5, 84)]


def test_limits_are_made_sane():
    assert limits(40, 80) == (40, 80)
    assert limits(100, 80) == (80, 80)
    assert limits(0, 0) == (1, 1)
