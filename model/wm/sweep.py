"""Parameter sweeps of the working-memory network: grids x seeds, resumable, in parallel.

A *grid* is a JSON-able dict::

    {"name": "scan-n",                      # optional, recorded with every point
     "base": {"n": 512, "m": 16, ...},      # overrides of DEFAULTS (optional)
     "axes": {"n": [256, 384, 512]},        # one product of axes, or a list of products
     "seeds": [0, 1, 2, 3, 4]}              # optional (default 0..4)

``axes`` may also be a list of dicts; the grid is then the union of their products (used by
the robustness grid, whose levels depend on the perturbation). A *point* is one full settings
dict (DEFAULTS <- base <- axis values) and one seed. Its key is the canonical JSON of both, so
a results file can be resumed: :func:`run_grid` skips every point whose key is already in the
file and appends each finished point as one JSON line.

Points that differ only in evaluation settings (:data:`EVAL_KEYS`: weight bits, perturbation,
level, modes) share their weights: they are run as one *group* (one least-squares solve, then
every evaluation), so a robustness or bit-width scan at the paper size costs one solve per
seed. ``cache_dir`` additionally keeps the float weights (float32 ``.npy``) across grids.

Settings (:data:`DEFAULTS`; the paper's setting):

- ``n, d, m, t, p``: neurons, delays, patterns, pattern length, target rate p_A (also the
  pre-cue noise rate); ``gain`` of the least-squares solution; ``pre`` noise steps before the
  cue; ``beta, beta_shift, reset`` the neuron.
- ``init``: ``"ls"`` (least squares), ``"train"`` (least squares, then ``train_steps`` of
  teacher-forced F1 surrogate-gradient training at ``train_lr``), ``"hebbian"`` (needs
  ``model.wm.hebbian_init``).
- ``w_bits``: weight bits of the integer network (mode ``"int"``).
- ``modes``: which recalls to run, ``["float", "int"]``.
- ``perturb`` / ``level``: the robustness experiment (:data:`PERTURBATIONS`).

Runaway guard: a failing network often fires at ~50 % (false alarms everywhere), and the
event-driven engine then costs as much as the dense product. Each recall first runs
:data:`PROBE_STEPS` free steps (20, then 100); a pattern firing above ``max(RUNAWAY_RATE, 20 p)`` there is
stopped and its F1 replaced by a rigorous upper bound (``runaway_<mode>`` counts such
patterns in the record). Bounds are only ever reported for recalls that already failed.

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

import hashlib
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULTS", "EVAL_KEYS", "PERTURBATIONS", "GRIDS", "GridError", "load_grid", "expand_grid",
    "point_key", "parse_seeds", "read_results", "run_grid", "run_point_group", "summarise",
    "format_summary", "flip_cue_bits", "move_cue_spikes", "truncate_cue", "silence_mask",
    "add_recall_noise", "perturbed_trial", "load_ratio",
]

#: The paper's setting (N = 512, D = 41, M = 16, T = 1000, p_A = 2e-3, beta = 205 / 256).
DEFAULTS: dict = dict(n=512, d=41, m=16, t=1000, p=2e-3, gain=1.5, pre=50, beta=205,
                      beta_shift=8, reset="zero", w_bits=8, init="ls", train_steps=100,
                      train_lr=3e-3, modes=["float", "int"], perturb="none", level=0)

#: Settings that do not change the weights: points differing only here share one solve.
EVAL_KEYS = frozenset({"w_bits", "modes", "perturb", "level"})

PERTURBATIONS = ("none", "flip", "move", "truncate", "silence", "noise")
INITS = ("ls", "train", "hebbian")
_TYPES = dict(n=int, d=int, m=int, t=int, p=float, gain=float, pre=int, beta=int,
              beta_shift=int, reset=str, w_bits=int, init=str, train_steps=int,
              train_lr=float, modes=list, perturb=str, level=float)
_GRID_KEYS = {"name", "base", "axes", "seeds", "description"}


class GridError(ValueError):
    """A grid file or dict that cannot be run; the message names the file and the key."""


# --------------------------------------------------------------------------------------------
# Built-in grids

_FIVE = [0, 1, 2, 3, 4]
#: Scaled setting: N = 128, T = 281 keeps the paper's load M (T - D) / (N D) = 0.73 at M = 16.
SCALED = dict(n=128, t=281)

GRIDS: dict[str, dict] = {
    # Paper size (one least-squares solve ~30-50 s each).
    "capacity-m": {"description": "M scan at the paper setting (N=512, D=41, T=1000)",
                   "axes": {"m": [8, 12, 14, 16, 18, 20, 22, 24]}, "seeds": _FIVE},
    "scan-n": {"description": "N scan at the paper setting, M = 16",
               "axes": {"n": [256, 320, 384, 448, 512, 640, 768]}, "seeds": _FIVE},
    "scan-d": {"description": "D scan at the paper setting",
               "axes": {"d": [8, 16, 24, 34, 41, 55, 89]}, "seeds": _FIVE},
    "scan-t": {"description": "T scan at the paper setting",
               "axes": {"t": [128, 256, 512, 768, 1000, 1024, 1280, 2048]}, "seeds": _FIVE},
    "scan-p": {"description": "p_A scan at the paper setting",
               "axes": {"p": [2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2]}, "seeds": _FIVE},
    "scan-bits": {"description": "weight bits of the integer network at the paper setting",
                  "axes": {"w_bits": [2, 3, 4, 5, 6, 8]}, "seeds": _FIVE},
    "robustness": {"description": "cue flips / moves, truncated cue, silenced neurons, "
                                  "recall noise at the paper setting (one solve per seed)",
                   "axes": [{"perturb": ["none"]},
                            {"perturb": ["flip"], "level": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]},
                            {"perturb": ["move"], "level": [0.05, 0.1, 0.25, 0.5, 0.75]},
                            {"perturb": ["truncate"], "level": [35, 30, 25, 20, 10, 5]},
                            {"perturb": ["silence"], "level": [8, 32, 64, 128, 256]},
                            {"perturb": ["noise"], "level": [1e-4, 3e-4, 1e-3, 3e-3]}],
                   "seeds": _FIVE},
    # Scaled (N = 128, T = 281: same load as the paper at M = 16; ~1-2 s per solve).
    "small-capacity-m": {"description": "M scan, scaled setting N=128, T=281",
                         "base": SCALED,
                         "axes": {"m": [4, 8, 12, 14, 16, 18, 20, 22, 24]}, "seeds": _FIVE},
    "small-scan-n": {"description": "N scan at M = 16, scaled setting T=281",
                     "base": SCALED, "axes": {"n": [64, 80, 96, 112, 128, 160, 192]},
                     "seeds": _FIVE},
    "small-scan-d": {"description": "D scan, scaled setting",
                     "base": SCALED, "axes": {"d": [8, 16, 24, 34, 41, 55, 89]}, "seeds": _FIVE},
    "small-scan-t": {"description": "T scan, scaled setting",
                     "base": SCALED, "axes": {"t": [64, 128, 200, 281, 350, 450, 600]},
                     "seeds": _FIVE},
    "small-scan-p": {"description": "p_A scan, scaled setting",
                     "base": SCALED, "axes": {"p": [2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2]},
                     "seeds": _FIVE},
    "small-scan-bits": {"description": "weight bits, scaled setting",
                        "base": SCALED, "axes": {"w_bits": [2, 3, 4, 5, 6, 8]},
                        "seeds": _FIVE},
    # Capacity M_max against N D / (T - D): a few (N, D, T) at the scaled size.
    "capacity": {"description": "M around the capacity edge for several (N, D, T)",
                 "base": {"modes": ["float"]},
                 "axes": [{"n": [64], "d": [41], "t": [281], "m": [2, 4, 6, 8, 10, 12]},
                          {"n": [128], "d": [41], "t": [281], "m": [8, 12, 14, 16, 18, 20, 22]},
                          {"n": [128], "d": [21], "t": [281], "m": [4, 6, 8, 10, 12]},
                          {"n": [128], "d": [41], "t": [521], "m": [4, 6, 8, 10, 12]},
                          {"n": [256], "d": [41], "t": [521], "m": [8, 12, 14, 16, 18, 20]}],
                 "seeds": _FIVE},
    # Tiny grid for tests and smoke runs (well under a second per point).
    "tiny": {"description": "smoke test", "base": dict(n=32, d=16, m=2, t=48, p=0.035,
                                                       pre=10, w_bits=4),
             "axes": {"m": [1, 2]}, "seeds": [0, 1]},
}
GRIDS["small-robustness"] = {**GRIDS["robustness"], "base": SCALED,
                             "description": "robustness at the scaled setting",
                             "axes": [a if a.get("perturb") != ["silence"] else
                                      {"perturb": ["silence"], "level": [2, 8, 16, 32, 64]}
                                      for a in GRIDS["robustness"]["axes"]]}


# --------------------------------------------------------------------------------------------
# Grids: loading, validation, expansion

def parse_seeds(spec: str) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"0,3,7-9"`` -> [0, 3, 7, 8, 9]."""
    out: list[int] = []
    try:
        for part in str(spec).split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise GridError(f"bad seed list {spec!r}: use e.g. 0-4 or 0,2,5-7") from None
    if not out or min(out) < 0:
        raise GridError(f"bad seed list {spec!r}: need non-negative seeds")
    return sorted(set(out))


