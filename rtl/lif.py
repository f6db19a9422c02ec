"""LIF update unit: one neuron's leak, integration, saturation, threshold and reset."""

from __future__ import annotations

from typing import Literal

from amaranth.hdl import C, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.ir import LIFLayer

__all__ = ["LIFUnit", "saturate", "scale", "leak_multipliers"]


def saturate(x, bits: int):
    """``x`` clamped to the signed range of ``bits`` bits."""
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


def scale(v, beta: int, *, multiplier: bool = True):
    """``beta * v`` for a constant ``beta >= 0``: a multiply (which synthesis puts in a
    multiplier block when it has one), or shifted adds, one per set bit of ``beta``."""
    if multiplier:
        return C(beta, signed(beta.bit_length() + 1)) * v
    terms = [v << b for b in range(beta.bit_length()) if beta >> b & 1]
    out = C(0, 1) if not terms else terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def leak_multipliers(layers, lanes: int, budget: int | None) -> list[list[bool]]:
    """Which lanes of each LIF layer compute their leak on a multiplier block: none for a
    leak of at most two set bits (one add is cheaper than a block and its routing) or a
    power of two, else lanes in layer order while ``budget`` blocks last (``None``: no
    limit); the rest use shifted adds."""
    out = []
    left = budget
    for layer in layers:
        use = []
        for _ in range(lanes):
            want = bin(layer.beta).count("1") > 2
            take = want and (left is None or left > 0)
            if take and left is not None:
                left -= 1
            use.append(take)
        out.append(use)
    return out


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
