"""The link budget's figures: what a stream needs against what the line carries."""

from __future__ import annotations

import pytest

from edgeloop.collect.budget import FRAME_BYTES, budget


def test_3khz_six_axes_do_not_fit_115200_baud():
    b = budget(3000, 6, 115200)
    # 6 x 2 B per sample + 25 B of framing per 18-sample frame
    assert b.batch == 18 and FRAME_BYTES == 25
    assert b.need_bps == pytest.approx(3000 * (12 + 25 / 18))
    assert b.line_bps == 11520
    assert not b.fits and b.use == pytest.approx(3.487, abs=1e-3)
    text = b.describe()
    assert "40,167 B/s" in text and "349% of 115200 baud" in text and "NOT fit" in text


def test_1khz_three_axes_fit_115200_baud():
    b = budget(1000, 3, 115200)
    assert b.fits and b.use == pytest.approx(0.5795, abs=1e-3)
    assert "fits" in b.describe()


def test_burst_capacity_from_the_heap():
    b = budget(3000, 6, 115200)
    assert b.burst_samples(50_000) == (50_000 - 6144) // 12
    assert b.burst_samples(1000) == 0


def test_virtual_board_has_no_baud_limit():
    b = budget(1000, 3, None)
    assert b.fits and "no baud limit" in b.describe()


def test_virtual_board_budget_is_its_measured_throughput():
    b = budget(1000, 3, None, measured_bps=60_000)
    assert b.fits and b.use == pytest.approx(6676.4 / 60_000, rel=1e-3)
    assert "of the 60,000 B/s" in b.describe() and "fits" in b.describe()
    slow = budget(3200, 3, None, measured_bps=20_000)
    assert not slow.fits and "NOT fit" in slow.describe()
