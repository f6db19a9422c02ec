"""What each augmentation contributes: the audio network trained with one augmentation off at a
time, on the many-voice corpus, over several seeds (the ablation table of ``docs/audio.md``).

    python -m bench.audio_ablation --base DIR --corpus-seed S [--variants all warp ... dropout]
        [--seeds 0 1 2] [--arch dense] [--fold "unseen voices"] [--epochs 20]
        [--qat-epochs 3] [--window 136] [--hidden 256] [--kernel K] [--beta B]
        [--work out/ablation]
        [--synth-jobs 2] [--snr-db LO HI] [--base-without AUG ...] [--reuse all=RUNS.json]
        [--json bench/results/audio_ablation.json] [--plot PNG] [--table-only]

``--base`` is a ``polychrony data synth --corpus voices --waveform-aug --seed S`` directory
(``train.h5``, ``test.h5``; every augmentation on; ``S`` is ``--corpus-seed``; ``--snr-db``
repeats its ``--snr-db``, e.g. ``0 30`` for the corpora drawn before the noise moved to 10-30
dB; ``--base-without`` repeats its ``--without``, ``waveform`` standing for every waveform
augmentation: the variants are then measured against that recipe, and a corpus made by
today's recipe, without ``--waveform-aug``, is a base ``--base-without waveform``). The
variants:

* ``all``: every augmentation on (the base corpus, with ``--spike-aug``);
* a waveform augmentation (``source``, ``warp``, ``eq``, ``band``, ``reverb``, ``noise``,
  ``gain``; ``source``, the source swap, only for a base made with ``--source-swap P``, which
  ``--source-swap`` repeats here):
  ``WORK/without-X/train.h5`` is synthesised with the same seed and X off
  (``model.audio.augment.without``: every other draw is the same), beside a link to the base's
  ``test.h5`` (the test utterances are clean whatever the augmentations);
* ``waveform``: every waveform augmentation off at once (the corpus made that way, as above),
  the spike-level ones on: whether they help together what none measurably helps alone;
* the prosody asked of the engines (``speed``, ``pitch``: every training utterance at the
  voice's own rate or mean F0), a corpus of its own as above;
* a part of the noise (``babble``: white and pink noise only; ``low-snr``: no SNR below
  10 dB), a corpus of its own as above: which part of the noise costs what (a variant that
  changes nothing on the base's recipe, like ``low-snr`` at 10-30 dB, is refused);
* a spike-level one (``shift``, ``stretch``, ``dropout``): the base corpus, with that part of
  ``--spike-aug`` off.

Each variant's runs go through :mod:`bench.audio_train` into ``WORK/VARIANT.json`` (or the file
``--reuse VARIANT=FILE`` names, e.g. the runs already made with every augmentation on), which
skips runs already there with the same settings: a killed ablation resumes where it stopped.
A synthesis is written to a temporary name and renamed when complete. The table (integer and
float test accuracy per seed, their mean, and the mean's difference from ``all``) is printed
and written to ``--json``. The full ablation is long (a corpus of 6,000 utterances per
waveform variant, one training per variant and seed): run it in the background, it resumes.
``--plot PNG`` draws the table (``model.audio.plots.plot_ablation``); ``--table-only`` trains
nothing and needs only the table's JSON, not the base.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

__all__ = ["WAVEFORM", "EVERY_WAVEFORM", "NOISE_PARTS", "PROSODY", "SPIKES", "VARIANTS",
           "plan", "variant_ranges", "default_variants", "main"]

#: Waveform augmentations (``data synth --without``) and spike-level ones
#: (``--spike-aug-without``), by the names the variants use.
WAVEFORM = ("source", "warp", "eq", "band", "reverb", "noise", "gain")
SPIKES = ("shift", "stretch", "dropout")
#: The variant with every waveform augmentation off.
EVERY_WAVEFORM = "waveform"
#: Parts of the noise, each off alone (a corpus of its own, like a waveform variant).
NOISE_PARTS = ("babble", "low-snr")
#: The prosody the engines are asked for, each off alone (a corpus of its own).
PROSODY = ("speed", "pitch")
VARIANTS = ("all", *WAVEFORM, EVERY_WAVEFORM, *NOISE_PARTS, *PROSODY, *SPIKES)
_CORPUS = (*WAVEFORM, EVERY_WAVEFORM, *NOISE_PARTS, *PROSODY)   # with a corpus of their own


def plan(variant: str, base: Path, work: Path) -> tuple[Path, list[str]]:
    """(data directory, extra ``bench.audio_train`` arguments) of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: the variants are {', '.join(VARIANTS)}")
    if variant in _CORPUS:
        return work / f"without-{variant}", []
    return base, [] if variant == "all" else ["--spike-aug-without", variant]


