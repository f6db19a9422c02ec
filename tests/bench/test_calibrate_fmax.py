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
    try ran out of time) and the hand-kept list of stopped builds (but its retired entries);
    the LUT4 shares are the
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
                                     "lanes": 48, "rows": None},
                                    {"network": "wm", "board": "ulx3s-85f", "core": "network",
                                     "lanes": 32, "rows": None,
                                     "retired": "routes on the current logic"}]))
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


def _line_points(a, b, w, grade="6", factor=1.0, jitter=()):
    """Builds lying on ``a - b ln((lut + w bram) / 1000)`` (times ``factor``), each moved by
    the matching ``jitter`` MHz."""
    import math
    sizes = [(1000, 6), (4000, 5), (9000, 140), (16000, 100), (22000, 75), (32000, 66),
             (42000, 65), (2000, 20)]
    out = []
    for i, (lut, bram) in enumerate(sizes):
        f = (a - b * math.log((lut + w * bram) / 1000)) * factor
        f += jitter[i] if i < len(jitter) else 0.0
        out.append({"core": "network", "family": "ecp5", "grade": grade, "lut": lut,
                    "bram": bram, "fmax": f})
    return out


def test_size_model_recovers_a_line_and_lowers_it_to_the_clock_margin():
    """Builds exactly on a line: the fit finds its slope and block-RAM weight, and lowers
    the line just enough that the clock set below it (5 % margin) meets every build."""
    import math
    from bench.calibrate_fmax import fit_size
    pts = _line_points(90.0, 10.0, 50)
    m = fit_size(pts, margin=0.05)["network"]["ecp5"]
    assert m["lut_per_block"] == 50 and abs(m["b"] - 10.0) < 1e-3
    for p in pts:
        pred = m["a"] - m["b"] * math.log((p["lut"] + 50 * p["bram"]) / 1000)
        assert 0.95 * pred <= p["fmax"] + 1e-6
    # exactly on the line needs no lowering beyond the margin's own
    assert m["a"] <= 90.0 and m["builds"] == len(pts)


def test_size_model_leaves_out_at_most_a_tenth_and_scales_faster_grades():
    """One build far below the line (a bad seed) is one of the tenth allowed to miss; the
    faster grade's factor is the least ratio its builds showed, never more."""
    import math
    from bench.calibrate_fmax import fit_size
    slow = _line_points(90.0, 10.0, 0, jitter=[0, 0, 0, 0, 0, 0, -20.0])
    fast = _line_points(90.0, 10.0, 0, grade="8", factor=1.3, jitter=[-5.0])
    m = fit_size(slow + fast, margin=0.05)["network"]["ecp5"]
    assert m["grade"] == "6" and 1.0 < m["grade_factor"]["8"] <= 1.3
    misses = 0
    for p in slow + fast:
        pred = (m["a"] - m["b"] * math.log((p["lut"] + m["lut_per_block"] * p["bram"]) / 1000))
        pred *= m["grade_factor"].get(p["grade"], 1.0)
        misses += 0.95 * pred > p["fmax"] + 1e-6
    assert 1 <= misses <= len(slow + fast) // 10


def test_size_model_needs_enough_builds():
    from bench.calibrate_fmax import MIN_BUILDS, fit_size
    assert fit_size(_line_points(90.0, 10.0, 0)[:MIN_BUILDS - 1], margin=0.05) == {}


def test_expected_fmax_uses_the_size_model_with_a_size_and_the_table_without(
        monkeypatch, tmp_path):
    import math
    import rtl.calibration as cal
    path = tmp_path / "calibration.json"
    path.write_text(cal.PATH.read_text())
    monkeypatch.setattr(cal, "PATH", path)
    cal.calibration.cache_clear()
    try:
        cal.write_calibration("fmax_size", "network", {"ecp5": {
            "a": 80.0, "b": 10.0, "lut_per_block": 50, "grade": "6",
            "grade_factor": {"8": 1.25}, "builds": 9, "floor": 30.0}})
        cal.write_calibration("fmax_mhz", "network", {"ecp5": [[256, 61.0]]})
        net = CORES["network"]
        want = 80.0 - 10.0 * math.log((9000 + 50 * 20) / 1000)
        assert net.expected_fmax("ecp5", 16, lut=9000, bram=20, grade="6") == \
            (round(want, 2), True)
        assert net.expected_fmax("ecp5", 16, lut=9000, bram=20, grade="8") == \
            (round(want * 1.25, 2), True)
        assert net.expected_fmax("ecp5", 16, lut=10 ** 9, bram=0) == (30.0, True)  # floor
        assert net.expected_fmax("ecp5", 16) == (61.0, True)        # no size: the table
        assert net.expected_fmax("ice40", 16, lut=9000)[0] != round(want, 2)
    finally:
        cal.calibration.cache_clear()


def test_lane_tables_are_in_the_reference_grade_and_scaled_back(monkeypatch, tmp_path):
    """A faster grade's builds enter the lane table divided by the grade's factor (the size
    model's, fitted on the most builds of the family), and the table's figure is multiplied
    by it again for a board of that grade."""
    import json
    import rtl.calibration as cal
    from bench.calibrate_fmax import fit, grade_factors, records
    sizes = {"network": {"ecp5": {"grade_factor": {"8": 1.25}, "builds": 30}},
             "stack": {"ecp5": {"grade_factor": {"8": 2.0}, "builds": 3}}}
    grades = grade_factors(sizes)
    assert grades == {"ecp5": {"8": 1.25}}
    path = tmp_path / "boards.json"
    path.write_text(json.dumps([
        {"board": "orangecrab-85f", "core": "stack", "lanes": 32, "fmax_mhz": 50.0},
        {"board": "ulx3s-85f", "core": "stack", "lanes": 32, "fmax_mhz": 40.0}]))
    recs = records([path], grade_factor=grades)
    assert sorted(r["fmax"] for r in recs) == [40.0, 40.0]
    assert fit(recs) == {"stack": {"ecp5": [[256, 40.0]]}}
    calib = tmp_path / "calibration.json"
    calib.write_text(cal.PATH.read_text())
    monkeypatch.setattr(cal, "PATH", calib)
    cal.calibration.cache_clear()
    try:
        cal.write_calibration("fmax_mhz", "stack", {"ecp5": [[256, 40.0]]})
        cal.write_calibration("grade_factor", "ecp5", {"8": 1.25})
        assert CORES["stack"].expected_fmax("ecp5", 32, grade="8") == (50.0, True)
        assert CORES["stack"].expected_fmax("ecp5", 32, grade="6") == (40.0, True)
    finally:
        cal.calibration.cache_clear()
