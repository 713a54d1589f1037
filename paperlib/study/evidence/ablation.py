"""The protocol's freeze ablation (``paperlib.study.protocol``, with its amendment): digits at
:data:`~paperlib.study.protocol.PILOT_KIMG`, every policy of :data:`~paperlib.study.protocol.ABLATION_POLICIES` at its own best
rate of :data:`~paperlib.study.protocol.RATE_GRID`, and 'none' (GDD) and 'gddi' (GDD-I) also at
:data:`~paperlib.study.protocol.ABLATION_FIXED_RATE`, so that "freezing stabilises training at a high rate" and "freezing
is better at the best rate" are two claims, Holm-corrected as one family.

``freeze-rates``: each policy's pilots (:data:`~paperlib.study.protocol.PILOT_SEEDS` per rate; 'none' and 'gddi' reuse the
table sweeps' GDD and GDD-I pilots) and its best rate, on the training-split FID alone. ``freeze-evidence``:
:data:`~paperlib.study.protocol.ABLATION_SEEDS` per (policy, rate), each on its own latents, and the verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path

from paperlib.store.files import atomic_write_bytes
from paperlib.study.evidence.rates import best_rates, evidence_job, rate_jobs, recorded_row
from paperlib.study.evidence.verdicts import annotate, decide_claims
from paperlib.study.jobs import Job
from paperlib.study.ledger import check_one_protocol, cpu_kind, ledger_dir
from paperlib.study.pool import run_jobs
from paperlib.study.protocol import (
    ABLATION_CLAIMS,
    ABLATION_FIXED_RATE,
    ABLATION_POLICIES,
    ABLATION_SEEDS,
    EVIDENCE_NUM,
    EVIDENCE_VERSION,
    FID_MARGIN,
    PILOT_KIMG,
    PILOT_PROTOCOL,
    PILOT_SEEDS,
    RATE_GRID,
    ablation_latents,
    eval_latents,
)

DATASET = "digits"
SWEPT = {"none": "gdd", "gddi": "gddi"}  # policies whose pilots are the table sweeps' GDD and GDD-I pilots


def _policy_job(policy: str, lr: float, seed: int, name: str, latents: range, protocol: str, runs: str,
                results: str, device: str) -> Job:
    """One digits run of ``policy`` at ``lr``: GDD's preset for 'none', GDD-I's for 'gddi', and GDD-I's preset with
    only the policy's convolutions frozen otherwise."""
    method = SWEPT.get(policy, "gddi")
    extra = {} if policy in SWEPT else dict(freeze_level=0, freeze_policy=policy)
    return evidence_job(DATASET, method, lr, seed, PILOT_KIMG, name, latents, protocol, runs, results, device, **extra)


def _results_dir(results: str) -> Path:
    return Path(results) / "evidence" / DATASET


def pilot_jobs(runs: str = "runs", results: str = "results", device: str = "auto") -> list[tuple[str, Job]]:
    """Every pilot of the ablation as (policy, job): the table sweeps' digits GDD and GDD-I pilots for 'none' and
    'gddi', and the other policies at every rate of the grid and every pilot seed."""
    pairs = [(policy, job) for job in rate_jobs([DATASET], runs, results, device)
             for policy, method in SWEPT.items() if job.preset == f"{DATASET}-{method}"]
    pairs += [(policy, _policy_job(policy, lr, seed, f"evidence/{DATASET}/ablation/rates/{policy}-lr{lr:g}/seed{seed}",
                                   eval_latents(seed), PILOT_PROTOCOL, runs, results, device))
              for policy in ABLATION_POLICIES if policy not in SWEPT for lr in RATE_GRID for seed in PILOT_SEEDS]
    return pairs


