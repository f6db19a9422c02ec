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
stopped by hand in ``bench/results/route_failures.json``, but its entries marked ``retired``
(a failure that a later build of the same configuration, on later logic, contradicts: the
entry says which).
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


def records(paths=RESULTS, grade_factor: dict | None = None) -> list[dict]:
    """Every stored build with a post-route Fmax: ``{core, family, lanes, fmax}``, the Fmax of
    a build on a faster speed grade divided by that grade's factor (``grade_factor``:
    ``{family: {grade: factor}}``, see :func:`grade_factors`), so that the lane tables are in
    the reference grade's terms."""
    from boards.catalog import board
    out = []
    for path in paths:
        if not Path(path).exists():
            continue
        for r in json.loads(Path(path).read_text()):
            if r.get("fmax_mhz") and "error" not in r:
                b = board(r["board"])
                f = (grade_factor or {}).get(b.family, {}).get(b.part_suffix, 1.0)
                out.append({"core": r.get("core", "network"), "family": b.family,
                            "lanes": int(r["lanes"]), "fmax": float(r["fmax_mhz"]) / f})
    return out


def grade_factors(sizes: dict) -> dict:
    """``{family: {grade: factor}}``: a speed grade's factor on a family is the device's, so
    the one fitted with the most builds (``fit_size``'s) stands for every core there."""
    out: dict = {}
    best: dict = {}
    for core, fams in sizes.items():
        for family, m in fams.items():
            if m["builds"] > best.get(family, 0):
                best[family] = m["builds"]
                out[family] = dict(m["grade_factor"])
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


#: The size model may leave this share of the builds it is fitted on below its clock (the
#: expected Fmax less the choice's margin): its line is set that low, no lower.
MISS_SHARE = 0.1

#: A core is given a size model on a family from this many builds (tries included) at two
#: sizes or more; below that the lane table stands.
MIN_BUILDS = 8

#: Weights of a block RAM in LUT4s tried for the size (``lut + w * bram``).
BLOCK_WEIGHTS = tuple(range(0, 201, 10))


def size_points(paths=RESULTS) -> list[dict]:
    """Every build and every try with a post-route Fmax, with the size the choice estimated
    for it: ``{core, family, grade, lut, bram, fmax}`` (the core's LUT4 and block-RAM estimate
    as stored in the record: an automatic build's ranked candidate, a pinned build's
    estimate). A try that missed timing counts: its Fmax was measured all the same."""
    from boards.catalog import board
    out = []
    for path in paths:
        if not Path(path).exists():
            continue
        for r in json.loads(Path(path).read_text()):
            if "error" in r and not r.get("tries"):
                continue
            b = board(r["board"])
            where = {"family": b.family, "grade": b.part_suffix}
            if "choice" in r:
                ranked = r["choice"]["ranked"]
                for t in r.get("tries", []):
                    c = next((c for c in ranked if c["core"] == t.get("core")
                              and c["lanes"] == t.get("lanes")
                              and parse_knob_rows(c) == t.get("rows")), None)
                    if t.get("fmax_mhz") and c is not None and c.get("lut"):
                        out.append({**where, "core": t["core"], "lut": c["lut"],
                                    "bram": c["bram"], "fmax": float(t["fmax_mhz"])})
            elif r.get("fmax_mhz") and "error" not in r:
                e = r["estimate"]
                out.append({**where, "core": r.get("core", "network"), "lut": e["lut"],
                            "bram": e["blocks_total"], "fmax": float(r["fmax_mhz"])})
    return out


def parse_knob_rows(c: dict):
    """A ranked candidate's rows as a try records them (``{"2": 2}`` or None)."""
    rows = (c.get("knobs") or {}).get("rows")
    return None if not rows else {str(k): v for k, v in rows.items()}


