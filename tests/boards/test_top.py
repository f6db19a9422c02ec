"""boards.top: BoardTop and the host-link top on every board (no place and route)."""

import re
from dataclasses import replace

import pytest
from amaranth.hdl import Elaboratable, Module, Signal

from boards.catalog import BOARDS, board
from boards.top import BoardTop, board_platform, host_top, sync_clock
from tests.boards import NAMES

MHZ = 1e6


# --------------------------------------------------------------------------------------------
# A stand-in inner top: UART loopback (rx -> tx, registered) and a counter on the LEDs.

class LoopbackInner(Elaboratable):
    def __init__(self, clk_hz: float, led_bits: int = 8):
        self.clk_hz = clk_hz
        self.rx = Signal(init=1)
        self.tx = Signal(init=1)
        self.leds = Signal(led_bits)

    def elaborate(self, platform):
        m = Module()
        count = Signal(26)
        m.d.sync += [count.eq(count + 1), self.tx.eq(self.rx)]
        m.d.comb += self.leds.eq(count[-len(self.leds):])
        return m


def test_a_new_board_is_one_entry(monkeypatch):
    """A board registered for the duration of this test (a ULX3S at another PLL target and
    baud) gets a clock, a platform and a host-link top like the others."""
    new = replace(board("ulx3s-25f"), name="ulx3s-test", pll_mhz=40.0, uart_baud=500_000)
    monkeypatch.setitem(BOARDS, new.name, new)
    hz, pll = sync_clock("ulx3s-test")
    assert hz == 40 * MHZ and pll is not None
    top = BoardTop("ulx3s-test", LoopbackInner)
    assert top.board is new and top.io is new.io
    board_platform("ulx3s-test").prepare(top)


# --------------------------------------------------------------------------------------------
# BoardTop on every board.

#: Where the host link's RX (FPGA input) and TX (FPGA output) are, per board.
UART_PINS = {
    "icebreaker": ("uart_0", "6", "9"),
    "ulx3s": ("uart_0", "M1", "L4"),
    "orangecrab": ("uart_0", "N17", "M18"),
    "colorlight": ("uart_1", "M13", "P11"),
}


def _uart_pins(name):
    return UART_PINS[name.split("-")[0]]


def _prepare(name, clock_hz=None, **inner_kw):
    top = BoardTop(name, lambda hz: LoopbackInner(hz, **inner_kw), clock_hz=clock_hz)
    plan = board_platform(name).prepare(top, name="top")
    return top, dict(plan.files)


@pytest.mark.parametrize("pll", [True, False], ids=["pll", "osc"])
@pytest.mark.parametrize("name", NAMES)
def test_board_top_elaborates(name, pll):
    b = board(name)
    if pll:
        # The board's default, or (OrangeCrab, whose default is its 48 MHz oscillator) 64 MHz.
        clock_hz = None if b.pll_mhz not in (None, b.clock_mhz) else 64 * MHZ
    else:
        clock_hz = b.clock_mhz * MHZ
    top, files = _prepare(name, clock_hz)
    assert (top.pll is not None) == pll
    assert top.inner.clk_hz == top.achieved_clock_hz
    il = files["top.il"]
    primitive = "SB_PLL40_PAD" if b.family == "ice40" else "EHXPLLL"
    assert (primitive in il) == pll
    res, rx, tx = _uart_pins(name)
    if b.family == "ice40":
        cons = files["top.pcf"]
        assert f"set_io {res}__rx__io {rx}\n" in cons and f"set_io {res}__tx__io {tx}\n" in cons
        assert "set_frequency clk12_0__io 12.0" in cons
    else:
        cons = files["top.lpf"]
        assert f'LOCATE COMP "{res}__rx__io" SITE "{rx}";' in cons
        assert f'LOCATE COMP "{res}__tx__io" SITE "{tx}";' in cons
        assert 'FREQUENCY PORT' in cons
    # Direction: the FPGA's tx is an output, rx an input.
    if b.family == "ice40":     # SB_IO ports are inout; the cell's pins tell the direction
        assert re.search(rf"connect \\D_IN_0 [^\n]+\n\s+connect \\PACKAGE_PIN \\{res}__rx__io", il)
        assert re.search(rf"connect \\D_OUT_0 [^\n]+\n\s+connect \\OUTPUT_ENABLE 1'1\n"
                         rf"\s+connect \\PACKAGE_PIN \\{res}__tx__io", il)
    else:
        assert re.search(rf"wire width 1 input \d+\s+\\{res}__rx__io\n", il)
        assert re.search(rf"wire width 1 output \d+\s+\\{res}__tx__io\n", il)
    # Every LED of the board is driven (8 bits of leds here).
    assert len(set(re.findall(r"(?:rgb_)?led_\w+__io", cons))) == b.leds


