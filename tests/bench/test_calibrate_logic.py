"""The case selection of bench.calibrate_logic (the builds themselves run on demand)."""

import pytest

from bench.calibrate_logic import parse_cases


def test_parse_cases_numbers_and_ranges():
    assert parse_cases("3", 20) == {3}
    assert parse_cases("0-4", 20) == {0, 1, 2, 3, 4}
    assert parse_cases("1, 6-7,19", 20) == {1, 6, 7, 19}


@pytest.mark.parametrize("spec, words", [
    ("20", "within the 20 cases"), ("5-2", "within the 20 cases"), ("0-20", "0-19"),
    ("a", "not a case number"), ("1,,2", "not a case number"), ("-3", "not a case number"),
])
def test_parse_cases_refuses(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_cases(spec, 20)


def _rec(key, board, lanes, used, design="abc", **kw):
    return dict(key=key, board=board, lanes=lanes, design=design,
                nextpnr={"logic": {"used": used, "available": 83640}}, **kw)


def test_link_pairs_takes_current_demo_builds_of_the_family():
    from bench.calibrate_logic import link_pairs
    cases = [{"name": "demo wm", "lanes": 1, "lut": 1200}, {"name": "demo wm", "lanes": 32,
                                                            "lut": 8000},
             {"name": "shd conv", "lanes": 1, "lut": 99999}]
    records = [
        _rec("wm-demo|ulx3s-85f|auto", "ulx3s-85f", 32, 11000),
        _rec("wm-demo|ulx3s-25f|1|", "ulx3s-25f", 1, 2700),
        _rec("wm-demo|ulx3s-45f|1|", "ulx3s-45f", 1, 2600, design=None),   # older record
        _rec("wm-demo|icebreaker|1|", "icebreaker", 1, 3000),               # other family
        _rec("wm-demo|ulx3s-12f|16|", "ulx3s-12f", 16, 7000),               # no core alone
        _rec("delrec|ulx3s-85f|auto", "ulx3s-85f", 32, 30000),              # other network
        _rec("wm-demo|orangecrab-85f|auto", "orangecrab-85f", 32, 11100, core="stack"),
        dict(_rec("wm-demo|colorlight-5a75b|auto", "colorlight-5a75b", 32, 1), error="x"),
    ]
    assert link_pairs("ecp5", cases, records) == [(1, 1500), (32, 3000)]


def test_fit_link_line_and_refusal():
    from bench.calibrate_logic import fit_link
    assert fit_link([(1, 1250), (32, 2800), (32, 2800), (16, 2000)]) == {
        "lut": 1200, "lut_per_lane": 50.0}
    with pytest.raises(ValueError, match=r"two lane counts.*\[32\]"):
        fit_link([(32, 2800), (32, 2900)])
