"""Fit the LUT model of rtl.cost to real iCE40/ECP5 builds (run on demand; minutes).

    python -m bench.calibrate_logic --family ice40|ecp5 [--fit-only | --only-new | --cases K]
                                    [--write]

Builds a fixed set of networks (random networks of every feature, the demo working-memory
network at lane counts up to 16 (iCE40) or 32 (ECP5) and, on ECP5, the SHD-shaped benchmark
networks), records ``rtl.cost.logic_features`` beside nextpnr's logic and block-RAM counts in
``bench/results/logic_fit_<family>.json``, and fits the per-feature LUT costs by least
squares on relative error (random networks weighing :data:`RANDOM_WEIGHT` as much as the
structured ones). ``--fit-only`` refits from the saved builds; ``--only-new`` builds only the cases
the saved file lacks (cases are numbered in the order of :func:`_cases`, new ones appended);
``--cases 0-16`` builds those cases again (after a change to the generated logic) and keeps the
saved others.
The network-core builds of the board table (``bench/results/boards*.json``) made by the
current bench (with a design fingerprint) join the fit, the host link's LUT4 taken off: they
are the only builds of the large working memories. What the link adds is fitted first,
``lut + lut_per_lane * lanes``, from the demo's board builds made by the current bench less
its core built alone at the same lane count (two lane counts or more; else ``link`` of
``rtl/calibration.json`` is kept). ``--write`` puts both in ``rtl/calibration.json``
(``network_lut`` and ``link``), where the estimate reads them.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np

from rtl.calibration import calibration
from rtl.devices import largest
from rtl.memplan import memory_bits, memory_kinds
from rtl.cost import (FEATURES, logic_features, memory_blocks, memory_shapes, spram_blocks,
                      weight_blocks, with_membranes)
from sim.randnet import random_network


#: Weight of a random network's build in the fit, relative to a structured one's.
RANDOM_WEIGHT = 0.1


def _cases(family: str):
    from model.wm.run import DEFAULTS, run_wm  # torch: only for the demo network
    from sim.shaped import shd_network
    demo = run_wm(**DEFAULTS, seed=0)["net"]
    cases = [(f"random {s}", random_network(s, profile="full"), lanes)
             for s, lanes in ((200, 1), (201, 2), (202, 4), (203, 1), (204, 2), (205, 4))]
    cases += [("demo wm", demo, 1), ("demo wm", demo, 4)]
    # (Appended cases keep the numbers of the saved builds: add new ones at the end.)
    if family == "ecp5":
        cases += [("shd conv", shd_network("conv"), 4), ("shd conv", shd_network("conv"), 16),
                  ("shd dense", shd_network("dense"), 8), ("shd conv", shd_network("conv"), 8),
                  ("shd dense", shd_network("dense"), 4),
                  ("shd conv 4-bit", shd_network("conv", w_bits=4), 8)]
    else:
        small = shd_network("conv", n_in=40, n=64, classes=10, w_bits=4)
        cases += [("demo wm", demo, 2), ("shd conv 64-64r-10 w4", small, 4),
                  ("shd conv 64-64r-10 w4", small, 2),
                  ("shd dense 64-64r-10 w4", shd_network("dense", n_in=40, n=64, classes=10,
                                                        w_bits=4), 2),
                  ("shd conv 4-bit (SPRAM)", shd_network("conv", w_bits=4), 2)]
    # Many lanes: the automatic choice reaches for them, so the model must hold there too.
    cases += [("demo wm", demo, 8), ("demo wm", demo, 16)]
    if family == "ecp5":
        cases += [("demo wm", demo, 32)]
        # The large working memories of the board table: many weight banks per lane.
        big = {n: run_wm(n=n, d=41, m=8, t=281, p=2e-3, w_bits=4, seed=0)["net"]
               for n in (128, 144)}
        cases += [("wm 128", big[128], 32), ("wm 128", big[128], 64), ("wm 144", big[144], 48)]
    return cases


def parse_cases(spec: str, count: int) -> set[int]:
    """The case numbers of ``spec`` (``"3"``, ``"0-16"``, ``"1,4,8-9"``), each below
    ``count``."""
    out: set[int] = set()
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"--cases: {part!r} is not a case number or a range a-b")
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if lo > hi or hi >= count:
            raise ValueError(f"--cases: {part.strip()!r} is not a range within the "
                             f"{count} cases (0-{count - 1})")
        out.update(range(lo, hi + 1))
    return out


def _nnls(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients (drop the most negative and refit)."""
    keep = list(range(a.shape[1]))
    while True:
        coef = np.zeros(a.shape[1])
        sol, *_ = np.linalg.lstsq(a[:, keep], y, rcond=None)
        coef[keep] = sol
        if (sol >= 0).all():
            return coef
        keep.pop(int(np.argmin(sol)))


