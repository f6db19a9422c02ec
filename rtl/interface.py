"""Stream payload layouts of the network core: what goes in and comes out each timestep."""

from __future__ import annotations

from amaranth.hdl import unsigned, signed
from amaranth.lib import data

from model.ir import Network

__all__ = ["index_bits", "step_in_layout", "step_out_layout", "step_records"]


def index_bits(n: int) -> int:
    """Bits needed to hold a neuron index in ``[0, n - 1]`` (at least 1)."""
    return max(1, (n - 1).bit_length())


def step_in_layout(net: Network) -> data.StructLayout:
    """One input record. A timestep's input is a run of records ending with ``last = 1``.

    ``valid = 1`` records carry an event: neuron ``index`` of the forced layer spikes this step.
    A step with no events is a single record with ``valid = 0, last = 1``. The record with
    ``last = 1`` is the step strobe: the core computes the step after accepting it.
    """
    n = max(net.layers[l].n for l in range(1, len(net.layers)))
    return data.StructLayout({"index": unsigned(index_bits(n)), "valid": 1, "last": 1})


def step_out_layout(net: Network) -> data.StructLayout:
    """One output record per neuron per step, in index order; ``last = 1`` on the final one.

    ``spike`` is the neuron's own spike s(t) (forced spikes are not included) and ``v`` its
    membrane after reset, v(t) (the debug tap the co-simulation compares).
    """
    lif = [l for l in net.layers[1:]]
    n = max(l.n for l in lif)
    vb = max(l.v_bits for l in lif)
    return data.StructLayout({"index": unsigned(index_bits(n)), "spike": 1,
                              "v": signed(vb), "last": 1})


def step_records(indices) -> list[dict]:
    """The :func:`step_in_layout` records of one step that forces neurons ``indices`` (in the
    given order): one ``valid = 1`` record each, ``last = 1`` on the final one, or a single
    ``valid = 0, last = 1`` record when there are none."""
    idx = [int(j) for j in indices]
    if not idx:
        return [{"index": 0, "valid": 0, "last": 1}]
    return [{"index": j, "valid": 1, "last": int(q == len(idx) - 1)} for q, j in enumerate(idx)]
