"""What each notebook shows for its checked parameters (:func:`paperlib.notebook.params.setup`): the calls into the
study behind every cell, so that the notebooks stay thin and the tests reach all of it. At their defaults on a fresh
clone, each renders from committed records and writes nothing that differs from what is committed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from paperlib.analysis import AnalysisError
from paperlib.study.curves import training_curves_report
from paperlib.study.evidence.tables import assemble_evidence_table, table_jobs
from paperlib.study.layers import compute_layer_study, layer_outputs
from paperlib.study.ledger import ledger_dir
from paperlib.study.registry import Options, run_studies
from paperlib.study.report import protocol_table_report, write_report
from paperlib.study.tables.build import build_table, describe, table_figures
from paperlib.study.tables.format import to_markdown


def describe_fid_table(p: SimpleNamespace) -> str:
    """What fid_table.ipynb is about to do, in a few lines."""
    request = p.request
    if request.scale != "mini":
        return describe(request)
    jobs = table_jobs([request.dataset], request.runs, request.results, request.device)
    missing = [job for job in jobs if job.recorded() is None]
    return (f"{request.dataset} at mini scale: the protocol's table (PROTOCOL.md), {len(jobs) - len(missing)} of "
            f"{len(jobs)} runs recorded in {ledger_dir(request.results)}/; "
            + (f"train = True trains the other {len(missing)} (about 40 min each on one CPU core)" if missing
               else "nothing to train") + ".")


def fid_table(p: SimpleNamespace) -> tuple[str, list[Path], str]:
    """fid_table.ipynb's table: (its markdown, its figures, a line saying where it comes from). At mini scale the
    protocol's table assembled from the ledger (with ``train``, the runs it lacks trained first and its files
    written); at smoke and paper scale the scale's own table, built from runs."""
    request = p.request
    if request.scale != "mini":
        table = build_table(request)
        return to_markdown(table), table_figures(request), f"built from the runs in {request.runs}/"
    source = f"assembled from the run records in {ledger_dir(request.results)}/; nothing was trained or written"
    if p.train:
        run_studies(["evidence"], Options(datasets=(request.dataset,), device=request.device, workers=request.workers,
                                          runs=request.runs, results=request.results, figures=request.figures))
        source = f"the runs {ledger_dir(request.results)}/ lacked were trained, and the table written from its records"
    table = assemble_evidence_table(request.dataset, request.results)
    figures = [Path(request.figures) / f"evidence_{name}_{request.dataset}.png"
               for name in ("curves", "discriminator", "nearest")]
    return protocol_table_report(table), [f for f in figures if f.exists()], source


def layer_study(p: SimpleNamespace) -> tuple[dict, str]:
    """layer_activation.ipynb's study: computed when ``p.compute``, else the numbers and figures written before (the
    committed ones on a fresh clone). Returns (dict as :func:`~paperlib.study.layers.compute_layer_study`'s, a line
    saying which it is)."""
    if p.compute:
        done = compute_layer_study(p.dataset, p.scale, p.results_dir, p.figures_dir, p.teacher, p.generators, p.data,
                                   p.num_sigmas, p.sigma_min, p.sigma_max, p.batch, p.device, p.runs_dir)
        return done, f"computed now; numbers in {done['numbers_path']}"
    out = layer_outputs(p.dataset, p.scale, p.results_dir, p.figures_dir)
    if not out["numbers"].exists():
        raise AnalysisError(f"no earlier study at {out['numbers']}: set compute = True to compute it (it trains its "
                            f"seed-1 GDD and GDD-I networks where this checkout lacks them)")
    numbers = json.loads(out["numbers"].read_text())
    figures = {name: path for name, path in out["figures"].items() if path.exists()}
    return (dict(numbers=numbers, summary=numbers["summary"], figures=figures, numbers_path=out["numbers"]),
            f"showing the study written before ({out['numbers']}); set compute = True to compute it again (it trains "
            f"the networks this checkout lacks)")


def training_curves(p: SimpleNamespace) -> dict:
    """training_curves.ipynb's figures (:func:`~paperlib.study.curves.training_curves_report`)."""
    return training_curves_report(p.datasets, p.scale, p.results_dir, p.figures_dir)


def tables(p: SimpleNamespace) -> dict:
    """tables.ipynb's report (:func:`~paperlib.study.report.write_report`)."""
    return write_report(p.results_dir, p.figures_dir, readme=p.readme or None, scale=p.scale)
