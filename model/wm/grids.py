"""Grids of working-memory sweeps: the built-in grids; loading, checking and expanding a grid.

A *grid* is a JSON-able dict::

    {"name": "scan-n",                      # optional, recorded with every point
     "base": {"n": 512, "m": 16, ...},      # overrides of DEFAULTS (optional)
     "axes": {"n": [256, 384, 512]},        # one product of axes, or a list of products
     "seeds": [0, 1, 2, 3, 4]}              # optional (default 0..4)

``axes`` may also be a list of dicts; the grid is then the union of their products (used by
the robustness grid, whose levels depend on the perturbation). A *point* is one full settings
dict (DEFAULTS <- base <- axis values) and one seed. Its key is the canonical JSON of both, so
a results file can be resumed: :func:`model.wm.sweep.run_grid` skips every point whose key is
already in the file and appends each finished point as one JSON line.

Settings (:data:`DEFAULTS`; the paper's setting):

- ``n, d, m, t, p``: neurons, delays, patterns, pattern length, target rate p_A (also the
  pre-cue noise rate); ``gain`` of the least-squares solution; ``pre`` noise steps before the
  cue; ``beta, beta_shift, reset`` the neuron.
- ``init``: ``"ls"`` (least squares), ``"train"`` (least squares, then ``train_steps`` of
  teacher-forced F1 surrogate-gradient training at ``train_lr``), ``"hebbian"`` (needs
  ``model.wm.network.hebbian_init``).
- ``w_bits``: weight bits of the integer network (mode ``"int"``).
- ``modes``: which recalls to run, ``["float", "int"]``.
- ``perturb`` / ``level``: the robustness experiment (:data:`PERTURBATIONS`,
  :mod:`model.wm.perturb`).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

__all__ = [
    "DEFAULTS", "EVAL_KEYS", "PERTURBATIONS", "INITS", "GRIDS", "SCALED", "GridError",
    "load_grid", "expand_grid", "point_key", "parse_seeds", "load_ratio",
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
    # Paper size (one least-squares solve each; costs in docs/working-memory.md).
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
    # Scaled (N = 128, T = 281: same load as the paper at M = 16; much cheaper solves).
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
        from model.wm import network
        if not hasattr(network, "hebbian_init"):
            raise GridError(f"{where}: init 'hebbian' needs model.wm.network.hebbian_init, "
                            f"which this version does not have")
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