def _check_value(where: str, key: str, value):
    if key not in _TYPES:
        raise GridError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(_TYPES))})")
    typ = _TYPES[key]
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
    elif typ is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise GridError(f"{where}: setting {key!r} must be {typ.__name__}, got {value!r}")
    if key == "init" and value not in INITS:
        raise GridError(f"{where}: init must be one of {INITS}, got {value!r}")
    if key == "perturb" and value not in PERTURBATIONS:
        raise GridError(f"{where}: perturb must be one of {PERTURBATIONS}, got {value!r}")
    if key == "modes" and (not value or any(v not in ("float", "int") for v in value)):
        raise GridError(f"{where}: modes must be a non-empty list of 'float' / 'int', "
                        f"got {value!r}")
    if key in ("n", "d", "m", "t") and value < 1:
        raise GridError(f"{where}: {key} must be >= 1, got {value}")
    if key == "p" and not 0.0 < value < 1.0:
        raise GridError(f"{where}: p must be in (0, 1), got {value}")
    return value


def load_grid(spec, *, seeds: str | None = None) -> dict:
    """Return a validated grid from a built-in name, a JSON file path or a dict.

    Errors (:class:`GridError`) name the file (or grid) and the offending key.
    """
    if isinstance(spec, dict):
        raw, where = spec, f"grid {spec.get('name', '<dict>')!r}"
    elif str(spec) in GRIDS:
        raw, where = dict(GRIDS[str(spec)], name=str(spec)), f"grid {spec!r}"
    else:
        path = Path(spec)
        if not path.exists():
            raise GridError(f"no grid named {spec!r} and no such file (built-in grids: "
                            f"{', '.join(GRIDS)})")
        where = str(path)
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise GridError(f"{where}: not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise GridError(f"{where}: a grid must be a JSON object with 'axes'")
        raw = dict(raw)
        raw.setdefault("name", path.stem)
    for k in raw:
        if k not in _GRID_KEYS:
            raise GridError(f"{where}: unknown key {k!r} (allowed: {', '.join(sorted(_GRID_KEYS))})")
    base = raw.get("base", {})
    if not isinstance(base, dict):
        raise GridError(f"{where}: 'base' must be an object of settings")
    base = {k: _check_value(f"{where}: base", k, v) for k, v in base.items()}
    if "axes" not in raw:
        raise GridError(f"{where}: missing key 'axes'")
    axes = raw["axes"]
    products = axes if isinstance(axes, list) else [axes]
    if not products or not all(isinstance(a, dict) for a in products):
        raise GridError(f"{where}: 'axes' must be an object {{setting: [values]}} or a "
                        f"non-empty list of such objects")
    clean = []
    for i, prod in enumerate(products):
        sub = f"{where}: axes" + (f"[{i}]" if isinstance(axes, list) else "")
        cp = {}
        for k, vals in prod.items():
            if not isinstance(vals, list) or not vals:
                raise GridError(f"{sub}: axis {k!r} must be a non-empty list of values")
            cp[k] = [_check_value(f"{sub}.{k}", k, v) for v in vals]
        clean.append(cp)
    if seeds is not None:
        seed_list = parse_seeds(seeds)
    else:
        seed_list = raw.get("seeds", _FIVE)
        if isinstance(seed_list, str):
            seed_list = parse_seeds(seed_list)
        if (not isinstance(seed_list, list) or not seed_list
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                           for s in seed_list)):
            raise GridError(f"{where}: 'seeds' must be a non-empty list of non-negative "
                            f"integers or a string like '0-4'")
    grid = {"name": str(raw.get("name", "grid")), "base": base, "axes": clean,
            "seeds": list(seed_list), "description": raw.get("description", "")}
    # Every point must be runnable: check the combined settings once.
    for s in expand_grid(grid):
        _check_point(where, s["settings"])
    return grid


