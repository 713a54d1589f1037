"""The final report: every ``results/**/table.json`` gathered into markdown and PNG tables, the learning-rate
sweeps, what the numbers say about each of the paper's claims, the protocol they were decided by, and the generated
sections of the README, RESULTS.md and PROTOCOL.md kept in step with them (between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` markers). Used by ``notebooks/tables.ipynb``."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from paperlib import evidence_plan
from paperlib.analysis import verdict
from paperlib.io import atomic_write_bytes, save_figure
from paperlib.protocol import (
    ABLATION_SEEDS,
    CLAIMS,
    EVAL_SEED_START,
    METRIC_NAMES,
    MINI_KIMG,
    SCALE_DEFAULTS,
    SWEEP_SEED,
    TRAINING_FID_SEED_START,
    VERSION,
)
from paperlib.stats import RULE, decide, mean_sd, welch_interval
from paperlib.table_format import format_number, to_markdown


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


def _values(row: dict, key: str) -> list[float]:
    """A row's per-seed values of ``key`` (one value for a row of one run)."""
    return row.get(f"{key}_runs") or [row[key]]


def _test(a: dict, b: dict | float, key: str, predicts: str, names: tuple[str, str]) -> dict:
    """Welch's test of row ``a`` against row ``b`` (or a fixed value) on ``key``, with its verdict and its words."""
    other = b if isinstance(b, (int, float)) else _values(b, key)
    interval = welch_interval(_values(a, key), other)
    verdict = decide(interval, predicts)
    b_text = f"{b:.2f}" if isinstance(b, (int, float)) else mean_sd(b, key)
    words = (f"{names[0]} {mean_sd(a, key)} vs {names[1]} {b_text}: difference {interval['diff']:+.2f}, 95% CI "
             f"[{interval['low']:+.2f}, {interval['high']:+.2f}] (Welch, df {interval['df']:.1f})")
    return dict(verdict=verdict, evidence=words, **interval)




def claims(table: dict) -> list[dict]:
    """What one table says about each of the paper's claims, by the rule of :mod:`paperlib.stats` (Welch's 95%
    interval over seeds): dicts with ``claim``, ``verdict`` (holds / does not hold / inconclusive; 'untested' when
    the table lacks the rows), ``metric`` (what the verdict rests on) and ``tests`` (one per metric, the first
    deciding). FID claims rest on the training-split FID, the paper's protocol; the held-out FID is tested beside
    it, so a low training FID that comes from copying shows."""
    out = []
    for spec in CLAIMS:
        a, b, keys = _row(table, *spec["a"]), _row(table, *spec["b"]), spec["metrics"]
        if a is None or b is None:
            out.append(dict(claim=spec["claim"], verdict="untested", metric=keys[0], tests=[]))
            continue
        tests = [dict(metric=k, **_test(a, b[k] if spec.get("b_fixed") else b, k, spec["predicts"], spec["names"]))
                 for k in keys]
        out.append(dict(claim=spec["claim"], verdict=tests[0]["verdict"], metric=keys[0], tests=tests))
    return out


def _claim_lines(table: dict, untested: bool = True) -> list[str]:
    """One markdown bullet per claim of :func:`claims` (``untested``: also those the table lacks the rows for)."""
    lines = []
    for c in claims(table):
        if not c["tests"]:
            if untested:
                lines.append(f"- {c['claim']}: **untested** (the table lacks the rows).")
            continue
        first, rest = c["tests"][0], c["tests"][1:]
        text = f"- {c['claim']}: **{c['verdict']}** on the {METRIC_NAMES[first['metric']]} ({first['evidence']})"
        for t in rest:
            text += f"; on the {METRIC_NAMES[t['metric']]}: {t['verdict']} ({t['evidence']})"
        lines.append(text + ".")
    return lines


