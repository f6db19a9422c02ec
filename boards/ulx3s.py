"""ULX3S (ECP5 12F/25F/45F/85F) board top: the iCEBreaker's schedule player and LED top."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from amaranth_boards import ulx3s

from model.ir import Network
from .build import BuildResult, build
from .catalog import BoardIO
from .icebreaker import IcebreakerTop, Schedule

__all__ = ["SIZES", "BOARD_IO", "ulx3s_platform", "platform", "build_ulx3s"]

SIZES = ("12F", "25F", "45F", "85F")

#: Board-top pins (see :mod:`boards.top`): the FT231X on the US1 USB port is the host link
#: (amaranth-boards ``uart`` 0: FPGA RX = M1 from the FTDI's TXD, FPGA TX = L4 to its RXD;
#: its DTR/RTS lines and ``uart_tx_enable`` are left alone), LEDs 0..7 show the inner top's
#: ``leds`` bits 0..7, and the PWR button (``button_pwr``, active low) resets ``sync``.
BOARD_IO = BoardIO(
    uart=("uart", 0),
    leds=tuple(("led", k, None) for k in range(8)),
    reset=("button_pwr", 0),
    uart_pins="FT231X (US1): FPGA RX = M1, FPGA TX = L4",
)


def ulx3s_platform(size: str = "85F"):
    """The amaranth-boards ULX3S platform of ECP5 ``size`` (25 MHz clock, 8 LEDs)."""
    if size not in SIZES:
        raise ValueError(f"ULX3S size must be one of {SIZES}, got {size!r}")
    return getattr(ulx3s, f"ULX3S_{size}_Platform")()


def platform(variant: str | None = None):
    """The board's platform (catalog entry point): :func:`ulx3s_platform` of size
    ``variant`` (default 85F)."""
    return ulx3s_platform("85F" if variant is None else variant)


def build_ulx3s(net: Network, *, build_dir: str | Path, size: str = "85F",
                schedule: Schedule | None = None, step_hz: float | None = 8.0,
                show: Sequence[int] | None = None, seed: int = 1,
                timing_allow_fail: bool = False, **core_knobs) -> BuildResult:
    """Build a ULX3S bitstream of ``net`` replaying ``schedule``: LED 0 any spike, LED 1 the
    step heartbeat, LEDs 2..6 neurons ``show`` of layer 1 (see :class:`IcebreakerTop`, whose
    logic is board-independent); the core's weight memories are banked for ECP5 block RAM
    unless ``family`` says otherwise."""
    core_knobs.setdefault("family", "ecp5")
    return build(lambda: IcebreakerTop(net, schedule, step_hz=step_hz, show=show, **core_knobs),
                 ulx3s_platform(size), build_dir=build_dir, seed=seed,
                 timing_allow_fail=timing_allow_fail)
