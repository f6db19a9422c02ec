"""Errors the generators raise."""

__all__ = ["UnsupportedNetwork"]


class UnsupportedNetwork(ValueError):
    """The IR is valid but this core cannot build it with the given knobs."""
