"""The schedule top on the ULX3S (ECP5): elaboration for every size, and one real ECP5-85F
bitstream."""

import numpy as np
import pytest

from boards.catalog import BOARDS, board
from boards.schedule import ScheduleTop, build_schedule
from boards.top import board_platform
from model.ir import InputLayer, LIFLayer, Network, Projection

ULX3S = [name for name in BOARDS if name.startswith("ulx3s-")]


def tiny_net():
    rng = np.random.default_rng(0)
    return Network(layers=[InputLayer(n=0), LIFLayer(n=8, v_bits=10, acc_bits=10, beta=3,
                                                     beta_shift=2, threshold=30, forced=True,
                                                     name="pop")],
                   projections=[Projection("taps", 1, 1, 6, rng.integers(-8, 20, (8, 8, 3)),
                                           np.array(1))], max_delay=3)


def test_every_ulx3s_size_is_in_the_catalog():
    assert ULX3S == ["ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f"]


@pytest.mark.parametrize("name", ULX3S)
def test_ulx3s_top_elaborates(name):
    plan = board_platform(name).prepare(ScheduleTop(tiny_net(), lanes=2), name="top")
    files = dict(plan.files)
    assert "top.il" in files and "LOCATE COMP" in files["top.lpf"]
    assert f"LFE5U-{name[-3:].upper()}" in board(name).device


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="ulx3s-85f"):
        board("ulx3s-100f")


@pytest.mark.slow
def test_ecp5_85f_bitstream(tmp_path):
    r = build_schedule(tiny_net(), "ulx3s-85f", build_dir=tmp_path / "u", lanes=2)
    assert r.bitstream.suffix == ".bit" and r.bitstream.stat().st_size > 0
    assert r.constraint_mhz == pytest.approx(25.0, abs=0.01)
    assert r.fmax_mhz > 25.0 and r.timing_met
    assert 0 < r.resources["logic"].used and r.resources["logic"].available == 83640