def _check_base(base: Path) -> None:
    for name in ("train.h5", "test.h5"):
        if not (base / name).is_file():
            raise SystemExit(f"--base {base}: no {name} (make it with `polychrony data synth "
                             f"--corpus voices --waveform-aug --seed S -o {base}`, or without "
                             f"--waveform-aug and give --base-without waveform)")


def _off(names) -> tuple[str, ...]:
    """Augmentation names, ``waveform`` standing for every waveform one; each once."""
    out = []
    for n in names:
        for m in WAVEFORM if n == EVERY_WAVEFORM else (n,):
            if m not in out:
                out.append(m)
    return tuple(out)


def variant_ranges(variant: str, source_swap: float | None = None,
                   snr_db: tuple | None = None, base_without=()):
    """The augmentation ranges of a corpus variant (``model.audio.augment.Ranges``): every
    augmentation on (``recipe(waveform=True)``, with the base's ``source_swap`` and ``snr_db``
    when given, and what ``base_without`` names off, as the base was drawn), with that
    augmentation (``waveform``: every waveform one; ``all``: none) off too."""
    from model.audio import augment
    off = _off([*base_without, *(() if variant == "all" else (variant,))])
    return augment.recipe(waveform=True, source_p=source_swap, snr_db=snr_db, off=off)


def default_variants(source_swap: float | None = None, snr_db: tuple | None = None,
                     base_without=()) -> list[str]:
    """The variants measured when none are named: every one that changes something on the
    base (drawn with ``source_swap``, ``snr_db`` and ``base_without``), in table order."""
    recipe = variant_ranges("all", source_swap, snr_db, base_without)
    return [v for v in VARIANTS if v not in _CORPUS or (
        (v != "source" or source_swap is not None)
        and variant_ranges(v, source_swap, snr_db, base_without) != recipe)]


def synthesise(variant: str, data: Path, base: Path, *, seed: int, jobs: int,
               source_swap: float | None = None, snr_db: tuple | None = None,
               base_without=()) -> None:
    """Make the corpus of a waveform variant (nothing to do when it exists)."""
    from model.audio import corpus
    data.mkdir(parents=True, exist_ok=True)
    test = data / "test.h5"
    if test.is_symlink() and not test.exists():     # a link to a base that moved
        test.unlink()
    if not test.exists():
        test.symlink_to((base / "test.h5").resolve())
    ranges = variant_ranges(variant, source_swap, snr_db, base_without)
    if (data / "train.h5").is_file():
        _check_drawn(data / "train.h5", ranges)
        return
    part = data / "partial"
    paths = corpus.synthesize(part, seed=seed, ranges=ranges, jobs=jobs, splits=("train",))
    os.replace(paths["train"], data / "train.h5")
    part.rmdir()


def _check_drawn(path: Path, ranges) -> None:
    """Refuse a variant's corpus drawn from other ranges (e.g. for a base with another
    ``--base-without`` in the same ``--work``): its runs would measure something else."""
    import h5py

    from model.audio.augment import ranges_changes
    from model.audio.shd import RECIPE_ATTR
    with h5py.File(path, "r") as f:
        recipe = json.loads(f.attrs[RECIPE_ATTR]) if RECIPE_ATTR in f.attrs else {}
    drawn = recipe.get("ranges")
    changes = ["no recorded ranges"] if not isinstance(drawn, dict) else \
        ranges_changes(drawn, base=ranges)
    if changes:
        raise SystemExit(f"{path}: drawn from other ranges than this variant's ("
                         f"{'; '.join(changes)}): give another --work, or remove it")


def _train_argv(a, variant: str, data: Path, extra: list[str], runs: Path) -> list[str]:
    argv = ["--archs", a.arch, "--seeds", *map(str, a.seeds), "--epochs", str(a.epochs),
            "--qat-epochs", str(a.qat_epochs), "--hidden", str(a.hidden), "--threads", "1",
            "--data", str(data),
            "--fold", a.fold, "--spike-aug", *extra, "--out", str(Path(a.work) / "runs"),
            "--json", str(runs)]
    if a.window:
        argv += ["--window", str(a.window)]
    if a.kernel is not None:
        argv += ["--kernel", str(a.kernel)]
    if a.beta is not None:
        argv += ["--beta", str(a.beta)]
    return argv


