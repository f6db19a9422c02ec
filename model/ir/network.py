"""The :class:`Network` record: layers, projections and the declared maximum delay, checked
against every design rule when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field

from .canonical import digest
from .layers import InputLayer, Projection, int_field, json_meta, name_field
from .rules import check

__all__ = ["Network"]


@dataclass(frozen=True, eq=False)
class Network:
    """Layers (layer 0 is the input), projections and the declared maximum delay."""

    layers: tuple
    projections: tuple
    max_delay: int
    name: str = "net"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "projections", tuple(self.projections))
        object.__setattr__(self, "max_delay", int_field(self.max_delay, "network.max_delay"))
        name_field(self.name, "network.name")
        object.__setattr__(self, "meta", json_meta(self.meta))
        check(self)

    @property
    def input(self) -> InputLayer:
        return self.layers[0]

    def into(self, dst: int) -> list[Projection]:
        """The projections that feed layer ``dst``, in file order."""
        return [p for p in self.projections if p.dst == dst]

    @property
    def forced_layers(self) -> list[int]:
        return [i for i, l in enumerate(self.layers) if i and l.forced]

    @property
    def digest(self) -> str:
        return digest(self)

    def __eq__(self, other) -> bool:
        return isinstance(other, Network) and digest(self) == digest(other)

    def __hash__(self) -> int:
        return hash(digest(self))
