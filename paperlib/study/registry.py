"""The mini-scale studies, in one registry. Each study declares its training runs (jobs for the pool, each with its
ledger record where it has one) and its summary (what it writes from them); ``python -m paperlib run NAME[,NAME...]``
trains every run of the named studies in one pool (what the ledger already holds is not trained again; unfinished
runs resume), then writes the summary of each study whose runs are all done. ``./run_all.sh`` calls it.

Studies: ``rates`` and ``evidence`` (the protocol's rate sweeps and tables, :mod:`paperlib.study.evidence.rates`,
:mod:`paperlib.study.evidence.tables`), ``freeze-rates`` and ``freeze-evidence`` (its freeze ablation,
:mod:`paperlib.study.evidence.ablation`), ``confirm`` (Amendment 2's confirmation, :mod:`paperlib.study.evidence.confirm`),
and ``layers`` (the layer-activation study, :mod:`paperlib.study.layers`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from paperlib.study.evidence.ablation import ablation_jobs, ablation_rates, ablation_table, pilot_jobs
from paperlib.study.evidence.confirm import confirm_jobs, write_confirmation
from paperlib.study.evidence.rates import rate_jobs, rates_summary
from paperlib.study.evidence.tables import table_jobs, write_evidence_table
from paperlib.study.jobs import Job
from paperlib.study.layers import LAYER_SIZES, compute_layer_study, generator_jobs
from paperlib.study.names import STUDY_HELP
from paperlib.study.pool import default_workers, run_jobs
from paperlib.study.protocol import MINI_DATASETS


@dataclass
class Options:
    """What every study is run with (the ``run`` verb's options)."""

    datasets: tuple = ("digits",)
    device: str = "auto"
    workers: int = 0            # runs at once (0: one per CPU core, 6 on a GPU)
    runs: str = "runs"
    results: str = "results"
    figures: str = "figures"


@dataclass(frozen=True)
class Study:
    help: str
    jobs: Callable[[Options], list[Job]]
    summarise: Callable[[Options], object]


STUDIES = {
    "rates": Study(STUDY_HELP["rates"],
                   lambda o: rate_jobs(o.datasets, o.runs, o.results, o.device),
                   lambda o: rates_summary(o.datasets, o.runs, o.results, o.device)),
    "evidence": Study(STUDY_HELP["evidence"],
                      lambda o: table_jobs(o.datasets, o.runs, o.results, o.device),
                      lambda o: [write_evidence_table(d, o.runs, o.results, o.device, o.figures) for d in o.datasets]),
    "freeze-rates": Study(STUDY_HELP["freeze-rates"],
                          lambda o: [job for _, job in pilot_jobs(o.runs, o.results, o.device)],
                          lambda o: ablation_rates(o.runs, o.results, o.device)),
    "freeze-evidence": Study(STUDY_HELP["freeze-evidence"],
                             lambda o: ablation_jobs(o.runs, o.results, o.device),
                             lambda o: ablation_table(o.results)),
    "confirm": Study(STUDY_HELP["confirm"],
                     lambda o: confirm_jobs(MINI_DATASETS, o.runs, o.results, o.device),  # one family
                     lambda o: write_confirmation(o.results)),
    "layers": Study(STUDY_HELP["layers"],
                    lambda o: [job for d in o.datasets for job in generator_jobs(d, "mini", o.runs, o.device)],
                    lambda o: [compute_layer_study(d, "mini", o.results, o.figures, device=o.device, runs=o.runs,
                                                   **LAYER_SIZES["mini"]) for d in o.datasets]),
}
assert list(STUDIES) == list(STUDY_HELP)


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
