"""`polychrony run`: run samples on a board (or the simulated board) over the host link."""

from __future__ import annotations

import json
import sys

import numpy as np

from ..common import (Progress, UserError, add_core_arguments, bounded, check_supported,
                      load_forced, load_inputs, load_net, make_safe, parse_rows)

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``run`` to the subcommands ``sub``."""
    p = sub.add_parser("run", help="run samples on a board over its UART host link (or on "
                                   "the simulated board)")
    p.add_argument("net")
    p.add_argument("--port", metavar="DEV", help="the board's serial port, e.g. /dev/ttyUSB1 "
                                                 "(or a pyserial URL)")
    p.add_argument("--simulate", action="store_true",
                   help="run the board top's Verilog in Verilator behind a pseudo-terminal")
    p.add_argument("--inputs", metavar="X.npy",
                   help="input frames: integers of shape (samples, steps, n0) (default: the "
                        "workload saved beside the IR by training, which is then scored)")
    p.add_argument("--forced", metavar="F.npy",
                   help="forced rasters (the working-memory cue): 0/1 of shape "
                        "(samples, steps, n) (default: the workload beside the IR)")
    p.add_argument("--count", type=bounded(int, 1), help="the first N samples only")
    p.add_argument("--membranes", action="store_true",
                   help="read every membrane at every step too (slower; the full trace)")
    p.add_argument("--prediction-only", action="store_true",
                   help="read only the read-out's prediction (least UART traffic)")
    p.add_argument("--check", action="store_true",
                   help="compare each sample with the reference simulator")
    p.add_argument("--baud", type=bounded(int, 1), default=1_000_000)
    p.add_argument("--timeout", type=bounded(float, 0.0, above=True), default=2.0,
                   help="seconds to wait for an answer")
    p.add_argument("--lanes", type=bounded(int, 1), default=1,
                   help="with --simulate: neurons per cycle")
    p.add_argument("--work", default="build/simboard", help="with --simulate: build directory")
    add_core_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    """Run samples on a board (``--port``) or on the simulated board (``--simulate``)."""
    from boards.host import Board, LinkError
    from model.ir import find_workload
    from sim.reference import simulate

    net = load_net(args.net)
    wl = None if args.inputs or args.forced else find_workload(args.net, net)
    if wl is not None and args.count:
        wl = wl.head(args.count)
    if bool(args.port) == bool(args.simulate):
        raise UserError("give exactly one of --port DEV (a board) or --simulate (the "
                        "Verilator model of the board top)")
    if args.port and (args.core != "network" or args.rows):
        raise UserError("--core and --rows choose the simulated board's core (--simulate); "
                        "a real board runs the core its bitstream was built with")
    if args.simulate:
        check_supported(net, args.lanes, args.core)
    if net.input.n and not args.inputs and wl is None:
        raise UserError(f"network {net.name!r} has {net.input.n} input channels and no "
                        f"workload beside it: give --inputs X.npy (samples, steps, "
                        f"{net.input.n})")
    if net.forced_layers and not net.input.n and not args.forced and wl is None:
        raise UserError(f"network {net.name!r} is driven through its forced layer and has no "
                        f"workload beside it: give --forced F.npy (samples, steps, n)")
    if wl is not None and wl.metric == "F1" and args.prediction_only:
        raise UserError("the workload scores recall by the spikes: drop --prediction-only")
    if wl is not None:
        x, f = wl.x, wl.forced or None
    else:
        x = load_inputs(args.inputs, net, args.count) if args.inputs else None
        f = load_forced(args.forced, net, args.count) if args.forced else None
        if f is not None:
            f = {net.forced_layers[0]: f}
    first = x if x is not None else next(iter(f.values()))
    if x is not None and f is not None and any(a.shape[:2] != x.shape[:2] for a in f.values()):
        raise UserError(f"--inputs {x.shape[:2]} and --forced "
                        f"{next(iter(f.values())).shape[:2]} differ in samples or steps")
    samples = len(first)
    if args.prediction_only and (args.membranes or net.layers[-1].spiking):
        raise UserError("--prediction-only needs a network whose last layer is a read-out, "
                        "and no --membranes")
    sb = None
    try:
        if args.simulate:
            from boards.simboard import SimBoard, simulated_board
            with Progress(1, quiet=args.json).stage("build the simulated board (Verilator)"):
                exe, div = simulated_board(net, make_safe(args.work), lanes=args.lanes,
                                           core=args.core, rows=parse_rows(args))
            sb = SimBoard(exe, div).start()
            port = sb.port
        else:
            port = args.port
        from model.progress import progress
        rows, ok, traces, refs = [], True, [], []
        T = first.shape[1]
        bar = progress(total=samples * T, unit="step", disable=args.json, leave=False,
                   desc="run", file=sys.stderr)
        with Board(port, net=net, baud=args.baud, timeout=args.timeout) as board:
            for k in range(samples):
                xs = None if x is None else x[k]
                fs = None if f is None else {l: a[k] for l, a in f.items()}
                steps = T
                seen = [0]

                def advance(done, total):
                    bar.update(done - seen[0])
                    seen[0] = done

                got = board.run(xs, fs, steps=steps, membranes=args.membranes,
                                spikes=not args.prediction_only, progress=advance)
                traces.append(got)
                if wl is not None:
                    refs.append(simulate(net, xs, fs, steps=steps))
                t = board.last_timing
                row = dict(sample=k, steps=steps, prediction=got.prediction,
                           spikes={l: int(s.sum()) for l, s in got.spikes.items()},
                           seconds=round(t.seconds, 4), bytes_out=t.bytes_out,
                           bytes_in=t.bytes_in)
                if args.check:
                    ref = refs[-1] if wl is not None else simulate(net, xs, fs, steps=steps)
                    if args.membranes:
                        mm = ref.first_mismatch(got)
                    elif args.prediction_only:
                        mm = None if ref.prediction == got.prediction else \
                            f"prediction {got.prediction}, reference {ref.prediction}"
                    else:
                        bad = [l for l in ref.spikes if not np.array_equal(ref.spikes[l],
                                                                           got.spikes[l])]
                        mm = (f"spikes of layer {bad[0]} differ" if bad else
                              None if ref.prediction == got.prediction else
                              f"prediction {got.prediction}, reference {ref.prediction}")
                    row["reference_prediction"] = ref.prediction
                    row["match"] = mm is None
                    if mm is not None:
                        row["mismatch"] = str(mm)
                        ok = False
                rows.append(row)
                if not args.json:
                    pred = "" if got.prediction is None else f", prediction {got.prediction}"
                    what = " bit for bit" if args.membranes else \
                        " (prediction)" if args.prediction_only else \
                        " (spikes)" if net.layers[-1].spiking else " (spikes, prediction)"
                    chk = "" if not args.check else (
                        ", matches the reference" + what
                        if row["match"] else f", MISMATCH: {row['mismatch']}")
                    bar.write(f"sample {k}: {steps} steps, {sum(row['spikes'].values())} spikes"
                              f"{pred}, {t.seconds * 1e3:.0f} ms, {t.bytes_out} B out / "
                              f"{t.bytes_in} B in{chk}", file=sys.stdout)
        bar.close()
    except LinkError as e:
        raise UserError(str(e)) from None
    finally:
        if sb is not None:
            sb.stop()
    score = None
    if wl is not None and wl.metric:
        got, ref = wl.score(traces), wl.score(refs)
        score = {"workload": wl.kind, "metric": wl.metric, "board": got["value"],
                 "reference": ref["value"], "samples": samples}
        ok = ok and got["value"] == ref["value"]     # a board that scores otherwise is wrong
        if not args.json:
            same = "equal to" if got["value"] == ref["value"] else "DIFFERENT FROM"
            print(f"{wl.metric} {got['value']:.4f} over {samples} samples of the workload, "
                  f"{same} the reference's {ref['value']:.4f}")
    if args.json:
        print(json.dumps({"samples": rows, "score": score}, indent=1))
    return 0 if ok else 1