def claims_markdown(tables: list[dict]) -> str:
    """A markdown list of every table's claims, each with its verdict, the metric it rests on and the numbers."""
    lines = [f"Rule, fixed before the runs: {RULE}\n"]
    for table in tables:
        if table["scale"] == "smoke":
            lines.append(f"**{table['dataset']} (smoke scale)**: no verdicts; smoke runs test the code, and their "
                         f"numbers mean nothing about the method.\n")
            continue
        runs = max(len(r.get("seeds") or [1]) for r in table["rows"])
        lines.append(f"**{table['dataset']} ({table['scale']} scale, {table['eval_num']} samples per run, up to "
                     f"{runs} runs per row)**\n")
        lines += _claim_lines(table) + [""]
    return "\n".join(lines)


def long_budget_markdown(results: str | os.PathLike = "results") -> str:
    """Every ``<dataset>/mini/long<kimg>.json`` (the ``long`` study of :mod:`paperlib.studies`: the table's GDD and GDD-I
    runs continued to the paper's number of passes) as a table beside the teacher's rows, with the claims those rows
    can decide, by the same rule as the main tables'."""
    parts = []
    for path in sorted(Path(results).glob("*/mini/long*.json")):
        table = json.loads(path.read_text())
        parts.append(f"**{table['dataset']}, GDD and GDD-I continued from {table['continued_from_kimg']:g} to "
                     f"{table['kimg']:g} kimg**\n\n" + to_markdown(table) + "\nClaims at this budget (rule as "
                     "above; the rows not continued are not tested):\n\n" + "\n".join(_claim_lines(table, False)))
    return "\n\n".join(parts)