def test_board_top_pins_and_buttons():
    _, files = _prepare("icebreaker")
    pcf = files["top.pcf"]
    assert "set_io button_0__io 10" in pcf           # the user button resets sync
    for k, pin in enumerate([11, 37, 26, 27, 25, 23, 21]):
        assert f"set_io led_{k}__io {pin}" in pcf
    _, files = _prepare("ulx3s-25f")
    lpf = files["top.lpf"]
    assert 'LOCATE COMP "button_pwr_0__io" SITE "D6";' in lpf
    assert "rts" not in lpf and "dtr" not in lpf and "uart_tx_enable" not in lpf
    _, files = _prepare("orangecrab-85f")
    lpf = files["top.lpf"]
    assert 'IOBUF PORT "uart_0__rx__io" IO_TYPE=LVCMOS33 PULLMODE=UP;' in lpf
    for led, site in (("g", "M3"), ("b", "J3"), ("r", "K4")):
        assert f'LOCATE COMP "rgb_led_0__{led}__io" SITE "{site}";' in lpf
    # The button reloads the configuration (PROGRAMN) instead of resetting the design.
    assert 'LOCATE COMP "button_0__io" SITE "J17";' in lpf
    assert 'LOCATE COMP "program_0__io" SITE "V17";' in lpf
    _, files = _prepare("colorlight-5a75b")
    lpf = files["top.lpf"]
    assert 'IOBUF PORT "uart_1__rx__io" IO_TYPE=LVCMOS33 PULLMODE=UP;' in lpf
    assert "led_" not in lpf and "button_" not in lpf


def test_board_top_pll_parameters_reach_the_primitive():
    top, files = _prepare("icebreaker", 48 * MHZ)
    assert top.achieved_clock_hz == 48 * MHZ
    il = files["top.il"]
    for param, value in (("DIVR", 0), ("DIVF", 63), ("DIVQ", 4), ("FILTER_RANGE", 1)):
        assert re.search(rf"parameter \\{param} {value}\n", il), param
    assert 'parameter \\FEEDBACK_PATH "SIMPLE"' in il
    top, files = _prepare("ulx3s-85f", 65 * MHZ)
    il = files["top.il"]
    for param, value in (("CLKI_DIV", 5), ("CLKFB_DIV", 13), ("CLKOP_DIV", 9),
                         ("CLKOP_CPHASE", 4)):
        assert re.search(rf"parameter \\{param} {value}\n", il), param


def test_board_top_leds_narrower_than_board():
    _, files = _prepare("ulx3s-85f", led_bits=3)
    assert set(re.findall(r"led_\d__io", files["top.lpf"])) == {"led_0__io", "led_1__io",
                                                               "led_2__io"}


def test_board_top_achieved_clock_known_before_elaboration():
    seen = []

    def make(hz):
        seen.append(hz)
        return LoopbackInner(hz)

    top = BoardTop("ulx3s-45f", make, clock_hz=65.1 * MHZ)
    assert seen == [65 * MHZ] and top.achieved_clock_hz == 65 * MHZ
    assert top.requested_clock_hz == 65.1 * MHZ
    board_platform("ulx3s-45f").prepare(top)
    top = BoardTop("icebreaker", make)
    assert top.achieved_clock_hz == 24 * MHZ and top.pll["DIVQ"] == 5
    board_platform("icebreaker").prepare(top)


