"""Waveform augmentation aimed at what differs between voices, engines and rooms.

Each :class:`Augment` is one utterance's draw (a pure value: the same draw and the same noise
seed give the same samples): a vocal-tract scale (every frequency times ``warp``, by
resampling), a random equaliser (a smooth gain curve over log frequency plus a tilt) and band
limits, a synthetic room (exponentially decaying noise as its impulse response), additive
noise (white, pink or babble made of other utterances) at ``snr_db``, and a gain; and, when a
:class:`Ranges` asks for it, a **source swap** first (:func:`vocode`: the utterance's vocal
tract, frame by frame, driven by another excitation: a pulse train, a glottal pulse or
whispered noise), against what a synthesiser's waveform generator leaves in a voice. Speed and
pitch are asked of the engine itself (:class:`model.audio.voices.Say`; their ranges,
``Ranges.rate`` and ``Ranges.pitch``, are drawn by :mod:`model.audio.corpus`). :func:`draw`
makes a draw from a :class:`Ranges`; a range of ``None`` turns that augmentation off, which is
how the ablation switches them one at a time.

:class:`Ranges` holds every augmentation this module can draw; the corpus's **recipe**
(:func:`recipe`) switches the waveform ones (:data:`RECIPE_OFF`) off, keeping the prosody,
the first data set's mild white noise and, in training, the spike-level augmentations: the
ablation (docs/audio.md) found that the waveform augmentations together cost accuracy on
unseen voices and on engines left out, though none measurably alone. ``recipe(waveform=True)``
draws them all, the recipe of the corpora made before that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

__all__ = ["AUGMENTATIONS", "Augment", "Ranges", "NOISES", "SOURCES", "OFF", "RECIPE_OFF",
           "apply", "draw", "pink", "ranges_changes", "ranges_dict", "recipe", "vocode",
           "without"]

FS = 16000

NOISES = ("white", "pink", "babble")

#: Excitations of the source swap (:func:`vocode`) for voiced frames (unvoiced ones take noise).
SOURCES = ("pulse", "glottal", "whisper")


@dataclass(frozen=True)
class Augment:
    """One draw. ``eq`` is ``((centre Hz, gain dB, width octaves), ...)``; ``tilt_db`` dB
    per octave about 1 kHz; ``lowpass`` / ``highpass`` in Hz (None: none); ``rt60`` in s (0:
    dry) with ``wet`` the reverberant share of the energy; ``noise`` one of :data:`NOISES` or
    None; ``gain_db`` on the whole."""

    warp: float = 1.0
    eq: tuple = ()
    tilt_db: float = 0.0
    lowpass: float | None = None
    highpass: float | None = None
    rt60: float = 0.0
    wet: float = 0.0
    noise: str | None = "white"
    snr_db: float = 30.0
    gain_db: float = 0.0
    source: str | None = None        # one of SOURCES: the source swap (None: none)
    f0_scale: float = 1.0            # the swapped source's pitch, times the voice's
    source_seed: int = 0             # its noise


@dataclass(frozen=True)
class Ranges:
    """Where :func:`draw` draws from (uniformly; ``None``: that augmentation is off). The
    defaults turn on every augmentation but the source swap; :func:`recipe` gives the ranges a
    corpus is drawn from."""

    warp: tuple | None = (0.85, 1.15)
    eq_bands: tuple | None = (0, 4)          # how many bumps
    eq_db: tuple | None = (-9.0, 9.0)
    tilt_db: tuple | None = (-3.0, 3.0)
    lowpass: tuple | None = (3400.0, 7800.0)  # applied to half the draws
    highpass: tuple | None = (60.0, 400.0)    # applied to half the draws
    rt60: tuple | None = (0.1, 0.7)           # applied to half the draws
    wet: tuple = (0.1, 0.6)
    noises: tuple | None = NOISES
    snr_db: tuple | None = (10.0, 30.0)       # was 0-30 dB: the ablation found the low
                                              # SNRs cost accuracy (docs/audio.md)
    gain_db: tuple | None = (-6.0, 6.0)
    source_p: float | None = None             # share of the draws with a source swap
    sources: tuple = SOURCES
    f0_scale: tuple = (0.7, 1.4)
    rate: tuple | None = (0.75, 1.35)         # speaking rate re the voice's own (None: its own)
    pitch: tuple | None = (0.8, 1.25)         # mean F0 re the voice's own (None: its own)


#: Fields that files drawn before they were recorded do not hold, with the value they then had
#: (a fixed range, not an option): :func:`ranges_changes` reads such a file with these.
_BEFORE_RECORDED = {"rate": [0.75, 1.35], "pitch": [0.8, 1.25]}

#: Every augmentation off but the mild white noise the first data set had.
OFF = Ranges(warp=None, eq_bands=None, eq_db=None, tilt_db=None, lowpass=None, highpass=None,
             rt60=None, noises=("white",), snr_db=(10.0, 30.0), gain_db=None)


def draw(rng: np.random.Generator, r: Ranges = Ranges()) -> Augment:
    """One :class:`Augment` from ``r``. The same random numbers are drawn whichever
    augmentations are off (each is drawn, then dropped), so switching one off leaves the
    others' draws unchanged: what an ablation needs."""
    u = rng.random(24)          # every number this draw may use, in a fixed order
    v = rng.random(4)           # (the source swap's, drawn after: the first 24 keep their
                                # values from before it existed)

    def at(k, span):
        return float(span[0] + u[k] * (span[1] - span[0]))

    eq = ()
    if r.eq_bands is not None and r.eq_db is not None:
        n_eq = int(r.eq_bands[0] + u[0] * (r.eq_bands[1] - r.eq_bands[0] + 1 - 1e-9))
        eq = tuple((round(float(np.exp(at(1 + 3 * b, (np.log(150), np.log(6000))))), 1),
                    round(at(2 + 3 * b, r.eq_db), 2), round(at(3 + 3 * b, (0.3, 1.5)), 2))
                   for b in range(n_eq))
    return Augment(
        warp=1.0 if r.warp is None else round(at(13, r.warp), 3),
        eq=eq,
        tilt_db=0.0 if r.tilt_db is None else round(at(14, r.tilt_db), 2),
        lowpass=None if r.lowpass is None or u[15] >= 0.5 else round(at(16, r.lowpass)),
        highpass=None if r.highpass is None or u[17] >= 0.5 else round(at(18, r.highpass)),
        rt60=0.0 if r.rt60 is None or u[19] >= 0.5 else round(at(20, r.rt60), 3),
        wet=round(at(21, r.wet), 3),
        noise=None if not r.noises else r.noises[min(int(u[22] * len(r.noises)),
                                                     len(r.noises) - 1)],
        snr_db=30.0 if r.snr_db is None else round(at(23, r.snr_db), 2),
        gain_db=0.0 if r.gain_db is None else round(at(12, r.gain_db), 2),
        source=None if r.source_p is None or v[0] >= r.source_p else
        r.sources[min(int(v[1] * len(r.sources)), len(r.sources) - 1)],
        f0_scale=round(float(r.f0_scale[0] + v[2] * (r.f0_scale[1] - r.f0_scale[0])), 3),
        source_seed=int(v[3] * 2 ** 31))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of pink noise (power falling 3 dB per octave), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.sqrt(np.mean(x ** 2)) or 1.0)


