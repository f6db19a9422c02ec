"""The many-voice spoken-digit corpus: espeak-ng, Festival and Flite, augmented, in the SHD layout.

Every voice of :data:`model.audio.voices.VOICES` is either a *training* voice or a *held-out*
voice (:func:`voice_split`: a fifth of each engine's voices, at least one, never heard in
training). Two files:

- ``train.h5``: training voices only, each utterance with its own augmentation draw
  (:mod:`model.audio.augment`) and prosody (rate, pitch, amplitude);
- ``test.h5``: every voice, clean (the first data set's mild white noise, 10-30 dB SNR), with
  its prosody drawn the same way: ``reps`` utterances of every digit the voice speaks. Voices
  with an ``accent`` (Festival's voices of other languages reading the English words by
  their own rules) are training voices only: they are never held out and never tested.

The speaker of a sample is its index into ``VOICES``; ``extra/meta_info`` holds, per speaker,
``gender``, ``engine`` and ``held_out`` (1 for held-out voices). Two measurements follow
(:func:`protocol`):

- **unseen voices**: train on ``train.h5``, test on the held-out voices of ``test.h5``;
- **leave one engine out**: for each engine, train on the samples of ``train.h5`` spoken by
  the other engines and test on every voice of that engine in ``test.h5``; the other engines'
  voices made from the same person's recordings (Festival's and Flite's ``kal`` and ``slt``)
  are left out of that training too. Festival and Flite
  speak English only, so when espeak-ng is left out no engine is left to speak German: that
  fold is the 10 English digits, in training and in test.

English digits are spoken by an engine drawn uniformly among the engines (then a voice of it),
German ones by espeak-ng, so that espeak-ng's 83 variants do not drown the other engines'
eight voices. Everything is a function of ``seed`` (``default_rng([seed, split, index])`` per
utterance), so the files do not depend on ``jobs``. The cochlea's parameters
(:class:`model.audio.cochlea.CochleaParams`, e.g. its per-channel level normalisation) are
recorded in each file's root attribute ``cochlea`` (:func:`model.audio.shd.write_shd`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from model.audio.augment import OFF, Augment, Ranges, apply, draw, ranges_dict, recipe
from model.audio.cochlea import CochleaParams, encode
from model.audio.synth import ACCENTS, KEYS, ONSET, TAIL, trim
from model.audio.voices import ENGINES, FS, VOICES, Say, speak_all

__all__ = ["Item", "RATE", "PITCH", "AMPLITUDE", "TEST_FRACTION", "voice_split", "plan",
           "render_items", "synthesize", "speaker_meta", "protocol", "level", "LEVEL_DB",
           "BABBLE_WORDS", "babble_bank", "scores", "held_out"]

RATE = Ranges().rate      # speaking rate re the voice's own (the recipe's range)
PITCH = Ranges().pitch    # mean F0 re the voice's own
AMPLITUDE = (60, 160)     # espeak-ng -a; the others are scaled likewise
TEST_FRACTION = 0.2       # of each engine's voices held out
LEVEL_DB = -21.0          # RMS of every trimmed word before its amplitude and gain (dB re
                          # full scale; about espeak-ng's own level at -a 100): the engines'
                          # levels differ widely, and the cochlea's rates follow the level


@dataclass(frozen=True)
class Item:
    """One utterance: what is said, by whom, how, and what is done to it."""

    label: int
    speaker: int          # index into VOICES
    lang: str             # espeak-ng accent or "de"; "en" for Festival and Flite
    rate: float
    pitch: float
    amplitude: int
    onset: float          # s of silence (then noise) before the word
    aug: Augment
    seed: tuple[int, ...]

    @property
    def say(self) -> Say:
        return Say(KEYS[self.label], self.speaker, self.lang, self.rate, self.pitch,
                   self.amplitude)


def voice_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices into :data:`VOICES` of the training and the held-out voices. A fifth of each
    engine's persons (rounded, at least one) are held out, drawn first among the persons no
    other engine has (a person held out is held out in every engine, so a held-out voice is
    nobody heard in training: Flite's ``kal`` and ``kal16`` and Festival's ``kal_diphone``
    go together). Voices with an ``accent`` are never held out: they are training voices."""
    held: set[str] = set()
    for e, engine in enumerate(ENGINES):
        persons = sorted({v.person for v in VOICES if v.engine == engine and not v.accent})
        shared = {v.person for v in VOICES if v.engine != engine}
        rng = np.random.default_rng([seed, 97, e])
        order = sorted(persons, key=lambda p, r=dict(zip(persons, rng.permutation(
            len(persons)))): (p in shared, r[p]))
        held |= set(order[:max(1, int(round(TEST_FRACTION * len(persons))))])
    test = [i for i, v in enumerate(VOICES) if v.person in held]
    train = [i for i, v in enumerate(VOICES) if v.person not in held]
    return np.array(train), np.array(test)


