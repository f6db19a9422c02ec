"""The ``polychrony data`` commands: ``synth`` (regenerate the digits), ``info``, ``baseline``,
``encode`` (WAV files to spikes or frames), ``frames``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..common import bounded

__all__ = ["add_parser", "cmd_synth", "cmd_info", "cmd_baseline", "cmd_encode", "cmd_frames"]


def add_parser(sub) -> None:
    """Add ``data synth`` and ``data info`` to the top-level subparsers ``sub``."""
    p = sub.add_parser("data", help="audio spike data: synthesise spoken digits, describe files")
    dsub = p.add_subparsers(dest="what", required=True)

    q = dsub.add_parser("synth", help="speak digits (espeak-ng; with --corpus voices also "
                                      "Festival and Flite), encode them with the cochlea, "
                                      "write train.h5/test.h5 (SHD layout)")
    q.add_argument("-o", "--out", default="out/synth-digits", help="output directory")
    q.add_argument("--corpus", choices=("espeak", "voices"), default="espeak",
                   help="espeak: espeak-ng's variants, the embedded set's recipe; voices: "
                        "every voice of espeak-ng, Festival and Flite, augmented, with a test "
                        "file of every voice (docs/audio-data.md)")
    q.add_argument("--seed", type=bounded(int, 0), default=0)
    q.add_argument("--train", type=bounded(int, 1), default=None,
                   help="training samples per class (20; default 150, with --corpus voices "
                        "300)")
    q.add_argument("--test", type=bounded(int, 1), default=None,
                   help="test samples per class (20; default 40); with --corpus voices: how "
                        "many times each Festival and Flite voice says each digit (default 4; "
                        "espeak-ng's variants once)")
    q.add_argument("--waveform-aug", action="store_true",
                   help="--corpus voices: draw the waveform augmentations too (vocal-tract "
                        "warping, equalisation, band limits, reverberation, white, pink and "
                        "babble noise, gain: the recipe before December 2026; the ablation "
                        "found they cost accuracy, docs/audio.md)")
    q.add_argument("--without", nargs="+", default=(), metavar="AUG",
                   choices=("source", "warp", "eq", "band", "reverb", "noise", "gain",
                            "babble", "low-snr", "speed", "pitch"),
                   help="--corpus voices: switch these augmentations off (for an ablation; "
                        "babble and low-snr: those parts of the noise; speed and pitch: "
                        "every training utterance at the voice's own)")
    q.add_argument("--snr-db", nargs=2, type=bounded(float, -20.0, 60.0), default=None,
                   metavar=("LO", "HI"),
                   help="--corpus voices: the range the noise's SNR is drawn from, in dB "
                        "(default 10 30; the corpora before December 2026 used 0 30)")
    q.add_argument("--source-swap", type=bounded(float, 0.0), default=None, metavar="P",
                   help="--corpus voices: re-synthesise this share (0-1) of the training "
                        "utterances with another excitation (pulse, glottal or whispered; "
                        "model.audio.augment.vocode; default: none)")
    _add_cochlea_arguments(q, "--corpus voices: encode with the cochlea's per-channel level "
                              "normalisation: remove this share (0-1) of each utterance's "
                              "long-term spectral envelope before the rate-level function "
                              "(default 0: off); recorded in each file's 'cochlea' attribute, "
                              "and by training in the network, whose 'classify' uses it")
    q.add_argument("--jobs", type=bounded(int, 1), default=1, help="worker processes")
    q.add_argument("--pack", metavar="FILE", help="also write the compact form (.npz) that "
                   "model.audio.pack.default_data() unpacks (model/audio/synth-digits-v1.npz)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_synth)

    q = dsub.add_parser("info", help="describe an SHD-layout file (or 'default' for the "
                                     "embedded set)")
    q.add_argument("path", nargs="+", help="HDF5 file(s); 'default' = the embedded train and "
                                           "test files")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_info)

    q = dsub.add_parser("baseline", help="logistic regression on binned spike counts, trained "
                                         "on TRAIN, scored on TEST (default: the embedded set)")
    q.add_argument("train", nargs="?", help="training file (default: embedded train.h5)")
    q.add_argument("test", nargs="?", help="test file (default: embedded test.h5)")
    q.add_argument("--time-bins", type=bounded(int, 1), action="append",
                   help="equal time slices per sample (repeatable; default 1 and 8)")
    q.add_argument("--l2", type=bounded(float, 0.0), default=1e-2, help="L2 penalty (default 0.01)")
    q.add_argument("--protocol", action="store_true",
                   help="TRAIN and TEST are a --corpus voices pair: score the unseen voices "
                        "and each engine left out (docs/audio-data.md)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_baseline)

    q = dsub.add_parser("encode", help="WAV files through the training data's front end "
                                       "(resample, trim, level, cochlea): spikes (.h5, SHD "
                                       "layout) or a network's input frames (.npy)")
    q.add_argument("wav", nargs="+", help="WAV files, one spoken digit each")
    q.add_argument("-o", "--out", required=True,
                   help="output: .h5 (spikes; every file needs a label) or .npy (frames "
                        "(files, steps, 140))")
    q.add_argument("--labels", metavar="CSV",
                   help="file,label rows (default: labels from the file names)")
    q.add_argument("--window", dest="steps", metavar="FRAMES", type=bounded(int, 1),
                   help=".npy: frames per file (default: the longest file); a longer file "
                        "has its end dropped, and says so")
    q.add_argument("--in-bits", type=bounded(int, 1, 16), default=None,
                   help=".npy: clip counts to 2**IN_BITS - 1 (the network's input width), "
                        "and say how many")
    q.add_argument("--snr-db", type=bounded(float, -20.0), default=20.0,
                   help="white noise added re the speech, as in the training data")
    q.add_argument("--seed", type=bounded(int, 0), default=0)
    _add_cochlea_arguments(q, "the cochlea's per-channel level normalisation, as 'data synth "
                              "--level-norm' (default 0: off). Frames for a network must use "
                              "the values it was trained with (its meta 'cochlea'; 'classify' "
                              "reads them itself); an .h5 records them in its 'cochlea' "
                              "attribute")
    q.set_defaults(func=cmd_encode)

    q = dsub.add_parser("frames", help="bin a file into the network's input frames (10 ms "
                                       "counts, 140 channels) and save them as .npy, e.g. "
                                       "for 'polychrony cosim --inputs'")
    q.add_argument("path", help="SHD-layout HDF5 file, or 'default-test' / 'default-train' "
                                "for the embedded set")
    q.add_argument("-o", "--out", required=True, help="output .npy (samples, steps, 140)")
    q.add_argument("--count", type=bounded(int, 1), help="the first N samples only")
    q.add_argument("--window", dest="steps", metavar="FRAMES", type=bounded(int, 1),
                   help="frames per sample (default: the longest sample); a longer sample is "
                        "an error unless --truncate")
    q.add_argument("--labels", metavar="Y.npy", help="also save the labels here")
    q.add_argument("--truncate", action="store_true",
                   help="with --window: cut longer samples (their late spikes are dropped) "
                        "instead of stopping")
    q.set_defaults(func=cmd_frames)


def _add_cochlea_arguments(q, level_help: str) -> None:
    """``--level-norm A`` and ``--norm-width W`` (:class:`model.audio.cochlea.CochleaParams`)."""
    q.add_argument("--level-norm", type=bounded(float, 0.0, 1.0), default=0.0, metavar="A",
                   help=level_help)
    q.add_argument("--norm-width", type=bounded(float, 0.0), default=0.0, metavar="W",
                   help="with --level-norm: smooth each channel's reference level across "
                        "channels by a Gaussian of W channels (default 0: none)")


def _cochlea(args):
    """The cochlea ``--level-norm`` and ``--norm-width`` ask for."""
    from model.audio.cochlea import CochleaParams
    if args.norm_width and not args.level_norm:
        raise ValueError(f"--norm-width {args.norm_width:g} smooths the level normalisation: "
                         f"it needs --level-norm above 0")
    return CochleaParams(level_norm=args.level_norm, norm_width=args.norm_width)


def cmd_synth(args) -> int:
    from model.audio.pack import save_pack
    from model.audio.shd import load, summary
    from model.audio.synth import have_espeak, synthesize
    if args.source_swap is not None and args.source_swap > 1:
        raise ValueError(f"--source-swap {args.source_swap}: a share of the utterances, at "
                         f"most 1")
    if args.snr_db is not None and args.snr_db[0] > args.snr_db[1]:
        raise ValueError(f"--snr-db {args.snr_db[0]:g} {args.snr_db[1]:g}: the low end is "
                         f"above the high end")
    cochlea = _cochlea(args)
    if args.level_norm and args.corpus != "voices":
        raise ValueError("--level-norm goes with --corpus voices (the espeak corpus is the "
                         "embedded set's recipe, with the default cochlea)")
    if args.level_norm and args.pack:
        raise ValueError("--pack writes the embedded set's compact form, which records no "
                         "cochlea: not with --level-norm")
    if args.corpus == "voices":
        from model.audio import augment, corpus
        from model.audio.voices import check_engines
        drawn = augment.recipe(waveform=args.waveform_aug, source_p=args.source_swap,
                               snr_db=args.snr_db)
        idle = [n for n in args.without if augment.without(drawn, n) == drawn]
        if idle:
            raise ValueError(f"--without {' '.join(idle)}: already off in the recipe"
                             + ("" if args.waveform_aug else
                                " (--waveform-aug turns the waveform augmentations on)"))
        try:
            check_engines()
        except RuntimeError as e:
            raise ValueError(f"{e}; they are needed only to regenerate data") from None
        ranges = augment.recipe(waveform=args.waveform_aug, source_p=args.source_swap,
                                snr_db=args.snr_db, off=args.without)
        paths = corpus.synthesize(args.out, seed=args.seed, per_class=args.train or 300,
                                  reps=args.test or 4, ranges=ranges, jobs=args.jobs,
                                  progress=not args.quiet, cochlea=cochlea)
        args.train, args.test = args.train or 300, args.test or 4
    else:
        if args.without or args.source_swap is not None or args.snr_db is not None \
                or args.waveform_aug:
            raise ValueError("--without, --waveform-aug, --snr-db and --source-swap go with "
                             "--corpus voices (the espeak corpus has no augmentation)")
        if not have_espeak():
            raise ValueError("espeak-ng is not installed (Debian: apt-get install espeak-ng); "
                             "it is needed only to regenerate data: "
                             "model.audio.pack.default_data() has a pre-generated copy")
        args.train, args.test = args.train or 150, args.test or 40
        paths = synthesize(args.out, seed=args.seed, n_train=args.train, n_test=args.test,
                           jobs=args.jobs, progress=not args.quiet)
    sets = {split: load(path) for split, path in paths.items()}
    for split, path in paths.items():
        s = summary(sets[split])
        print(f"wrote {path}: {s['samples']} samples, {s['speakers']} speakers, "
              f"{s['spikes_per_sample']['mean']:.0f} spikes per sample")
    if args.pack:
        from pathlib import Path
        note = (f"polychrony data synth --corpus {args.corpus} --seed {args.seed} "
                f"--train {args.train} --test {args.test}"
                + (" --waveform-aug" if args.waveform_aug else "")
                + (f" --without {' '.join(args.without)}" if args.without else "")
                + (f" --source-swap {args.source_swap}" if args.source_swap is not None
                   else ""))
        digest = save_pack(args.pack, sets, note=note)
        print(f"wrote {args.pack}: {Path(args.pack).stat().st_size} bytes, sha256 {digest}")
    return 0


def cmd_info(args) -> int:
    from model.audio.pack import default_data
    from model.audio.shd import load, summary
    paths = []
    for p in args.path:
        paths.extend(default_data() if p == "default" else [p])
    rows = [summary(load(p)) for p in paths]
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=1))
        return 0
    for s in rows:
        n, d = s["spikes_per_sample"], s["duration_s"]
        print(f"{s['path']}")
        print(f"  samples     {s['samples']} ({min(s['per_class'])}..{max(s['per_class'])} "
              f"per class)")
        print(f"  classes     {s['classes']}: {' '.join(s['keys'])}")
        print(f"  speakers    {s['speakers']}: {' '.join(map(str, s['speaker_ids']))}")
        if n:
            print(f"  spikes      {n['mean']:.0f} per sample (min {n['min']}, max {n['max']})")
            print(f"  duration    {d['mean']:.3f} s mean (last spike; {d['min']:.3f} .. "
                  f"{d['max']:.3f} s)")
        print(f"  binned      {s['steps']} steps of {s['dt'] * 1000:g} ms x {s['channels']} "
              f"channels; max count per bin {s['max_count']} (in_bits {s['in_bits']})")
        for line in _recipe_lines(s["recipe"]):
            print(f"  {line}")
    return 0


def _recipe_lines(recipe: dict | None) -> list[str]:
    """``data info``'s lines on how a file was drawn (its ``recipe`` attribute)."""
    from model.audio.augment import ranges_changes
    from model.audio.augment import recipe as augment_recipe
    if recipe is None:
        return ["drawn with  not recorded (no 'recipe' attribute)"]
    head = ", ".join(f"{k} {recipe[k]}" for k in ("generator", "seed", "split")
                     if k in recipe)
    lines = [f"drawn with  {head}"]
    ranges = recipe.get("ranges")
    if isinstance(ranges, dict):
        # named after the nearer of today's recipe and the one with every augmentation on
        today = ranges_changes(ranges)
        full = ranges_changes(ranges, base=augment_recipe(waveform=True))
        name, changes = ("today's recipe", today) if len(today) <= len(full) else \
            ("every augmentation on (--waveform-aug, the recipe before December 2026)", full)
        lines.append("augmented   " + (name if not changes else
                                       name + " except " + "; ".join(changes)))
    return lines