def _equalise(x: np.ndarray, a: Augment) -> np.ndarray:
    if not (a.eq or a.tilt_db or a.lowpass or a.highpass) or x.size == 0:
        return x
    n = x.size
    f = np.fft.rfftfreq(n, 1 / FS)
    octave = np.log2(np.maximum(f, 20.0) / 1000.0)
    db = a.tilt_db * octave
    for centre, gain, width in a.eq:
        db = db + gain * np.exp(-0.5 * ((octave - np.log2(centre / 1000)) / (width / 2)) ** 2)
    g = 10 ** (db / 20)
    if a.lowpass:       # 8th-order Butterworth-like magnitude
        g = g / np.sqrt(1 + (f / a.lowpass) ** 16)
    if a.highpass:
        g = g / np.sqrt(1 + (a.highpass / np.maximum(f, 1e-3)) ** 8)
    return np.fft.irfft(np.fft.rfft(x) * g, n)


def _reverb(x: np.ndarray, a: Augment, rng: np.random.Generator) -> np.ndarray:
    if a.rt60 <= 0 or x.size == 0:
        return x
    from scipy.signal import fftconvolve
    t = np.arange(int(a.rt60 * FS)) / FS
    tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / a.rt60)
    tail[:int(0.002 * FS)] = 0.0                       # the first reflections come later
    tail *= np.sqrt(a.wet / max(1e-12, (1 - a.wet) * np.sum(tail ** 2)))
    y = fftconvolve(x, tail)[:x.size + t.size]
    y[:x.size] += x
    return y


