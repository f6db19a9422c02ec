"""LIF arithmetic: leak, integration, saturation, threshold and reset, defined once.

The functions build Amaranth expressions and accept either Python constants or Amaranth
values for the per-layer quantities (beta, the saturation range, the threshold, whether the
layer spikes and how it resets). A core that builds one datapath per layer passes a layer's
constants; the lean core (:mod:`rtl.lean`), whose pipeline serves every layer in turn, passes
values that select the current layer's. The same arithmetic thus builds both kinds of
datapath:

* :class:`LIFUnit` (one lane of one layer, constants: :func:`leak`, :func:`saturate`,
  :func:`fire_and_reset`) — the network core (:mod:`rtl.core`) and the stack core
  (:mod:`rtl.stack`) instantiate it for threshold and reset, and call :func:`leak` and
  :func:`saturate` for their registered leak and saturation stages; the network core places
  the leak's multiplies with :func:`leak_multipliers` (and uses :func:`scale` for address
  arithmetic too).
* the lean core (run-time values): :func:`scale` and :func:`floor_shift` for the leak, which
  its pipeline splits over two stages, :func:`clamp` for saturation and
  :func:`fire_and_reset` for threshold and reset.
"""

from __future__ import annotations

from typing import Literal

from amaranth.hdl import C, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.ir import LIFLayer

__all__ = ["LIFUnit", "clamp", "saturate", "scale", "floor_shift", "leak", "fire",
           "after_reset", "fire_and_reset", "leak_multipliers"]


def clamp(x, lo, hi):
    """``x`` limited to ``[lo, hi]``: ints (one layer's range) or values (the current
    layer's range in a pipeline shared by layers)."""
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


def saturate(x, bits: int):
    """``x`` clamped to the signed range of ``bits`` bits."""
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    return clamp(x, lo, hi)


def scale(v, beta, *, multiplier: bool = True):
    """``beta * v``. For a constant ``beta >= 0`` (an int): a multiply (which synthesis puts in
    a multiplier block when it has one), or shifted adds, one per set bit of ``beta``. A
    value ``beta`` (the current layer's, in a pipeline shared by layers) is multiplied."""
    if not isinstance(beta, int):
        if not multiplier:
            raise ValueError("shifted adds need a constant beta")
        return beta * v
    if multiplier:
        return C(beta, signed(beta.bit_length() + 1)) * v
    terms = [v << b for b in range(beta.bit_length()) if beta >> b & 1]
    if not terms:
        return C(0, 1)
    while len(terms) > 1:           # a balanced tree: log2(terms) adders deep, not a chain
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
    return terms[0]


def floor_shift(p, shift: int):
    """``floor(p / 2**shift)`` for a signed ``p``: the arithmetic shift right."""
    return p >> shift


def leak(v, beta, shift: int, *, multiplier: bool = True):
    """The leak ``u = floor(beta * v / 2**shift)``: :func:`floor_shift` of :func:`scale`."""
    return floor_shift(scale(v, beta, multiplier=multiplier), shift)


def fire(v, threshold, *, spiking=True, live=True, strict: bool = False):
    """Whether a membrane ``v`` (saturated) spikes: ``v >= threshold`` (``v > threshold``
    with ``strict``, a fault model), where ``spiking`` (the layer is not a read-out) and
    ``live`` (the lane holds a neuron). ``threshold``, ``spiking`` and ``live`` are constants
    (``True`` adds no term; ``spiking=False`` never fires) or values."""
    if spiking is False:
        return C(0, 1)
    spike = v > threshold if strict else v >= threshold
    if spiking is not True:
        spike = spiking & spike
    if live is not True:
        spike = spike & live
    return spike


def after_reset(v, spike, threshold, *, subtract, live=True):
    """The membrane after the threshold: where ``spike``, ``v - threshold`` (``subtract``)
    or 0; else ``v``; 0 where not ``live``. ``subtract`` is a bool (one layer's reset) or a
    one-bit value (the current layer's); ``live`` ``True`` or a one-bit value."""
    if subtract is True:
        fired = v - threshold
    elif subtract is False:
        fired = 0
    else:
        fired = Mux(subtract, v - threshold, 0)
    out = Mux(spike, fired, v)
    if live is not True:
        out = Mux(~live, 0, out)
    return out


def fire_and_reset(v, threshold, *, subtract, spiking=True, live=True, strict: bool = False):
    """``(spike, v_new)`` of a saturated membrane ``v``: :func:`fire`, then
    :func:`after_reset` (a layer that never spikes keeps ``v``, 0 where not ``live``)."""
    spike = fire(v, threshold, spiking=spiking, live=live, strict=strict)
    if spiking is False:
        return spike, (v if live is True else Mux(~live, 0, v))
    return spike, after_reset(v, spike, threshold, subtract=subtract, live=live)


def leak_multipliers(layers, lanes: int, budget: int | None, *,
                     family: str | None = None) -> list[list[bool]]:
    """Which lanes of each LIF layer compute their leak on a multiplier block: none for a
    leak of at most two set bits (one add is cheaper than a block and its routing) or a
    power of two, none on ECP5 (a balanced tree of shifted adds beside the lane is faster
    than the MULT18X18D and its routing there), else lanes in layer order while ``budget``
    blocks last (``None``: no limit); the rest use shifted adds."""
    out = []
    left = budget
    for layer in layers:
        use = []
        for _ in range(lanes):
            want = bin(layer.beta).count("1") > 2 and family != "ecp5"
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
            u = leak(self.v, layer.beta, layer.beta_shift) if self.part == "all" else self.v
            v_hat = saturate(u + self.i_in, layer.v_bits)
        spike, v_new = fire_and_reset(v_hat, layer.threshold, spiking=layer.spiking,
                                      subtract=layer.reset == "subtract",
                                      strict=self.fault == "threshold>")
        if layer.spiking:
            m.d.comb += self.spike.eq(spike)
        m.d.comb += self.v_new.eq(v_new)
        return m
