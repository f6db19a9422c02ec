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


#: ``meta`` fields shown first, and how, when a training run wrote them.
_HEADLINE = (("kind", "{}"), ("float_test_acc", "float accuracy {:.2%}"),
             ("int_test_acc", "integer accuracy {:.2%}"), ("f1_float", "F1 float {:.4f}"),
             ("f1_int", "F1 integer {:.4f}"), ("epochs", "{} epochs"), ("seed", "seed {}"),
             ("source", "from {}"))


def _meta_lines(meta: dict) -> list[tuple[str, str]]:
    """What trained the network, then its other metadata, one line per field."""
    head = [fmt.format(meta[k]) for k, fmt in _HEADLINE
            if k in meta and meta[k] is not None and not isinstance(meta[k], (dict, list))]
    rows = [("trained", "; ".join(head))] if head else []
    for k, v in meta.items():
        if any(k == h for h, _ in _HEADLINE):
            continue
        text = json.dumps(v) if isinstance(v, (dict, list)) else str(v)
        rows.append((f"meta.{k}", text if len(text) <= 80 else text[:77] + "..."))
    return rows


def cmd_check(args) -> int:
    from model.ir import find_workload, workload_path
    from model.ir.canonical import header_of
    net = load_net(args.net)
    wl = find_workload(args.net, net)
    if args.json:
        header = header_of(net)
        print(json.dumps({
            "file": args.net, "valid": True, "name": net.name, "digest": net.digest,
            "max_delay": net.max_delay, "layers": header["layers"],
            "projections": [{**ph, "weight_shape": list(p.weight.shape),
                             "delays": [p.min_delay, p.max_delay]}
                            for ph, p in zip(header["projections"], net.projections)],
            "meta": net.meta,
            "workload": None if wl is None else {
                "file": str(workload_path(args.net)), "kind": wl.kind, "samples": wl.samples,
                "steps": wl.steps, "describe": wl.describe()}}, indent=1))
        return 0
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
    rows += _meta_lines(net.meta)
    print(f"{args.net}: valid polychrony IR")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    return 0
