"""Training curves: FID against training images from the runs' logs, sample grids of fixed seeds over training,
and the paper's Figure 1A with paperlib's own runs overlaid. Used by ``notebooks/training_curves.ipynb``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from paperlib.grids import save_grid
from paperlib.io import atomic_write_bytes, save_figure
from paperlib.protocol import EVAL_KEYS
from paperlib.reported import FIGURE_1A
from paperlib.rundir import RunFolder


def load_curve(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """FID (and precision, recall, ...) recorded during training in ``run_dir/metrics.jsonl``: lists keyed 'kimg',
    'fid', 'fid_test', ... of equal length, in training order. Empty lists when no FID was recorded."""
    folder = RunFolder(run_dir)
    if not folder.log.exists():
        raise FileNotFoundError(f"{folder.log}: no training log (was the run trained with paperlib?)")
    records = [r for r in folder.records() if "eval_fid" in r]
    curve = {"kimg": [r["kimg"] for r in records]}
    for key in EVAL_KEYS:
        curve[key] = [r.get(f"eval_{key}", float("nan")) for r in records]
    return curve


def mean_curve(run_dirs: list[str | os.PathLike]) -> dict[str, list[float]]:
    """The mean over seeds of the curves of ``run_dirs`` (recorded at the same kimg), with ``<key>_sd`` lists
    (sample sd; absent for one run) and ``runs`` (how many curves)."""
    return average_curves([load_curve(d) for d in run_dirs])


def average_curves(curves: list[dict]) -> dict[str, list[float]]:
    """The mean over seeds of curves as :func:`load_curve` gives them (recorded at the same kimg), with
    ``<key>_sd`` lists (sample sd; absent for one curve) and ``runs`` (how many curves)."""
    length = min(len(c["kimg"]) for c in curves)
    out: dict = {"kimg": curves[0]["kimg"][:length], "runs": len(curves)}
    for key in EVAL_KEYS:
        values = np.array([c[key][:length] for c in curves], dtype=float)
        out[key] = values.mean(axis=0).tolist()
        if len(curves) > 1:
            out[f"{key}_sd"] = values.std(axis=0, ddof=1).tolist()
    return out


def curves_of_table(table: dict) -> dict[str, dict]:
    """The training curve of every trained row of an FID table (``paperlib.tables``), keyed by row name: the one
    the table keeps (``curve``, mini scale: the mean over the row's seeds), else read from the row's run logs."""
    return {row["row"]: row.get("curve") or mean_curve(row.get("run_dirs") or [row["run_dir"]])
            for row in table["rows"] if row.get("run_dir")}


def collect_progress(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Gather one run's progress samples (``run_dir/progress/kimg-*.npz``) into one small file ``out`` (images
    [T, 32, C, H, W] uint8, kimg [T]) that can be committed beside its table, so the grids need no run folder."""
    files = RunFolder(run_dir).progress_files()
    if not files:
        raise FileNotFoundError(f"{run_dir}/progress holds no sample snapshots (train with fid_every_kimg > 0)")
    images, kimgs = [], []
    for file in files:
        with np.load(file) as data:
            images.append(data["images"])
            kimgs.append(float(data["kimg"]))
    buf = io.BytesIO()
    np.savez_compressed(buf, images=np.stack(images), kimg=np.array(kimgs))
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)


