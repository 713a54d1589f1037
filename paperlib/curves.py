"""Training curves: FID against training images from the runs' logs, sample grids of fixed seeds over training,
and the paper's Figure 1A with paperlib's own runs overlaid. Used by ``notebooks/training_curves.ipynb``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from paperlib.grids import save_grid
from paperlib.io import atomic_write_bytes, save_figure
from paperlib.protocol import D_VIEW_KEYS, EVAL_KEYS
from paperlib.reported import FIGURE_1A
from paperlib.rundir import RunFolder


def load_curve(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """FID (and precision, recall, ...) recorded during training in ``run_dir/metrics.jsonl``: lists keyed 'kimg',
    'fid', 'fid_test', ... (and the discriminator's view, ``D_VIEW_KEYS``, where logged) of equal length, in
    training order. Empty lists when no FID was recorded."""
    folder = RunFolder(run_dir)
    if not folder.log.exists():
        raise FileNotFoundError(f"{folder.log}: no training log (was the run trained with paperlib?)")
    records = [r for r in folder.records() if "eval_fid" in r]
    curve = {"kimg": [r["kimg"] for r in records]}
    for key in EVAL_KEYS:
        curve[key] = [r.get(f"eval_{key}", float("nan")) for r in records]
    for key in D_VIEW_KEYS:  # the discriminator's view, where it was logged
        if records and key in records[0]:
            curve[key] = [r.get(key, float("nan")) for r in records]
    return curve


def mean_curve(run_dirs: list[str | os.PathLike]) -> dict[str, list[float]]:
    """The mean over seeds of the curves of ``run_dirs`` (recorded at the same kimg), with ``<key>_sd`` lists
    (sample sd; absent for one run) and ``runs`` (how many curves)."""
    return average_curves([load_curve(d) for d in run_dirs])


def average_curves(curves: list[dict]) -> dict[str, list[float]]:
    """The mean over seeds of curves as :func:`load_curve` gives them (recorded at the same kimg; the
    discriminator's view where every curve has it), with ``<key>_sd`` lists (sample sd; absent for one curve) and
    ``runs`` (how many curves)."""
    length = min(len(c["kimg"]) for c in curves)
    out: dict = {"kimg": curves[0]["kimg"][:length], "runs": len(curves)}
    for key in EVAL_KEYS + tuple(k for k in D_VIEW_KEYS if all(k in c for c in curves)):
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
    (dashed), as :data:`~paperlib.protocol.D_VIEW_KEYS` logged them; rows without them (no discriminator) are left
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


def reference_lines(rows: list[dict], num: int) -> dict[str, tuple]:
    """The horizontal lines of a curves figure from a table's rows: the teacher at its most steps (training and
    held-out FID) and the held-out digits against the training split, each labelled with its sample count."""
    teacher = max((r for r in rows if r["kind"] == "teacher"), key=lambda r: r["nfe"])
    ranges = len(teacher.get("seeds") or [])
    lines = {f"teacher, Heun NFE {teacher['nfe']} ({num:,} samples" + (f", mean of {ranges} ranges)" if ranges > 1
                                                                         else ")"): (teacher["fid"], teacher.get("fid_test"))}
    held_out = next((r for r in rows if r["kind"] == "real"), None)
    if held_out:
        lines[f"{held_out['row']} against the training split"] = (held_out["fid"], None)
    return lines


def draw_long_curves(long: dict, figures_dir: str | os.PathLike, curve_num: int) -> Path:
    """The curves figure of the long-budget study (``results/<dataset>/mini/long<kimg>.json``)."""
    finals = {r["row"]: r for r in long["rows"] if r.get("curve")}
    seeds = next((r["seeds"] for r in finals.values() if r.get("seeds")), [])
    return plot_training_curves(
        {row: r["curve"] for row, r in finals.items()},
        Path(figures_dir) / f"training_curves_{long['dataset']}_{long['scale']}_{long['kimg']:g}kimg.png",
        f"{long['dataset']}, training seeds {seeds} trained to {long['kimg']:g} kimg (mean ± sd; stars: final "
        f"evaluation)", curve_num, finals, long["eval_num"], reference_lines(long["rows"], long["eval_num"]))


def draw_table_curves(tables: dict[str, dict], scale: str, figures_dir: str | os.PathLike,
                      curve_num: int) -> dict:
    """Everything training_curves.ipynb shows for FID tables ``tables`` (dataset -> table.json's dict): per table,
    the curves figure (each row's final evaluation and the teacher and real-data lines beside, each with its sample
    count) and one grid of the same seeds over training per trained row; then Figure 1A with the GDD and GDD-I rows.
    Returns dict(curves: {dataset: {row: curve}}, figures: [curves figures], grids: [paths], figure_1a: path)."""
    figures, grids, curves, own_points = [], [], {}, []
    for name, table in tables.items():
        curves[name] = curves_of_table(table)
        finals = {r["row"]: r for r in table["rows"] if r.get("run_dir")}
        seeds = next((r["seeds"] for r in finals.values() if r.get("seeds")), [])
        figures.append(plot_training_curves(
            curves[name], Path(figures_dir) / f"training_curves_{name}_{scale}.png",
            f"{name}, {scale} scale: FID of the EMA generator during training (mean ± sd over training seeds "
            f"{seeds}; stars: the table's final evaluation)", curve_num, finals, table["eval_num"],
            reference_lines(table["rows"], table["eval_num"])))
        for row in finals.values():
            grids.append(progress_grid(row.get("progress") or row["run_dir"],
                                         Path(figures_dir) / f"progress_{name}_{scale}_{row['kind']}.png",
                                         f"{name} {row['row']}: samples of seeds 0-7 during training (training seed "
                                         f"{(row.get('seeds') or ['?'])[0]})"))
            if row["kind"] in ("gdd", "gddi"):
                curve = curves[name][row["row"]]
                own_points.append(dict(label=f"{row['row'].split(' ')[0]}, {name} ({scale})", mimg=row["kimg"] / 1000,
                                       fid=row["fid"], curve=([k / 1000 for k in curve["kimg"]], curve["fid"])))
    figure_1a = plot_figure_1a(own_points, Path(figures_dir) / f"figure1a_{scale}.png", curve_num=curve_num)
    return dict(curves=curves, figures=figures, grids=grids, figure_1a=figure_1a)


def training_curves_report(datasets: list[str], scale: str, results_dir: str | os.PathLike,
                           figures_dir: str | os.PathLike, curve_num: int) -> dict:
    """What training_curves.ipynb makes: the FID tables of ``datasets`` at ``scale`` read (all of them, before
    anything is drawn), :func:`draw_table_curves`, and the curves written to ``results/<scale>/training_curves.json``.
    Returns :func:`draw_table_curves`'s dict."""
    import json

    tables = {}
    for name in datasets:
        path = Path(results_dir) / name / scale / "table.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run notebooks/fid_table.ipynb with dataset={name!r}, "
                                    f"scale={scale!r} first")
        tables[name] = json.loads(path.read_text())
    drawn = draw_table_curves(tables, scale, figures_dir, curve_num)
    summary = {name: {row: dict(curve) for row, curve in rows.items()} for name, rows in drawn["curves"].items()}
    atomic_write_bytes(Path(results_dir) / scale / "training_curves.json", json.dumps(summary, indent=1).encode())
    return drawn


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
    """The paper's Figure 1A (one-step methods on ImageNet 64x64: Inception FID against training images, log x; here
    log y too) in the left panel, and paperlib's runs in the right panel on their own axes (a digits-feature FID is
    not an Inception FID). ``own_points``: dicts with ``label`` (method, dataset, scale), ``mimg`` (training images in
    millions), ``fid`` (the table's) and optionally ``curve`` = (mimg list, fid list), the FID during training on
    ``curve_num`` samples."""
    import matplotlib.pyplot as plt

    fig, (paper, ours) = plt.subplots(1, 2, figsize=(12, 5.2))
    for name, mimg, fid in FIGURE_1A:
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
