"""SHD layout: files, checks, binning, splits, augmentation, the embedded set."""

import json

import h5py
import numpy as np
import pytest

from model.audio.cochlea import CochleaParams
from model.audio.pack import default_data, pack, unpack
from model.audio.shd import (DataError, SpikeSet, augment, bin_counts, cochlea_of, load,
                             logistic_baseline, random_split, speaker_split, summary,
                             write_shd)

KEYS = [f"k{i}" for i in range(20)]


def _toy(n=6, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        m = int(rng.integers(1, 40))
        k = np.sort(rng.integers(0, 300, m))
        times.append(((k + 0.5) * 1e-3).astype(dtype))
        units.append(rng.integers(0, 700, m).astype(np.uint16))
    return times, units, np.arange(n) % 20, np.arange(n) // 2


def _raw_shd(path, times, units, labels, *, tdtype=np.float32, skip=()):
    """An SHD-layout file written with h5py directly (not by write_shd)."""
    with h5py.File(path, "w") as f:
        if "times" not in skip:
            t = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(tdtype))
            for i, a in enumerate(times):
                t[i] = np.asarray(a, dtype=tdtype)
        if "units" not in skip:
            u = f.create_dataset("spikes/units", (len(units),),
                                 dtype=h5py.vlen_dtype(np.dtype(units[0].dtype)))
            for i, a in enumerate(units):
                u[i] = a
        f["labels"] = np.asarray(labels, dtype=np.uint16)
        f["extra/speaker"] = np.zeros(len(labels), dtype=np.uint16)
        f["extra/keys"] = np.array([k.encode() for k in KEYS])
    return path


@pytest.mark.parametrize("tdtype", [np.float16, np.float32])
def test_round_trip_writes_the_shd_layout(tmp_path, tdtype):
    times, units, labels, speakers = _toy()
    path = write_shd(tmp_path / "a.h5", times, units, labels, speakers, KEYS, time_dtype=tdtype)
    with h5py.File(path) as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.dtype(tdtype)
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.dtype(np.uint16)
        assert f["extra/keys"][3] == b"k3"
        for name in ("gender", "age", "body_height"):
            assert f[f"extra/meta_info/{name}"].shape == (speakers.max() + 1,)
    s = load(path)
    assert len(s) == 6 and s.keys == KEYS and s.n_classes == 20 and s.path == path
    assert s.labels.dtype == np.int64 and list(s.labels) == list(labels)
    assert list(s.speakers) == list(speakers)
    for a, b, u, v in zip(times, s.times, units, s.units):
        assert np.array_equal(a.astype(tdtype).astype(np.float32), b)
        assert np.array_equal(u, v)


@pytest.mark.parametrize("tdtype", [np.float16, np.float32, np.float64])
def test_load_reads_files_written_by_other_code(tmp_path, tdtype):
    times, units, labels, _ = _toy(4)
    s = load(_raw_shd(tmp_path / "raw.h5", times, units, labels, tdtype=tdtype))
    assert [t.size for t in s.times] == [t.size for t in times]
    assert bin_counts(s).x.sum() == sum(t.size for t in times)


def _bad(tmp_path, **change):
    times, units, labels, _ = _toy(4)
    times = change.get("times", times)
    units = change.get("units", units)
    labels = change.get("labels", labels)
    return _raw_shd(tmp_path / "bad.h5", times, units, labels, tdtype=change.get("tdtype",
                    np.float32), skip=change.get("skip", ()))


