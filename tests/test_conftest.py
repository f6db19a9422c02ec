"""The shared fixtures of ``tests/conftest.py``: their checks can fail."""

import pytest
from amaranth.hdl import Elaboratable


def test_unused_elaboratables_can_fail(unused_elaboratables):
    class Refused(Elaboratable):
        def __init__(self):
            raise ValueError("refused after the object exists")

    with unused_elaboratables() as found:
        with pytest.raises(ValueError):
            Refused()
    assert len(found) == 1 and "Refused" in found[0]