def ablation_rates(runs: str = "runs", results: str = "results", device: str = "auto") -> dict:
    """Each policy's best rate from its recorded pilots (:func:`pilot_jobs`, all finished), written with every
    pilot's values to ``results/evidence/digits/ablation-rates.json``. Returns that file's dict."""
    pairs = pilot_jobs(runs, results, device)
    done = run_jobs([job for _, job in pairs])  # every pilot is recorded by now: read back, nothing trained
    pilots: dict[tuple[str, float], list[dict]] = {}
    for (policy, job), result in zip(pairs, done):
        pilots.setdefault((policy, job.overrides["lr"]), []).append(result)
    scores, best = best_rates(pilots)
    out = dict(dataset=DATASET, kimg=PILOT_KIMG, seeds=list(PILOT_SEEDS), protocol=PILOT_PROTOCOL, best=best,
               scores={p: {f"{lr:g}": v for lr, v in s.items()} for p, s in scores.items()},
               pilots=[dict(policy=policy, lr=job.overrides["lr"], seed=job.overrides["seed"], record=job.record,
                            fid=r.get("fid"), fid_test=r.get("fid_test"), diverged=r.get("diverged"))
                       for (policy, job), r in zip(pairs, done)])
    atomic_write_bytes(_results_dir(results) / "ablation-rates.json", json.dumps(out, indent=1).encode())
    return out


def chosen_ablation_rates(results: str = "results") -> dict[str, float]:
    """Each policy's best rate as :func:`ablation_rates` wrote it."""
    path = _results_dir(results) / "ablation-rates.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the freeze ablation's rates are chosen by its pilots first: "
                                "python -m paperlib run freeze-rates")
    return json.loads(path.read_text())["best"]


def ablation_rows(best: dict[str, float]) -> list[dict]:
    """The ablation's rows: dict(key, policy, lr), every policy at its best rate ('<policy>@best'), and 'none' and
    'gddi' at the fixed rate ('<policy>@fixed'); a row at the same (policy, rate) as another is the same runs."""
    rows = [dict(key=f"{p}@best", policy=p, lr=best[p]) for p in ABLATION_POLICIES]
    return rows + [dict(key=f"{p}@fixed", policy=p, lr=ABLATION_FIXED_RATE) for p in SWEPT]


def run_name(policy: str, lr: float, seed: int) -> str:
    return f"evidence/{DATASET}/ablation/{policy}-lr{lr:g}/seed{seed}"


def ablation_jobs(runs: str = "runs", results: str = "results", device: str = "auto") -> list[Job]:
    """Every run of the ablation's rows (:func:`ablation_rows`), seed by seed, each (policy, rate, seed) once."""
    rows = ablation_rows(chosen_ablation_rates(results))
    jobs = {}
    for seed in ABLATION_SEEDS:
        for row in rows:
            name = run_name(row["policy"], row["lr"], seed)
            jobs.setdefault(name, _policy_job(row["policy"], row["lr"], seed, name,
                                              ablation_latents(row["policy"], row["lr"], seed), EVIDENCE_VERSION,
                                              runs, results, device))
    return list(jobs.values())


def ablation_table(results: str = "results") -> dict:
    """The ablation's rows (mean ± sd and per-seed values of every metric) and its two claims' verdicts from the
    ledger (every run must be recorded), written to ``results/evidence/digits/ablation.json``."""
    ledger, best = ledger_dir(results), chosen_ablation_rates(results)
    sides, rows, records = {}, [], []
    for row in ablation_rows(best):
        found, evaluations, summary = recorded_row(
            ledger, [run_name(row["policy"], row["lr"], s) for s in ABLATION_SEEDS], list(ABLATION_SEEDS),
            f"the freeze ablation's {row['key']} (lr {row['lr']:g})", "python -m paperlib run freeze-evidence")
        records += found
        rows.append(dict(row, kimg=PILOT_KIMG, **summary))
        sides[row["key"]] = (evaluations, [cpu_kind(r) for r in found])
    check_one_protocol([dict(protocol=r["protocol"], record=r["name"]) for r in records], "the freeze ablation")
    margin = lambda claim: FID_MARGIN[DATASET]  # noqa: E731
    describe = lambda side: f"{side.split('@')[0]} at lr {next(r['lr'] for r in rows if r['key'] == side):g}"  # noqa: E731
    claims = annotate(decide_claims(ABLATION_CLAIMS, sides, margin), ABLATION_CLAIMS, describe)
    held_out = decide_claims([dict(c, metric="fid_test") for c in ABLATION_CLAIMS], sides, margin)
    table = dict(dataset=DATASET, protocol=EVIDENCE_VERSION, kimg=PILOT_KIMG, eval_num=EVIDENCE_NUM,
                 fixed_rate=ABLATION_FIXED_RATE, best=best, rows=rows, claims=claims, held_out=held_out)
    atomic_write_bytes(_results_dir(results) / "ablation.json", json.dumps(table, indent=1, default=float).encode())
    return table
