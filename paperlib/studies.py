"""The mini-scale experiments, in one registry. Each study declares its training runs (jobs for the pool, each with
its ledger record) and its summary (what it writes from them); ``python -m paperlib run NAME[,NAME...]`` trains
every run of the named studies in one pool (what the ledger already holds is not trained again; unfinished runs
resume), then writes the summary of each study whose runs are all done. ``./run_all.sh`` calls it.

Studies: ``table`` (each dataset's FID table), ``sweep`` (the learning-rate sweeps), ``ablation`` (the freeze
ablation), ``long`` (the table's GDD and GDD-I runs at the paper's number of passes), all of the first protocol,
``layers`` (the layer-activation study, :mod:`paperlib.layer_runs`); ``rates`` and ``evidence`` (the evidence
protocol's rate sweeps and tables, :mod:`paperlib.evidence_runs`, :mod:`paperlib.evidence_tables`),
``freeze-rates`` and ``freeze-evidence`` (its freeze ablation, :mod:`paperlib.evidence_ablation`).
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from paperlib.curves import average_curves, draw_long_curves
from paperlib.evidence import ablation_jobs, freeze_ablation, mini_sweep, sweep_jobs
from paperlib.evidence_ablation import ablation_jobs as freeze_jobs
from paperlib.evidence_ablation import ablation_rates, ablation_table, pilot_jobs
from paperlib.evidence_runs import rate_jobs, rates_summary
from paperlib.evidence_tables import evidence_table, table_jobs
from paperlib.io import atomic_write_bytes
from paperlib.layer_runs import LAYER_SIZES, compute_layer_study
from paperlib.ledger import ledger_dir, machine, read_record
from paperlib.pool import Job, default_workers, run_jobs
from paperlib.protocol import MINI_DATASETS, MINI_KIMG, SCALE_DEFAULTS
from paperlib.rundir import RunFolder
from paperlib.stats import aggregate_runs
from paperlib.tables import TableRequest, build_table, mini_jobs, table_network_jobs

LONG_KIMG = 144  # the paper's ~100 passes over the 1,437 training digits
LONG_METHODS = {"gdd": "GDD", "gddi": "GDD-I"}


@dataclass
class Options:
    """What every study is run with (the ``run`` verb's options)."""

    datasets: tuple = ("digits",)
    scale: str = "mini"         # the tables' scale (smoke: the tests' tiny runs)
    kimg: float = 0.0           # the runs' image budget (0: each study's own)
    device: str = "auto"
    workers: int = 0            # runs at once (0: one per CPU core, 6 on a GPU)
    eval_num: int = 0           # samples per FID (0: the scale's, 10,000 at mini)
    runs: str = "runs"
    results: str = "results"
    figures: str = "figures"

    @property
    def num(self) -> int:
        return self.eval_num or SCALE_DEFAULTS[self.scale]["fid_num"]

    def requests(self) -> list[TableRequest]:
        return [TableRequest(dataset=d, scale=self.scale, runs=self.runs, results=self.results, figures=self.figures,
                             workers=self.workers, fid_num=self.eval_num, device=self.device, kimg=self.kimg)
                for d in self.datasets]


@dataclass(frozen=True)
class Study:
    help: str
    jobs: Callable[[Options], list[Job]]
    summarise: Callable[[Options], object]


def long_jobs(options: Options) -> list[Job]:
    """The table's GDD and GDD-I runs of the unconditional digits trained to :data:`LONG_KIMG`, each in a folder of
    its own; where the table's finished run is on this machine, the long run starts from a copy of it (resuming is
    exact, so this equals training from scratch, a third faster)."""
    request = TableRequest(dataset="digits", scale="mini", runs=options.runs, results=options.results,
                           fid_num=options.num, device=options.device)
    jobs = []
    for job in mini_jobs(request):
        method = job.preset.removeprefix("digits-")
        if method not in LONG_METHODS:
            continue
        name = f"long{LONG_KIMG}/{job.preset}/seed{job.overrides['seed']}"
        run_dir = str(Path(options.runs) / "mini" / "digits" / name)
        if not Path(run_dir).exists() and RunFolder(job.run_dir).states():
            table_run = RunFolder(job.run_dir)  # its 48-kimg evaluation and lock stay behind
            shutil.copytree(job.run_dir, run_dir, ignore=shutil.ignore_patterns(table_run.result.name,
                                                                                table_run.lock_file.name))
        jobs.append(replace(job, label=f"digits {LONG_METHODS[method]} seed {job.overrides['seed']} to {LONG_KIMG} kimg",
                            run_dir=run_dir, overrides=dict(job.overrides, total_kimg=LONG_KIMG),
                            record=f"mini/digits/{name}"))
    return jobs


def long_summary(options: Options) -> dict:
    """``results/digits/mini/long<kimg>.json``: the table's teacher (NFE 1 and 35) and real-data rows beside the
    long GDD and GDD-I rows (mean ± sd over seeds), in the table format, and the curves figure."""
    jobs = long_jobs(options)
    results = run_jobs(jobs, workers=1)  # every run is recorded by now: read back, nothing trained
    table = json.loads((Path(options.results) / "digits" / "mini" / "table.json").read_text())
    rows = [r for r in table["rows"] if r["kind"] == "real" or (r["kind"] == "teacher" and r["nfe"] in (1, 35))]
    for method, label in LONG_METHODS.items():
        done = [(job, r) for job, r in zip(jobs, results) if job.preset == f"digits-{method}"]
        curves = [r.get("curve") for _, r in done]
        rows.append(dict(row=f"{label} (NFE 1), {LONG_KIMG} kimg", kind=method, run_dirs=[j.run_dir for j, _ in done],
                         checkpoint=str(RunFolder(done[0][0].run_dir).network),
                         **aggregate_runs([r for _, r in done], [j.overrides["seed"] for j, _ in done]),
                         curve=average_curves(curves) if all(curves) else done[0][1].get("row_curve"),
                         reported_fid=None, reported_source=""))
    long = dict(dataset=table["dataset"], scale=table["scale"], eval_num=table["eval_num"],
                feature_net=table["feature_net"], kimg=LONG_KIMG, continued_from_kimg=MINI_KIMG, rows=rows)
    atomic_write_bytes(Path(options.results) / "digits" / "mini" / f"long{LONG_KIMG}.json",
                       json.dumps(long, indent=1).encode())
    draw_long_curves(long, options.figures, SCALE_DEFAULTS["mini"]["curve_num"])
    return long


STUDIES = {
    "table": Study("each dataset's FID table (3 seeds per trained row)",
                   lambda o: [job for r in o.requests() for job in mini_jobs(r)],
                   lambda o: [build_table(r) for r in o.requests()]),
    "sweep": Study("the learning-rate sweeps that chose the mini presets' rates",
                   lambda o: sweep_jobs(o.datasets, runs=o.runs, device=o.device, kimg=o.kimg, eval_num=o.num,
                                        results=o.results),
                   lambda o: mini_sweep(o.datasets, runs=o.runs, results=o.results, device=o.device, workers=o.workers,
                                        kimg=o.kimg, eval_num=o.num)),
    "ablation": Study("the freeze ablation: FID against the generator's frozen fraction, 3 seeds per policy",
                      lambda o: [j for d in o.datasets for j in ablation_jobs(d, runs=o.runs, device=o.device,
                                                                               kimg=o.kimg, eval_num=o.num,
                                                                               results=o.results)],
                      lambda o: [freeze_ablation(d, runs=o.runs, results=o.results, figures=o.figures, device=o.device,
                                                 workers=o.workers, kimg=o.kimg, eval_num=o.num)
                                 for d in o.datasets]),
    "long": Study(f"the unconditional table's GDD and GDD-I runs at {LONG_KIMG} kimg, the paper's number of passes",
                  long_jobs, long_summary),
    "layers": Study("the layer-activation study on each table's teacher and seed-1 GDD and GDD-I networks (trained "
                    "where this checkout lacks them)",
                    lambda o: [job for r in o.requests() for job in table_network_jobs(r)],
                    lambda o: [compute_layer_study(d, o.scale, o.results, o.figures, device=o.device, runs=o.runs,
                                                   **LAYER_SIZES[o.scale])
                               for d in o.datasets]),
    "rates": Study("the evidence protocol's rate sweeps: every table method on one grid of rates, 2 pilot seeds, "
                   "choosing GDD's and GDD-I's common rate and each method's own",
                   lambda o: rate_jobs(o.datasets, o.runs, o.results, o.device),
                   lambda o: rates_summary(o.datasets, o.runs, o.results, o.device)),
    "evidence": Study("the evidence protocol's tables at 144 kimg, at the rates the sweeps chose, seeds by power, with "
                      "every claim's verdict (needs the rates study)",
                      lambda o: table_jobs(o.datasets, o.runs, o.results, o.device),
                      lambda o: [evidence_table(d, o.runs, o.results, o.device, o.figures) for d in o.datasets]),
    "freeze-rates": Study("the evidence protocol's freeze-ablation pilots (digits): every freezing policy on the grid "
                          "of rates, 2 pilot seeds, choosing each policy's best rate",
                          lambda o: [job for _, job in pilot_jobs(o.runs, o.results, o.device)],
                          lambda o: ablation_rates(o.runs, o.results, o.device)),
    "freeze-evidence": Study("the evidence protocol's freeze ablation (digits, 48 kimg, 3 seeds per policy at its "
                             "best rate, 'none' and 'gddi' also at 1e-3) and its two verdicts (needs freeze-rates)",
                             lambda o: freeze_jobs(o.runs, o.results, o.device),
                             lambda o: ablation_table(o.results)),
}


def run_studies(names: list[str], options: Options, minutes: float = 0.0, log=print) -> list[str]:
    """Train every run of the studies ``names`` in one pool (the ledger's records first; no new run starts after
    ``minutes``, 0 = no limit), then write the summary of each study whose runs all finished. Returns the studies
    summarised; run again to go on with the others."""
    unknown = sorted(set(names) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; expected some of {', '.join(STUDIES)}")
    bad = sorted(set(options.datasets) - set(MINI_DATASETS))
    if bad:
        raise ValueError(f"datasets {bad}: expected some of {', '.join(MINI_DATASETS)}")
    by_study = {name: STUDIES[name].jobs(options) for name in names}
    jobs = list({job.run_dir: job for name in names for job in by_study[name]}.values())
    deadline = time.time() + 60 * minutes if minutes else None
    finished = {job.run_dir for job, r in zip(jobs, run_jobs(jobs, workers=options.workers or default_workers(
        options.device), deadline=deadline)) if r is not None}
    done = []
    for name in names:
        if all(job.run_dir in finished for job in by_study[name]):
            STUDIES[name].summarise(options)
            done.append(name)
            log(f"study {name}: written under {options.results}/ and {options.figures}/")
        else:
            log(f"study {name}: not every run finished before the deadline; run the command again to go on")
    return done


# The mini check: a stated sample of the ledger's runs, one per method of the unconditional table (about 25 min on
# 2 CPU cores, two at a time), retrained from scratch beside the ledger and compared with their records.
CHECK_SAMPLE = ("mini/digits/digits-gdd/seed1", "mini/digits/digits-gddi/seed1", "mini/digits/digits-instance/seed1",
                "mini/digits/digits-gddi-smalld/seed1")
CHECK_METRICS = ("fid", "fid_test", "precision", "recall", "memorisation")
CHECK_TOLERANCE_SDS = 3.0  # on another kind of machine: within this many of the row's seed sds, metric by metric


def same_machine(record: dict) -> bool:
    """Whether a record was made on this kind of machine (CPU model, torch's CPU capability, thread count), where a
    retrained run must equal it bit for bit."""
    made = record.get("machine") or {}
    here = machine()
    return all(made.get(k) == here[k] for k in ("cpu", "cpu_capability", "threads"))


def check_records(options: Options, names: tuple[str, ...] = CHECK_SAMPLE, log=print) -> dict:
    """Retrain the runs ``names`` of the ledger from scratch (in ``<runs>/check/``, never reading their
    records) and compare each with its record: equal bit for bit when the record was made on this kind of machine,
    else every metric within :data:`CHECK_TOLERANCE_SDS` of the row's seed sd (from the row's records). Writes
    ``results/mini-check.json``; returns it, with ``passed``."""
    ledger = ledger_dir(options.results)
    jobs_by_record = {job.record: job for r in options.requests() for job in mini_jobs(r)}
    unknown = [n for n in names if n not in jobs_by_record or read_record(ledger, n) is None]
    if unknown:
        raise ValueError(f"no ledger record of the table's runs named {unknown}")
    jobs = [replace(jobs_by_record[n], ledger="", record="", run_dir=str(Path(options.runs) / "check" / n),
                    eval_num=read_record(ledger, n)["evaluation"]["num"]) for n in names]
    results = run_jobs(jobs, workers=options.workers or default_workers(options.device))
    checks = []
    for name, result in zip(names, results):
        record = read_record(ledger, name)
        row = [read_record(ledger, other) for other in jobs_by_record if other.rsplit("/", 1)[0] == name.rsplit("/", 1)[0]]
        rule = "bit for bit" if same_machine(record) else f"within {CHECK_TOLERANCE_SDS:g} seed sds"
        metrics = {}
        for key in CHECK_METRICS:
            recorded, again = record["evaluation"][key], result[key]
            values = [r["evaluation"][key] for r in row if r is not None]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            ok = again == recorded if rule == "bit for bit" else abs(again - recorded) <= CHECK_TOLERANCE_SDS * sd
            metrics[key] = dict(recorded=recorded, retrained=again, row_sd=sd, ok=bool(ok))
        checks.append(dict(record=name, rule=rule, recorded_on=record.get("machine"), passed=all(
            m["ok"] for m in metrics.values()), metrics=metrics))
        log(f"{name}: {'passed' if checks[-1]['passed'] else 'FAILED'} ({rule}): "
            + ", ".join(f"{k} {m['recorded']:.3f} -> {m['retrained']:.3f}" for k, m in metrics.items()))
    report = dict(machine=machine(), checks=checks, passed=all(c["passed"] for c in checks))
    atomic_write_bytes(Path(options.results) / "mini-check.json", json.dumps(report, indent=1).encode())
    return report