def _check_point(where: str, s: dict) -> None:
    if not 1 <= s["d"] < s["t"]:
        raise GridError(f"{where}: need 1 <= d < t, got d={s['d']}, t={s['t']}")
    if s["init"] == "hebbian":
        import model.wm as wm
        if not hasattr(wm, "hebbian_init"):
            raise GridError(f"{where}: init 'hebbian' needs model.wm.hebbian_init, which "
                            f"this version does not have")
    kind, level = s["perturb"], s["level"]
    if kind == "truncate" and not 0 <= level <= s["d"]:
        raise GridError(f"{where}: truncate level is a cue length in [0, d={s['d']}], got {level}")
    if kind == "silence" and not 0 <= level <= s["n"]:
        raise GridError(f"{where}: silence level is a neuron count in [0, n={s['n']}], got {level}")
    if kind in ("flip", "move", "noise") and not 0.0 <= level <= 1.0:
        raise GridError(f"{where}: {kind} level is a fraction in [0, 1], got {level}")


def expand_grid(grid: dict) -> list[dict]:
    """All points of ``grid``: ``{"settings", "seed", "key", "axes"}`` in a stable order
    (duplicates across products are dropped). ``axes`` lists the settings the grid varies."""
    varied = list(dict.fromkeys(k for prod in grid["axes"] for k in prod))
    points, seen = [], set()
    for prod in grid["axes"]:
        keys = list(prod)
        for combo in itertools.product(*(prod[k] for k in keys)):
            settings = {**DEFAULTS, **grid["base"], **dict(zip(keys, combo))}
            for seed in grid["seeds"]:
                key = point_key(settings, seed)
                if key in seen:
                    continue
                seen.add(key)
                points.append({"settings": settings, "seed": seed, "key": key, "axes": varied})
    return points


