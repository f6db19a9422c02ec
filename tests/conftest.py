"""Fixtures shared by the whole test tree: seeded networks, and a check for Amaranth
components left half-built. Plain helpers live in ``tests/nets.py`` and ``tests/streams.py``."""

import functools
import gc
import types
import warnings
from contextlib import contextmanager

import pytest

from tests.nets import tiny_net


@pytest.fixture(scope="session")
def wm8():
    """The tiny working-memory network (``tests.nets.tiny_net``) named ``wm8``, as the host
    link and the board builds see it."""
    return tiny_net(name="wm8")


@pytest.fixture(scope="session")
def random_net():
    """``random_net(seed, profile="full")``: ``sim.randnet.random_network``, built once per
    session (networks are immutable, so tests can share them)."""
    from sim.randnet import random_network
    return functools.cache(random_network)


@pytest.fixture(scope="session")
def shaped():
    """``sim.shaped``'s networks of the papers' shapes, built once per session:
    ``shaped.wm_network(n, d, seed=...)``, ``shaped.shd_network(kind, ...)``."""
    from sim import shaped as s
    return types.SimpleNamespace(wm_network=functools.cache(s.wm_network),
                                 shd_network=functools.cache(s.shd_network))


@contextmanager
def _unused_elaboratables():
    """Collect the messages of the Elaboratables reported "created but never used" in the
    block (the list is filled when the block ends). Amaranth stays silent about unused ones
    until something has been elaborated, so an empty module is elaborated first."""
    from amaranth.hdl import Fragment, Module, UnusedElaboratable
    Fragment.get(Module(), None)
    found = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnusedElaboratable)
        yield found
        gc.collect()
    found += [str(w.message) for w in caught if issubclass(w.category, UnusedElaboratable)]


@pytest.fixture
def unused_elaboratables():
    """``with unused_elaboratables() as found:``: the messages of the Elaboratables the block
    created and never used (a refused constructor must leave none)."""
    return _unused_elaboratables
