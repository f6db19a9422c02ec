"""QuantNet IR: the integer description of a network, its file format and its design rules.

Everything here is an integer. The semantics are in ``docs/semantics.md``; the file format is
in ``docs/ir.md``. This module imports numpy only (no torch), so that ``sim``, ``rtl`` and
``boards`` can use it on a machine without PyTorch.

A network is an ordered tuple of layers (layer 0 is the :class:`InputLayer`, the rest are
:class:`LIFLayer`) and a tuple of :class:`Projection` objects that feed a layer either from the
layer before it (feed-forward, delay >= 0) or from itself (recurrent, delay >= 1).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

import numpy as np

__all__ = [
    "FORMAT", "VERSION", "IRError", "InputLayer", "LIFLayer", "Projection", "Network",
    "RULES", "check", "save", "load", "digest", "current_bounds",
]

FORMAT = "polychrony-ir"
VERSION = 1

#: Hard limits of the contract (not of any particular piece of hardware).
MAX_BITS = 48          # widest v, accumulator, weight or bias the contract allows
MAX_IN_BITS = 16
MAX_BETA_SHIFT = 24
MAX_DELAY = 1 << 12

Reset = Literal["zero", "subtract"]
Kind = Literal["dense", "taps", "conv"]


class IRError(ValueError):
    """A network or IR file breaks the contract. ``rule`` and ``where`` say which and where."""

    def __init__(self, message: str, *, rule: str = "format", where: str = "",
                 file: str | None = None):
        self.message, self.rule, self.where, self.file = message, rule, where, file
        prefix = f"{file}: " if file else ""
        loc = f" [{where}]" if where else ""
        super().__init__(f"{prefix}{rule}{loc}: {message}")

    def in_file(self, file: str) -> "IRError":
        """The same error, attributed to ``file``."""
        return IRError(self.message, rule=self.rule, where=self.where, file=file)

    def __reduce__(self):  # keep rule/where/file across pickling (multiprocessing, xdist)
        return _rebuild_error, (self.message, self.rule, self.where, self.file)


def _rebuild_error(message, rule, where, file):
    return IRError(message, rule=rule, where=where, file=file)


def _frozen_int_array(a, name: str, *, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.size == 0 and arr.dtype.kind == "f":  # np.asarray([]) is float64: no values, fine
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iub":
        raise IRError(f"must hold integers, got dtype {arr.dtype}", rule="integer-dtype",
                      where=name)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        raise IRError(f"must have {' or '.join(map(str, ndims))} dimensions, got shape "
                      f"{arr.shape}", rule="shape", where=name)
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise IRError("value does not fit int64", rule="integer-range", where=name)
    out = np.array(arr, dtype=np.int64, copy=True)
    out.setflags(write=False)
    return out


def _index(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise IRError(f"must be an integer, got {value!r}", rule="integer-field", where=name)
    return int(value)


def _name(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise IRError(f"must be a non-empty string, got {value!r}", rule="field-type",
                      where=where)
    return value


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not a JSON value")


def _json_meta(meta) -> dict:
    """``meta`` as it reads back from a file: a JSON object (string keys, no NaN/inf)."""
    if not isinstance(meta, dict):
        raise IRError(f"must be a dict, got {type(meta).__name__}", rule="field-type",
                      where="network.meta")
    try:
        return json.loads(json.dumps(meta, allow_nan=False, default=_json_default))
    except (TypeError, ValueError) as e:
        raise IRError(f"must hold JSON values only ({e})", rule="field-type",
                      where="network.meta") from None


@dataclass(frozen=True, eq=False)
class InputLayer:
    """Layer 0: ``n`` channels, each an unsigned integer in ``[0, 2**in_bits - 1]`` per step."""

    n: int
    in_bits: int = 1
    name: str = "input"

    def __post_init__(self):
        _name(self.name, "input layer name")
        object.__setattr__(self, "n", _index(self.n, f"{self.name}.n"))
        object.__setattr__(self, "in_bits", _index(self.in_bits, f"{self.name}.in_bits"))

    @property
    def max_value(self) -> int:
        return (1 << self.in_bits) - 1


@dataclass(frozen=True, eq=False)
class LIFLayer:
    """A population of ``n`` leaky integrate-and-fire neurons (or a read-out if no threshold).

    Per step: ``u = (beta * v) >> beta_shift``; ``v_hat = sat_v_bits(u + I)``; spike if
    ``v_hat >= threshold``; reset ``zero`` or ``subtract``. ``acc_bits`` is the declared width of
    the input current ``I`` (bias included). ``forced`` says the layer takes a forced raster.
    """

    n: int
    v_bits: int
    acc_bits: int
    beta: int
    beta_shift: int
    threshold: int | None
    reset: Reset = "zero"
    bias: np.ndarray | None = None
    forced: bool = False
    name: str = "lif"

    def __post_init__(self):
        _name(self.name, "LIF layer name")
        for f in ("n", "v_bits", "acc_bits", "beta", "beta_shift"):
            object.__setattr__(self, f, _index(getattr(self, f), f"{self.name}.{f}"))
        if self.threshold is not None:
            object.__setattr__(self, "threshold",
                               _index(self.threshold, f"{self.name}.threshold"))
        if self.reset not in ("zero", "subtract"):
            raise IRError(f"must be 'zero' or 'subtract', got {self.reset!r}",
                          rule="reset-mode", where=f"{self.name}.reset")
        if not isinstance(self.forced, (bool, np.bool_)):
            raise IRError(f"must be true or false, got {self.forced!r}", rule="integer-field",
                          where=f"{self.name}.forced")
        object.__setattr__(self, "forced", bool(self.forced))
        bias = np.zeros(self.n, np.int64) if self.bias is None else self.bias
        object.__setattr__(self, "bias", _frozen_int_array(bias, f"{self.name}.bias", ndim=1))

    @property
    def spiking(self) -> bool:
        return self.threshold is not None

    @property
    def v_min(self) -> int:
        return -(1 << (self.v_bits - 1))

    @property
    def v_max(self) -> int:
        return (1 << (self.v_bits - 1)) - 1


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from layer ``src`` into layer ``dst`` (``src == dst - 1`` or ``src == dst``).

    * ``dense``: ``weight[i, j]``, ``delay`` a scalar or one delay per presynaptic neuron ``j``;
    * ``taps``: ``weight[i, j, k]`` with delay ``delay + k`` (``delay`` is the scalar ``d0``);
    * ``conv``: shared kernel ``weight[k]`` (odd length K); post ``i`` hears pre
      ``j = i + k - (K - 1) // 2`` (zero padding) with that presynaptic neuron's delay.
    """

    kind: Kind
    src: int
    dst: int
    w_bits: int
    weight: np.ndarray
    delay: np.ndarray

    def __post_init__(self):
        where = f"projection {self.src}->{self.dst}"
        if self.kind not in ("dense", "taps", "conv"):
            raise IRError(f"kind must be dense, taps or conv, got {self.kind!r}",
                          rule="projection-kind", where=where)
        for f in ("src", "dst", "w_bits"):
            object.__setattr__(self, f, _index(getattr(self, f), f"{where}.{f}"))
        wdim = {"dense": 2, "taps": 3, "conv": 1}[self.kind]
        object.__setattr__(self, "weight",
                           _frozen_int_array(self.weight, f"{where}.weight", ndim=wdim))
        ddim = (0,) if self.kind == "taps" else (0, 1)
        object.__setattr__(self, "delay",
                           _frozen_int_array(self.delay, f"{where}.delay", ndim=ddim))

    @property
    def recurrent(self) -> bool:
        return self.src == self.dst

    @property
    def n_taps(self) -> int:
        """Delay taps per synapse (``D`` for ``taps``, 1 otherwise)."""
        return int(self.weight.shape[2]) if self.kind == "taps" else 1

    def delays_of_pre(self, n_pre: int) -> np.ndarray:
        """Delay of each presynaptic neuron's first tap, shape ``(n_pre,)``."""
        return np.broadcast_to(self.delay, (n_pre,)).astype(np.int64)

    @property
    def min_delay(self) -> int:
        return int(self.delay.min()) if self.delay.size else 0

    @property
    def max_delay(self) -> int:
        return int(self.delay.max()) + self.n_taps - 1 if self.delay.size else 0


