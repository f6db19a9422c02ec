"""The lean core (:class:`rtl.lean.LeanCore`): the stack core's networks on one shared
datapath with the weights in the iCE40UP5K's SPRAM; measured in Amaranth's simulator."""

from __future__ import annotations

from model.ir import Network

from ..lean import LeanCore
from ..lean_layout import estimate
from ..pysim import run_lean_readout
from .base import Core

__all__ = ["LeanCoreSpec"]


class LeanCoreSpec(Core):
    component = LeanCore
    name = "lean"
    summary = ("the same networks on one shared datapath with SPRAM weights, for the "
               "iCE40UP5K (rtl.lean; lanes a power of two)")
    knobs = ("observe", "gate", "spram_cells")
    default_lanes = 2
    families = ("ice40",)
    measure = "amaranth"
    gated = True
    serial_readout = True

    def estimate(self, net: Network, *, family: str | None = None, device=None,
                 clock_mhz: float, lanes: int | None = None,
                 activity=None, cycles=None, **knobs):
        self.check_knobs(knobs)
        if cycles is None:
            raise ValueError("the lean core's estimate needs cycles measured in simulation")
        cps, cmax, steps = cycles
        return estimate(net, family=family, device=device, clock_mhz=clock_mhz,
                        lanes=self.lanes(lanes),
                        cycles_per_step=cps, cycles_max=cmax, steps_per_sample=steps)

    def lane_options(self, net: Network) -> tuple[int, ...]:
        """Powers of two only (the shared datapath's lane count)."""
        return tuple(p for p in super().lane_options(net) if p & (p - 1) == 0)

    def simulate(self, net: Network, x, *, lanes: int | None = None, **knobs):
        self.check_knobs(knobs)
        return run_lean_readout(net, x, lanes=self.lanes(lanes))
