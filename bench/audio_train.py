"""DelRec and ConvDelRec on the embedded spoken digits, several seeds: the results table.

    python -m bench.audio_train [--archs dense conv] [--seeds 0 1 2] [--epochs 30]
        [--qat-epochs 4] [--hidden 256] [--kernel 5] [--beta 12] [--lr LR] [--augment N]
        [--dropout P] [--batch B] [--rec-dropout P] [--jobs N] [--out out/audio]
        [--json bench/results/audio_train.json] [--plots docs/img]

Per (arch, seed): :func:`model.audio.train.train_audio` (checkpointed in ``--out``, so a
killed run resumes), the IR written to ``OUT/{arch}_s{seed}.npz``, and float and integer test
accuracy (the test voices are never heard in training), parameters, wall time and seconds per
epoch; ``--jobs 2`` trains two runs at once, each in its own process. Runs already in the JSON
file with the same settings are skipped (the committed ``bench/results/audio_train.json``
holds the table of ``docs/audio.md``; use another ``--json`` to train afresh). Also: the
logistic-regression baseline on binned counts (:func:`model.audio.shd.logistic_baseline`, 8 time
bins, the same unseen test voices), and with ``--plots`` the training curves of seed 0 and the
confusion matrices of the integer networks of seed 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import time
from pathlib import Path

__all__ = ["main"]


def _settings(a, arch: str, seed: int) -> dict:
    # The kernel only matters to the conv network.
    s = dict(arch=arch, seed=seed, epochs=a.epochs, qat_epochs=a.qat_epochs,
             hidden=a.hidden, kernel=a.kernel if arch == "conv" else None, beta=a.beta,
             threads=a.threads)
    # Recorded only when given, so rows written before these options existed still match.
    if a.lr is not None:
        s["lr"] = a.lr
    if a.lr_rec is not None:
        s["lr_rec"] = a.lr_rec
    if a.augment != 1:
        s["augment"] = a.augment
    if a.dropout is not None:
        s["dropout"] = a.dropout
    if a.batch != 64:
        s["batch"] = a.batch
    if a.rec_dropout:
        s["rec_dropout"] = a.rec_dropout
    if a.limit is not None:
        s["limit"] = a.limit
    if a.tonotopic:
        s["tonotopic"] = a.tonotopic
    if a.layers != 2:
        s["layers"] = a.layers
    if a.swa:
        s["swa"] = a.swa
    if a.teacher:
        s["teacher"] = {"digest": _digest(a.teacher), "distill": a.distill,
                        "temp": a.distill_temp}
    if a.spike_aug:
        s["spike_aug"] = True
    if a.spike_aug_without:
        s["spike_aug_off"] = sorted(a.spike_aug_without)
    if a.data != "synthetic":
        s["data"] = a.data
    if a.fold:
        s["fold"] = a.fold
    if a.w_bits != 8:
        s["w_bits"] = a.w_bits
    if a.window:
        s["window"] = a.window
    return s


@functools.lru_cache(maxsize=None)
def _digest(path: str) -> str:
    """The teacher's IR digest: rows name the network they learnt from, not a file path."""
    from model import ir
    return ir.digest(ir.load(path))


def _train_one(settings: dict, cfg, ir_path: str, data=None) -> dict:
    """Train one (arch, seed), write its IR, return its row of the results file."""
    from model import ir
    from model.audio.train import load_audio, train_audio

    t0 = time.monotonic()
    data = data or load_audio(cfg)
    r = train_audio(cfg, data)
    wall = time.monotonic() - t0
    ir.save(r.net, ir_path)
    row = dict(settings=settings, float_acc=r.float_acc, int_acc=r.int_acc,
               val_acc=r.val_acc, params=r.params, wall_s=round(wall, 1),
               seconds_per_epoch=round(r.seconds_per_epoch, 2), ir=ir_path,
               digest=ir.digest(r.net), history=r.history)
    if cfg.fold:
        row["scores"] = _engine_scores(r.net, data)
    return row


