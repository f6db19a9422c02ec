"""Sweeps of the working-memory network: grids, resume, perturbations, summary, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

from model.wm import grids, perturb, sweep  # noqa: E402
from model.wm.network import make_targets  # noqa: E402
from model.wm.recall import trial_forcing  # noqa: E402

TINY = {"name": "t", "base": dict(n=24, d=8, m=1, t=40, p=0.04, pre=5, w_bits=4),
        "axes": {"m": [1, 2]}, "seeds": [0, 1]}


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# --------------------------------------------------------------------------------------------
# Grids

def test_expand_product_and_union():
    g = grids.load_grid({"axes": [{"m": [1, 2], "n": [16, 32]}, {"m": [1], "n": [16]},
                               {"perturb": ["flip"], "level": [0.1]}],
                      "base": {"t": 40, "d": 8}, "seeds": "0-2"})
    pts = grids.expand_grid(g)
    # 4 + 0 (duplicate) + 1 combinations, 3 seeds each
    assert len(pts) == 15
    assert len({p["key"] for p in pts}) == 15
    assert {p["settings"]["m"] for p in pts} == {1, 2, grids.DEFAULTS["m"]}
    assert all(p["settings"]["t"] == 40 for p in pts)
    assert pts[0]["axes"] == ["m", "n", "perturb", "level"]


@pytest.mark.parametrize("grid, words", [
    ({"axes": {"mm": [1]}}, ["'mm'", "unknown setting"]),
    ({"axes": {"m": []}}, ["'m'", "non-empty list"]),
    ({"axes": {"m": [1]}, "bogus": 1}, ["'bogus'"]),
    ({"base": {"n": "big"}, "axes": {"m": [1]}}, ["'n'", "int"]),
    ({"base": {"t": 10, "d": 10}, "axes": {"m": [1]}}, ["d < t"]),
    ({"axes": {"perturb": ["wobble"]}}, ["perturb"]),
    ({"axes": {"perturb": ["truncate"], "level": [99]}}, ["truncate", "99"]),
    ({"axes": {"m": [1]}, "seeds": [-1]}, ["seeds"]),
    ({"base": {"t": 100}}, ["'axes'"]),
])
def test_bad_grid_file_names_file_and_key(tmp_path, grid, words):
    f = tmp_path / "mygrid.json"
    f.write_text(json.dumps(grid))
    with pytest.raises(grids.GridError) as e:
        grids.load_grid(str(f))
    msg = str(e.value)
    assert "mygrid.json" in msg
    for w in words:
        assert w in msg


def test_bad_grid_json_and_missing(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text("{not json")
    with pytest.raises(grids.GridError, match="broken.json.*not valid JSON"):
        grids.load_grid(str(f))
    with pytest.raises(grids.GridError, match="no grid named 'nope'"):
        grids.load_grid("nope")


def test_parse_seeds():
    assert grids.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert grids.parse_seeds("7,0,2-3") == [0, 2, 3, 7]
    for bad in ("", "4-1", "a", "-3"):
        with pytest.raises(grids.GridError):
            grids.parse_seeds(bad)


def test_builtin_grids_validate():
    for name in grids.GRIDS:
        if name == "capacity" or "hebbian" in name:
            continue
        g = grids.load_grid(name)
        assert grids.expand_grid(g), name


# --------------------------------------------------------------------------------------------
# Runner and resume

def test_run_and_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    r1 = sweep.run_grid(TINY, out, jobs=2, progress=False)     # spawned workers
    assert r1["points"] == 4 and r1["computed"] == 4 and r1["done_before"] == 0
    recs = _lines(out)
    assert len(recs) == 4
    for r in recs:
        assert 0.0 <= r["f1_float"] <= 1.0 and 0.0 <= r["f1_int"] <= 1.0
        assert r["load"] == pytest.approx(r["settings"]["m"] * 32 / (24 * 8))
        assert r["seconds"] >= 0
    # Rerun: nothing new, file unchanged.
    before = out.read_text()
    r2 = sweep.run_grid(TINY, out, jobs=1, progress=False)
    assert r2["computed"] == 0 and r2["done_before"] == 4
    assert out.read_text() == before
    # Partial file (two points kept, plus a torn last line) resumes the rest only.
    lines = before.splitlines()
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:30])
    r3 = sweep.run_grid(TINY, out, jobs=1, progress=False)
    assert r3["computed"] == 2 and r3["done_before"] == 2
    recs3 = _lines(out)
    assert len(recs3) == 4 and len({r["key"] for r in recs3}) == 4
    # Same results as the first (parallel) run, point by point (seeded).
    f1 = {r["key"]: r["f1_int"] for r in recs}
    assert all(f1[r["key"]] == r["f1_int"] for r in recs3)


def test_more_seeds_extends(tmp_path):
    out = tmp_path / "r.jsonl"
    sweep.run_grid(TINY, out, jobs=1, progress=False, seeds="0")
    r = sweep.run_grid(TINY, out, jobs=1, progress=False, seeds="0-1")
    assert r["done_before"] == 2 and r["computed"] == 2


def test_bad_results_line_is_an_error(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"key": "a"}\ngarbage\n{"key": "b"}\n')
    with pytest.raises(grids.GridError, match="r.jsonl: line 2"):
        sweep.read_results(out)


def test_shared_weights_one_solve(monkeypatch):
    """Points that differ only in evaluation settings are one group (one solve)."""
    g = grids.load_grid({**TINY, "axes": {"w_bits": [3, 4, 6]}, "seeds": [0]})
    groups = sweep._groups(grids.expand_grid(g), "t", None)
    assert len(groups) == 1 and len(groups[0]["points"]) == 3
    g2 = grids.load_grid({**TINY, "axes": {"m": [1, 2]}, "seeds": [0]})
    assert len(sweep._groups(grids.expand_grid(g2), "t", None)) == 2


def test_weight_cache_gives_same_results(tmp_path):
    g = {**TINY, "seeds": [0], "axes": {"w_bits": [4]}}
    a = sweep.run_grid(g, tmp_path / "a.jsonl", jobs=1, progress=False, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("w-*.npy"))) == 1
    b = sweep.run_grid(g, tmp_path / "b.jsonl", jobs=1, progress=False, cache_dir=tmp_path / "c")
    assert b["records"][0].get("cached") is True
    assert a["records"][0]["f1_int"] == b["records"][0]["f1_int"]
    assert a["records"][0]["f1_float"] == b["records"][0]["f1_float"]


# --------------------------------------------------------------------------------------------
# Perturbations

@pytest.fixture
def trial():
    x = make_targets(3, 40, 60, 0.05, seed=3)
    f = trial_forcing(x, 10, pre=7, p=0.05, seed=3)
    return x, f


@pytest.mark.parametrize("frac", [0.0, 0.01, 0.1, 0.5])
def test_flip_exact_count(trial, frac):
    _, f = trial
    g, k = perturb.flip_cue_bits(f, pre=7, d=10, frac=frac, seed=1)
    bits = 40 * 10
    diff = f ^ g
    per = diff.reshape(3, -1).sum(1)
    assert np.all(per == round(frac * bits)) and np.all(k == round(frac * bits))
    # Only the cue window changes; both directions occur at large fractions.
    assert not diff[:, :7].any() and not diff[:, 17:].any()
    if frac >= 0.1:
        assert (f & ~g).any() and (~f & g).any()


def test_flip_nested(trial):
    _, f = trial
    lo, _ = perturb.flip_cue_bits(f, pre=7, d=10, frac=0.05, seed=4)
    hi, _ = perturb.flip_cue_bits(f, pre=7, d=10, frac=0.2, seed=4)
    assert not ((f ^ lo) & ~(f ^ hi)).any()


def test_move_keeps_count(trial):
    _, f = trial
    g, moved = perturb.move_cue_spikes(f, pre=7, d=10, frac=0.5, seed=2)
    cue_f, cue_g = f[:, 7:17], g[:, 7:17]
    assert np.array_equal(cue_f.sum((1, 2)), cue_g.sum((1, 2)))
    removed = (cue_f & ~cue_g).sum((1, 2))
    assert np.array_equal(removed, moved)
    assert np.array_equal(moved, np.round(0.5 * cue_f.sum((1, 2))).astype(int))
    assert np.array_equal(f[:, :7], g[:, :7]) and np.array_equal(f[:, 17:], g[:, 17:])


@pytest.mark.parametrize("c", [0, 4, 10])
def test_truncate(trial, c):
    _, f = trial
    g = perturb.truncate_cue(f, pre=7, d=10, c=c)
    assert not g[:, 7 + c:].any()
    assert np.array_equal(g[:, :7 + c], f[:, :7 + c])
    with pytest.raises(ValueError):
        perturb.truncate_cue(f, pre=7, d=10, c=11)


def test_silenced_neurons_never_fire():
    k = 10
    mask = perturb.silence_mask(32, k, seed=5)
    assert mask.sum() == k
    s = {**grids.DEFAULTS, **TINY["base"], "n": 32, "perturb": "silence", "level": k}
    from model.wm.event import run_trials
    from model.wm.network import least_squares_init
    x = make_targets(2, 32, 48, 0.035, seed=0)
    w = least_squares_init(x, 8)
    forced, sil, _ = perturb.perturbed_trial(x, s, 0)
    assert np.array_equal(sil, perturb.silence_mask(32, k, seed=0))
    tr = run_trials(w, forced, silence=sil).s.numpy()
    free = run_trials(w, forced).s.numpy()
    assert free[:, :, sil].any()          # they would fire ...
    assert not tr[:, :, sil].any()        # ... but do not


def test_noise_only_in_free_recall(trial):
    _, f = trial
    g = perturb.add_recall_noise(f, start=17, stop=67, q=0.2, seed=0)
    assert np.array_equal(g[:, :17], f[:, :17])
    added = g[:, 17:67] & ~f[:, 17:67]
    assert abs(added.mean() - 0.2) < 0.03
    assert not (f & ~g).any()


def test_robustness_points_run(tmp_path):
    g = {"base": dict(n=32, d=16, m=2, t=48, p=0.035, pre=10, w_bits=4), "seeds": [0],
         "axes": [{"perturb": ["none"]}, {"perturb": ["truncate"], "level": [0]},
                  {"perturb": ["silence"], "level": [4]}, {"perturb": ["flip"], "level": [0.02]}]}
    r = sweep.run_grid(g, tmp_path / "rob.jsonl", jobs=1, progress=False)
    by = {(x["settings"]["perturb"]): x for x in r["records"]}
    assert by["none"]["f1_float"] == 1.0          # the demo setting recalls perfectly
    assert by["truncate"]["f1_float"] < 0.5       # no cue: no recall
    assert "f1_float_active" in by["silence"]
    assert by["silence"]["f1_float"] < 1.0        # silenced neurons' target spikes are missed
    assert by["flip"]["bits_flipped"] == round(0.02 * 32 * 16)


# --------------------------------------------------------------------------------------------
# Summary

def test_summary_statistics(tmp_path):
    f = tmp_path / "hand.jsonl"
    base = dict(grids.DEFAULTS)
    recs = []
    vals = {4: [1.0, 0.5, 0.75], 8: [0.2]}
    for m, fs in vals.items():
        for seed, v in enumerate(fs):
            recs.append({"key": f"{m}-{seed}", "settings": {**base, "m": m}, "seed": seed,
                         "axes": ["m"], "f1_float": v, "f1_int": None if m == 8 else v / 2})
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = sweep.summarise(sweep.read_results(f))
    assert [r["m"] for r in rows] == [4, 8]
    r4, r8 = rows
    assert r4["count"] == 3 and r4["f1_float_mean"] == pytest.approx(0.75)
    assert r4["f1_float_std"] == pytest.approx(0.25)      # sample std of 1, .5, .75
    assert r4["f1_float_min"] == 0.5
    assert r4["f1_int_mean"] == pytest.approx(0.375) and r4["f1_float_median"] == 0.75
    assert r8["count"] == 1 and r8["f1_float_std"] == 0.0
    assert r8["n_f1_int"] == 0 and r8["f1_int_mean"] is None
    table = sweep.format_summary(rows, ["m"])
    assert "0.7500 ± 0.2500 (3)" in table and "| 8 |" in table


def test_capacity_m_max():
    rows = [{"n": 64, "d": 8, "t": 40, "m": m, "f1_float_mean": f}
            for m, f in ((2, 1.0), (4, 0.995), (6, 0.9), (8, 1.0))]
    rows += [{"n": 32, "d": 8, "t": 40, "m": 2, "f1_float_mean": 0.5}]
    caps = {c["n"]: c for c in sweep.capacity(rows)}
    assert caps[64]["m_max"] == 8          # the largest M passing, as defined
    assert caps[64]["m_max_median"] is None  # no median given in these rows
    assert caps[32]["m_max"] is None and caps[32]["m_break"] is None
    assert caps[64]["m_break"] is None
    rows2 = rows + [{"n": 64, "d": 8, "t": 40, "m": 10, "f1_float_mean": 0.3}]
    assert {c["n"]: c for c in sweep.capacity(rows2)}[64]["m_break"] == 10
    assert caps[64]["ls_estimate"] == pytest.approx(0.8 * 64 * 8 / 32)


# --------------------------------------------------------------------------------------------
# Plots and CLI

def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    from model.wm import plots as wp
    from model.wm.event import run_trials
    from model.wm.network import least_squares_init
    x = make_targets(2, 32, 48, 0.035, seed=0)
    w = least_squares_init(x, 16)
    s = run_trials(w, trial_forcing(x, 16, pre=10, p=0.035, seed=0)).s.numpy()
    c, f1 = wp.f1_over_time(x, s, d=16, pre=10, window=8)
    assert f1.shape == c.shape and np.all((0 <= f1) & (f1 <= 1))
    assert np.allclose(f1, 1.0)                     # perfect recall here
    c0, f0 = wp.f1_over_time(x, np.zeros_like(s), d=16, pre=10, window=8)
    assert f0.max() < 1.0                           # silence misses the targets
    for p in (wp.plot_raster(x, s, d=16, pre=10, out=tmp_path / "r.png"),
              wp.plot_f1_time({"a": (c, f1)}, d=16, out=tmp_path / "f.png")):
        assert p.stat().st_size > 1000


def test_cli_tiny_grid(tmp_path, capsys):
    from polychrony_cli import main
    g = tmp_path / "g.json"
    g.write_text(json.dumps(TINY))
    out = tmp_path / "res.jsonl"
    assert main(["sweep", "--grid", str(g), "--out", str(out), "--jobs", "1", "--quiet",
                 "--plot", str(tmp_path / "p.png")]) == 0
    text = capsys.readouterr().out
    assert "4 computed" in text and "| m |" in text
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert main(["sweep", "--grid", str(g), "--out", str(out), "--jobs", "1", "--quiet",
                 "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["computed"] == 0 and js["done_before"] == 4 and len(js["summary"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"axes": {"q": [1]}}))
    assert main(["sweep", "--grid", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "'q'" in err


def test_runaway_guard_bounds_f1(monkeypatch):
    """A pattern stopped as runaway gets an F1 upper bound; never below the exact F1."""
    from model.wm.event import run_trials
    from model.wm.network import least_squares_init
    s = {**grids.DEFAULTS, "n": 32, "d": 8, "m": 6, "t": 140, "p": 0.04, "pre": 5}
    x = make_targets(6, 32, 140, 0.04, seed=1)
    w = least_squares_init(x, 8)
    f = trial_forcing(x, 8, pre=5, p=0.04, seed=1)
    lif = dict(beta=205, beta_shift=8, reset="zero")
    exact = sweep._counts(x, run_trials(w, f).s.numpy(), 8, 5, 8, 140)
    c, _, run = sweep._recall_counts(w, f, x, s, "float", None, lif)
    assert not run.any() and np.array_equal(c, exact)       # nothing stopped: exact counts
    monkeypatch.setattr(sweep, "RUNAWAY_RATE", -1.0)           # every pattern "runs away"
    monkeypatch.setattr(sweep, "PROBE_STEPS", (10, 30))
    s2 = {**s, "p": -1.0}                                    # cap = max(-1, -20) < any rate
    cb, _, run = sweep._recall_counts(w, f, x, s2, "float", None, lif)
    assert run.all()
    assert np.all(cb[:, 0] >= exact[:, 0]) and np.all(cb[:, 1] <= exact[:, 1])
    assert np.all(cb[:, 2] <= exact[:, 2])
    assert sweep._f1s(cb)[0] >= sweep._f1s(exact)[0]


def test_summary_keeps_setting_n():
    """The seed count must not overwrite a scanned setting called ``n``."""
    recs = [{"key": f"{n}-{s}", "settings": {**grids.DEFAULTS, "n": n}, "seed": s, "axes": ["n"],
             "f1_float": 1.0} for n in (64, 128) for s in range(3)]
    rows = sweep.summarise(recs)
    assert [r["n"] for r in rows] == [64, 128] and all(r["count"] == 3 for r in rows)
    assert "| 64 |" in sweep.format_summary(rows, ["n"])
    caps = sweep.capacity(sweep.summarise([{**r, "axes": ["n", "d", "t", "m"]} for r in recs],
                                    by=["n", "d", "t", "m"]))
    assert sorted(c["n"] for c in caps) == [64, 128]


def test_train_init_runs(tmp_path):
    g = {"base": dict(n=24, d=8, m=2, t=40, p=0.04, pre=5, w_bits=6, init="train",
                      train_steps=2, modes=["float"]), "axes": {"m": [2]}, "seeds": [0]}
    r = sweep.run_grid(g, tmp_path / "tr.jsonl", jobs=1, progress=False)
    rec = r["records"][0]
    assert rec["settings"]["init"] == "train" and 0.0 <= rec["f1_float"] <= 1.0
    assert "f1_int" not in rec


def test_hebbian_needs_the_function(tmp_path):
    from model.wm import network as wm
    g = {"base": {"init": "hebbian"}, "axes": {"m": [2]}}
    if hasattr(wm, "hebbian_init"):
        assert grids.load_grid(g)["base"]["init"] == "hebbian"
        tiny = {"base": dict(n=24, d=8, m=2, t=40, p=0.04, pre=5, w_bits=6, init="hebbian",
                             modes=["float"]), "axes": {"m": [2]}, "seeds": [0]}
        rec = sweep.run_grid(tiny, tmp_path / "h.jsonl", jobs=1, progress=False)["records"][0]
        assert 0.0 <= rec["f1_float"] <= 1.0 and rec["w_max"] > 0
    else:
        with pytest.raises(grids.GridError, match="hebbian_init"):
            grids.load_grid(g)
