"""`polychrony train shd`: train DelRec / ConvDelRec, quantise, write the IR and the float model
beside it (torchrun-ready), or reproduce a trained one's accuracies (``--evaluate``)."""

from __future__ import annotations

import argparse
import json
import os

from ..common import bounded

__all__ = ["ARCH_DEFAULTS", "add_parser", "cmd_train_shd", "shd_config"]


def add_parser(tsub) -> None:
    """Register ``shd`` under the ``train`` subcommands (imports nothing heavy)."""
    q = tsub.add_parser(
        "shd", help="audio: DelRec (dense) or ConvDelRec (conv) on binned spike counts",
        description="Train on SHD-layout data, fine-tune quantisation-aware, write the integer "
                    "IR (--out NET.npz) and the float model beside it (NET.float.npz: the "
                    "weights after the float epochs, before fine-tuning) and print float and "
                    "integer test accuracy. Under torchrun "
                    "(e.g. torchrun --nproc-per-node 2 -m polychrony_cli train shd ...) it "
                    "trains data-parallel on CPU (gloo). With --evaluate NET.float.npz it "
                    "trains nothing and reproduces both accuracies.")
    q.add_argument("--arch", choices=("dense", "conv"), default="dense")
    q.add_argument("--data", default=None,
                   help="'synthetic' (the embedded digits; the default), 'random' (a quick "
                        "smoke test), a directory with shd_train.h5/shd_test.h5, or a "
                        "*train*.h5 file with its *test* twin beside it; with --evaluate, "
                        "default: the data the checkpoint was trained on")
    q.add_argument("--hidden", type=bounded(int, 1, 65536), default=256,
                   help="neurons per LIF layer")
    q.add_argument("--layers", type=bounded(int, 1), default=2,
                   help="hidden LIF layers, all but the first recurrent (default 2: "
                        "DelRec's SHD network; the ConvDelRec authors' code uses 4)")
    q.add_argument("--kernel", type=bounded(int, 1), default=None,
                   help="conv taps K (odd; default 31, the results table's; the papers: 3-5)")
    q.add_argument("--dmax", type=bounded(int, 1, 4096), default=31,
                   help="hardware maximum delay (IR max_delay); recurrent delays 1..dmax")
    q.add_argument("--epochs", type=bounded(int, 1), default=40)
    q.add_argument("--beta", type=bounded(int, 0, 256), default=None,
                   help="leak of the hidden LIF layers, beta/256 (default: 12, DelRec's "
                        "tau = 1.05, for dense; 192 = 0.75, which keeps membrane memory, for "
                        "conv: each the better one measured, see docs/audio.md)")
    q.add_argument("--qat-epochs", type=bounded(int, 0), default=5,
                   help="quantisation-aware fine-tuning epochs after the float ones")
    q.add_argument("--batch", type=bounded(int, 1), default=64, help="global batch size")
    q.add_argument("--lr", type=bounded(float, 0.0, above=True), default=None,
                   help="peak learning rate of the weights (OneCycle; default 1e-2 for dense, "
                        "5e-3 for conv)")
    q.add_argument("--lr-rec", type=bounded(float, 0.0, above=True), default=None,
                   help="peak learning rate of the recurrent weights (dense matrix or conv "
                        "kernel) in the float epochs (default: the same as --lr)")
    q.add_argument("--augment", type=bounded(int, 1), default=1,
                   help="copies per epoch of DelRec's augmentation (1 = none, DelRec: 3)")
    q.add_argument("--spike-aug", action="store_true",
                   help="every float epoch, each training sample with its own channel shift, "
                        "time stretch and dropout (model.audio.shd.spike_augment)")
    q.add_argument("--spike-aug-without", nargs="+", default=[], metavar="PART",
                   choices=("shift", "stretch", "dropout"),
                   help="with --spike-aug: switch these parts of it off (for an ablation)")
    q.add_argument("--window", dest="steps", metavar="FRAMES", type=bounded(int, 1),
                   default=None,
                   help="frames of 10 ms per sample (default: the longest sample, or with "
                        "--evaluate the checkpoint's window; a shorter window cuts longer "
                        "samples, with a warning that counts them)")
    q.add_argument("--limit", type=bounded(int, 1), default=None,
                   help="use at most N training samples")
    q.add_argument("--fold", choices=("unseen", "espeak-ng", "festival", "flite"),
                   default=None,
                   help="with a many-voice corpus (data synth --corpus voices): unseen = test "
                        "on the held-out voices; an engine = train without it and test on it "
                        "(docs/audio-data.md); with --evaluate, default: the checkpoint's fold")
    q.add_argument("--seed", type=bounded(int, 0), default=0)
    q.add_argument("--tonotopic", type=bounded(float, 0.0), default=0.0, metavar="WIDTH",
                   help="start neighbouring hidden neurons on neighbouring frequencies: a "
                        "Gaussian envelope of this width (fraction of the layer, e.g. 0.05) "
                        "on the initial feed-forward weights; 0 = off")
    q.add_argument("--swa", type=bounded(int, 0), default=0, metavar="N",
                   help="also try the average of the weights of the last N float epochs "
                        "(stochastic weight averaging), kept if better on validation")
    q.add_argument("--teacher", metavar="NET.npz", default=None,
                   help="distil from a trained network's IR file (e.g. a DelRec): its integer "
                        "read-out on each training sample is a soft target")
    q.add_argument("--distill", type=bounded(float, 0.0, 1.0), default=0.5,
                   help="with --teacher: weight of the soft targets (the rest: the labels)")
    q.add_argument("--distill-temp", type=bounded(float, 0.0, above=True), default=2.0,
                   help="with --teacher: softmax temperature")
    q.add_argument("--w-bits", type=bounded(int, 2, 48), default=8)
    q.add_argument("--in-bits", type=bounded(int, 1, 16), default=None,
                   help="input count width (default: the fewest bits holding every count)")
    q.add_argument("--clip-inputs", action="store_true",
                   help="clip counts above 2**in_bits - 1 instead of stopping with an error")
    q.add_argument("--threads", type=bounded(int, 1), default=1, help="torch threads per process")
    q.add_argument("-o", "--out", default="shd.npz",
                   help="the IR file to write (default: shd.npz); its workload and the float "
                        "model go beside it (shd.workload.npz, shd.float.npz)")
    q.add_argument("--evaluate", metavar="NET.float.npz", default=None,
                   help="train nothing: load this float checkpoint, evaluate it on the test "
                        "split of --data/--fold/--window (default: those it was trained with) "
                        "and print its float test accuracy, and the integer test accuracy of "
                        "the IR beside it (NET.npz) when there is one, each with the figure the "
                        "training run recorded")
    q.add_argument("--checkpoint", default=None,
                   help="checkpoint file, written every epoch; an existing one is resumed")
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("--dump-state", default=None, help=argparse.SUPPRESS)  # tests: "{rank}"
    q.set_defaults(func=cmd_train_shd)


