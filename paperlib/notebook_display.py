"""Showing figures in a notebook so that a batch run's log names them: an image whose plain-text form is its path
(papermill logs a display's text form, which for IPython's Image is an object's address)."""

from __future__ import annotations

import os
from pathlib import Path

from IPython.display import Image, display


class Figure(Image):
    """A PNG on disk, shown as the image in a notebook and as ``[figure PATH]`` in text."""

    def __repr__(self) -> str:
        return f"[figure {self.filename}]"


def show(*paths: str | os.PathLike) -> None:
    """Display each existing PNG of ``paths`` (missing ones are skipped)."""
    for path in paths:
        if Path(path).exists():
            display(Figure(filename=str(path)))
