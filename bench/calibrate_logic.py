"""Fit the LUT model of rtl.cost to real iCE40/ECP5 builds (run on demand; minutes).

    python bench/calibrate_logic.py [--family ice40|ecp5] [--count 6]

Builds random networks and the demo network with several lane counts, prints the model's raw
figure beside nextpnr's logic cells, and the least-squares scale and offset that map one to
the other. Paste the fitted constants into ``rtl/cost.py`` (``LUT_FIT``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from rtl.cost import logic_estimate
from sim.randnet import random_network


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=("ice40", "ecp5"), default="ice40")
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--out", default="bench/results/logic_fit.json")
    args = ap.parse_args()
    if args.family == "ice40":
        from boards.icebreaker import build_icebreaker as build
    else:
        from boards.ulx3s import build_ulx3s as build
    rows = []
    for k in range(args.count):
        seed, lanes = 200 + k, (1, 2, 4)[k % 3]
        net = random_network(seed, profile="full")
        raw = logic_estimate(net, lanes=lanes, raw=True)["lut"]
        with tempfile.TemporaryDirectory() as d:
            try:
                r = build(net, build_dir=Path(d) / "b", lanes=lanes, timing_allow_fail=True)
            except Exception as e:  # a design that does not fit is a data point we skip
                print(f"seed {seed} lanes {lanes}: build failed ({str(e)[:80]})")
                continue
        real = r.resources["logic"].used
        rows.append((seed, lanes, raw, real))
        print(f"seed {seed} lanes {lanes}: model {raw}, nextpnr {real}", flush=True)
    a = np.array([[1.0, raw] for _, _, raw, _ in rows])
    y = np.array([real for *_, real in rows], dtype=float)
    (offset, scale), *_ = np.linalg.lstsq(a, y, rcond=None)
    fit = a @ [offset, scale]
    err = np.abs(fit - y) / y
    print(f"fit: lut = {offset:.1f} + {scale:.3f} * raw; median error {np.median(err):.1%}, "
          f"max {err.max():.1%}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"family": args.family, "rows": rows,
                                          "offset": offset, "scale": scale}, indent=1))


if __name__ == "__main__":
    main()