def sweep_markdown(sweep_dir: str | os.PathLike = "results/mini") -> str:
    """One markdown table per swept preset from ``sweep-*.json`` (``python -m paperlib run sweep``): FID, precision,
    recall and memorisation by generator learning rate, the chosen rate (lowest training-split FID) marked."""
    parts = []
    for path in sorted(Path(sweep_dir).glob("sweep-*.json")):
        runs = sorted(json.loads(path.read_text()), key=lambda r: r["lr"])
        best = min(runs, key=lambda r: r["fid"])["lr"]
        lines = [f"`{runs[0]['preset']}` ({runs[0]['kimg']:g} kimg, seed {runs[0]['seed']}, {runs[0]['num']} samples)\n",
                 "| lr | FID (train) | FID (held-out) | precision | recall | memorisation |",
                 "|---:|---:|---:|---:|---:|---:|"]
        for r in runs:
            mark = " (chosen)" if r["lr"] == best else ""
            lines.append(f"| {r['lr']:g}{mark} | {r['fid']:.2f} | {r['fid_test']:.2f} | {r['precision']:.3f} | "
                         f"{r['recall']:.3f} | {r['memorisation']:.3f} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def ablation_markdown(results: str | os.PathLike = "results") -> str:
    """The freeze ablation of every ``<dataset>/mini/freeze_ablation.json`` as a table: frozen fraction and
    mean ± sd of each metric per policy."""
    parts = []
    for path in sorted(Path(results).glob("*/mini/freeze_ablation.json")):
        ab = json.loads(path.read_text())
        lines = [f"`{ab['preset']}` at lr {ab['lr']:g}, {ab['kimg']:g} kimg, seeds {ab['seeds']}, {ab['num']} samples "
                 f"per run\n",
                 "| frozen | policy | FID (train) | FID (held-out) | recall | memorisation |",
                 "|---:|---|---:|---:|---:|---:|"]
        for lv in ab["levels"]:
            lines.append(f"| {100 * lv['frozen_fraction']:.1f}% | {lv['policy']} | {mean_sd(lv, 'fid')} | "
                         f"{mean_sd(lv, 'fid_test')} | {mean_sd(lv, 'recall', 3)} | {mean_sd(lv, 'memorisation', 3)} |")
        parts.append("\n".join(lines))
        parts.append(ablation_comparisons_markdown(ab))
    return "\n\n".join(parts)


ABLATION_RULE = ("GDD-I's freeze set (policy 'gddi') is compared with every other policy at the same rate and budget "
                 "by Welch's t over seeds on log FID (the levels span orders of magnitude when a level diverges, so "
                 "differences are compared as ratios): 'holds' if the 95% interval of GDD-I's FID ratio to the other "
                 "policy lies wholly below 1, 'does not hold' if wholly above, else 'inconclusive'; on the "
                 "training-split FID, with the held-out FID beside.")


def _ratio_test(a: dict, b: dict, key: str) -> dict:
    """Welch's interval of log(a) - log(b) over seeds, as a ratio of geometric means with its 95% interval."""
    interval = welch_interval(np.log(_values(a, key)), np.log(_values(b, key)))
    ratio, low, high = (math.exp(interval[k]) for k in ("diff", "low", "high"))
    return dict(verdict=decide(interval, "negative"), evidence=f"ratio {ratio:.2f}, 95% CI [{low:.2f}, {high:.2f}]")


def ablation_comparisons_markdown(ablation: dict) -> str:
    """GDD-I's freeze set against each other policy of one freeze ablation, by :data:`ABLATION_RULE`."""
    levels = {lv["policy"]: lv for lv in ablation["levels"]}
    gddi = levels.get("gddi")
    if gddi is None:
        return ""
    lines = [f"Rule: {ABLATION_RULE}\n"]
    for policy, lv in levels.items():
        if policy == "gddi":
            continue
        train, held_out = (_ratio_test(gddi, lv, key) for key in ("fid", "fid_test"))
        lines.append(f"- GDD-I's set below '{policy}' ({100 * lv['frozen_fraction']:.1f}% frozen; FID "
                     f"{mean_sd(gddi, 'fid')} vs {mean_sd(lv, 'fid')}): **{train['verdict']}** on the training-split "
                     f"FID ({train['evidence']}); on the held-out FID: {held_out['verdict']} ({held_out['evidence']}).")
    return "\n".join(lines)


def evidence_markdown(results: str | os.PathLike = "results") -> str:
    """The evidence protocol's state per dataset: how many of its runs are recorded, the rates its sweeps chose
    (``results/evidence/<dataset>/rates.json``) and its table with every claim's verdict (``table.json``)."""
    from paperlib.evidence_runs import rate_jobs
    from paperlib.evidence_tables import table_jobs
    from paperlib.ledger import ledger_dir, read_record
    from paperlib.protocol import EVIDENCE_VERSION, MINI_DATASETS, PILOT_PROTOCOL

    ledger, parts = ledger_dir(results), [f"Protocol version `{EVIDENCE_VERSION}` (PROTOCOL.md; its rate pilots: `{PILOT_PROTOCOL}`)."]
    for dataset in MINI_DATASETS:
        base = Path(results) / "evidence" / dataset
        pilots = rate_jobs([dataset], results=str(results))
        done = sum(read_record(ledger, j.record) is not None for j in pilots)
        lines = [f"**{dataset}**: rate sweeps {done} of {len(pilots)} runs recorded"]
        if (base / "rates.json").exists():
            rates = json.loads((base / "rates.json").read_text())
            runs = table_jobs([dataset], results=str(results))
            lines[0] += (f"; table {sum(read_record(ledger, j.record) is not None for j in runs)} of {len(runs)} "
                         f"runs. Common rate of GDD and GDD-I: {rates['common']:g}; own best rates: "
                         + ", ".join(f"{m} {lr:g}" for m, lr in rates["own"].items()) + ".")
        else:
            lines[0] += "; the table's rates are chosen when all are."
        if (base / "table.json").exists():
            table = json.loads((base / "table.json").read_text())
            lines += ["", "| row | seeds | FID (train) | FID (held-out) | KID | precision | recall | near-copy share |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {r['row']} | {len(r['seeds'])} | {mean_sd(r, 'fid')} | {mean_sd(r, 'fid_test')} | "
                      f"{mean_sd(r, 'kid')} | {mean_sd(r, 'precision', 3)} | {mean_sd(r, 'recall', 3)} | "
                      f"{mean_sd(r, 'copy_share', 3)} |" for r in table["rows"]]
            lines += [""] + [f"- {c['sentence']}" for c in table["claims"]]
            lines += ["", f"Training curves: `figures/evidence_curves_{dataset}.png`; the discriminator's view over the "
                      f"same runs: `figures/evidence_discriminator_{dataset}.png`; samples of the teacher, GDD and GDD-I "
                      f"beside their nearest training digits: `figures/evidence_nearest_{dataset}.png`."]
        parts.append("\n".join(lines))
    parts.append(_ablation_markdown(results))
    return "\n\n".join(parts)


def _ablation_markdown(results: str | os.PathLike) -> str:
    """The freeze ablation's state: its pilots and runs recorded, each policy's best rate, its rows and verdicts."""
    from paperlib.evidence_ablation import ablation_jobs, pilot_jobs
    from paperlib.ledger import ledger_dir, read_record

    ledger, base = ledger_dir(results), Path(results) / "evidence" / "digits"
    pilots = [job for _, job in pilot_jobs(results=str(results))]
    line = (f"**Freeze ablation** (digits): pilots {sum(read_record(ledger, j.record) is not None for j in pilots)} "
            f"of {len(pilots)} runs recorded")
    if not (base / "ablation-rates.json").exists():
        return line + "; each policy's rate is chosen when all are."
    runs = ablation_jobs(results=str(results))
    best = json.loads((base / "ablation-rates.json").read_text())["best"]
    lines = [line + f"; ablation {sum(read_record(ledger, j.record) is not None for j in runs)} of {len(runs)} runs. "
             "Best rates: " + ", ".join(f"{p} {lr:g}" for p, lr in best.items()) + "."]
    if (base / "ablation.json").exists():
        table = json.loads((base / "ablation.json").read_text())
        lines += ["", "| policy | lr | seeds | FID (train) | FID (held-out) | precision | recall |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        same_runs = {}  # rows at one (policy, rate) are the same runs: shown once, their keys joined by '='
        for r in table["rows"]:
            same_runs.setdefault((r["policy"], r["lr"]), []).append(r)
        lines += [f"| {' = '.join(s['key'] for s in rows)} | {r['lr']:g} | {len(r['seeds'])} | {mean_sd(r, 'fid')} | "
                  f"{mean_sd(r, 'fid_test')} | {mean_sd(r, 'precision', 3)} | {mean_sd(r, 'recall', 3)} |"
                  for rows in same_runs.values() for r in rows[:1]]
        lines += [""] + [f"- {c['sentence']}" for c in table["claims"]]
    return "\n".join(lines)


def layers_markdown(results: str | os.PathLike = "results", scales: tuple[str, ...] = ("mini", "paper")) -> str:
    """The verdict of every ``<dataset>/<scale>/layer_activation.json`` (``notebooks/layer_activation.ipynb``)."""
    parts = []
    for path in sorted(Path(results).glob("*/*/layer_activation.json")):
        dataset, scale = path.parent.parent.name, path.parent.name
        if scale in scales:
            parts.append(f"**{dataset} ({scale} scale)**\n\n" + verdict(json.loads(path.read_text())["summary"]))
    return "\n\n".join(parts)


def protocol_markdown() -> str:
    """The protocol's contents that decide the mini tables (``paperlib.protocol``), with its version."""
    mini = SCALE_DEFAULTS["mini"]
    lines = [f"Protocol version `{VERSION}`.\n",
             f"- Mini tables: training seeds {mini['seeds']} per trained row, {MINI_KIMG} kimg per run, "
             f"{mini['fid_num']:,} samples per evaluation (seeds {EVAL_SEED_START}..{EVAL_SEED_START + mini['fid_num'] - 1}), "
             f"the teacher's 35-NFE row over {mini['teacher_ranges']} disjoint seed ranges; FID during training every "
             f"{mini['fid_every_kimg']:g} kimg on {mini['curve_num']:,} samples (seeds from {TRAINING_FID_SEED_START:,}).",
             f"- Sweeps train seed {SWEEP_SEED}; the freeze ablation seeds {list(ABLATION_SEEDS)}.",
             f"- Rule: {RULE}", "", "Claims each table decides (the first metric decides, the others are shown beside "
             "it):", ""]
    for spec in CLAIMS:
        metrics = ", ".join(METRIC_NAMES[m] for m in spec["metrics"])
        predicted = "below" if spec["predicts"] == "negative" else "above"
        lines.append(f"- {spec['claim']}: {spec['names'][0]} {predicted} {spec['names'][1]} on the {metrics}"
                     + (" (a fixed reference value)" if spec.get("b_fixed") else "") + ".")
    return "\n".join(lines)


def save_table_png(table: dict, path: str | os.PathLike) -> Path:
    """Draw one FID table (its main columns, mean ± sd over runs as in the markdown) as a PNG with matplotlib,
    the figure sized to its rows so no blank band surrounds it."""
    import matplotlib.pyplot as plt

    decimals = dict(fid=2, fid_test=2, kid=2, precision=3, recall=3, memorisation=3)
    paper = table["scale"] == "paper"
    reported = "reported FID" if paper else "paper's CIFAR-10 FID*"
    heads = ("row", "FID (train)", "FID (held-out)", "KID", "precision", "recall", "memorisation", "runs", "kimg",
             "frozen", reported)
    cells = [[row["row"], *(mean_sd(row, c, d) for c, d in decimals.items()), str(len(row.get("seeds") or [1])),
              format_number(row.get("kimg"), 0),
              f"{100 * row['frozen_fraction']:.0f}%" if row.get("frozen_fraction") is not None else "–",
              format_number(row.get("reported_fid"))] for row in table["rows"]]
    height, top = 0.25 * (len(cells) + 1), 0.35 if paper else 0.55
    fig = plt.figure(figsize=(13, height + top))
    ax = fig.add_axes((0, 0, 1, height / (height + top)))  # the table fills this box; the title sits above it
    ax.set_axis_off()
    grid = ax.table(cellText=cells, colLabels=heads, cellLoc="right", colLoc="right", bbox=(0, 0, 1, 1))
    grid.auto_set_font_size(False)
    grid.set_fontsize(8)
    grid.auto_set_column_width(list(range(len(heads))))
    caveat = "" if paper else ("\n* the paper's CIFAR-10 numbers, shown for orientation only: an Inception FID on "
                               "CIFAR-10, not comparable with these digits FIDs")
    fig.suptitle(f"{table['dataset']}, {table['scale']} scale: {table['eval_num']} samples per run, mean ± sd over "
                 f"runs; features: {table['feature_net']}{caveat}", fontsize=9, y=1 - 0.05 / (height + top))
    return save_figure(fig, path, dpi=130)


def update_readme(readme: str | os.PathLike, sections: dict[str, str]) -> list[str]:
    """Replace the text between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` in ``readme`` (any
    markdown file) by ``sections[NAME]`` (atomically); returns the names replaced. A missing marker is an error
    naming it."""
    path = Path(readme)
    text = path.read_text()
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- results:{re.escape(name)} -->\n).*?(<!-- /results:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"{path}: no '<!-- results:{name} -->' ... '<!-- /results:{name} -->' markers")
        text = pattern.sub(lambda m: m.group(1) + body.strip() + "\n" + m.group(2), text)
    atomic_write_bytes(path, text.encode())
    return list(sections)


class ReportError(ValueError):
    """The report cannot be written as asked (nothing to gather); nothing was written."""


def draw_study_figures(results: str | os.PathLike, figures: str | os.PathLike) -> list[Path]:
    """The figures of the mini studies beyond the tables, from their committed JSON: each freeze ablation and each
    long-budget curves figure. Returns their paths."""
    from paperlib.curves import draw_long_curves
    from paperlib.evidence import plot_freeze_ablation
    from paperlib.protocol import SCALE_DEFAULTS

    paths = [plot_freeze_ablation(json.loads(p.read_text()), Path(figures) / f"freeze_ablation_{p.parent.parent.name}_mini.png")
             for p in sorted(Path(results).glob("*/mini/freeze_ablation.json"))]
    paths += [draw_long_curves(json.loads(p.read_text()), figures, SCALE_DEFAULTS["mini"]["curve_num"])
              for p in sorted(Path(results).glob("*/mini/long*.json"))]
    return paths


def write_report(results: str | os.PathLike = "results", figures: str | os.PathLike = "figures",
                 readme: str | os.PathLike | None = None, scale: str = "mini") -> dict:
    """Gather the tables of ``scale``, write ``figures/tables.md``, one PNG per table and (mini) the studies'
    figures, and (when ``readme`` is given) refresh the results sections of it and of RESULTS.md and PROTOCOL.md
    beside it, each where it has their markers: one per table (``NAME`` = dataset-scale), 'sweep', 'claims',
    'ablation', 'long', 'layers', 'protocol' and 'evidence-protocol'. Everything is gathered before anything is
    written: with no table of ``scale`` it raises ReportError and writes nothing.
    Returns dict(tables=..., markdown=..., pngs=[...])."""
    tables = gather_tables(results, (scale,))
    if not tables:
        raise ReportError(f"no table.json of scale {scale!r} under {results}/<dataset>/{scale}/: run "
                          f"notebooks/fid_table.ipynb with scale={scale!r} first (nothing was written)")
    mini = scale == "mini"
    table_markdown, parts = {}, []  # table_markdown: also the README's per-table sections
    for table in tables:
        name = f"{table['dataset']}-{table['scale']}"
        table_markdown[name] = to_markdown(table)
        parts.append(f"### {table['dataset']} ({table['scale']} scale)\n\n" + table_markdown[name])
    sweeps = sweep_markdown(Path(results) / "mini") if mini else ""
    layers = layers_markdown(results, (scale,))
    claims_text = claims_markdown(tables)
    long_budget = long_budget_markdown(results) if mini else ""
    ablation = ablation_markdown(results) if mini else ""
    markdown = "\n\n".join(parts + ([f"### Learning-rate sweeps\n\n{sweeps}"] if sweeps else [])
                           + ["### The paper's claims at these scales\n\n" + claims_text]
                           + ([f"### Freeze ablation\n\n{ablation}"] if ablation else [])
                           + ([f"### The paper's number of passes\n\n{long_budget}"] if long_budget else [])
                           + ([f"### Layer activation versus noise level\n\n{layers}"] if layers else []))
    pngs = [str(save_table_png(t, Path(figures) / f"table_{t['dataset']}_{t['scale']}.png")) for t in tables]
    if mini:
        pngs += [str(p) for p in draw_study_figures(results, figures)]
    atomic_write_bytes(Path(figures) / "tables.md", markdown.encode())
    if readme:
        sections = dict(table_markdown, claims=claims_text, protocol=protocol_markdown())
        sections["evidence-protocol"] = evidence_plan.markdown()
        sections["evidence"] = evidence_markdown(results)
        for key, text in (("sweep", sweeps), ("layers", layers), ("ablation", ablation), ("long", long_budget)):
            if text:
                sections[key] = text
        siblings = [doc for doc in (Path(readme).with_name(n) for n in ("RESULTS.md", "PROTOCOL.md")) if doc.exists()]
        for doc in (Path(readme), *siblings):
            text = doc.read_text()
            update_readme(doc, {k: v for k, v in sections.items() if f"<!-- results:{k} -->" in text})
    return dict(tables=tables, markdown=markdown, pngs=pngs)