@pytest.mark.parametrize("change, words", [
    (dict(skip=("units",)), ["missing dataset", "'spikes/units'"]),
    (dict(tdtype=np.int32), ["'spikes/times'", "float", "int32"]),
    (dict(units=[np.array([1, 700], np.uint16)] * 4,
          times=[np.array([0.1, 0.2])] * 4), ["sample 0", "'spikes/units'", "0..699"]),
    (dict(times=[np.array([0.3, 0.1])] * 4, units=[np.array([1, 2], np.uint16)] * 4),
     ["sample 0", "'spikes/times'", "not sorted"]),
    (dict(times=[np.array([0.1, 0.2])] * 4, units=[np.array([1], np.uint16)] * 4),
     ["sample 0", "'spikes/times' has 2", "'spikes/units' has 1"]),
    (dict(labels=[0, 1, 2]), ["lengths differ", "'labels' 3"]),
    (dict(labels=[0, 1, 2, 25]), ["'labels'", "0..19"]),
])
def test_bad_files_name_file_and_field(tmp_path, change, words):
    path = _bad(tmp_path, **change)
    with pytest.raises(DataError) as e:
        load(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg


def test_not_hdf5_and_missing_file(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(DataError, match="not an HDF5 file"):
        load(tmp_path / "x.h5")
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "nope.h5")


def test_the_cochlea_attribute_round_trips(tmp_path):
    """``write_shd(cochlea=...)`` records the front end as JSON in the root attribute
    ``cochlea``; ``load`` and ``cochlea_of`` read it back; a file without it has the
    defaults."""
    times, units, labels, speakers = _toy()
    p = CochleaParams(level_norm=0.75, norm_width=6.0)
    path = write_shd(tmp_path / "n.h5", times, units, labels, speakers, KEYS, cochlea=p)
    with h5py.File(path) as f:
        d = json.loads(f.attrs["cochlea"])
    assert d == p.to_dict() and d["level_norm"] == 0.75
    s = load(path)
    assert s.cochlea == p and cochlea_of(path) == p
    assert s.subset([1, 2]).cochlea == p
    plain = write_shd(tmp_path / "d.h5", times, units, labels, speakers, KEYS)
    with h5py.File(plain) as f:
        assert "cochlea" not in f.attrs
    assert load(plain).cochlea == CochleaParams() == cochlea_of(plain)
    assert load(_raw_shd(tmp_path / "raw.h5", *_toy(3)[:3])).cochlea == CochleaParams()
    with pytest.raises(DataError, match="no such file"):
        cochlea_of(tmp_path / "nope.h5")


def test_the_recipe_attribute_round_trips(tmp_path):
    """``write_shd(recipe=...)`` records how a file was drawn in the root attribute ``recipe``;
    ``load`` puts it on the set (kept by ``subset``; None without it); a recipe that JSON
    cannot hold is refused before anything is written."""
    times, units, labels, speakers = _toy()
    recipe = {"generator": "voices", "seed": 2, "split": "train",
              "ranges": {"warp": None, "snr_db": [10.0, 30.0]}}
    path = write_shd(tmp_path / "r.h5", times, units, labels, speakers, KEYS, recipe=recipe)
    with h5py.File(path) as f:
        assert json.loads(f.attrs["recipe"]) == recipe
    s = load(path)
    assert s.recipe == recipe and s.subset([0]).recipe == recipe
    assert summary(s)["recipe"] == recipe
    plain = write_shd(tmp_path / "p.h5", times, units, labels, speakers, KEYS)
    assert load(plain).recipe is None and summary(load(plain))["recipe"] is None
    with pytest.raises(DataError, match="recipe must be JSON-serialisable"):
        write_shd(tmp_path / "bad.h5", times, units, labels, speakers, KEYS,
                  recipe={"seed": np.int64(2)})
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.parametrize("attr, value, words", [
    ("cochlea", "{level_norm: 1}", "root attribute 'cochlea' is not JSON"),
    ("cochlea", '{"level_norm": 1.5}', "root attribute 'cochlea': CochleaParams: level_norm "
                                       "must be a finite number between 0 and 1, got 1.5"),
    ("cochlea", '{"level_norm": NaN}', "level_norm must be a finite number"),
    ("cochlea", '{"levl_norm": 1.0}', "root attribute 'cochlea': unknown cochlea field "
                                      "'levl_norm'"),
    ("cochlea", '{"fibres": "40"}', "root attribute 'cochlea': cochlea field 'fibres' must be "
                                    "an integer"),
    ("cochlea", '[1, 2]', "root attribute 'cochlea': cochlea parameters must be an object"),
    ("cochlea", np.arange(3), "root attribute 'cochlea' must be a JSON string, got ndarray"),
    ("recipe", "{seed: 2}", "root attribute 'recipe' is not JSON"),
    ("recipe", "[1, 2]", "root attribute 'recipe' must be a JSON object, got list"),
    ("recipe", np.arange(3), "root attribute 'recipe' must be a JSON string, got ndarray"),
])
def test_a_malformed_attribute_names_file_and_field(tmp_path, attr, value, words):
    times, units, labels, speakers = _toy()
    path = write_shd(tmp_path / "bad.h5", times, units, labels, speakers, KEYS)
    with h5py.File(path, "a") as f:
        f.attrs[attr] = value
    for read in (load, cochlea_of) if attr == "cochlea" else (load,):
        with pytest.raises(DataError) as e:
            read(path)
        assert str(e.value).startswith(f"{path}: ") and words in str(e.value)


def _set(times, units, labels=None, speakers=None):
    n = len(times)
    return SpikeSet([np.asarray(t, float) for t in times], [np.asarray(u) for u in units],
                    np.zeros(n, np.int64) if labels is None else np.asarray(labels),
                    np.arange(n) if speakers is None else np.asarray(speakers), KEYS)


def test_bin_counts_by_hand():
    s = _set([[0.0, 0.004, 0.0099, 0.010, 0.025, 0.025], [0.001]],
             [[0, 4, 5, 9, 699, 695], [3]])
    b = bin_counts(s)
    assert b.x.shape == (2, 3, 140) and b.x.dtype == np.int16
    want = np.zeros((2, 3, 140), np.int16)
    want[0, 0, 0] = 2        # units 0 and 4 in frame 0
    want[0, 0, 1] = 1        # unit 5
    want[0, 1, 1] = 1        # unit 9 at 10 ms: frame 1
    want[0, 2, 139] = 2      # units 695 and 699 at 25 ms
    want[1, 0, 0] = 1
    assert np.array_equal(b.x, want)
    assert list(b.lengths) == [3, 1]
    assert b.max_count == 2 and b.in_bits == 2
    assert not b.x[1, 1:].any()                       # padding is zero
    x, lengths = b                                     # unpacks like a pair
    assert x is b.x


def test_bin_counts_groups_steps_and_truncation():
    times, units, labels, speakers = _toy(5)
    s = _set(times, units, labels, speakers)
    x1 = bin_counts(s, group=1).x
    x5 = bin_counts(s, group=5).x
    assert x1.shape[2] == 700 and x5.shape[2] == 140
    assert np.array_equal(x1.reshape(*x1.shape[:2], 140, 5).sum(axis=3), x5)
    assert x5.sum() == sum(t.size for t in times)
    assert bin_counts(s, steps=40).x.shape[1] == 40
    with pytest.raises(DataError, match="truncate=True"):
        bin_counts(s, steps=10)
    b = bin_counts(s, steps=10, truncate=True)
    assert b.x.shape[1] == 10 and b.lengths.max() == 10
    assert b.x.sum() == sum(int((t < 0.1).sum()) for t in times)
    with pytest.raises(ValueError, match="group"):
        bin_counts(s, group=3)


def test_splits():
    times, units, _, _ = _toy(40)
    s = _set(times, units, np.arange(40) % 20, np.arange(40) % 8)
    tr, va = speaker_split(s, 0.25, seed=1)
    assert np.intersect1d(s.speakers[tr], s.speakers[va]).size == 0
    assert sorted(np.concatenate([tr, va])) == list(range(40))
    assert len(va) == 10
    a, b = random_split(s, 0.2, seed=3)
    assert len(b) == 8 and len(a) == 32 and np.intersect1d(a, b).size == 0
    assert np.array_equal(random_split(40, 0.2, seed=3)[1], b)
    with pytest.raises(DataError, match="2 speakers"):
        speaker_split(_set(times[:3], units[:3], speakers=[0, 0, 0]))


def test_augment_blocks_shift_and_blend():
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, (6, 30, 8)).astype(np.int16)
    y = np.array([0, 0, 0, 1, 1, 2])
    xa, ya = augment(x, y, np.random.default_rng(1), copies=3, max_shift=3)
    assert xa.shape == (18, 30, 8) and list(ya) == list(y) * 3
    assert np.array_equal(xa[:6], x)
    # shifted block: every channel is the original channel moved by one shift in [-3, 3]
    for i in range(6):
        for c in range(8):
            col = xa[6 + i, :, c]
            assert any(np.array_equal(col, _shift(x[i, :, c], k)) for k in range(-3, 4))
    # the sample alone in its class (label 2) is shifted, not blended
    assert xa[12 + 5].sum() <= x[5].sum()
    # blend: thinned halves of two same-class samples, never more than their sum
    assert (xa[12:17] >= 0).all()
    assert np.array_equal(augment(x, y, np.random.default_rng(1), copies=3, max_shift=3)[0], xa)
    assert np.array_equal(augment(x, y, rng, copies=2, max_shift=0)[0][6:], x)


