"""Every board polychrony builds for, one declarative entry each, in one registry: :data:`BOARDS`.

An entry (:class:`Board`) says everything about a board: its device (a key of
:data:`rtl.devices.DEVICES`, whose resources estimates and reports use), oscillator, default
core clock, UART baud, how the host reaches it, the pins the board top uses (:class:`BoardIO`)
and a zero-argument factory of its amaranth-boards platform. :mod:`boards.top`, the reports,
the command line and the benches ask this registry and nothing else.

Why the entries live here and not in the board modules: this module is plain data that
imports no Amaranth (the command line reads :data:`BOARDS` at start-up for ``--board``, and
estimates and reports need no platform), and a board whose amaranth-boards platform is usable
as it is needs no module at all (the ULX3S). A board module exists only for code the platform
needs (:mod:`boards.icebreaker`: the reset button and the break-off PMOD;
:mod:`boards.orangecrab`, :mod:`boards.colorlight`: the host-link UART they lack); the
factories below import it, or amaranth-boards, only when a platform is asked for.

Adding a board: one :class:`Board` in :data:`BOARDS` (plus its device in
:data:`rtl.devices.DEVICES` if it is new, and a module only if the platform needs code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from rtl.devices import DEVICES, Device

__all__ = ["Board", "BoardIO", "Programmer", "BOARDS", "board"]


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
class Programmer:
    """How openFPGALoader loads the board: its ``-b`` board name, the targets it can write
    (``sram``: lost at power-off; ``flash``: kept), the default, and whether the board has no
    programmer of its own (then a ``--cable`` must be named)."""

    loader_board: str
    modes: tuple[str, ...] = ("sram", "flash")
    default: str = "sram"
    needs_cable: bool = False
    how: str = ""            # for people: the USB port or adapter


@dataclass(frozen=True, kw_only=True)
class Board:
    """One board: its device, clock, host link, board-top pins and platform."""

    name: str                # what --board takes
    chip: str                # the FPGA: a key of rtl.devices.DEVICES
    part_suffix: str         # the rest of its part number: speed grade (ECP5) or package
    clock_mhz: float         # the board's oscillator
    pll_mhz: float | None = None   # default `sync` clock (None or clock_mhz: no PLL)
    uart_baud: int = 1_000_000
    host_link: str           # how the host talks to the board
    io: BoardIO              # what the board top connects (boards.top.BoardTop)
    programmer: Programmer   # how `polychrony program` loads a bitstream (openFPGALoader)
    platform: Callable[[], object] = field(repr=False, compare=False)
    notes: str = field(default="", compare=False)

    @property
    def fpga(self) -> Device:
        """The device record of :attr:`chip`."""
        return DEVICES[self.chip]

    @property
    def device(self) -> str:
        """The full part number, e.g. ``LFE5U-85F-6`` (device and speed grade)."""
        return f"{self.chip}-{self.part_suffix}"

    @property
    def family(self) -> str:
        """``"ice40"`` or ``"ecp5"``."""
        return self.fpga.family

    @property
    def resources(self) -> dict[str, int]:
        """The device's budget: ``lut``, ``bram``, ``dsp`` (and ``spram`` on the UP5K)."""
        return self.fpga.resources

    @property
    def leds(self) -> int:
        """LEDs the board top drives."""
        return len(self.io.leds)

    @property
    def osc_mhz(self) -> float:
        """The oscillator frequency (the same as :attr:`clock_mhz`)."""
        return self.clock_mhz

    @property
    def sync_mhz(self) -> float:
        """The default `sync` clock: the PLL target, or the oscillator without a PLL."""
        return self.clock_mhz if self.pll_mhz is None else self.pll_mhz


# Platform factories: each imports amaranth-boards (or the board's module) when called.

def _icebreaker():
    from .icebreaker import icebreaker_platform
    return icebreaker_platform()


def _ulx3s(size: str):
    from amaranth_boards import ulx3s
    return {"12F": ulx3s.ULX3S_12F_Platform, "25F": ulx3s.ULX3S_25F_Platform,
            "45F": ulx3s.ULX3S_45F_Platform, "85F": ulx3s.ULX3S_85F_Platform}[size]()


def _orangecrab(size: str):
    from .orangecrab import orangecrab_platform
    return orangecrab_platform(size)


def _colorlight():
    from .colorlight import colorlight_platform
    return colorlight_platform()


