"""Training curves: FID against training images from the runs' logs, sample grids of fixed seeds over training,
and the paper's Figure 1A with paperlib's own runs overlaid. Used by ``notebooks/training_curves.ipynb``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from paperlib.experiments import EVAL_KEYS
from paperlib.grids import save_grid
from paperlib.io import save_figure
from paperlib.reported import FIGURE_1A


def load_curve(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """FID (and precision, recall, ...) recorded during training in ``run_dir/metrics.jsonl``: lists keyed 'kimg',
    'fid', 'fid_test', ... of equal length, in training order. Empty lists when no FID was recorded."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no training log (was the run trained with paperlib?)")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = [r for r in records if "eval_fid" in r]
    curve = {"kimg": [r["kimg"] for r in records]}
    for key in EVAL_KEYS:
        curve[key] = [r.get(f"eval_{key}", float("nan")) for r in records]
    return curve


def curves_of_table(table: dict) -> dict[str, dict]:
    """The training curve of every trained row of an FID table (``paperlib.tables``), keyed by row name."""
    return {row["row"]: load_curve(row["run_dir"]) for row in table["rows"] if row.get("run_dir")}


def plot_training_curves(curves: dict[str, dict], path: str | os.PathLike, title: str, key: str = "fid",
                         floor: float | None = None, teacher: float | None = None) -> Path:
    """FID (or another ``key``) against training images, log x, one line per run; optional horizontal lines for
    the real-data floor and the teacher's best multi-step FID."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        if curve["kimg"]:
            ax.plot(curve["kimg"], curve[key], marker="o", ms=3, label=label)
    if teacher is not None:
        ax.axhline(teacher, color="k", ls="--", lw=1, label="teacher, Heun NFE 35")
    if floor is not None:
        ax.axhline(floor, color="grey", ls=":", lw=1, label="real data (held-out split)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training images (kimg)")
    ax.set_ylabel(key.replace("_", " ").upper() if key.startswith("fid") else key)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def progress_grid(run_dir: str | os.PathLike, path: str | os.PathLike, title: str, count: int = 8) -> Path:
    """Samples of the first ``count`` progress seeds, one row per recorded point of training (top: earliest),
    from ``run_dir/progress/kimg-*.npz`` (written by ``paperlib.experiments.fid_callback``)."""
    files = sorted(Path(run_dir, "progress").glob("kimg-*.npz"))
    if not files:
        raise FileNotFoundError(f"{run_dir}/progress holds no sample snapshots (train with fid_every_kimg > 0)")
    rows, kimgs = [], []
    for file in files:
        with np.load(file) as data:
            rows.append(data["images"][:count])
            kimgs.append(float(data["kimg"]))
    label = ", ".join(f"{k:g}" for k in kimgs)
    return save_grid(np.concatenate(rows), path, nrow=count, title=f"{title}\nrows: kimg {label}", pixels_per_inch=12)


def plot_figure_1a(own_points: list[dict], path: str | os.PathLike) -> Path:
    """The paper's Figure 1A (one-step methods on ImageNet 64x64: FID against training images, log x; here log y too), with
    paperlib's points overlaid. ``own_points``: dicts with ``label`` (naming scale, dataset and feature space),
    ``mimg`` (training images in millions) and ``fid``; optionally ``curve`` = (mimg list, fid list)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, mimg, fid in FIGURE_1A:
        color = "tab:red" if name.startswith("GDD") else "tab:blue"
        ax.scatter(mimg, fid, color=color, zorder=3)
        ax.annotate(name, (mimg, fid), textcoords="offset points", xytext=(4, 4), fontsize=8)
    markers = iter("s^DvP*X")
    for point in own_points:
        marker = next(markers, "o")
        if point.get("curve"):
            ax.plot(*point["curve"], color="tab:green", alpha=0.5, lw=1)
        ax.scatter(point["mimg"], point["fid"], color="tab:green", marker=marker, zorder=4, label=point["label"])
    ax.set_xscale("log")
    ax.set_yscale("log")  # the paper's axis is linear (0-16); log keeps digits FIDs and ImageNet FIDs both readable
    ax.set_xlabel("training images (millions, log scale)")
    ax.set_ylabel("FID (log scale)")
    ax.set_title("Figure 1A redrawn: reported one-step methods on ImageNet 64x64 (Inception FID, read from the figure)\n"
                 "green: paperlib runs, each at the scale, dataset and feature space of its label", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    if own_points:
        ax.legend(fontsize=7, loc="upper right")
    return save_figure(fig, path)