def _item(rng, label: int, speaker: int, ranges: Ranges, seed) -> Item:
    v = VOICES[speaker]
    lang = ("de" if label >= 10 else ACCENTS[rng.integers(len(ACCENTS))]) \
        if v.engine == "espeak-ng" else "en"
    # a prosody range of None draws all the same (from 1..1): the other draws do not move
    return Item(label=label, speaker=speaker, lang=lang,
                rate=round(float(rng.uniform(*(ranges.rate or (1.0, 1.0)))), 3),
                pitch=round(float(rng.uniform(*(ranges.pitch or (1.0, 1.0)))), 3),
                amplitude=int(rng.integers(AMPLITUDE[0], AMPLITUDE[1] + 1)),
                onset=round(float(rng.uniform(*ONSET)), 3), aug=draw(rng, ranges), seed=seed)


def plan(split: str, seed: int = 0, *, per_class: int = 300, reps: int = 4,
         espeak_reps: int = 1, ranges: Ranges | None = None,
         test_voices=None) -> list[Item]:
    """The utterances of ``split``: ``"train"``, ``per_class`` of each of the 20 digits by the
    training voices, augmented from ``ranges`` (None: the recipe,
    :func:`model.audio.augment.recipe`); ``"test"``, every voice (or those of ``test_voices``,
    indices into ``VOICES``) saying every digit it speaks ``reps`` times (espeak-ng's many
    variants ``espeak_reps`` times), clean."""
    ranges = recipe() if ranges is None else ranges
    train_voices, _ = voice_split(seed)
    out = []
    if split == "train":
        by_engine = {e: [i for i in train_voices if VOICES[i].engine == e] for e in ENGINES}
        english = [e for e in ENGINES if by_engine[e]]
        for i in range(20 * per_class):
            rng = np.random.default_rng([seed, 0, i])
            label = i % 20
            engine = "espeak-ng" if label >= 10 else english[rng.integers(len(english))]
            voices = by_engine[engine]
            speaker = int(voices[rng.integers(len(voices))])
            out.append(_item(rng, label, speaker, ranges, (seed, 0, i, 1)))
    elif split == "test":
        i = 0
        for speaker, v in enumerate(VOICES):
            if v.accent or (test_voices is not None and speaker not in test_voices):
                continue
            labels = range(20) if "de" in v.languages else range(10)
            for _ in range(espeak_reps if v.engine == "espeak-ng" else reps):
                for label in labels:
                    rng = np.random.default_rng([seed, 1, i])
                    out.append(_item(rng, label, speaker, OFF, (seed, 1, i, 1)))
                    i += 1
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return out


def level(x: np.ndarray, db: float = LEVEL_DB) -> np.ndarray:
    """``x`` scaled to an RMS of ``db`` dB re full scale (silence stays silence)."""
    rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    return x if rms == 0 else x * (10 ** (db / 20) / rms)


#: What the babble says: words that are not digits, so that it never names a class.
BABBLE_WORDS = ("hello", "number", "table", "yesterday", "morning", "because", "water",
                "people", "little", "answer", "open", "window", "station", "follow", "yellow",
                "garden", "Morgen", "Wasser", "Fenster", "Garten", "danke", "bitte", "Abend",
                "Zeitung")