def point_key(settings: dict, seed: int) -> str:
    """Canonical JSON of (settings, seed): the identity of a point in a results file."""
    norm = {k: (float(v) if _TYPES.get(k) is float else v) for k, v in settings.items()}
    return json.dumps({"settings": norm, "seed": int(seed)}, sort_keys=True)


def load_ratio(s: dict) -> float:
    """``m (T - d) / (n d)``: stored windows per weight of a neuron (LS limit ~0.8)."""
    return s["m"] * (s["t"] - s["d"]) / (s["n"] * s["d"])


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
    from model.wm import trial_forcing

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


# --------------------------------------------------------------------------------------------
# One group of points (same weights)

def _weight_key(settings: dict, seed: int) -> str:
    return point_key({k: v for k, v in settings.items() if k not in EVAL_KEYS}, seed)


def _weights(s: dict, seed: int, targets: np.ndarray, cache_dir: str | None) -> tuple[np.ndarray, dict]:
    """Float weights of a point (from the cache when there), and an info dict."""
    info: dict = {}
    path = None
    if cache_dir:
        h = hashlib.sha256(_weight_key(s, seed).encode()).hexdigest()[:20]
        path = Path(cache_dir) / f"w-{h}.npy"
        if path.exists():
            info["cached"] = True
            return np.load(path).astype(np.float64), info
    t0 = time.perf_counter()
    import model.wm as wm
    if s["init"] == "hebbian":
        w = wm.hebbian_init(targets, s["d"])      # its own default rule and gain
    else:
        w = wm.least_squares_init(targets, s["d"], gain=s["gain"])
    if s["init"] == "train":
        from model.wm_event import TrainConfig, train
        cfg = TrainConfig(steps=s["train_steps"], lr=s["train_lr"], loss="f1", teacher=True,
                          pre=s["pre"], p=s["p"], seed=seed, beta=s["beta"],
                          beta_shift=s["beta_shift"], reset=s["reset"], progress=False)
        w = train(w, targets, cfg)["w"]
    info["init_seconds"] = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
        np.save(tmp, w.astype(np.float32))
        tmp.replace(path)
        # What the evaluations see must not depend on whether the cache was hit.
        w = w.astype(np.float32).astype(np.float64)
    return w, info


