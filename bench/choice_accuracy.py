"""How right the automatic choice is: its fit verdicts against the builds, its estimates against
nextpnr, and its first tries (run on demand, after ``bench.boards``).

    python -m bench.choice_accuracy [--pairs] [--networks ...] [--boards ...]

Reads every build of ``bench/results/boards.json`` (configurations picked by hand) and
``boards_auto.json`` (chosen by the tool, with every try), estimates each one again with the
current cost model (:func:`bench.boards.reestimate`) and reports:

- **verdicts**: for every configuration actually built, whether the estimate's verdict
  (:func:`boards.fit.board_fit`: fits, tight, does not fit) agrees with what happened (placed,
  or placement ran out of cells or memory). A build that failed in the router or ran out of
  time is not a verdict on fit and is listed apart;
- **estimates** of the configurations the tool chose: LUT4 (with the host link) and block RAM
  against nextpnr, as relative errors;
- **first tries**: how many automatic builds reached a routed, timing-met bitstream on their
  first try, and how many within their retries.

``--pairs`` also runs the choice (no build) for every bench network on every board and lists
the configuration it picks, or the one line that says why nothing fits (slow the first time:
the stack core's candidates are measured in Verilator, then cached).

Results: ``bench/results/choice_accuracy.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench/results"
NETWORKS = ("wm-demo", "wm-128", "wm-144", "convdelrec-w4", "convdelrec", "delrec")

#: nextpnr's and the estimate's messages for a design that does not fit (placement or
#: planning), as opposed to one that failed to route or ran out of time.
_NO_FIT = re.compile(r"no BELs remaining|Failed to expand region|does not fit|need \d+ SPRAM|"
                     r"more than the [\d,]+ bits", re.I)


def _outcome(rec: dict) -> str | None:
    """``placed``, ``no fit`` or None (failed otherwise: routing, time) for a build record."""
    if "error" not in rec:
        return "placed" if rec.get("nextpnr") else None
    return "no fit" if _NO_FIT.search(rec["error"]) else None


def verdicts(records: list[dict]) -> list[dict]:
    """One row per built configuration: the current estimate's verdict against the outcome."""
    from boards.catalog import board
    from boards.fit import board_fit
    from bench.boards import reestimate
    nets: dict = {}
    rows = []
    for rec in records:
        outcome = _outcome(rec)
        row = {"key": rec["key"], "board": rec["board"], "core": rec.get("core", "network"),
               "lanes": rec["lanes"], "outcome": outcome or f"failed: {rec['error'][:120]}"}
        if not rec.get("estimate"):       # refused before synthesis: the planner's own verdict
            row.update(verdict="does not fit", right=outcome == "no fit")
            rows.append(row)
            continue
        est = reestimate(rec, nets)
        fit = board_fit(est, board(rec["board"]))
        row.update(verdict=fit.verdict,
                   right=None if outcome is None else fit.fits == (outcome == "placed"))
        if outcome == "placed":
            bram = fit.need("bram")
            row.update(lut_est=fit.need("lut").used, lut=rec["nextpnr"]["logic"]["used"],
                       bram_est=bram.used if bram else 0, bram=rec["nextpnr"]["bram"]["used"])
        rows.append(row)
    return rows


def first_tries(auto: list[dict]) -> list[dict]:
    """Per automatic build: its configuration, tries, and whether the first met timing."""
    out = []
    for rec in auto:
        tries = rec.get("tries", [])
        met = [t for t in tries if t.get("result") == "timing met"]
        out.append({"key": rec["key"], "configuration": rec.get("configuration"),
                    "tries": len(tries), "first_try": bool(tries) and
                    tries[0].get("result") == "timing met",
                    "met": bool(met), "error": rec.get("error")})
    return out