def _kept(json_path: Path, out: dict) -> dict:
    """The variants an earlier run of the same settings left in the table's file, so that
    measuring one more variant keeps the rows measured before (whose runs may live in another
    work directory)."""
    if not json_path.is_file():
        return {}
    try:
        old = json.loads(json_path.read_text())
    except ValueError as e:
        raise SystemExit(f"{json_path}: not a table this bench wrote ({e}); give another --json")
    same = all(old.get(k) == v for k, v in out.items() if k != "variants")
    return dict(old.get("variants", {})) if same else {}


def _rows(runs_path: Path, a, data: Path, extra: list[str]) -> dict[int, dict]:
    """The runs of one variant in its file, by seed."""
    if not runs_path.is_file():
        return {}
    off = sorted(extra[1:]) if extra else None
    out = {}
    for r in json.loads(runs_path.read_text())["runs"]:
        s = r["settings"]
        if s["arch"] == a.arch and s.get("fold") == a.fold and s["seed"] in a.seeds \
                and s.get("data") == str(data) and s.get("spike_aug_off") == off \
                and s["epochs"] == a.epochs and s["qat_epochs"] == a.qat_epochs \
                and s["hidden"] == a.hidden:
            out[s["seed"]] = r
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="a `data synth --corpus voices` directory")
    ap.add_argument("--corpus-seed", type=int, required=True,
                    help="the --seed the base corpus was made with")
    ap.add_argument("--variants", nargs="+", default=None, choices=VARIANTS,
                    help="default: all of them (without 'source' unless --source-swap)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--arch", default="dense", choices=("dense", "conv"))
    ap.add_argument("--fold", default="unseen voices")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--window", type=int, default=136)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--kernel", type=int, default=None)
    ap.add_argument("--beta", type=int, default=None)
    ap.add_argument("--work", default="out/ablation",
                    help="variant corpora, IR files, checkpoints, per-variant runs")
    ap.add_argument("--synth-jobs", type=int, default=2)
    ap.add_argument("--source-swap", type=float, default=None, metavar="P",
                    help="the base corpus's --source-swap (then 'source' is a variant too)")
    ap.add_argument("--snr-db", nargs=2, type=float, default=None, metavar=("LO", "HI"),
                    help="the base corpus's --snr-db (the corpora before December 2026: 0 30)")
    ap.add_argument("--base-without", nargs="+", default=[], metavar="AUG",
                    choices=(*WAVEFORM, EVERY_WAVEFORM, *NOISE_PARTS, *PROSODY),
                    help="the base corpus's --without ('waveform': every waveform "
                         "augmentation): each variant is measured against that recipe")
    ap.add_argument("--reuse", nargs="+", default=[], metavar="VARIANT=FILE",
                    help="take a variant's runs from (and add them to) FILE")
    ap.add_argument("--json", default="bench/results/audio_ablation.json")
    ap.add_argument("--table-only", action="store_true",
                    help="train nothing: the table of the runs made so far")
    ap.add_argument("--plot", default=None, metavar="PNG", help="draw the table into PNG")
    a = ap.parse_args(argv)
    base, work = Path(a.base), Path(a.work)
    if not a.table_only:
        _check_base(base)
    if a.snr_db is not None and a.snr_db[0] > a.snr_db[1]:
        ap.error(f"--snr-db {a.snr_db[0]:g} {a.snr_db[1]:g}: the low end is above the high end")
    recipe = variant_ranges("all", a.source_swap, a.snr_db, a.base_without)
    if a.variants is None:
        a.variants = default_variants(a.source_swap, a.snr_db, a.base_without)
    if "source" in a.variants and a.source_swap is None:
        ap.error("variant 'source' needs the base's --source-swap")
    for v in a.variants:
        if v in _CORPUS and variant_ranges(v, a.source_swap, a.snr_db,
                                           a.base_without) == recipe:
            why = f"without {' '.join(a.base_without)}, " if a.base_without else ""
            ap.error(f"variant {v!r} changes nothing on a base drawn {why}with noise at "
                     f"{recipe.snr_db[0]:g}-{recipe.snr_db[1]:g} dB: leave it out (or give "
                     f"the base's --snr-db and --base-without)")
    reuse = {}
    for item in a.reuse:
        name, sep, file = item.partition("=")
        if not sep or name not in VARIANTS:
            ap.error(f"--reuse {item!r}: give VARIANT=FILE with a variant of "
                     f"{', '.join(VARIANTS)}")
        reuse[name] = Path(file)

    from bench import audio_train
    if not a.table_only:
        work.mkdir(parents=True, exist_ok=True)
    table = {}
    for v in a.variants:
        data, extra = plan(v, base, work)
        runs = reuse.get(v, work / f"{v}.json")
        if not a.table_only:
            if v in _CORPUS:
                print(f"{v}: corpus {data}", flush=True)
                synthesise(v, data, base, seed=a.corpus_seed, jobs=a.synth_jobs,
                           source_swap=a.source_swap, snr_db=a.snr_db,
                           base_without=a.base_without)
            print(f"{v}: training ({runs})", flush=True)
            audio_train.main(_train_argv(a, v, data, extra, runs))
        rows = _rows(runs, a, data, extra)
        if rows:
            ints = [rows[s]["int_acc"] for s in sorted(rows)]
            floats = [rows[s]["float_acc"] for s in sorted(rows)]
            table[v] = {"seeds": sorted(rows), "int_acc": ints, "float_acc": floats,
                        "int_mean": statistics.mean(ints), "float_mean": statistics.mean(floats),
                        "engine_mean": [rows[s]["scores"]["engine_mean"] for s in sorted(rows)
                                        if "scores" in rows[s]]}
    out = {"base": str(base), "corpus_seed": a.corpus_seed, "snr_db": list(recipe.snr_db),
           "arch": a.arch, "fold": a.fold, "hidden": a.hidden, "epochs": a.epochs,
           "qat_epochs": a.qat_epochs, "window": a.window, "variants": {}}
    if a.base_without:      # (absent otherwise, so that the tables written before still match)
        out["base_without"] = list(_off(a.base_without))
    out["variants"] = _kept(Path(a.json), out) | table
    ref = out["variants"].get("all", {}).get("int_mean")
    print(f"\n{a.arch}, {a.fold}, corpus seed {a.corpus_seed}: integer test accuracy with one "
          f"augmentation off")
    print("| off | seeds | integer % by seed | mean | vs all on |")
    print("|---|---|---|---|---|")
    for v, t in out["variants"].items():
        delta = "" if ref is None or v == "all" else f"{100 * (t['int_mean'] - ref):+.1f}"
        print(f"| {_label(v)} | {len(t['seeds'])} | "
              f"{' / '.join(f'{100 * x:.1f}' for x in t['int_acc'])} | "
              f"{100 * t['int_mean']:.1f} | {delta} |")
    if table:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1))
    if a.plot:
        if "all" not in out["variants"]:
            raise SystemExit(f"--plot: {a.json} has no all-on row to compare with: measure "
                             f"the variant 'all' first")
        from model.audio.plots import plot_ablation
        order = [v for v in VARIANTS if v in out["variants"]]
        arch = {"dense": "DelRec", "conv": "ConvDelRec"}.get(out["arch"], out["arch"])
        title = (f"{arch}, {out['fold']}, corpus seed {out['corpus_seed']}, noise "
                 f"{out['snr_db'][0]:g}-{out['snr_db'][1]:g} dB"
                 + (f", base without {' '.join(out['base_without'])}"
                    if out.get("base_without") else "") + ": one augmentation off")
        path = plot_ablation([(title, {_label(v): [100 * x for x in out["variants"][v][
            "int_acc"]] for v in order})], out=a.plot, reference=_label("all"))
        print(f"wrote {path}")
    return out


def _label(variant: str) -> str:
    """A variant as the table and the plot name it."""
    return {"all": "none (all on)", EVERY_WAVEFORM: "every waveform one",
            "babble": "babble (noise: white, pink)", "low-snr": "SNR below 10 dB",
            "speed": "speed (speaking rate)", "pitch": "pitch (mean F0)",
            "shift": "channel shift (spikes)", "stretch": "time stretch (spikes)",
            "dropout": "dropout (spikes)"}.get(variant, variant)


if __name__ == "__main__":
    main()
