"""Perturbed recall trials of the robustness sweeps: cues flipped, moved or cut, neurons silenced.

Perturbations (all random choices from ``numpy.random.default_rng([seed, 2, kind])``, so the
same seed perturbs the same way in float and integer, and the flips of a lower level are a
subset of those of a higher one):

- ``"none"``: the paper's trial.
- ``"flip"``, level = fraction f of the cue's ``n * d`` bits: exactly ``round(f * n * d)``
  uniformly chosen bits of each pattern's cue window are inverted (a spike becomes silence, a
  silence a spike; at p_A = 2e-3 nearly all flips *add* spikes).
- ``"move"``, level = fraction f of the cue's spikes: ``round(f * S)`` of each cue's ``S``
  spikes are removed and as many spikes added at uniformly chosen silent cue positions (the
  spike count is kept: the "percentage of cue spikes flipped" reading).
- ``"truncate"``, level = c: only the first ``c`` of the ``d`` cue steps are forced.
- ``"silence"``, level = k: k random neurons never fire (their forced cue spikes still pass).
  ``f1_*`` scores all neurons (a silenced neuron's target spikes are misses); ``f1_*_active``
  scores only the others.
- ``"noise"``, level = q: extra forced spikes, Bernoulli(q) per neuron and step, during free
  recall (steps ``pre + d .. pre + T``).
"""

from __future__ import annotations

import numpy as np

from model.wm.grids import PERTURBATIONS
from model.wm.recall import trial_forcing

__all__ = ["flip_cue_bits", "move_cue_spikes", "truncate_cue", "silence_mask",
           "add_recall_noise", "perturbed_trial"]

# --------------------------------------------------------------------------------------------
# Perturbations

def _rng(seed: int, kind: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), 2, PERTURBATIONS.index(kind)])


def flip_cue_bits(forced: np.ndarray, *, pre: int, d: int, frac: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Invert exactly ``round(frac * n * d)`` uniformly chosen bits of each pattern's cue
    window (steps ``[pre, pre + d)``). Returns the new forced rasters and the number of bits
    flipped per pattern. Lower fractions flip a prefix of the same random order."""
    f = np.array(forced, dtype=bool, copy=True)
    m, _, n = f.shape
    bits = n * d
    k = int(round(frac * bits))
    rng = _rng(seed, "flip")
    for mu in range(m):
        order = rng.permutation(bits)[:k]
        win = f[mu, pre:pre + d].reshape(-1)
        win[order] ^= True
        f[mu, pre:pre + d] = win.reshape(d, n)
    return f, np.full(m, k)


def move_cue_spikes(forced: np.ndarray, *, pre: int, d: int, frac: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Move ``round(frac * S)`` of each cue's ``S`` spikes to uniformly chosen silent cue
    positions (spike count kept). Returns the new forced rasters and the spikes moved per
    pattern."""
    f = np.array(forced, dtype=bool, copy=True)
    m = f.shape[0]
    rng = _rng(seed, "move")
    moved = np.zeros(m, dtype=np.int64)
    for mu in range(m):
        win = f[mu, pre:pre + d].reshape(-1).copy()
        on, off = np.flatnonzero(win), np.flatnonzero(~win)
        k = min(int(round(frac * on.size)), off.size)
        win[rng.permutation(on)[:k]] = False
        win[rng.permutation(off)[:k]] = True
        f[mu, pre:pre + d] = win.reshape(d, -1)
        moved[mu] = k
    return f, moved


def truncate_cue(forced: np.ndarray, *, pre: int, d: int, c: int) -> np.ndarray:
    """Keep only the first ``c`` of the ``d`` cue steps (steps ``[pre + c, pre + d)`` get no
    forced spike)."""
    if not 0 <= c <= d:
        raise ValueError(f"cue length c must be in [0, {d}], got {c}")
    f = np.array(forced, dtype=bool, copy=True)
    f[:, pre + c:pre + d] = False
    return f


def silence_mask(n: int, k: int, *, seed: int) -> np.ndarray:
    """Bool ``(n,)`` with exactly ``k`` randomly chosen True entries (neurons never firing)."""
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    mask = np.zeros(n, dtype=bool)
    mask[_rng(seed, "silence").permutation(n)[:k]] = True
    return mask


def add_recall_noise(forced: np.ndarray, *, start: int, stop: int, q: float,
                     seed: int) -> np.ndarray:
    """OR Bernoulli(``q``) forced spikes into steps ``[start, stop)`` of every pattern."""
    f = np.array(forced, dtype=bool, copy=True)
    rng = _rng(seed, "noise")
    f[:, start:stop] |= rng.random(f[:, start:stop].shape) < q
    return f


def perturbed_trial(targets: np.ndarray, s: dict, seed: int):
    """The forced rasters, silence mask (or None) and a short info dict of one point."""
    d, pre, t = s["d"], s["pre"], s["t"]
    f = trial_forcing(targets, d, pre=pre, p=s["p"], seed=seed)
    kind, level = s["perturb"], s["level"]
    info: dict = {}
    silence = None
    if kind == "flip":
        f, k = flip_cue_bits(f, pre=pre, d=d, frac=level, seed=seed)
        info["bits_flipped"] = int(k[0])
    elif kind == "move":
        f, k = move_cue_spikes(f, pre=pre, d=d, frac=level, seed=seed)
        info["spikes_moved_mean"] = float(k.mean())
    elif kind == "truncate":
        f = truncate_cue(f, pre=pre, d=d, c=int(level))
    elif kind == "silence":
        silence = silence_mask(s["n"], int(level), seed=seed)
    elif kind == "noise":
        f = add_recall_noise(f, start=pre + d, stop=pre + t, q=level, seed=seed)
    return f, silence, info
