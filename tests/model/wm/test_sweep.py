"""model.wm.sweep: the runner, resume, silenced neurons, summary, plots and the CLI."""

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
