"""Design rules: small named functions, each yielding ``(where, message)`` for every violation,
and :func:`check`, the one driver that names the first broken rule and its place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from .layers import MAX_BETA_SHIFT, MAX_BITS, MAX_DELAY, MAX_IN_BITS, InputLayer, IRError, LIFLayer

if TYPE_CHECKING:
    from .network import Network


def _fits_signed(a: np.ndarray | int, bits: int) -> bool:
    a = np.asarray(a)
    return a.size == 0 or (int(a.min()) >= -(1 << (bits - 1)) and int(a.max()) < 1 << (bits - 1))


def rule_structure(net: Network) -> Iterator[tuple[str, str]]:
    """Layer 0 is the only input layer; there is at least one LIF layer."""
    if not net.layers or not isinstance(net.layers[0], InputLayer):
        yield "layers[0]", "layer 0 must be the input layer"
    for i, layer in enumerate(net.layers[1:], 1):
        if isinstance(layer, InputLayer):
            yield f"layers[{i}]", "only layer 0 may be an input layer"
        elif not isinstance(layer, LIFLayer):
            yield f"layers[{i}]", f"must be a LIFLayer, got {type(layer).__name__}"
    if len(net.layers) < 2:
        yield "layers", "a network needs at least one LIF layer"
    names = [l.name for l in net.layers]
    if len(set(names)) != len(names):
        yield "layers", f"layer names must be unique, got {names}"


def rule_sizes(net: Network) -> Iterator[tuple[str, str]]:
    """Neuron counts and bit widths are in range."""
    for i, l in enumerate(net.layers):
        if isinstance(l, InputLayer):
            if not 0 <= l.n <= 1 << 16:
                yield f"{l.name}.n", f"must be in [0, 65536], got {l.n}"
            if not 1 <= l.in_bits <= MAX_IN_BITS:
                yield f"{l.name}.in_bits", f"must be in [1, {MAX_IN_BITS}], got {l.in_bits}"
            continue
        if not 1 <= l.n <= 1 << 16:
            yield f"{l.name}.n", f"must be in [1, 65536], got {l.n}"
        for f in ("v_bits", "acc_bits"):
            b = getattr(l, f)
            if not 2 <= b <= MAX_BITS:
                yield f"{l.name}.{f}", f"must be in [2, {MAX_BITS}], got {b}"
        if l.bias.shape != (l.n,):
            yield f"{l.name}.bias", f"must have shape ({l.n},), got {l.bias.shape}"


def rule_leak(net: Network) -> Iterator[tuple[str, str]]:
    """0 <= beta <= 2**beta_shift, 0 <= beta_shift <= 24, v_bits + beta_shift <= 63."""
    for l in net.layers[1:]:
        if not 0 <= l.beta_shift <= MAX_BETA_SHIFT:
            yield f"{l.name}.beta_shift", f"must be in [0, {MAX_BETA_SHIFT}], got {l.beta_shift}"
        elif not 0 <= l.beta <= 1 << l.beta_shift:
            yield f"{l.name}.beta", f"must be in [0, 2**beta_shift = {1 << l.beta_shift}], " \
                                    f"got {l.beta}"
        elif l.v_bits + l.beta_shift > 63:
            # |beta * v| < 2**(v_bits - 1 + beta_shift) must fit a signed 64-bit product
            yield f"{l.name}.beta_shift", f"v_bits + beta_shift must be <= 63 (beta * v in a " \
                                          f"signed 64-bit product), got {l.v_bits} + " \
                                          f"{l.beta_shift}"


def rule_threshold(net: Network) -> Iterator[tuple[str, str]]:
    """A threshold is positive and fits v_bits; a read-out layer has none and no forced input."""
    for l in net.layers[1:]:
        if l.threshold is None:
            if l.forced:
                yield f"{l.name}.forced", "a read-out layer (no threshold) cannot be forced"
        elif not 1 <= l.threshold <= l.v_max:
            yield f"{l.name}.threshold", f"must be in [1, 2**(v_bits-1)-1 = {l.v_max}], " \
                                         f"got {l.threshold}"


def rule_projection_shape(net: Network) -> Iterator[tuple[str, str]]:
    """Projections join existing layers, feed-forward or recurrent, with consistent shapes."""
    nl = len(net.layers)
    for p in net.projections:
        where = f"projection {p.src}->{p.dst}"
        if not (1 <= p.dst < nl and p.src in (p.dst - 1, p.dst)):
            yield where, "must feed layer dst >= 1 from layer dst-1 (feed-forward) or from " \
                         f"itself (recurrent); the network has {nl} layers"
            continue
        pre, post = net.layers[p.src], net.layers[p.dst]
        if p.recurrent and not post.spiking:
            yield where, "a read-out layer (no threshold) cannot have a recurrent projection"
        if not 1 <= p.w_bits <= MAX_BITS:
            yield f"{where}.w_bits", f"must be in [1, {MAX_BITS}], got {p.w_bits}"
        if p.kind == "dense":
            want = (post.n, pre.n)
        elif p.kind == "taps":
            want = (post.n, pre.n, p.weight.shape[2] if p.weight.ndim == 3 else 0)
            if p.weight.ndim == 3 and p.weight.shape[2] < 1:
                yield f"{where}.weight", "taps needs at least one tap (D >= 1)"
        else:
            want = p.weight.shape
            if p.weight.shape[0] % 2 != 1:
                yield f"{where}.weight", f"conv kernel length must be odd, got {p.weight.shape[0]}"
            if pre.n != post.n:
                yield where, f"conv needs equal layer sizes, got {pre.n} -> {post.n}"
        if p.weight.shape != want:
            yield f"{where}.weight", f"must have shape {want}, got {p.weight.shape}"
        if p.delay.ndim == 1 and p.delay.shape != (pre.n,):
            yield f"{where}.delay", f"must be a scalar or have shape ({pre.n},), " \
                                    f"got {p.delay.shape}"


def rule_weight_range(net: Network) -> Iterator[tuple[str, str]]:
    """Every weight fits its projection's signed w_bits."""
    for p in net.projections:
        if 1 <= p.w_bits <= MAX_BITS and not _fits_signed(p.weight, p.w_bits):
            lo, hi = -(1 << (p.w_bits - 1)), (1 << (p.w_bits - 1)) - 1
            yield f"projection {p.src}->{p.dst}.weight", \
                f"values must fit w_bits={p.w_bits} ([{lo}, {hi}]), got " \
                f"[{int(p.weight.min())}, {int(p.weight.max())}]"