def vocode(x: np.ndarray, source: str, rng: np.random.Generator, *, f0_scale: float = 1.0,
           order: int = 18, frame: int = 400, hop: int = 160) -> np.ndarray:
    """``x`` (16 kHz) re-synthesised with another excitation: linear prediction of ``order``
    on pre-emphasised frames of ``frame`` samples every ``hop`` (the vocal tract's all-pole
    filter and gain), each frame's filter driven by ``source`` where the frame is voiced (an
    impulse train at the frame's pitch times ``f0_scale``: ``pulse``; a Rosenberg glottal
    pulse at it: ``glottal``; noise: ``whisper``) and by noise where it is not, the frames
    overlap-added under a Hann window, then de-emphasised and brought to ``x``'s RMS. The
    pitch is the autocorrelation peak between 60 and 400 Hz; a frame is voiced when that peak
    is at least 0.35 of the frame's energy. What a word is (its formants and their timing)
    stays; what the engine's waveform generator made of the source goes."""
    from scipy.linalg import solve_toeplitz
    from scipy.signal import lfilter
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    x = np.asarray(x, dtype=float)
    if x.size < frame:
        return x.copy()
    pre = lfilter([1.0, -0.97], [1.0], x)
    win = np.hanning(frame)
    n_frames = 1 + (x.size - frame) // hop
    out = np.zeros(x.size)
    norm = np.zeros(x.size)
    lo, hi = FS // 400, FS // 60
    phase = 0.0                           # the pulse train runs on across frames
    for k in range(n_frames):
        at = k * hop
        seg = pre[at:at + frame] * win
        r = np.correlate(seg, seg, "full")[frame - 1:frame + order]
        if r[0] <= 1e-12:
            continue
        r = r.copy()
        r[0] *= 1.0 + 1e-6               # a little white floor: a stable filter
        a = solve_toeplitz(r[:order], r[1:order + 1])
        gain = np.sqrt(max(r[0] - np.dot(a, r[1:order + 1]), 1e-12))
        raw = x[at:at + frame] * win
        ac = np.correlate(raw, raw, "full")[frame - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        voiced = ac[0] > 1e-12 and ac[lag] >= 0.35 * ac[0]
        if voiced and source != "whisper":
            period = max(lo / 2, lag / f0_scale)
            t = phase + np.arange(frame) / period
            frac = t - np.floor(t)
            if source == "pulse":
                e = (np.diff(np.floor(np.concatenate([[t[0] - 1 / period], t]))) > 0) \
                    .astype(float)
            else:                         # Rosenberg: rise over 40 %, fall over 16 %
                e = np.where(frac < 0.4, 0.5 * (1 - np.cos(np.pi * frac / 0.4)),
                             np.where(frac < 0.56, np.cos(0.5 * np.pi * (frac - 0.4) / 0.16),
                                      0.0))
                e = np.diff(np.concatenate([[e[0]], e]))   # its derivative drives the tract
            phase = t[hop] if hop < frame else t[-1]
        else:
            e = rng.standard_normal(frame)
        e = e - e.mean()
        e /= np.sqrt(np.mean(e ** 2)) or 1.0
        y = lfilter([gain], np.concatenate([[1.0], -a]), e)
        out[at:at + frame] += y * win
        norm[at:at + frame] += win ** 2
    out = lfilter([1.0], [1.0, -0.97], out / np.maximum(norm, 1e-3))
    rms_x, rms_y = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(out ** 2))
    return out * (rms_x / rms_y) if rms_y > 0 else out


def apply(x: np.ndarray, a: Augment, rng: np.random.Generator, *,
          babble: list[np.ndarray] = ()) -> np.ndarray:
    """``x`` (16 kHz, the word with its silences) with ``a`` applied: the source swap, warp,
    equaliser, room, gain, then noise at ``a.snr_db`` re the RMS of the result. Babble is 3 to
    6 of ``babble`` (other utterances) at random offsets, looped to length (white noise when
    none is given). The source swap draws from its own seed, so the rest draw the same
    numbers with it or without."""
    from scipy.signal import resample_poly
    if a.source is not None:
        x = vocode(x, a.source, np.random.default_rng(a.source_seed), f0_scale=a.f0_scale)
    down = int(round(100 * a.warp))
    if down != 100 and x.size:
        x = resample_poly(x, 100, down)
    x = _reverb(_equalise(x, a), a, rng) * 10 ** (a.gain_db / 20)
    if a.noise is None or x.size == 0:
        return x
    rms = np.sqrt(np.mean(x ** 2)) or 1e-3
    if a.noise == "pink":
        n = pink(x.size, rng)
    elif a.noise == "babble" and len(babble):
        n = np.zeros(x.size)
        for k in rng.choice(len(babble), size=min(len(babble), int(rng.integers(3, 7))),
                            replace=False):
            b = np.asarray(babble[k], dtype=float)
            if b.size == 0:
                continue
            b = np.roll(np.resize(b, x.size), int(rng.integers(x.size)))
            n += b / (np.sqrt(np.mean(b ** 2)) or 1.0)
        n /= np.sqrt(np.mean(n ** 2)) or 1.0
    else:
        n = rng.standard_normal(x.size)
        n /= np.sqrt(np.mean(n ** 2)) or 1.0
    return x + n * rms * 10 ** (-a.snr_db / 20)      # every noise at unit RMS: SNR exact


