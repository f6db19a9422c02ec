"""The IR's building blocks: the contract's limits, its error type, and the layer and projection
records (:class:`InputLayer`, :class:`LIFLayer`, :class:`Projection`), each checked field by field
as it is made. Everything here is an integer (numpy only, no torch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np

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


def int_field(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise IRError(f"must be an integer, got {value!r}", rule="integer-field", where=name)
    return int(value)


def name_field(value, where: str) -> str:
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


def json_meta(meta) -> dict:
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
        name_field(self.name, "input layer name")
        object.__setattr__(self, "n", int_field(self.n, f"{self.name}.n"))
        object.__setattr__(self, "in_bits", int_field(self.in_bits, f"{self.name}.in_bits"))

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
        name_field(self.name, "LIF layer name")
        for f in ("n", "v_bits", "acc_bits", "beta", "beta_shift"):
            object.__setattr__(self, f, int_field(getattr(self, f), f"{self.name}.{f}"))
        if self.threshold is not None:
            object.__setattr__(self, "threshold",
                               int_field(self.threshold, f"{self.name}.threshold"))
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
            object.__setattr__(self, f, int_field(getattr(self, f), f"{where}.{f}"))
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
