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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = [ROOT / "bench/results/boards.json", ROOT / "bench/results/boards_auto.json"]


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
    if args.write:
        from rtl.calibration import calibration, write_calibration
        for core, fams in tables.items():
            merged = dict(calibration()["fmax_mhz"].get(core, {}), **fams)
            write_calibration("fmax_mhz", core, merged)
        print("wrote fmax_mhz to rtl/calibration.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
