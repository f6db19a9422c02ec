"""Read, write, bin, split and augment spike data in the Spiking Heidelberg Digits layout.

The layout (HDF5, Cramer et al. 2020), which :func:`write_shd` writes and :func:`load` reads:

========================== ====================================================================
``spikes/times``           per sample a variable-length float array (float16 in the release;
                           float32/64 accepted): spike times in seconds, sorted
``spikes/units``           per sample a variable-length uint16 array: channel 0..699
                           (0 = highest frequency), one per time
``labels``                 class of each sample (0..19 for SHD)
``extra/speaker``          speaker of each sample
``extra/keys``             the class names, as bytes, indexed by label
``extra/meta_info/gender`` per speaker (bytes); ``age``, ``body_height`` per speaker (0 =
                           unknown)
``cochlea`` (attribute)    this project's addition, on the root group: the
                           :class:`~model.audio.cochlea.CochleaParams` that encoded the
                           spikes, a JSON object of all its fields (``to_dict``); a file
                           without it (SHD's own, or written before it existed) has the
                           defaults
``recipe`` (attribute)     ours too: how ``polychrony data synth`` drew the file (generator,
                           seed, split, sample counts and, for a voices training file, every
                           augmentation range), a JSON object; absent in other files
========================== ====================================================================

Real SHD files (``shd_train.h5``, ``shd_test.h5``) can sit anywhere: pass their path to
:func:`load`. :func:`model.audio.pack.default_data` gives the project's own synthetic spoken
digits (:mod:`model.audio.synth`), unpacked from ``data/`` on first use. Everything here is
numpy (and h5py for files); nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from model.audio.cochlea import CochleaParams

__all__ = ["DataError", "SpikeSet", "Binned", "write_shd", "load", "cochlea_of", "bin_counts",
           "speaker_split", "random_split", "augment", "spike_augment", "SPIKE_AUGS",
           "spike_augment_options", "logistic_baseline",
           "summary",
           "N_CHANNELS"]

N_CHANNELS = 700
COCHLEA_ATTR = "cochlea"      # the root attribute naming the front end (see the table above)
RECIPE_ATTR = "recipe"        # the root attribute naming how a synthetic file was drawn


class DataError(ValueError):
    """A spike file or array that breaks the SHD layout; the message names file and field."""


@dataclass(frozen=True, eq=False)
class SpikeSet:
    """Spike trains of a data set: per sample ``times`` (s, sorted) and ``units`` (channels)."""

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray
    keys: list[str]
    n_channels: int = N_CHANNELS
    path: Path | None = None
    #: The front end that made the spikes (the file's ``cochlea`` attribute; the defaults
    #: when it has none).
    cochlea: CochleaParams = CochleaParams()
    #: How the file was drawn (its ``recipe`` attribute: the generator, seed, split and
    #: augmentation ranges of ``polychrony data synth``); None for a file without it.
    recipe: dict | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        """Number of classes (the length of ``keys``)."""
        return len(self.keys)

    def subset(self, index) -> SpikeSet:
        """Return the samples at ``index`` (integer array) as a new set."""
        index = np.asarray(index, dtype=np.int64)
        return SpikeSet([self.times[i] for i in index], [self.units[i] for i in index],
                        self.labels[index], self.speakers[index], self.keys,
                        self.n_channels, self.path, self.cochlea, self.recipe)


# --------------------------------------------------------------------------------------------
# Files

def write_shd(path, times, units, labels, speakers, keys, *, time_dtype=np.float16,
              meta: dict | None = None, cochlea: CochleaParams | None = None,
              recipe: dict | None = None) -> Path:
    """Write spikes in the SHD layout to ``path`` (created or overwritten); return the path.

    ``times``/``units`` are lists of per-sample arrays; ``keys`` the class names. ``meta``
    optionally gives ``extra/meta_info`` arrays (``gender``, ``age``, ``body_height``, indexed
    by speaker); by default gender is ``b"unknown"`` and age and height 0 for every speaker.
    ``cochlea``, the front end that made the spikes, goes into the root attribute ``cochlea``
    (JSON; none without it: the defaults, as for a file written before the attribute).
    ``recipe``, how the samples were drawn (JSON-serialisable), goes into the root attribute
    ``recipe``.
    """
    import h5py
    path = Path(path)
    n = len(labels)
    labels = np.asarray(labels, dtype=np.int64)
    speakers = np.asarray(speakers, dtype=np.int64)
    where = f"{path} (writing)"
    if not (len(times) == len(units) == n == len(speakers)):
        raise DataError(f"{where}: lengths differ: {len(times)} times, {len(units)} units, "
                        f"{n} labels, {len(speakers)} speakers")
    if np.dtype(time_dtype) not in (np.float16, np.float32, np.float64):
        raise DataError(f"{where}: time_dtype must be float16, float32 or float64")
    t_out, u_out = [], []
    for i, (t, u) in enumerate(zip(times, units)):
        t = np.asarray(t, dtype=time_dtype)
        u = np.asarray(u)
        _check_sample(where, i, t, u, N_CHANNELS)
        t_out.append(t)
        u_out.append(u.astype(np.uint16))
    if n and (labels.min() < 0 or labels.max() >= len(keys)):
        raise DataError(f"{where}: field 'labels' must lie in 0..{len(keys) - 1}")
    n_speakers = int(speakers.max()) + 1 if n else 0
    if recipe is not None:
        try:
            recipe_text = json.dumps(recipe, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise DataError(f"{where}: recipe must be JSON-serialisable ({e})") from None
    meta = dict(meta or {})
    meta.setdefault("gender", np.array([b"unknown"] * n_speakers))
    meta.setdefault("age", np.zeros(n_speakers, dtype=np.uint8))
    meta.setdefault("body_height", np.zeros(n_speakers, dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", track_order=False) as f:
        for name, arrays, dt in (("times", t_out, time_dtype), ("units", u_out, np.uint16)):
            ds = f.create_dataset(f"spikes/{name}", (n,), dtype=h5py.vlen_dtype(np.dtype(dt)))
            for i, a in enumerate(arrays):
                ds[i] = a
        f.create_dataset("labels", data=labels.astype(np.uint8 if len(keys) <= 256
                                                       else np.uint16))
        f.create_dataset("extra/speaker", data=speakers.astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        for name, value in meta.items():
            f.create_dataset(f"extra/meta_info/{name}", data=np.asarray(value))
        if cochlea is not None:
            f.attrs[COCHLEA_ATTR] = json.dumps(cochlea.to_dict(), sort_keys=True)
        if recipe is not None:
            f.attrs[RECIPE_ATTR] = recipe_text
    return path


def _json_attr(path: Path, f, name: str):
    """The root attribute ``name`` of the open file ``f`` parsed as JSON (None when absent)."""
    if name not in f.attrs:
        return None
    raw = f.attrs[name]
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            raise DataError(f"{path}: root attribute '{name}' is not UTF-8 text") from None
    if not isinstance(raw, str):
        raise DataError(f"{path}: root attribute '{name}' must be a JSON string, got "
                        f"{type(raw).__name__}")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise DataError(f"{path}: root attribute '{name}' is not JSON ({e})") from None


def _cochlea_attr(path: Path, f) -> CochleaParams:
    """The ``cochlea`` root attribute of the open file ``f`` (the defaults when absent)."""
    d = _json_attr(path, f, COCHLEA_ATTR)
    if d is None:
        return CochleaParams()
    try:
        return CochleaParams.from_dict(d)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: root attribute '{COCHLEA_ATTR}': {e}") from None


def _recipe_attr(path: Path, f) -> dict | None:
    """The ``recipe`` root attribute of the open file ``f`` (None when absent)."""
    d = _json_attr(path, f, RECIPE_ATTR)
    if d is not None and not isinstance(d, dict):
        raise DataError(f"{path}: root attribute '{RECIPE_ATTR}' must be a JSON object, got "
                        f"{type(d).__name__}")
    return d


def _open_h5(path):
    """``(path, file)``: the HDF5 file ``path`` open for reading, or a :class:`DataError`."""
    import h5py
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path, h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not an HDF5 file ({e})") from None


def cochlea_of(path) -> CochleaParams:
    """The front end that made the spikes of the SHD-layout file ``path`` (its ``cochlea``
    attribute; the defaults when it has none), without reading the spikes."""
    path, f = _open_h5(path)
    with f:
        return _cochlea_attr(path, f)


def _check_sample(where: str, i: int, t: np.ndarray, u: np.ndarray, n_channels: int) -> None:
    if t.ndim != 1 or u.ndim != 1 or t.shape != u.shape:
        raise DataError(f"{where}: sample {i}: 'spikes/times' has {t.size} entries but "
                        f"'spikes/units' has {u.size}")
    if t.size == 0:
        return
    if not np.all(np.isfinite(t)) or t[0] < 0:
        raise DataError(f"{where}: sample {i}: 'spikes/times' must be finite and >= 0")
    if np.any(np.diff(t) < 0):
        k = int(np.nonzero(np.diff(t) < 0)[0][0])
        raise DataError(f"{where}: sample {i}: 'spikes/times' is not sorted "
                        f"(entry {k + 1}: {t[k + 1]} after {t[k]})")
    if not np.issubdtype(u.dtype, np.integer):
        raise DataError(f"{where}: sample {i}: 'spikes/units' must be integers, got {u.dtype}")
    if u.min() < 0 or u.max() >= n_channels:
        raise DataError(f"{where}: sample {i}: 'spikes/units' out of range 0..{n_channels - 1} "
                        f"(min {u.min()}, max {u.max()})")


def load(path, *, n_channels: int = N_CHANNELS) -> SpikeSet:
    """Read an SHD-layout HDF5 file (float16, float32 or float64 times) and check it.

    Raises :class:`DataError` naming the file and the field for a missing dataset, a wrong
    dtype, a length mismatch, units out of range, unsorted times or a malformed ``cochlea``
    attribute. ``extra/speaker`` and ``extra/keys`` are optional (speakers -1; keys ``"0"``,
    ``"1"``, ... up to the largest label).
    """
    import h5py
    path, f = _open_h5(path)
    with f:
        def get(name, required=True):
            if name not in f:
                if required:
                    raise DataError(f"{path}: missing dataset '{name}'")
                return None
            if not isinstance(f[name], h5py.Dataset):
                raise DataError(f"{path}: '{name}' is a group, expected a dataset")
            return f[name]

        times_ds, units_ds, labels_ds = get("spikes/times"), get("spikes/units"), get("labels")
        for name, ds, kinds in (("spikes/times", times_ds, "f"), ("spikes/units", units_ds, "iu")):
            base = h5py.check_vlen_dtype(ds.dtype)
            if base is None or base.kind not in kinds:
                want = "float" if kinds == "f" else "integer"
                raise DataError(f"{path}: '{name}' must be variable-length {want} arrays, "
                                f"got dtype {base if base is not None else ds.dtype}")
        if labels_ds.dtype.kind not in "iu":
            raise DataError(f"{path}: 'labels' must be integers, got {labels_ds.dtype}")
        times = [np.asarray(t, dtype=np.float32 if t.dtype != np.float64 else np.float64)
                 for t in times_ds[()]]
        units = list(units_ds[()])
        labels = labels_ds[()].astype(np.int64)
        cochlea = _cochlea_attr(path, f)
        recipe = _recipe_attr(path, f)
        speaker_ds = get("extra/speaker", required=False)
        if speaker_ds is not None and speaker_ds.dtype.kind not in "iu":
            raise DataError(f"{path}: 'extra/speaker' must be integers, got {speaker_ds.dtype}")
        speakers = (speaker_ds[()].astype(np.int64) if speaker_ds is not None
                    else np.full(len(labels), -1, dtype=np.int64))
        keys_ds = get("extra/keys", required=False)
        if keys_ds is not None:
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in keys_ds[()]]
        else:
            keys = [str(k) for k in range(int(labels.max()) + 1 if len(labels) else 0)]
    if labels.ndim != 1 or not (len(times) == len(units) == len(labels) == len(speakers)):
        raise DataError(f"{path}: lengths differ: 'spikes/times' {len(times)}, 'spikes/units' "
                        f"{len(units)}, 'labels' {len(labels)}, 'extra/speaker' "
                        f"{len(speakers)}")
    for i, (t, u) in enumerate(zip(times, units)):
        _check_sample(str(path), i, t, u, n_channels)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(keys)):
        raise DataError(f"{path}: 'labels' must lie in 0..{len(keys) - 1} ('extra/keys' has "
                        f"{len(keys)} names), got {labels.min()}..{labels.max()}")
    return SpikeSet(times, units, labels, speakers, keys, n_channels, path, cochlea, recipe)


# --------------------------------------------------------------------------------------------
# Binning, splits, augmentation

class Binned(NamedTuple):
    """Binned counts ``x`` (samples, steps, channels) and each sample's length in steps."""

    x: np.ndarray
    lengths: np.ndarray

    @property
    def max_count(self) -> int:
        """Largest count in any bin."""
        return int(self.x.max()) if self.x.size else 0

    @property
    def in_bits(self) -> int:
        """Unsigned input width that holds every count (the IR's ``in_bits``)."""
        return max(1, self.max_count.bit_length())


