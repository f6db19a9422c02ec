"""What the lean core is made of, before any hardware: its memory layout (chunks, slots,
words), the weight image it loads, and its estimate."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from model.ir import Network, index_bits, signed_bits
from .errors import UnsupportedNetwork
from .stack_plan import StackPlan, stack_plan
from .words import pack_word

__all__ = ["WORD_BITS", "WORDS_MAX", "LeanLayout", "lean_layout", "lean_image", "lean_params",
           "log2_exact", "next_pow2", "acc_range_bits", "conv_first_chunk", "lut_fit",
           "estimate"]

#: Bits of one weight word: four 16-bit SPRAM blocks side by side.
WORD_BITS = 64


#: Words the four UP5K SPRAM blocks hold.
WORDS_MAX = 16384


def log2_exact(x: int) -> int:
    return (x - 1).bit_length()


def next_pow2(x: int) -> int:
    """The least power of two >= x (1 for x <= 1)."""
    return 1 << log2_exact(max(1, x))


@dataclass(frozen=True)
class LeanLayout:
    """Where everything lives: SPRAM word addresses, block-RAM addresses, widths (per LIF layer
    ``l``, dicts keyed by l)."""

    slots: int                  # S: weights per word (a power of two)
    slot_bits: int              # bits of one slot (WORD_BITS // S)
    lanes: int
    chunks: dict                # C_l = ceil(n_l / S)
    groups: dict                # G_l = ceil(n_l / lanes)
    ff_base: dict               # first word of layer l's feed-forward rows
    ff_stride: dict             # words per feed-forward row (C_l rounded up to a power of 2)
    cv_base: dict               # first word of layer l's conv rows (layers with a conv only)
    cv_stride: dict             # words per conv row (CK rounded up to a power of two)
    cv_chunks: dict             # CK: chunks a conv row covers
    cv_off: dict                # pad - K + 1: the first post of pre j is j + cv_off
    words: int                  # words of the image
    acc_base: dict              # accumulator-bank address of layer l's chunk 0
    acc_depth: int
    early: int | None           # the conv layer whose next-step sums alternate between two
    acc_alt: int                # bank regions: its other region's first address (0: none)
    acc_bits: int               # accumulator width (feed-forward + conv sums of any layer)
    v_base: dict                # membrane-memory (and bias-memory) address of layer l's group 0
    v_depth: int
    f_base: dict                # ring-memory (and delay-memory) offset of a conv layer's group 0
    f_groups: int               # ring entries per slot (a power of two)
    ring: int                   # R: slots of the delay ring (a power of two, >= every delay)
    bias_bits: int
    delay_bits: int
    conv: dict                  # layer -> (kernel, pad, delays) of its conv recurrence


def lean_layout(net: Network, lanes: int) -> LeanLayout:
    """The :class:`LeanLayout` of ``net`` at ``lanes``; raises
    :class:`~rtl.cores.UnsupportedNetwork` naming what does not fit."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or lanes & (lanes - 1):
        raise UnsupportedNetwork(f"lean core: lanes must be a power of two, got {lanes!r}")
    plans = stack_plan(net)
    wmax = max(max(pl.ff.w_bits, pl.rec.w_bits if pl.rec is not None else 0) for pl in plans)
    if wmax > WORD_BITS // 2:
        raise UnsupportedNetwork(f"lean core: weights of {wmax} bits do not fit two to a "
                                 f"{WORD_BITS}-bit word")
    S = 1 << ((WORD_BITS // wmax).bit_length() - 1)
    if lanes > S:
        raise UnsupportedNetwork(f"lean core: lanes must be at most the {S} weights a "
                                 f"{WORD_BITS}-bit word holds at {wmax} bits, got {lanes}")
    chunks, groups, ff_base, ff_stride = {}, {}, {}, {}
    cv_base, cv_stride, cv_chunks, cv_off, conv = {}, {}, {}, {}, {}
    acc_base, v_base, f_base = {}, {}, {}
    addr = acc = va = fa = 0
    biases = []
    dmax = 1
    acc_bits = 1
    for pl in plans:
        l, n = pl.layer, net.layers[pl.layer].n
        n_pre = net.layers[l - 1].n
        chunks[l], groups[l] = ceil(n / S), ceil(n / lanes)
        ff_stride[l] = next_pow2(chunks[l])
        ff_base[l] = addr
        addr += n_pre * ff_stride[l]
        lo, hi = 0, 0
        if pl.rec is not None:
            kern = pl.rec.weight.astype(np.int64)
            K = len(kern)
            pad = (K - 1) // 2
            off = pad - K + 1
            span = max(min(n - 1, j + pad) // S - max(0, j + off) // S + 1 for j in range(n))
            cv_chunks[l] = min(chunks[l], span)
            cv_stride[l] = next_pow2(cv_chunks[l])
            cv_off[l] = off
            cv_base[l] = addr
            addr += n * cv_stride[l]
            conv[l] = (kern, pad, pl.delays.astype(np.int64))
            dmax = max(dmax, int(pl.delays.max()))
            lo, hi = int(np.minimum(kern, 0).sum()), int(np.maximum(kern, 0).sum())
            f_base[l] = fa
            fa += groups[l]
        acc_bits = max(acc_bits, acc_range_bits(net, pl, lo, hi))
        acc_base[l] = acc
        acc += chunks[l]
        v_base[l] = va
        va += groups[l]
        layer = net.layers[l]
        biases.append(np.zeros(n, np.int64) if layer.bias is None else np.asarray(layer.bias))
    allb = np.concatenate(biases)
    bias_bits = signed_bits(int(min(allb.min(), 0)), int(max(allb.max(), 0)))
    delay_bits = max(1, dmax.bit_length()) if conv else 0
    # The last conv layer (with a layer after it) gets a second region of sums: its conv
    # events for the next step are added there while its update reads this step's.
    early = max(conv) if conv and len(plans) > 1 else None
    acc_alt = 0
    if early is not None:
        acc_alt = acc
        acc += chunks[early]
    if addr > WORDS_MAX:
        raise UnsupportedNetwork(f"lean core: the weights and conv rows need "
                                 f"{addr} words of {WORD_BITS} bits; the four SPRAM blocks "
                                 f"hold {WORDS_MAX} (use narrower weights)")
    if acc_bits > 32:
        raise UnsupportedNetwork(f"lean core: sums of {acc_bits} bits exceed 32")
    return LeanLayout(slots=S, slot_bits=WORD_BITS // S, lanes=lanes, chunks=chunks,
                      groups=groups, ff_base=ff_base, ff_stride=ff_stride, cv_base=cv_base,
                      cv_stride=cv_stride, cv_chunks=cv_chunks, cv_off=cv_off,
                      words=addr, acc_base=acc_base, acc_depth=acc, early=early,
                      acc_alt=acc_alt,
                      acc_bits=acc_bits, v_base=v_base, v_depth=va, f_base=f_base,
                      f_groups=next_pow2(fa), ring=max(2, next_pow2(dmax)), bias_bits=bias_bits,
                      delay_bits=delay_bits, conv=conv)


def acc_range_bits(net: Network, pl: StackPlan, clo: int, chi: int) -> int:
    """Bits of a signed sum that holds any partial feed-forward sum plus any partial conv
    sum of layer ``pl.layer``."""
    xmax = (1 << pl.value_bits) - 1
    w = pl.ff.weight.astype(np.int64)
    lo = int((np.minimum(w, 0).sum(1) * xmax).min()) + clo
    hi = int((np.maximum(w, 0).sum(1) * xmax).max()) + chi
    return signed_bits(min(lo, 0), max(hi, 0))


def conv_first_chunk(L: LeanLayout, l: int, j: int) -> int:
    """The first chunk of pre j's conv row in layer l (as the hardware computes it)."""
    a = j + L.cv_off[l]
    first = 0 if a < 0 else a // L.slots
    return min(first, L.chunks[l] - L.cv_chunks[l])


def lean_image(net: Network, L: LeanLayout) -> list[int]:
    """The words of the weight memory, address 0 up (what ``wl`` takes after reset)."""
    S, sw = L.slots, L.slot_bits
    words = [0] * L.words

    for l in L.chunks:
        n = net.layers[l].n
        ff = next(p for p in net.into(l) if p.src == l - 1)
        w = ff.weight.astype(np.int64)                         # (n, n_pre)
        wp = np.zeros((L.chunks[l] * S, w.shape[1]), np.int64)
        wp[:n] = w
        for j in range(w.shape[1]):
            for c in range(L.chunks[l]):
                words[L.ff_base[l] + j * L.ff_stride[l] + c] = pack_word(wp[c * S:(c + 1) * S, j],
                                                                         sw)
        if l in L.conv:
            kern, pad, _ = L.conv[l]
            K = len(kern)
            for j in range(n):
                c0 = conv_first_chunk(L, l, j)
                for q in range(L.cv_chunks[l]):
                    vals = []
                    for k in range(S):
                        i = (c0 + q) * S + k
                        tap = j - i + pad
                        vals.append(int(kern[tap]) if i < n and 0 <= tap < K else 0)
                    words[L.cv_base[l] + j * L.cv_stride[l] + q] = pack_word(vals, sw)
    return words


def lean_params(net: Network, L: LeanLayout) -> tuple[list[int], list[int]]:
    """The initial contents of the parameter memories (block RAM, set by the bitstream): the
    biases, a word of ``lanes`` biases per group at ``v_base[l] + g``; the delays of the conv
    layers, a word of ``lanes`` delays per group at ``f_base[l] + g`` (empty without one)."""
    P, bb, db = L.lanes, L.bias_bits, L.delay_bits
    bias_words = [0] * max(2, L.v_depth)
    delay_words = [0] * max(2, L.f_groups) if L.conv else []
    for l in L.chunks:
        n = net.layers[l].n
        layer = net.layers[l]
        bias = np.zeros(n, np.int64) if layer.bias is None else np.asarray(layer.bias)
        for g in range(L.groups[l]):
            bw = dw = 0
            for k in range(P):
                i = g * P + k
                if i < n:
                    bw |= (int(bias[i]) & ((1 << bb) - 1)) << (k * bb)
                    if l in L.conv:
                        dw |= int(L.conv[l][2][i]) << (k * db)
            bias_words[L.v_base[l] + g] = bw
            if l in L.conv:
                delay_words[L.f_base[l] + g] = dw
    return bias_words, delay_words


def lut_fit() -> dict[str, float]:
    """Logic cells (iCE40: a LUT4 and a flip-flop each) of the lean core and its serial
    read-out = fixed + per lane x lanes + per slot x slots, counted as LUT4 + flip-flops (many
    of the core's flip-flops are pipeline registers that share no cell with a LUT):
    ``lean_lut`` of ``rtl/calibration.json`` (least squares over Yosys runs of the core alone,
    docs/hardware.md). The host link is extra."""
    from .calibration import calibration
    return calibration()["lean_lut"]


def estimate(net: Network, *, family: str | None = None, clock_mhz: float, lanes: int,
             cycles_per_step: float, cycles_max: int, steps_per_sample: int, device=None):
    """An :class:`rtl.cost.Estimate` of the lean core for ``net`` on ``device`` (default: the
    iCE40UP5K, the one device it is built for): the weight memory in the
    four SPRAM blocks, block RAMs (accumulator banks, membranes, delay ring, event lists,
    biases and delays, and the serial read-out's sums), a multiplier per lane for a leak that
    is not a power of two, logic cells (with the serial read-out) from :func:`lut_fit`;
    the cycles come from the caller (measured: :func:`rtl.pysim.run_lean_readout`)."""
    from .cost import Estimate
    from .devices import target
    from .families import blocks_of
    from .link.readout import DEFAULT_MAX_STEPS, sum_bits
    dev = target(family or "ice40", device)
    if dev.family != "ice40" or dev.spram < 4:
        raise ValueError(f"the lean core is built for the iCE40 UltraPlus (its SPRAM), not "
                         f"the {dev.label}")
    family = dev.family
    L = lean_layout(net, lanes)
    vb = max(net.layers[l].v_bits for l in L.chunks)
    gmax = max(L.groups.values())
    gl = index_bits(gmax)
    shapes = {"acc": (L.slots, max(2, L.acc_depth), L.acc_bits),
              "v": (1, max(2, L.v_depth), lanes * vb),
              "ring": (lanes if L.conv else 0, L.ring * L.f_groups, 1),
              "lists": (len(L.conv) + any(net.layers[l].spiking for l in list(L.chunks)[:-1]),
                        gmax, gl + lanes),
              "bias": (1, max(2, L.v_depth), lanes * L.bias_bits),
              "delays": (1 if L.conv else 0, max(2, L.f_groups), lanes * L.delay_bits),
              # The host link pairs the lean core with its serial read-out, whose running
              # sums live in block RAM.
              "readout": (0 if net.layers[-1].spiking else 1, max(2, net.layers[-1].n),
                          sum_bits(net, len(net.layers) - 1, DEFAULT_MAX_STEPS))}
    blocks = {k: n * blocks_of("block", family, depth, width) for k, (n, depth, width)
              in shapes.items() if n}
    beta = [net.layers[l].beta for l in L.chunks]
    dsp = lanes if any(b & (b - 1) for b in beta) else 0
    fit = lut_fit()
    lut = round(fit["fixed"] + fit["lane"] * lanes + fit["slot"] * L.slots)
    return Estimate(family=family, lanes=lanes, clock_mhz=clock_mhz,
                    memory_bits={"weights": L.words * WORD_BITS}, blocks=blocks, lut=lut,
                    dsp=dsp, cycles_per_step=float(cycles_per_step),
                    cycles_max=int(cycles_max), steps_per_sample=int(steps_per_sample),
                    kinds={"weights": "spram"}, spram={"weights": 4}, device=dev.name)
