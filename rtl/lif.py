"""LIF update unit: one neuron's leak, integration, saturation, threshold and reset."""

from __future__ import annotations

from typing import Literal

from amaranth.hdl import C, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.ir import LIFLayer

__all__ = ["LIFUnit", "saturate"]


def saturate(x, bits: int):
    """``x`` clamped to the signed range of ``bits`` bits."""
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


class LIFUnit(wiring.Component):
    """Combinational LIF update of one lane (reference: :func:`sim.units.lif_update`).

    ``u = (beta * v) >> beta_shift`` (floor), ``v_hat = sat(u + i_in)``, ``spike = v_hat >=
    threshold`` (never for a read-out), ``v_new`` after the layer's reset. ``i_in`` is
    ``i_width`` bits wide, so callers may pass a partial sum wider than ``acc_bits``.

    ``part`` builds a tail of the update for a pipelined caller: ``"after_leak"`` takes u on
    ``v``; ``"after_saturate"`` takes v_hat on ``v`` (and ignores ``i_in``).
    """

    def __init__(self, layer: LIFLayer, *, i_width: int,
                 part: Literal["all", "after_leak", "after_saturate"] = "all",
                 fault: str | None = None):
        if part not in ("all", "after_leak", "after_saturate"):
            raise ValueError(f"part must be 'all', 'after_leak' or 'after_saturate', "
                             f"got {part!r}")
        self.layer = layer
        self.part = part
        self.fault = fault
        super().__init__({
            "v": In(signed(layer.v_bits + (1 if part == "after_leak" else 0))),
            "i_in": In(signed(i_width)),
            "v_new": Out(signed(layer.v_bits)),
            "spike": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        if self.part == "after_saturate":
            v_hat = self.v
        else:
            beta = C(layer.beta, signed(layer.beta.bit_length() + 1))
            # signed: arithmetic shift = floor
            u = (beta * self.v) >> layer.beta_shift if self.part == "all" else self.v
            v_hat = saturate(u + self.i_in, layer.v_bits)
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
