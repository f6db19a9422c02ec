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
