"""The network core (:class:`rtl.core.NetworkCore`): every IR network, weights in block RAM,
SPRAM or loaded RAM, with an exact cycle model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from model.ir import Network

from ..core import NetworkCore
from ..cost import estimate
from .base import Core

__all__ = ["NetworkCoreSpec"]


class NetworkCoreSpec(Core):
    component = NetworkCore
    name = "network"
    summary = "every IR network (rtl.core)"
    knobs = ("family", "device", "fault", "bank_depth", "memories", "spram_cells",
             "loaded_cells", "replicate")
    default_lanes = 1
    measure = "model"

    def estimate(self, net: Network, *, family: str | None = None, device=None,
                 clock_mhz: float, lanes: int | None = None,
                 activity=None, cycles=None, **knobs):
        """One estimate per sample of ``activity``, cycles per step averaged over them."""
        knobs = self.check_knobs(knobs)
        if not activity:
            raise ValueError("the network core's estimate needs the activity of a workload")
        lanes = self.lanes(lanes)
        ests = [estimate(net, a, family=family, device=device, clock_mhz=clock_mhz,
                         lanes=lanes, memories=knobs.get("memories")) for a in activity]
        if len(ests) == 1:
            return ests[0]
        return replace(ests[0], cycles_per_step=float(np.mean([e.cycles_per_step for e in ests])),
                       cycles_max=max(e.cycles_max for e in ests))