def rule_delay_range(net: Network) -> Iterator[tuple[str, str]]:
    """Feed-forward delays >= 0, recurrent >= 1, all (including every tap) <= max_delay."""
    if not 0 <= net.max_delay <= MAX_DELAY:
        yield "network.max_delay", f"must be in [0, {MAX_DELAY}], got {net.max_delay}"
    for p in net.projections:
        if not p.delay.size:
            continue
        where = f"projection {p.src}->{p.dst}.delay"
        lo = 1 if p.recurrent else 0
        if p.min_delay < lo:
            yield where, f"{'recurrent' if p.recurrent else 'feed-forward'} delays must be " \
                         f">= {lo}, got {p.min_delay}"
        if p.max_delay > net.max_delay:
            yield where, f"longest delay {p.max_delay} exceeds the declared max_delay " \
                         f"{net.max_delay}"


def current_bounds(net: Network, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-neuron worst-case (lowest, highest) input current ``I`` of layer ``dst``.

    The bias plus every synapse into the neuron at its extreme input: ``2**in_bits - 1`` for a
    channel of the input layer, 1 (a spike) for a LIF layer, whatever the delays. A ``conv``
    neuron near an edge hears fewer presynaptic neurons (zero padding). Exact integers; a bound
    beyond +-2**62 (only a network that breaks the accumulator rule has one) saturates there.
    """
    post = net.layers[dst]
    terms = []  # (xmax, weight, kind) of every projection into dst
    scale = int(np.abs(post.bias).max()) if post.bias.size else 0
    for p in net.into(dst):
        pre = net.layers[p.src]
        xmax = pre.max_value if isinstance(pre, InputLayer) else 1
        terms.append((xmax, p.weight, p.kind))
        per_row = p.weight[0].size if p.kind != "conv" and p.weight.shape[0] else p.weight.size
        scale += xmax * per_row * (int(np.abs(p.weight).max()) if p.weight.size else 0)
    # int64 is exact while every partial sum stays below 2**62; otherwise use Python integers
    dt = np.int64 if scale < 1 << 62 else object
    lo = post.bias.astype(dt)
    hi = post.bias.astype(dt)
    for xmax, w, kind in terms:
        w = w.astype(dt)
        if kind == "dense":
            pos, neg = np.clip(w, 0, None).sum(1), np.clip(w, None, 0).sum(1)
        elif kind == "taps":
            pos, neg = np.clip(w, 0, None).sum((1, 2)), np.clip(w, None, 0).sum((1, 2))
        else:
            n, k = post.n, w.shape[0]
            c = (k - 1) // 2
            pos, neg = np.zeros(n, dt), np.zeros(n, dt)
            for t in range(k):  # post i hears pre j = i + t - c when 0 <= j < n
                first, stop = max(0, c - t), max(0, min(n, n + c - t))
                if first < stop:
                    pos[first:stop] += max(w[t], 0)
                    neg[first:stop] += min(w[t], 0)
        hi = hi + xmax * pos
        lo = lo + xmax * neg
    if dt is object:
        lim = 1 << 62
        lo = np.array([max(int(x), -lim) for x in lo], np.int64)
        hi = np.array([min(int(x), lim) for x in hi], np.int64)
    return lo, hi


def rule_accumulator(net: Network) -> Iterator[tuple[str, str]]:
    """The worst-case current (bias plus every synapse at its extreme input) fits acc_bits."""
    for dst, l in enumerate(net.layers):
        if dst == 0 or not 2 <= l.acc_bits <= MAX_BITS or l.bias.shape != (l.n,):
            continue
        lo, hi = current_bounds(net, dst)
        amin, amax = -(1 << (l.acc_bits - 1)), (1 << (l.acc_bits - 1)) - 1
        if int(lo.min()) < amin or int(hi.max()) > amax:
            yield f"{l.name}.acc_bits", \
                f"worst-case current [{int(lo.min())}, {int(hi.max())}] does not fit " \
                f"acc_bits={l.acc_bits} ([{amin}, {amax}]): accumulator overflow possible"


RULES: tuple[Callable[[Network], Iterator[tuple[str, str]]], ...] = (
    rule_structure, rule_sizes, rule_leak, rule_threshold, rule_projection_shape,
    rule_weight_range, rule_delay_range, rule_accumulator,
)


def check(net: Network, *, file: str | None = None) -> None:
    """Apply every design rule; raise :class:`IRError` naming the first broken rule and place."""
    for rule in RULES:
        for where, message in rule(net):
            raise IRError(message, rule=rule.__name__.removeprefix("rule_").replace("_", "-"),
                          where=where, file=file)
