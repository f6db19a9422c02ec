"""Components whose constructor arguments are checked before the component exists."""

from __future__ import annotations

from amaranth.lib import wiring

__all__ = ["CheckedComponent"]


class CheckedComponent(wiring.Component):
    """A :class:`~amaranth.lib.wiring.Component` whose :meth:`check_args` runs before Amaranth
    creates the object, with the constructor's arguments.

    A constructor that refuses its arguments then leaves no half-built component behind, which
    Amaranth would report as "created but never used". Subclasses put every check that can fail
    in :meth:`check_args` and build in ``__init__`` as usual.
    """

    @classmethod
    def check_args(cls, *args, **kwargs) -> None:
        """Raise (``ValueError`` or a subclass) for arguments the constructor refuses."""

    def __new__(cls, *args, src_loc_at: int = 0, **kwargs):
        cls.check_args(*args, **kwargs)
        return super().__new__(cls, *args, src_loc_at=src_loc_at + 1, **kwargs)
