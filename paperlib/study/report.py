"""The generated parts of the documents, kept in step with the results: the claims table of the README, the protocol's
tables and verdicts of RESULTS.md, the layer study's verdict, the protocol as PROTOCOL.md prints it, and
``figures/tables.md``; each written between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` markers of the
documents that have them. Also the report of a smoke or paper scale's own tables. Used by ``notebooks/tables.ipynb``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from paperlib.analysis import verdict
from paperlib.plots.figures import save_figure
from paperlib.store.files import atomic_write_bytes
from paperlib.study.evidence import plan
from paperlib.study.evidence.ablation import ablation_jobs, pilot_jobs
from paperlib.study.evidence.confirm import confirm_jobs
from paperlib.study.evidence.rates import rate_jobs
from paperlib.study.evidence.tables import table_jobs
from paperlib.study.ledger import ledger_dir, read_record
from paperlib.study.paper_numbers import ANALOGUE, CLAIM_FIGURES, REPORTED, reported_for
from paperlib.study.protocol import (
    ABLATION_CLAIMS,
    CONFIRM_VERSION,
    EVIDENCE_CLAIMS,
    EVIDENCE_KIMG,
    EVIDENCE_VERSION,
    MINI_DATASETS,
    PILOT_PROTOCOL,
)
from paperlib.study.summary import mean_sd
from paperlib.study.tables.format import format_number, to_markdown

KID_UNIT = ("KID: clean-fid's unbiased MMD² with the cubic kernel (x·y/64 + 1)³ on the unnormalised 64-d digits "
            "features, shown unscaled, in the kernel's units (it can dip below 0 when two sets are alike); the row "
            "'real held-out digits' is what fresh real data scores against the training digits on every metric")
POWERS = ("Beside each verdict: the rows it compares with their rates, the power the protocol planned (from the pilot "
          "sds, at the seeds run; 'not planned' where it planned none) and the power at the observed sds (had the truth "
          "been no difference, for 'at or below'; one margin's improvement, for 'beats'). The 95% interval decides "
          "'does not hold'; the 90% one is the one-sided test at 5% before Holm's correction.")
HELD_OUT = ("**Held-out view** (exploratory, deciding nothing): the same FID claims on FID against the 360 held-out "
            "digits, their own Holm family. The protocol fixed the training-split FID in advance; at this scale it "
            "can reward samples close to the training digits.")


class ReportError(ValueError):
    """The report cannot be written as asked (nothing to gather); nothing was written."""


def _recorded(ledger: Path, jobs) -> str:
    return f"{sum(read_record(ledger, j.record) is not None for j in jobs)} of {len(jobs)}"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def evidence_markdown(results: str | os.PathLike = "results") -> str:
    """The protocol's state per dataset: how many of its runs are recorded, the rates its sweeps chose
    (``results/evidence/<dataset>/rates.json``) and its table with every claim's verdict (``table.json``); then the
    freeze ablation's."""
    ledger = ledger_dir(results)
    parts = [f"Protocol version `{EVIDENCE_VERSION}` (PROTOCOL.md; its rate pilots: `{PILOT_PROTOCOL}`). {KID_UNIT}. "
             f"{POWERS}"]
    for dataset in MINI_DATASETS:
        base = Path(results) / "evidence" / dataset
        lines = [f"**{dataset}**: rate sweeps {_recorded(ledger, rate_jobs([dataset], results=str(results)))} runs "
                 f"recorded"]
        rates = _json(base / "rates.json")
        if rates is None:
            lines[0] += "; the table's rates are chosen when all are."
        else:
            lines[0] += (f"; table {_recorded(ledger, table_jobs([dataset], results=str(results)))} runs. Common rate "
                         f"of GDD and GDD-I: {rates['common']:g}; own best rates: "
                         + ", ".join(f"{m} {lr:g}" for m, lr in rates["own"].items()) + ".")
        table = _json(base / "table.json")
        if table is not None:
            lines += ["", evidence_table_markdown(table), ""] + verdict_lines(table)
            lines += ["", f"Training curves: `figures/evidence_curves_{dataset}.png`; the discriminator's view over the "
                      f"same runs: `figures/evidence_discriminator_{dataset}.png`; samples of the teacher, GDD and GDD-I "
                      f"beside their nearest training digits: `figures/evidence_nearest_{dataset}.png`."]
        parts.append("\n".join(lines))
    parts.append(ablation_markdown(results))
    parts.append(confirmation_markdown(results))
    parts.append(check_markdown(results))
    return "\n\n".join(parts)


