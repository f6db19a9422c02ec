"""The voices that speak the digits: espeak-ng, Festival and Flite, all Debian packages.

A :class:`Voice` is one speaker of one engine: an espeak-ng voice variant (``+f3``, ``+klatt2``,
...; it speaks English in every accent of :data:`model.audio.synth.ACCENTS` and German), a
Festival voice (``kal_diphone``, ...) or a Flite voice (``awb``, ...); Festival and Flite speak
English only. :data:`VOICES` is the fixed catalogue (the same on every machine: a voice that is
not installed is an error that names its Debian package, not a silently smaller data set).
MBROLA voices and SVOX Pico are deliberately absent: spoken digits from them are kept aside to
measure how the models generalise.

:func:`speak_all` speaks a list of :class:`Say` requests, grouping Festival's by voice into one
process each (Festival takes most of a second to start and milliseconds per word). Every
waveform comes back as float samples at :data:`FS` (16 kHz), full scale 1.0, silence kept.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.audio.synth import read_wav

__all__ = ["ENGINES", "FS", "VOICES", "Say", "Voice", "check_engines", "engine_voices",
           "read_wav", "run_engine", "speak_all"]

FS = 16000

ENGINES = ("espeak-ng", "festival", "flite")


@dataclass(frozen=True)
class Voice:
    """One speaker: ``engine``, the engine's name for it, its languages, its gender
    (``"female"``, ``"male"`` or ``"unknown"``), the Debian package that ships it, and the
    ``person`` whose recordings it was made from, where two voices share one (Flite's ``kal``
    and ``kal16`` and Festival's ``kal_diphone`` are all Kevin Lenzo's diphones; Flite's
    ``slt`` and Festival's HTS voice are both CMU ARCTIC's SLT): splits keep a person's voices
    together. ``accent`` names the language whose letter-to-sound rules a voice applies to the
    English digit words (Festival's voices of other languages): such a voice says them the way
    its language would spell them out, not as English; it is a training voice only (never
    held out, never tested)."""

    engine: str
    name: str
    languages: tuple[str, ...]
    gender: str
    package: str
    person: str = ""
    accent: str = ""

    def __post_init__(self):
        if not self.person:
            object.__setattr__(self, "person", f"{self.engine}:{self.name}")

    @property
    def key(self) -> str:
        """``engine:name``, unique over the catalogue."""
        return f"{self.engine}:{self.name}"


def _espeak_voices() -> list[Voice]:
    from model.audio.synth import FEMALE, MALE, VARIANTS
    return [Voice("espeak-ng", v, ("en", "de"),
                  "female" if v in FEMALE else "male" if v in MALE else "unknown", "espeak-ng")
            for v in VARIANTS]


#: Festival's English voices in Debian bookworm's main section (the 8 kHz twins of the two
#: diphone voices conflict with them and are left out).
FESTIVAL = (("kal_diphone", "male", "festvox-kallpc16k", "kal"),
            ("ked_diphone", "male", "festvox-kdlpc16k", ""),
            ("cmu_us_slt_arctic_hts", "female", "festvox-us-slt-hts", "slt"))

#: Flite's built-in voices (``flite -lv``), less ``awb_time`` (a talking clock).
FLITE = (("kal", "male", "kal"), ("kal16", "male", "kal"), ("awb", "male", "awb"),
         ("rms", "male", "rms"), ("slt", "female", "slt"))

#: Festival's voices of other languages in Debian main, reading the English digit words with
#: their own letter-to-sound rules: more persons, with an accent. Left out: the Russian voice
#: (by far the largest package) and the Hindi, Marathi and Telugu ones (they read their own
#: scripts only).
FESTIVAL_ACCENTED = (("lp_diphone", "female", "festvox-italp16k", "it"),
                     ("pc_diphone", "male", "festvox-itapc16k", "it"),
                     ("czech_dita", "female", "festvox-czech-dita", "cs"),
                     ("czech_krb", "male", "festvox-czech-krb", "cs"),
                     ("czech_machac", "male", "festvox-czech-machac", "cs"),
                     ("czech_ph", "male", "festvox-czech-ph", "cs"),
                     ("suo_fi_lj_diphone", "female", "festvox-suopuhe-lj", "fi"),
                     ("hy_fi_mv_diphone", "male", "festvox-suopuhe-mv", "fi"),
                     ("upc_ca_ona_hts", "female", "festvox-ca-ona-hts", "ca"))

#: Every voice, in a fixed order: a speaker's index in a data set is its index here (new
#: voices are appended, so that the indices of a corpus already written stay valid).
VOICES: tuple[Voice, ...] = (
    *_espeak_voices(),
    *(Voice("festival", n, ("en",), g, p, who) for n, g, p, who in FESTIVAL),
    *(Voice("flite", n, ("en",), g, "flite", who) for n, g, who in FLITE),
    *(Voice("festival", n, ("en",), g, p, accent=a) for n, g, p, a in FESTIVAL_ACCENTED),
)


def engine_voices(engine: str) -> list[int]:
    """Indices into :data:`VOICES` of ``engine``'s voices."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; the engines are {', '.join(ENGINES)}")
    return [i for i, v in enumerate(VOICES) if v.engine == engine]


@dataclass(frozen=True)
class Say:
    """One request: ``word`` in ``voice`` (an index into :data:`VOICES`), ``lang`` (an
    espeak-ng voice such as ``en-gb-scotland`` or ``de`` for espeak-ng; ``en`` otherwise),
    ``rate`` (speaking rate, 1 = the voice's own), ``pitch`` (its mean F0 scaled by this;
    espeak-ng maps it onto ``-p``; Festival's HTS voice ignores it) and ``amplitude``
    (espeak-ng's ``-a``, 100 = its default; the others are scaled after synthesis)."""

    word: str
    voice: int
    lang: str = "en"
    rate: float = 1.0
    pitch: float = 1.0
    amplitude: int = 100


def _missing(engine: str) -> str | None:
    exe = {"espeak-ng": "espeak-ng", "festival": "festival", "flite": "flite"}[engine]
    if shutil.which(exe) is None:
        return f"{exe} is not installed (Debian: apt-get install {exe})"
    return None


def check_engines(engines=ENGINES) -> None:
    """Raise ``RuntimeError`` naming the Debian package of every engine or voice of
    ``engines`` that is missing."""
    problems = [m for e in engines if (m := _missing(e))]
    if "festival" in engines and _missing("festival") is None:
        have = _festival_installed()
        problems += [f"Festival voice {n} is not installed (Debian: apt-get install {p})"
                     for n, p in [(n, p) for n, _, p, _ in FESTIVAL] +
                     [(n, p) for n, _, p, _ in FESTIVAL_ACCENTED] if n not in have]
    if problems:
        raise RuntimeError("; ".join(dict.fromkeys(problems)))


def run_engine(cmd: list[str], *, timeout: float, what: str,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run a speech engine's command (output captured, as text). A call that outlasts
    ``timeout`` seconds is killed and tried once more with twice the time (a loaded machine
    can slow one call of thousands); a second overrun raises :class:`RuntimeError` naming
    ``what``, instead of ending a long synthesis with a bare subprocess traceback."""
    for t in (timeout, 2 * timeout):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  check=check, timeout=t)
        except subprocess.TimeoutExpired:
            continue
    raise RuntimeError(f"{what} did not finish in {timeout:g} s nor, tried again, in "
                       f"{2 * timeout:g} s (a loaded machine? try fewer --jobs)")


def _festival_installed() -> set[str]:
    out = run_engine(["festival", "--batch", "(print (voice.list))"], timeout=60,
                     what="festival (listing its voices)", check=False)
    return set(out.stdout.replace("(", " ").replace(")", " ").split())


def _espeak(s: Say) -> np.ndarray:
    from model.audio.synth import speak
    return speak(s.word, f"{s.lang}+{VOICES[s.voice].name}", speed=int(round(175 * s.rate)),
                 pitch=int(np.clip(round(50 + 100 * np.log2(s.pitch)), 0, 99)),
                 amplitude=s.amplitude)


#: Flite's voices' own mean F0 (Hz), which ``pitch`` scales.
_FLITE_F0 = {"kal": 95.0, "kal16": 95.0, "awb": 110.0, "rms": 95.0, "slt": 160.0}


def _flite(s: Say, tmp: Path) -> np.ndarray:
    v = VOICES[s.voice]
    out = tmp / "flite.wav"
    cmd = ["flite", "-voice", v.name, "--setf", f"duration_stretch={1 / s.rate:.4f}",
           "--setf", f"int_f0_target_mean={_FLITE_F0[v.name] * s.pitch:.1f}",
           "-t", s.word, "-o", str(out)]
    run_engine(cmd, timeout=60, what=f"flite ({v.name}, {s.word!r})")
    return read_wav(out.read_bytes(), " ".join(cmd)) * (s.amplitude / 100)


def _festival(says: list[Say], tmp: Path) -> list[np.ndarray]:
    """Every request of one Festival voice in one Festival process."""
    v = VOICES[says[0].voice]
    lines = [f"(voice_{v.name})"]
    for k, s in enumerate(says):
        word = s.word.replace('"', "")
        lines.append(f"(Parameter.set 'Duration_Stretch {1 / s.rate:.4f})")
        if v.name in ("kal_diphone", "ked_diphone"):   # English diphones: Int_Targets_LR
            f0 = 105.0 * s.pitch
            lines.append(f"(set! int_lr_params (list '(target_f0_mean {f0:.1f}) "
                         f"'(target_f0_std {f0 * 0.14:.1f}) '(model_f0_mean 170) "
                         f"'(model_f0_std 34)))")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{word}")) '
                     f'"{(tmp / f"f{k}.wav").as_posix()}" \'riff)')
    script = tmp / "say.scm"
    script.write_text("\n".join(lines) + "\n")
    run = run_engine(["festival", "--batch", str(script)], timeout=60 + 5 * len(says),
                     what=f"festival ({v.name}, {len(says)} words)", check=False)
    out = []
    for k, s in enumerate(says):
        path = tmp / f"f{k}.wav"
        if not path.exists():
            raise RuntimeError(f"festival ({v.name}) wrote no WAV for {s.word!r}: "
                               f"{run.stderr.strip()[-300:]}")
        out.append(read_wav(path.read_bytes(), f"festival {v.name} {s.word!r}")
                   * (s.amplitude / 100))
        path.unlink()
    return out


def speak_all(says: list[Say]) -> list[np.ndarray]:
    """Speak every request, in order (see :class:`Say`)."""
    for s in says:
        v = VOICES[s.voice]
        if s.lang != "en" and v.engine != "espeak-ng" or \
                v.engine == "espeak-ng" and s.lang == "en":
            raise ValueError(f"{v.key} cannot speak {s.lang!r}: espeak-ng takes an accent "
                             f"or 'de', Festival and Flite speak 'en'")
    check_engines(sorted({VOICES[s.voice].engine for s in says}))
    out: list[np.ndarray | None] = [None] * len(says)
    with tempfile.TemporaryDirectory(prefix="polychrony-voices-") as d:
        tmp = Path(d)
        festival: dict[int, list[int]] = {}
        for i, s in enumerate(says):
            v = VOICES[s.voice]
            if v.engine == "espeak-ng":
                out[i] = _espeak(s)
            elif v.engine == "flite":
                out[i] = _flite(s, tmp)
            else:
                festival.setdefault(s.voice, []).append(i)
        for idx in festival.values():
            for i, x in zip(idx, _festival([says[i] for i in idx], tmp)):
                out[i] = x
    return out  # type: ignore[return-value]
