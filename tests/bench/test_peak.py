"""bench.peak: run_measured measures time, CPU and peak memory."""

import pytest

from bench.peak import run_measured, fill_bytes


def test_run_measured():
    m = run_measured(fill_bytes, 64 << 20, threads=1)
    assert m.result == fill_bytes(64 << 20) > 0
    assert m.seconds > 0 and m.cpu_seconds > 0
    assert m.peak_bytes >= m.base_bytes > 0
    assert m.peak_bytes - m.base_bytes > 48 << 20  # the call's 64 MiB shows in the peak
    with pytest.raises(ValueError, match="invalid literal") as info:
        run_measured(int, "not a number", threads=None)
    assert "Traceback" in str(info.value.__cause__)