#: Runaway guard: free-recall steps run first; a pattern whose own-spike rate there exceeds
#: ``max(RUNAWAY_RATE, 20 p)`` is not run to the end (event-driven cost grows with activity:
#: a network firing at 50 % costs as much as the dense product). Its counts are bounded
#: instead, which bounds its F1 from above (see :func:`_recall_counts`).
PROBE_STEPS = (20, 100)
RUNAWAY_RATE = 0.05


def _counts(targets, spikes, d, pre, lo, hi, keep=None):
    """Per-pattern (tp, fp, fn) of target steps ``[lo, hi)`` (``d <= lo``) against own
    spikes, on the neurons ``keep`` (all when None)."""
    want = np.asarray(targets, dtype=bool)[:, :, lo:hi].transpose(0, 2, 1)
    got = np.asarray(spikes, dtype=bool)[:, pre + lo:pre + hi]
    if keep is not None:
        want, got = want[:, :, keep], got[:, :, keep]
    return np.stack([(want & got).sum((1, 2)), (~want & got).sum((1, 2)),
                     (want & ~got).sum((1, 2))], 1).astype(np.int64)


def _recall_counts(w_or_net, forced, targets, s, mode, silence, lif):
    """Run the trial; return per-pattern counts (all neurons, and active neurons when some
    are silenced) and the bool mask of patterns stopped as runaway.

    A runaway pattern is stopped after a probe of ``PROBE_STEPS`` free steps (stages). As the dynamics are
    causal, those steps are the full run's first steps, so its counts are bounded: tp <=
    tp_probe + (target spikes after the probe), fp >= fp_probe, fn >= fn_probe; F1 computed
    from these is an upper bound of the true F1 (typically < 0.1 for a runaway)."""
    from model.wm_event import run_trials

    d, pre, t = s["d"], s["pre"], s["t"]
    keep = None if silence is None else ~silence
    kw = dict(mode=mode, silence=silence, **(lif if mode == "float" else {}))
    m = forced.shape[0]
    runaway = np.zeros(m, dtype=bool)
    counts = np.zeros((m, 3), dtype=np.int64)
    counts_a = np.zeros((m, 3), dtype=np.int64)
    todo = np.arange(m)
    x = np.asarray(targets, dtype=bool)
    stages = (PROBE_STEPS,) if isinstance(PROBE_STEPS, int) else tuple(PROBE_STEPS)
    for probe in stages:
        probe_end = d + probe
        if probe_end >= t or not todo.size:
            break
        sp = run_trials(w_or_net, forced[todo, :pre + probe_end], **kw).s.numpy()
        rate = sp[:, pre + d:pre + probe_end].mean((1, 2))
        stop = rate > max(RUNAWAY_RATE, 20 * s["p"])
        if stop.any():
            idx = todo[stop]
            rest = x[idx][:, :, probe_end:]
            c = _counts(x[idx], sp[stop], d, pre, d, probe_end)
            c[:, 0] += rest.sum((1, 2))
            counts[idx] = c
            if keep is not None:
                ca = _counts(x[idx], sp[stop], d, pre, d, probe_end, keep)
                ca[:, 0] += rest[:, keep].sum((1, 2))
                counts_a[idx] = ca
            runaway[idx] = True
        todo = todo[~stop]
    if todo.size:
        sp = run_trials(w_or_net, forced[todo], **kw).s.numpy()
        counts[todo] = _counts(targets[todo], sp, d, pre, d, t)
        if keep is not None:
            counts_a[todo] = _counts(targets[todo], sp, d, pre, d, t, keep)
    return counts, (counts_a if keep is not None else None), runaway


