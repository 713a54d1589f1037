"""Sample grids and nearest-training-neighbour grids (matplotlib), used by the notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from paperlib.io import save_figure


def tile(images: np.ndarray, nrow: int, gap: int = 0, gap_value: int = 128) -> np.ndarray:
    """uint8 images [N, C, H, W] -> one uint8 picture [rows*(H+gap)-gap, nrow*(W+gap)-gap, C]: cells separated by
    ``gap`` pixels of ``gap_value`` (grey, so black digit backgrounds stay apart), missing cells black."""
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    canvas = np.full((rows * (h + gap) - gap, nrow * (w + gap) - gap, c), gap_value, dtype=np.uint8)
    for i in range(rows * nrow):
        r, k = divmod(i, nrow)
        cell = images[i].transpose(1, 2, 0) if i < n else 0
        canvas[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = cell
    return canvas


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int = 8, title: str | None = None,
              pixels_per_inch: float = 16, row_labels: list[str] | None = None) -> Path:
    """Draw uint8 images [N, C, H, W] as a grid and save it as PNG, with ``row_labels`` (one per row of the grid)
    at the left when given; returns the path."""
    import matplotlib.pyplot as plt

    picture = tile(images, nrow, gap=1)
    height, width = picture.shape[0] / pixels_per_inch, picture.shape[1] / pixels_per_inch
    fig, ax = plt.subplots(figsize=(max(2.0, width), max(1.0, height) + (0.3 if title else 0)))
    ax.imshow(picture[:, :, 0] if picture.shape[2] == 1 else picture, cmap="gray" if picture.shape[2] == 1 else None,
              vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_frame_on(False)
    if row_labels:
        cell = images.shape[2] + 1  # a row of images and its gap
        ax.set_yticks([cell * i + images.shape[2] / 2 for i in range(len(row_labels))], row_labels, fontsize=8)
        ax.tick_params(left=False)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def nearest_neighbour_grid(generated: np.ndarray, generated_features: np.ndarray, train: np.ndarray,
                           train_features: np.ndarray, path: str | os.PathLike, count: int = 8,
                           title: str | None = None) -> Path:
    """Pairs of rows: generated samples (top) and their nearest training images in feature space (bottom),
    so that copying would show as identical pairs."""
    from paperlib.metrics import nearest_distances

    _, index = nearest_distances(generated_features[:count], train_features)
    rows = np.concatenate([generated[:count], train[index]])
    return save_grid(rows, path, nrow=count, title=title or "generated (top) and nearest training image (bottom)")
