"""bench.calibrate_fmax: medians by core, family and lanes, the last entry for every lane count
above it; the table it writes is the one the choice reads."""

from rtl.cores import CORES


def test_fit_takes_medians_per_lanes_and_the_last_covers_the_rest():
    from bench.calibrate_fmax import fit
    recs = [{"core": "network", "family": "ecp5", "lanes": 1, "fmax": f} for f in (70, 90, 80)]
    recs += [{"core": "network", "family": "ecp5", "lanes": 16, "fmax": 60.0},
             {"core": "lean", "family": "ice40", "lanes": 4, "fmax": 23.4}]
    assert fit(recs) == {"network": {"ecp5": [[1, 80.0], [256, 60.0]]},
                         "lean": {"ice40": [[256, 23.4]]}}


def test_the_choice_reads_the_written_table(monkeypatch, tmp_path):
    import json
    import rtl.calibration as cal
    path = tmp_path / "calibration.json"
    path.write_text(cal.PATH.read_text())
    monkeypatch.setattr(cal, "PATH", path)
    cal.calibration.cache_clear()
    try:
        cal.write_calibration("fmax_mhz", "network", {"ecp5": [[2, 99.0], [256, 33.0]]})
        assert json.loads(path.read_text())["fmax_mhz"]["network"]["ecp5"][0] == [2, 99.0]
        assert CORES["network"].expected_fmax("ecp5", 1) == (99.0, True)
        assert CORES["network"].expected_fmax("ecp5", 8) == (33.0, True)
        assert CORES["stack"].expected_fmax("ice40", 8)[1] is False     # the default
    finally:
        cal.calibration.cache_clear()


def test_routing_limits_come_from_builds_that_routed_and_failed(tmp_path, monkeypatch, shaped):
    """The widest build that routed and the narrowest that failed, per core and family, from
    the board records (an automatic build's failed tries count when the router failed or the
    try ran out of time) and the hand-kept list of stopped builds; the LUT4 shares are the
    current estimate's, and a failure as wide as a routed build is put down to its width."""
    import json
    import bench.boards
    from bench.calibrate_fmax import route_records, routing
    from polychrony_cli.steps import samples_of
    net = shaped.wm_network(64, 8, w_bits=4, seed=0)
    monkeypatch.setattr(bench.boards, "_network",
                        lambda name: (net, samples_of(net, steps=5, seed=0)))
    boards = tmp_path / "boards.json"
    boards.write_text(json.dumps([
        {"key": "wm|ulx3s-85f|16|", "board": "ulx3s-85f", "lanes": 16, "fmax_mhz": 70.0},
        {"key": "wm|ulx3s-85f|8|", "board": "ulx3s-85f", "lanes": 8, "fmax_mhz": 80.0},
        {"key": "wm|icebreaker|auto", "board": "icebreaker", "lanes": 4, "fmax_mhz": 20.0,
         "core": "network",
         "tries": [{"core": "network", "lanes": 8, "rows": None, "result": "failed: ERROR: "
                    "Unable to place cell 'x', no BELs remaining"},
                   {"core": "network", "lanes": 2, "rows": None,
                    "result": "failed: build did not finish within 45 minutes (stopped)"},
                   {"core": "network", "lanes": 4, "rows": None, "result": "timing met"}]},
    ]))
    failures = tmp_path / "failures.json"
    failures.write_text(json.dumps([{"network": "wm", "board": "ulx3s-85f", "core": "network",
                                     "lanes": 48, "rows": None}]))
    recs = route_records([boards], failures)
    assert sorted((r["lanes"], r["routed"]) for r in recs) == \
        [(2, False), (4, True), (8, True), (16, True), (48, False)]   # placement is no route
    limits = routing(recs)
    ecp5, ice40 = limits["network"]["ecp5"], limits["network"]["ice40"]
    assert (ecp5["routed"], ecp5["failed"]) == (64, 192)
    assert ice40["routed"] == 16 and "failed" not in ice40
    # 48 lanes failed wider than anything routed: width, not fullness; 2 lanes failed no
    # wider than a routed build: fullness
    assert "failed_lut_share" not in ecp5
    assert 0 < ice40["failed_lut_share"] < ice40["routed_lut_share"] < 1
    assert 0 < ecp5["routed_lut_share"] < 1
