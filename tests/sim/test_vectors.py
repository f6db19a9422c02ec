"""sim.vectors: vector bundles round-trip and bad files are refused."""

import numpy as np
import pytest

from sim.randnet import random_network
from sim.vectors import Bundle, load_bundle, make_bundle, save_bundle


# --------------------------------------------------------------------------------------------
# Vector bundles.

@pytest.mark.parametrize("seed, profile", [(4, "full"), (11, "full"), (2, "wm")])
def test_bundle_round_trip(tmp_path, seed, profile):
    net = random_network(seed, profile=profile)
    b = make_bundle(net, 25, seed)
    assert b.digest == net.digest and b.steps == 25
    assert b.replay(net) is None
    path = save_bundle(b, tmp_path / "v" / "bundle.npz")
    c = load_bundle(path)
    assert isinstance(c, Bundle) and c.digest == b.digest
    np.testing.assert_array_equal(c.x, b.x)
    assert c.forced.keys() == b.forced.keys()
    assert all(np.array_equal(c.forced[l], b.forced[l]) for l in b.forced)
    assert c.trace == b.trace and c.trace.prediction == b.trace.prediction
    assert c.replay(net) is None
    with pytest.raises(ValueError, match="bundle is for network"):
        c.replay(random_network(seed + 1, profile=profile))
    with np.load(path, allow_pickle=False) as npz:
        assert "x" in npz.files and "header" in npz.files
        assert {f"v.{l}" for l in b.trace.v} <= set(npz.files)


def test_load_bundle_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable vector bundle"):
        load_bundle(bad)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(b'{"format": "something"}', np.uint8))
    with pytest.raises(ValueError, match="not a polychrony-vectors file"):
        load_bundle(other)
