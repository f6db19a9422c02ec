"""model.wm.grids: grid files, expansion and seed lists."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

from model.wm import grids  # noqa: E402


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
