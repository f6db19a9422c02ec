"""The FPGA devices the boards carry and what each holds (plain data, no Amaranth).

One :class:`Device` per device, keyed in :data:`DEVICES` by its part name without speed grade
or package (those are the board's: :attr:`boards.catalog.Board.device`). The per-family
geometry (block RAM configurations, SPRAM shape, memory kinds) is :mod:`rtl.families`'s; the
numbers here are counts of blocks. Planning for one device asks :func:`target` (a board's
device, or the largest device of a family when only the family is known).

Sources. iCE40UP5K: the iCE40 UltraPlus data sheet (5280 LUT4, 30 EBR of 4 kbit, 4 SPRAM of
256 kbit, 8 DSP). ECP5 (FPGA-DS-02012, table 1.1): 12F 12K LUT / 32 EBR / 28 18x18
multipliers, 25F 24K / 56 / 28, 45F 44K / 108 / 72, 85F 84K / 208 / 156; the exact LUT counts
of the 25F, 45F and 85F are what nextpnr reports as available (24288, 43848, 83640). The 12F
is a 25F die limited to 12K LUTs: the figure here is the data sheet's, nextpnr's may differ.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Device", "DEVICES", "device", "largest", "target", "planned"]


@dataclass(frozen=True)
class Device:
    """One FPGA device: its family and how many of each resource it has."""

    name: str       # part name without speed grade or package: "LFE5U-85F", "iCE40UP5K"
    label: str      # what people and messages call it: "ECP5-85F", "iCE40UP5K"
    family: str     # "ice40" or "ecp5" (a key of rtl.families.FAMILIES)
    lut: int        # LUT4s
    bram: int       # block RAMs (iCE40 EBR, ECP5 DP16KD)
    spram: int      # iCE40 UltraPlus SPRAM blocks (0 on ECP5)
    dsp: int        # multipliers (iCE40 SB_MAC16, ECP5 18x18)

    @property
    def resources(self) -> dict[str, int]:
        """The budget as the board reports show it: ``lut``, ``bram``, ``dsp``, and ``spram``
        on devices that have SPRAM (a fresh dict each time)."""
        spram = {"spram": self.spram} if self.spram else {}
        return {"lut": self.lut, "bram": self.bram, **spram, "dsp": self.dsp}


#: Every device a board of :mod:`boards.catalog` carries, by :attr:`Device.name`.
DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("iCE40UP5K", "iCE40UP5K", "ice40", lut=5280, bram=30, spram=4, dsp=8),
    Device("LFE5U-12F", "ECP5-12F", "ecp5", lut=12000, bram=32, spram=0, dsp=28),
    Device("LFE5U-25F", "ECP5-25F", "ecp5", lut=24288, bram=56, spram=0, dsp=28),
    Device("LFE5U-45F", "ECP5-45F", "ecp5", lut=43848, bram=108, spram=0, dsp=72),
    Device("LFE5U-85F", "ECP5-85F", "ecp5", lut=83640, bram=208, spram=0, dsp=156),
)}


def device(name: str) -> Device:
    """The device called ``name``; ``ValueError`` naming the known ones otherwise."""
    return _lookup(name)


def _lookup(name: str) -> Device:
    try:
        return DEVICES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown device {name!r}; known devices: "
                         f"{', '.join(DEVICES)}") from None


def largest(family: str) -> Device:
    """The largest device of ``family`` that a board carries (most LUTs, then block RAM)."""
    found = [d for d in DEVICES.values() if d.family == family]
    if not found:
        raise ValueError(f"no device of family {family!r}; families: "
                         f"{', '.join(sorted({d.family for d in DEVICES.values()}))}")
    return max(found, key=lambda d: (d.lut, d.bram, d.spram))


def target(family: str | None = None, device: str | Device | None = None) -> Device | None:
    """The device a plan is made for: ``device`` (a :class:`Device` or a name of
    :data:`DEVICES`) when given, and then ``family``, if given too, must be its family; else
    the largest device of ``family``; else None (generic Verilog for simulation, no budget)."""
    if device is not None:
        dev = device if isinstance(device, Device) else _lookup(device)
        if family is not None and family != dev.family:
            raise ValueError(f"device {dev.name} is of family {dev.family!r}, not {family!r}")
        return dev
    return None if family is None else largest(family)


def planned(family: str | None = None, device: str | Device | None = None) -> Device:
    """:func:`target` where a device is required (an estimate): ``ValueError`` when neither
    ``family`` nor ``device`` is given, or when they name none."""
    dev = target(family, device)
    if dev is None:
        raise ValueError("an estimate needs a device or a family")
    return dev
