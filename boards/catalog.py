"""The boards polychrony knows: FPGA family, board clock and the device's resources."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "board"]


@dataclass(frozen=True)
class Board:
    """A board as estimates and reports see it (the build top lives in its own module)."""

    name: str
    family: str              # "ice40" or "ecp5"
    device: str
    clock_mhz: float         # the board's oscillator
    resources: dict          # device budget: lut, bram, dsp (and spram on the UP5K)


BOARDS = {
    "icebreaker": Board("icebreaker", "ice40", "iCE40UP5K-SG48", 12.0,
                        {"lut": 5280, "bram": 30, "spram": 4, "dsp": 8}),
    "ulx3s-85f": Board("ulx3s-85f", "ecp5", "LFE5U-85F-6", 25.0,
                       {"lut": 83640, "bram": 208, "dsp": 156}),
}


def board(name: str) -> Board:
    """The board called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
