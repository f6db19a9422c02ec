"""The stack core (:class:`rtl.stack.StackCore`): layered audio networks, one pipeline stage
per layer, weight rows in block RAM; measured by co-simulating its Verilog."""

from __future__ import annotations

from model.ir import Network

from ..stack import StackCore
from ..stack_plan import estimate
from .base import Core

__all__ = ["StackCoreSpec"]


class StackCoreSpec(Core):
    component = StackCore
    name = "stack"
    summary = "the layer-pipelined core for layered audio networks (rtl.stack)"
    knobs = ("rows", "observe", "gate")
    default_lanes = 16
    measure = "verilator"
    gated = True
    # The stack core fills most of a large part: nextpnr's router2 routes it in minutes where
    # the default router crawls.
    nextpnr_opts = "--router router2"

    def knob_options(self, net: Network) -> tuple[dict, ...]:
        """The default rows (:func:`rtl.stack_plan.auto_rows`), and 2 or 4 rows per cycle in
        every layer above the first whose default is fewer (the wide ones)."""
        from ..stack_plan import auto_rows
        out = [{}]
        for r in (2, 4):
            wide = {l: r for l in range(2, len(net.layers)) if auto_rows(net.layers[l].n) < r}
            if wide:
                out.append({"rows": wide})
        return tuple(out)

    def wiring(self, net: Network, *, lanes: int, rows=None, **knobs) -> int:
        """Every weight row the layers read per cycle (rows per cycle x n weights, summed over
        the layers, whatever the lanes): the layers run at once, each row feeding all of its
        layer's accumulators."""
        from ..stack_plan import row_bits, rows_per_cycle, stack_plan
        R = rows_per_cycle(net, rows)
        return sum(R[pl.layer] * row_bits(net, pl) for pl in stack_plan(net))

    def estimate(self, net: Network, *, family: str | None = None, device=None,
                 clock_mhz: float, lanes: int | None = None,
                 activity=None, cycles=None, **knobs):
        knobs = self.check_knobs(knobs)
        if cycles is None:
            raise ValueError("the stack core's estimate needs cycles measured in co-simulation")
        cps, cmax, steps = cycles
        return estimate(net, family=family, device=device, clock_mhz=clock_mhz,
                        lanes=self.lanes(lanes),
                        cycles_per_step=cps, cycles_max=cmax, steps_per_sample=steps,
                        rows=knobs.get("rows"), observe=knobs.get("observe"))
