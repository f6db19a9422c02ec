"""How polychrony's discrete integer steps and NIR's continuous-time neurons correspond.

NIR describes neurons by differential equations; polychrony steps them. Both directions use
**forward Euler with a step of** ``dt`` seconds (the convention snnTorch writes and reads,
``dt = 1e-4``). For a LIF node ``tau dv/dt = (v_leak - v) + r I`` one step is::

    v[t] = (1 - dt/tau) v[t-1] + (dt/tau) v_leak + (dt/tau) r I[t]

so a leak ``beta' = beta / 2**beta_shift`` is ``tau = dt / (1 - beta')`` with ``r = tau / dt``
(a unit gain from the current to the membrane), and without leak (``beta' = 1``) the node is
an IF (``dv/dt = r I``, ``r = 1 / dt``). ``docs/nir.md`` states every rule with a worked
example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DT", "NAMESPACE", "FORMAT", "VERSION", "NIRError", "Discrete", "discretise",
           "threshold_to_nir", "leak_to_nir"]

#: The default Euler step (seconds): snnTorch's, so that its reader and writer agree with ours.
DT = 1e-4
#: The metadata key under which polychrony keeps what NIR cannot say.
NAMESPACE = "polychrony"
FORMAT = "polychrony-nir"
VERSION = 1


class NIRError(ValueError):
    """A NIR graph polychrony cannot take (or a file that is not one): names file and node."""

    def __init__(self, message: str, *, node: str = "", file: str | None = None):
        self.message, self.node, self.file = message, node, file
        prefix = f"{file}: " if file else ""
        where = f"node '{node}': " if node else ""
        super().__init__(f"{prefix}{where}{message}")

    def in_file(self, file: str) -> "NIRError":
        return NIRError(self.message, node=self.node, file=file)


def leak_to_nir(beta: int, beta_shift: int, dt: float) -> tuple[float, float] | None:
    """``(tau, r)`` of the LIF/LI node for the integer leak ``beta / 2**beta_shift``, or None
    when there is no leak (``beta == 2**beta_shift``: an IF or I node with ``r = 1/dt``)."""
    b = beta / (1 << beta_shift)
    if b == 1.0:
        return None
    tau = dt / (1.0 - b)
    return tau, tau / dt


def threshold_to_nir(threshold: int) -> float:
    """NIR fires on ``v > v_threshold``, polychrony on ``v >= threshold`` over integers: any
    value in ``(threshold - 1, threshold)`` gives the same spikes; the midpoint is written."""
    return threshold - 0.5


@dataclass(frozen=True)
class Discrete:
    """A NIR neuron node in discrete time: ``v[t] = beta v[t-1] + gain * I[t] + drive`` per
    neuron, firing on ``v > threshold`` (None: a read-out) with reset to ``v_reset``."""

    beta: np.ndarray
    gain: np.ndarray
    drive: np.ndarray
    threshold: np.ndarray | None
    v_reset: np.ndarray | None


def _param(node, name: str, n: int, key: str) -> np.ndarray:
    a = np.asarray(getattr(node, name), dtype=np.float64)
    if a.size == 1:
        a = np.full(n, float(a.reshape(-1)[0]))
    a = a.reshape(-1)
    if a.size != n:
        raise NIRError(f"{name} has {a.size} values for {n} neurons", node=key)
    if np.isnan(a).any() or (name not in ("tau", "r") and not np.isfinite(a).all()):
        raise NIRError(f"{name} holds NaN or infinite values", node=key)
    return a


def discretise(node, n: int, dt: float, key: str) -> Discrete:
    """Forward-Euler discretisation of a NIR neuron node of ``n`` neurons (LIF, IF, LI, I)."""
    kind = type(node).__name__
    if kind in ("LIF", "LI"):
        tau = _param(node, "tau", n, key)
        r = _param(node, "r", n, key)
        v_leak = _param(node, "v_leak", n, key)
        if (tau <= 0).any():
            raise NIRError("tau must be > 0", node=key)
        a = dt / tau                      # tau = inf: no leak
        if (a > 1.0 + 1e-6).any():  # float32 parameters round dt/tau = 1 up a little
            raise NIRError(f"tau = {float(tau.min()):.6g} s is shorter than the step dt = "
                           f"{dt:.6g} s: forward Euler would give a negative leak; pass a "
                           "smaller --dt", node=key)
        beta = np.clip(1.0 - a, 0.0, 1.0)
        with np.errstate(invalid="ignore"):
            gain, drive = a * r, a * v_leak
        # tau = inf with r = tau/dt = inf (how snnTorch writes beta = 1): the unit gain of
        # the limit, and no v_leak drive.
        both = np.isinf(tau) & np.isinf(r)
        gain = np.where(both, 1.0, gain)
        drive = np.where(np.isinf(tau), 0.0, drive)
    elif kind in ("IF", "I"):
        r = _param(node, "r", n, key)
        beta, gain, drive = np.ones(n), dt * r, np.zeros(n)
    else:
        raise NIRError(f"{kind} is not a neuron polychrony can run", node=key)
    # float32 parameters (tau = dt/(1 - beta) in single precision) miss a unit gain by ~1e-7
    gain = np.where(np.abs(gain - 1.0) <= 1e-6, 1.0, gain)
    if not (np.isfinite(gain).all() and np.isfinite(drive).all()):
        raise NIRError("r or v_leak gives an infinite gain", node=key)
    if kind in ("LIF", "IF"):
        th = _param(node, "v_threshold", n, key)
        reset = _param(node, "v_reset", n, key)
        return Discrete(beta, gain, drive, th, reset)
    return Discrete(beta, gain, drive, None, None)