@dataclass(frozen=True, eq=False)
class Network:
    """Layers (layer 0 is the input), projections and the declared maximum delay."""

    layers: tuple
    projections: tuple
    max_delay: int
    name: str = "net"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "projections", tuple(self.projections))
        object.__setattr__(self, "max_delay", _index(self.max_delay, "network.max_delay"))
        _name(self.name, "network.name")
        object.__setattr__(self, "meta", _json_meta(self.meta))
        check(self)

    @property
    def input(self) -> InputLayer:
        return self.layers[0]

    def into(self, dst: int) -> list[Projection]:
        """The projections that feed layer ``dst``, in file order."""
        return [p for p in self.projections if p.dst == dst]

    @property
    def forced_layers(self) -> list[int]:
        return [i for i, l in enumerate(self.layers) if i and l.forced]

    @property
    def digest(self) -> str:
        return digest(self)

    def __eq__(self, other) -> bool:
        return isinstance(other, Network) and digest(self) == digest(other)

    def __hash__(self) -> int:
        return hash(digest(self))


# --------------------------------------------------------------------------------------------
# Design rules: small named functions, each yielding (where, message) for every violation.

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


# --------------------------------------------------------------------------------------------
# File format: one .npz (a zip of .npy entries); entry "header" is UTF-8 JSON stored as uint8,
# the rest are integer arrays named by the header. docs/ir.md is the reference for other tools.

