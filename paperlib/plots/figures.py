"""Saving figures, and the log axes every figure of paperlib shares."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write a matplotlib figure as PNG (creating its folder), close it, and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def log_axis(ax, axis: str = "y") -> None:
    """A log axis labelled at 1, 2 and 5 of every decade in plain numbers (not only at 10 and 100)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10)))
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    target.set_major_formatter(formatter)
    target.set_minor_formatter(NullFormatter())
