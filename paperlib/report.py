"""The final report: every ``results/**/table.json`` gathered into markdown and PNG tables, the learning-rate
sweeps, what the numbers say about each of the paper's claims, and the README's results section kept in step with
them (between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` markers). Used by ``notebooks/tables.ipynb``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from paperlib.analysis import verdict
from paperlib.io import atomic_write_bytes, save_figure
from paperlib.tables import format_number, to_markdown


def gather_tables(results: str | os.PathLike = "results", scales: tuple[str, ...] = ("smoke", "mini", "paper")) -> list[dict]:
    """Every table.json under ``results`` (``<dataset>/<scale>/table.json``) of the given scales, sorted by path."""
    tables = []
    for path in sorted(Path(results).glob("*/*/table.json")):
        table = json.loads(path.read_text())
        if table.get("scale") in scales:
            tables.append(table)
    return tables


def _row(table: dict, kind: str, nfe: int | None = None) -> dict | None:
    for row in table["rows"]:
        if row.get("kind") == kind and (nfe is None or row.get("nfe") == nfe):
            return row
    return None


def claims(table: dict) -> list[dict]:
    """What one table says about each of the paper's claims: dicts with ``claim``, ``holds`` (bool or None when
    the table lacks the rows) and ``evidence`` (the numbers, in words). FID is the table's (training statistics)."""
    teacher1, gdd, gddi, inst = (_row(table, "teacher", 1), _row(table, "gdd"), _row(table, "gddi"),
                                 _row(table, "instance"))
    teachers = sorted((r for r in table["rows"] if r.get("kind") == "teacher"), key=lambda r: r["nfe"])
    best_teacher = teachers[-1] if teachers else None
    out = []

    def add(claim: str, holds, evidence: str) -> None:
        out.append(dict(claim=claim, holds=holds, evidence=evidence))

    if gdd and gddi and teacher1:
        add("GAN fine-tuning alone turns the diffusion model into a one-step generator",
            max(gdd["fid"], gddi["fid"]) < teacher1["fid"] / 2,
            f"teacher at NFE 1: FID {teacher1['fid']:.2f}; after {gdd['kimg']:g} kimg of GAN fine-tuning at NFE 1: "
            f"GDD {gdd['fid']:.2f}, GDD-I {gddi['fid']:.2f}")
    if gddi and best_teacher:
        matched = [r["nfe"] for r in teachers if r["fid"] >= gddi["fid"]]
        level = f"better than the teacher at NFE {max(matched)}" if matched else "worse than the teacher at every NFE"
        add("The one-step generator matches the teacher's multi-step quality",
            gddi["fid"] <= best_teacher["fid"],
            f"GDD-I FID {gddi['fid']:.2f} vs teacher at NFE {best_teacher['nfe']} {best_teacher['fid']:.2f}: {level}")
    if gdd and gddi:
        add("Freezing most block convolutions (GDD-I) works at least as well as training them (GDD)",
            gddi["fid"] <= gdd["fid"],
            f"GDD-I FID {gddi['fid']:.2f} ({100 * gddi['frozen_fraction']:.1f}% frozen) vs GDD {gdd['fid']:.2f}, "
            f"same budget; training time {gddi['train_seconds']:.0f} s vs {gdd['train_seconds']:.0f} s")
    if gddi and inst:
        add("Distribution-level (GAN) distillation beats instance-level distillation at the same image budget",
            gddi["fid"] < inst["fid"],
            f"GDD-I FID {gddi['fid']:.2f} vs instance distillation {inst['fid']:.2f} at {inst['kimg']:g} kimg; "
            f"training took {gddi['train_seconds']:.0f} s vs {inst['train_seconds']:.0f} s (each instance target is a "
            f"multi-step teacher solve)")
    if gddi and gddi.get("memorisation") is not None:
        add("The one-step generator does not copy its training images",
            gddi["memorisation"] > 0.8,
            f"memorisation ratio of GDD-I {gddi['memorisation']:.3f} (1 = as far from the training set as held-out "
            f"digits, 0 = copies)")
    return out


def claims_markdown(tables: list[dict]) -> str:
    """A markdown list of the claims of every table, each marked holds / does not hold, with its evidence."""
    lines = []
    for table in tables:
        lines.append(f"**{table['dataset']} ({table['scale']} scale, {table['eval_num']} samples)**\n")
        for c in claims(table):
            verdict = {True: "holds", False: "does not hold", None: "untested"}[c["holds"]]
            lines.append(f"- {c['claim']}: **{verdict}** ({c['evidence']}).")
        lines.append("")
    return "\n".join(lines)