@cache
def babble_bank(seed: int = 0) -> tuple[np.ndarray, ...]:
    """The utterances babble is made of: :data:`BABBLE_WORDS` each said by a training voice
    (German words by espeak-ng), levelled; the same for a seed whatever the chunking."""
    train_voices, _ = voice_split(seed)
    rng = np.random.default_rng([seed, 96])
    says = []
    for w in BABBLE_WORDS:
        german = w[0].isupper()
        voices = [i for i in train_voices if not german or "de" in VOICES[i].languages]
        v = int(voices[rng.integers(len(voices))])
        lang = "en" if VOICES[v].engine != "espeak-ng" else "de" if german else "en-us"
        says.append(Say(w, v, lang, round(float(rng.uniform(*RATE)), 3)))
    return tuple(level(trim(x)) for x in speak_all(says))


def _waveforms(items: list[Item], words: list[np.ndarray]) -> list[np.ndarray]:
    """Each item's word (trimmed) with its level, onset, tail and augmentation (babble from
    :func:`babble_bank`)."""
    out = []
    for it, w in zip(items, words):
        rng = np.random.default_rng(it.seed)
        w = level(w) * (it.amplitude / 100)
        x = np.concatenate([np.zeros(int(round(it.onset * FS))), w, np.zeros(int(TAIL * FS))])
        babble = babble_bank(it.seed[0]) if it.aug.noise == "babble" else ()
        out.append(apply(x, it.aug, rng, babble=list(babble)))
    return out


