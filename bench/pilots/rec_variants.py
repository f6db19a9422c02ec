"""Pilot runs of recurrence variants for ConvDelRec (float only), used in docs/audio.md.

Not part of the tool: the variants live in ``rec_variants.patch`` (written against commit
73e8695, whose model/ is the same at 412c890, the commit that added this pilot; it no longer
applies from 29e192b on, where the conv recurrence became a banded matrix product), which adds
to the float model

* ``rec_gain``: a learned gain per postsynaptic neuron on the recurrent current,
* ``groups``: ``G`` conv kernels, one per block of ``H / G`` neurons (``G = H``: every neuron
  its own ``K`` weights, a locally connected recurrence),
* kernels wider than 63 taps computed as the equivalent banded matrix.

None of them has an integer or hardware path (the patch does not quantise them), so a run stops
after the float phase and reports the float test accuracy of the best validation epoch.

    git worktree add ../pilot 412c890 && cd ../pilot && git apply bench/pilots/rec_variants.patch
    python -m bench.pilots.rec_variants --seed 0 --groups 256 --json out.json   # locally connected
    python -m bench.pilots.rec_variants --seed 0 --rec-gain --json out.json
    python -m bench.pilots.rec_variants --seed 0 --arch dense --json out.json     # the references

Options left at their defaults run the tool's own model (kernels up to 63 taps take the tool's
code path; wider ones, and grouped kernels, run as the equivalent banded matrix).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import model.audio_train as at


@dataclasses.dataclass
class _NoNet:
    meta: dict


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="conv", choices=("conv", "dense"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kernel", type=int, default=31)
    ap.add_argument("--groups", type=int, default=1)
    ap.add_argument("--rec-gain", action="store_true")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json", required=True, help="append the run (with its history) here")
    a = ap.parse_args(argv)
    if "groups" not in {f.name for f in dataclasses.fields(at.AudioConfig)}:
        raise SystemExit("rec_variants: apply bench/pilots/rec_variants.patch first (see the "
                         "module docstring)")
    # float phase only: the variants have no integer export
    at.to_network = lambda *args, **kw: _NoNet({})
    at.integer_accuracy = lambda *args, **kw: -1.0
    cfg = at.AudioConfig(arch=a.arch, kernel=a.kernel, beta=192, epochs=a.epochs,
                         qat_epochs=0, seed=a.seed, rec_gain=a.rec_gain, groups=a.groups,
                         progress=True, threads=1)
    t0 = time.monotonic()
    r = at.train_audio(cfg)
    losses = [h["train_loss"] for h in r.history if "train_loss" in h]
    run = {"arch": a.arch, "seed": a.seed, "kernel": a.kernel, "groups": a.groups,
           "rec_gain": a.rec_gain, "epochs": a.epochs, "float_acc": r.float_acc,
           "val_acc": r.val_acc, "last_train_loss": losses[-1],
           "recurrent_params": r.params.get("recurrent"), "minutes": (time.monotonic() - t0) / 60,
           "history": r.history}
    if a.rec_gain:
        g = r.model.gain.detach()
        run["gain_min_median_max"] = [float(g.min()), float(g.median()), float(g.max())]
    print(json.dumps({k: v for k, v in run.items() if k != "history"}))
    try:
        with open(a.json) as f:
            doc = json.load(f)
    except FileNotFoundError:
        doc = {"runs": []}
    doc["runs"].append(run)
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
