"""Stream payload layouts of the network core: what goes in and comes out each timestep."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from model.ir import Network, index_bits

__all__ = ["step_in_layout", "step_out_layout", "step_records", "stimulus_records"]


def step_in_layout(net: Network) -> data.StructLayout:
    """One input record. A timestep's input is a run of records ending with ``last = 1``.

    ``valid = 1`` records carry an event: for ``layer = 0``, input channel ``index`` has value
    ``value`` this step (channels not mentioned are 0; mention each at most once per step); for
    ``layer = l >= 1``, neuron ``index`` of forced layer l is forced to emit this step. A step
    with no events is a single record with ``valid = 0, last = 1``. The record with
    ``last = 1`` is the step strobe: the core computes the step after accepting it.
    """
    n = max(l.n for l in net.layers)
    return data.StructLayout({
        "index": unsigned(index_bits(n)),
        "value": unsigned(max(1, net.layers[0].in_bits)),
        "layer": unsigned(index_bits(len(net.layers))),
        "valid": 1, "last": 1})


def step_out_layout(net: Network, lanes: int = 1) -> data.StructLayout:
    """One output record per group of ``lanes`` neurons of a layer, layers in order, groups in
    index order; ``last = 1`` on the step's final record.

    Lane k of the record for ``layer``/``index`` is neuron ``index + k``; lanes past the end of
    the layer carry zeros. ``spike`` is the neurons' own spikes s(t) (forced spikes are not
    included) and ``v`` their membranes after reset, v(t).
    """
    lif = net.layers[1:]
    n = max(l.n for l in lif)
    vb = max(l.v_bits for l in lif)
    return data.StructLayout({
        "layer": unsigned(index_bits(len(net.layers))),
        "index": unsigned(index_bits(n)),
        "spike": unsigned(lanes),
        "v": data.ArrayLayout(signed(vb), lanes),
        "last": 1})


def step_records(indices, *, layer: int = 1, values=None) -> list[dict]:
    """The :func:`step_in_layout` records of one step's events on ``layer``: one ``valid = 1``
    record per index (with its value for layer 0), ``last = 1`` on the final one, or a single
    ``valid = 0, last = 1`` record when there are none."""
    idx = [int(j) for j in indices]
    vals = [1] * len(idx) if values is None else [int(x) for x in values]
    if not idx:
        return [{"index": 0, "value": 0, "layer": 0, "valid": 0, "last": 1}]
    return [{"index": j, "value": x, "layer": layer, "valid": 1, "last": int(q == len(idx) - 1)}
            for q, (j, x) in enumerate(zip(idx, vals))]


def stimulus_records(x, forced: dict | None, t: int) -> list[dict]:
    """All records of step ``t``: non-zero input channels of ``x[t]``, then forced neurons of
    each forced layer in layer order; ``last = 1`` on the final record."""
    recs = []
    if x is not None and len(x):
        row = x[t]
        nz = [j for j in range(len(row)) if row[j]]
        recs += step_records(nz, layer=0, values=[row[j] for j in nz])
    for l in sorted(forced or {}):
        row = forced[l][t]
        recs += step_records([j for j in range(len(row)) if row[j]], layer=l)
    recs = [r for r in recs if r["valid"]]
    if not recs:
        return step_records([])
    for r in recs:
        r["last"] = 0
    recs[-1]["last"] = 1
    return recs