def _f1s(counts):
    from model.wm import f1_from_counts

    per = np.array([f1_from_counts(*map(int, c)) for c in counts])
    return f1_from_counts(*map(int, counts.sum(0))), per


def run_point_group(group: dict) -> list[dict]:
    """Run points that share weights: ``group = {"seed", "points": [point, ...],
    "cache_dir"}``. Returns one JSON-able record per point."""
    import torch

    from model.quantise import quantise_wm
    from model.wm import make_targets
    torch.set_num_threads(1)
    seed = group["seed"]
    s0 = group["points"][0]["settings"]
    t0 = time.perf_counter()
    targets = make_targets(s0["m"], s0["n"], s0["t"], s0["p"], seed=seed)
    w, winfo = _weights(s0, seed, targets, group.get("cache_dir"))
    t_init = time.perf_counter() - t0
    lif = dict(beta=s0["beta"], beta_shift=s0["beta_shift"], reset=s0["reset"])
    nets: dict[int, object] = {}
    records = []
    for pt in group["points"]:
        s = pt["settings"]
        t1 = time.perf_counter()
        forced, silence, pinfo = perturbed_trial(targets, s, seed)
        rec = {"key": pt["key"], "grid": group.get("grid", ""), "settings": s, "seed": seed,
               "axes": pt["axes"], "load": load_ratio(s), **pinfo,
               "init_seconds": round(t_init, 3), "w_max": float(np.abs(w).max())}
        rec.update({k: v for k, v in winfo.items() if k == "cached"})
        for mode in s["modes"]:
            if mode == "float":
                model = w
            else:
                bits = s["w_bits"]
                if bits not in nets:
                    try:
                        nets[bits] = quantise_wm(w, w_bits=bits, **lif)
                    except ValueError as e:
                        nets[bits] = e
                net = nets[bits]
                if isinstance(net, Exception):
                    rec["f1_int"] = rec["f1_int_pp"] = None
                    rec["error_int"] = str(net)
                    continue
                model = net
            counts, counts_a, runaway = _recall_counts(model, forced, targets, s, mode,
                                                       silence, lif)
            f1, per = _f1s(counts)
            rec[f"f1_{mode}"] = f1
            rec[f"f1_{mode}_pp"] = float(per.mean())
            rec[f"f1_{mode}_pp_min"] = float(per.min())
            rec[f"runaway_{mode}"] = int(runaway.sum())
            if counts_a is not None:
                rec[f"f1_{mode}_active"] = _f1s(counts_a)[0]
        rec["eval_seconds"] = round(time.perf_counter() - t1, 3)
        rec["seconds"] = round(rec["eval_seconds"] + (t_init if not records else 0.0), 3)
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------------
# Results file and the runner

def read_results(path) -> list[dict]:
    """Records of a JSONL results file ([] if it does not exist). A torn last line (a killed
    writer) is dropped from the file; a bad line elsewhere is an error naming file and line."""
    p = Path(path)
    if not p.exists():
        return []
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    records, good_bytes = [], 0
    for i, line in enumerate(lines):
        if not line.strip():
            good_bytes += len(line) + (1 if i < len(lines) - 1 else 0)
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "key" not in rec:
                raise ValueError("not a results record (no 'key')")
        except ValueError as e:
            if i == len(lines) - 1:     # torn final line: no newline after it
                with open(p, "r+b") as fh:
                    fh.truncate(good_bytes)
                print(f"{p}: dropped an incomplete last line", file=sys.stderr)
                break
            raise GridError(f"{p}: line {i + 1} is not a results record: {e}") from None
        records.append(rec)
        good_bytes += len(line) + 1
    return records


