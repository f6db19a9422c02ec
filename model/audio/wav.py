"""From a WAV file to the spikes and input frames the audio networks take.

The path is the training data's, step for step: the sound is read (PCM 8/16/24/32-bit or
float, any rate, channels averaged), resampled to 16 kHz, trimmed of leading and trailing
silence (10 ms frames 40 dB below the loudest), brought to the corpus' speech level
(:data:`model.audio.corpus.LEVEL_DB`), given :data:`ONSET` s of silence before and the corpus'
tail after, with white noise at :data:`SNR_DB` (the middle of the training range), and encoded
by the cochlea with a fixed seed and the parameters the network was trained on
(:func:`cochlea_for`: its ``meta["cochlea"]``, e.g. the per-channel level normalisation).
:func:`frames` bins the spikes as the networks were trained (10 ms, 140 channel groups) over
the network's window.

A label can come from a file's name: its first word (split at anything that is not a letter
or digit) that is a class name (``seven``, ``sieben``) or a single digit (``7``, read as the
English class); or from a CSV of ``file,label`` rows (a label is a class name or its number).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from model.audio.cochlea import CochleaParams
from model.audio.shd import DataError

__all__ = ["ONSET", "SNR_DB", "read_audio", "prepare", "encode_file", "cochlea_for", "frames",
           "label_of", "read_labels"]

ONSET = 0.05              # s of silence before the word
SNR_DB = 20.0             # white noise re the speech (the training data had 10-30 dB)
MAX_SECONDS = 60.0        # a longer file is refused (one spoken digit is about a second)


def read_audio(path) -> np.ndarray:
    """The samples of the WAV file ``path`` as float mono at 16 kHz (full scale 1.0)."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        raise DataError(f"{path}: not a WAV file (it starts with {head[:4]!r}); give a "
                        f"RIFF/WAVE file")
    try:
        rate, x = wavfile.read(path, mmap=False)
    except (ValueError, EOFError) as e:
        raise DataError(f"{path}: unreadable WAV: {e}") from None
    if x.size == 0:
        raise DataError(f"{path}: the WAV file holds no samples")
    if x.shape[0] > MAX_SECONDS * rate:
        raise DataError(f"{path}: {x.shape[0] / rate:.1f} s of sound, more than "
                        f"{MAX_SECONDS:g} s; cut it into words first")
    if x.dtype == np.uint8:
        x = (x.astype(np.float64) - 128) / 128
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(-np.iinfo(x.dtype).min)
    else:
        x = x.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: the samples hold NaN or infinity")
    if rate != 16000:
        g = int(np.gcd(int(rate), 16000))
        x = resample_poly(x, 16000 // g, int(rate) // g)
    return x


def prepare(x: np.ndarray, *, snr_db: float | None = SNR_DB, seed: int = 0) -> np.ndarray:
    """``x`` (16 kHz) trimmed, levelled, padded and with noise, as the training words were."""
    from model.audio.corpus import level
    from model.audio.synth import TAIL, trim
    if not np.any(x):
        raise DataError("the sound is silent")
    w = trim(x)
    x = np.concatenate([np.zeros(int(ONSET * 16000)), level(w), np.zeros(int(TAIL * 16000))])
    if snr_db is None:
        return x
    rms = np.sqrt(np.mean(level(w) ** 2))
    n = np.random.default_rng([seed, 5]).standard_normal(x.size)
    return x + n / np.sqrt(np.mean(n ** 2)) * rms * 10 ** (-snr_db / 20)


def encode_file(path, *, snr_db: float | None = SNR_DB, seed: int = 0,
                params: CochleaParams = CochleaParams()):
    """``(times, units)``: the spikes of the WAV file ``path``, encoded by the cochlea
    ``params`` (for a network: :func:`cochlea_for` it)."""
    from model.audio.cochlea import encode
    try:
        x = prepare(read_audio(path), snr_db=snr_db, seed=seed)
    except DataError as e:
        raise DataError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") from None
    return encode(x, np.random.default_rng([seed, 6]), params)


def cochlea_for(net) -> CochleaParams:
    """The cochlea whose spikes the audio network ``net`` (an IR) was trained on: its
    ``meta["cochlea"]`` (written by :func:`model.audio.train.cochlea_meta`), the defaults when
    it has none. A malformed entry raises ``ValueError`` naming the network and the field."""
    d = (getattr(net, "meta", None) or {}).get("cochlea")
    if d is None:
        return CochleaParams()
    try:
        return CochleaParams.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ValueError(f"network {getattr(net, 'name', '?')!r}: meta 'cochlea': {e}") \
            from None


def frames(spikes: list, *, steps: int, in_bits: int | None = None):
    """Bin ``[(times, units), ...]`` into ``(samples, steps, 140)`` int64 frames (10 ms,
    groups of 5 channels). Returns ``(x, cut, clipped)``: how many samples were longer than
    ``steps`` (their late spikes dropped, as the window does in training) and how many counts
    were above ``2**in_bits - 1`` (clipped to it)."""
    from model.audio.shd import SpikeSet, bin_counts
    s = SpikeSet([t for t, _ in spikes], [u for _, u in spikes], np.zeros(len(spikes), int),
                 np.zeros(len(spikes), int), ["?"])
    b = bin_counts(s, steps=steps, truncate=True)
    cut = int(sum(1 for t in s.times if t.size and int(np.floor(t[-1] / 0.01)) >= steps))
    x = b.x.astype(np.int64)
    clipped = 0
    if in_bits is not None:
        top = (1 << in_bits) - 1
        clipped = int(np.count_nonzero(x > top))
        x = np.minimum(x, top)
    return x, cut, clipped


def _label(text: str, keys) -> int | None:
    t = text.strip()
    low = [k.lower() for k in keys]
    if t.lower() in low:
        return low.index(t.lower())
    if t.isdigit() and int(t) < len(keys):
        return int(t)
    return None


def label_of(path, keys) -> int | None:
    """The label a file's name gives (see the module's description), or None."""
    low = [k.lower() for k in keys]
    for word in re.split(r"[^0-9A-Za-zÀ-ÿ]+", Path(path).stem):
        if word.lower() in low:
            return low.index(word.lower())
        if len(word) == 1 and word.isdigit():
            return int(word)
    return None


def read_labels(path, keys) -> dict[str, int]:
    """``{file name: label}`` from a CSV of ``file,label`` rows (with an optional header row
    ``file,label``)."""
    out: dict[str, int] = {}
    try:
        rows = list(csv.reader(Path(path).read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the labels: {e}") from None
    for i, row in enumerate(rows):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise DataError(f"{path}: row {i + 1}: want 'file,label', got {row!r}")
        if i == 0 and row[1].strip().lower() == "label":
            continue                # the header
        label = _label(row[1], keys)
        if label is None:
            raise DataError(f"{path}: row {i + 1}: label {row[1]!r} is not one of "
                            f"{', '.join(keys)} or 0..{len(keys) - 1}")
        out[Path(row[0].strip()).name] = label
    return out
