"""Training curves: FID against training images, the discriminator's view over the same training, sample grids of
fixed seeds over training, and the paper's Figure 1A beside paperlib's own runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from paperlib.metrics import read_npz
from paperlib.plots.figures import log_axis, save_figure
from paperlib.plots.grids import save_grid


def plot_training_curves(curves: dict[str, dict], path: str | os.PathLike, title: str, curve_num: int,
                         finals: dict[str, dict] | None = None, final_num: int | None = None,
                         references: dict[str, tuple[float, float]] | None = None) -> Path:
    """FID during training against training images, one panel per split (training, held-out), one colour per row
    (mean over its seeds, the band ± sd), each curve labelled with its sample count ``curve_num``; ``finals``
    (row -> dict(kimg, fid, fid_test)) adds each row's final evaluation on ``final_num`` samples as a marker at its
    end; ``references`` (label -> (training-split FID, held-out FID)) adds labelled horizontal lines (their labels
    should carry their own sample counts)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, split in zip(axes, ("fid", "fid_test"), ("training split", "held-out split")):
        for (label, curve), color in zip(curves.items(), colors):
            if not curve["kimg"]:
                continue
            ax.plot(curve["kimg"], curve[key], "-", marker="o", ms=3, color=color,
                    label=f"{label}: during training, {curve_num:,} samples")
            if curve.get(f"{key}_sd"):
                mean, sd = np.array(curve[key]), np.array(curve[f"{key}_sd"])
                ax.fill_between(curve["kimg"], np.maximum(mean - sd, 1e-3), mean + sd, color=color, alpha=0.15)
            final = (finals or {}).get(label)
            if final and final.get(key) is not None:
                ax.plot([final["kimg"]], [final[key]], marker="*", ms=11, color=color, ls="",
                        label=f"{label}: final, {final_num:,} samples")
        for (label, values), style in zip((references or {}).items(), (":", "-.", "--")):
            value = values[0 if key == "fid" else 1]
            if value is not None:
                ax.axhline(value, color="k", ls=style, lw=1, label=label)
        log_axis(ax)
        ax.set_xlabel("training images (kimg)")
        ax.set_title(f"FID against the {split}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("FID (digits feature space, log scale)")
    fig.suptitle(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, frameon=False)  # below, not over the curves
    fig.tight_layout(rect=(0, 0.03 * -(-len(labels) // 2) + 0.01, 1, 1))
    return save_figure(fig, path)


def plot_discriminator_view(curves: dict[str, dict], path: str | os.PathLike, title: str, num: int) -> Path:
    """The discriminator's view over training beside the FID curves: per row (mean over its seeds) its mean logit
    (left) and its accuracy (right, chance 0.5) on ``num`` held-out real digits (solid) and as many fresh fakes
    (dashed), as the curves hold them (``d_logit_real``, ``d_accuracy_fake``, ...); rows without them (no discriminator) are left
    out."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, curve), color in zip(curves.items(), colors):
        if "d_logit_real" not in curve:
            continue
        for ax, what in zip(axes, ("logit", "accuracy")):
            for side, style in (("real", "-"), ("fake", "--")):
                ax.plot(curve["kimg"], curve[f"d_{what}_{side}"], style, marker="o", ms=2.5, color=color,
                        label=f"{label}, {'held-out reals' if side == 'real' else 'fresh fakes'}")
    axes[1].axhline(0.5, color="k", ls=":", lw=1, label="chance")
    for ax, ylabel in zip(axes, ("mean logit", "accuracy")):
        ax.set_xlabel("training images (kimg)")
        ax.set_ylabel(f"discriminator {ylabel} ({num:,} reals, {num:,} fakes)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.03 * -(-len(labels) // 2) + 0.01, 1, 1))
    return save_figure(fig, path)








def progress_grid(progress: str | os.PathLike, path: str | os.PathLike, title: str, count: int = 8) -> Path:
    """Samples of the first ``count`` progress seeds, one row per recorded point of training (top: earliest; each
    labelled with its kimg), from a file of gathered progress samples (images [T, 32, C, H, W] uint8, kimg [T])."""
    data = read_npz(progress, required=("images", "kimg"))  # headers and sizes checked before reading
    rows, kimgs = [im[:count] for im in data["images"]], data["kimg"].tolist()
    return save_grid(np.concatenate(rows), path, nrow=count, title=title, pixels_per_inch=12,
                     row_labels=[f"{k:.0f} kimg" for k in kimgs])


# Label offsets (points) that keep Figure 1A's crowded labels apart: DMD, SiD (1e5 K) and CTM sit within a factor 2.
_FIGURE_1A_LABELS = {"DMD": (6, 3, "left"), "SiD (1e5 K)": (6, -11, "left"), "CTM": (-7, -3, "right")}


def plot_figure_1a(paper_points: list[tuple[str, float, float]], own_points: list[dict], path: str | os.PathLike,
                   curve_num: int | None = None) -> Path:
    """The paper's Figure 1A (one-step methods on ImageNet 64x64: Inception FID against training images, log x; here
    log y too) in the left panel, and paperlib's runs in the right panel on their own axes (a digits-feature FID is
    not an Inception FID). ``paper_points``: (method, training images in millions, FID) as read from the paper's
    figure. ``own_points``: dicts with ``label`` (method, dataset, scale), ``mimg`` (training images in
    millions), ``fid`` (the table's) and optionally ``curve`` = (mimg list, fid list), the FID during training on
    ``curve_num`` samples."""
    import matplotlib.pyplot as plt

    fig, (paper, ours) = plt.subplots(1, 2, figsize=(12, 5.2))
    for name, mimg, fid in paper_points:
        color = "tab:red" if name.startswith("GDD") else "tab:blue"
        paper.scatter(mimg, fid, color=color, zorder=3)
        dx, dy, ha = _FIGURE_1A_LABELS.get(name, (4, 4, "left"))
        paper.annotate(name, (mimg, fid), textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=8)
    paper.set_title("The paper's Figure 1A: one-step methods on ImageNet 64x64\n(Inception FID, read from the figure; "
                    "red: GDD, GDD-I)", fontsize=9)
    paper.set_ylabel("FID (Inception, log scale)")
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for point in own_points:
        color = next(colors)
        if point.get("curve"):
            ours.plot(*point["curve"], color=color, alpha=0.7, lw=1.2, marker=".",
                      label=f"{point['label']}: during training ({f'{curve_num:,}' if curve_num else '?'} samples)")
        ours.scatter(point["mimg"], point["fid"], color=color, marker="*", s=120, zorder=4,
                     label=f"{point['label']}: the table's final FID")
    ours.set_title("paperlib's runs (digits-feature FID: not comparable with the left panel)", fontsize=9)
    ours.set_ylabel("FID (digits feature space, log scale)")
    if own_points:
        ours.legend(fontsize=7, loc="upper right")
    for ax in (paper, ours):
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set_xlabel("training images (millions, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
