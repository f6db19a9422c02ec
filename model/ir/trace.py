"""What a run of a network produces, as the contract defines it: the :class:`Trace` (spike
rasters, membranes, prediction), the first :class:`Mismatch` between two traces, the
:func:`prediction` rule, and :func:`validate_inputs`, the one check of a stimulus that every
implementation (reference, literal simulator, host driver) applies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network

__all__ = ["Trace", "Mismatch", "prediction", "validate_inputs"]


def prediction(v: np.ndarray) -> int:
    """The read-out rule: ``argmax_i sum_t v_i(t)`` of a ``(T, n)`` membrane record, lowest
    index on ties."""
    # Python-int sums once T * 2**v_bits could overflow int64; argmax picks the first maximum.
    total = v.sum(0, dtype=object) if v.shape[0] >= 1 << 14 else v.sum(0)
    return int(np.argmax(total))


@dataclass(frozen=True)
class Mismatch:
    """The first place two traces differ. ``field`` is ``"spike"``, ``"v"`` or ``"prediction"``."""

    t: int
    layer: int
    neuron: int
    field: str
    expected: int
    got: int

    def __str__(self) -> str:
        if self.field == "prediction":
            return f"prediction: expected {self.expected}, got {self.got}"
        return (f"t={self.t} layer={self.layer} neuron={self.neuron} {self.field}: "
                f"expected {self.expected}, got {self.got}")


@dataclass(frozen=True, eq=False)
class Trace:
    """What a run produces.

    ``spikes[l]`` is the ``(T, n)`` uint8 raster of the neuron's own spikes ``s(t)`` of every
    spiking layer ``l`` (forced spikes are not included); ``v[l]`` is the ``(T, n)`` int64
    membrane after reset of every LIF layer; ``prediction`` is ``argmax_i sum_t v_i(t)`` of the
    last layer when it is a read-out (lowest index wins ties), else ``None``.
    """

    spikes: dict[int, np.ndarray]
    v: dict[int, np.ndarray]
    prediction: int | None

    @classmethod
    def from_outputs(cls, spikes: dict[int, np.ndarray], v: dict[int, np.ndarray]) -> "Trace":
        """A trace of another implementation's outputs, its prediction derived from ``v`` as
        the contract defines it (a read-out last layer), so that it can be compared."""
        last = max(v)
        pred = None if last in spikes else prediction(v[last])
        return cls(spikes=spikes, v=v, prediction=pred)

    @property
    def steps(self) -> int:
        return next(iter(self.v.values())).shape[0] if self.v else 0

    def first_mismatch(self, other: "Trace") -> Mismatch | None:
        """Return where ``other`` (got) first departs from ``self`` (expected), or ``None``.

        The order is t, then layer, then neuron, and ``spike`` before ``v`` for one neuron. When
        every step agrees but the predictions differ, the field is ``"prediction"`` (t = T,
        neuron = -1, a missing prediction counts as -1). Traces of different layers or shapes
        cannot be compared and raise ``ValueError``.
        """
        if sorted(self.spikes) != sorted(other.spikes) or sorted(self.v) != sorted(other.v):
            raise ValueError(f"traces cover different layers: spikes {sorted(self.spikes)} / "
                             f"{sorted(other.spikes)}, v {sorted(self.v)} / {sorted(other.v)}")
        diffs = []  # (layer, field, expected, got, per-element difference mask)
        for l in sorted(self.v):
            for field, a, b in (("spike", self.spikes.get(l), other.spikes.get(l)),
                                ("v", self.v[l], other.v[l])):
                if a is None:
                    continue
                if a.shape != b.shape:
                    raise ValueError(f"layer {l} {field}: shapes differ, expected {a.shape}, "
                                     f"got {b.shape}")
                diffs.append((l, field, a, b, a != b))
        firsts = [int(np.argmax(m.any(1))) for *_, m in diffs if m.any()]
        if firsts:
            t = min(firsts)
            # Within a step: layer, then neuron, then spike before v; sort the candidates so.
            cands = []
            for l, field, a, b, m in diffs:
                bad = np.flatnonzero(m[t])
                if bad.size:
                    cands.append((l, int(bad[0]), field != "spike", field, a, b))
            l, i, _, field, a, b = min(cands, key=lambda c: c[:3])
            return Mismatch(t, l, i, field, int(a[t, i]), int(b[t, i]))
        if self.prediction != other.prediction:
            last = max(self.v) if self.v else 0
            pe = -1 if self.prediction is None else self.prediction
            pg = -1 if other.prediction is None else other.prediction
            return Mismatch(self.steps, last, -1, "prediction", pe, pg)
        return None

    def __eq__(self, other) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        try:
            return self.first_mismatch(other) is None
        except ValueError:
            return False

    __hash__ = None


# --------------------------------------------------------------------------------------------
# Input validation: every implementation checks a stimulus the same way.

def _int_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr


def validate_inputs(net: Network, x=None, forced=None, steps: int | None = None
                    ) -> tuple[np.ndarray, dict[int, np.ndarray], int]:
    """Check a stimulus against ``net``; return ``(x, forced, T)`` as int64 / uint8 arrays.

    ``x`` is ``(T, n0)`` with values in ``[0, 2**in_bits - 1]`` (``None`` means zeros and then
    ``steps`` is required); ``forced`` maps a layer declared ``forced=True`` to a ``(T, n)``
    0/1 raster (a forced layer left out gets zeros). Every problem raises ``ValueError``.
    """
    if not isinstance(net, Network):
        raise ValueError(f"net must be a model.ir.Network, got {type(net).__name__}")
    n0, in_bits = net.input.n, net.input.in_bits
    if steps is not None:
        if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
            raise ValueError(f"steps must be an integer, got {steps!r}")
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
    if x is None:
        if steps is None:
            raise ValueError("steps is required when x is None")
        x = np.zeros((steps, n0), np.int64)
    else:
        x = _int_array(x, "x")
        if x.ndim != 2 or x.shape[1] != n0:
            raise ValueError(f"x must have shape (T, n0={n0}), got {x.shape}")
        if steps is not None and x.shape[0] != steps:
            raise ValueError(f"x has {x.shape[0]} steps but steps={steps}")
        hi = (1 << in_bits) - 1
        if x.size and (int(x.min()) < 0 or int(x.max()) > hi):
            raise ValueError(f"x values must be in [0, 2**in_bits - 1 = {hi}] "
                             f"(in_bits={in_bits}), got [{int(x.min())}, {int(x.max())}]")
        x = x.astype(np.int64)
    T = x.shape[0]
    forced = {} if forced is None else forced
    if not isinstance(forced, dict):
        raise ValueError(f"forced must be a dict {{layer: raster}}, got {type(forced).__name__}")
    allowed = net.forced_layers
    out = {}
    for l, f in forced.items():
        if isinstance(l, (bool, np.bool_)) or not isinstance(l, (int, np.integer)):
            raise ValueError(f"forced keys must be layer indices, got {l!r}")
        l = int(l)
        if l not in allowed:
            raise ValueError(f"forced[{l}]: layer {l} does not take a forced raster "
                             f"(layers declared forced=True: {allowed})")
        f = _int_array(f, f"forced[{l}]")
        n = net.layers[l].n
        if f.shape != (T, n):
            raise ValueError(f"forced[{l}] must have shape (T={T}, n={n}), got {f.shape}")
        if f.size and (int(f.min()) < 0 or int(f.max()) > 1):
            raise ValueError(f"forced[{l}] must hold 0/1, got [{int(f.min())}, {int(f.max())}]")
        out[l] = f.astype(np.uint8)
    for l in allowed:
        out.setdefault(l, np.zeros((T, net.layers[l].n), np.uint8))
    return x, out, T


# --------------------------------------------------------------------------------------------
