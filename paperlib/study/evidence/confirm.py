"""The confirmation study of Amendment 2 (``paperlib.study.protocol``): GDD and GDD-I at each dataset's common rate
on fresh training seeds (:data:`~paperlib.study.protocol.CONFIRM_SEEDS`) and fresh latent slots, their records under
:data:`~paperlib.study.protocol.CONFIRM_VERSION`, and one family of claims over both datasets decided from the
ledger alone; the held-out FID difference reported beside it, deciding nothing."""

from __future__ import annotations

import json
from pathlib import Path

from paperlib.store.files import atomic_write_bytes
from paperlib.study.evidence.plan import confirm_effect, confirm_seeds
from paperlib.study.evidence.rates import METHOD_LABELS, evidence_job, recorded_row
from paperlib.study.evidence.significance import holm, one_sided_test
from paperlib.study.evidence.tables import chosen_rates
from paperlib.study.evidence.verdicts import decide_claims
from paperlib.study.jobs import Job
from paperlib.study.ledger import check_one_protocol, cpu_kind, ledger_dir
from paperlib.study.protocol import (
    CONFIRM_CLAIMS,
    CONFIRM_METHODS,
    CONFIRM_REPORTED,
    CONFIRM_SEEDS,
    CONFIRM_VERSION,
    CURVE_EVERY_KIMG,
    EVIDENCE_KIMG,
    EVIDENCE_NUM,
    MINI_DATASETS,
    confirm_latents,
)


def confirm_name(dataset: str, method: str, lr: float, seed: int) -> str:
    return f"evidence/{dataset}/confirm/{method}-lr{lr:g}/seed{seed}"


def confirm_jobs(datasets=MINI_DATASETS, runs: str = "runs", results: str = "results",
                 device: str = "auto") -> list[Job]:
    """Every run of the confirmation on ``datasets``, seed by seed (each seed's GDD and GDD-I run one after the other,
    so that a study stopped at any point leaves whole seeds, each made on one machine)."""
    rates = {d: chosen_rates(d, results)["common"] for d in datasets}
    seeds = {d: confirm_seeds(d) for d in datasets}
    return [evidence_job(d, method, rates[d], seed, EVIDENCE_KIMG, confirm_name(d, method, rates[d], seed),
                         confirm_latents(d, method, seed), CONFIRM_VERSION, runs, results, device, CURVE_EVERY_KIMG)
            for seed in CONFIRM_SEEDS for d in datasets for method in CONFIRM_METHODS if seed in seeds[d]]


def assemble_confirmation(results: str = "results") -> dict:
    """The confirmation's rows (mean ± sd and per-seed values of every metric, per dataset and method), its family's
    verdicts (Holm over both datasets) and the reported held-out FID differences, from the ledger alone (every run
    must be recorded)."""
    ledger, rows, sides, records, claims = ledger_dir(results), [], {}, [], []
    for dataset in MINI_DATASETS:
        lr, seeds = chosen_rates(dataset, results)["common"], confirm_seeds(dataset)
        for method in CONFIRM_METHODS:
            found, evaluations, summary = recorded_row(
                ledger, [confirm_name(dataset, method, lr, s) for s in seeds], seeds,
                f"the {dataset} confirmation's {METHOD_LABELS[method]} at lr {lr:g}", "python -m paperlib run confirm")
            records += found
            rows.append(dict(dataset=dataset, method=method, row=f"{METHOD_LABELS[method]} (NFE 1), lr {lr:g}",
                             lr=lr, kimg=EVIDENCE_KIMG, **summary))
            sides[f"{dataset}:{method}"] = (evaluations, [cpu_kind(r) for r in found])
        claims += [dict(c, key=f"{dataset}:{c['key']}", a=f"{dataset}:{c['a']}", b=f"{dataset}:{c['b']}",
                        claim=f"{dataset}: {c['claim']}", effect=confirm_effect(dataset, c["metric"], c["a"], c["b"]))
                   for c in CONFIRM_CLAIMS]
    check_one_protocol([dict(protocol=r["protocol"], record=r["name"]) for r in records], "the confirmation")
    decided = decide_claims(claims, sides, lambda c: c["effect"])  # power at the planned difference
    return dict(protocol=CONFIRM_VERSION, kimg=EVIDENCE_KIMG, eval_num=EVIDENCE_NUM, rows=rows, claims=decided,
                reported=reported_differences(sides))


def reported_differences(sides: dict) -> list[dict]:
    """The held-out FID difference (GDD-I minus GDD) per dataset: mean, two-sided 95% interval (Welch) and two-sided
    p, raw and Holm-adjusted over the datasets; they decide nothing."""
    out = []
    for dataset in MINI_DATASETS:
        a, b = ([e[CONFIRM_REPORTED["metric"]] for e in sides[f"{dataset}:{m}"][0]]
                for m in (CONFIRM_REPORTED["a"], CONFIRM_REPORTED["b"]))
        test = one_sided_test(a, b, 0.0)
        out.append(dict(dataset=dataset, claim=f"{dataset}: {CONFIRM_REPORTED['claim']}", diff=test["diff"],
                        low95=test["low95"], high95=test["high95"], p=min(1.0, 2 * min(test["p"], 1 - test["p"])),
                        n_a=len(a), n_b=len(b)))
    for entry, adjusted in zip(out, holm([e["p"] for e in out])):
        entry["p_adjusted"] = adjusted
        entry["sentence"] = (f"{entry['claim']}: {entry['diff']:+.3g}, 95% interval [{entry['low95']:+.3g}, "
                             f"{entry['high95']:+.3g}]; two-sided p {entry['p']:.3g}, Holm-adjusted "
                             f"{entry['p_adjusted']:.3g}; {entry['n_a']} vs {entry['n_b']} seeds.")
    return out


def write_confirmation(results: str = "results") -> dict:
    """The ``confirm`` study's summary: :func:`assemble_confirmation` written to ``results/evidence/confirm.json``."""
    table = assemble_confirmation(results)
    atomic_write_bytes(Path(results) / "evidence" / "confirm.json", json.dumps(table, indent=1, default=float).encode())
    return table
