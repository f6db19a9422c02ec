"""`polychrony classify`: spoken-digit WAV files in, the predicted digit of each out.

The files go through the training data's front end (:mod:`model.audio.wav`, with the cochlea
parameters the network records in its ``meta["cochlea"]``, if any), are binned over the
network's window and run on the integer reference (default), the simulated board
(``--simulate``) or a board (``--port``); with labels (from the file names or ``--labels``) the
accuracy is printed too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..common import (Progress, UserError, add_core_arguments, bounded, check_supported,
                      load_net, make_safe, parse_rows)

__all__ = ["add_parser", "encode_wavs", "labels_for"]


def add_parser(sub) -> None:
    """Add ``classify`` to the subcommands ``sub``."""
    p = sub.add_parser("classify", help="predict the spoken digit of WAV files with an audio "
                                        "network (reference, simulated board or board)")
    p.add_argument("wav", nargs="+", help="WAV files, one spoken digit each")
    p.add_argument("--net", required=True, help="the audio network (IR .npz); the files are "
                   "encoded by the cochlea it was trained behind (its meta 'cochlea', e.g. "
                   "the level normalisation of 'data synth --level-norm')")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--simulate", action="store_true",
                       help="run on the simulated board (the board top's Verilog in "
                            "Verilator) instead of the reference")
    where.add_argument("--port", metavar="DEV", help="run on the board at this serial port")
    p.add_argument("--labels", metavar="CSV",
                   help="file,label rows (default: labels from the file names where they "
                        "name a digit)")
    p.add_argument("--snr-db", type=bounded(float, -20.0), default=20.0,
                   help="white noise added re the speech, as in the training data")
    p.add_argument("--seed", type=bounded(int, 0), default=0, help="the noise's and the "
                   "cochlea's seed")
    p.add_argument("--lanes", type=bounded(int, 1), default=1,
                   help="with --simulate: neurons per cycle")
    p.add_argument("--work", default="build/classify", help="with --simulate: build directory")
    p.add_argument("--baud", type=bounded(int, 1), default=1_000_000)
    p.add_argument("--timeout", type=bounded(float, 0.0, above=True), default=2.0,
                   help="with --port: seconds to wait for an answer")
    add_core_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_classify)


def labels_for(paths, keys, csv_path=None) -> list[int | None]:
    """Each file's label: from ``csv_path`` when given (every file must be in it), else from
    its name (None where the name names no digit)."""
    from model.audio.wav import label_of, read_labels
    if csv_path is None:
        return [label_of(p, keys) for p in paths]
    table = read_labels(csv_path, keys)
    missing = [str(p) for p in paths if Path(p).name not in table]
    if missing:
        raise UserError(f"{csv_path}: no label for {', '.join(missing[:3])}"
                        + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    return [table[Path(p).name] for p in paths]


def encode_wavs(paths, *, snr_db, seed, quiet: bool, params=None):
    """The spikes of every file, with a progress bar, through the cochlea ``params``
    (default: the default cochlea)."""
    from model.audio.cochlea import CochleaParams
    from model.audio.wav import encode_file
    from model.progress import progress
    params = CochleaParams() if params is None else params
    out = []
    for p in progress(paths, desc="encode", unit="file", disable=quiet or len(paths) < 4):
        out.append(encode_file(p, snr_db=snr_db, seed=seed, params=params))
    return out


def _network_window(net) -> int:
    steps = (getattr(net, "meta", None) or {}).get("steps")
    if not isinstance(steps, int) or steps < 1:
        raise UserError(f"network {net.name!r} does not say its window (meta 'steps'): is it "
                        f"an audio network from 'polychrony train shd'?")
    return steps


def cmd_classify(args) -> int:
    from model.audio.synth import KEYS
    from model.audio.wav import cochlea_for, frames
    from sim.reference import simulate
    net = load_net(args.net)
    if net.input.n != 140:
        raise UserError(f"network {net.name!r} takes {net.input.n} input channels; an audio "
                        f"network takes 140 (the cochlea's 700 channels in groups of 5)")
    keys = list(KEYS)
    if net.layers[-1].n != len(keys):
        raise UserError(f"network {net.name!r} has {net.layers[-1].n} outputs; the spoken "
                        f"digits have {len(keys)} classes")
    steps = _network_window(net)
    params = cochlea_for(net)            # the front end the network was trained behind
    labels = labels_for(args.wav, keys, args.labels)
    spikes = encode_wavs(args.wav, snr_db=args.snr_db, seed=args.seed, quiet=args.json,
                         params=params)
    x, cut, clipped = frames(spikes, steps=steps, in_bits=net.input.in_bits)
    if (cut or clipped) and not args.json:
        print(f"note: {cut} file(s) longer than the network's {steps} frames (their end "
              f"dropped, as in training); {clipped} count(s) above {2 ** net.input.in_bits - 1}"
              f" clipped", file=sys.stderr)
    if args.simulate or args.port:
        preds = _on_board(args, net, x)
    else:
        preds = [simulate(net, xs, steps=steps).prediction for xs in x]
    rows = []
    for path, label, pred in zip(args.wav, labels, preds):
        rows.append({"file": str(path), "prediction": int(pred), "digit": keys[int(pred)],
                     "label": label, "correct": None if label is None else label == pred})
        if not args.json:
            right = "" if label is None else \
                ("  right" if label == pred else f"  wrong (label {keys[label]})")
            print(f"{path}: {keys[int(pred)]} ({int(pred)}){right}")
    known = [r for r in rows if r["label"] is not None]
    acc = None if not known else float(np.mean([r["correct"] for r in known]))
    where = "board" if args.port else "simulated board" if args.simulate else "reference"
    if args.json:
        print(json.dumps({"files": rows, "accuracy": acc, "labelled": len(known),
                          "on": where}, indent=1))
    elif acc is not None:
        print(f"accuracy {acc:.3f} on {len(known)} labelled file(s) ({where})")
    return 0


def _on_board(args, net, x) -> list[int]:
    """Predictions of the simulated board or a board, one sample at a time."""
    from boards.host import Board, LinkError
    if not net.layers[-1].n or net.layers[-1].spiking:
        raise UserError("the board reports a prediction only for a network whose last layer "
                        "is a read-out")
    sb = None
    try:
        if args.simulate:
            from boards.simboard import SimBoard, simulated_board
            check_supported(net, args.lanes, args.core)
            with Progress(1, quiet=args.json).stage("build the simulated board (Verilator)"):
                exe, div = simulated_board(net, make_safe(Path(args.work)), lanes=args.lanes,
                                           core=args.core, rows=parse_rows(args))
            sb = SimBoard(exe, div).start()
            port = sb.port
        else:
            port = args.port
        preds = []
        with Board(port, net=net, baud=args.baud, timeout=args.timeout) as board:
            for xs in x:
                got = board.run(xs, None, steps=len(xs), membranes=False, spikes=False)
                preds.append(int(got.prediction))
        return preds
    except LinkError as e:
        raise UserError(str(e)) from None
    finally:
        if sb is not None:
            sb.stop()