def test_blend_of_identical_samples_without_thinning_doubles_them():
    x = np.zeros((2, 20, 4), np.int16)
    x[:, 5:9, 1] = 2
    xa, _ = augment(x, np.array([3, 3]), np.random.default_rng(0), copies=3, thin=1.0)
    assert np.array_equal(xa[4:], 2 * x)
    # thinning halves the count on average
    big = np.full((2, 50, 20), 10, np.int16)
    xb, _ = augment(big, np.array([0, 0]), np.random.default_rng(0), copies=3, thin=0.5)
    assert abs(xb[4:].mean() - 10.0) < 0.2


def _shift(col, k):
    out = np.zeros_like(col)
    if k >= 0:
        out[k:] = col[:col.size - k]
    else:
        out[:k] = col[-k:]
    return out


def test_pack_round_trip_is_exact():
    times, units, labels, speakers = _toy(10, seed=5)
    # one unit spikes once per frame at most (pack's grid)
    keep = [np.unique(np.round(t * 1e3 - .5).astype(int) * 1000 + u, return_index=True)[1]
            for t, u in zip(times, units)]
    # ... and, within a frame, in increasing unit order (pack's canonical order)
    keep = [k[np.lexsort((u[k], t[k]))] for t, u, k in zip(times, units, keep)]
    times = [t[k] for t, k in zip(times, keep)]
    units = [u[k] for u, k in zip(units, keep)]
    arrays = pack(_set(times, units, labels, speakers))
    t2, u2 = unpack(arrays)
    for a, b, c, d in zip(times, t2, units, u2):
        assert np.allclose(a, b) and np.array_equal(c, d)