_NONE = type(None)
_TOP_FIELDS = {"format": str, "version": int, "name": str, "max_delay": int, "layers": list,
               "projections": list, "meta": dict, "digest": str}
_INPUT_FIELDS = {"kind": str, "name": str, "n": int, "in_bits": int}
_LIF_FIELDS = {"kind": str, "name": str, "n": int, "v_bits": int, "acc_bits": int, "beta": int,
               "beta_shift": int, "threshold": (int, _NONE), "reset": str, "forced": bool,
               "bias": str}
_PROJ_FIELDS = {"kind": str, "src": int, "dst": int, "w_bits": int, "weight": str,
                "delay": str}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed entry time stamps: the same net gives the same bytes


def _layer_header(i: int, l) -> dict:
    if isinstance(l, InputLayer):
        return {"kind": "input", "name": l.name, "n": l.n, "in_bits": l.in_bits}
    return {"kind": "lif", "name": l.name, "n": l.n, "v_bits": l.v_bits, "acc_bits": l.acc_bits,
            "beta": l.beta, "beta_shift": l.beta_shift, "threshold": l.threshold,
            "reset": l.reset, "forced": l.forced, "bias": f"layer{i}.bias"}


def _proj_header(k: int, p: Projection) -> dict:
    return {"kind": p.kind, "src": p.src, "dst": p.dst, "w_bits": p.w_bits,
            "weight": f"proj{k}.weight", "delay": f"proj{k}.delay"}


def _arrays(net: Network) -> dict[str, np.ndarray]:
    out = {}
    for i, l in enumerate(net.layers):
        if isinstance(l, LIFLayer):
            out[f"layer{i}.bias"] = l.bias
    for k, p in enumerate(net.projections):
        out[f"proj{k}.weight"] = p.weight
        out[f"proj{k}.delay"] = p.delay
    return out


def _header(net: Network) -> dict:
    return {"format": FORMAT, "version": VERSION, "name": net.name, "max_delay": net.max_delay,
            "layers": [_layer_header(i, l) for i, l in enumerate(net.layers)],
            "projections": [_proj_header(k, p) for k, p in enumerate(net.projections)],
            "meta": net.meta}


def _digest(header: dict, arrays: dict[str, np.ndarray]) -> str:
    # docs/ir.md ("Content digest") specifies this byte for byte; change both or neither.
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "digest"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.asarray(arrays[name], dtype="<i8")  # not ascontiguousarray: it makes () into (1,)
        h.update(f"\n{name}:{list(a.shape)}\n".encode())
        h.update(a.tobytes(order="C"))
    return "sha256:" + h.hexdigest()


def digest(net: Network) -> str:
    """Content digest: SHA-256 over the canonical header and every array as little-endian int64."""
    return _digest(_header(net), _arrays(net))


def _storage_dtype(a: np.ndarray) -> np.dtype:
    if a.size == 0:
        return np.dtype("<i1")
    lo, hi = int(a.min()), int(a.max())
    for dt in ("<i1", "<i2", "<i4", "<i8"):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    raise AssertionError("unreachable: arrays are int64")


