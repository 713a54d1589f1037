"""Figures of the layer-activation analysis (``paperlib.analysis``), drawn with seaborn/matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from paperlib.analysis import LayerActivations
from paperlib.io import save_figure


def _sigma_ticks(ax, sigmas: np.ndarray, axis: str = "x", count: int = 6) -> None:
    idx = np.linspace(0, len(sigmas) - 1, count).round().astype(int)
    labels = [f"{sigmas[i]:.3g}" for i in idx]
    if axis == "x":
        ax.set_xticks(idx + 0.5, labels, rotation=0)
        ax.set_xlabel("sigma")
    else:
        ax.set_yticks(idx + 0.5, labels, rotation=0)
        ax.set_ylabel("sigma")


def _layer_ticks(ax, layers: list[str], every: int) -> None:
    idx = np.arange(0, len(layers), every)
    ax.set_yticks(idx + 0.5, [layers[i] for i in idx], fontsize=6, rotation=0)


def plot_heatmaps(panels: dict[str, np.ndarray], layers: list[str], sigmas: np.ndarray, path: str | os.PathLike,
                  title: str, cbar: str) -> Path:
    """Side-by-side layers x sigma heatmaps (e.g. trained vs untrained), one colour scale [0, 1]."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 0.12 * len(layers) + 2), squeeze=False, layout="constrained")
    every = max(1, len(layers) // 40)
    for ax, (name, data) in zip(axes[0], panels.items()):
        sns.heatmap(data, ax=ax, vmin=0, vmax=1, cmap="magma", cbar_kws=dict(label=cbar))
        _sigma_ticks(ax, sigmas)
        _layer_ticks(ax, layers, every)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=110)


def plot_similarity(trained: LayerActivations, untrained: LayerActivations, noise_floor: np.ndarray,
                    path: str | os.PathLike, title: str) -> Path:
    """Median over layers of the sigma x sigma Pearson similarity (trained, untrained), and per sigma the median
    correlation with the lowest sigma beside the two-batch control."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    def median_sim(acts: LayerActivations) -> np.ndarray:
        return np.median(np.stack([acts.similarity(i) for i in range(len(acts.layers))]), axis=0)

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), layout="constrained")
    sims = dict(trained=median_sim(trained), untrained=median_sim(untrained))
    for ax, (name, sim) in zip(axes, sims.items()):
        sns.heatmap(sim, ax=ax, vmin=-1, vmax=1, cmap="vlag", cbar_kws=dict(label="median r"))
        _sigma_ticks(ax, trained.sigmas, "x")
        _sigma_ticks(ax, trained.sigmas, "y")
        ax.set_title(f"{name}: channel-pattern similarity between sigmas", fontsize=9)
    ax = axes[2]
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
    return save_figure(fig, path, dpi=110)


def plot_generators(comparisons: dict[str, dict], sigmas: np.ndarray, path: str | os.PathLike, title: str) -> Path:
    """Per generator: its channel pattern's correlation with the teacher's at each sigma (layers x sigma, best
    sigma marked), and per layer the relative weight change from the teacher."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = len(comparisons)
    layers = next(iter(comparisons.values()))["layers"]
    fig, axes = plt.subplots(1, n + 1, figsize=(5.5 * n + 5, 0.12 * len(layers) + 2), squeeze=False, layout="constrained")
    every = max(1, len(layers) // 40)
    for ax, (name, cmp) in zip(axes[0], comparisons.items()):
        sns.heatmap(cmp["match"], ax=ax, vmin=-1, vmax=1, cmap="vlag", cbar_kws=dict(label="Pearson r with teacher"))
        best = cmp["match"].argmax(axis=1)
        ax.scatter(best + 0.5, np.arange(len(layers)) + 0.5, s=6, c="k", marker="o")
        _sigma_ticks(ax, sigmas)
        _layer_ticks(ax, layers, every)
        ax.set_title(f"{name} at sigma = 80 vs teacher at each sigma (dots: best match)", fontsize=8)
    ax = axes[0][-1]
    for name, cmp in comparisons.items():
        ax.plot(cmp["weight_change"], np.arange(len(layers)), marker=".", lw=0.8, label=name)
    ax.set_ylim(len(layers) - 0.5, -0.5)  # rows aligned with the heatmaps
    ax.set_yticks(np.arange(0, len(layers), every), [layers[i] for i in range(0, len(layers), every)], fontsize=6)
    ax.set_xlabel("||W_ft - W_teacher|| / ||W_teacher||")
    ax.set_title("relative weight change per layer", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=110)
