"""Synthesise a spoken-digit spike data set (English and German, 20 classes) in the SHD layout.

Pipeline: espeak-ng speaks a digit (accent x voice variant x speed x pitch x amplitude) ->
16 kHz -> silence trimmed -> onset jitter and background noise -> :func:`model.audio.cochlea.encode`
-> ``train.h5`` / ``test.h5`` written by :func:`model.audio.shd.write_shd`.

Labels 0-9 are the English "zero".."nine", 10-19 the German "null".."neun" (:data:`KEYS`, also
written to ``extra/keys``). A *speaker* is an espeak-ng voice variant (``+m1``, ``+f3``,
``+klatt2``, ...; :data:`VARIANTS`); it speaks English in every English accent and German.
The split is by speaker: the variants of ``test.h5`` are never heard in ``train.h5``.

Everything is a function of ``seed``: each utterance draws its settings and its noise from
``numpy.random.default_rng([seed, split, index])``, so the files do not depend on ``jobs``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.audio.cochlea import CochleaParams, encode

__all__ = ["ENGLISH", "GERMAN", "KEYS", "ACCENTS", "VARIANTS", "FEMALE", "MALE", "Utterance",
           "have_espeak", "speak", "speech", "mix", "plan", "render", "voice_split", "synthesize",
           "trim", "read_wav"]

ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
KEYS = ENGLISH + GERMAN

# espeak-ng 1.51 English accents; German has one ("de").
ACCENTS = ("en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029")

# Voice variants (espeak-ng-data/voices/!v). Left out: whisper, whisperf (no voicing), the
# robots (robosoft*, UniRobot, anikaRobot), announcer, Demonic, croak, fast, "Mr serious".
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "anika", "antonio",
    "aunty", "belinda", "benjamin", "boris", "caleb", "david", "Denis", "Diogo", "ed",
    "edward", "edward2", "Gene", "Gene2", "grandma", "grandpa", "gustave", "Henrique", "Hugo",
    "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "linda",
    "marcelo", "Marco", "Mario", "max", "Michael", "michel", "miguel", "Mike", "Nguyen",
    "norbert", "pablo", "paul", "pedro", "quincy", "RicishayMax", "RicishayMax2",
    "RicishayMax3", "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "Storm",
    "travis", "Tweaky", "victor", "zac",
)
FEMALE = frozenset(("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika",
                    "aunty", "belinda", "grandma", "linda", "shelby", "steph", "steph2",
                    "steph3"))
MALE = frozenset(("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"))

FS = 16000
SPEED = (110, 210)        # words per minute (espeak-ng -s)
PITCH = (20, 80)          # espeak-ng -p, 0..99
AMPLITUDE = (60, 160)     # espeak-ng -a, 100 = default
SNR_DB = (10.0, 30.0)     # white noise, re the RMS of the spoken part
ONSET = (0.0, 0.1)        # s of noise before the word (onset jitter)
WARP = (0.9, 1.1)         # per-speaker vocal-tract scale (frequencies and tempo x warp)
TAIL = 0.05               # s of noise after the word
TEST_FRACTION = 0.2       # of VARIANTS held out for test.h5


@dataclass(frozen=True)
class Utterance:
    """Everything that decides one sample (besides the seed of its noise)."""

    label: int
    speaker: int          # index into VARIANTS
    accent: str
    speed: int
    pitch: int
    amplitude: int
    snr_db: float
    onset: float
    warp: float           # vocal-tract scale of the speaker: frequencies x warp
    seed: tuple[int, ...]

    @property
    def voice(self) -> str:
        return f"{self.accent}+{VARIANTS[self.speaker]}"

    @property
    def word(self) -> str:
        return KEYS[self.label]


def have_espeak() -> bool:
    """Tell whether ``espeak-ng`` is on PATH."""
    return shutil.which("espeak-ng") is not None


def speak(word: str, voice: str, *, speed: int = 175, pitch: int = 50,
          amplitude: int = 100) -> np.ndarray:
    """Return ``word`` spoken by espeak-ng as float samples at 16 kHz (full scale 1.0)."""
    if not have_espeak():
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    cmd = ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch),
           "-a", str(amplitude), word]
    return read_wav(subprocess.run(cmd, capture_output=True, check=True).stdout, " ".join(cmd))


def read_wav(data: bytes, what: str) -> np.ndarray:
    """The samples of a mono 16-bit PCM WAV (``data``) at 16 kHz, resampled if needed;
    ``what`` names the source in errors. A size field of 0x7fffffff (a WAV written to a pipe)
    is read as "to the end"."""
    from scipy.signal import resample_poly
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError(f"{what}: not a WAV file")
    fmt = data.index(b"fmt ") + 8
    channels = int.from_bytes(data[fmt + 2:fmt + 4], "little")
    rate = int.from_bytes(data[fmt + 4:fmt + 8], "little")
    bits = int.from_bytes(data[fmt + 14:fmt + 16], "little")
    if channels != 1 or bits != 16:
        raise RuntimeError(f"{what}: {channels} channel(s) of {bits} bits; want 1 of 16")
    start = data.index(b"data") + 4
    size = int.from_bytes(data[start:start + 4], "little")
    start += 4
    end = len(data) if size >= 0x7fff0000 else min(len(data), start + size)
    x = np.frombuffer(data[start:start + (end - start) // 2 * 2], dtype="<i2") / 32768.0
    if rate != FS:
        g = int(np.gcd(rate, FS))
        x = resample_poly(x, FS // g, rate // g)
    return x


def trim(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading and trailing 10 ms frames more than ``floor_db`` below the loudest."""
    n = x.size // 160
    if n == 0:
        return x
    rms = np.sqrt((x[:n * 160].reshape(n, 160) ** 2).mean(axis=1))
    on = np.nonzero(rms > rms.max() * 10 ** (floor_db / 20))[0]
    return x[on[0] * 160:(on[-1] + 1) * 160]