def save(net: Network, path: str | Path) -> Path:
    """Write ``net`` to ``path`` (.npz, deflated) and return the path.

    Arrays are stored in the narrowest signed integer type that holds them. The same network
    always gives the same bytes (fixed zip time stamps); the file is replaced atomically.
    """
    path = Path(path)
    header = _header(net)
    arrays = _arrays(net)
    header["digest"] = _digest(header, arrays)
    text = json.dumps(header, indent=1, allow_nan=False)
    entries = {"header": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    entries.update({k: v.astype(_storage_dtype(v)) for k, v in arrays.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(entries):x}.tmp")
    f = open(tmp, "xb")
    try:
        with f, zipfile.ZipFile(f, "w") as zf:
            for name, a in entries.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, whatever the host: same bytes everywhere
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=a.nbytes > 1 << 30) as entry:
                    np.lib.format.write_array(entry, a, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate key(s) {dup}")
    return dict(pairs)


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def _fields(d, spec: dict, where: str, file: str) -> dict:
    """``d`` checked against ``spec`` (field -> type): nothing missing, unknown or mistyped."""
    if not isinstance(d, dict):
        raise IRError("must be a JSON object", rule="field-type", where=where, file=file)
    for key, types in spec.items():
        if key not in d:
            raise IRError(f"missing field {key!r}", rule="missing-field", where=where,
                          file=file)
        v = d[key]
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            want = " or ".join("null" if t is _NONE else t.__name__ for t in types)
            raise IRError(f"field {key!r} must be {want}, got {type(v).__name__} {v!r}"[:200],
                          rule="field-type", where=where, file=file)
    extra = sorted(set(d) - set(spec))
    if extra:
        raise IRError(f"unknown field(s) {extra} (version {VERSION} has exactly "
                      f"{sorted(spec)})", rule="unknown-field", where=where, file=file)
    return d


class _Archive:
    """The .npy entries of a zip file, read without ever unpickling."""

    def __init__(self, path: Path, file: str):
        self.file = file
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise IRError("no such file", rule="file", file=file) from None
        except zipfile.BadZipFile:
            raise IRError("not a zip archive (an IR file is an .npz: a zip of .npy entries)",
                          rule="file", file=file) from None
        except (OSError, ValueError, EOFError) as e:
            raise IRError(f"cannot be read ({e})", rule="file", file=file) from None
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in self.entries:
                self.zip.close()
                what = "duplicate" if name.endswith(".npy") else "non-.npy"
                raise IRError(f"{what} archive entry {name!r}", rule="format", where="archive",
                              file=file)
            self.entries[name[:-4]] = info

    def close(self):
        self.zip.close()

    def read(self, name: str, where: str, *, widen: bool = True) -> np.ndarray:
        """Return entry ``name`` (without ``.npy``), an integer array, as int64 if ``widen``.

        Any other dtype is refused from the .npy header, before the data is read.
        """
        file = self.file
        if name not in self.entries:
            raise IRError(f"array {name!r} is missing from the archive", rule="missing-field",
                          where=where, file=file)
        info = self.entries[name]
        try:
            with self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
            if dtype.hasobject or dtype.kind not in "iu":
                raise IRError(f"array {name!r} must hold integers, got dtype {dtype}"
                              + (" (object arrays would need unpickling; they are never read)"
                                 if dtype.hasobject else ""),
                              rule="integer-dtype", where=where, file=file)
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise ValueError(f"shape {shape} needs more data than the entry holds")
            data = self.zip.read(info)  # the whole entry, so that its CRC is checked
            a = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except IRError:
            raise
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError,
                MemoryError) as e:
            raise IRError(f"array {name!r} cannot be read ({e})", rule="file", where=where,
                          file=file) from None
        if not widen:
            return a
        if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise IRError(f"array {name!r} holds a value that does not fit int64",
                          rule="integer-range", where=where, file=file)
        return a.astype(np.int64)


def _read_header(archive: _Archive, file: str) -> dict:
    if "header" not in archive.entries:
        raise IRError("missing 'header' entry", rule="missing-field", where="header", file=file)
    raw = archive.read("header", "header", widen=False)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise IRError(f"entry 'header' must be a 1-D uint8 array, got {raw.dtype} with shape "
                      f"{raw.shape}", rule="format", where="header", file=file)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                            parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise IRError(f"header is not valid UTF-8 JSON ({e})", rule="format", where="header",
                      file=file) from None
    if not isinstance(header, dict):
        raise IRError("header must be a JSON object", rule="format", where="header", file=file)
    if header.get("format") != FORMAT:
        raise IRError(f"field 'format' must be {FORMAT!r}, got {header.get('format')!r}",
                      rule="format", where="header.format", file=file)
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        raise IRError(f"unknown version {version!r}; this polychrony reads version {VERSION}",
                      rule="version", where="header.version", file=file)
    _fields(header, _TOP_FIELDS, "header", file)
    for i, lh in enumerate(header["layers"]):
        where = f"layers[{i}]"
        kind = lh.get("kind") if isinstance(lh, dict) else None
        spec = {"input": _INPUT_FIELDS, "lif": _LIF_FIELDS}.get(kind)
        if spec is None:
            if not isinstance(lh, dict):
                raise IRError("must be a JSON object", rule="field-type", where=where,
                              file=file)
            raise IRError(f"unknown layer kind {kind!r} (must be 'input' or 'lif')",
                          rule="format", where=f"{where}.kind", file=file)
        _fields(lh, spec, where, file)
        if kind == "lif" and lh["bias"] != f"layer{i}.bias":
            raise IRError(f"field 'bias' must name the entry 'layer{i}.bias', got "
                          f"{lh['bias']!r}", rule="format", where=f"{where}.bias", file=file)
    for k, ph in enumerate(header["projections"]):
        where = f"projections[{k}]"
        _fields(ph, _PROJ_FIELDS, where, file)
        for f in ("weight", "delay"):
            if ph[f] != f"proj{k}.{f}":
                raise IRError(f"field {f!r} must name the entry 'proj{k}.{f}', got {ph[f]!r}",
                              rule="format", where=f"{where}.{f}", file=file)
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", header["digest"]):
        raise IRError(f"field 'digest' must be 'sha256:' and 64 lowercase hex digits, got "
                      f"{header['digest']!r}"[:200], rule="format", where="header.digest",
                      file=file)
    return header


def load(path: str | Path) -> Network:
    """Read and check an IR file. Never unpickles; every problem raises :class:`IRError`.

    Order: container, header fields, array dtypes, content digest, then the design rules.
    """
    path = Path(path)
    file = str(path)
    archive = _Archive(path, file)
    try:
        header = _read_header(archive, file)
        arrays = {}
        for i, lh in enumerate(header["layers"]):
            if lh["kind"] == "lif":
                arrays[lh["bias"]] = archive.read(lh["bias"], f"layers[{i}].bias")
        for k, ph in enumerate(header["projections"]):
            for f in ("weight", "delay"):
                arrays[ph[f]] = archive.read(ph[f], f"projections[{k}].{f}")
        extra = sorted(set(archive.entries) - set(arrays) - {"header"})
        if extra:
            raise IRError(f"archive entries {extra} are not named by the header",
                          rule="unknown-field", where="archive", file=file)
    finally:
        archive.close()
    stored = header["digest"]
    actual = _digest(header, arrays)
    if actual != stored:
        raise IRError(f"content digest mismatch: header says {stored}, contents hash to "
                      f"{actual} (the file was changed after it was written)",
                      rule="digest", where="header.digest", file=file)
    try:
        layers = []
        for i, lh in enumerate(header["layers"]):
            if lh["kind"] == "input":
                layers.append(InputLayer(n=lh["n"], in_bits=lh["in_bits"], name=lh["name"]))
            else:
                layers.append(LIFLayer(
                    n=lh["n"], v_bits=lh["v_bits"], acc_bits=lh["acc_bits"], beta=lh["beta"],
                    beta_shift=lh["beta_shift"], threshold=lh["threshold"], reset=lh["reset"],
                    forced=lh["forced"], bias=arrays[lh["bias"]], name=lh["name"]))
        projections = [Projection(kind=ph["kind"], src=ph["src"], dst=ph["dst"],
                                  w_bits=ph["w_bits"], weight=arrays[ph["weight"]],
                                  delay=arrays[ph["delay"]])
                       for ph in header["projections"]]
        net = Network(layers=layers, projections=projections, max_delay=header["max_delay"],
                      name=header["name"], meta=header["meta"])
    except IRError as e:
        raise e.in_file(file) from None
    if digest(net) != stored:  # cannot happen for a file that passed the checks above
        raise IRError("the header is not in canonical form (its digest differs from the "
                      "network's)", rule="digest", where="header", file=file)
    return net
