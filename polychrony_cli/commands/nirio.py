"""`polychrony export` and `polychrony import`: the IR to and from NIR graphs (HDF5)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..common import UserError, bounded, load_net, read_npy

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``export`` and ``import`` to the subcommands ``sub``."""
    p = sub.add_parser("export", help="write an IR file as a NIR graph (HDF5) that other SNN "
                                      "tools read; polychrony re-imports it exactly",
                       description="Write an IR file as a NIR graph. Neurons become LIF/IF/LI/I "
                                   "nodes (forward Euler with step --dt), projections Affine/"
                                   "Linear nodes after Delay nodes; what NIR cannot say goes "
                                   "into metadata['polychrony'] (docs/nir.md).")
    p.add_argument("net", help="the IR file (.npz)")
    p.add_argument("-o", "--out", dest="output", required=True,
                   help="the NIR file to write (.nir)")
    p.add_argument("--dt", type=bounded(float, 0.0, above=True), default=None,
                   help="Euler step in seconds (default 1e-4, snnTorch's)")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="quantise a NIR graph (HDF5) into an IR file",
                       description="Read a NIR graph (LIF/IF/LI/I neurons joined by Linear, "
                                   "Affine, Scale, Conv1d, Flatten and Delay nodes), quantise "
                                   "it into the IR and report every approximation. A graph "
                                   "written by 'polychrony export' comes back exactly.")
    p.add_argument("nir", help="the NIR file (.nir / .h5)")
    p.add_argument("-o", "--out", dest="output", required=True,
                   help="the IR file to write (.npz)")
    p.add_argument("--dt", type=bounded(float, 0.0, above=True), default=None,
                   help="Euler step in seconds (default: the graph's own, else 1e-4)")
    p.add_argument("--w-bits", type=bounded(int, 1, 48), default=None,
                   help="signed weight width (default 8)")
    p.add_argument("--v-bits", type=bounded(int, 2, 48), default=None,
                   help="membrane width (default: sized on --calibration, else the worst case)")
    p.add_argument("--in-bits", type=bounded(int, 1, 16), default=None,
                   help="input width: 1 = spikes (default), more for multi-bit inputs")
    p.add_argument("--leak-bits", type=bounded(int, 0, 15), default=None,
                   help="the leak's beta_shift: beta is rounded to n/2**leak_bits (default 12)")
    p.add_argument("--calibration", default=None,
                   help="a .npy of integer inputs, (steps, n0) or (samples, steps, n0): sizes "
                        "the membranes and is saved as the network's workload")
    p.add_argument("--name", default=None, help="network name (default: the file's stem)")
    p.add_argument("--requantise", action="store_true",
                   help="treat a polychrony export as a float graph (ignore its metadata)")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")
    p.set_defaults(func=cmd_import)


def _out(path: str, suffixes: tuple, flag: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: expected a {' or '.join(suffixes)} file name")
    if not out.parent.exists():
        raise UserError(f"{flag} {path}: the directory {out.parent} does not exist")
    return out


def cmd_export(args) -> int:
    from model.nir import DT, read_graph, summary, write_nir
    out = _out(args.output, (".nir", ".h5", ".hdf5"), "--out")
    dt = DT if args.dt is None else args.dt
    if not (np.isfinite(dt) and dt > 0):
        raise UserError(f"--dt must be a positive number of seconds, got {args.dt}")
    net = load_net(args.net)
    write_nir(net, out, dt=dt)
    info = {"net": args.net, "output": str(out), "dt": dt, "bytes": out.stat().st_size,
            **summary(read_graph(out))}
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        types = ", ".join(f"{v} {k}" for k, v in info["types"].items())
        print(f"{out}: NIR graph of {net.name!r}, {info['nodes']} nodes ({types}), "
              f"dt = {dt:g} s, {info['bytes']:,} bytes")
    return 0


def _calibration(path: str) -> np.ndarray:
    a = read_npy(path, "--calibration inputs")
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iub":
        raise UserError(f"--calibration {path}: must hold integers, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise UserError(f"--calibration {path}: must have shape (steps, n0) or (samples, "
                        f"steps, n0) with steps >= 1, got {a.shape}")
    return (a[None] if a.ndim == 2 else a).astype(np.int64)


def cmd_import(args) -> int:
    from model.ir import Workload, save, save_workload, workload_path
    from model.nir import read_nir
    out = _out(args.output, (".npz",), "--out")
    cal = _calibration(args.calibration) if args.calibration else None
    net, report = read_nir(args.nir, dt=args.dt, w_bits=args.w_bits, v_bits=args.v_bits,
                           in_bits=args.in_bits, leak_bits=args.leak_bits, calibration=cal,
                           name=args.name, requantise=args.requantise)
    save(net, out)
    wl = None
    if cal is not None:
        wl = save_workload(Workload(kind="stimulus", network=net.digest, x=cal),
                           workload_path(out))
    if args.json:
        print(json.dumps({"output": str(out), "workload": str(wl) if wl else None,
                          "digest": net.digest, **report.to_json()}, indent=1))
        return 0
    how = "exactly (a polychrony export)" if report.mode == "exact" else "quantised"
    print(f"{out}: {net.name!r} imported {how}: "
          + ", ".join(f"{l.name} n={l.n}" for l in net.layers) + f"; {len(net.projections)} "
          f"projections, max_delay {net.max_delay}")
    for info in report.layers:
        if "scale" not in info:
            continue
        th = info["threshold"]
        print(f"  layer {info['layer']} ({info['node']}, {info['kind']}): weight scale "
              f"{info['scale']:.6g}, rounding <= {info['weight_rounding_lsb']:.3g} LSB; leak "
              f"{info['leak']['float']:.6g} -> {info['leak']['integer']} (error "
              f"{info['leak']['error']:.2g}); "
              + (f"threshold {th['float']:.6g} -> {th['integer']}; " if th else "read-out; ")
              + f"v_bits {info.get('v_bits')}")
    for note in report.notes:
        print(f"  note: {note}")
    if wl:
        print(f"  workload: {wl} (the calibration inputs)")
    sys.stdout.flush()
    return 0
