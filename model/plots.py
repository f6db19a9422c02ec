"""Shared plotting helpers of both families: matplotlib on the Agg backend, reproducible PNGs."""

from __future__ import annotations

from pathlib import Path

__all__ = ["pyplot", "save_png"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (imported on first use)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, out, *, dpi: int = 90) -> Path:
    """Write ``fig`` to ``out`` (parents created) and close it; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # No software version in the file: the same data gives the same bytes.
    fig.savefig(out, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return out