def check_markdown(results: str | os.PathLike) -> str:
    """The last rerun of evidence records (``results/evidence/check.json``, :mod:`paperlib.study.check`): per record,
    the rule it was held to and how each metric came out."""
    report = _json(Path(results) / "evidence" / "check.json")
    if report is None:
        return ("**Rerun of evidence records**: not run yet (`python -m paperlib check`: one table run per method and "
                "dataset retrained from scratch and compared with its record).")
    made = report["machine"]
    lines = [f"**Rerun of evidence records** ({report.get('made', '')[:10]}, {made['cpu']} / {made['cpu_capability']}): "
             f"{'every record reproduced' if report['passed'] else 'NOT every record reproduced'} under its rule.", "",
             "| record | rule | result | FID recorded -> rerun | metrics' distance from the row mean (row sds) |",
             "|---|---|---|---|---|"]
    for c in report["checks"]:
        fid = c["metrics"]["fid"]
        sds = ", ".join(f"{k} {m['row_sds_from_mean']:+.1f}" for k, m in c["metrics"].items()
                        if m.get("row_sds_from_mean") is not None)
        lines.append(f"| {c['record']} | {c['rule']} | {'passed' if c['passed'] else 'FAILED'} | "
                     f"{fid['recorded']:.4f} -> {fid['retrained']:.4f} | {sds or '–'} |")
    return "\n".join(lines)


def confirmation_markdown(results: str | os.PathLike) -> str:
    """Amendment 2's confirmation: its runs recorded, then (when all are) its rows, verdicts and reported
    differences from ``results/evidence/confirm.json``."""
    ledger = ledger_dir(results)
    try:
        jobs = confirm_jobs(results=str(results))
    except FileNotFoundError:  # the common rates are not chosen yet
        return f"**Confirmation** (Amendment 2, `{CONFIRM_VERSION}`): waits for the rate sweeps."
    line = (f"**Confirmation** (Amendment 2, `{CONFIRM_VERSION}`; fresh seeds and latents, GDD and GDD-I at the common "
            f"rate, {EVIDENCE_KIMG:g} kimg): {_recorded(ledger, jobs)} runs recorded")
    table = _json(Path(results) / "evidence" / "confirm.json")
    if table is None:
        return line + "; its verdicts are printed when all are (`python -m paperlib run confirm`)."
    lines = [line + ".", "", "| dataset | row | seeds | FID (train) | FID (held-out) | precision | recall | near-copy share |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['dataset']} | {r['row']} | {len(r['seeds'])} | {mean_sd(r, 'fid')} | {mean_sd(r, 'fid_test')} | "
              f"{mean_sd(r, 'precision', 3)} | {mean_sd(r, 'recall', 3)} | {mean_sd(r, 'copy_share', 3)} |"
              for r in table["rows"]]
    lines += [""] + [f"- {c['sentence']}" for c in table["claims"]]
    lines += ["", "Reported beside them, deciding nothing:", ""] + [f"- {r['sentence']}" for r in table["reported"]]
    return "\n".join(lines)


def verdict_lines(table: dict) -> list[str]:
    """Each claim's verdict sentence with the rows it compares, both powers and its notes, then the held-out view
    (where the table has one), as markdown bullets."""
    lines = []
    for c in table["claims"]:
        planned = ("the protocol planned no power for it" if c.get("planned_power") is None
                   else f"planned power {c['planned_power']:.0%}")
        lines.append(f"- {c['sentence']} Rows: {c['rows']}; {planned}." if "rows" in c else f"- {c['sentence']}")
        lines += [f"  - {note}" for note in c.get("notes", [])]
    if table.get("held_out"):
        lines += ["", HELD_OUT, ""] + [f"- {_held_out_line(c)}" for c in table["held_out"]]
    return lines