class _NoLeds(Elaboratable):
    def __init__(self, hz):
        self.rx, self.tx = Signal(init=1), Signal(init=1)

    def elaborate(self, platform):
        return Module()


class _WideLeds(_NoLeds):
    def __init__(self, hz):
        super().__init__(hz)
        self.leds = Signal(9)


@pytest.mark.parametrize("make, kwargs, error, match", [
    (_NoLeds, {}, TypeError, "no signal 'leds'"),
    (_WideLeds, {}, ValueError, r"'leds' must be 1\.\.8 bits wide, not 9"),
    (lambda hz: object(), {}, TypeError, "must return an Elaboratable"),
    (LoopbackInner, {"clock_hz": 300 * MHZ}, ValueError, "output range 16-275 MHz"),
])
def test_board_top_rejects(make, kwargs, error, match, unused_elaboratables):
    with unused_elaboratables() as found:
        with pytest.raises(error, match=match):
            BoardTop("icebreaker", make, **kwargs)
    # The refused inner top (the test's own) may be reported unused; the BoardTop never existed.
    assert not [msg for msg in found if "BoardTop" in msg]


def test_board_top_needs_a_platform(unused_elaboratables):
    top = BoardTop("icebreaker", LoopbackInner)
    with pytest.raises(TypeError, match="needs a platform"):
        top.elaborate(None)
    board_platform("icebreaker").prepare(top)
    with unused_elaboratables() as found:
        with pytest.raises(ValueError, match="unknown board 'nope'"):
            BoardTop("nope", LoopbackInner)
    assert found == []


# --------------------------------------------------------------------------------------------
# The host-link top on every board.

@pytest.mark.parametrize("name", sorted(BOARDS))
def test_host_link_top_elaborates_on_every_board(name, wm8):
    top = host_top(wm8, name, lanes=2)
    assert top.inner.divisor == round(top.achieved_clock_hz / top.board.uart_baud)
    plan = board_platform(name).prepare(top, name="top")
    files = dict(plan.files)
    assert "top.il" in files
    constraints = files.get("top.pcf") or files.get("top.lpf")
    assert constraints and "uart" in constraints


def test_soft_reset_takes_a_global_buffer_on_ecp5_unless_the_core_declines():
    """ECP5: the network core's soft reset goes through a DCCA; the stack core (routed with
    router2) takes it through the fabric; iCE40 has none."""
    from sim.randnet import random_network
    net = random_network(1, profile="stack")
    while net.layers[-1].spiking or len(net.layers) < 3:
        net = random_network(int(net.meta["seed"]) + 1, profile="stack")

    def rtlil(board_name, **knobs):
        top = host_top(net, board_name, lanes=2, **knobs)
        return dict(board_platform(board_name).prepare(top, name="top").files)["top.il"]

    assert "cell \\DCCA" in rtlil("ulx3s-85f")
    assert "DCCA" not in rtlil("ulx3s-85f", core="stack")
    assert "DCCA" not in rtlil("icebreaker")


def test_icebreaker_spram_top_loads_weights_from_flash(wm8):
    """SPRAM weights: the host-link top gets a flash loader and requests the flash pins."""
    top = host_top(wm8, "icebreaker", memories={"proj0.weights": "spram"})
    assert top.inner.loader is not None and top.inner.core.load_width > 0
    files = dict(board_platform("icebreaker").prepare(top, name="top").files)
    assert "spi_flash" in files["top.pcf"]


def test_host_link_refuses_impossible_baud(wm8):
    with pytest.raises(ValueError, match="baud"):
        host_top(wm8, "icebreaker", clock_hz=12e6, baud=4_000_000)