#: The host link is the FT2232H's channel B (amaranth-boards ``uart`` 0: FPGA RX = pin 6,
#: FPGA TX = pin 9), the user button resets ``sync``, and the inner top's ``leds`` bits go to:
#: 0 heartbeat -> green LED (``led`` 1), 1 busy -> a green LED of the break-off PMOD
#: (``led`` 3), 2 error -> red LED (``led`` 0), 3..6 -> the PMOD's ``led`` 2, 4, 5, 6 (skipped
#: when the PMOD is not attached).
ICEBREAKER = Board(
    name="icebreaker", chip="iCE40UP5K", part_suffix="SG48", clock_mhz=12.0, pll_mhz=24.0,
    host_link="FT2232H channel B (USB serial), up to 3 Mbaud",
    io=BoardIO(uart=("uart", 0),
               leds=(("led", 1, None), ("led", 3, None), ("led", 0, None), ("led", 2, None),
                     ("led", 4, None), ("led", 5, None), ("led", 6, None)),
               reset=("button", 0),
               uart_pins="FT2232H channel B: FPGA RX = pin 6, FPGA TX = pin 9"),
    # the FT2232H's channel A drives the SPI flash; the iCE40 boots from it
    programmer=Programmer("ice40_generic", modes=("flash",), default="flash",
                          how="the micro-USB port (FT2232H channel A, SPI flash)"),
    platform=_icebreaker)

#: The FT231X on the US1 USB port is the host link (amaranth-boards ``uart`` 0: FPGA RX = M1
#: from the FTDI's TXD, FPGA TX = L4 to its RXD; its DTR/RTS lines and ``uart_tx_enable`` are
#: left alone), LEDs 0..7 show the inner top's ``leds`` bits 0..7, and the PWR button
#: (``button_pwr``, active low) resets ``sync``.
ULX3S = [Board(
    name=f"ulx3s-{size.lower()}", chip=f"LFE5U-{size}", part_suffix="6", clock_mhz=25.0,
    pll_mhz=50.0, host_link="FT231X on the US1 USB port (USB serial), up to 3 Mbaud",
    io=BoardIO(uart=("uart", 0), leds=tuple(("led", k, None) for k in range(8)),
               reset=("button_pwr", 0),
               uart_pins="FT231X (US1): FPGA RX = M1, FPGA TX = L4"),
    programmer=Programmer("ulx3s", how="the US1 USB port (FT231X, JTAG)"),
    platform=partial(_ulx3s, size)) for size in ("12F", "25F", "45F", "85F")]

#: The host link is a UART that :mod:`boards.orangecrab` adds on the Feather header
#: (``uart`` 0); the RGB LED shows green = heartbeat, blue = busy, red = error; the user button
#: reloads the configuration (back to the DFU bootloader) instead of resetting the design.
ORANGECRAB = [Board(
    name=f"orangecrab-{size.lower()}", chip=f"LFE5U-{size}", part_suffix="8", clock_mhz=48.0,
    host_link=("3.3 V USB-serial cable on the Feather header: FPGA RX = pin '0' (N17), "
               "FPGA TX = pin '1' (M18), GND"),
    io=BoardIO(uart=("uart", 0),
               leds=(("rgb_led", 0, "g"), ("rgb_led", 0, "b"), ("rgb_led", 0, "r")),
               reboot=(("button", 0), ("program", 0)),
               uart_pins="Feather header: FPGA RX = '0' (N17), FPGA TX = '1' (M18); 3.3 V levels"),
    # its DFU bootloader (hold the button while plugging in) writes the flash
    programmer=Programmer("orangeCrab", modes=("flash",), default="flash",
                          how="USB-C, in its DFU bootloader (hold the button while plugging "
                              "in)"),
    platform=partial(_orangecrab, size)) for size in ("25F", "85F")]

#: The host link is the UART :mod:`boards.colorlight` adds on J19 (``uart`` 1), on the nets of
#: the board's only LED and button: the board top drives no LED and has no reset button.
COLORLIGHT = Board(
    name="colorlight-5a75b", chip="LFE5U-25F", part_suffix="6", clock_mhz=25.0, pll_mhz=50.0,
    host_link=("3.3 V USB-serial cable on J19: FPGA RX = J19 pin 2 (M13, the KEY button's "
               "net), FPGA TX = J19 pin 5 (P11, the LED's net), GND"),
    io=BoardIO(uart=("uart", 1), leds=(),
               uart_pins="J19: FPGA RX = pin 2 (M13, button net), FPGA TX = pin 5 (P11, LED "
                         "net); 3.3 V"),
    programmer=Programmer("colorlight", needs_cable=True,
                          how="a JTAG adapter on its JTAG pads (it has no USB programmer)"),
    platform=_colorlight,
    notes="the host link takes the board's only LED and button")

#: Every board by the name ``--board`` takes.
BOARDS: dict[str, Board] = {b.name: b for b in (ICEBREAKER, *ULX3S, *ORANGECRAB, COLORLIGHT)}


def board(name: str) -> Board:
    """The board called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return BOARDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
