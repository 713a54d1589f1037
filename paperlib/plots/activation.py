"""Figures of the layer-activation analysis (``paperlib.analysis``), drawn with seaborn/matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from paperlib.analysis import LayerActivations
from paperlib.plots.figures import save_figure


def _sigma_ticks(ax, sigmas: np.ndarray, axis: str = "x", count: int = 5) -> None:
    idx = np.linspace(0, len(sigmas) - 1, count).round().astype(int)
    labels = [f"{sigmas[i]:.2g}" for i in idx]
    if axis == "x":
        ax.set_xticks(idx + 0.5, labels, rotation=0, fontsize=7)
        ax.set_xlabel("sigma")
    else:
        ax.set_yticks(idx + 0.5, labels, rotation=0, fontsize=7)
        ax.set_ylabel("sigma")


def _layer_ticks(ax, layers: list[str], every: int) -> None:
    idx = np.arange(0, len(layers), every)
    ax.set_yticks(idx + 0.5, [layers[i] for i in idx], fontsize=6, rotation=0)


# Figures are laid out for a notebook's width: at most 9 inches across (about 1,000 pixels at the dpi below), so a
# notebook shows them at full size and the 6-point layer names stay legible.
WIDTH, DPI = 9.0, 110


def _heatmap_row(fig, panels: dict[str, np.ndarray], layers: list[str], sigmas: np.ndarray, extra: float = 0.0,
                 **style) -> tuple[list, object]:
    """Layers x sigma heatmaps side by side sharing one layer axis (named on the first) and one colour bar, and
    optionally an ``extra`` panel (width ratio) at the right sharing the layer axis; returns (axes, extra axis)."""
    import seaborn as sns

    ratios = [1.0] * len(panels) + [0.06] + ([extra] if extra else [])
    axes = fig.subplots(1, len(ratios), gridspec_kw=dict(width_ratios=ratios))
    heat, bar = axes[:len(panels)], axes[len(panels)]
    every = max(1, len(layers) // 40)
    for i, (ax, (name, data)) in enumerate(zip(heat, panels.items())):
        sns.heatmap(data, ax=ax, cbar=i == 0, cbar_ax=bar if i == 0 else None, **style)
        _sigma_ticks(ax, sigmas)
        if i == 0:
            _layer_ticks(ax, layers, every)
        else:
            ax.set_yticks([])
        ax.set_title(name, fontsize=8)
    return list(heat), (axes[-1] if extra else None)


def plot_heatmaps(panels: dict[str, np.ndarray], layers: list[str], sigmas: np.ndarray, path: str | os.PathLike,
                  title: str, cbar: str) -> Path:
    """Side-by-side layers x sigma heatmaps (e.g. trained vs untrained), one colour scale [0, 1]."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(WIDTH, 0.11 * len(layers) + 1.6), layout="constrained")
    _heatmap_row(fig, panels, layers, sigmas, vmin=0, vmax=1, cmap="magma", cbar_kws=dict(label=cbar))
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=DPI)


def plot_similarity(trained: LayerActivations, untrained: LayerActivations, noise_floor: np.ndarray,
                    path: str | os.PathLike, title: str) -> Path:
    """Median over layers of the sigma x sigma Pearson similarity (trained, untrained) side by side, and below them
    per sigma the median correlation with the lowest sigma beside the two-batch control."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    def median_sim(acts: LayerActivations) -> np.ndarray:
        return np.median(np.stack([acts.similarity(i) for i in range(len(acts.layers))]), axis=0)

    fig = plt.figure(figsize=(WIDTH, 8), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.15, 1))
    axes = top.subplots(1, 2)
    sims = dict(trained=median_sim(trained), untrained=median_sim(untrained))
    for ax, (name, sim) in zip(axes, sims.items()):
        sns.heatmap(sim, ax=ax, vmin=-1, vmax=1, cmap="vlag", square=True, cbar_kws=dict(label="median r"))
        _sigma_ticks(ax, trained.sigmas, "x")
        _sigma_ticks(ax, trained.sigmas, "y")
        ax.set_title(f"{name}: channel patterns, sigma vs sigma", fontsize=8)
    ax = bottom.subplots()
    ax.plot(trained.sigmas, sims["trained"][0], label="trained: r(sigma_min, sigma)")
    ax.plot(trained.sigmas, sims["untrained"][0], label="untrained: r(sigma_min, sigma)")
    ax.plot(trained.sigmas, np.median(noise_floor, axis=0), "k--", label="control: two batches at the same sigma")
    ax.set_xscale("log")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("sigma")
    ax.set_ylabel("median Pearson r over layers")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=DPI)


def plot_generators(comparisons: dict[str, dict], sigmas: np.ndarray, path: str | os.PathLike, title: str) -> Path:
    """Per generator: its channel pattern's correlation with the teacher's at each sigma (layers x sigma, best
    sigma marked), and at the right, on the same layer rows, each layer's relative weight change from the teacher."""
    import matplotlib.pyplot as plt

    layers = next(iter(comparisons.values()))["layers"]
    fig = plt.figure(figsize=(WIDTH, 0.11 * len(layers) + 1.6), layout="constrained")
    panels = {f"{name} at sigma 80 vs\nteacher at each sigma": cmp["match"] for name, cmp in comparisons.items()}
    heat, ax = _heatmap_row(fig, panels, layers, sigmas, extra=0.9, vmin=-1, vmax=1, cmap="vlag",
                            cbar_kws=dict(label="Pearson r with teacher"))
    for hax, cmp in zip(heat, comparisons.values()):
        best = cmp["match"].argmax(axis=1)
        hax.scatter(best + 0.5, np.arange(len(layers)) + 0.5, s=4, c="k", marker="o")
    for name, cmp in comparisons.items():
        ax.plot(cmp["weight_change"], np.arange(len(layers)), marker=".", ms=3, lw=0.8, label=name)
    ax.set_ylim(len(layers) - 0.5, -0.5)  # rows aligned with the heatmaps
    ax.set_yticks([])
    ax.set_xlabel("||W_ft - W_teacher|| / ||W_teacher||", fontsize=7)
    ax.set_title("relative weight\nchange per layer", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.suptitle(f"{title} (dots: best-matching teacher sigma per layer)", fontsize=10)
    return save_figure(fig, path, dpi=DPI)
