"""The report of a board build: estimate against nextpnr, and the speed at the achieved clock.

:func:`board_report` combines the pre-synthesis estimate (:func:`rtl.cost.estimate`, which
also gives cycles per timestep from simulated activity) with a :class:`~boards.build.BuildResult`
and returns a :class:`BoardReport`, printable in the terminal, as JSON or as a Markdown table
row.
"""

from __future__ import annotations

from dataclasses import dataclass

from .build import BuildResult
from .catalog import Board

__all__ = ["BoardReport", "board_report", "MARKDOWN_HEADER"]



@dataclass(frozen=True)
class BoardReport:
    """One network built for one board."""

    network: str
    board: Board
    lanes: int
    clock_mhz: float          # the clock the bitstream runs at (oscillator or PLL)
    fmax_mhz: float | None    # nextpnr's post-route maximum of that clock
    timing_met: bool
    estimate: dict            # rtl.cost.Estimate.to_json()
    used: dict                # resource -> (used, available) from nextpnr
    cycles_per_step: float
    steps_per_sample: int
    bitstream: str
    build_seconds: float

    @property
    def steps_per_s(self) -> float:
        """Timesteps per second at the clock the bitstream runs at."""
        return self.clock_mhz * 1e6 / self.cycles_per_step

    @property
    def steps_per_s_fmax(self) -> float | None:
        """... and at the post-route Fmax (a build whose PLL is set to it)."""
        return None if not self.fmax_mhz else self.fmax_mhz * 1e6 / self.cycles_per_step

    @property
    def samples_per_s(self) -> float:
        return self.steps_per_s / self.steps_per_sample

    @property
    def samples_per_s_fmax(self) -> float | None:
        s = self.steps_per_s_fmax
        return None if s is None else s / self.steps_per_sample

    def to_json(self) -> dict:
        return {"network": self.network, "board": self.board.name, "device": self.board.device,
                "lanes": self.lanes, "clock_mhz": round(self.clock_mhz, 3),
                "fmax_mhz": None if self.fmax_mhz is None else round(self.fmax_mhz, 2),
                "timing_met": self.timing_met,
                "estimate": self.estimate, "lut_estimate_with_link": self.lut_estimate,
                "nextpnr": {k: {"used": u, "available": a} for k, (u, a) in self.used.items()},
                # unrounded: the table is re-rendered from this record (from_json), and its
                # rates must be the record's
                "cycles_per_step": float(self.cycles_per_step),
                "steps_per_sample": self.steps_per_sample,
                "steps_per_s": round(self.steps_per_s, 1),
                "samples_per_s": round(self.samples_per_s, 2),
                "steps_per_s_at_fmax": None if self.steps_per_s_fmax is None
                else round(self.steps_per_s_fmax, 1),
                "samples_per_s_at_fmax": None if self.samples_per_s_fmax is None
                else round(self.samples_per_s_fmax, 2),
                "bitstream": self.bitstream, "build_seconds": round(self.build_seconds, 1)}

    @property
    def lut_estimate(self) -> int:
        """The core's estimate plus the host link's (:func:`boards.fit.link_cost`)."""
        from .fit import link_cost
        return self.estimate["lut"] + link_cost(self.board.family, self.lanes)["lut"]

    @classmethod
    def from_json(cls, d: dict) -> "BoardReport":
        """The report of :meth:`to_json` output (to re-render stored results)."""
        from .catalog import board
        return cls(d["network"], board(d["board"]), d["lanes"], d["clock_mhz"], d["fmax_mhz"],
                   d["timing_met"], d["estimate"],
                   {k: (v["used"], v["available"]) for k, v in d["nextpnr"].items()},
                   d["cycles_per_step"], d["steps_per_sample"], d["bitstream"],
                   d["build_seconds"])

    def _side(self) -> list[tuple[str, object, object, object]]:
        e = self.estimate
        rows = [("logic (LUT4)", self.lut_estimate, *self.used.get("logic", (None, None))),
                ("block RAM", e["blocks_total"], *self.used.get("bram", (None, None))),
                ("multipliers", e["dsp"], *self.used.get("dsp", (None, None)))]
        if "spram" in self.used or e.get("spram_total"):
            rows.append(("SPRAM", e.get("spram_total", 0), *self.used.get("spram", (None, None))))
        return rows

    def text(self) -> str:
        """The terminal report."""
        lines = [f"{self.network} on {self.board.name} ({self.board.device}), lanes "
                 f"{self.lanes}: {self.bitstream} in {self.build_seconds:.0f} s",
                 f"  {'':<14} {'estimate':>9} {'nextpnr':>9} {'device':>9}"]
        for name, est, used, avail in self._side():
            lines.append(f"  {name:<14} {est:>9} {'-' if used is None else used:>9} "
                         f"{'-' if avail is None else avail:>9}")
        fmax = "-" if self.fmax_mhz is None else f"{self.fmax_mhz:.1f}"
        lines.append(f"  clock {self.clock_mhz:g} MHz, post-route Fmax {fmax} MHz"
                     + ("" if self.timing_met else "  (TIMING NOT MET)"))
        lines.append(f"  {self.cycles_per_step:.0f} cycles/step: {self.steps_per_s:,.0f} "
                     f"steps/s, {self.samples_per_s:,.1f} samples/s of "
                     f"{self.steps_per_sample} steps at {self.clock_mhz:g} MHz")
        if self.steps_per_s_fmax is not None:
            lines.append(f"  at the Fmax: {self.steps_per_s_fmax:,.0f} steps/s, "
                         f"{self.samples_per_s_fmax:,.1f} samples/s")
        return "\n".join(lines)

    def markdown_row(self) -> str:
        """A row of :data:`MARKDOWN_HEADER`."""
        def ua(key):
            u, a = self.used.get(key, (None, None))
            return "-" if u is None else f"{u} / {a}"
        e = self.estimate
        fmax = "-" if self.fmax_mhz is None else f"{self.fmax_mhz:.1f}"
        if not self.timing_met:
            fmax += " (not met)"
        spram = ua("spram") if "spram" in self.used else "-"
        return (f"| {self.network} | {self.board.name} | {self.lanes} | {self.lut_estimate:,} | "
                f"{ua('logic')} | {e['blocks_total']} | {ua('bram')} | {spram} | {ua('dsp')} | "
                f"{self.clock_mhz:g} | {fmax} | {self.cycles_per_step:,.0f} | "
                f"{self.steps_per_s:,.0f} | {self.samples_per_s:,.1f} |")


MARKDOWN_HEADER = (
    "| network | board | lanes | LUT4 est. | LUT4 nextpnr | BRAM est. | BRAM nextpnr | SPRAM | "
    "multipliers | clock MHz | Fmax MHz | cycles/step | steps/s | samples/s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def board_report(network: str, b: Board, est, res: BuildResult, *, clock_mhz: float
                 ) -> BoardReport:
    """The report of build ``res`` of network ``network`` on board ``b`` with estimate
    ``est`` (an :class:`rtl.cost.Estimate`) and the bitstream's clock ``clock_mhz``."""
    used = {k: (u.used, u.available) for k, u in res.resources.items()}
    return BoardReport(network, b, est.lanes, clock_mhz, res.fmax_mhz, res.timing_met,
                       est.to_json(), used, est.cycles_per_step, est.steps_per_sample,
                       str(res.bitstream), res.seconds)