def _groups(points: list[dict], grid_name: str, cache_dir: str | None) -> list[dict]:
    by: dict[str, dict] = {}
    for pt in points:
        wk = _weight_key(pt["settings"], pt["seed"])
        g = by.setdefault(wk, {"seed": pt["seed"], "points": [], "grid": grid_name,
                               "cache_dir": cache_dir})
        g["points"].append(pt)
    # Most expensive first (a long solve should not start last).
    return sorted(by.values(), key=lambda g: -_cost(g["points"][0]["settings"]))


def _cost(s: dict) -> float:
    side = min(s["m"] * (s["t"] - s["d"]), s["n"] * s["d"])
    return side ** 3 / 1e9 + s["n"] * s["n"] * s["d"] / 1e6


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def run_grid(grid, out, *, jobs: int = 2, seeds: str | None = None,
             cache_dir: str | None = None, progress: bool = True) -> dict:
    """Run every point of ``grid`` (name, file or dict) not already in the JSONL file ``out``.

    Points run in ``jobs`` spawned worker processes (one thread each; ``jobs=1`` runs in this
    process); each finished group of points is appended to ``out`` at once, so an interrupted
    run resumes where it stopped. Returns ``{"grid", "points", "done_before", "computed",
    "seconds", "records"}`` (records: every record of this grid in ``out``).
    """
    from tqdm import tqdm

    g = load_grid(grid, seeds=seeds)
    points = expand_grid(g)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["key"] for r in read_results(out)}
    todo = [pt for pt in points if pt["key"] not in done]
    groups = _groups(todo, g["name"], cache_dir)
    t0 = time.perf_counter()
    computed = 0
    # Worker processes inherit the environment: one BLAS / OpenMP thread each.
    if jobs > 1:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    bar = tqdm(total=len(todo), unit="pt", desc=f"sweep {g['name']}", disable=not progress,
               file=sys.stderr)
    with open(out, "a") as fh:
        def write(recs):
            nonlocal computed
            for r in recs:
                fh.write(json.dumps(r) + "\n")
            fh.flush()
            computed += len(recs)
            bar.update(len(recs))

        if jobs <= 1 or len(groups) <= 1:
            for grp in groups:
                write(run_point_group(grp))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker) as pool:
                futs = [pool.submit(run_point_group, grp) for grp in groups]
                for fut in as_completed(futs):
                    write(fut.result())
    bar.close()
    keys = {pt["key"] for pt in points}
    records = [r for r in read_results(out) if r["key"] in keys]
    return {"grid": g, "points": len(points), "done_before": len(points) - len(todo),
            "computed": computed, "seconds": time.perf_counter() - t0, "records": records}


# --------------------------------------------------------------------------------------------
# Summary

METRICS = ("f1_float", "f1_int", "f1_float_pp", "f1_int_pp", "f1_float_active", "f1_int_active")


