"""The ULX3S (ECP5) top: elaboration for every size, and one real ECP5-85F bitstream."""

import numpy as np
import pytest

from boards.icebreaker import IcebreakerTop
from boards.ulx3s import SIZES, build_ulx3s, ulx3s_platform
from model.ir import InputLayer, LIFLayer, Network, Projection


def tiny_net():
    rng = np.random.default_rng(0)
    return Network(layers=[InputLayer(n=0), LIFLayer(n=8, v_bits=10, acc_bits=10, beta=3,
                                                     beta_shift=2, threshold=30, forced=True,
                                                     name="pop")],
                   projections=[Projection("taps", 1, 1, 6, rng.integers(-8, 20, (8, 8, 3)),
                                           np.array(1))], max_delay=3)


@pytest.mark.parametrize("size", SIZES)
def test_ulx3s_top_elaborates(size, tmp_path):
    plan = ulx3s_platform(size).prepare(IcebreakerTop(tiny_net(), lanes=2), name="top")
    files = dict(plan.files)
    assert "top.il" in files and "LOCATE COMP" in files["top.lpf"]


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="85F"):
        ulx3s_platform("100F")


@pytest.mark.slow
def test_ecp5_85f_bitstream(tmp_path):
    r = build_ulx3s(tiny_net(), build_dir=tmp_path / "u", lanes=2)
    assert r.bitstream.suffix == ".bit" and r.bitstream.stat().st_size > 0
    assert r.constraint_mhz == pytest.approx(25.0, abs=0.01)
    assert r.fmax_mhz > 25.0 and r.timing_met
    assert 0 < r.resources["logic"].used and r.resources["logic"].available == 83640