def bin_counts(spikes: SpikeSet, *, dt: float = 0.01, group: int = 5, steps: int | None = None,
               truncate: bool = False) -> Binned:
    """Count spikes in ``dt`` frames and channel groups of ``group`` (700 -> 140 by default).

    Frame k holds the spikes with k*dt <= t < (k+1)*dt (``floor(t / dt)``); group g sums channels
    g*group .. (g+1)*group - 1. A sample's length is the frame of its last spike + 1 (0 if it
    has none). ``x`` (int16) is zero-padded to the longest sample, or to ``steps``; a sample
    longer than ``steps`` raises :class:`DataError` unless ``truncate=True``, which drops its
    late spikes (``lengths`` then reports ``steps``).
    """
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if group < 1 or spikes.n_channels % group:
        raise ValueError(f"group must divide n_channels={spikes.n_channels}, got {group}")
    n = len(spikes)
    frames = [np.floor(np.asarray(t, dtype=np.float64) / dt).astype(np.int64)
              for t in spikes.times]
    lengths = np.array([int(k[-1]) + 1 if k.size else 0 for k in frames], dtype=np.int64)
    longest = int(lengths.max()) if n else 0
    if steps is None:
        steps = longest
    elif longest > steps:
        if not truncate:
            i = int(np.argmax(lengths))
            raise DataError(f"{spikes.path or 'spikes'}: sample {i} lasts {lengths[i]} steps of "
                            f"{dt} s, more than steps={steps}; pass truncate=True to drop its "
                            f"late spikes")
        lengths = np.minimum(lengths, steps)
    c = spikes.n_channels // group
    flat = []
    for i, (k, u) in enumerate(zip(frames, spikes.units)):
        keep = k < steps
        flat.append((i * steps + k[keep]) * c + np.asarray(u)[keep].astype(np.int64) // group)
    idx = np.concatenate(flat) if flat else np.zeros(0, dtype=np.int64)
    counts = np.bincount(idx, minlength=n * steps * c)
    if counts.size and counts.max() > np.iinfo(np.int16).max:
        raise DataError(f"{spikes.path or 'spikes'}: a bin holds {counts.max()} spikes, more "
                        f"than int16 holds")
    return Binned(counts.astype(np.int16).reshape(n, steps, c), lengths)


def random_split(n, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Plain random split of ``n`` samples (or of a :class:`SpikeSet`), as DelRec's 80/20.

    Returns sorted ``(train, val)`` index arrays; val has ``round(val_fraction * n)`` samples.
    """
    n = len(n) if isinstance(n, SpikeSet) else int(n)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    k = int(round(val_fraction * n))
    return np.sort(order[k:]), np.sort(order[:k])


def speaker_split(spikes: SpikeSet, val_fraction: float = 0.2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split by speaker: no speaker of ``val`` occurs in ``train``.

    Speakers are taken in a random order (``seed``) into val while that brings its share of
    samples closer to ``val_fraction``; val gets at least one speaker and train keeps one.
    Returns sorted ``(train, val)`` index arrays.
    """
    who = np.asarray(spikes.speakers)
    ids, counts = np.unique(who, return_counts=True)
    if (who < 0).any():
        raise DataError(f"{spikes.path or 'spikes'}: no 'extra/speaker' field; use "
                        f"random_split")
    if ids.size < 2:
        raise DataError(f"{spikes.path or 'spikes'}: a speaker split needs >= 2 speakers, "
                        f"found {ids.size}")
    order = np.random.default_rng(seed).permutation(ids.size)
    target, val, taken = val_fraction * who.size, [], 0
    for j in order[:-1]:
        if val and abs(taken + counts[j] - target) >= abs(taken - target):
            continue
        val.append(ids[j])
        taken += counts[j]
    is_val = np.isin(who, val)
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def _shift_channels(x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each channel of ``x`` (steps, channels) by its own number of steps; zero fill."""
    t = x.shape[0]
    src = np.arange(t)[:, None] - shifts[None, :]
    ok = (src >= 0) & (src < t)
    out = np.zeros_like(x)
    out[ok] = x[src[ok], np.broadcast_to(np.arange(x.shape[1]), src.shape)[ok]]
    return out


def augment(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, copies: int = 3,
            max_shift: int = 100, blend: bool = True,
            thin: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """DelRec's augmentation of binned counts ``x`` (samples, steps, channels).

    Returns ``copies`` times as many samples, in blocks of ``len(x)``: block 0 is ``x``;
    odd blocks shift every channel of every sample by its own integer in
    [-max_shift, max_shift] steps (zero fill, counts shifted past either end are dropped);
    even blocks (with ``blend``, else shifts again) blend each sample with a random other
    sample of its class: the partner is moved so that both centres of mass in time coincide,
    then each count of both is thinned, kept with probability ``thin`` (binomial), and the two
    are added. A sample alone in its class is shifted instead. Labels repeat per block.
    DelRec uses copies=3, max_shift=100 (steps of 10 ms), thin=0.5.
    """
    x = np.asarray(x)
    labels = np.asarray(labels)
    if x.ndim != 3 or len(labels) != len(x):
        raise ValueError(f"x must be (samples, steps, channels) with one label per sample, got "
                         f"{x.shape} and {len(labels)} labels")
    if copies < 1 or max_shift < 0 or not 0 <= thin <= 1:
        raise ValueError("need copies >= 1, max_shift >= 0 and 0 <= thin <= 1")
    s, t, c = x.shape
    by_class = {int(y): np.nonzero(labels == y)[0] for y in np.unique(labels)}
    steps = np.arange(t)
    out = [x]
    for block in range(1, copies):
        aug = np.empty_like(x)
        for i in range(s):
            pool = by_class[int(labels[i])]
            if blend and block % 2 == 0 and pool.size > 1:
                j = i
                while j == i:
                    j = int(pool[rng.integers(pool.size)])
                mass_i, mass_j = x[i].sum(axis=1), x[j].sum(axis=1)
                com = [float(steps @ m / m.sum()) if m.sum() else (t - 1) / 2
                       for m in (mass_i, mass_j)]
                partner = _shift_channels(x[j], np.full(c, int(round(com[0] - com[1]))))
                aug[i] = rng.binomial(x[i], thin) + rng.binomial(partner, thin)
            else:
                aug[i] = _shift_channels(x[i], rng.integers(-max_shift, max_shift + 1, c))
        out.append(aug)
    return np.concatenate(out), np.tile(labels, copies)


#: The parts of :func:`spike_augment`, by the names an ablation switches off.
SPIKE_AUGS = ("shift", "stretch", "dropout")


def spike_augment_options(off=()) -> dict:
    """Keyword arguments of :func:`spike_augment` with the parts named in ``off`` (of
    :data:`SPIKE_AUGS`) switched off: no shift, a stretch of exactly 1, every count kept. The
    random draws stay the same, so each of the other parts gets the same draw as with all on."""
    bad = sorted(set(off) - set(SPIKE_AUGS))
    if bad:
        raise ValueError(f"spike augmentations {bad}: the parts are {', '.join(SPIKE_AUGS)}")
    return {**({"shift": 0} if "shift" in off else {}),
            **({"stretch": (1.0, 1.0)} if "stretch" in off else {}),
            **({"keep": (1.0, 1.0)} if "dropout" in off else {})}


def spike_augment(x: np.ndarray, rng: np.random.Generator, *, shift: int = 4,
                  stretch: tuple[float, float] = (0.85, 1.15),
                  keep: tuple[float, float] = (0.7, 1.0)) -> np.ndarray:
    """Spike-level augmentation of binned counts ``x`` (samples, steps, channels), one draw
    per sample: a **channel shift** (the whole spectrum moved by an integer in
    [-shift, shift] channel groups, zero fill: a voice a little higher or lower), a **time
    stretch** (frame t's counts go to frame floor(t·s), s uniform in ``stretch``; counts that
    land on one frame add, those past the end are dropped: a faster or slower speaker) and
    **dropout** (each count thinned binomially, kept with a probability uniform in ``keep``).
    The totals change only by dropout and by what leaves the window."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must be (samples, steps, channels), got {x.shape}")
    if shift < 0 or not 0 < stretch[0] <= stretch[1] or not 0 <= keep[0] <= keep[1] <= 1:
        raise ValueError("need shift >= 0, 0 < stretch low <= high and 0 <= keep low <= high "
                         "<= 1")
    n, t, c = x.shape
    out = np.zeros_like(x)
    k = rng.integers(-shift, shift + 1, n)
    s = rng.uniform(*stretch, n)
    p = rng.uniform(*keep, n)
    frames = np.arange(t)
    for i in range(n):
        xi = np.roll(x[i], int(k[i]), axis=1)
        if k[i] > 0:
            xi[:, :k[i]] = 0
        elif k[i] < 0:
            xi[:, k[i]:] = 0
        dest = np.floor(frames * s[i]).astype(np.int64)
        ok = dest < t
        np.add.at(out[i], dest[ok], xi[ok])
        out[i] = rng.binomial(out[i], p[i])
    return out


# --------------------------------------------------------------------------------------------
# Reports

def summary(spikes: SpikeSet, *, dt: float = 0.01, group: int = 5) -> dict:
    """Counts a reader wants first: samples, classes, speakers, spikes, durations, max bin."""
    n = np.array([t.size for t in spikes.times])
    dur = np.array([float(t[-1]) if t.size else 0.0 for t in spikes.times])
    c = spikes.n_channels // group
    max_count = 0
    for t, u in zip(spikes.times, spikes.units):        # one sample at a time: no big array
        if t.size:
            k = np.floor(np.asarray(t, dtype=np.float64) / dt).astype(np.int64)
            max_count = max(max_count, int(np.bincount(k * c + np.asarray(u) // group).max()))
    steps = int(np.floor(dur.max() / dt)) + 1 if n.sum() else 0
    return {"path": str(spikes.path) if spikes.path else None, "samples": len(spikes),
            "classes": spikes.n_classes, "keys": spikes.keys,
            "per_class": np.bincount(spikes.labels, minlength=spikes.n_classes).tolist(),
            "speakers": int(np.unique(spikes.speakers).size),
            "speaker_ids": np.unique(spikes.speakers).tolist(),
            "spikes_per_sample": {"mean": float(n.mean()), "min": int(n.min()),
                                  "max": int(n.max())} if n.size else None,
            "duration_s": {"mean": float(dur.mean()), "min": float(dur.min()),
                           "max": float(dur.max())} if n.size else None,
            "steps": steps, "channels": c, "max_count": max_count,
            "in_bits": max(1, max_count.bit_length()), "dt": dt, "group": group,
            "recipe": spikes.recipe}


def _features(spikes: SpikeSet, time_bins: int, window: float) -> np.ndarray:
    b = bin_counts(spikes, dt=window / time_bins, group=5, steps=time_bins, truncate=True)
    return np.log1p(b.x.reshape(len(spikes), -1).astype(np.float64))


def logistic_baseline(train: SpikeSet, test: SpikeSet, *, time_bins: int = 1,
                      window: float | None = None, l2: float = 1e-2,
                      predictions: bool = False) -> dict:
    """Softmax regression on binned spike counts: the floor a spiking network must clear.

    Features: log(1 + count) of each 5-channel group (140) in each of ``time_bins`` equal
    slices of ``window`` seconds (default: the longest training sample), standardised on
    train. L2 penalty ``l2`` per sample, fitted by L-BFGS (scipy). Returns accuracies on train
    and test, chance (largest class share of test) and the settings (with ``predictions``,
    also the predicted class of every test sample, ``test_pred``).
    """
    from scipy.optimize import minimize
    if window is None:
        window = max(float(t[-1]) for t in train.times if t.size) + 1e-3
    xtr, xte = _features(train, time_bins, window), _features(test, time_bins, window)
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    k = max(train.n_classes, test.n_classes)
    y = np.eye(k)[train.labels]
    d = xtr.shape[1]

    def loss(w):
        w = w.reshape(d + 1, k)
        z = xtr @ w[:-1] + w[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        n = len(xtr)
        f = -np.sum(y * np.log(p + 1e-300)) / n + 0.5 * l2 * np.sum(w[:-1] ** 2)
        g = np.vstack([xtr.T @ (p - y) / n + l2 * w[:-1], (p - y).sum(axis=0) / n])
        return f, g.ravel()

    res = minimize(loss, np.zeros((d + 1) * k), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000})
    w = res.x.reshape(d + 1, k)

    def acc(x, labels):
        return float(np.mean(np.argmax(x @ w[:-1] + w[-1], axis=1) == labels))

    out = {"train_acc": acc(xtr, train.labels), "test_acc": acc(xte, test.labels),
           "chance": float(np.bincount(test.labels).max() / len(test.labels)),
           "features": d, "time_bins": time_bins, "window_s": window, "l2": l2,
           "train_samples": len(train), "test_samples": len(test),
           "converged": bool(res.success)}
    if predictions:
        out["test_pred"] = np.argmax(xte @ w[:-1] + w[-1], axis=1)
    return out
