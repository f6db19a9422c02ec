"""The boards polychrony knows: FPGA family, board clock, the device's resources, host link.

This module is plain data (no Amaranth), so estimates and reports can use it cheaply. Each
board's pins live in its own module (``module``): a platform factory
``platform(variant)`` and a :class:`BoardIO` named ``BOARD_IO`` (or ``BOARD_IO[variant]``),
which :mod:`boards.top` puts around a platform-independent inner top.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Board", "BoardIO", "BOARDS", "board"]


@dataclass(frozen=True)
class BoardIO:
    """Which platform resources a board top uses (names as in the board's platform).

    * ``uart``: (resource, number) of the host link; its ``rx`` subsignal is the FPGA's input,
      ``tx`` its output.
    * ``leds``: the LEDs for bits 0, 1, 2, ... of the inner top's ``leds`` (bit 0 heartbeat,
      1 busy, 2 error), each (resource, number, subsignal or None).
    * ``reset``: (resource, number) of a button that resets ``sync`` while pressed, or None.
    * ``reboot``: ((button resource, number), (program resource, number)): a button that
      reloads the FPGA's configuration (OrangeCrab: back to its DFU bootloader), or None.
    * ``uart_pins``: where the host link is, for people.
    """

    uart: tuple[str, int]
    leds: tuple[tuple[str, int, str | None], ...]
    reset: tuple[str, int] | None = None
    reboot: tuple[tuple[str, int], tuple[str, int]] | None = None
    uart_pins: str = ""


@dataclass(frozen=True)
class Board:
    """A board as estimates and reports see it (the build top lives in its own module)."""

    name: str
    family: str              # "ice40" or "ecp5"
    device: str
    clock_mhz: float         # the board's oscillator
    resources: dict          # device budget: lut, bram, dsp (and spram on the UP5K)
    host_link: str = ""      # how the host talks to the board
    uart_baud: int = 1_000_000
    pll_mhz: float | None = None   # default `sync` clock (None or clock_mhz: no PLL)
    module: str = ""         # the board module: platform factory and BOARD_IO
    variant: str | None = None     # argument of the module's platform factory
    leds: int = 0            # LEDs the board top drives
    notes: str = field(default="", compare=False)

    @property
    def osc_mhz(self) -> float:
        """The oscillator frequency (the same as :attr:`clock_mhz`)."""
        return self.clock_mhz

    @property
    def sync_mhz(self) -> float:
        """The default `sync` clock: the PLL target, or the oscillator without a PLL."""
        return self.clock_mhz if self.pll_mhz is None else self.pll_mhz


_FTDI_ICEBREAKER = "FT2232H channel B (USB serial), up to 3 Mbaud"
_FTDI_ULX3S = "FT231X on the US1 USB port (USB serial), up to 3 Mbaud"
_CABLE_ORANGECRAB = ("3.3 V USB-serial cable on the Feather header: FPGA RX = pin '0' (N17), "
                     "FPGA TX = pin '1' (M18), GND")
_CABLE_COLORLIGHT = ("3.3 V USB-serial cable on J19: FPGA RX = J19 pin 2 (M13, the KEY "
                     "button's net), FPGA TX = J19 pin 5 (P11, the LED's net), GND")

# Device budgets. iCE40UP5K: data sheet (5280 LUT4, 30 EBR of 4 kbit, 4 SPRAM of 256 kbit,
# 8 DSP). ECP5 (FPGA-DS-02012, table 1.1): 12F 12K LUT / 32 EBR / 28 18x18 multipliers,
# 25F 24K / 56 / 28, 45F 44K / 108 / 72, 85F 84K / 208 / 156; the exact LUT counts of the 25F,
# 45F and 85F are what nextpnr reports as available (24288, 43848, 83640). The 12F is a 25F
# die limited to 12K LUTs: the figure here is the data sheet's, nextpnr's may differ.
_ECP5 = {
    "12F": {"lut": 12000, "bram": 32, "dsp": 28},
    "25F": {"lut": 24288, "bram": 56, "dsp": 28},
    "45F": {"lut": 43848, "bram": 108, "dsp": 72},
    "85F": {"lut": 83640, "bram": 208, "dsp": 156},
}

BOARDS = {
    "icebreaker": Board("icebreaker", "ice40", "iCE40UP5K-SG48", 12.0,
                        {"lut": 5280, "bram": 30, "spram": 4, "dsp": 8},
                        host_link=_FTDI_ICEBREAKER, pll_mhz=24.0, module="boards.icebreaker",
                        leds=7),
    **{f"ulx3s-{size.lower()}": Board(f"ulx3s-{size.lower()}", "ecp5", f"LFE5U-{size}-6", 25.0,
                                      dict(_ECP5[size]), host_link=_FTDI_ULX3S, pll_mhz=50.0,
                                      module="boards.ulx3s", variant=size, leds=8)
       for size in ("12F", "25F", "45F", "85F")},
    **{f"orangecrab-{size.lower()}": Board(f"orangecrab-{size.lower()}", "ecp5",
                                           f"LFE5U-{size}-8", 48.0, dict(_ECP5[size]),
                                           host_link=_CABLE_ORANGECRAB, pll_mhz=None,
                                           module="boards.orangecrab", variant=size, leds=3)
       for size in ("25F", "85F")},
    "colorlight-5a75b": Board("colorlight-5a75b", "ecp5", "LFE5U-25F-6", 25.0,
                              dict(_ECP5["25F"]), host_link=_CABLE_COLORLIGHT, pll_mhz=50.0,
                              module="boards.colorlight", leds=0,
                              notes="the host link takes the board's only LED and button"),
}


def board(name: str) -> Board:
    """The board called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
