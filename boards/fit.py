"""Does a design fit a board? The core's estimate plus the host link, against the device.

:func:`board_fit` adds what the host link costs around a core (:func:`link_cost`) to an
:class:`rtl.cost.Estimate` and compares every resource with the board's device
(:attr:`boards.catalog.Board.fpga`, one record per device, so a ULX3S-12F is judged as a 12F).
Each resource gets a verdict: ``fits``, ``tight`` (logic that fits with less than :data:`MARGIN`
of the device's LUTs left, so place and route may still fail; hard blocks — block RAM, SPRAM,
multipliers — fit until every one is used) or ``does not fit``; the design's verdict is the
worst of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtl.devices import Device

from .catalog import Board
from rtl.calibration import calibration

__all__ = ["MARGIN", "Need", "Fit", "board_fit", "link_cost", "placement_options", "SPREAD",
           "VERDICTS"]

#: Logic above ``1 - MARGIN`` of the device's LUTs is ``tight``.
MARGIN = 0.10

#: The resources that can be ``tight`` (the others are discrete blocks: all of them fit).
ROUTED = ("lut",)

#: Verdicts from best to worst.
VERDICTS = ("fits", "tight", "does not fit")

#: Resource keys (as :attr:`rtl.devices.Device.resources` names them) and what people call them.
LABELS = {"lut": "logic (LUT4)", "bram": "block RAM", "spram": "SPRAM", "dsp": "multipliers"}

#: Per family: (share of the device's LUTs, nextpnr options). A design whose estimated logic
#: (with the host link) is at most that share is placed with those options. On the iCE40 the
#: heap placer's density goes from 0.9 to 0.8: the critical paths of a design that leaves
#: room are mostly routing, and a less crowded placement shortens them; a nearly full design
#: has no room to spread and is left at the default (docs/hardware.md#timing).
SPREAD = {"ice40": (0.80, "--placer-heap-beta 0.8")}


def placement_options(fit: "Fit", opts: str = "") -> str:
    """nextpnr options ``opts`` with the placement options for a design with ``fit``
    (:data:`SPREAD`) added, unless ``opts`` already set the heap placer."""
    rule = SPREAD.get(fit.device.family)
    lut = fit.need("lut")
    if rule is None or lut is None or lut.used > rule[0] * lut.available \
            or "--placer-heap" in opts:
        return opts
    return f"{opts} {rule[1]}".strip()


def link_cost(family: str, lanes: int) -> dict[str, int]:
    """What the host link adds to a core of ``lanes`` lanes on ``family``: its logic (a fixed
    part and a part per lane: the response encoder handles every lane of a record) and one
    block RAM, the frame buffer that also holds the IDENT reply (``link`` of
    ``rtl/calibration.json``)."""
    c = calibration()["link"][family]
    return {"lut": int(round(c["lut"] + c["lut_per_lane"] * lanes)), "bram": int(c["bram"])}


@dataclass(frozen=True)
class Need:
    """One resource: what the design needs and what the device has."""

    resource: str         # a key of LABELS
    used: int
    available: int

    @property
    def label(self) -> str:
        return LABELS[self.resource]

    @property
    def verdict(self) -> str:
        if self.used > self.available:
            return "does not fit"
        if self.resource in ROUTED and self.used > (1 - MARGIN) * self.available:
            return "tight"
        return "fits"

    @property
    def share(self) -> float:
        """``used`` as a fraction of ``available`` (inf when the device has none)."""
        return self.used / self.available if self.available else float("inf")

    def to_json(self) -> dict:
        return {"used": self.used, "available": self.available, "verdict": self.verdict}


@dataclass(frozen=True)
class Fit:
    """Every resource of a design against one device, and the design's verdict."""

    device: Device
    needs: tuple[Need, ...]

    @property
    def verdict(self) -> str:
        """The worst verdict of any resource."""
        return max((n.verdict for n in self.needs), key=VERDICTS.index, default="fits")

    @property
    def fits(self) -> bool:
        """Whether every resource fits (``tight`` ones too)."""
        return self.verdict != "does not fit"

    def need(self, resource: str) -> Need | None:
        """The :class:`Need` of ``resource`` (a key of ``LABELS``), None when not counted."""
        return next((n for n in self.needs if n.resource == resource), None)

    @property
    def failing(self) -> list[Need]:
        """The resources that do not fit, the most over first."""
        return sorted((n for n in self.needs if n.verdict == "does not fit"),
                      key=lambda n: -n.share)

    def line(self) -> str:
        """One sentence for people: the verdict, and what fails or is tight by how much."""
        dev = self.device.label
        if not self.fits:
            parts = [f"{n.label} needs {n.used:,} of {n.available:,} "
                     f"({n.used - n.available:,} over{_times(n)})" for n in self.failing]
            return f"does not fit the {dev}: " + "; ".join(parts)
        tight = [n for n in self.needs if n.verdict == "tight"]
        if tight:
            parts = [f"{n.label} {n.used:,} of {n.available:,} ({n.share:.0%})" for n in tight]
            return (f"fits the {dev} with less than {MARGIN:.0%} margin: " + "; ".join(parts)
                    + " (place and route may fail)")
        worst = max(self.needs, key=lambda n: n.share)
        return f"fits the {dev} (fullest: {worst.label}, {worst.share:.0%})"

    def to_json(self) -> dict:
        return {"device": self.device.name, "verdict": self.verdict,
                "resources": {n.resource: n.to_json() for n in self.needs}}


def _times(n: Need) -> str:
    """``", 3.1x the device"`` for a need of at least twice the device, else nothing."""
    return f", {n.share:.1f}x the device" if n.share >= 2 else ""


def board_fit(est, b: Board, *, link: bool = True) -> Fit:
    """The fit on board ``b`` of a core with estimate ``est`` (an :class:`rtl.cost.Estimate`),
    with the host link around it unless ``link=False``."""
    dev = b.fpga
    extra = link_cost(dev.family, est.lanes) if link else {}
    used = {"lut": est.lut, "bram": sum(est.blocks.values()),
            "spram": sum(est.spram.values()), "dsp": est.dsp}
    needs = []
    for key, available in dev.resources.items():
        needs.append(Need(key, int(used.get(key, 0) + extra.get(key, 0)), int(available)))
    # A resource the device lacks but the design needs (SPRAM on an ECP5) cannot fit.
    for key in used:
        if key not in dev.resources and used[key]:
            needs.append(Need(key, int(used[key]), 0))
    return Fit(dev, tuple(needs))
