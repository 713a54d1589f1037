"""The protocol's rate sweeps (``paperlib.study.protocol``) and the choices made from them.

``rates``: every method of a table (GDD, GDD-I, instance distillation, the small-D ablation) at every rate of
:data:`~paperlib.study.protocol.RATE_GRID`, :data:`~paperlib.study.protocol.PILOT_SEEDS`, :data:`~paperlib.study.protocol.PILOT_KIMG`;
from their records, :func:`choose_rates` picks the one rate GDD and GDD-I share in the tables and each method's own
best, on the training-split FID alone. Records go to ``results/ledger/evidence/<dataset>/...``, made under
:data:`~paperlib.study.protocol.PILOT_PROTOCOL` (the pilots' rules, unchanged by the amendment); each pilot seed is scored
on its own latents (:func:`~paperlib.study.protocol.eval_latents`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from paperlib.store.files import atomic_write_bytes
from paperlib.study.jobs import Job
from paperlib.study.ledger import LedgerError, cpu_kind, ledger_dir, read_record
from paperlib.study.pool import run_jobs
from paperlib.study.protocol import (
    CURVE_NUM,
    EVIDENCE_METRICS,
    EVIDENCE_NUM,
    INSTANCE_BANK,
    PILOT_KIMG,
    PILOT_PROTOCOL,
    PILOT_SEEDS,
    RATE_GRID,
    TABLE_ROWS,
    curve_latent_start,
    eval_latents,
)
from paperlib.study.summary import aggregate_runs

METHOD_LABELS = {method: label for method, label, _ in TABLE_ROWS}


def evidence_job(dataset: str, method: str, lr: float, seed: int, kimg: float, name: str, latents: range,
                 protocol: str, runs: str = "runs", results: str = "results", device: str = "auto",
                 curve_every_kimg: float = 0.0, **overrides) -> Job:
    """One run of the evidence protocol: ``dataset``'s ``method`` preset at rate ``lr``, training seed ``seed`` and
    ``kimg`` (further config ``overrides``, e.g. a freezing policy), in ``runs/<name>``, recorded as ``name`` under
    the version ``protocol``, its final evaluation on the per-sample seeds ``latents`` and, every
    ``curve_every_kimg`` kimg, a FID of :data:`~paperlib.study.protocol.CURVE_NUM` samples from half a slot on
    (:func:`~paperlib.study.protocol.curve_latent_start`). The instance baseline gets its bank of
    :data:`~paperlib.study.protocol.INSTANCE_BANK` teacher solutions, one bank per teacher in ``runs/evidence/banks``."""
    bank = dict(instance_bank=INSTANCE_BANK, bank_dir=str(Path(runs) / "evidence" / "banks"))  # one per teacher
    overrides = dict(lr=lr, seed=seed, total_kimg=kimg, device=device, **overrides,
                     **(bank if method == "instance" else {}))
    policy = f", freeze {overrides['freeze_policy']}" if overrides.get("freeze_policy") else ""
    return Job(f"{dataset} {METHOD_LABELS[method]}{policy} lr {lr:g} seed {seed}, {kimg:g} kimg", f"{dataset}-{method}",
               str(Path(runs) / name), overrides, eval_num=EVIDENCE_NUM, ledger=str(ledger_dir(results)),
               record=name, eval_start=latents.start, protocol=protocol, may_diverge=True,
               fid_every_kimg=curve_every_kimg, curve_num=CURVE_NUM, curve_start=curve_latent_start(latents))


def recorded_row(ledger: Path, names: list[str], seeds: list[int], what: str, command: str) -> tuple[list, list, dict]:
    """One trained row of an evidence table from the ``ledger``: the records ``names`` of training ``seeds``.
    Returns (records, evaluations, summary): each evaluation with its ``diverged`` flag, and the summary
    dict(diverged=[seeds], machines=[CPU kinds], mean ± sd and per-seed values of every metric). Raises
    LedgerError naming ``what`` lacks which seeds, and the ``command`` that records them."""
    records = [read_record(ledger, name) for name in names]
    missing = [s for s, r in zip(seeds, records) if r is None]
    if missing:
        raise LedgerError(f"{what} lacks the records of seeds {missing}: {command}")
    evaluations = [dict(r["evaluation"], diverged=r.get("diverged")) for r in records]
    summary = dict(diverged=[s for s, e in zip(seeds, evaluations) if e["diverged"]],
                   machines=sorted({cpu_kind(r) for r in records}),
                   **aggregate_runs(evaluations, list(seeds), EVIDENCE_METRICS))
    return records, evaluations, summary


def rate_name(dataset: str, method: str, lr: float, seed: int) -> str:
    return f"evidence/{dataset}/rates/{method}-lr{lr:g}/seed{seed}"


def rate_jobs(datasets, runs: str = "runs", results: str = "results", device: str = "auto") -> list[Job]:
    """Every pilot run of the rate sweeps of ``datasets``: GDD and GDD-I first (they decide the common rate), then
    the small-D ablation and instance distillation, the seeds of one rate side by side."""
    order = ("gdd", "gddi", "gddi-smalld", "instance")
    return [evidence_job(d, m, lr, s, PILOT_KIMG, rate_name(d, m, lr, s), eval_latents(s), PILOT_PROTOCOL, runs,
                         results, device) for d in datasets for m in order for lr in RATE_GRID for s in PILOT_SEEDS]


def _score(result: dict | None) -> float:
    """A pilot's log training-split FID; +inf when it diverged or its FID is not finite."""
    fid = None if result is None else result.get("fid")
    return math.log(fid) if fid is not None and math.isfinite(fid) and fid > 0 else math.inf