#: Augmentations :func:`without` switches off: the recipe's waveform parts, then two parts of
#: the noise alone (``babble``: no babble; ``low-snr``: no SNR below 10 dB), then the prosody
#: asked of the engines (``speed``, ``pitch``: every utterance at the voice's own).
AUGMENTATIONS = ("source", "warp", "eq", "band", "reverb", "noise", "gain", "babble", "low-snr",
                 "speed", "pitch")


def without(r: Ranges, name: str) -> Ranges:
    """``r`` with the augmentation ``name`` off (for the ablation): ``source``, ``warp``,
    ``eq``, ``band``, ``reverb``, ``noise`` (back to white noise at 10-30 dB) or ``gain``; a
    part of the noise: ``babble`` (the other kinds only) or ``low-snr`` (SNRs from 10 dB); or
    the prosody: ``speed`` or ``pitch`` (the voice's own rate or mean F0)."""
    if name == "babble":
        kinds = tuple(k for k in r.noises or () if k != "babble")
        return replace(r, noises=kinds or None)
    if name == "low-snr":
        return replace(r, snr_db=None if r.snr_db is None else
                       (max(10.0, r.snr_db[0]), max(10.0, r.snr_db[1])))
    off = {"source": {"source_p": None},
           "warp": {"warp": None}, "eq": {"eq_bands": None, "eq_db": None, "tilt_db": None},
           "band": {"lowpass": None, "highpass": None}, "reverb": {"rt60": None},
           "noise": {"noises": ("white",), "snr_db": (10.0, 30.0)}, "gain": {"gain_db": None},
           "speed": {"rate": None}, "pitch": {"pitch": None}}
    if name not in off:
        raise ValueError(f"unknown augmentation {name!r}; one of {', '.join(off)}")
    return replace(r, **off[name])


#: The waveform augmentations the recipe leaves off (:func:`recipe`; the noise back to the
#: first data set's white noise at 10-30 dB).
RECIPE_OFF = ("warp", "eq", "band", "reverb", "noise", "gain")


def recipe(*, waveform: bool = False, source_p: float | None = None,
           snr_db: tuple | None = None, off=()) -> Ranges:
    """The ranges a corpus is drawn from: the recipe (:data:`RECIPE_OFF` off; with
    ``waveform``, every augmentation of :class:`Ranges` on, the recipe before December 2026),
    with a source swap of share ``source_p``, the noise's SNR range ``snr_db`` (None: 10-30
    dB) and the augmentations named in ``off`` switched off in turn (:func:`without`)."""
    r = Ranges(source_p=source_p)
    for name in () if waveform else RECIPE_OFF:
        r = without(r, name)
    if snr_db is not None:
        r = replace(r, snr_db=tuple(snr_db))
    for name in off:
        r = without(r, name)
    return r


def ranges_dict(r: Ranges) -> dict:
    """``r`` as a JSON-ready dict (tuples as lists; None: that augmentation off)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(r).items()}


def ranges_changes(d: dict, base: Ranges | None = None) -> list[str]:
    """Where the ranges ``d`` (as :func:`ranges_dict` writes them, e.g. read back from a file)
    differ from ``base`` (default: today's :func:`recipe`), one phrase per field: ``"warp
    0.85..1.15 (now off)"``, ``"snr_db 0..30 (now 10..30)"``; a field that ``base`` does not
    know, or that ``d`` lacks, is named as such (except the prosody's, which files drawn before
    it was an option do not hold: they had today's default). Empty when they agree."""
    base = ranges_dict(recipe() if base is None else base)
    d = {**_BEFORE_RECORDED, **d}

    def show(v):
        if v is None:
            return "off"
        if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float))
                                                        for x in v):
            return f"{v[0]:g}..{v[1]:g}"
        if isinstance(v, list):
            return ",".join(map(str, v))
        return f"{v:g}" if isinstance(v, (int, float)) else str(v)

    out = []
    for f in fields(Ranges):
        if f.name not in d:
            out.append(f"{f.name} not recorded")
        elif d[f.name] != base[f.name]:
            out.append(f"{f.name} off" if d[f.name] is None and base[f.name] is not None
                       else f"{f.name} {show(d[f.name])} (now {show(base[f.name])})")
    out += [f"{k} (unknown field)" for k in sorted(d) if k not in base]
    return out
