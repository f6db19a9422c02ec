"""What the stack core is made of, before any hardware: its plan per layer (weights, rows
per cycle, accumulator widths, timing), the layers it observes, and its estimate."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from model.ir import LIFLayer, Network, Projection, signed_bits
from .errors import UnsupportedNetwork
from .logic import CONV_CHUNK

__all__ = ["STAGES", "CONV_CHUNK", "StackPlan", "stack_plan", "array_name", "row_bits",
           "fifo_blocks",
           "auto_rows", "rows_per_cycle", "observed_layers", "stage_timing", "lut_fit",
           "logic_features", "estimate"]

#: Pipeline registers of stage B between issuing a group and writing it back.
STAGES = 6


def stage_timing(pad: int, lanes: int) -> tuple[int, int]:
    """(extra delay of the spike write-back, least cycles between a step's first issue and the
    next step's) for a conv recurrence reaching ``pad`` neurons either side (0: none).

    A group issued at cycle c is written back visibly at c + STAGES (+ the delay). The window
    of group q reaches m = ceil(pad / lanes) groups either side: its left neighbours must not
    yet show this step's spikes when it reads them (delay > m - STAGES), and the next step's
    group q must see this step's spikes of group q + m (gap >= m + STAGES + delay)."""
    m = -(-pad // lanes) if pad else 0
    delay = max(0, m - STAGES + 1)
    return delay, m + STAGES + delay


@dataclass(frozen=True)
class StackPlan:
    """How one LIF layer is built: its feed-forward projection, its recurrence, its widths."""

    layer: int
    ff: Projection
    rec: Projection | None
    delays: np.ndarray | None     # (n,) per-neuron delays of the recurrence (>= 1)
    value_bits: int               # bits of an arriving event's value (in_bits for layer 1)
    acc_bits: int                 # accumulator width: every partial feed-forward sum fits


def stack_plan(net: Network) -> list[StackPlan]:
    """Check that ``net`` has the stack shape; return one :class:`StackPlan` per LIF layer.

    Raises :class:`~rtl.cores.UnsupportedNetwork` naming the layer or projection that does not
    fit: every LIF layer needs exactly one ``dense`` projection from the layer below with delay
    0, may have one ``conv`` recurrence on itself (delays >= 1), and no layer may be forced.
    """
    if not isinstance(net, Network):
        raise UnsupportedNetwork(f"expected a model.ir.Network, got {type(net).__name__}")
    plans = []
    for l in range(1, len(net.layers)):
        layer = net.layers[l]
        if not isinstance(layer, LIFLayer):
            raise UnsupportedNetwork(f"stack core: layer {l} is not a LIF layer")
        if layer.forced:
            raise UnsupportedNetwork(f"stack core: layer {l} ({layer.name}) takes a forced "
                                     f"raster; use rtl.core.NetworkCore")
        ff = [p for p in net.into(l) if p.src == l - 1]
        rec = [p for p in net.into(l) if p.src == l]
        where = f"stack core: layer {l} ({layer.name})"
        if len(ff) != 1 or ff[0].kind != "dense" or ff[0].delay.ndim != 0 or int(ff[0].delay):
            got = ", ".join(f"{p.kind} delay {p.delay.tolist()}" for p in ff) or "none"
            raise UnsupportedNetwork(f"{where} needs exactly one dense feed-forward projection "
                                     f"from layer {l - 1} with delay 0, got: {got}; use "
                                     f"rtl.core.NetworkCore")
        if len(rec) > 1 or (rec and rec[0].kind != "conv"):
            got = ", ".join(p.kind for p in rec)
            raise UnsupportedNetwork(f"{where}: the only recurrence this core builds is one "
                                     f"conv projection, got: {got}; use rtl.core.NetworkCore")
        if rec and not layer.spiking:
            raise UnsupportedNetwork(f"{where}: a read-out layer has no spikes to recur")
        pre = net.layers[l - 1]
        vbits = pre.in_bits if l == 1 else 1
        xmax = (1 << vbits) - 1
        w = ff[0].weight.astype(np.int64)
        lo = int((np.minimum(w, 0).sum(1) * xmax).min())
        hi = int((np.maximum(w, 0).sum(1) * xmax).max())
        delays = None
        if rec:
            delays = rec[0].delays_of_pre(layer.n)
            if int(delays.min()) < 1:
                raise UnsupportedNetwork(f"{where}: conv recurrence delays must be >= 1, got "
                                         f"{int(delays.min())}")
        plans.append(StackPlan(layer=l, ff=ff[0], rec=rec[0] if rec else None, delays=delays,
                               value_bits=vbits, acc_bits=signed_bits(lo, hi)))
    if not plans:
        raise UnsupportedNetwork("stack core: the network has no LIF layer")
    return plans


def array_name(net: Network, plan: StackPlan) -> str:
    """The name of a layer's weight array, as :mod:`rtl.core` names it."""
    return f"proj{net.projections.index(plan.ff)}.weights"


def row_bits(net: Network, plan: StackPlan) -> int:
    """Bits of one weight row: the layer's n weights of one presynaptic neuron."""
    return net.layers[plan.layer].n * plan.ff.w_bits


def auto_rows(n: int) -> int:
    """Rows per cycle that stage A of an ``n``-neuron layer takes by default: narrow layers
    (a read-out of 20 classes) see the most events per neuron and cost the least per row."""
    return 1 if n >= 128 else 2 if n >= 64 else 4


def rows_per_cycle(net: Network, rows) -> dict[int, int]:
    """Rows per cycle of every LIF layer: layer 1 takes one input record per cycle; others
    ``rows`` (an int for all, a dict by layer, ``None`` for :func:`auto_rows`), 1 to 8."""
    def check(r, what):
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 8:
            raise UnsupportedNetwork(f"rows{what} must be an integer in [1, 8], got {r!r}")
        return r
    lif = range(2, len(net.layers))
    if isinstance(rows, dict):
        for l, r in rows.items():
            if l not in lif:
                raise UnsupportedNetwork(f"rows: layer {l!r} is not a LIF layer above layer 1 "
                                         f"(layer 1 takes one input record per cycle)")
            check(r, f" of layer {l}")
    elif rows is not None:
        check(rows, "")
    out = {1: 1}
    for l in lif:
        r = rows.get(l) if isinstance(rows, dict) else rows
        out[l] = auto_rows(net.layers[l].n) if r is None else r
    return out


def observed_layers(net: Network, observe) -> tuple[int, ...]:
    """The LIF layers whose records a core sends (``observe``; None: every LIF layer), sorted;
    :class:`~rtl.cores.UnsupportedNetwork` unless they name LIF layers."""
    lif = list(range(1, len(net.layers)))
    obs = lif if observe is None else sorted({int(l) for l in observe})
    if not obs or any(l not in lif for l in obs):
        raise UnsupportedNetwork(f"observe must name LIF layers among {lif}, got "
                                 f"{list(observe) if observe is not None else None}")
    return tuple(obs)


def lut_fit(family: str) -> dict[str, float]:
    """LUT4 (nextpnr's TRELLIS_COMB: Yosys's LUT4 + 2 per CCU2C + 4 per LUT-RAM) per unit of
    each feature of :func:`logic_features` on ``family``: ``stack_lut`` of
    ``rtl/calibration.json`` (fitted to Yosys runs of the core alone, docs/hardware.md); the
    host link is extra."""
    from .calibration import calibration
    fits = calibration()["stack_lut"]
    if family not in fits:
        raise ValueError(f"the stack core's logic model covers {sorted(fits)}, not {family!r}")
    return fits[family]


def logic_features(net: Network, *, lanes: int, rows=None) -> dict[str, float]:
    """Structural counts of the stack core's logic: accumulator adder bits (``acc``, n x
    acc_bits x rows per layer), bits selected per group by a G-way multiplexer (``mux``,
    sums, membranes and the conv window, weighted by log2 G), conv-kernel adder bits per lane
    (``conv``) and LIF datapath bits per lane (``lif``: leak, saturation, threshold, reset)."""
    plans = stack_plan(net)
    R = rows_per_cycle(net, rows)
    f = dict(acc=0.0, mux=0.0, conv=0.0, lif=0.0, fixed=1.0)
    for pl in plans:
        layer = net.layers[pl.layer]
        n, G = layer.n, ceil(layer.n / lanes)
        live = min(lanes, n)
        f["acc"] += n * pl.acc_bits * R[pl.layer]
        sel = max(1.0, np.log2(G)) if G > 1 else 0.0
        f["mux"] += live * (pl.acc_bits + layer.v_bits) * sel
        if pl.rec is not None:
            K = int(np.count_nonzero(pl.rec.weight))
            f["mux"] += (lanes + len(pl.rec.weight) - 1) * sel
            f["conv"] += live * max(0, K - 1) * (pl.rec.w_bits + 3)
        f["lif"] += live * layer.v_bits
    return f


def fifo_blocks(net: Network, *, family: str, lanes: int, observe=None) -> dict[str, int]:
    """Block RAMs of the stack core's FIFOs (:class:`rtl.stack.StackCore`: each observed
    layer's output FIFO, each layer but the last its spike FIFO, ``2 G + STAGES + 2`` entries,
    one fewer in memory), where Yosys puts them in block RAM rather than LUT RAM."""
    from .families import blocks_of
    obs = observed_layers(net, observe)
    vb_out = max(l.v_bits for l in net.layers[1:])
    out = {}
    for l in range(1, len(net.layers)):
        G = ceil(net.layers[l].n / lanes)
        gl = max(1, (max(2, G) - 1).bit_length())
        depth = 2 * G + STAGES + 2 - 1
        widths = {}
        if l in obs:
            widths[f"l{l}_ofifo"] = gl + lanes * (vb_out + 1) + 1
        if l < len(net.layers) - 1:
            widths[f"l{l}_wfifo"] = gl + lanes + 1
        for name, width in widths.items():
            out[name] = blocks_of("auto", family, depth, width, sync_read=True)
    return out


def estimate(net: Network, *, family: str | None = None, clock_mhz: float, lanes: int,
             cycles_per_step: float, cycles_max: int, steps_per_sample: int, rows=None,
             device=None, observe=None):
    """An :class:`rtl.cost.Estimate` of the stack core for ``net`` on ``device`` (else the
    largest device of ``family``, see :func:`rtl.devices.target`): weight block RAMs
    (one read port per row read per cycle, without the constant bit columns; a ROM cheaper in
    logic becomes logic), multipliers (one leak per live lane and layer), logic from
    :func:`lut_fit`; the cycles come from the caller (measured: the RTL's own cycle
    counts in co-simulation)."""
    from .cost import Estimate
    from .devices import planned
    from .families import blocks_of
    from .words import live_bits
    dev = planned(family, device)
    family = dev.family
    R = rows_per_cycle(net, rows)
    bits, blocks, rom_lut = {}, {}, 0.0
    for pl in stack_plan(net):
        name, n_pre = array_name(net, pl), net.layers[pl.layer - 1].n
        bits[name] = row_bits(net, pl) * n_pre
        # Yosys drops the bit columns that are the same in every row (rtl.words.live_bits),
        # then maps the ROM and its R read ports to block RAM or, when cheaper, to logic.
        live = (live_bits(pl.ff.weight.T, pl.ff.w_bits) or [0])[0]
        blocks[name] = blocks_of("auto", family, n_pre, live, rom=True, ports=R[pl.layer])
        if blocks[name] == 0:
            rom_lut += R[pl.layer] * n_pre * live / 16     # a 16-word LUT4 per bit and port
    blocks.update(fifo_blocks(net, family=family, lanes=lanes, observe=observe))
    feats = logic_features(net, lanes=lanes, rows=rows)
    fit = lut_fit(family)
    lut = round(sum(fit[k] * v for k, v in feats.items()) + rom_lut)
    # The leak (beta * v) >> shift: a multiplier per live lane unless beta is 0 or a power of 2.
    dsp = sum(min(lanes, net.layers[l].n) for l in range(1, len(net.layers))
              if net.layers[l].beta & (net.layers[l].beta - 1))
    return Estimate(family=family, lanes=lanes, clock_mhz=clock_mhz, memory_bits=bits,
                    blocks=blocks, lut=lut, dsp=dsp, cycles_per_step=float(cycles_per_step),
                    cycles_max=int(cycles_max), steps_per_sample=int(steps_per_sample),
                    kinds={k: "block" for k in bits}, device=dev.name)
