"""The training-curves figures of ``notebooks/training_curves.ipynb``: FID during training of every trained row of a
dataset's table with its final evaluation at the end, and the paper's Figure 1A beside paperlib's GDD and GDD-I runs.
At mini scale the tables are the protocol's (their curves are averaged over seeds from the ledger's records); at smoke
and paper scale the scale's own tables, with grids of fixed seeds sampled over training."""

from __future__ import annotations

import json
import os
from pathlib import Path

from paperlib.assets import ROOT
from paperlib.plots.curves import plot_figure_1a, plot_training_curves, progress_grid
from paperlib.study.evidence.tables import draw_evidence_curves
from paperlib.study.paper_numbers import FIGURE_1A
from paperlib.study.protocol import CURVE_NUM
from paperlib.study.tables.build import curves_of_table
from paperlib.study.tables.request import SCALE_DEFAULTS


def training_curves_report(datasets: list[str], scale: str, results_dir: str | os.PathLike,
                           figures_dir: str | os.PathLike) -> dict:
    """Read the tables of ``datasets`` at ``scale`` (all of them, before anything is drawn) and draw their curves
    and Figure 1A into ``figures_dir``. Returns dict(figures: [curves figures], grids: [paths], figure_1a: path)."""
    tables = {}
    for name in datasets:
        path = (Path(results_dir) / "evidence" / name if scale == "mini" else Path(results_dir) / name / scale) / "table.json"
        if not path.exists():
            command = (f"python -m paperlib run evidence --datasets {name}" if scale == "mini" else
                       f"notebooks/fid_table.ipynb with dataset={name!r}, scale={scale!r}")
            raise FileNotFoundError(f"{path} is missing: run {command} first")
        tables[name] = json.loads(path.read_text())
    if scale != "mini":
        return draw_table_curves(tables, scale, figures_dir)
    figures, own_points = [], []
    for name, table in tables.items():
        figures += draw_evidence_curves(table, str(figures_dir))
        for row in table["rows"]:
            if row["kind"] in ("gdd", "gddi") and not row.get("secondary") and row.get("curve"):
                curve = row["curve"]
                own_points.append(dict(label=f"{row['row'].split(' ')[0]}, {name} (lr {row['lr']:g})",
                                       mimg=row["kimg"] / 1000, fid=row["fid"],
                                       curve=([k / 1000 for k in curve["kimg"]], curve["fid"])))
    figure_1a = plot_figure_1a(FIGURE_1A, own_points, Path(figures_dir) / "figure1a_mini.png", curve_num=CURVE_NUM)
    return dict(figures=figures, grids=[], figure_1a=figure_1a)


def _located(path: str) -> str:
    """A path a table records relative to the checkout, found from any working folder."""
    return path if Path(path).is_absolute() or Path(path).exists() else str(ROOT / path)


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


def draw_table_curves(tables: dict[str, dict], scale: str, figures_dir: str | os.PathLike) -> dict:
    """What training_curves.ipynb shows for smoke or paper tables ``tables`` (dataset -> table.json's dict): per table,
    the curves figure (each row's final evaluation and the teacher and real-data lines beside, each with its sample
    count) and one grid of the same seeds over training per trained row; then Figure 1A with the GDD and GDD-I rows.
    Returns dict(curves: {dataset: {row: curve}}, figures: [curves figures], grids: [paths], figure_1a: path)."""
    figures, grids, curves, own_points = [], [], {}, []
    curve_num = SCALE_DEFAULTS[scale]["curve_num"]
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
            grids.append(progress_grid(_located(row["progress"]),
                                         Path(figures_dir) / f"progress_{name}_{scale}_{row['kind']}.png",
                                         f"{name} {row['row']}: samples of seeds 0-7 during training (training seed "
                                         f"{(row.get('seeds') or ['?'])[0]})"))
            if row["kind"] in ("gdd", "gddi"):
                curve = curves[name][row["row"]]
                own_points.append(dict(label=f"{row['row'].split(' ')[0]}, {name} ({scale})", mimg=row["kimg"] / 1000,
                                       fid=row["fid"], curve=([k / 1000 for k in curve["kimg"]], curve["fid"])))
    figure_1a = plot_figure_1a(FIGURE_1A, own_points, Path(figures_dir) / f"figure1a_{scale}.png", curve_num=curve_num)
    return dict(curves=curves, figures=figures, grids=grids, figure_1a=figure_1a)
