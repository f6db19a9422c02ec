"""`polychrony check`: validate an IR file and print what it holds."""

from __future__ import annotations

import json

from ..common import load_net

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``check`` to the subcommands ``sub``."""
    p = sub.add_parser("check", help="validate an IR file (and the workload beside it) and "
                                     "print what they hold")
    p.add_argument("net")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    from model.ir import find_workload, workload_path
    net = load_net(args.net)
    wl = find_workload(args.net, net)
    rows = [("name", net.name), ("digest", net.digest), ("max_delay", net.max_delay)]
    for i, l in enumerate(net.layers):
        rows.append((f"layer {i}", f"{l.name}: n={l.n}" + (
            f" in_bits={l.in_bits}" if i == 0 else
            f" v_bits={l.v_bits} acc_bits={l.acc_bits} beta={l.beta}/2^{l.beta_shift} "
            f"threshold={l.threshold} reset={l.reset} forced={l.forced}")))
    for p in net.projections:
        rows.append((f"proj {p.src}->{p.dst}", f"{p.kind} w_bits={p.w_bits} "
                     f"weight{list(p.weight.shape)} delays {p.min_delay}..{p.max_delay}"))
    rows.append(("workload", f"{workload_path(args.net)}: {wl.describe()}" if wl else
                 f"none ({workload_path(args.net)} does not exist: commands that run the "
                 f"network use random stimulus)"))
    if args.json:
        print(json.dumps({k: str(v) for k, v in rows}, indent=1))
    else:
        print(f"{args.net}: valid polychrony IR")
        for k, v in rows:
            print(f"  {k:<12} {v}")
    return 0