def fit_size(points: list[dict], margin: float | None = None) -> dict:
    """``{core: {family: model}}``: for each core and family with :data:`MIN_BUILDS` points,
    Fmax against the logarithm of the design's size. The block-RAM weight and the slope come
    from a least-squares fit on the most common speed grade's builds; another grade's factor
    is the least ratio of its builds to that line (a faster grade is not assumed faster than
    its builds showed); the line is then lowered until no more than :data:`MISS_SHARE` of the
    builds (each brought to the reference grade) would run below the clock the choice sets
    (``margin`` below the line: ``polychrony_cli.choose.CLOCK_MARGIN``). ``floor`` is the
    least Fmax measured, less a fifth: the model does not extrapolate below it."""
    if margin is None:
        from polychrony_cli.choose import CLOCK_MARGIN as margin
    groups: dict = {}
    for p in points:
        groups.setdefault((p["core"], p["family"]), []).append(p)
    out: dict = {}
    for (core, family), pts in sorted(groups.items()):
        if len(pts) < MIN_BUILDS or len({p["lut"] for p in pts}) < 2:
            continue
        grades = [p["grade"] for p in pts]
        ref = max(sorted(set(grades)), key=grades.count)
        base = [p for p in pts if p["grade"] == ref]
        y = np.array([p["fmax"] for p in base])
        best = None
        for w in BLOCK_WEIGHTS:
            x = np.log(np.array([(p["lut"] + w * p["bram"]) / 1000 for p in base]))
            if np.ptp(x) == 0:
                continue
            slope, a = np.polyfit(x, y, 1)
            rmse = float(np.sqrt(np.mean((y - (a + slope * x)) ** 2)))
            if best is None or rmse < best[0] - 1e-9:
                best = (rmse, w, float(a), float(-slope))
        if best is None or best[3] <= 0:
            continue
        _, w, a, b = best

        def line(p, a=a, b=b, w=w):
            return a - b * math.log((p["lut"] + w * p["bram"]) / 1000)
        factor = {g: math.floor(min(p["fmax"] / line(p) for p in pts if p["grade"] == g)
                                * 100) / 100
                  for g in sorted(set(grades)) if g != ref}
        norm = [(p["fmax"] / factor.get(p["grade"], 1.0), line(p)) for p in pts]
        # lower the line by the least delta that leaves at most MISS_SHARE of the builds
        # below (1 - margin) * (line - delta)
        need = sorted(pred - f / (1 - margin) for f, pred in norm)
        keep = len(need) - int(math.floor(MISS_SHARE * len(need)))
        delta = max(0.0, need[keep - 1])
        out.setdefault(core, {})[family] = {
            "a": round(a - delta, 2), "b": round(b, 3), "lut_per_block": w,
            "grade": ref, "grade_factor": factor, "builds": len(pts),
            "floor": round(0.8 * min(f for f, _ in norm), 1)}
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
            if r.get("retired"):
                continue
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
    sizes = fit_size(size_points())
    grades = grade_factors(sizes)
    recs = records(grade_factor=grades)
    tables = fit(recs)
    for core, fams in sorted(tables.items()):
        for family, rows in sorted(fams.items()):
            n = sum(1 for r in recs if r["core"] == core and r["family"] == family)
            print(f"{core:<8} {family:<6} {rows}  ({n} builds)")
    for core, fams in sorted(sizes.items()):
        for family, m in sorted(fams.items()):
            print(f"{core:<8} {family:<6} Fmax = {m['a']} - {m['b']} ln((LUT4 + "
                  f"{m['lut_per_block']} x BRAM) / 1000), grade {m['grade']}, other grades "
                  f"x {m['grade_factor']}, floor {m['floor']}  ({m['builds']} builds)")
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
        for core, fams in sizes.items():
            write_calibration("fmax_size", core, dict(calibration().get("fmax_size", {}).get(
                core, {}), **fams))
        for family, factors in grades.items():
            write_calibration("grade_factor", family, factors)
        print("wrote fmax_mhz, fmax_size, grade_factor and routing to rtl/calibration.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
