"""boards.catalog: every board is one entry, resources from rtl.devices."""

import pytest

from boards.catalog import BOARDS, BoardIO, board
from rtl.devices import DEVICES, largest
from boards.top import board_io, board_platform, sync_clock
from tests.boards import NAMES

MHZ = 1e6


def test_catalog_lists_every_board():
    assert list(BOARDS) == NAMES
    for name, b in BOARDS.items():
        assert b.name == name and b.family in ("ice40", "ecp5")
        assert b.host_link and b.uart_baud == 1_000_000
        assert {"lut", "bram", "dsp"} <= set(b.resources)
        assert ("spram" in b.resources) == (b.family == "ice40")
        assert b.osc_mhz == b.clock_mhz > 0
        # The default clock is made exactly (no rounding of the UART divisor's base).
        hz, pll = sync_clock(name)
        assert hz == b.sync_mhz * MHZ
        assert (pll is None) == (b.pll_mhz in (None, b.clock_mhz))
        assert isinstance(board_io(name), BoardIO)
    ecp5 = {n: (BOARDS[n].resources["bram"], BOARDS[n].resources["dsp"])
            for n in ("ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f")}
    assert ecp5 == {"ulx3s-12f": (32, 28), "ulx3s-25f": (56, 28), "ulx3s-45f": (108, 72),
                    "ulx3s-85f": (208, 156)}
    # The entries the CLI and the estimate already use keep their figures.
    assert board("icebreaker").resources == {"lut": 5280, "bram": 30, "spram": 4, "dsp": 8}
    assert board("ulx3s-85f").resources["lut"] == 83640
    assert board("ulx3s-85f").clock_mhz == 25.0 and board("icebreaker").clock_mhz == 12.0
    with pytest.raises(ValueError, match="known boards: icebreaker"):
        board("arty")


def test_catalog_resources_come_from_the_device_table():
    for b in BOARDS.values():
        assert b.fpga is DEVICES[b.chip] and b.resources == DEVICES[b.chip].resources
        assert b.device.startswith(b.chip + "-") and b.family == b.fpga.family
        assert b.leds == len(b.io.leds)
    assert [board(n).device for n in ("icebreaker", "ulx3s-85f", "orangecrab-25f")] == \
        ["iCE40UP5K-SG48", "LFE5U-85F-6", "LFE5U-25F-8"]
    assert {f: largest(f).name for f in ("ice40", "ecp5")} == \
        {"ice40": "iCE40UP5K", "ecp5": "LFE5U-85F"}
    # Each call gives a fresh platform (a platform can be built only once).
    assert board_platform("ulx3s-12f") is not board_platform("ulx3s-12f")
    assert type(board_platform("ulx3s-12f")).__name__ == "ULX3S_12F_Platform"