def best_rates(pilots: dict[tuple[str, float], list[dict]]) -> tuple[dict, dict]:
    """Each method's score per rate (mean over seeds of log training-split FID, +inf if any pilot diverged) and its
    best rate (ties: the lower rate), from ``pilots``: ``(method, lr)`` -> per-seed results."""
    scores: dict[str, dict[float, float]] = {}
    for (method, lr), results in pilots.items():
        scores.setdefault(method, {})[lr] = float(np.mean([_score(r) for r in results]))
    for method, s in scores.items():
        if not any(math.isfinite(v) for v in s.values()):
            raise ValueError(f"every rate of the grid has a diverged {method} pilot: no best rate")
    return scores, {m: min(sorted(s), key=lambda lr: s[lr]) for m, s in scores.items()}


def choose_rates(pilots: dict[tuple[str, float], list[dict]]) -> dict:
    """The rates of one dataset's table from its pilots (``(method, lr)`` -> per-seed results): each method's score
    per rate and ``own`` best rate (:func:`best_rates`), and the ``common`` rate minimising the mean of GDD's and
    GDD-I's scores (ties: the lower rate)."""
    scores, own = best_rates(pilots)
    both = {lr: (scores["gdd"][lr] + scores["gddi"][lr]) / 2 for lr in sorted(scores["gdd"])}
    common = min(sorted(both), key=lambda lr: both[lr])
    if not math.isfinite(both[common]):
        raise ValueError("every rate of the grid has a diverged GDD or GDD-I pilot: no common rate")
    return dict(common=common, own=own, scores={m: {f"{lr:g}": v for lr, v in s.items()} for m, s in scores.items()})


def rates_summary(datasets, runs: str = "runs", results: str = "results", device: str = "auto") -> dict:
    """Choose each dataset's rates from its recorded pilots (:func:`rate_jobs`, all finished) and write them, with
    every pilot's values, to ``results/evidence/<dataset>/rates.json``. Returns {dataset: choice}."""
    jobs = rate_jobs(datasets, runs, results, device)
    done = run_jobs(jobs)  # every pilot is recorded by now: read back, nothing trained
    chosen = {}
    for dataset in datasets:
        pilots: dict[tuple[str, float], list[dict]] = {}
        rows = []
        for job, result in zip(jobs, done):
            if job.preset.startswith(f"{dataset}-") and job.record.startswith(f"evidence/{dataset}/"):
                method = job.preset.removeprefix(f"{dataset}-")
                pilots.setdefault((method, job.overrides["lr"]), []).append(result)
                rows.append(dict(method=method, lr=job.overrides["lr"], seed=job.overrides["seed"],
                                 record=job.record, fid=result.get("fid"), fid_test=result.get("fid_test"),
                                 diverged=result.get("diverged")))
        choice = dict(choose_rates(pilots), dataset=dataset, kimg=PILOT_KIMG, seeds=list(PILOT_SEEDS),
                      protocol=PILOT_PROTOCOL, pilots=rows)
        atomic_write_bytes(Path(results) / "evidence" / dataset / "rates.json", json.dumps(choice, indent=1).encode())
        chosen[dataset] = choice
    return chosen