def _engine_scores(net, data) -> dict:
    """The integer network's accuracy on the fold's test samples, per engine and the mean
    over engines (:func:`model.audio.corpus.scores`)."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from model.audio.corpus import scores
    from model.int_forward import integer_forward
    pred = integer_forward(net, data.x_test.to(torch.int64), record=False).prediction
    test = SimpleNamespace(labels=data.y_test.numpy(), speakers=np.asarray(data.speakers_test))
    return scores(test, np.arange(len(test.labels)), pred.numpy())


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=["dense", "conv"], choices=["dense", "conv"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--qat-epochs", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--kernel", type=int, default=5)
    ap.add_argument("--beta", type=int, default=12, help="hidden leak numerator (of 256)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=None,
                    help="peak weight learning rate (default: AudioConfig's per-arch choice)")
    ap.add_argument("--lr-rec", type=float, default=None,
                    help="peak learning rate of the recurrent weights (default: --lr's)")
    ap.add_argument("--dropout", type=float, default=None,
                    help="dropout of the hidden layers (default: AudioConfig's, 0.4)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rec-dropout", type=float, default=0.0,
                    help="dropout on the delayed recurrent spikes")
    ap.add_argument("--augment", type=int, default=1,
                    help="DelRec's augmentation, this many copies per epoch")
    ap.add_argument("--limit", type=int, default=None,
                    help="train on the first N training samples only (quick checks)")
    ap.add_argument("--layers", type=int, default=2,
                    help="hidden LIF layers, all but the first recurrent")
    ap.add_argument("--tonotopic", type=float, default=0.0, metavar="WIDTH",
                    help="local init of the feed-forward weights (envelope width, fraction "
                         "of the layer; 0: off)")
    ap.add_argument("--swa", type=int, default=0, metavar="N",
                    help="also try the weight average of the last N float epochs")
    ap.add_argument("--teacher", default=None, metavar="NET.npz",
                    help="distil from this trained network's IR (see polychrony train shd)")
    ap.add_argument("--distill", type=float, default=0.5)
    ap.add_argument("--distill-temp", type=float, default=2.0)
    ap.add_argument("--data", default="synthetic",
                    help="the data (as train shd --data): e.g. a --corpus voices directory")
    ap.add_argument("--fold", default=None,
                    help="with a --corpus voices directory: 'unseen voices' or 'without "
                         "ENGINE' (model.audio.corpus.protocol); rows then score per engine")
    ap.add_argument("--w-bits", type=int, default=8)
    ap.add_argument("--spike-aug", action="store_true",
                    help="channel shift, time stretch and dropout, a fresh draw every epoch")
    ap.add_argument("--spike-aug-without", nargs="+", default=[], metavar="PART",
                    choices=("shift", "stretch", "dropout"),
                    help="with --spike-aug: switch these parts off (an ablation)")
    ap.add_argument("--window", type=int, default=None, help="frames per sample")
    ap.add_argument("--clip-inputs", action="store_true")
    ap.add_argument("--in-bits", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs trained at once, each in its own process (2 on a 2-core "
                         "machine, with --threads 1)")
    ap.add_argument("--out", default="out/audio", help="IR files and checkpoints")
    ap.add_argument("--json", default="bench/results/audio_train.json")
    ap.add_argument("--plots", default=None, help="directory for the PNG plots")
    ap.add_argument("--baseline", action="store_true",
                    help="also fit the logistic-regression baseline")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {a.jobs}")
    if a.spike_aug_without and not a.spike_aug:
        ap.error("--spike-aug-without needs --spike-aug")

    import torch

    from model import ir
    from model.audio import pack, shd
    from model.audio.train import AudioConfig, load_audio

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = Path(a.json)
    res = json.loads(path.read_text()) if path.exists() else {"runs": []}
    pending = []
    # one file per distinct setting that a checkpoint must not be resumed across
    tag = ("" if not a.fold else "_" + a.fold.replace(" ", "-")) + \
        ("_sa" if a.spike_aug else "") + \
        "".join(f"-no{k}" for k in sorted(a.spike_aug_without)) + \
        ("" if a.w_bits == 8 else f"_w{a.w_bits}") + \
        ("" if a.data == "synthetic" else "_" + Path(a.data).name)
    for arch in a.archs:
        for seed in a.seeds:
            s = _settings(a, arch, seed)
            if any(r["settings"] == s for r in res["runs"]):
                print(f"{arch} seed {seed}: already in {path}", flush=True)
                continue
            cfg = AudioConfig(arch=arch, seed=seed, epochs=a.epochs, qat_epochs=a.qat_epochs,
                              hidden=a.hidden, kernel=a.kernel, beta=a.beta, lr=a.lr,
                              lr_rec=a.lr_rec,
                              augment=a.augment, threads=a.threads, batch=a.batch,
                              rec_dropout=a.rec_dropout, limit=a.limit, teacher=a.teacher,
                              distill=a.distill, distill_temp=a.distill_temp,
                              tonotopic=a.tonotopic, swa=a.swa,
                              layers=a.layers, data=a.data, fold=a.fold, w_bits=a.w_bits,
                              steps=a.window, clip_inputs=a.clip_inputs, in_bits=a.in_bits,
                              spike_aug=a.spike_aug,
                              spike_aug_off=tuple(sorted(a.spike_aug_without)),
                              **({} if a.dropout is None else {"dropout": a.dropout}),
                              checkpoint=str(out / f"{arch}_s{seed}{tag}.ckpt.pt"))
            pending.append((s, cfg, str(out / f"{arch}_s{seed}{tag}.npz")))

    def record(row):
        res["runs"].append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=1))
        s = row["settings"]
        per = "" if "scores" not in row else " (by engine: " + ", ".join(
            f"{e} {v:.3f}" for e, v in row["scores"]["per_engine"].items()) + \
            f"; mean {row['scores']['engine_mean']:.3f})"
        print(f"{s['arch']} seed {s['seed']}{' ' + a.fold if a.fold else ''}: float "
              f"{row['float_acc']:.4f}, integer {row['int_acc']:.4f}{per}, "
              f"{row['wall_s'] / 60:.1f} min", flush=True)

    data = None
    if a.jobs == 1 or len(pending) <= 1:
        # The data are loaded once per seed: the validation split is drawn from the seed.
        loaded = {}
        for s, cfg, ir_path in pending:
            if cfg.seed not in loaded:
                loaded = {cfg.seed: load_audio(cfg)}
            record(_train_one(s, cfg, ir_path, loaded[cfg.seed]))
    else:
        # One process per run (each loads the data and uses --threads threads); rows are
        # recorded in the order the runs finish.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        print(f"{len(pending)} runs, {a.jobs} at a time (no per-epoch progress bars)",
              flush=True)
        jobs = [(s, dataclasses.replace(cfg, progress=False), ir_path)
                for s, cfg, ir_path in pending]
        with ProcessPoolExecutor(a.jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            for fut in as_completed([ex.submit(_train_one, *job) for job in jobs]):
                record(fut.result())
    if a.baseline and a.fold and a.fold not in res.get("baselines", {}):
        # the same fold's samples, binned the same way, 8 time bins
        from model.audio.corpus import protocol, scores
        from model.audio.train import data_paths
        tr_path, te_path = data_paths(a.data)
        tr, te = shd.load(tr_path), shd.load(te_path)
        tri, tei, _ = protocol(tr, te)[a.fold]
        b = shd.logistic_baseline(tr.subset(tri), te.subset(tei), time_bins=8,
                                  predictions=True)
        b["scores"] = scores(te, tei, b.pop("test_pred"))
        res.setdefault("baselines", {})[a.fold] = b
        path.write_text(json.dumps(res, indent=1))
    elif a.baseline and not a.fold and "baseline" not in res:
        tr_path, te_path = pack.default_data()
        res["baseline"] = shd.logistic_baseline(shd.load(tr_path), shd.load(te_path),
                                                time_bins=8)
        path.write_text(json.dumps(res, indent=1))

    # The table: mean ± std over seeds of the runs with these settings.
    print("| model | recurrent / total parameters | float test % | integer test % | "
          "seeds | wall min (median) |")
    print("|---|---|---|---|---|---|")
    for arch in a.archs:
        runs = [r for r in res["runs"] if r["settings"] == _settings(a, arch,
                                                                      r["settings"]["seed"])
                and r["settings"]["seed"] in a.seeds]
        if not runs:
            continue
        p = runs[0]["params"]
        name = "DelRec (dense" if arch == "dense" else f"ConvDelRec (K = {a.kernel}"
        name += "" if a.hidden == 256 else f", H = {a.hidden}"
        name += ")" if a.layers == 2 else f", {a.layers} layers)"
        print(f"| {name} | {p['recurrent']:,} / {p['total']:,} | "
              f"{_fmt([r['float_acc'] for r in runs])} | {_fmt([r['int_acc'] for r in runs])} | "
              f"{len(runs)} | {statistics.median(r['wall_s'] for r in runs) / 60:.1f} |")
    if "baseline" in res:
        b = res["baseline"]
        print(f"| logistic regression, {b['time_bins']} time bins × 140 channels | | "
              f"{100 * b['test_acc']:.1f} (train {100 * b['train_acc']:.1f}) | | | |")

    if a.plots:
        from model.audio.plots import plot_confusion, plot_training
        from model.int_forward import integer_forward
        seed0 = {r["settings"]["arch"]: r for r in res["runs"]
                 if r["settings"] == _settings(a, r["settings"]["arch"], a.seeds[0])}
        if seed0:
            names = {"dense": "DelRec", "conv": f"ConvDelRec K={a.kernel}"}
            plot_training({names[k]: r["history"] for k, r in seed0.items()},
                          out=Path(a.plots) / "audio_training.png",
                          title=f"H = {a.hidden}, seed {a.seeds[0]}, embedded spoken digits")
            tr_path, te_path = pack.default_data()
            keys = shd.load(te_path).keys
            for arch, r in seed0.items():
                if not Path(r["ir"]).is_file():
                    print(f"{r['ir']} is gone (recorded by an earlier run): no confusion plot "
                          f"for {arch}; delete its row from {path} to train it again")
                    continue
                net = ir.load(r["ir"])
                data = data or load_audio(AudioConfig(in_bits=net.input.in_bits,
                                                      progress=False))
                pred = integer_forward(net, data.x_test.to(torch.int64),
                                       record=False).prediction
                plot_confusion(data.y_test.numpy(), pred.numpy(), keys,
                               out=Path(a.plots) / f"audio_confusion_{arch}.png",
                               title=f"{names[arch]}, integer network, unseen voices")
    return res


if __name__ == "__main__":
    main()
