"""The mini check: a stated sample of the ledger's runs retrained from scratch beside the ledger, never reading their
records while training, and compared with what the records say: bit for bit where the record was made on this kind
of machine (CPU model, torch's CPU capability, thread count), else every metric within :data:`TOLERANCE_SDS` of the
spread of the record's row over its seeds (each metric's distance from the row's mean, in row sds, is printed).
By default the sample is one evidence-table run per method and dataset (:func:`evidence_sample`), made on this kind
of machine where the ledger has one. ``python -m paperlib check`` (``./run_all.sh mini-check``) runs it and writes
``results/evidence/check.json``, which RESULTS.md reports."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

from paperlib.store.files import atomic_write_bytes
from paperlib.store.provenance import code_commit, machine, now
from paperlib.study.evidence.ablation import ablation_jobs, pilot_jobs
from paperlib.study.evidence.rates import rate_jobs
from paperlib.study.evidence.tables import table_jobs
from paperlib.study.jobs import Job
from paperlib.study.ledger import ledger_dir, read_record
from paperlib.study.pool import default_workers, run_jobs
from paperlib.study.protocol import MINI_DATASETS

METRICS = ("fid", "fid_test", "precision", "recall", "memorisation", "copy_share")
TOLERANCE_SDS = 3.0


def protocol_jobs(runs: str = "runs", results: str = "results", device: str = "auto") -> dict[str, Job]:
    """Every job of the protocol whose choices are made (rates chosen where its pilots are recorded), by record."""
    jobs = rate_jobs(MINI_DATASETS, runs, results, device) + [job for _, job in pilot_jobs(runs, results, device)]
    for more in (lambda: table_jobs(MINI_DATASETS, runs, results, device), lambda: ablation_jobs(runs, results, device)):
        try:
            jobs += more()
        except FileNotFoundError:  # its rates are not chosen yet
            pass
    return {job.record: job for job in jobs}


def evidence_sample(results: str = "results", methods: tuple[str, ...] = ()) -> tuple[str, ...]:
    """One evidence-table run per primary row (``methods``, default all) and dataset: the lowest training seed made
    on this kind of machine, or the lowest seed when the ledger has none from it."""
    from paperlib.study.evidence.tables import chosen_rates, run_name, table_rows

    ledger, names = ledger_dir(results), []
    for dataset in MINI_DATASETS:
        for row in table_rows(dataset, chosen_rates(dataset, results)):
            if row["secondary"] or (methods and row["method"] not in methods):
                continue
            found = {name: read_record(ledger, name)
                     for name in (run_name(dataset, row["method"], row["lr"], s) for s in row["seeds"])}
            recorded = [name for name, record in found.items() if record is not None]
            here = [name for name in recorded  # the threads are the check's own, not the record's
                    if same_machine(found[name], keys=("cpu", "cpu_capability"))]
            if recorded:
                names.append((here or recorded)[0])
    return tuple(names)


def same_machine(record: dict, on: dict | None = None, keys=("cpu", "cpu_capability", "threads")) -> bool:
    """Whether a record was made on the machine ``on`` (:func:`~paperlib.store.provenance.machine`'s dict; default
    this process's) as far as ``keys`` go: where a retrained run must equal it bit for bit."""
    made, here = record.get("machine") or {}, on or machine()
    return all(made.get(k) == here.get(k) for k in keys)


def check_records(runs: str = "runs", results: str = "results", device: str = "auto", workers: int = 0,
                  names: tuple[str, ...] = (), jobs: dict[str, Job] | None = None, log=print) -> dict:
    """Retrain the runs ``names`` of the ledger (default :func:`evidence_sample`) from scratch (in ``<runs>/check/``)
    and compare each with its record (``jobs``: the job of each record name, default :func:`protocol_jobs`). Writes
    ``<results>/evidence/check.json`` and returns it, with ``passed``."""
    ledger = ledger_dir(results)
    names = names or evidence_sample(results)
    jobs = protocol_jobs(runs, results, device) if jobs is None else jobs
    unknown = [n for n in names if n not in jobs or read_record(ledger, n) is None]
    if unknown:
        raise ValueError(f"no ledger record of the protocol's runs named {unknown}")
    fresh = [replace(jobs[n], ledger="", record="", run_dir=str(Path(runs) / "check" / n)) for n in names]
    retrained = run_jobs(fresh, workers=workers or default_workers(device))
    checks = [_compare(read_record(ledger, name), result, _row_values(ledger, jobs, name), log)
              for name, result in zip(names, retrained)]
    report = dict(machine=machine(), code=code_commit(), made=now(), checks=checks,
                  passed=all(c["passed"] for c in checks))
    atomic_write_bytes(Path(results) / "evidence" / "check.json", json.dumps(report, indent=1).encode())
    return report


def _row_values(ledger: Path, jobs: dict[str, Job], name: str) -> list[dict]:
    """The recorded evaluations of the row ``name`` belongs to (the records beside it: the other seeds)."""
    row = name.rsplit("/", 1)[0]
    records = [read_record(ledger, other) for other in jobs if other.rsplit("/", 1)[0] == row]
    return [r["evaluation"] for r in records if r is not None and not r.get("diverged")]


def _compare(record: dict, result: dict, row: list[dict], log) -> dict:
    retrained_on = ((result.get("training_parts") or [{}])[-1]).get("machine")  # the worker's threads, not ours
    rule = "bit for bit" if same_machine(record, retrained_on) else f"within {TOLERANCE_SDS:g} seed sds"
    metrics = {}
    for key in METRICS:
        recorded, again = record["evaluation"][key], result[key]
        values = [e[key] for e in row]
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        ok = again == recorded if rule == "bit for bit" else abs(again - recorded) <= TOLERANCE_SDS * sd
        metrics[key] = dict(recorded=recorded, retrained=again, row_sd=sd, ok=bool(ok),
                            row_sds_from_mean=(again - statistics.mean(values)) / sd if sd > 0 else None)
    # Bit for bit means the same network file and the same samples, where the record carries their digests.
    digests = {key: dict(recorded=recorded, retrained=result.get(f"{key}_sha256"),
                         ok=rule != "bit for bit" or recorded == result.get(f"{key}_sha256"))
               for key, recorded in (record.get("digests") or {}).items() if key in ("network", "samples") and recorded}
    check = dict(record=record["name"], rule=rule, recorded_on=record.get("machine"),
                 passed=all(m["ok"] for m in [*metrics.values(), *digests.values()]), metrics=metrics, digests=digests)
    log(f"{record['name']}: {'passed' if check['passed'] else 'FAILED'} ({rule}): "
        + ", ".join(f"{k} {m['recorded']:.3f} -> {m['retrained']:.3f}" for k, m in metrics.items())
        + "".join(f", {k} digest {'equal' if d['recorded'] == d['retrained'] else 'differs'}" for k, d in digests.items()))
    return check