def _current_build(rec: dict, family: str) -> bool:
    """Whether board record ``rec`` is a network-core build on ``family`` that placed, made
    by the current bench (it has a design fingerprint)."""
    from boards.catalog import board
    return ("error" not in rec and bool(rec.get("nextpnr")) and bool(rec.get("design"))
            and rec.get("core", "network") == "network"
            and board(rec["board"]).family == family)


def link_pairs(family: str, case_rows: list[dict], records: list[dict]) -> list[tuple]:
    """``(lanes, LUT4)`` of what the host link adds, from each board build of the demo network
    on ``family`` (``records``: ``bench/results/boards*.json``) that has a design fingerprint
    (built by the current bench, not an older record) and whose core was built alone at the
    same lane count (``case_rows``, name ``demo wm``): nextpnr's logic less the core's."""
    core = {r["lanes"]: r["lut"] for r in case_rows if r.get("name") == "demo wm"}
    out = []
    for rec in records:
        if (rec["key"].split("|")[0] != "wm-demo" or not _current_build(rec, family)
                or rec["lanes"] not in core):
            continue
        out.append((int(rec["lanes"]), rec["nextpnr"]["logic"]["used"] - core[rec["lanes"]]))
    return sorted(out)


def fit_link(pairs: list[tuple]) -> dict[str, float]:
    """The host link's cost ``lut + lut_per_lane * lanes`` by least squares over ``pairs``
    (:func:`link_pairs`); builds at two lane counts at least."""
    if len({lanes for lanes, _ in pairs}) < 2:
        raise ValueError(f"the host link's cost needs board builds of the demo at two lane "
                         f"counts or more, with its core built alone at each; have "
                         f"{sorted({lanes for lanes, _ in pairs})}")
    lanes = np.array([p[0] for p in pairs], float)
    a = np.stack([np.ones_like(lanes), lanes], axis=1)
    (lut, per_lane), *_ = np.linalg.lstsq(a, np.array([p[1] for p in pairs], float),
                                          rcond=None)
    return {"lut": int(round(lut)), "lut_per_lane": round(float(per_lane), 1)}


def _records() -> list[dict]:
    out = []
    for name in ("boards.json", "boards_auto.json"):
        path = Path("bench/results") / name
        if path.exists():
            out += json.loads(path.read_text())
    return out