def cmd_baseline(args) -> int:
    from model.audio.pack import default_data
    from model.audio.shd import load, logistic_baseline
    if (args.train is None) != (args.test is None):
        raise ValueError("give both TRAIN and TEST, or neither (the embedded set)")
    train_path, test_path = (args.train, args.test) if args.train else default_data()
    train, test = load(train_path), load(test_path)
    if args.protocol:
        return _baseline_protocol(args, train, test)
    rows = [logistic_baseline(train, test, time_bins=k, l2=args.l2)
            for k in (args.time_bins or [1, 8])]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"logistic regression, train {train_path} ({len(train)}), test {test_path} "
          f"({len(test)}), chance {rows[0]['chance']:.3f}")
    for r in rows:
        print(f"  {r['time_bins']:>2} time bin(s) x 140 channels, l2 {r['l2']:g}: "
              f"train {r['train_acc']:.3f}, test {r['test_acc']:.3f}")
    return 0


def _baseline_protocol(args, train, test) -> int:
    """``data baseline --protocol``: one fit per fold and time binning."""
    import numpy as np

    from model.audio.corpus import protocol, scores
    from model.audio.shd import logistic_baseline
    from model.audio.voices import VOICES
    for s in (train, test):
        if len(s) and int(np.max(s.speakers)) >= len(VOICES):
            raise ValueError(f"{s.path}: speaker ids reach {int(np.max(s.speakers))}; a "
                             f"--corpus voices file has ids below {len(VOICES)} (polychrony "
                             f"data synth --corpus voices)")
    rows = []
    for name, (tr, te, classes) in protocol(train, test).items():
        if not len(tr) or not len(te):
            raise ValueError(f"{test.path}: fold '{name}' has {len(tr)} training and "
                             f"{len(te)} test samples; is this a --corpus voices pair?")
        for k in (args.time_bins or [1, 8]):
            r = logistic_baseline(train.subset(tr), test.subset(te), time_bins=k, l2=args.l2,
                                  predictions=True)
            sc = scores(test, te, r.pop("test_pred"))
            rows.append({"fold": name, "classes": classes, **r, **sc})
            if not args.json:
                per = ", ".join(f"{e} {a:.3f}" for e, a in sc["per_engine"].items())
                print(f"{name:<22} {k:>2} time bin(s): test {sc['accuracy']:.3f} "
                      f"(by engine: {per}; mean {sc['engine_mean']:.3f}; the digit right in "
                      f"either language {sc['digit_accuracy']:.3f}), {len(tr)} training "
                      f"samples, {classes} classes", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


def cmd_encode(args) -> int:
    """``data encode``: WAV files to spikes (.h5) or frames (.npy)."""
    import numpy as np

    from model.audio.shd import write_shd
    from model.audio.synth import KEYS
    from model.audio.wav import frames

    from .classify import encode_wavs, labels_for
    out = Path(args.out)
    if out.suffix not in (".h5", ".npy"):
        raise ValueError(f"{out}: the output is .h5 (spikes) or .npy (frames)")
    labels = labels_for(args.wav, list(KEYS), args.labels)
    if out.suffix == ".h5":
        if args.steps or args.in_bits:
            raise ValueError("--window and --in-bits shape .npy frames; an .h5 keeps the spikes")
        unknown = [str(p) for p, lb in zip(args.wav, labels) if lb is None]
        if unknown:
            raise ValueError(f"an SHD file needs a label per sample, and the name of "
                             f"{unknown[0]} names no digit: give --labels CSV, or write "
                             f"frames (.npy)")
    cochlea = _cochlea(args)
    spikes = encode_wavs(args.wav, snr_db=args.snr_db, seed=args.seed, quiet=False,
                         params=cochlea)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".h5":
        write_shd(out, [t for t, _ in spikes], [u for _, u in spikes], labels,
                  [0] * len(spikes), list(KEYS), cochlea=cochlea)
        print(f"wrote {out}: {len(spikes)} samples, "
              f"{np.mean([len(t) for t, _ in spikes]):.0f} spikes per sample")
        return 0
    longest = max(int(np.floor(t[-1] / 0.01)) + 1 if t.size else 0 for t, _ in spikes)
    x, cut, clipped = frames(spikes, steps=args.steps or max(1, longest),
                             in_bits=args.in_bits)
    np.save(out, x)
    print(f"wrote {out}: frames {tuple(x.shape)} (files, steps of 10 ms, channel groups)")
    if cut or clipped:
        print(f"note: {cut} file(s) longer than {x.shape[1]} frames (their end dropped); "
              f"{clipped} count(s) clipped to {2 ** (args.in_bits or 16) - 1}", file=sys.stderr)
    if any(lb is not None for lb in labels):
        path = out.with_name(out.stem + ".labels.npy")
        np.save(path, np.array([-1 if lb is None else lb for lb in labels], dtype=np.int64))
        print(f"wrote {path}: the labels (-1 where a name names no digit)")
    return 0


def cmd_frames(args) -> int:
    import numpy as np

    from model.audio.pack import default_data
    from model.audio.shd import bin_counts, load
    if args.path in ("default-test", "default-train"):
        path = default_data()[args.path == "default-test"]
    else:
        path = args.path
    spikes = load(path)
    if args.count is not None:
        if args.count < 1:
            raise ValueError(f"--count must be >= 1, got {args.count}")
        spikes = spikes.subset(np.arange(min(args.count, len(spikes))))
    from model.audio.shd import DataError
    try:
        b = bin_counts(spikes, steps=args.steps, truncate=args.truncate)
    except DataError as e:
        raise ValueError(str(e).replace("pass truncate=True", "pass --truncate")
                         .replace(f"steps={args.steps}", f"--window {args.steps}")) from None
    np.save(args.out, np.ascontiguousarray(b.x), allow_pickle=False)
    if args.labels:
        np.save(args.labels, np.asarray(spikes.labels, np.int64), allow_pickle=False)
    print(f"wrote {args.out}: {b.x.shape[0]} samples x {b.x.shape[1]} steps x {b.x.shape[2]} "
          f"channels, counts up to {b.max_count} (in_bits >= {b.in_bits})")
    return 0