def pairs(networks, boards) -> list[dict]:
    """The choice (no build) for every network on every board."""
    from bench.boards import _auto_work
    from boards.catalog import board
    from polychrony_cli.choose import choose
    out = []
    for name in networks:
        net, work = _auto_work(name)
        for b in boards:
            c = choose(net, b, work, work_dir=Path("build/choice-accuracy") / name / b)
            best = c.best
            out.append({"network": name, "board": b,
                        "choice": None if best is None else best.label,
                        "verdict": None if best is None else best.fit.verdict,
                        "samples_per_s": None if best is None else round(best.samples_per_s, 1),
                        "why_not": c.nowhere(board(b)) if best is None else None})
            print(f"  {name} on {b}: {out[-1]['choice'] or out[-1]['why_not']}", flush=True)
    return out


def _pct(est, real) -> str:
    return f"{(est - real) / real:+.0%}"


def _calibration_digest() -> str:
    import hashlib
    from rtl.calibration import PATH
    return hashlib.sha256(PATH.read_bytes()).hexdigest()[:16]


def markdown(v: list[dict], ft: list[dict], pr: list[dict] | None,
             stale: bool = False) -> str:
    judged = [r for r in v if r["right"] is not None]
    right = sum(r["right"] for r in judged)
    lines = [f"Fit verdicts right: **{right} of {len(judged)}** built configurations "
             f"({right / max(1, len(judged)):.0%}); {len(v) - len(judged)} failed for other "
             f"reasons (routing, time) and are not counted.", "",
             "| build | verdict | outcome | right | LUT4 est. / nextpnr | BRAM est. / nextpnr |",
             "|---|---|---|---|---|---|"]
    for r in v:
        lut = (f"{r['lut_est']:,} / {r['lut']:,} ({_pct(r['lut_est'], r['lut'])})"
               if "lut" in r else "")
        bram = (f"{r['bram_est']} / {r['bram']} ({_pct(r['bram_est'], r['bram'])})"
                if r.get("bram") else "")
        mark = {True: "yes", False: "**no**", None: "-"}[r["right"]]
        lines.append(f"| {r['key']} | {r['verdict']} | {r['outcome']} | {mark} | {lut} | "
                     f"{bram} |")
    first = sum(t["first_try"] for t in ft)
    met = sum(t["met"] for t in ft)
    lines += ["", f"Automatic builds: **{first} of {len(ft)}** met timing on their first try, "
              f"{met} of {len(ft)} within their retries.", "",
              "| build | configuration | tries | first try | met |", "|---|---|---|---|---|"]
    for t in ft:
        lines.append(f"| {t['key']} | {t['configuration'] or t['error']} | {t['tries']} | "
                     f"{'yes' if t['first_try'] else 'no'} | {'yes' if t['met'] else 'no'} |")
    if pr:
        lines += ["", "The choice for every bench network on every board (no build)" +
                  (", **made with an earlier calibration** (`rtl/calibration.json` has changed "
                   "since: rerun with `--pairs`)" if stale else "") + ":", "",
                  "| network | board | chosen | verdict | samples/s |", "|---|---|---|---|---|"]
        for p in pr:
            lines.append(f"| {p['network']} | {p['board']} | {p['choice'] or p['why_not']} | "
                         f"{p['verdict'] or ''} | {p['samples_per_s'] or ''} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from boards.catalog import BOARDS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", action="store_true",
                    help="also run the choice for every network on every board")
    ap.add_argument("--networks", nargs="*", default=list(NETWORKS))
    ap.add_argument("--boards", nargs="*", default=list(BOARDS))
    args = ap.parse_args(argv)
    hand = json.loads((RESULTS / "boards.json").read_text())
    auto = json.loads((RESULTS / "boards_auto.json").read_text())
    v = verdicts(hand + auto)
    ft = first_tries(auto)
    pr = pairs(args.networks, args.boards) if args.pairs else None
    digest = _calibration_digest() if pr is not None else None
    if pr is None and (RESULTS / "choice_accuracy.json").exists():
        old = json.loads((RESULTS / "choice_accuracy.json").read_text())
        pr, digest = old.get("pairs"), old.get("pairs_calibration")
    (RESULTS / "choice_accuracy.json").write_text(json.dumps(
        {"verdicts": v, "first_tries": ft, "pairs": pr, "pairs_calibration": digest},
        indent=1))
    md = markdown(v, ft, pr, stale=pr is not None and digest != _calibration_digest())
    (RESULTS / "choice_accuracy.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