def plot_training_curves(curves: dict[str, dict], path: str | os.PathLike, title: str,
                         floor: float | None = None, teacher: float | None = None) -> Path:
    """FID against the training split (solid) and the held-out split (dashed) against training images, one colour
    per row (mean over its seeds, the band ± sd); optional horizontal lines for the real-data floor and the teacher's
    35-NFE FID (training split)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, ax = plt.subplots(figsize=(8, 6.2))  # 960 px wide: a notebook shows it at full size
    for (label, curve), color in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        if not curve["kimg"]:
            continue
        for key, style in (("fid", "-"), ("fid_test", "--")):
            ax.plot(curve["kimg"], curve[key], style, marker="o", ms=3, color=color,
                    label=f"{label}, {'training split' if key == 'fid' else 'held-out split'}")
            if curve.get(f"{key}_sd"):
                mean, sd = np.array(curve[key]), np.array(curve[f"{key}_sd"])
                ax.fill_between(curve["kimg"], mean - sd, mean + sd, color=color, alpha=0.12)
    if teacher is not None:
        ax.axhline(teacher, color="k", ls=":", lw=1, label="teacher, Heun NFE 35 (training split)")
    if floor is not None:
        ax.axhline(floor, color="grey", ls="-.", lw=1, label="real data: held-out digits vs training split")
    ax.set_yscale("log")  # x stays linear: plain kimg ticks
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("training images (kimg)")
    ax.set_ylabel("FID (digits feature space)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, frameon=False)  # below, not over the curves
    fig.tight_layout(rect=(0, 0.024 * -(-len(labels) // 2) + 0.01, 1, 1))
    return save_figure(fig, path)


def progress_grid(progress: str | os.PathLike, path: str | os.PathLike, title: str, count: int = 8) -> Path:
    """Samples of the first ``count`` progress seeds, one row per recorded point of training (top: earliest; each
    labelled with its kimg), from a file of :func:`collect_progress` (or a run folder, gathered on the fly)."""
    if Path(progress).is_dir():
        progress = collect_progress(progress, Path(progress) / "progress.npz")
    with np.load(progress) as data:
        rows, kimgs = [im[:count] for im in data["images"]], data["kimg"].tolist()
    return save_grid(np.concatenate(rows), path, nrow=count, title=title, pixels_per_inch=12,
                     row_labels=[f"{k:.0f} kimg" for k in kimgs])


# Label offsets (points) that keep Figure 1A's crowded labels apart: DMD, SiD (1e5 K) and CTM sit within a factor 2.
_FIGURE_1A_LABELS = {"DMD": (6, 3, "left"), "SiD (1e5 K)": (6, -11, "left"), "CTM": (-7, -3, "right")}


def plot_figure_1a(own_points: list[dict], path: str | os.PathLike, curve_num: int | None = None) -> Path:
    """The paper's Figure 1A (one-step methods on ImageNet 64x64: FID against training images, log x; here log y too), with
    paperlib's points overlaid. ``own_points``: dicts with ``label`` (naming scale, dataset and feature space),
    ``mimg`` (training images in millions) and ``fid``; optionally ``curve`` = (mimg list, fid list), the FID
    recorded during training from ``curve_num`` samples (fewer than the table's, so it reads higher)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(7, 5.2))
    for name, mimg, fid in FIGURE_1A:
        color = "tab:red" if name.startswith("GDD") else "tab:blue"
        ax.scatter(mimg, fid, color=color, zorder=3)
        dx, dy, ha = _FIGURE_1A_LABELS.get(name, (4, 4, "left"))
        ax.annotate(name, (mimg, fid), textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=8)
    handles = [Line2D([], [], color="tab:red", marker="o", ls="", label="GDD, GDD-I (paper, ImageNet 64)"),
               Line2D([], [], color="tab:blue", marker="o", ls="", label="other one-step methods (paper, ImageNet 64)")]
    markers = iter("s^DvP*X")
    for point in own_points:
        marker = next(markers, "o")
        if point.get("curve"):
            ax.plot(*point["curve"], color="tab:green", alpha=0.5, lw=1)
        handles.append(ax.scatter(point["mimg"], point["fid"], color="tab:green", marker=marker, zorder=4,
                                  label=point["label"]))
    if any(p.get("curve") for p in own_points):
        samples = f"{curve_num:,} samples" if curve_num else "fewer samples"
        handles.append(Line2D([], [], color="tab:green", alpha=0.5, lw=1,
                              label=f"paperlib FID during training ({samples}: reads higher than the table's points)"))
    ax.set_xscale("log")
    ax.set_yscale("log")  # the paper's axis is linear (0-16); log keeps digits FIDs and ImageNet FIDs both readable
    ax.set_xlabel("training images (millions, log scale)")
    ax.set_ylabel("FID (log scale)")
    ax.set_title("Figure 1A redrawn: one-step methods on ImageNet 64x64 (Inception FID, read from the figure);\n"
                 "green: paperlib runs, each at the scale, dataset and feature space of its label", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=1, frameon=False)
    fig.tight_layout(rect=(0, 0.032 * len(handles), 1, 1))  # room for the legend below the axes
    return save_figure(fig, path)