def sweep_markdown(sweep_dir: str | os.PathLike = "results/mini") -> str:
    """One markdown table per swept preset from ``sweep-*.json`` (``python -m paperlib sweep --out``): FID,
    precision, recall and memorisation by generator learning rate."""
    by_preset: dict[str, dict[float, dict]] = {}
    for path in sorted(Path(sweep_dir).glob("sweep-*.json")):
        for result in json.loads(path.read_text()):
            by_preset.setdefault(result["preset"], {})[result["overrides"]["lr"]] = result
    parts = []
    for preset, runs in sorted(by_preset.items()):
        lines = [f"`{preset}`\n", "| lr | FID (train) | FID (held-out) | precision | recall | memorisation |",
                 "|---:|---:|---:|---:|---:|---:|"]
        for lr, r in sorted(runs.items()):
            lines.append(f"| {lr:g} | {r['fid']:.2f} | {r['fid_test']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | "
                         f"{r['memorisation']:.3f} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def layers_markdown(results: str | os.PathLike = "results", scales: tuple[str, ...] = ("mini", "paper")) -> str:
    """The verdict of every ``<dataset>/<scale>/layer_activation.json`` (``notebooks/layer_activation.ipynb``)."""
    parts = []
    for path in sorted(Path(results).glob("*/*/layer_activation.json")):
        dataset, scale = path.parent.parent.name, path.parent.name
        if scale in scales:
            parts.append(f"**{dataset} ({scale} scale)**\n\n" + verdict(json.loads(path.read_text())["summary"]))
    return "\n\n".join(parts)


def seeds_markdown(results: str | os.PathLike = "results", scale: str = "mini") -> str:
    """Run-to-run spread: for each preset with extra-seed runs in ``<results>/<scale>/seeds/*.json`` (from
    ``python -m paperlib sweep ... --seed N``), the FIDs of every seed beside the table's own run (seed 0), with
    mean and sample standard deviation."""
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(results, scale, "seeds").glob("*.json")):
        for r in json.loads(path.read_text()):
            runs.setdefault(r["preset"], {})[f"seed {r['overrides'].get('seed', 0)}"] = r
    for table in gather_tables(results, (scale,)):
        for row in table["rows"]:
            preset = Path(row.get("run_dir", "")).name
            if preset in runs:
                runs[preset]["seed 0 (table)"] = row
    if not runs:
        return ""
    lines = ["| preset | lr | runs | FID (train) per run | mean ± sd | FID (held-out) per run | mean ± sd |",
             "|---|---:|---:|---|---:|---|---:|"]
    for preset, by_seed in sorted(runs.items()):
        rows = [by_seed[k] for k in sorted(by_seed)]
        lr = rows[0].get("lr") or rows[0].get("overrides", {}).get("lr")
        cols = []
        for key in ("fid", "fid_test"):
            values = np.array([r[key] for r in rows])
            cols += [", ".join(f"{v:.2f}" for v in values), f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"]
        lines.append(f"| `{preset}` | {lr:g} | {len(rows)} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[3]} |")
    return "\n".join(lines)


def save_table_png(table: dict, path: str | os.PathLike) -> Path:
    """Draw one FID table (its main columns) as a PNG with matplotlib."""
    import matplotlib.pyplot as plt

    columns = dict(row=0, fid=2, fid_test=2, precision=3, recall=3, memorisation=3, kimg=0, reported_fid=2)  # decimals
    heads = ("", "FID (train)", "FID (held-out)", "precision", "recall", "memorisation", "kimg", "reported FID")
    cells = [[format_number(row.get(c), digits) for c, digits in columns.items()] for row in table["rows"]]
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(cells) + 0.8))
    ax.set_axis_off()
    grid = ax.table(cellText=cells, colLabels=heads, loc="center", cellLoc="right", colLoc="right")
    grid.auto_set_font_size(False)
    grid.set_fontsize(8)
    grid.auto_set_column_width(list(range(len(columns))))
    ax.set_title(f"{table['dataset']}, {table['scale']} scale: {table['eval_num']} samples, {table['feature_net']}",
                 fontsize=9)
    return save_figure(fig, path, dpi=130)


def update_readme(readme: str | os.PathLike, sections: dict[str, str]) -> list[str]:
    """Replace the text between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` in ``readme`` by
    ``sections[NAME]`` (atomically); returns the names replaced. A missing marker is an error naming it."""
    path = Path(readme)
    text = path.read_text()
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- results:{re.escape(name)} -->\n).*?(<!-- /results:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"{path}: no '<!-- results:{name} -->' ... '<!-- /results:{name} -->' markers")
        text = pattern.sub(lambda m: m.group(1) + body.strip() + "\n" + m.group(2), text)
    atomic_write_bytes(path, text.encode())
    return list(sections)


def write_report(results: str | os.PathLike = "results", figures: str | os.PathLike = "figures",
                 readme: str | os.PathLike | None = None, scales: tuple[str, ...] = ("mini", "paper")) -> dict:
    """Gather the tables of ``scales``, write ``figures/tables.md`` and one PNG per table, and (when ``readme`` is
    given) refresh its results sections: one per table (``NAME`` = dataset-scale), 'sweep', 'seeds', 'claims' and
    'layers'.
    Returns dict(tables=..., markdown=..., pngs=[...])."""
    tables = gather_tables(results, scales)
    table_markdown, parts, pngs = {}, [], []  # table_markdown: also the README's per-table sections
    for table in tables:
        name = f"{table['dataset']}-{table['scale']}"
        table_markdown[name] = to_markdown(table)
        parts.append(f"### {table['dataset']} ({table['scale']} scale)\n\n" + table_markdown[name])
        png = Path(figures) / f"table_{table['dataset']}_{table['scale']}.png"  # beside table_<dataset>_<scale>.md
        pngs.append(str(save_table_png(table, png)))
    sweeps = sweep_markdown(Path(results) / "mini")
    layers = layers_markdown(results, scales)
    claims_text = claims_markdown(tables)
    markdown = "\n\n".join(parts + ([f"### Learning-rate sweeps\n\n{sweeps}"] if sweeps else [])
                           + ["### The paper's claims at these scales\n\n" + claims_text]
                           + ([f"### Layer activation versus noise level\n\n{layers}"] if layers else []))
    atomic_write_bytes(Path(figures) / "tables.md", markdown.encode())
    if readme is not None:
        sections = dict(table_markdown)
        sections["claims"] = claims_text
        if sweeps:
            sections["sweep"] = sweeps
        if layers:
            sections["layers"] = layers
        seeds = seeds_markdown(results)
        if seeds:
            sections["seeds"] = seeds
        text = Path(readme).read_text()
        update_readme(readme, {k: v for k, v in sections.items() if f"<!-- results:{k} -->" in text})
    return dict(tables=tables, markdown=markdown, pngs=pngs)