def _board_rows(family: str, records: list[dict], link: dict) -> list[tuple]:
    """``(net, row)`` of the network-core builds of ``records`` on ``family`` made by the
    current bench (with a design fingerprint: older records stand for older logic), one per
    (network, lanes): ``lut`` is nextpnr's less the host link's (``link``: ``lut`` and
    ``lut_per_lane``)."""
    from bench.boards import _network
    seen, out, nets = set(), [], {}
    for rec in records:
        net_name = rec["key"].split("|")[0]
        if not _current_build(rec, family) or (net_name, rec["lanes"]) in seen:
            continue
        seen.add((net_name, rec["lanes"]))
        if net_name not in nets:
            nets[net_name] = _network(net_name)[0]
        lut = int(round(rec["nextpnr"]["logic"]["used"]
                        - (link["lut"] + link["lut_per_lane"] * rec["lanes"])))
        out.append((nets[net_name], {"name": f"{net_name} (board)", "lanes": rec["lanes"],
                                     "lut": lut, "bram": rec["nextpnr"]["bram"]["used"],
                                     "bram_model": rec["estimate"]["blocks_total"],
                                     "board": rec["board"]}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=("ice40", "ecp5"), default="ice40")
    ap.add_argument("--fit-only", action="store_true",
                    help="refit from the saved builds (features are recomputed)")
    ap.add_argument("--only-new", action="store_true",
                    help="build only the cases the saved file lacks, then refit from all")
    ap.add_argument("--cases", metavar="K",
                    help="build these cases again (numbers or ranges: 0-16, 3,5), keeping "
                         "the saved others")
    ap.add_argument("--write", action="store_true",
                    help="write the coefficients to rtl/calibration.json (network_lut)")
    args = ap.parse_args()
    out = Path(f"bench/results/logic_fit_{args.family}.json")
    cases = _cases(args.family)
    saved = json.loads(out.read_text())["rows"] if out.exists() else []
    if args.cases is not None:
        if args.fit_only or args.only_new:
            ap.error("--cases goes with neither --fit-only nor --only-new")
        try:
            again = parse_cases(args.cases, len(cases))
        except ValueError as e:
            ap.error(str(e))
    if args.fit_only:
        rows = saved
    else:
        from boards.schedule import build_schedule
        board_name = "icebreaker" if args.family == "ice40" else "ulx3s-85f"
        rows = (list(saved) if args.only_new else
                [r for r in saved if r["case"] not in again] if args.cases is not None else [])
        done = {r["case"] for r in rows}
        for k, (name, net, lanes) in enumerate(cases):
            if k in done or (args.cases is not None and k not in again):
                continue
            with tempfile.TemporaryDirectory() as d:
                try:
                    # router2 for the large ones: router1 crawls on them
                    big = memory_bits(net, lanes=lanes).get("proj0.weights", 0) > 1 << 20
                    r = build_schedule(net, board_name, build_dir=Path(d) / "b", lanes=lanes,
                                       timing_allow_fail=True,
                                       nextpnr_opts="--router router2" if big else "")
                except Exception as e:  # a design that does not fit is skipped
                    print(f"{name} lanes {lanes}: build failed ({str(e)[:80]})", flush=True)
                    continue
            shapes = memory_shapes(net, lanes=lanes)
            kinds = memory_kinds(net, lanes=lanes, family=args.family)
            row = {"case": k, "name": name, "lanes": lanes,
                   "lut": r.resources["logic"].used, "bram": r.resources["bram"].used,
                   "bram_model": sum(weight_blocks(net, memory_blocks(
                       shapes, args.family, with_membranes(
                           net, kinds, lanes=lanes, device=largest(args.family))),
                       kinds, lanes=lanes, family=args.family).values()),
                   "spram": r.resources["spram"].used if "spram" in r.resources else 0,
                   "spram_model": sum(spram_blocks(shapes, kinds).values()),
                   "fmax_mhz": r.fmax_mhz}
            rows.append(row)
            # Saved as it goes: a stopped run keeps the builds it made.
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"family": args.family, "features": FEATURES,
                                       "rows": sorted(rows, key=lambda r: r["case"])}, indent=1))
            print(f"{name} lanes {lanes}: nextpnr {row['lut']} LUT, {row['bram']} blocks "
                  f"(model {row['bram_model']}), {row['spram']} SPRAM (model "
                  f"{row['spram_model']}), {r.fmax_mhz:.1f} MHz", flush=True)
    rows.sort(key=lambda r: r["case"])
    nets = [cases[r["case"]][1] for r in rows]
    # The board table's network-core builds too (the core's LUT4: nextpnr's less the host
    # link's), one per network and lane count: they reach the large working memories, whose
    # cores alone do not route in reasonable time.
    records = _records()
    link = dict(calibration()["link"][args.family])
    try:
        link.update(fit_link(link_pairs(args.family, rows, records)))
        print(f"host link: {link['lut']} + {link['lut_per_lane']} x lanes LUT4 (the demo's "
              f"board builds less its core alone)")
    except ValueError as e:
        print(f"host link: kept {link['lut']} + {link['lut_per_lane']} x lanes LUT4 ({e})")
    for net, r in _board_rows(args.family, records, link):
        nets.append(net)
        rows.append(r)
    feats = [logic_features(net, lanes=r["lanes"], family=args.family)
             for net, r in zip(nets, rows)]
    a = np.array([[f[k] for k in FEATURES] for f in feats], float)
    y = np.array([r["lut"] for r in rows], float)
    # Relative errors matter: weight each build by 1 / its size. The random networks (small,
    # irregular, much of their logic simplified away by Yosys) weigh RANDOM_WEIGHT as much:
    # the model is for the structured networks the project builds; their errors are shown.
    w = 1.0 / y * np.array([RANDOM_WEIGHT if r["name"].startswith("random") else 1.0
                            for r in rows])
    coef = _nnls(a * w[:, None], y * w)
    fit = a @ coef
    err = (fit - y) / y
    for r, f, e in zip(rows, fit, err):
        print(f"  {r['name']:<24} lanes {r['lanes']:>2}: nextpnr {r['lut']:>6}, model "
              f"{f:>8.0f} ({e:+.0%}); blocks {r['bram']:>3}, model {r['bram_model']:>3}")
    print(f"network_lut[{args.family!r}] = {tuple(round(float(c), 3) for c in coef)}  "
          f"# {', '.join(FEATURES)}; median |error| {np.median(np.abs(err)):.0%}, "
          f"max {np.abs(err).max():.0%}")
    if args.write:
        from rtl.calibration import write_calibration
        write_calibration("network_lut", args.family, [round(float(c), 3) for c in coef])
        write_calibration("link", args.family, link)
        print(f"wrote network_lut[{args.family!r}] and link[{args.family!r}] to "
              f"rtl/calibration.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [r for r in rows if "case" in r]         # the board rows are read afresh each time
    out.write_text(json.dumps({"family": args.family, "features": FEATURES, "rows": rows,
                               "coef": coef.tolist(),
                               "error": [round(float(e), 4) for e in err]}, indent=1))


if __name__ == "__main__":
    main()