#: The command's per-architecture defaults of ``--kernel`` and ``--beta``: the better settings
#: measured on the embedded digits (docs/audio.md, with the figures). ConvDelRec with DelRec's
#: own leak and K = 5 underfits; DelRec is better with its own.
ARCH_DEFAULTS = {"dense": {"kernel": 5, "beta": 12}, "conv": {"kernel": 31, "beta": 192}}


def _fold(fold: str | None) -> str | None:
    """The corpus protocol's name of a ``--fold`` choice."""
    return None if fold is None else "unseen voices" if fold == "unseen" else f"without {fold}"


def shd_config(args):
    """The :class:`model.audio.train.AudioConfig` of parsed ``train shd`` arguments."""
    from model.audio.train import AudioConfig

    d = ARCH_DEFAULTS[args.arch]
    kernel = d["kernel"] if args.kernel is None else args.kernel
    beta = d["beta"] if args.beta is None else args.beta
    return AudioConfig(arch=args.arch, data="synthetic" if args.data is None else args.data,
                       hidden=args.hidden, kernel=kernel,
                       dmax=args.dmax, beta=beta, epochs=args.epochs,
                       qat_epochs=args.qat_epochs, batch=args.batch, lr=args.lr,
                       lr_rec=args.lr_rec, augment=args.augment, steps=args.steps,
                       spike_aug=args.spike_aug,
                       spike_aug_off=tuple(sorted(args.spike_aug_without)),
                       limit=args.limit, seed=args.seed, w_bits=args.w_bits,
                       fold=_fold(args.fold),
                       in_bits=args.in_bits, clip_inputs=args.clip_inputs,
                       threads=args.threads, checkpoint=args.checkpoint, teacher=args.teacher,
                       distill=args.distill, distill_temp=args.distill_temp,
                       tonotopic=args.tonotopic, swa=args.swa, layers=args.layers,
                       progress=not (args.quiet or args.json), dump_state=args.dump_state)


