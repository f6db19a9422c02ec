"""The hardware cores, and the one registry through which every choice among them goes.

A new core is one module (a :class:`Core` subclass beside its generator) and one line in
:data:`CORES`; ``generate``, ``estimate``, ``build``, the host link and the simulated board
all look cores up here.
"""

from __future__ import annotations

from .base import Core, Measure, UnsupportedNetwork
from .lean import LeanCoreSpec
from .network import NetworkCoreSpec
from .stack import StackCoreSpec

__all__ = ["CORES", "Core", "Measure", "UnsupportedNetwork", "core", "spec_of"]

#: Every core by the name users pass as ``--core``.
CORES: dict[str, Core] = {
    "network": NetworkCoreSpec(),
    "stack": StackCoreSpec(),
    "lean": LeanCoreSpec(),
}


def core(name: str) -> Core:
    """The core registered as ``name``; ``ValueError`` listing the choices otherwise."""
    try:
        return CORES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown core {name!r}; choose one of {', '.join(CORES)}") from None


def spec_of(component) -> Core:
    """The registered core whose :attr:`~Core.component` is ``component``'s class (the first
    registered, when several build the same class); ``ValueError`` when none is."""
    for spec in CORES.values():
        if type(component) is spec.component:
            return spec
    raise ValueError(f"{type(component).__name__} is not the component of a core of "
                     f"rtl.cores.CORES ({', '.join(CORES)})")
