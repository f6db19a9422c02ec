"""Random QuantNet networks and stimuli for every test level, deterministic for a seed.

Two profiles:

* ``"full"`` exercises the whole contract: 1-3 LIF layers, every projection kind (dense with a
  scalar or per-neuron delay, taps, conv with K in {1, 3, 5}), feed-forward and recurrent,
  delays from 0 (1 when recurrent) to the maximum, every leak from beta = 0 to no leak, both
  resets, forced layers, a read-out last layer, widths from narrow to wide, and sometimes a
  membrane too narrow for its currents so that saturation happens;
* ``"wm"`` is what the first hardware core supports: no input channels, one spiking layer with
  one recurrent ``taps`` projection (the working-memory tensor);
* ``"stack"`` is what :class:`rtl.stack.StackCore` builds (the DelRec / ConvDelRec shape): an
  input of 1-8 channels, 1-3 LIF layers each fed by one dense delay-0 projection from the layer
  below, some with a conv recurrence (K in {1, 3, 5, 7}, per-neuron or shared delays >= 1),
  often a read-out last layer, nothing forced.

Thresholds are tuned by short simulations so that spiking layers are neither silent nor firing
every step; ``acc_bits`` is the smallest width the accumulator rule allows, sometimes plus slack.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import replace
from typing import Literal

import numpy as np

from model.ir import InputLayer, LIFLayer, Network, Projection, current_bounds, signed_bits
from sim.reference import simulate

__all__ = ["random_network", "random_stimulus", "DEFAULT_RATE"]

Profile = Literal["full", "wm", "stack"]

#: Input and forced spike probability per step when ``random_stimulus`` gets ``rate=None``.
DEFAULT_RATE = 0.2

_CAL_STEPS = 40
_TARGET = 0.15              # spike rate the threshold search aims at
_BAND = (0.05, 0.35)        # good enough: stop searching
_WIDE = 48                  # v_bits / acc_bits while tuning, so nothing saturates


def _stimulus(rng: np.random.Generator, steps: int, n0: int, x_max: int,
              forced_sizes: dict[int, int], rate: float
              ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    on = rng.random((steps, n0)) < rate
    x = np.where(on, rng.integers(1, x_max + 1, (steps, n0)), 0).astype(np.int64)
    # Forced rasters act as a cue over the first half, then the network runs free.
    cue = (steps + 1) // 2
    forced = {}
    for l in sorted(forced_sizes):
        f = (rng.random((steps, forced_sizes[l])) < rate).astype(np.uint8)
        f[cue:] = 0
        forced[l] = f
    return x, forced


def random_stimulus(net: Network, steps: int, seed: int, *, rate: float | None = None
                    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Return ``(x, forced)`` for ``steps`` steps: random inputs and a raster per forced layer.

    Each input channel is non-zero with probability ``rate`` (then uniform in
    ``[1, 2**in_bits - 1]``); each forced neuron fires with probability ``rate`` during the first
    half of the run (a cue) and never after. ``rate=None`` means :data:`DEFAULT_RATE`.
    """
    steps = operator.index(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    rate = DEFAULT_RATE if rate is None else float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    seed = operator.index(seed)
    rng = np.random.default_rng([abs(seed), int(seed < 0), 0x5717])
    sizes = {l: net.layers[l].n for l in net.forced_layers}
    return _stimulus(rng, steps, net.input.n, net.input.max_value, sizes, rate)


# --------------------------------------------------------------------------------------------
# Drafting: structure, weights and delays.

def _random_leak(rng: np.random.Generator) -> tuple[int, int]:
    shift = int(rng.integers(0, 9))
    full = 1 << shift
    r = rng.random()
    if r < 0.1:
        return 0, shift                                   # no memory at all
    if r < 0.35:
        return full, shift                                # no leak
    if r < 0.7:
        return int(rng.integers((3 * full) // 4, full + 1)), shift   # light leak
    return int(rng.integers(0, full + 1)), shift


def _weights(rng: np.random.Generator, shape: tuple, w_bits: int, p_pos: float) -> np.ndarray:
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    w = np.where(rng.random(shape) < p_pos, rng.integers(0, hi + 1, shape),
                 rng.integers(lo, 1, shape))
    w[rng.random(shape) < 0.2] = 0
    return w.astype(np.int64)


def _delays(rng: np.random.Generator, lo: int, hi: int, n_pre: int) -> np.ndarray:
    if rng.random() < 0.4:
        return np.array(int(rng.integers(lo, hi + 1)))
    return rng.integers(lo, hi + 1, n_pre)


def _random_projection(rng: np.random.Generator, src: int, dst: int, n_pre: int, n_post: int,
                       max_delay: int) -> Projection:
    recurrent = src == dst
    lo = 1 if recurrent else 0
    kinds = ["dense", "taps"] + (["conv"] if n_pre == n_post else [])
    kind = str(rng.choice(kinds))
    w_bits = int(rng.integers(1, 11))
    p_pos = 0.5 if recurrent else 0.7
    if kind == "dense":
        w = _weights(rng, (n_post, n_pre), w_bits, p_pos)
        delay = _delays(rng, lo, max_delay, n_pre)
    elif kind == "taps":
        d0 = int(rng.integers(lo, max_delay + 1))
        taps = int(rng.integers(1, min(4, max_delay - d0 + 1) + 1))
        w = _weights(rng, (n_post, n_pre, taps), w_bits, p_pos)
        delay = np.array(d0)
    else:
        w = _weights(rng, (int(rng.choice([1, 3, 5])),), w_bits, p_pos)
        delay = _delays(rng, lo, max_delay, n_pre)
    return Projection(kind=kind, src=src, dst=dst, w_bits=w_bits, weight=w, delay=delay)


def _draft_full(rng: np.random.Generator):
    inp = InputLayer(n=int(rng.integers(0, 7)), in_bits=int(rng.integers(1, 5)))
    n_lif = int(rng.integers(1, 4))
    readout = rng.random() < (0.4 if n_lif >= 2 else 0.15)
    max_delay = int(rng.choice([0, 1, 2, 3, 4, 5, 6, 8]))
    drafts, projs = [], []
    n_pre = inp.n
    for l in range(1, n_lif + 1):
        n = n_pre if n_pre > 0 and rng.random() < 0.4 else int(rng.integers(1, 11))
        spiking = not (readout and l == n_lif)
        beta, shift = _random_leak(rng)
        p_forced = 0.6 if l == 1 and inp.n == 0 else 0.25
        drafts.append(dict(n=n, beta=beta, beta_shift=shift, spiking=spiking,
                           reset=str(rng.choice(["zero", "subtract"])),
                           forced=bool(spiking and rng.random() < p_forced)))
        if n_pre > 0 and rng.random() < 0.9:
            projs.append(_random_projection(rng, l - 1, l, n_pre, n, max_delay))
            if rng.random() < 0.15:
                projs.append(_random_projection(rng, l - 1, l, n_pre, n, max_delay))
        if spiking and max_delay >= 1 and rng.random() < 0.55:
            projs.append(_random_projection(rng, l, l, n, n, max_delay))
        n_pre = n
    return inp, drafts, projs, max_delay, (3, 20)


def _draft_wm(rng: np.random.Generator):
    inp = InputLayer(n=0)
    n = int(rng.integers(1, 13))
    beta, shift = _random_leak(rng)
    drafts = [dict(n=n, beta=beta, beta_shift=shift, spiking=True,
                   reset=str(rng.choice(["zero", "subtract"])), forced=bool(rng.random() < 0.5))]
    taps, d0 = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    max_delay = d0 + taps - 1 + (int(rng.integers(1, 5)) if rng.random() < 0.3 else 0)
    w_bits = int(rng.integers(2, 9))
    w = _weights(rng, (n, n, taps), w_bits, 0.55)
    proj = Projection(kind="taps", src=1, dst=1, w_bits=w_bits, weight=w, delay=np.array(d0))
    return inp, drafts, [proj], max_delay, (4, 16)


def _draft_stack(rng: np.random.Generator):
    inp = InputLayer(n=int(rng.integers(1, 9)), in_bits=int(rng.integers(1, 5)))
    n_lif = int(rng.integers(1, 4))
    readout = rng.random() < 0.6
    max_delay = int(rng.choice([1, 2, 3, 5, 8]))
    drafts, projs = [], []
    n_pre = inp.n
    for l in range(1, n_lif + 1):
        n = int(rng.integers(1, 14))
        spiking = not (readout and l == n_lif)
        beta, shift = _random_leak(rng)
        drafts.append(dict(n=n, beta=beta, beta_shift=shift, spiking=spiking,
                           reset=str(rng.choice(["zero", "subtract"])), forced=False))
        w_bits = int(rng.integers(1, 11))
        projs.append(Projection(kind="dense", src=l - 1, dst=l, w_bits=w_bits,
                                weight=_weights(rng, (n, n_pre), w_bits, 0.7),
                                delay=np.array(0)))
        if spiking and rng.random() < 0.6:
            w_bits = int(rng.integers(1, 9))
            projs.append(Projection(kind="conv", src=l, dst=l, w_bits=w_bits,
                                    weight=_weights(rng, (int(rng.choice([1, 3, 5, 7])),),
                                                    w_bits, 0.5),
                                    delay=_delays(rng, 1, max_delay, n)))
        n_pre = n
    return inp, drafts, projs, max_delay, (3, 20)


# --------------------------------------------------------------------------------------------
# Tuning: bias, threshold and widths, one layer at a time (later layers never feed earlier ones).

def _tune(rng: np.random.Generator, inp: InputLayer, drafts: list[dict], projs: list[Projection],
          max_delay: int, v_bits_range: tuple[int, int], name: str, meta: dict) -> Network:
    vb_lo, vb_hi = v_bits_range
    theta_cap = (1 << (vb_hi - 1)) - 1
    forced_sizes = {l: d["n"] for l, d in enumerate(drafts, 1) if d["forced"]}
    x_cal, f_cal = _stimulus(rng, _CAL_STEPS, inp.n, inp.max_value, forced_sizes, DEFAULT_RATE)
    done: list[LIFLayer] = []
    for l, d in enumerate(drafts, 1):
        sub = [p for p in projs if p.dst <= l]
        w_max = max([int(np.abs(p.weight).max(initial=0)) for p in sub if p.dst == l] + [2])
        if d["forced"] or any(p.dst == l and not p.recurrent for p in sub):
            bias = rng.integers(-(w_max // 2), w_max + 1, d["n"])
        else:
            # Only the bias drives this layer: make it strong next to the recurrent weights,
            # or the layer is either silent or, once one neuron fires, running away.
            fan_in = sum(p.weight[0].size for p in sub if p.dst == l)
            bias = rng.integers(w_max, 3 * w_max * int(np.sqrt(fan_in)) + w_max + 1, d["n"])
        layer = LIFLayer(n=d["n"], v_bits=_WIDE, acc_bits=_WIDE, beta=d["beta"],
                         beta_shift=d["beta_shift"], reset=d["reset"], forced=d["forced"],
                         threshold=(1 << (_WIDE - 1)) - 1 if d["spiking"] else None,
                         bias=bias, name=f"lif{l}")

        def run(layer: LIFLayer):
            net = Network(layers=[inp, *done, layer], projections=sub, max_delay=max_delay)
            return simulate(net, x_cal, {k: f_cal[k] for k in net.forced_layers})

        # With beta = 0 and no spikes, v(t) is the bare input current I(t).
        i_in = run(replace(layer, beta=0, beta_shift=0)).v[l]
        # A neuron whose mean current is not positive would mostly sit below rest: lift its bias.
        mean = np.floor(i_in.mean(0)).astype(np.int64)
        lift = np.where(mean <= 0, 1 - mean + rng.integers(0, w_max // 2 + 1, d["n"]), 0)
        layer = replace(layer, bias=layer.bias + lift)
        i_in = i_in + lift
        if d["spiking"]:
            layer = _tune_threshold(layer, i_in, run, l, theta_cap)
            need = layer.threshold.bit_length() + 1
            if rng.random() < 0.3:
                v_bits = max(vb_lo, need)         # tight: big currents saturate
            else:
                v_bits = max(need, int(rng.integers(vb_lo, vb_hi + 1)))
        else:
            v = run(layer).v[l]
            need = signed_bits(int(v.min()), int(v.max()))
            if rng.random() < 0.35:
                need -= int(rng.integers(1, 4))   # too narrow on purpose: saturation
            v_bits = max(need, int(rng.integers(vb_lo, vb_hi + 1))) if rng.random() < 0.5 \
                else need
        done.append(replace(layer, v_bits=int(np.clip(v_bits, vb_lo, vb_hi))))
    net = Network(layers=[inp, *done], projections=projs, max_delay=max_delay)
    layers = [inp]
    for l, layer in enumerate(done, 1):
        lo, hi = current_bounds(net, l)
        acc = signed_bits(int(lo.min()), int(hi.max()))
        if rng.random() < 0.5:
            acc += int(rng.integers(1, 4))
        layers.append(replace(layer, acc_bits=min(acc, _WIDE)))
    return Network(layers=layers, projections=projs, max_delay=max_delay, name=name, meta=meta)


def _tune_threshold(layer: LIFLayer, i_in: np.ndarray, run, l: int, cap: int) -> LIFLayer:
    """Search the threshold for a spike rate inside _BAND; keep the closest one tried.

    Rate falls as the threshold rises, but recurrent layers can jump from silent to runaway,
    so once the target is bracketed the search bisects (in log scale) instead of stepping.
    """
    full = 1 << layer.beta_shift
    gain = 1.0 if layer.beta == 0 else min(8.0, full / max(1, full - layer.beta))
    theta = int(np.clip(round(float(np.median(i_in[i_in > 0])) * gain), 1, cap))
    best, best_err = theta, np.inf
    too_busy, too_quiet = 0, cap + 1     # thresholds known to give too many / too few spikes
    for _ in range(24):
        rate = float(run(replace(layer, threshold=theta)).spikes[l].mean())
        # Ratio distance (so silence counts as worse than a busy layer); plain IEEE division,
        # no libm, so the choice is the same on every machine.
        err = max(_BAND[0] / (rate + 0.005), (rate + 0.005) / _BAND[1], 1.0)
        if err < best_err:
            best, best_err = theta, err
        if _BAND[0] <= rate <= _BAND[1]:
            break
        if rate > _BAND[1]:
            too_busy = theta
        else:
            too_quiet = theta
        if too_quiet - too_busy <= 1:
            break
        if too_busy and too_quiet <= cap:
            theta = int(round(np.sqrt(too_busy * too_quiet)))
        elif rate > _BAND[1]:
            theta = int(theta * rate / _TARGET) + 1
        else:
            theta = int(theta * max(rate, 0.02) / _TARGET)
        theta = min(max(theta, too_busy + 1), too_quiet - 1, cap)
    return replace(layer, threshold=best)


@functools.lru_cache(maxsize=4096)
def random_network(seed: int, *, profile: Profile = "full") -> Network:
    """Return a random valid network for ``seed`` (same seed and profile, same network)."""
    seed = operator.index(seed)
    drafts = {"full": _draft_full, "wm": _draft_wm, "stack": _draft_stack}
    if profile not in drafts:
        raise ValueError(f"profile must be 'full', 'wm' or 'stack', got {profile!r}")
    rng = np.random.default_rng([abs(seed), int(seed < 0), list(drafts).index(profile)])
    draft = drafts[profile](rng)
    meta = {"generator": "sim.randnet", "profile": profile, "seed": seed}
    return _tune(rng, *draft, name=f"rand-{profile}-{seed}", meta=meta)
