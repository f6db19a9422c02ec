"""`polychrony train`: train a network and write its integer IR."""

from __future__ import annotations

import json

from ..common import bounded


__all__ = ["add_parser"]


def add_parser(sub) -> None:
    """Add ``train`` to the subcommands ``sub``."""
    p = sub.add_parser("train", help="train a network and write its integer IR")
    tsub = p.add_subparsers(dest="what", required=True)
    q = tsub.add_parser("wm", help="working memory: store patterns, quantise, F1")
    q.add_argument("-o", "--out", "--output", dest="output", metavar="NET.npz",
                   default="wm.npz",
                   help="the IR file to write (its workload goes beside it)")
    q.add_argument("--preset", choices=("paper", "code"),
                   help="the paper's setting (N=512, D=41, M=16, T=1000, p=2e-3, beta 0.8) "
                        "or its notebook's (N=1024, p=1e-3, beta 0.7); flags override it")
    # Defaults: model.wm.run.DEFAULTS (the demo's); importing it here would load torch.
    for name, typ, default in (("n", bounded(int, 1, 65536), 32),
                               ("d", bounded(int, 1, 4096), 16), ("m", bounded(int, 1), 2),
                               ("t", bounded(int, 1), 48),
                               ("p", bounded(float, 0.0, 1.0, above=True), 0.035),
                               ("w-bits", bounded(int, 2, 48), 4), ("pre", bounded(int, 0), 10),
                               ("beta", bounded(int, 0, 256), 205)):
        q.add_argument(f"--{name}", type=typ, default=None,
                       help=f"(default {default}, or the preset's)")
    q.add_argument("--init", choices=("ls", "hebbian", "random"), default="ls",
                   help="least squares (default), the normalised Hebbian rule, or random")
    q.add_argument("--gain", type=bounded(float, 0.0, above=True), default=None,
                   help="initialisation gain (default 1.5 for ls, 2.5 for hebbian, 1 for "
                        "random)")
    q.add_argument("--refractory", type=bounded(int, 0), default=0,
                   help="targets' dead time in steps after a spike (the paper's text: 4)")
    q.add_argument("--train-steps", type=bounded(int, 0), default=0,
                   help="surrogate-gradient training steps after the initialisation")
    q.add_argument("--seed", type=bounded(int, 0), default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_train_wm)
    from .train_shd import add_parser as add_audio_parser
    add_audio_parser(tsub)  # train shd: DelRec / ConvDelRec


def cmd_train_wm(args) -> int:
    from model.ir import save, save_workload, workload_path
    from model.wm.run import DEFAULTS, PRESETS, run_wm
    settings = dict(DEFAULTS, beta=205)
    settings.pop("gain")
    if args.preset:
        settings.update(PRESETS[args.preset])
    for key in ("n", "d", "m", "t", "p", "w_bits", "beta", "pre"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    out = run_wm(**settings, gain=args.gain, seed=args.seed, init=args.init,
                 train_steps=args.train_steps, refractory=args.refractory,
                 progress=not args.json)
    save(out["net"], args.output)
    wl = save_workload(out["workload"], workload_path(args.output))
    summary = {"f1_float": out["f1_float"], "f1_int": out["f1_int"],
               "settings": out["settings"], "seconds": out["seconds"],
               "ir": str(args.output), "workload": str(wl)}
    print(json.dumps(summary, indent=1) if args.json else
          f"F1 float {out['f1_float']:.4f}, integer {out['f1_int']:.4f} "
          f"({out['seconds']:.1f} s); wrote {args.output} and its workload {wl}")
    return 0
