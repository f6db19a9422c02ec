"""bench.fmax_seeds: the critical path's ends from a nextpnr log, and the per-seed summary."""

import pytest

from bench.fmax_seeds import critical_path, main, summary

LOG = """Info: Max frequency for clock '$glbnet$clk': 102.88 MHz (PASS at 100.00 MHz)

Info: Critical path report for clock '$glbnet$clocks.lock_sync.sync_por_clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source inner.pos_TRELLIS_FF_Q_2.Q
Info:    routing  1.16  1.69 Net inner.buf_ready_LUT4_A_1_Z[1] (6,7) -> (5,9)
Info:                          Sink inner.enc_si_LUT4_B_Z.A
Info:                          Defined in:
Info:                               /work/main/rtl/link/host.py:370
Info:      logic  0.45  2.13 Source inner.enc_si_LUT4_B_Z.F
Info:    routing  2.20  9.52 Net inner.buf.0.0_ADB8 (7,8) -> (6,25)
Info:                          Sink inner.buf.0.0.ADB8
Info:      setup  0.20  9.72 Source inner.buf.0.0.ADB8
Info: 3.12 ns logic, 6.60 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge clk':
Info:     source  0.00  0.00 Source rst_buf.buf.buf0.O
Info: 0.66 ns logic, 1.91 ns routing
"""


def test_critical_path_reads_the_first_clock_report():
    assert critical_path(LOG) == {"from": "inner.pos_TRELLIS_FF_Q_2.Q",
                                  "to": "inner.buf.0.0.ADB8", "logic_ns": 3.12,
                                  "routing_ns": 6.6}
    assert critical_path("Info: no timing here\n") is None


def test_summary_gives_seed_one_median_and_least():
    recs = [{"network": "n", "board": "b", "lanes": 1, "target_mhz": 100.0, "seed": s,
             "fmax_mhz": f} for s, f in ((1, 109.2), (2, 113.3), (3, 115.8))]
    assert summary(recs) == [{"network": "n", "board": "b", "lanes": 1, "target_mhz": 100.0,
                              "seeds": [1, 2, 3], "seed1_mhz": 109.2, "median_mhz": 113.3,
                              "min_mhz": 109.2}]


def test_summary_keeps_cores_apart():
    recs = [{"network": "n", "board": "b", "lanes": 2, "target_mhz": 26.0, "seed": 1,
             "fmax_mhz": 27.0, **core} for core in ({}, {"core": "lean"})]
    rows = summary(recs)
    assert [r["network"] for r in rows] == ["n", "n (lean)"]


def test_summary_keeps_nextpnr_options_apart():
    recs = [{"network": "n", "board": "b", "lanes": 8, "target_mhz": 45.0, "seed": 1,
             "fmax_mhz": f, **o} for f, o in ((41.0, {}),
                                              (43.0, {"nextpnr_opts": "--placer-heap-beta 0.8"}))]
    assert [r["network"] for r in summary(recs)] == ["n", "n [--placer-heap-beta 0.8]"]


def test_summary_keeps_replicated_builds_apart():
    recs = [{"network": "n", "board": "b", "lanes": 98, "target_mhz": 60.0, "seed": 1,
             "fmax_mhz": f, **o} for f, o in ((49.0, {}), (52.8, {"replicate": "addresses only"}),
                                              (53.7, {"replicate": True}))]
    assert [r["network"] for r in summary(recs)] == [
        "n", "n (replicated: addresses only)", "n (replicated)"]


def test_summary_keeps_builds_asked_for_more_apart():
    recs = [{"network": "n", "board": "b", "lanes": 32, "target_mhz": 62.5, "seed": 1,
             "fmax_mhz": 103.37, **o} for o in ({}, {"headroom": 0.25}, {"headroom": 1.0})]
    assert [r["network"] for r in summary(recs)] == ["n", "n (asked 1.25x)", "n (asked 2x)"]


def test_summary_keeps_rows_apart():
    recs = [{"network": "n", "board": "b", "lanes": 32, "target_mhz": 40.0, "seed": 1,
             "core": "stack", "fmax_mhz": 42.5, **o}
            for o in ({}, {"rows": {"2": 2}}, {"rows": {"3": 4, "2": 2}})]
    assert [r["network"] for r in summary(recs)] == [
        "n (stack)", "n (stack) (rows 2=2)", "n (stack) (rows 2=2,3=4)"]


def test_rows_refused_off_the_stack_core(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--rows", "2=2", "--out", str(tmp_path / "r.json")])
    assert "--rows does not apply to the network core" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
