"""`polychrony sweep`: working memory: F1 over a grid of settings x seeds."""

from __future__ import annotations

import json

from ..common import UserError, bounded

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``sweep`` to the subcommands ``sub``."""
    p = sub.add_parser("sweep", help="working memory: F1 over a grid of settings x seeds "
                                     "(resumable JSONL)")
    p.add_argument("--grid", help="built-in grid name (see --list) or a grid JSON file")
    p.add_argument("-o", "--out",
                   help="results file (JSON lines); points already there are skipped")
    p.add_argument("--jobs", type=bounded(int, 1), default=2, help="worker processes (default 2)")
    p.add_argument("--seeds", help="override the grid's seeds, e.g. 0-4 or 0,3,7-9")
    p.add_argument("--cache", help="directory to keep float weights across grids")
    p.add_argument("--plot", help="write a PNG of the scan (F1 against the grid's axis)")
    p.add_argument("--list", action="store_true", help="list the built-in grids")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from model.wm.grids import GRIDS, GridError
    from model.wm.sweep import format_summary, run_grid, summarise

    if args.list:
        for name, g in GRIDS.items():
            print(f"{name:20s} {g.get('description', '')}")
        return 0
    if not args.grid or not args.out:
        raise UserError("sweep needs --grid NAME|FILE.json and --out RESULTS.jsonl "
                        "(--list shows the built-in grids)")
    try:
        res = run_grid(args.grid, args.out, jobs=args.jobs, seeds=args.seeds,
                       cache_dir=args.cache, progress=not args.quiet)
    except GridError as e:
        raise UserError(str(e)) from None
    by = list(dict.fromkeys(k for prod in res["grid"]["axes"] for k in prod))
    rows = summarise(res["records"], by=by)
    if args.json:
        print(json.dumps({"grid": res["grid"]["name"], "out": str(args.out),
                          "points": res["points"], "done_before": res["done_before"],
                          "computed": res["computed"], "seconds": round(res["seconds"], 1),
                          "summary": rows}, indent=1))
    else:
        print(f"grid {res['grid']['name']}: {res['points']} points, {res['done_before']} "
              f"already in {args.out}, {res['computed']} computed in {res['seconds']:.1f} s")
        print(format_summary(rows, by))
    if args.plot:
        from model.wm.plots import plot_sweep
        plot_sweep(res["records"], args.plot, by=by)
        if not args.json:
            print(f"wrote {args.plot}")
    return 0