def summarise(records: list[dict], by: list[str] | None = None,
              metrics=METRICS) -> list[dict]:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and ``count`` per value of the
    settings ``by`` (default: each record's ``axes``), over seeds. A metric that is missing
    or None in a record is left out of that metric's statistics (``n_<metric>`` counts the
    values used). Rows are sorted by the ``by`` values."""
    if not records:
        return []
    if by is None:
        by = list(dict.fromkeys(a for r in records for a in r.get("axes", [])))
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        k = tuple(json.dumps(r["settings"].get(b)) for b in by)
        groups.setdefault(k, []).append(r)
    rows = []
    for k, recs in groups.items():
        row = {b: recs[0]["settings"].get(b) for b in by}
        row["count"] = len(recs)
        row["load"] = float(np.mean([load_ratio(r["settings"]) for r in recs]))
        for mname in metrics:
            vals = [r[mname] for r in recs if r.get(mname) is not None]
            if not vals and not any(mname in r for r in recs):
                continue
            row[f"n_{mname}"] = len(vals)
            row[f"{mname}_mean"] = float(np.mean(vals)) if vals else None
            row[f"{mname}_std"] = (float(np.std(vals, ddof=1)) if len(vals) > 1 else
                                   (0.0 if vals else None))
            row[f"{mname}_min"] = float(np.min(vals)) if vals else None
            row[f"{mname}_median"] = float(np.median(vals)) if vals else None
        row["seconds_mean"] = float(np.mean([r.get("seconds", 0.0) for r in recs]))
        rows.append(row)

    def sort_key(row):
        return tuple((0, row[b]) if isinstance(row[b], (int, float)) else (1, str(row[b]))
                     for b in by)
    return sorted(rows, key=sort_key)


def _fmt(mean, std, n) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f} ± {std:.4f} ({n})"


def format_summary(rows: list[dict], by: list[str], metrics=METRICS) -> str:
    """A Markdown table of :func:`summarise` rows: the ``by`` values, load, and each metric
    (of ``metrics``, when present) as ``mean ± std (n)``."""
    metrics = [m for m in metrics if any(f"{m}_mean" in r for r in rows)]
    head = [*by, "load", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r[b]:g}" if isinstance(r[b], float) else str(r[b]) for b in by]
        cells.append(f"{r['load']:.3f}")
        for m in metrics:
            cells.append(_fmt(r.get(f"{m}_mean"), r.get(f"{m}_std"), r.get(f"n_{m}", 0)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def capacity(rows: list[dict], *, metric: str = "f1_float", threshold: float = 0.99,
             group_by=("n", "d", "t")) -> list[dict]:
    """M_max per (n, d, t): the largest scanned ``m`` whose mean ``metric`` is >= threshold
    (None if none is; ``m_max_median`` the same with the median over seeds; ``m_break`` the
    smallest scanned ``m`` whose mean is below 0.5: where recall has collapsed), with
    ``x = n d / (T - d)`` and the least-squares estimate ``0.8 x``. ``rows`` come from
    :func:`summarise` by ``[*group_by, "m"]``."""
    out: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(r[g] for g in group_by)
        e = out.setdefault(k, {**dict(zip(group_by, k)), "m_max": None, "m_max_median": None,
                               "m_break": None, "m_scanned": []})
        e["m_scanned"].append(r["m"])
        mean = r.get(f"{metric}_mean")
        if mean is not None and mean < 0.5 and (e.get("m_break") is None or r["m"] < e["m_break"]):
            e["m_break"] = r["m"]
        for stat, field in (("mean", "m_max"), ("median", "m_max_median")):
            v = r.get(f"{metric}_{stat}")
            if v is not None and v >= threshold and (e[field] is None or r["m"] > e[field]):
                e[field] = r["m"]
    res = []
    for e in out.values():
        n, d, t = e["n"], e["d"], e["t"]
        e["x"] = n * d / (t - d)
        e["ls_estimate"] = 0.8 * e["x"]
        res.append(e)
    return sorted(res, key=lambda e: e["x"])


def format_capacity(caps: list[dict]) -> str:
    lines = ["| N | D | T | N·D/(T−D) | 0.8·N·D/(T−D) | M_max (mean F1 ≥ 0.99) "
             "| M_max (median F1 ≥ 0.99) | first M with mean F1 < 0.5 | M scanned |",
             "|---|---|---|---|---|---|---|---|---|"]

    def show(v, e):
        return str(v) if v is not None else "< " + str(min(e["m_scanned"]))
    for e in caps:
        lines.append(f"| {e['n']} | {e['d']} | {e['t']} | {e['x']:.1f} | {e['ls_estimate']:.1f} "
                     f"| {show(e['m_max'], e)} | {show(e.get('m_max_median'), e)} "
                     f"| {e.get('m_break') if e.get('m_break') is not None else '–'} "
                     f"| {', '.join(str(m) for m in sorted(e['m_scanned']))} |")
    return "\n".join(lines)
