"""Turn a sound into spikes on 700 cochlear channels (channel 0 = highest frequency, as in SHD).

The model has four published stages, each vectorised over channels (numpy/scipy, no torch):

1. **Basilar membrane: a gammatone filterbank on the ERB scale.** Centre frequencies are equally
   spaced in ERB-rate, E(f) = 21.4 log10(4.37 f/1000 + 1), between ``f_lo`` and ``f_hi``, and
   each filter's bandwidth is b = 1.019 ERB(f) with ERB(f) = 24.7 (4.37 f/1000 + 1) Hz
   (Glasberg & Moore 1990, Hear. Res. 47:103). The filter is the 4th-order gammatone
   g(t) = t^3 exp(-2 pi b t) cos(2 pi f t) (Patterson et al. 1992), discretised by the
   impulse-invariant transform as a cascade of four second-order sections that share one pole
   pair r e^(+-i theta), r = exp(-2 pi b / fs), theta = 2 pi f / fs, and differ in their zeros
   (Slaney 1993, "An efficient implementation of the Patterson-Holdsworth auditory filter
   bank", Apple TR 35). The cascade is normalised to unit gain at f.
2. **Inner hair cell.** Half-wave rectification, then the mean over each ``dt`` frame (1 ms):
   a boxcar low-pass that keeps the envelope and, below ~500 Hz, some phase locking. The frame
   level in dB drives a sigmoidal rate-level function (Sachs & Abbas 1974, J. Acoust. Soc. Am.
   56:1835): p = p_spont + (p_max - p_spont) / (1 + exp(-(L - level_50) / level_width)),
   the release probability of one fibre per frame.

   **Per-channel level normalisation** (``level_norm`` = alpha, off by default: alpha = 0
   gives the model above unchanged). With alpha > 0 each utterance's long-term spectral
   envelope is taken out of the level before the rate-level function:
   L'(t, c) = L(t, c) - alpha (R_c - mean_c R_c), where R_c is channel c's mean level over the
   utterance's *active* frames (broadband level, 20 log10 of the mean over channels of the
   rectified frame, within :data:`ACTIVE_DB` dB of the loudest frame), optionally smoothed
   across channels by a Gaussian of ``norm_width`` channels (the kernel renormalised at the
   edges). The mean over channels of each frame's level is unchanged (overall loudness stays)
   and so is every channel's modulation over time; what goes is the fixed colouring of a
   voice, a microphone or a synthesiser, which networks otherwise learn as a cue (a network
   trained without one engine's voices fails on them).
3. **Short-term adaptation.** A divisive gain control with the short-term time constant of
   auditory-nerve fibres (~60 ms; Westerman & Smith 1984, Hear. Res. 15:249):
   q(t) = p(t) / (1 + adapt_gain * a(t) / p_max), a = low-pass_tau(p). A loud step gives an
   onset response ``1 + adapt_gain`` times the steady state (2-3x in their recordings).
4. **Spikes.** Each channel has ``fibres`` stochastic auditory-nerve fibres, n(t) ~
   Binomial(fibres, q(t)), converging on one leaky integrate-and-fire "bushy cell", the
   output neuron of the channel, as in the converter used for SHD (Cramer et al. 2020:
   40 fibres per channel onto a bushy cell): v <- beta v + n; a spike when v >= threshold,
   then v <- 0 and ``refractory`` silent frames. Spike times are frame centres,
   (k + 1/2) dt: on a 1 ms grid, exact to well within a frame in float16 up to 2 s.

The defaults were calibrated on the synthetic words of :mod:`model.audio.synth`; the numbers
are in ``docs/audio-data.md``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["CochleaParams", "ACTIVE_DB", "erb", "erb_rate", "centre_frequencies",
           "gammatone_sos", "basilar_membrane", "rectified_frames", "frame_levels", "hair_cell",
           "encode"]

#: Frames whose broadband level is within this many dB of the loudest frame are *active*: the
#: frames the level normalisation takes each channel's reference level from.
ACTIVE_DB = 30.0


@dataclass(frozen=True)
class CochleaParams:
    """Parameters of :func:`encode` (frequencies in Hz, times in s, levels in dB re 1.0)."""

    fs: int = 16000
    n_channels: int = 700
    f_lo: float = 80.0
    f_hi: float = 7500.0
    dt: float = 1e-3
    level_50: float = -52.0
    level_width: float = 5.0
    p_spont: float = 0.002
    p_max: float = 0.25
    tau_adapt: float = 0.06
    adapt_gain: float = 2.0
    fibres: int = 40
    beta: float = 0.5
    threshold: float = 14.0
    refractory: int = 3
    level_norm: float = 0.0      # alpha: 0 = off, 1 = the whole spectral envelope removed
    norm_width: float = 0.0      # Gaussian smoothing of the reference across channels

    def __post_init__(self):
        for name, lo, hi, unit in (("level_norm", 0.0, 1.0, ""),
                                   ("norm_width", 0.0, None, " channels")):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) \
                    or v < lo or (hi is not None and v > hi):
                want = f"between {lo:g} and {hi:g}" if hi is not None else f">= {lo:g}{unit}"
                raise ValueError(f"CochleaParams: {name} must be a finite number {want}, "
                                 f"got {v!r}")
        if not 0 < self.f_lo < self.f_hi < self.fs / 2:
            raise ValueError(f"need 0 < f_lo < f_hi < fs/2, got f_lo={self.f_lo}, "
                             f"f_hi={self.f_hi}, fs={self.fs}")
        frame = self.fs * self.dt
        if abs(frame - round(frame)) > 1e-9 or frame < 1:
            raise ValueError(f"dt={self.dt} must be a whole number of samples at fs={self.fs}")
        if self.n_channels < 1 or self.fibres < 1 or self.refractory < 0:
            raise ValueError("n_channels and fibres must be >= 1, refractory >= 0")

    @property
    def frame(self) -> int:
        """Samples per output frame."""
        return int(round(self.fs * self.dt))

    def to_dict(self) -> dict:
        """Every field as a plain int or float (what files and IR metadata record, as JSON)."""
        return {f.name: (int if f.type == "int" else float)(getattr(self, f.name))
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d) -> CochleaParams:
        """The parameters :meth:`to_dict` gave (a field left out keeps its default). Raises
        ``ValueError`` naming the field for an unknown name, a wrong type or a bad value."""
        if not isinstance(d, dict):
            raise ValueError(f"cochlea parameters must be an object of fields, got "
                             f"{type(d).__name__}")
        kinds = {f.name: f.type for f in fields(cls)}
        for name, v in d.items():
            if name not in kinds:
                raise ValueError(f"unknown cochlea field {name!r} (the fields are "
                                 f"{', '.join(kinds)})")
            ok = (int,) if kinds[name] == "int" else (int, float)
            if isinstance(v, bool) or not isinstance(v, ok):
                raise ValueError(f"cochlea field {name!r} must be "
                                 f"{'an integer' if kinds[name] == 'int' else 'a number'}, "
                                 f"got {v!r}")
        return cls(**d)


def erb(f):
    """Equivalent rectangular bandwidth in Hz at frequency ``f`` (Glasberg & Moore 1990)."""
    return 24.7 * (4.37 * np.asarray(f, dtype=float) / 1000.0 + 1.0)


def erb_rate(f):
    """ERB-rate (number of ERBs below ``f``; Glasberg & Moore 1990)."""
    return 21.4 * np.log10(4.37 * np.asarray(f, dtype=float) / 1000.0 + 1.0)


def centre_frequencies(params: CochleaParams = CochleaParams()) -> np.ndarray:
    """Centre frequency of each channel, equally spaced in ERB-rate, channel 0 the highest."""
    e = np.linspace(erb_rate(params.f_hi), erb_rate(params.f_lo), params.n_channels)
    return (10.0 ** (e / 21.4) - 1.0) * 1000.0 / 4.37


def gammatone_sos(f: float, fs: float) -> np.ndarray:
    """Return the 4th-order gammatone at ``f`` as four second-order sections (shape (4, 6)).

    Impulse-invariant: the sections share the pole pair of exp(-2 pi b t) e^(+-2 pi i f t) and
    their zeros split the numerator of the sampled t^3 envelope (Slaney 1993); unit gain at f.
    """
    t = 1.0 / fs
    b = 2.0 * np.pi * 1.019 * float(erb(f))
    w = 2.0 * np.pi * f * t
    r = np.exp(-b * t)
    den = np.array([1.0, -2.0 * r * np.cos(w), r * r])
    sos = np.empty((4, 6))
    for k, (s1, s2) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        c = np.sqrt(3.0 + s1 * 2.0 ** 1.5)
        a1 = -(r * np.cos(w) + s2 * c * r * np.sin(w))
        sos[k] = [1.0, a1, 0.0, *den]
    z = np.exp(-1j * w)                                  # evaluate at f: z^-1 = e^(-i w)
    h = np.prod([(s[0] + s[1] * z) / (s[3] + s[4] * z + s[5] * z * z) for s in sos])
    sos[0, :3] /= abs(h)
    return sos


def basilar_membrane(x: np.ndarray, params: CochleaParams = CochleaParams()) -> np.ndarray:
    """Filter the sound ``x`` (1-D, at ``params.fs``) through the bank; shape (channels, len)."""
    from scipy.signal import sosfilt
    x = np.asarray(x, dtype=float)
    out = np.empty((params.n_channels, x.size))
    for c, f in enumerate(centre_frequencies(params)):
        out[c] = sosfilt(gammatone_sos(f, params.fs), x)
    return out


def rectified_frames(x: np.ndarray, params: CochleaParams = CochleaParams()) -> np.ndarray:
    """Half-wave rectified basilar-membrane output averaged per frame, shape (frames, channels).

    Equal to framing :func:`basilar_membrane`, one channel at a time (no (channels, samples)
    array: at 700 channels that array alone costs more time than the filtering).
    """
    from scipy.signal import sosfilt
    x = np.asarray(x, dtype=float)
    n = x.size // params.frame
    out = np.empty((n, params.n_channels))
    for c, f in enumerate(centre_frequencies(params)):
        y = sosfilt(gammatone_sos(f, params.fs), x)[:n * params.frame]
        np.maximum(y, 0.0, out=y)
        out[:, c] = y.reshape(n, params.frame).mean(axis=1)
    return out


def frame_levels(e: np.ndarray, params: CochleaParams = CochleaParams()) -> np.ndarray:
    """The level in dB that drives the rate-level function, shape (frames, channels), from
    :func:`rectified_frames`: 20 log10 e, less ``level_norm`` times each channel's reference
    level (the utterance's spectral envelope) minus the mean reference over channels."""
    level = 20.0 * np.log10(e + 1e-12)
    if params.level_norm == 0 or level.shape[0] == 0:
        return level
    broadband = 20.0 * np.log10(e.mean(axis=1) + 1e-12)
    active = broadband >= broadband.max() - ACTIVE_DB      # the loudest frame at least
    ref = level[active].mean(axis=0)
    if params.norm_width > 0:
        from scipy.ndimage import gaussian_filter1d
        # zero outside the channels, then divide by the kernel's weight inside them
        smooth = lambda r: gaussian_filter1d(r, params.norm_width, mode="constant", cval=0.0)
        ref = smooth(ref) / smooth(np.ones_like(ref))
    return level - params.level_norm * (ref - ref.mean())


def hair_cell(e: np.ndarray, params: CochleaParams = CochleaParams()) -> np.ndarray:
    """Adapted release probability per fibre, shape (frames, channels), from
    :func:`rectified_frames` (at the levels of :func:`frame_levels`)."""
    from scipy.signal import lfilter
    p_ = params
    level = frame_levels(e, params)
    p = p_.p_spont + (p_.p_max - p_.p_spont) / (1.0 + np.exp(-(level - p_.level_50)
                                                            / p_.level_width))
    k = np.exp(-p_.dt / p_.tau_adapt)
    # start adapted to the first frame: a sound that was already there gives no onset burst
    a = lfilter([1.0 - k], [1.0, -k], p, axis=0, zi=k * p[:1])[0]
    return p / (1.0 + p_.adapt_gain * a / p_.p_max)


def _bushy(n: np.ndarray, params: CochleaParams) -> np.ndarray:
    """Leaky integrate-and-fire over fibre counts ``n`` (frames, channels); boolean raster."""
    v = np.zeros(n.shape[1])
    dead = np.zeros(n.shape[1], dtype=np.int64)
    out = np.zeros(n.shape, dtype=bool)
    for t in range(n.shape[0]):
        v = params.beta * v + n[t]
        s = (v >= params.threshold) & (dead == 0)
        out[t] = s
        v[s] = 0.0
        dead = np.where(s, params.refractory, np.maximum(dead - 1, 0))
        v[dead > 0] = 0.0
    return out


def encode(x: np.ndarray, rng: np.random.Generator,
           params: CochleaParams = CochleaParams()) -> tuple[np.ndarray, np.ndarray]:
    """Encode the sound ``x`` (1-D, at ``params.fs``, full scale 1.0) as spikes.

    Returns ``(times, units)``: times in seconds (float64, sorted, frame centres), units
    0..n_channels-1 (uint16), in SHD's order (by time, then channel).
    """
    q = hair_cell(rectified_frames(x, params), params)
    raster = _bushy(rng.binomial(params.fibres, q), params)
    k, c = np.nonzero(raster)                            # row-major: sorted by time
    return (k + 0.5) * params.dt, c.astype(np.uint16)
