"""Showing figures and markdown in a notebook so that a batch run's log reads them: an image whose plain-text form
is its path, and markdown whose plain-text form is itself (papermill logs a display's text form, which for
IPython's Image and Markdown is an object's address)."""

from __future__ import annotations

import os
from pathlib import Path

from IPython.display import Image, Markdown, display


class Figure(Image):
    """A PNG on disk, shown as the image in a notebook and as ``[figure PATH]`` in text."""

    def __repr__(self) -> str:
        return f"[figure {self.filename}]"


def show(*paths: str | os.PathLike) -> None:
    """Display each existing PNG of ``paths`` (missing ones are skipped)."""
    for path in paths:
        if Path(path).exists():
            display(Figure(filename=str(path)))


class Text(Markdown):
    """Markdown, shown rendered in a notebook and as itself in text."""

    def __repr__(self) -> str:
        return self.data


def show_markdown(text: str) -> None:
    """Display ``text`` as markdown (the log of a batch run gets the text itself)."""
    display(Text(text))
