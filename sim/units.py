"""Reference functions of the core's units (LIF update, delay line, read-out), one per hardware
unit."""

from __future__ import annotations

import numpy as np

from model.ir import LIFLayer

__all__ = ["lif_update", "DelayLineModel", "prediction"]


def lif_update(layer: LIFLayer, v: np.ndarray, i_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LIF update of ``layer`` for membranes ``v`` and currents ``i_in`` (int arrays).

    Returns ``(v_new, spike)``: ``u = (beta * v) >> beta_shift`` (floor), ``v_hat`` saturated
    to ``v_bits``, spike if ``v_hat >= threshold`` (never for a read-out), then the reset.
    """
    v = np.asarray(v, dtype=np.int64)
    u = (layer.beta * v) >> layer.beta_shift
    v_hat = np.clip(u + np.asarray(i_in, dtype=np.int64), layer.v_min, layer.v_max)
    if not layer.spiking:
        return v_hat, np.zeros(v_hat.shape, np.uint8)
    s = (v_hat >= layer.threshold).astype(np.uint8)
    if layer.reset == "zero":
        return np.where(s == 1, 0, v_hat), s
    return v_hat - layer.threshold * s, s


class DelayLineModel:
    """What :class:`rtl.delay_line.DelayLine` must return, step by step.

    ``write(index, value)`` sets presynaptic value ``index`` of the current step (values not
    written are 0); ``values(offsets)`` returns, for every presynaptic index j, the value
    written ``offsets[j]`` steps ago (0 before the first step); ``advance()`` ends the step.
    """

    def __init__(self, n: int, slots: int):
        self.n, self.slots, self.t = n, slots, 0
        self.history: dict[int, np.ndarray] = {}

    def write(self, index: int, value: int) -> None:
        self.history.setdefault(self.t, np.zeros(self.n, np.int64))[index] = value

    def values(self, offsets) -> np.ndarray:
        off = np.broadcast_to(np.asarray(offsets, np.int64), (self.n,))
        if off.min() < 0 or off.max() >= self.slots:
            raise ValueError(f"offsets must be in [0, {self.slots - 1}]")
        zero = np.zeros(self.n, np.int64)
        return np.array([self.history.get(self.t - int(o), zero)[j]
                         for j, o in enumerate(off)], np.int64)

    def advance(self) -> None:
        self.t += 1
        self.history.pop(self.t - self.slots, None)


def prediction(v: np.ndarray) -> int:
    """The read-out's prediction from a read-out layer's (T, n) membranes:
    ``argmax_i sum_t v_i(t)``, the first maximum on ties (reference of
    :class:`rtl.link.readout.Readout`)."""
    v = np.asarray(v)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(f"v must be a non-empty (T, n) array, got shape {v.shape}")
    total = v.astype(object).sum(0) if v.shape[0] >= 1 << 14 else v.astype(np.int64).sum(0)
    return int(np.argmax(total))