def _held_out_line(claim: dict) -> str:
    if claim["verdict"] == "not decidable":
        return f"{claim['claim']} (held-out FID): not decidable: {claim['undecidable']}."
    return (f"{claim['claim']} (held-out FID): {claim['verdict']} in this view (difference {claim['diff']:+.3g}, 95% "
            f"interval [{claim['low95']:+.3g}, {claim['high95']:+.3g}] against the bound {claim['bound']:+.3g}; "
            f"Holm-adjusted p {claim['p_adjusted']:.3g})")


def evidence_table_markdown(table: dict) -> str:
    """The rows of one dataset's protocol table (:func:`paperlib.study.evidence.tables.assemble_evidence_table`) as
    markdown: seeds, mean ± sd over them of every metric, and the paper's FID for the setting the dataset stands in
    for beside the rows that have a counterpart there."""
    paper = REPORTED[ANALOGUE[table["dataset"]]]
    lines = [f"| row | seeds | FID (train) | FID (held-out) | KID (MMD², unscaled) | precision | recall | near-copy "
             f"share | the paper ({paper['name']}, Inception FID) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table["rows"]:
        kind, nfe = ("teacher", 35) if r["kind"] == "teacher35" else (r["kind"], None)
        reported = None if r.get("secondary") else reported_for(table["dataset"], kind, nfe)[0]
        lines.append(f"| {r['row']} | {len(r['seeds'])} | {mean_sd(r, 'fid')} | {mean_sd(r, 'fid_test')} | "
                     f"{mean_sd(r, 'kid')} | {mean_sd(r, 'precision', 3)} | {mean_sd(r, 'recall', 3)} | "
                     f"{mean_sd(r, 'copy_share', 3)} | {format_number(reported)} |")
    if table.get("real"):
        real = dict(table["real"], seeds=[None])
        lines.append(f"| real held-out digits ({real['num']}) | – | {mean_sd(real, 'fid')} | – | {mean_sd(real, 'kid')} | "
                     f"{mean_sd(real, 'precision', 3)} | {mean_sd(real, 'recall', 3)} | "
                     f"{mean_sd(real, 'copy_share', 3)} | – |")
    return "\n".join(lines)


def protocol_table_report(table: dict) -> str:
    """One dataset's protocol table as the fid_table notebook and ``python -m paperlib table`` show it: its rows,
    what its columns mean, and every claim's verdict."""
    return "\n".join([f"**{table['dataset']}**: {table['kimg']:g} kimg per run, {table['eval_num']:,} samples per "
                      f"evaluation on latents of its own, protocol `{table['protocol']}`.", "",
                      evidence_table_markdown(table), "", f"{KID_UNIT}. FIDs in the digits classifier's feature space: "
                      f"compare rows with each other, not with the paper's Inception FIDs. {POWERS}", ""]
                     + verdict_lines(table))


def ablation_markdown(results: str | os.PathLike) -> str:
    """The freeze ablation's state: its pilots and runs recorded, each policy's best rate, its rows and verdicts."""
    ledger, base = ledger_dir(results), Path(results) / "evidence" / "digits"
    pilots = [job for _, job in pilot_jobs(results=str(results))]
    line = f"**Freeze ablation** (digits): pilots {_recorded(ledger, pilots)} runs recorded"
    best = _json(base / "ablation-rates.json")
    if best is None:
        return line + "; each policy's rate is chosen when all are."
    lines = [line + f"; ablation {_recorded(ledger, ablation_jobs(results=str(results)))} runs. Best rates: "
             + ", ".join(f"{p} {lr:g}" for p, lr in best["best"].items()) + "."]
    table = _json(base / "ablation.json")
    if table is not None:
        lines += ["", "| policy | lr | seeds | FID (train) | FID (held-out) | precision | recall |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        same_runs = {}  # rows at one (policy, rate) are the same runs: shown once, their keys joined by '='
        for r in table["rows"]:
            same_runs.setdefault((r["policy"], r["lr"]), []).append(r)
        lines += [f"| {' = '.join(s['key'] for s in rows)} | {r['lr']:g} | {len(r['seeds'])} | {mean_sd(r, 'fid')} | "
                  f"{mean_sd(r, 'fid_test')} | {mean_sd(r, 'precision', 3)} | {mean_sd(r, 'recall', 3)} |"
                  for rows in same_runs.values() for r in rows[:1]]
        lines += [""] + verdict_lines(table)
    return "\n".join(lines)


def _cell(claim: dict | None, held_out: dict | None = None) -> str:
    """A claims-table cell: the verdict, the difference and its 95% interval, the planned power and the power at the
    observed sds, and the held-out view's verdict where there is one."""
    if claim is None:
        return "–"
    if claim["verdict"] == "not decidable":
        return "not decidable"
    fmt = lambda x: f"{x:+.0f}" if abs(x) >= 1000 else f"{x:+.3g}"  # noqa: E731
    planned = "–" if claim.get("planned_power") is None else f"{claim['planned_power']:.0%}"
    cell = (f"**{claim['verdict']}**: {fmt(claim['diff'])} [{fmt(claim['low95'])}, {fmt(claim['high95'])}]; "
            f"power {planned} / {claim['power']:.0%}")
    return cell + (f"; held-out view: {held_out['verdict']}" if held_out else "")


def claims_table_markdown(results: str | os.PathLike = "results") -> str:
    """The README's claims at a glance: one row per claim of the protocol, the paper's figure beside the verdict on
    each mini dataset (from ``results/evidence/<dataset>/table.json`` and ``ablation.json``)."""
    decided = {d: {c["key"]: c for c in (_json(Path(results) / "evidence" / d / "table.json") or {}).get("claims", [])}
               for d in MINI_DATASETS}
    ablation = {c["key"]: c for c in (_json(Path(results) / "evidence" / "digits" / "ablation.json") or {})
                .get("claims", [])}
    lines = ["| claim | the paper | digits | digits-cond |", "|---|---|---|---|"]
    held_out = {d: {c["key"]: c for c in (_json(Path(results) / "evidence" / d / "table.json") or {}).get("held_out", [])}
                for d in MINI_DATASETS}
    ablation_held_out = {c["key"]: c for c in (_json(Path(results) / "evidence" / "digits" / "ablation.json") or {})
                         .get("held_out", [])}
    for claim in EVIDENCE_CLAIMS:
        lines.append(f"| {claim['claim']} | {CLAIM_FIGURES[claim['key']]} | "
                     + " | ".join(_cell(decided[d].get(claim["key"]), held_out[d].get(claim["key"]))
                                  for d in MINI_DATASETS) + " |")
    for claim in ABLATION_CLAIMS:
        lines.append(f"| {claim['claim']} (freeze ablation, 48 kimg) | {CLAIM_FIGURES[claim['key']]} | "
                     f"{_cell(ablation.get(claim['key']), ablation_held_out.get(claim['key']))} | – |")
    return "\n".join(lines + ["", "Each cell: the verdict, then the difference of means (A minus B; lower is better) "
                              "and its 95% interval, in FID (digits features) or near-copy share; the power the "
                              "protocol planned / the power at the observed sds; and the same claim decided on "
                              "held-out FID (exploratory, deciding nothing). Errata, caveats and p-values are in "
                              "RESULTS.md."])


def layers_markdown(results: str | os.PathLike = "results", scales: tuple[str, ...] = ("mini",)) -> str:
    """The verdict of every ``<dataset>/<scale>/layer_activation.json`` (``notebooks/layer_activation.ipynb``)."""
    parts = []
    for path in sorted(Path(results).glob("*/*/layer_activation.json")):
        dataset, scale = path.parent.parent.name, path.parent.name
        if scale in scales:
            parts.append(f"**{dataset} ({scale} scale)**\n\n" + verdict(json.loads(path.read_text())["summary"]))
    return "\n\n".join(parts)


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


def gather_tables(results: str | os.PathLike, scale: str) -> list[dict]:
    """Every ``<dataset>/<scale>/table.json`` under ``results`` (a smoke or paper scale's own tables), by path."""
    tables = [json.loads(p.read_text()) for p in sorted(Path(results).glob(f"*/{scale}/table.json"))]
    return [t for t in tables if t.get("scale") == scale]


def save_table_png(table: dict, path: str | os.PathLike) -> Path:
    """Draw one smoke or paper FID table (its main columns, mean ± sd over runs as in the markdown) as a PNG, the
    figure sized to its rows so no blank band surrounds it."""
    import matplotlib.pyplot as plt

    decimals = dict(fid=2, fid_test=2, kid=2, precision=3, recall=3, memorisation=3)
    heads = ("row", "FID (train)", "FID (held-out)", "KID (raw)", "precision", "recall", "memorisation", "runs",
             "kimg", "frozen", "reported FID")
    cells = [[row["row"], *(mean_sd(row, c, d) for c, d in decimals.items()), str(len(row.get("seeds") or [1])),
              format_number(row.get("kimg"), 0),
              f"{100 * row['frozen_fraction']:.0f}%" if row.get("frozen_fraction") is not None else "–",
              format_number(row.get("reported_fid"))] for row in table["rows"]]
    height, top = 0.25 * (len(cells) + 1), 0.35
    fig = plt.figure(figsize=(13, height + top))
    ax = fig.add_axes((0, 0, 1, height / (height + top)))  # the table fills this box; the title sits above it
    ax.set_axis_off()
    grid = ax.table(cellText=cells, colLabels=heads, cellLoc="right", colLoc="right", bbox=(0, 0, 1, 1))
    grid.auto_set_font_size(False)
    grid.set_fontsize(8)
    grid.auto_set_column_width(list(range(len(heads))))
    fig.suptitle(f"{table['dataset']}, {table['scale']} scale: {table['eval_num']} samples per run, mean ± sd over "
                 f"runs; features: {table['feature_net']}", fontsize=9, y=1 - 0.05 / (height + top))
    return save_figure(fig, path, dpi=130)


def write_report(results: str | os.PathLike = "results", figures: str | os.PathLike = "figures",
                 readme: str | os.PathLike | None = None, scale: str = "mini") -> dict:
    """Write ``figures/tables.md`` for ``scale`` and (``readme`` given, mini scale) refresh the generated sections of
    it and of RESULTS.md and PROTOCOL.md beside it, each where it has their markers ('claims', 'evidence', 'layers',
    'evidence-protocol'). At mini scale the tables are the protocol's; at smoke and paper scale the scale's own
    tables, each also drawn as a PNG. Everything is gathered before anything is written: with no table of
    ``scale`` it raises ReportError and writes nothing. Returns dict(markdown=..., pngs=[...])."""
    if scale == "mini":
        if not any((Path(results) / "evidence" / d / "table.json").exists() for d in MINI_DATASETS):
            raise ReportError(f"no protocol table under {results}/evidence/: python -m paperlib run evidence first "
                              f"(nothing was written)")
        sections = {"claims": claims_table_markdown(results), "evidence": evidence_markdown(results),
                    "layers": layers_markdown(results), "evidence-protocol": plan.markdown()}
        markdown = "\n\n".join([f"### The protocol's tables\n\n{sections['evidence']}",
                                f"### Layer activation versus noise level\n\n{sections['layers']}"])
        pngs = []
    else:
        tables = gather_tables(results, scale)
        if not tables:
            raise ReportError(f"no table.json of scale {scale!r} under {results}/<dataset>/{scale}/: run "
                              f"notebooks/fid_table.ipynb with scale={scale!r} first (nothing was written)")
        sections = {}
        markdown = "\n\n".join(f"### {t['dataset']} ({t['scale']} scale)\n\n{to_markdown(t)}" for t in tables)
        layers = layers_markdown(results, (scale,))
        markdown += f"\n\n### Layer activation versus noise level\n\n{layers}" if layers else ""
        pngs = [str(save_table_png(t, Path(figures) / f"table_{t['dataset']}_{t['scale']}.png")) for t in tables]
    atomic_write_bytes(Path(figures) / "tables.md", markdown.encode())
    if readme and sections:
        for doc in (Path(readme), *(Path(readme).with_name(n) for n in ("RESULTS.md", "PROTOCOL.md"))):
            if doc.exists():
                text = doc.read_text()
                update_readme(doc, {k: v for k, v in sections.items() if f"<!-- results:{k} -->" in text})
    return dict(markdown=markdown, pngs=pngs)