def test_logistic_baseline_separates_an_easy_toy():
    rng = np.random.default_rng(0)
    times, units, labels = [], [], []
    for i in range(80):
        y = i % 4
        t = np.sort(rng.uniform(0, 0.3, 50))
        times.append(t)
        units.append(rng.integers(100 * y, 100 * y + 100, 50).astype(np.uint16))
        labels.append(y)
    s = _set(times, units, labels)
    r = logistic_baseline(s.subset(np.arange(60)), s.subset(np.arange(60, 80)))
    assert r["train_acc"] == 1.0 and r["test_acc"] == 1.0 and r["chance"] == 0.25


def test_default_data_is_twenty_classes_with_unseen_test_speakers():
    train_path, test_path = default_data()
    train, test = load(train_path), load(test_path)
    assert train.n_classes == test.n_classes == 20
    assert train.keys[:3] == ["zero", "one", "two"] and train.keys[10] == "null"
    assert set(train.labels) == set(test.labels) == set(range(20))
    assert np.intersect1d(train.speakers, test.speakers).size == 0
    assert len(train) >= 1000 and len(test) >= 200
    assert default_data() == (train_path, test_path)          # cached


def test_cli_data_info(tmp_path, capsys):
    from polychrony_cli import main
    times, units, labels, speakers = _toy(4)
    path = write_shd(tmp_path / "a.h5", times, units, labels, speakers, KEYS)
    assert main(["data", "info", str(path), "--json"]) == 0
    import json
    info = json.loads(capsys.readouterr().out)
    assert info["samples"] == 4 and info["classes"] == 20 and info["speakers"] == 2
    assert info["max_count"] == bin_counts(load(path)).max_count
    assert info["steps"] == bin_counts(load(path)).x.shape[1]
    assert main(["data", "info", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5: no such file" in capsys.readouterr().err


def test_spike_augment_shifts_stretches_and_drops():
    """Off, it is the identity; a channel shift moves the spectrum and fills with zeros; a
    stretch of 2 puts frame t's counts on frame 2t (totals kept inside the window); dropout
    keeps about its share of the counts."""
    from model.audio.shd import spike_augment
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (3, 20, 140))
    same = spike_augment(x, rng, shift=0, stretch=(1.0, 1.0), keep=(1.0, 1.0))
    np.testing.assert_array_equal(same, x)
    one = x[:1].copy()
    moved = spike_augment(one, np.random.default_rng(3), shift=4, stretch=(1.0, 1.0),
                          keep=(1.0, 1.0))
    k = int(np.random.default_rng(3).integers(-4, 5, 1)[0])
    assert k != 0
    np.testing.assert_array_equal(moved[0], np.roll(one[0], k, axis=1) *
                                  (np.arange(140) >= k if k > 0 else np.arange(140) < 140 + k))
    slow = spike_augment(x, rng, shift=0, stretch=(2.0, 2.0), keep=(1.0, 1.0))
    np.testing.assert_array_equal(slow[:, 0:20:2], x[:, :10])
    assert not slow[:, 1::2].any()
    thin = spike_augment(np.full((50, 20, 140), 10), rng, shift=0, stretch=(1.0, 1.0),
                         keep=(0.5, 0.5))
    assert thin.mean() == pytest.approx(5.0, rel=0.02)
    with pytest.raises(ValueError, match="stretch"):
        spike_augment(x, rng, stretch=(0.0, 1.0))