def voice_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speaker indices (into :data:`VARIANTS`) of the train and test files."""
    order = np.random.default_rng([seed, 99]).permutation(len(VARIANTS))
    k = int(round(TEST_FRACTION * len(VARIANTS)))
    return np.sort(order[k:]), np.sort(order[:k])


def plan(split: str, per_class: int, seed: int = 0) -> list[Utterance]:
    """The utterances of ``split`` ("train" or "test"): ``per_class`` of each of 20 classes."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    sid = 0 if split == "train" else 1
    speakers = voice_split(seed)[sid]
    warp = np.round(np.random.default_rng([seed, 98]).uniform(*WARP, len(VARIANTS)), 2)
    out = []
    for i in range(20 * per_class):
        rng = np.random.default_rng([seed, sid, i])
        label = i % 20
        accent = "de" if label >= 10 else ACCENTS[rng.integers(len(ACCENTS))]
        speaker = int(speakers[rng.integers(len(speakers))])
        out.append(Utterance(
            label=label, speaker=speaker, accent=accent, warp=float(warp[speaker]),
            speed=int(rng.integers(SPEED[0], SPEED[1] + 1)),
            pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
            amplitude=int(rng.integers(AMPLITUDE[0], AMPLITUDE[1] + 1)),
            snr_db=float(np.round(rng.uniform(*SNR_DB), 2)),
            onset=float(np.round(rng.uniform(*ONSET), 3)), seed=(seed, sid, i, 1)))
    return out


def speech(u: Utterance) -> np.ndarray:
    """The spoken word of ``u``, silence trimmed, scaled by its speaker's ``warp`` (16 kHz).

    The warp plays the sound ``warp`` times faster, which multiplies every frequency
    (formants, pitch) by ``warp``: a longer or shorter vocal tract (about +-10 % between adult
    speakers).
    """
    from scipy.signal import resample_poly
    x = trim(speak(u.word, u.voice, speed=u.speed, pitch=u.pitch, amplitude=u.amplitude))
    down = int(round(100 * u.warp))
    return x if down == 100 else resample_poly(x, 100, down)


def mix(word: np.ndarray, u: Utterance, rng: np.random.Generator) -> np.ndarray:
    """Put ``word`` after ``u.onset`` s of silence, add a tail, and white noise at ``u.snr_db``."""
    rms = np.sqrt(np.mean(word ** 2)) if word.size else 1e-3
    x = np.concatenate([np.zeros(int(round(u.onset * FS))), word, np.zeros(int(TAIL * FS))])
    return x + rng.standard_normal(x.size) * rms * 10 ** (-u.snr_db / 20)


def render(u: Utterance, params: CochleaParams = CochleaParams()) -> tuple[np.ndarray, np.ndarray]:
    """Speak, add onset jitter and noise, and encode one utterance: ``(times, units)``."""
    rng = np.random.default_rng(u.seed)
    return encode(mix(speech(u), u, rng), rng, params)


def _render(u: Utterance):
    return render(u)


def synthesize(out_dir, *, seed: int = 0, n_train: int = 150, n_test: int = 40, jobs: int = 1,
               progress: bool = True) -> dict[str, Path]:
    """Write ``train.h5`` and ``test.h5`` (SHD layout) into ``out_dir``; return their paths.

    ``n_train`` and ``n_test`` are samples per class (20 classes); ``jobs`` worker processes.
    Each file's root attribute ``recipe`` records the seed, split and counts.
    """
    from ..progress import progress as progress_bar

    from model.audio.shd import write_shd
    if not have_espeak():
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng); "
                           "it is only needed to regenerate data, "
                           "model.audio.pack.default_data() has a pre-generated copy")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, n in (("train", n_train), ("test", n_test)):
        utts = plan(split, n, seed)
        bar = progress_bar(total=len(utts), desc=f"synth {split}", unit="word",
                           disable=not progress)
        spikes = []
        if jobs > 1:
            import multiprocessing as mp
            with mp.get_context("spawn").Pool(jobs) as pool:
                for r in pool.imap(_render, utts, chunksize=4):
                    spikes.append(r)
                    bar.update()
        else:
            for u in utts:
                spikes.append(_render(u))
                bar.update()
        bar.close()
        paths[split] = write_shd(
            out_dir / f"{split}.h5", [t for t, _ in spikes], [c for _, c in spikes],
            [u.label for u in utts], [u.speaker for u in utts], list(KEYS),
            meta=speaker_meta(), recipe={"generator": "espeak", "seed": seed, "split": split,
                                         "samples": len(utts), "per_class": n})
    return paths


def speaker_meta() -> dict[str, np.ndarray]:
    """``extra/meta_info`` arrays, indexed by speaker: gender where the variant's name says it
    (``+f1``.. and female names: female; ``+m1``..: male; else unknown), age and body height
    unknown (0)."""
    gender = np.array([b"female" if v in FEMALE else b"male" if v in MALE else b"unknown"
                       for v in VARIANTS])
    zeros = np.zeros(len(VARIANTS), dtype=np.uint8)
    return {"gender": gender, "age": zeros, "body_height": zeros}
