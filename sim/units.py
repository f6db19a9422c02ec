"""Reference functions of the core's units (LIF update, delay line), one per hardware unit."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from model.ir import LIFLayer

__all__ = ["lif_update", "DelayLineModel"]


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

    ``push(index, value, delay)`` at step t (``delay`` ignored in history mode), ``read(offset)``
    lists the events of slot t - offset (history) or of arrivals at t (arrival, which empties
    it), in push order; ``advance()`` ends the step.
    """

    def __init__(self, mode: str, slots: int):
        self.mode, self.slots, self.t = mode, slots, 0
        self.events = defaultdict(list)

    def push(self, index: int, value: int, delay: int = 0) -> None:
        at = self.t + (delay if self.mode == "arrival" else 0)
        self.events[at].append((index, value))

    def read(self, offset: int = 0) -> list[tuple[int, int]]:
        if self.mode == "arrival":
            return self.events.pop(self.t, [])
        return list(self.events.get(self.t - offset, []))

    def advance(self) -> None:
        self.t += 1
        self.events.pop(self.t - self.slots, None)
