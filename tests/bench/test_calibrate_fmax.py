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
