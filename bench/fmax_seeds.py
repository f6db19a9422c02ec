"""Fmax by nextpnr seed: host-link bitstreams of a bench network at a fixed configuration and
clock target, built with several placement seeds (Fmax varies by seed), with the critical
path's ends (resumable; one JSON record per build).

    python -m bench.fmax_seeds --network wm-demo --lanes 1 --clock-mhz 100 \\
        --boards ulx3s-12f ulx3s-85f --seeds 1 2 3 [--core network|stack|lean] \\
        [--nextpnr-opts OPTS] [--replicate] [--headroom F] \\
        [--out bench/results/fmax_seeds.json]

The clock target is what nextpnr is asked for: it places and routes harder for a higher one,
so compare Fmax at the same target (on the iCE40 the PLL's nearest frequency). Networks are
those of :mod:`bench.boards`; the core is the network core unless ``--core`` names another
(its records' keys then name it), with nextpnr's own defaults unless ``--nextpnr-opts``
gives options (kept in the records and keys; ``polychrony build`` adds
:func:`boards.fit.placement_options` to a design that leaves room). ``--replicate`` builds the
network core with a copy of the weight address registers per block-RAM bank and of the fire
stages' valid flags per block of 16 lanes (:class:`rtl.core.NetworkCore`'s ``replicate``;
named in the records and keys). ``--headroom F`` asks nextpnr for ``1 + F`` times the clock
(:func:`boards.build.build`'s ``headroom``; in the records and keys; "met" is still judged
at the clock), to compare with builds asked for the clock itself. A build
always completes (``--timing-allow-fail``); its record says whether the target was met. The
summary gives, per (network, board, lanes, target), the Fmax at seed 1, and the median and
least over the seeds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.boards import rows_text
from polychrony_cli.common import UserError, parse_rows

__all__ = ["critical_path", "summary", "main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench/results/fmax_seeds.json"

_REPORT = re.compile(r"Critical path report for clock '([^']*)'")
_ENDS = re.compile(r"(Source|Sink) (\S+)")


def critical_path(log: str) -> dict | None:
    """The first clock's critical path in a nextpnr log: its start and end cells and the
    logic and routing delay (ns); None when the log has none."""
    m = _REPORT.search(log)
    if m is None:
        return None
    block = log[m.end():].split("\n\n", 1)[0]
    ends = _ENDS.findall(block)
    split = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", block)
    if not ends or split is None:
        return None
    return {"from": ends[0][1], "to": ends[-1][1], "logic_ns": float(split.group(1)),
            "routing_ns": float(split.group(2))}


def _key(network: str, board: str, lanes: int, clock: float, seed: int,
         core: str = "network", opts: str = "", replicate: bool = False,
         headroom: float = 0.0, rows: dict | None = None) -> str:
    core_part = "" if core == "network" else f"|{core}"
    opts_part = f"|{opts}" if opts else ""
    rep_part = "|replicate" if replicate else ""
    room_part = f"|headroom={headroom:g}" if headroom else ""
    rows_part = "|rows" + rows_text(rows) if rows else ""
    return (f"{network}|{board}|{lanes}|{clock:g}|{seed}{core_part}{opts_part}{rep_part}"
            f"{room_part}{rows_part}")


def build_one(network: str, board: str, lanes: int, clock: float, seed: int,
              core: str = "network", opts: str = "", replicate: bool = False,
              headroom: float = 0.0, rows: dict | None = None) -> dict:
    """Build one bitstream (with nextpnr options ``opts``; with ``replicate``, the network
    core's register copies; nextpnr asked for ``1 + headroom`` times the clock; ``rows``, the
    stack core's rows per cycle by layer) and return its record."""
    from bench.boards import _network
    from boards.top import build_board, sync_clock
    net, _ = _network(network)
    clock_hz, _ = sync_clock(board, clock * 1e6)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fmax-seeds-") as tmp:
        knobs = ({"replicate": True} if replicate else {}) | ({"rows": rows} if rows else {})
        res = build_board(net, board, build_dir=tmp, lanes=lanes, clock_hz=clock * 1e6,
                          seed=seed, timing_allow_fail=True, core=core, nextpnr_opts=opts,
                          headroom=headroom, **knobs)
        log = "".join(Path(p).read_text(errors="replace") for p in res.logs.values()
                      if Path(p).exists())
        lut = res.utilisation.get("TRELLIS_COMB") or res.utilisation.get("ICESTORM_LC")
        return {"key": _key(network, board, lanes, clock, seed, core, opts, replicate,
                            headroom, rows),
                "network": network, "board": board, "lanes": lanes, "target_mhz": clock,
                **({} if core == "network" else {"core": core}),
                **({"nextpnr_opts": opts} if opts else {}),
                **({"replicate": True} if replicate else {}),
                **({"rows": {str(k): v for k, v in rows.items()}} if rows else {}),
                **({"headroom": headroom} if headroom else {}),
                "clock_mhz": round(clock_hz / 1e6, 3), "seed": seed,
                "fmax_mhz": round(res.fmax_mhz, 2), "met": res.fmax_mhz * 1e6 >= clock_hz,
                "cells": None if lut is None else lut.used,
                "critical": critical_path(log), "seconds": round(time.monotonic() - t0, 1)}


def summary(records: list[dict]) -> list[dict]:
    """Per (network, board, lanes, target): Fmax at seed 1, median and least over seeds (a
    core other than the network core is named after the network, in parentheses)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        network = r["network"] + (f" ({r['core']})" if r.get("core", "network") != "network"
                                  else "") + (f" [{r['nextpnr_opts']}]"
                                              if r.get("nextpnr_opts") else "") + \
            ("" if not r.get("replicate") else " (replicated)" if r["replicate"] is True
             else f" (replicated: {r['replicate']})") + \
            (f" (asked {1 + r['headroom']:g}x)" if r.get("headroom") else "") + \
            (f" (rows {rows_text(r['rows'])})" if r.get("rows") else "")
        groups.setdefault((network, r["board"], r["lanes"], r["target_mhz"]), []).append(r)
    rows = []
    for (network, board, lanes, target), rs in groups.items():
        f = [r["fmax_mhz"] for r in rs]
        seed1 = next((r["fmax_mhz"] for r in rs if r["seed"] == 1), None)
        rows.append({"network": network, "board": board, "lanes": lanes, "target_mhz": target,
                     "seeds": sorted(r["seed"] for r in rs), "seed1_mhz": seed1,
                     "median_mhz": round(statistics.median(f), 2), "min_mhz": min(f)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default="wm-demo")
    ap.add_argument("--boards", nargs="+", default=["ulx3s-85f"])
    ap.add_argument("--lanes", type=int, default=1)
    ap.add_argument("--clock-mhz", type=float, default=100.0,
                    help="the clock nextpnr is asked to meet")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--core", default="network", help="the core (rtl.cores.CORES)")
    ap.add_argument("--nextpnr-opts", default="", metavar="OPTS",
                    help="extra nextpnr options, e.g. '--placer-heap-beta 0.8' (the records "
                         "keep them; default: none, nextpnr's own placement and router1)")
    ap.add_argument("--replicate", action="store_true",
                    help="network core: copies of the weight address registers per block-RAM "
                         "bank and of the fire stages' flags per 16 lanes "
                         "(rtl.core.NetworkCore's replicate)")
    ap.add_argument("--headroom", type=float, default=0.0, metavar="F",
                    help="ask nextpnr for 1 + F times the clock (boards.build.build's "
                         "headroom; met is still judged at the clock; default 0)")
    ap.add_argument("--rows", nargs="+", metavar="LAYER=R",
                    help="stack core: weight rows read per cycle into a layer, e.g. 2=2")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    try:
        rows = parse_rows(args)
    except UserError as e:
        ap.error(str(e))
    records = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {r["key"] for r in records}
    for board in args.boards:
        for seed in args.seeds:
            key = _key(args.network, board, args.lanes, args.clock_mhz, seed, args.core,
                       args.nextpnr_opts, args.replicate, args.headroom, rows)
            if key in done:
                continue
            print(f"{key}: building", flush=True)
            rec = build_one(args.network, board, args.lanes, args.clock_mhz, seed, args.core,
                            args.nextpnr_opts, args.replicate, args.headroom, rows)
            crit = rec["critical"] or {}
            print(f"  Fmax {rec['fmax_mhz']} MHz ({rec['seconds']} s); critical path "
                  f"{crit.get('from')} -> {crit.get('to')}", flush=True)
            # Re-read before writing: another run may have added records meanwhile.
            records = json.loads(args.out.read_text()) if args.out.exists() else []
            records = [r for r in records if r["key"] != key] + [rec]
            args.out.write_text(json.dumps(records, indent=1) + "\n")
    print("network | board | lanes | target MHz | seeds | Fmax seed 1 | median | least")
    for row in summary(records):
        print(f"{row['network']} | {row['board']} | {row['lanes']} | {row['target_mhz']:g} | "
              f"{row['seeds']} | {row['seed1_mhz']} | {row['median_mhz']} | {row['min_mhz']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