def cmd_train_shd(args) -> int:
    if args.evaluate:
        return _evaluate(args)
    from model.audio.floatckpt import float_path, save_float
    from model.audio.train import train_audio
    from model.ir import save, save_workload, workload_path

    res = train_audio(shd_config(args))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    save(res.net, args.out)
    wl = save_workload(res.workload, workload_path(args.out))
    fl = None
    if res.float_state is not None:
        fl = save_float(float_path(args.out), res.float_state, res.model.cfg, res.float_meta())
    summary = dict(res.summary(), ir=str(args.out), digest=res.net.digest, workload=str(wl),
                   float_model=None if fl is None else str(fl))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        p = res.params
        print(f"{args.arch}: float accuracy {res.float_acc:.4f}, integer {res.int_acc:.4f} "
              f"(test, {len(res.history)} epochs, {res.seconds:.0f} s, "
              f"{res.seconds_per_epoch:.1f} s/epoch)")
        print(f"parameters: recurrent {p['recurrent']}, total {p['total']}; wrote {args.out} "
              f"and its workload {wl} ({res.workload.samples} labelled test samples)")
        if fl is not None:
            print(f"float model: {fl} ({fl.stat().st_size / 1024:.1f} kB; "
                  f"polychrony train shd --evaluate {fl} reproduces both accuracies)")
        else:
            print("float model: none (the run resumed from a checkpoint written before the "
                  "float model was kept in it)")
    return 0


def _evaluate(args) -> int:
    """``--evaluate NET.float.npz``: the float and integer test accuracy, without training."""
    import torch

    from model.audio.floatckpt import evaluate_float

    torch.set_num_threads(args.threads)
    r = evaluate_float(args.evaluate, data=args.data, fold=_fold(args.fold), steps=args.steps,
                       in_bits=args.in_bits, clip_inputs=args.clip_inputs or None)
    rec_f, rec_i = r.meta.get("float_test_acc"), r.int_recorded
    if args.json:
        print(json.dumps({"float_model": str(args.evaluate), "samples": r.samples,
                          "float_acc": r.float_acc, "recorded_float_acc": rec_f,
                          "ir": None if r.ir is None else str(r.ir), "int_acc": r.int_acc,
                          "recorded_int_acc": rec_i, "ir_matches": r.ir_matches}, indent=1))
        return 0
    recorded = lambda v: "" if not isinstance(v, (int, float)) else f"; recorded {v:.4f}"
    print(f"float accuracy {r.float_acc:.4f} (test, {r.samples} samples{recorded(rec_f)}): "
          f"{args.evaluate}")
    if r.ir is None:
        print("integer accuracy: no IR beside the float model")
        return 0
    print(f"integer accuracy {r.int_acc:.4f} (test, {r.samples} samples{recorded(rec_i)}): "
          f"{r.ir}")
    if r.ir_matches is False:
        print(f"note: {r.ir} is not the IR this float model was written with (its digest "
              f"differs)")
    return 0


if __name__ == "__main__":  # python -m model.audio.cli ... == polychrony train shd ...
    import sys
    ap = argparse.ArgumentParser(prog="python -m model.audio.cli")
    add_parser(ap.add_subparsers(dest="what", required=True))
    a = ap.parse_args(["shd", *sys.argv[1:]])
    sys.exit(a.func(a))
