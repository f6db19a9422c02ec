"""Refit the expected Fmax of each core from the board builds (run after ``bench.boards``).

    python -m bench.calibrate_fmax [--write]

Reads every build record of ``bench/results/boards.json`` and ``boards_auto.json`` that has a
post-route Fmax, groups them by core, family and lanes, and prints for each core and family a
table of ``[lanes, MHz]``: the median Fmax of the builds at those lanes, the lane counts in
increasing order, the last one standing for every lane count above it. A design is looked up
at the first entry whose lanes are at least its own (``rtl.cores.Core.expected_fmax``), so a
lane count between two measured ones takes the larger one's Fmax: more lanes, more logic, a
lower Fmax. ``--write`` puts the tables in ``rtl/calibration.json`` (``fmax_mhz``), keeping the
defaults of cores and families without builds.

It also works out the routing limits (``routing``): for each core and family, the wiring
(:meth:`rtl.cores.Core.wiring`, weight bits per cycle) of the widest build that placed and
routed and of the narrowest that did not, and the largest share of the device's LUT4s that a
routed build takes and the least that a build failing to route takes, by the current
estimate (so that the choice compares a candidate's estimate with estimates). Failures are the failed tries of the automatic builds
(``boards_auto.json``: a try stopped at its time limit or failing in the router) and the builds
stopped by hand in ``bench/results/route_failures.json``.
"""

from __future__ import annotations

import argparse
import math
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = [ROOT / "bench/results/boards.json", ROOT / "bench/results/boards_auto.json"]
FAILURES = ROOT / "bench/results/route_failures.json"


def records(paths=RESULTS) -> list[dict]:
    """Every stored build with a post-route Fmax: ``{core, family, lanes, fmax}``."""
    from boards.catalog import board
    out = []
    for path in paths:
        if not Path(path).exists():
            continue
        for r in json.loads(Path(path).read_text()):
            if r.get("fmax_mhz") and "error" not in r:
                out.append({"core": r.get("core", "network"), "family": board(r["board"]).family,
                            "lanes": int(r["lanes"]), "fmax": float(r["fmax_mhz"])})
    return out


def fit(recs: list[dict]) -> dict:
    """``{core: {family: [[lanes, MHz], ...]}}`` from :func:`records`; the last entry's lanes
    become 256 (it stands for every lane count above)."""
    table: dict = {}
    for r in recs:
        table.setdefault(r["core"], {}).setdefault(r["family"], {}).setdefault(
            r["lanes"], []).append(r["fmax"])
    out: dict = {}
    for core, fams in table.items():
        for family, by_lanes in fams.items():
            rows = [[lanes, round(float(np.median(v)), 1)] for lanes, v in sorted(by_lanes.items())]
            rows[-1][0] = 256
            out.setdefault(core, {})[family] = rows
    return out


def route_records(paths=RESULTS, failures=FAILURES) -> list[dict]:
    """Builds that placed and routed and builds that did not: ``{network, board, family,
    core, lanes, rows, routed}`` (the network by its ``bench.boards`` name)."""
    from bench.boards import parse_rows, record_rows
    from boards.catalog import board
    out = []
    for path in paths:
        if not Path(path).exists():
            continue
        for r in json.loads(Path(path).read_text()):
            name = r["key"].split("|")[0]
            where = {"network": name, "board": r["board"], "family": board(r["board"]).family}
            if r.get("fmax_mhz") and "error" not in r:
                out.append({**where, "core": r.get("core", "network"), "lanes": int(r["lanes"]),
                            "rows": record_rows(r), "routed": True})
            for t in r.get("tries", []):
                msg = t.get("result", "")
                if "core" in t and msg.startswith("failed") and (
                        "did not finish" in msg or "rout" in msg.lower()):
                    out.append({**where, "core": t["core"], "lanes": int(t["lanes"]),
                                "rows": parse_rows(t.get("rows")), "routed": False})
    if Path(failures).exists():
        for r in json.loads(Path(failures).read_text()):
            out.append({"network": r["network"], "board": r["board"],
                        "family": board(r["board"]).family, "core": r["core"],
                        "lanes": int(r["lanes"]), "rows": parse_rows(r["rows"]), "routed": False})
    return out


def routing(recs: list[dict]) -> dict:
    """``{core: {family: {"routed": widest wiring routed, "failed": narrowest failed,
    "routed_lut_share": the largest share of the device's LUT4s of a build that routed,
    "failed_lut_share": the least of one that failed to route though no wider than one that
    routed}}}`` (``failed`` counts only failures wider than every routed build). The shares
    are the current estimate's (core plus host link, against the board's own device), so that
    the choice compares like with like."""
    from bench.boards import _activities, _network, reestimate
    from boards.catalog import board
    from boards.fit import board_fit
    from rtl.cores import CORES
    nets: dict = {}
    out: dict = {}
    # The routed builds first: a failure wider than the widest routed build is put down to its
    # width; one no wider says how full is too full.
    for r in sorted(recs, key=lambda r: not r["routed"]):
        if r["network"] not in nets:
            net, work = _network(r["network"])
            nets[r["network"]] = net, _activities(net, work), work
        net = nets[r["network"]][0]
        knobs = {"rows": r["rows"]} if r["rows"] else {}
        w = CORES[r["core"]].wiring(net, lanes=r["lanes"], **knobs)
        slot = out.setdefault(r["core"], {}).setdefault(r["family"], {})
        wider = not r["routed"] and w > slot.get("routed", -1)
        if r["routed"] or wider:
            key, pick = ("routed", max) if r["routed"] else ("failed", min)
            slot[key] = pick(slot.get(key, w), w)
        if wider:
            continue
        try:
            est = reestimate({"key": r["network"], "board": r["board"], "core": r["core"],
                              "lanes": r["lanes"], "rows": r["rows"]}, nets)
        except ValueError:      # cannot be planned any more: no share to learn from
            continue
        share = board_fit(est, board(r["board"])).need("lut").share
        # to 0.1 %, rounded away from the other side
        share = (math.ceil if r["routed"] else math.floor)(share * 1000) / 1000
        key, pick = ("routed_lut_share", max) if r["routed"] else ("failed_lut_share", min)
        slot[key] = pick(slot.get(key, share), share)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true",
                    help="write the tables to rtl/calibration.json (fmax_mhz)")
    args = ap.parse_args(argv)
    recs = records()
    tables = fit(recs)
    for core, fams in sorted(tables.items()):
        for family, rows in sorted(fams.items()):
            n = sum(1 for r in recs if r["core"] == core and r["family"] == family)
            print(f"{core:<8} {family:<6} {rows}  ({n} builds)")
    limits = routing(route_records())
    for core, fams in sorted(limits.items()):
        for family, lim in sorted(fams.items()):
            print(f"{core:<8} {family:<6} wiring routed up to {lim.get('routed', '-')}, "
                  f"failed from {lim.get('failed', '-')}; LUT4 share routed up to "
                  f"{lim.get('routed_lut_share', '-')}, failed from "
                  f"{lim.get('failed_lut_share', '-')}")
    if args.write:
        from rtl.calibration import calibration, write_calibration
        for core, fams in limits.items():
            write_calibration("routing", core, dict(calibration().get("routing", {}).get(
                core, {}), **fams))
        for core, fams in tables.items():
            merged = dict(calibration()["fmax_mhz"].get(core, {}), **fams)
            write_calibration("fmax_mhz", core, merged)
        print("wrote fmax_mhz and routing to rtl/calibration.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
