"""Memory planning of the network core: how each projection is built, the shape, kind and
bits of every memory, and the words of the weight memories (what a ``wl`` load streams)."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import NamedTuple

import numpy as np

from model.ir import InputLayer, LIFLayer, Network, Projection
from .delay_line import line_shapes, line_slots
from .errors import UnsupportedNetwork
from .devices import Device, target
from .families import KINDS, LOADED_AUTO_BITS, SPRAM, block_config, blocks_of, ram_bits
from .words import pack_rows

__all__ = ["supported", "ProjPlan", "projection_plan", "MemShape", "memory_shapes", "memory_bits",
           "pair_bits", "has_bias", "weight_bank_depth", "memory_kinds", "block_membranes",
           "ebr_room", "weight_words",
           "weight_rows", "load_image", "load_width", "STREAMED"]

def supported(net: Network, *, lanes: int = 1) -> None:
    """Raise :class:`UnsupportedNetwork` unless the core can be built for ``net``."""
    if not isinstance(lanes, int) or not 1 <= lanes <= 256:
        raise UnsupportedNetwork(f"lanes must be an integer in [1, 256], got {lanes!r}")


#: Memory kinds whose arrays start empty and are filled through the ``wl`` load stream.
STREAMED = ("spram", "loaded")


def has_bias(layer) -> bool:
    """Whether ``layer`` has a non-zero bias (a layer without one gets no bias memory)."""
    return bool(np.any(np.asarray(layer.bias)))


@dataclass(frozen=True)
class ProjPlan:
    """A projection as the core builds it."""

    index: int
    p: Projection
    pre: InputLayer | LIFLayer
    post: LIFLayer
    per_lane: bool         # one delay per presynaptic neuron (dense/conv), read per element
    slots: int             # delay-line slots
    value_bits: int        # 0 when presynaptic values are spikes (always 1)

    @property
    def taps(self) -> int:
        return self.p.n_taps

    @property
    def element_bits(self) -> int:
        return max(1, self.value_bits)

    @property
    def mode(self) -> str:
        """The kind of :class:`~rtl.delay_line.DelayLine` that carries it: one delay per
        presynaptic neuron, one delay, or a window of taps read in one pass."""
        if self.per_lane:
            return "per_lane"
        return "window" if self.taps > 1 else "list"

    @property
    def first(self) -> int:
        """The smallest delay (a ``list`` or ``window`` line's first offset)."""
        return int(self.p.delay.flat[0])

    def weight_depth(self, lanes: int) -> int:
        """Words of its weight memory: one per (row, group of ``lanes`` neurons)."""
        return self.pre.n * self.taps * ceil(self.post.n / lanes)


def projection_plan(net: Network, late: int = 0) -> list[ProjPlan]:
    """How each projection is built (one from a layer without neurons has no synapse and no
    plan); ``late`` adds steps to every delay (a planted fault)."""
    out = []
    for q, p in enumerate(net.projections):
        pre, post = net.layers[p.src], net.layers[p.dst]
        if pre.n == 0:
            continue  # no presynaptic neuron, so no synapse: nothing to build
        vb = pre.in_bits if isinstance(pre, InputLayer) and pre.in_bits > 1 else 0
        per_lane = p.kind != "taps" and len(set(p.delays_of_pre(pre.n).tolist())) > 1
        slots = line_slots(p.max_delay + late, sparse=p.src == 0,
                           mode="per_lane" if per_lane else "list")
        out.append(ProjPlan(q, p, pre, post, per_lane, slots, vb))
    return out


class MemShape(NamedTuple):
    """``count`` memories of ``depth`` words of ``width`` bits."""

    depth: int
    width: int
    count: int = 1


def memory_shapes(net: Network, *, lanes: int = 1) -> dict[str, MemShape]:
    """Every memory array of the core for ``net`` with ``lanes``."""
    supported(net, lanes=lanes)
    plan = projection_plan(net)
    out = {}
    for l, layer in enumerate(net.layers[1:], 1):
        g = ceil(layer.n / lanes)
        out[f"layer{l}.v"] = MemShape(g, lanes * layer.v_bits)
        if has_bias(layer):
            out[f"layer{l}.bias"] = MemShape(g, lanes * layer.acc_bits)
        weighted = [pp for pp in plan if pp.p.dst == l and pp.p.kind != "conv"]
        if weighted:
            depth = sum(pp.pre.n * pp.taps for pp in weighted)
            out[f"layer{l}.pairs"] = MemShape(depth, pair_bits(net, l, lanes))
    for pp in plan:
        shapes = line_shapes(pp.pre.n, lanes, pp.slots, pp.mode, pp.element_bits,
                             pp.p.src == 0, first=pp.first)
        out[f"proj{pp.index}.delay_line"] = MemShape(*shapes[0], len(shapes))
        if pp.p.kind != "conv":
            out[f"proj{pp.index}.weights"] = MemShape(pp.weight_depth(lanes),
                                                      lanes * pp.p.w_bits)
    return out


def memory_bits(net: Network, *, lanes: int = 1) -> dict[str, int]:
    """Bits of every memory array of the core for ``net`` with ``lanes`` (name -> bits)."""
    return {k: s.depth * s.width * s.count for k, s in memory_shapes(net, lanes=lanes).items()}


def pair_bits(net: Network, l: int, lanes: int) -> int:
    plan = [pp for pp in projection_plan(net) if pp.p.dst == l and pp.p.kind != "conv"]
    g = ceil(net.layers[l].n / lanes)
    base = max(1, max(pp.pre.n * pp.taps * g for pp in plan).bit_length())
    tag = max(1, (len(plan) - 1).bit_length())
    vb = max(pp.value_bits for pp in plan)
    return tag + base + vb


def weight_bank_depth(net: Network, q: int, *, lanes: int, family: str | None,
                      bank_depth: int | None = None, kind: str = "block") -> int:
    """Depth of each bank of projection q's weight memory: ``bank_depth`` if given, else one
    block's depth for ``family`` and ``kind`` (a power of two: a block RAM configuration, or
    an SPRAM's 16K words), else the whole memory (also for ``lut`` and ``loaded``, one RAM
    whatever its depth)."""
    pp = projection_plan(net)[q]
    depth = pp.weight_depth(lanes)
    if kind == "loaded":
        return depth
    if bank_depth is not None:
        return min(bank_depth, depth)
    if kind == "spram":
        return min(SPRAM[0], depth)
    if family is None or kind == "lut":
        return depth
    bank = block_config(family, depth, lanes * pp.p.w_bits)[0]
    return 1 << (bank.bit_length() - 1)


def memory_kinds(net: Network, *, lanes: int = 1, family: str | None = None,
                 memories: dict[str, str] | None = None,
                 device: str | Device | None = None) -> dict[str, str]:
    """The memory kind (``block``, ``spram``, ``lut``, ``loaded``) of every weight array, by
    the names of :func:`memory_shapes` (``proj<q>.weights``).

    The plan is made for ``device`` (a name of :data:`rtl.devices.DEVICES`), else for the
    largest device of ``family`` (see :func:`rtl.devices.target`). ``memories`` sets kinds by
    name; the others are chosen automatically: with neither (generic Verilog for simulation)
    arrays of more than :data:`~rtl.families.LOADED_AUTO_BITS` (4 Mbit) go to ``loaded`` (an
    initialised memory that large cannot be emitted sensibly); arrays that Yosys would rather
    keep in logic (by its own costs) go to ``lut``, the rest to ``block``, and on a device with
    SPRAM (the iCE40UP5K), while the estimated block RAMs of the whole core exceed 85 % of the
    device's (room for the board top), the largest weight arrays move to SPRAM as long as SPRAM
    blocks are left (see ``docs/hardware.md#memory-kinds``). ``loaded`` is never chosen for a
    device: there, a weight array larger than the device's whole on-chip RAM raises
    :class:`ValueError` unless ``memories`` makes it ``loaded``.
    """
    dev = target(family, device)
    family = dev.family if dev is not None else None
    shapes = memory_shapes(net, lanes=lanes)
    names = [k for k in shapes if k.endswith(".weights")]
    given = dict(memories or {})
    for name, kind in given.items():
        if name not in names:
            raise ValueError(f"memories: no weight array {name!r} in network {net.name!r} "
                             f"(its weight arrays: {', '.join(names) or 'none'})")
        if kind not in KINDS:
            raise ValueError(f"memories[{name!r}]: kind must be one of {KINDS}, got {kind!r}")
        if kind == "spram" and dev is not None and not dev.spram:
            raise ValueError(f"memories[{name!r}]: SPRAM exists only on iCE40 UltraPlus "
                             f"devices, not on the {dev.label} (family {family!r})")
    fam = family or "ice40"
    kinds = {}
    for name in names:
        s = shapes[name]
        if name in given:
            kinds[name] = given[name]
        elif family is None and s.depth * s.width * s.count > LOADED_AUTO_BITS:
            kinds[name] = "loaded"
        else:
            kinds[name] = "lut" if blocks_of("auto", fam, s.depth, s.width, rom=True) == 0 \
                else "block"
    if dev is not None:
        cap = ram_bits(dev)
        for name in names:
            s = shapes[name]
            bits = s.depth * s.width * s.count
            if kinds[name] != "loaded" and bits > cap:
                raise ValueError(
                    f"memories: weight array {name!r} of network {net.name!r} has {bits:,} "
                    f"bits ({s.depth:,} words x {s.width} bits), more than the {cap:,} bits "
                    f"of on-chip RAM of the {dev.label}: the weights do not fit on chip; keep "
                    f"them off chip as a 'loaded' array "
                    f"(memories={{{name!r}: 'loaded'}}, --memory {name}=loaded)")
    if dev is not None and dev.spram:
        ebr_budget = ebr_room(dev)
        def usage(kind):     # blocks of ``kind`` the whole core takes
            if kind == "spram":
                return sum(blocks_of("spram", fam, *shapes[k]) for k in kinds
                           if kinds[k] == "spram")
            return _block_usage(shapes, kinds, fam)
        movable = sorted((k for k in names if k not in given and kinds[k] == "block"),
                         key=lambda k: (-shapes[k].depth * shapes[k].width, k))
        for name in movable:
            if usage("block") <= ebr_budget:
                break
            need = blocks_of("spram", fam, *shapes[name])
            if usage("spram") + need <= dev.spram:
                kinds[name] = "spram"
        if usage("spram") > dev.spram:
            raise ValueError(f"memories: the SPRAM arrays of network {net.name!r} need "
                             f"{usage('spram')} SPRAM blocks of 16K x 16, the {dev.label} has "
                             f"{dev.spram}")
    return kinds


def ebr_room(dev: Device) -> int:
    """The block RAMs the core's plan may fill on ``dev``: 85 % of them (room for the board
    top: the host link's frame buffer and read-out)."""
    return int(0.85 * dev.bram)


def _block_usage(shapes: dict[str, MemShape], kinds: dict[str, str], family: str) -> int:
    """Block RAMs of the whole core: arrays of kind ``block`` as such, arrays without a kind
    as Yosys would map them (a bias is a ROM)."""
    return sum(blocks_of("block", family, *shapes[k]) if kinds[k] == "block" else 0
               for k in kinds) + \
        sum(blocks_of("auto", family, *shapes[k], rom=k.endswith(".bias"))
            for k in shapes if k not in kinds)


def block_membranes(net: Network, kinds: dict[str, str], *, lanes: int = 1,
                    device: str | Device | None = None,
                    family: str | None = None) -> list[str]:
    """The membrane arrays (``layer<l>.v``, by layer) that the core puts in block RAM although
    Yosys would keep them in logic, given the weight arrays' ``kinds``
    (:func:`memory_kinds`): on the iCE40 only, while the core's block RAMs stay within
    :func:`ebr_room`. A few words of many lanes' membranes (the demo's 4 x 88 bits at 8 lanes)
    cost Yosys less as flip-flops than as EBR by its own measure, but the flip-flops, their
    write enables and the read multiplexer fill logic cells that the iCE40UP5K's routing needs
    (see docs/hardware.md#timing); an EBR holds them at no logic cost. ECP5 keeps Yosys's
    choice (LUT RAM is cheap there). None on a generic core (``device`` and ``family`` None)."""
    dev = target(family, device)
    if dev is None or dev.family != "ice40":
        return []
    shapes = memory_shapes(net, lanes=lanes)
    used = _block_usage(shapes, kinds, dev.family)
    out = []
    for name, s in shapes.items():
        if not name.endswith(".v") or blocks_of("auto", dev.family, *s) != 0:
            continue
        need = blocks_of("block", dev.family, *s)
        if used + need <= ebr_room(dev):
            out.append(name)
            used += need
    return out


def weight_rows(pp: ProjPlan, lanes: int) -> np.ndarray:
    """Projection ``pp``'s weight memory as a (words, lanes) array of signed weights: word
    row*G + g holds w[g*P : (g+1)*P, row] with row = j (dense) or j*D + k (taps), so that one
    word feeds every lane."""
    G = ceil(pp.post.n / lanes)
    w = pp.p.weight if pp.p.kind == "taps" else pp.p.weight[:, :, None]
    pad = np.zeros((G * lanes,) + w.shape[1:], np.int64)
    pad[:pp.post.n] = w
    # (g, lane, j, k) -> word (j*D + k)*G + g, element ``lane``
    return pad.reshape(G, lanes, pp.pre.n, pp.taps).transpose(2, 3, 0, 1).reshape(-1, lanes)


def weight_words(pp: ProjPlan, lanes: int) -> list[int]:
    """The contents of projection ``pp``'s weight memory: the rows of :func:`weight_rows`
    packed, element 0 in the low bits."""
    return pack_rows(weight_rows(pp, lanes), pp.p.w_bits)


def load_image(net: Network, kinds: dict[str, str], *, lanes: int = 1) -> list[int]:
    """The words the core expects on its ``wl`` stream after reset, for weight arrays of
    ``kinds`` (:func:`memory_kinds`): the SPRAM and ``loaded`` arrays in projection order,
    each from address 0 (empty when there are none)."""
    return [word for pp in projection_plan(net) if kinds.get(f"proj{pp.index}.weights") in STREAMED
            for word in weight_words(pp, lanes)]


def load_width(net: Network, kinds: dict[str, str], *, lanes: int = 1) -> int:
    """Bits of one ``wl`` word: the widest SPRAM or ``loaded`` weight word (0 when there are
    none)."""
    return max([lanes * pp.p.w_bits for pp in projection_plan(net)
                if kinds.get(f"proj{pp.index}.weights") in STREAMED] or [0])
