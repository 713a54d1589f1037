"""Sample grids and nearest-training-neighbour grids (matplotlib), used by the notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from paperlib.plots.figures import save_figure


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
              pixels_per_inch: float = 16, row_labels: list[str] | None = None,
              cell_labels: list[str] | None = None) -> Path:
    """Draw uint8 images [N, C, H, W] as a grid and save it as PNG, with ``row_labels`` (one per row of the grid)
    at the left and ``cell_labels`` (one per image, e.g. the class asked for) at each cell's top left when given;
    returns the path."""
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
    for i, label in enumerate(cell_labels or []):
        r, k = divmod(i, nrow)
        ax.text(k * (images.shape[3] + 1) - 0.5, r * (images.shape[2] + 1) - 0.5, label, color="yellow", fontsize=6,
                va="top", ha="left", bbox=dict(facecolor="black", edgecolor="none", pad=0.3))
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def nearest_neighbour_figure(panels: dict[str, tuple[np.ndarray, np.ndarray]], train: np.ndarray,
                             train_features: np.ndarray, held_out_features: np.ndarray, path: str | os.PathLike,
                             title: str, count: int = 8) -> Path:
    """One panel per model (``panels``: label -> (uint8 samples [N, C, H, W], their features [N, D])): its first
    ``count`` samples (top row) over their nearest training images in feature space (bottom row), each pair labelled
    with its distance; the distance below which 5% of held-out digits lie to their nearest training digit is in
    the title, so a near-copy reads as a distance below it."""
    import matplotlib.pyplot as plt

    from paperlib.metrics import nearest_distances

    threshold = float(np.percentile(nearest_distances(held_out_features, train_features)[0], 5))
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 0.9 * count), 2.1 * len(panels)), squeeze=False)
    for ax, (label, (images, features)) in zip(axes[:, 0], panels.items()):
        distance, index = nearest_distances(features[:count], train_features)
        picture = tile(np.concatenate([images[:count], train[index]]), count, gap=1)
        ax.imshow(picture[:, :, 0] if picture.shape[2] == 1 else picture, cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
        width = images.shape[3] + 1
        ax.set_xticks([k * width + images.shape[3] / 2 for k in range(count)],
                      [f"{d:.2f}" + (" *" if d < threshold else "") for d in distance], fontsize=7)
        ax.set_yticks([images.shape[2] / 2, images.shape[2] * 1.5 + 1], ["sample", "nearest\ntraining"], fontsize=7)
        ax.tick_params(length=0)
        ax.set_frame_on(False)
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{title}\nnumbers: feature-space distance to the nearest training digit; * below {threshold:.2f}, "
                 f"the distance 5% of held-out digits fall under (a near-copy)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
