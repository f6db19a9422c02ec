"""LIF update unit: one neuron's leak, integration, saturation, threshold and reset."""

from __future__ import annotations

from amaranth.hdl import C, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.ir import LIFLayer

__all__ = ["LIFUnit"]


class LIFUnit(wiring.Component):
    """Combinational LIF update of one lane (reference: :func:`sim.units.lif_update`).

    ``leak=False`` builds the second half only (the core registers the leak a stage earlier).

    ``u = (beta * v) >> beta_shift`` (floor), ``v_hat = sat(u + i_in)``, ``spike = v_hat >=
    threshold`` (never for a read-out), ``v_new`` after the layer's reset. ``i_in`` is
    ``i_width`` bits wide, so callers may pass a partial sum wider than ``acc_bits``.
    """

    def __init__(self, layer: LIFLayer, *, i_width: int, leak: bool = True,
                 fault: str | None = None):
        self.layer = layer
        self.leak = leak
        self.fault = fault
        super().__init__({
            # With leak=False the caller has applied the leak already: `v` is u.
            "v": In(signed(layer.v_bits + (0 if leak else 1))),
            "i_in": In(signed(i_width)),
            "v_new": Out(signed(layer.v_bits)),
            "spike": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        beta = C(layer.beta, signed(layer.beta.bit_length() + 1))
        # signed: arithmetic shift = floor
        u = (beta * self.v) >> layer.beta_shift if self.leak else self.v
        total = u + self.i_in
        v_hat = Mux(total > layer.v_max, layer.v_max, Mux(total < layer.v_min, layer.v_min, total))
        if layer.spiking:
            if self.fault == "threshold>":
                spike = v_hat > layer.threshold
            else:
                spike = v_hat >= layer.threshold
            m.d.comb += self.spike.eq(spike)
            if layer.reset == "zero":
                m.d.comb += self.v_new.eq(Mux(spike, 0, v_hat))
            else:
                m.d.comb += self.v_new.eq(Mux(spike, v_hat - layer.threshold, v_hat))
        else:
            m.d.comb += self.v_new.eq(v_hat)
        return m