def render_items(items: list[Item], cochlea: CochleaParams = CochleaParams()
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Speak, augment and encode ``items`` with the front end ``cochlea``: ``(times, units)``
    per item."""
    words = [trim(w) for w in speak_all([it.say for it in items])]
    spikes = []
    for it, x in zip(items, _waveforms(items, words)):
        spikes.append(encode(x, np.random.default_rng([*it.seed, 2]), cochlea))
    return spikes


def _render_chunk(task):
    items, cochlea = task
    return render_items(items, cochlea)


def synthesize(out_dir, *, seed: int = 0, per_class: int = 300, reps: int = 4,
               espeak_reps: int = 1, ranges: Ranges | None = None, test_voices=None,
               jobs: int = 1, progress: bool = True, chunk: int = 48,
               splits=("train", "test"),
               cochlea: CochleaParams = CochleaParams()) -> dict[str, Path]:
    """Write ``train.h5`` and ``test.h5`` (or the ``splits`` named) into ``out_dir`` (see the
    module's description); ``jobs`` worker processes, ``chunk`` utterances per worker task (one
    Festival process per voice per chunk); the files do not depend on either. The test file
    does not depend on ``ranges`` (its utterances are clean). ``cochlea`` encodes the sounds
    (e.g. with its per-channel level normalisation) and is recorded in each file's root
    attribute ``cochlea`` (:func:`model.audio.shd.write_shd`); the seed, the counts and (for
    the training file) ``ranges`` (None: the recipe) in its attribute ``recipe``."""
    ranges = recipe() if ranges is None else ranges
    bad = [x for x in splits if x not in ("train", "test")]
    if bad or not splits:
        raise ValueError(f"splits must name 'train' and/or 'test', got {list(splits)}")
    from model.audio.shd import write_shd
    from model.progress import progress as progress_bar
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in splits:
        items = plan(split, seed, per_class=per_class, reps=reps, espeak_reps=espeak_reps,
                     ranges=ranges, test_voices=test_voices)
        chunks = [items[k:k + chunk] for k in range(0, len(items), chunk)]
        bar = progress_bar(total=len(items), desc=f"synth {split}", unit="word",
                           disable=not progress)
        spikes = []
        if jobs > 1:
            import multiprocessing as mp
            with mp.get_context("spawn").Pool(jobs) as pool:
                for part in pool.imap(_render_chunk, [(c, cochlea) for c in chunks]):
                    spikes += part
                    bar.update(len(part))
        else:
            for c in chunks:
                spikes += render_items(c, cochlea)
                bar.update(len(c))
        bar.close()
        drawn = {"generator": "voices", "seed": seed, "split": split, "samples": len(items),
                 "per_class": per_class, "reps": reps, "espeak_reps": espeak_reps,
                 "test_voices": None if test_voices is None
                 else sorted(int(v) for v in test_voices)}
        if split == "train":
            drawn["ranges"] = ranges_dict(ranges)
        paths[split] = write_shd(
            out_dir / f"{split}.h5", [t for t, _ in spikes], [c for _, c in spikes],
            [it.label for it in items], [it.speaker for it in items], list(KEYS),
            meta=speaker_meta(seed), cochlea=cochlea, recipe=drawn)
    return paths


def speaker_meta(seed: int = 0) -> dict[str, np.ndarray]:
    """``extra/meta_info`` arrays, indexed by speaker (:data:`VOICES`): ``gender``,
    ``engine``, ``held_out`` (1: never in training), and SHD's ``age`` and ``body_height``
    (unknown: 0)."""
    held = set(voice_split(seed)[1].tolist())
    zeros = np.zeros(len(VOICES), dtype=np.uint8)
    return {"gender": np.array([v.gender.encode() for v in VOICES]),
            "engine": np.array([v.engine.encode() for v in VOICES]),
            "held_out": np.array([i in held for i in range(len(VOICES))], dtype=np.uint8),
            "age": zeros, "body_height": zeros}


def held_out(test, seed: int = 0) -> set[int]:
    """The held-out speakers of a corpus: as its test file records them
    (``extra/meta_info/held_out``), so that a corpus keeps its split when voices are added to
    the catalogue; :func:`voice_split` of ``seed`` for a set without a file."""
    path = getattr(test, "path", None)
    if path is not None:
        import h5py
        with h5py.File(path, "r") as f:
            if "extra/meta_info/held_out" in f:
                return {int(i) for i in np.flatnonzero(f["extra/meta_info/held_out"][()])}
    return set(voice_split(seed)[1].tolist())


def protocol(train, test, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """The measurements of a corpus: ``{name: (train index, test index, classes)}`` with
    indices into the :class:`model.audio.shd.SpikeSet` s ``train`` and ``test``:
    ``"unseen voices"`` and ``"without <engine>"`` for every engine (see the module's
    description); a fold's classes are 20, or 10 when no training engine speaks German."""
    held = held_out(test, seed)
    engine_of = np.array([v.engine for v in VOICES])
    person_of = np.array([v.person for v in VOICES])
    tr_spk, te_spk = np.asarray(train.speakers), np.asarray(test.speakers)
    # A voice with an accent is never tested (a corpus written before the rule may hold it).
    accented = np.array([bool(v.accent) for v in VOICES])
    te_held = np.array([s in held for s in te_spk], dtype=bool) & ~accented[te_spk]
    out = {"unseen voices": (np.arange(len(train)), np.flatnonzero(te_held), 20)}
    for engine in ENGINES:
        # nobody heard in the test: not the engine, and not its persons in another engine
        persons = {v.person for v in VOICES if v.engine == engine}
        rest = (engine_of[tr_spk] != engine) & ~np.isin(person_of[tr_spk], list(persons))
        german = any("de" in v.languages for v in VOICES if v.engine != engine)
        classes = 20 if german else 10
        keep_tr = rest & (np.asarray(train.labels) < classes)
        keep_te = (engine_of[te_spk] == engine) & (np.asarray(test.labels) < classes) \
            & ~accented[te_spk]
        out[f"without {engine}"] = (np.flatnonzero(keep_tr), np.flatnonzero(keep_te), classes)
    return out


def scores(test, index: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy of ``predicted`` (the classes of ``test``'s samples at ``index``): overall,
    per engine, and the mean over the engines present (each engine counts once, whatever its
    number of samples); and ``digit_accuracy``, the share whose digit is right in either
    language (English "three" answered as German "drei" counts: a diagnostic of how many
    errors are the language, not the digit; the accuracy is the measure)."""
    index, predicted = np.asarray(index), np.asarray(predicted)
    labels = np.asarray(test.labels)[index]
    right = predicted == labels
    digits = len(KEYS) // 2                  # KEYS: the English digits, then the German ones
    engines = np.array([VOICES[s].engine for s in np.asarray(test.speakers)[index]])
    per = {e: float(right[engines == e].mean()) for e in ENGINES if (engines == e).any()}
    return {"accuracy": float(right.mean()) if right.size else float("nan"),
            "per_engine": per, "engine_mean": float(np.mean(list(per.values()))),
            "digit_accuracy": float((predicted % digits == labels % digits).mean())
            if right.size else float("nan"),
            "samples": int(right.size)}
