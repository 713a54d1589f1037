"""The ledger: one small, committed JSON record per finished run (or teacher evaluation) under
``results/ledger/evidence/<dataset>/...``, so that the evidence outlives any machine. Tables and curves are assembled
from records; a run whose record exists is not trained again, so a study accumulates across days and machines.

A record holds what makes the run what it is and what it measured: its config (portable: the teacher by the digest
of its weights, no local paths) and that config's hash, the protocol's version, the code's commit, the machine (CPU
model, torch's CPU capability and thread count: the arithmetic differs across them), the seed, the latent range and
sample count of its evaluation, the metrics, the training time and, where recorded, its FID curve over training.
A record found with another config than the one asked for is refused, never silently replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from paperlib.store.checkpoints import weights_identity
from paperlib.store.files import atomic_write_bytes
from paperlib.store.provenance import code_commit, machine, now

LEDGER_FORMAT = 1
# What a run's evaluation records (metrics.evaluate_features' keys, and the sampler's NFE), in this order.
RECORDED_METRICS = ("fid", "fid_test", "kid", "precision", "recall", "memorisation", "copy_share", "nfe")
# Config keys that say where or how a run was watched, not what it computes: left out of a record's config.
LOCAL_KEYS = ("run_dir", "device", "num_workers", "keep_states", "max_nonfinite_steps", "bank_dir")


MAX_RECORD_BYTES = 4 << 20  # a record with its training curve is about 20 KB
_COMMON_FIELDS = dict(name=(str,), kind=(str,), protocol=(str,), code=(str,), machine=(dict,), made=(str,),
                      origin=(str,))
_RUN_FIELDS = dict(preset=(str,), seed=(int,), lr=(float, int), config=(dict,), config_hash=(str,),
                   evaluation=(dict,), kimg=(float, int))
_KIND_FIELDS = dict(run=_RUN_FIELDS, teacher=dict(teacher=(str,), steps=(int,), ranges=(list,), sample_seconds=(float, int)),
                    real=dict(evaluation=(dict,)))


class LedgerError(ValueError):
    """A record cannot be used as asked (another config, another protocol, unreadable); the message names it."""


def ledger_dir(results: str | os.PathLike = "results") -> Path:
    return Path(results) / "ledger"


def record_path(ledger: str | os.PathLike, name: str) -> Path:
    """Where the record ``name`` (e.g. 'mini/digits/digits-gddi/seed1') lives in ``ledger``."""
    return Path(ledger) / f"{name}.json"



def portable_config(config: dict) -> dict:
    """A run's config as a record keeps it: without :data:`LOCAL_KEYS`, the teacher by :func:`weights_identity`,
    and whole numbers written alike whether they came as 48 or 48.0 (a preset's value or a command line's)."""
    out = {k: v for k, v in config.items() if k not in LOCAL_KEYS}
    if out.get("teacher"):
        out["teacher"] = weights_identity(out["teacher"])
    return _whole_numbers_as_ints(json.loads(json.dumps(out)))


def _whole_numbers_as_ints(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(v) for v in value]
    return value


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def cpu_kind(record: dict) -> str | None:
    """The kind of CPU a record was made on ('model / torch capability'), or None for a record without a machine."""
    made = record.get("machine") or {}
    return f"{made.get('cpu')} / {made.get('cpu_capability')}" if made else None


def run_record(name: str, result: dict, curve: dict | None, protocol: str, origin: str = "run") -> dict:
    """The record of one finished training run from its result (:func:`paperlib.study.jobs.train_and_evaluate`),
    made under ``protocol`` (a version hash): its evaluation's latents are the per-sample seeds
    ``eval_start .. eval_start + num - 1``. Besides ``code`` and ``machine`` (where the record is made) it keeps
    where the run trained (``trained``: each start or resume with its code and machine; ``resumed_at_kimg``, empty
    for a run trained in one go; both None where the run folder predates them) and the SHA-256 ``digests`` of the
    network file, of the uint8 samples scored, of the feature net and, for instance distillation, of its bank."""
    config = portable_config(result["config"])
    metrics = {k: result[k] for k in RECORDED_METRICS if result.get(k) is not None}
    start = result.get("eval_start", 0)
    parts = result.get("training_parts") or None
    digests = dict(network=result.get("network_sha256"), samples=result.get("samples_sha256"),
                   features=result.get("features_sha256"), bank=result.get("bank_digest"))
    return dict(ledger=LEDGER_FORMAT, name=name, kind="run", preset=result["preset"], seed=result["seed"],
                lr=result["lr"], config=config, config_hash=config_hash(config), protocol=protocol, code=code_commit(),
                machine=machine(), made=now(), origin=origin,
                evaluation=dict(latents=[start, start + result["num"] - 1], num=result["num"], **metrics),
                kimg=result["kimg"], train_seconds=result["train_seconds"], frozen_fraction=result["frozen_fraction"],
                trained=parts, resumed_at_kimg=None if parts is None else [p["from_kimg"] for p in parts
                                                                            if p["from_kimg"] > 0],
                digests=digests, curve=curve)


def diverged_record(name: str, config: dict, preset: str, num: int, eval_start: int, why: str, folder,
                    protocol: str) -> dict:
    """The record of a run whose training stopped on NaN/inf gradients (``why``, the error): no evaluation, the
    image count and training time it reached (from its log, a :class:`~paperlib.store.run_folder.RunFolder`)."""
    portable = portable_config(config)
    last = (folder.records() or [{}])[-1] if folder.log.exists() else {}
    return dict(ledger=LEDGER_FORMAT, name=name, kind="run", preset=preset, seed=config["seed"], lr=config["lr"],
                config=portable, config_hash=config_hash(portable), protocol=protocol, code=code_commit(),
                machine=machine(), made=now(), origin="run", diverged=why,
                evaluation=dict(latents=[eval_start, eval_start + num - 1], num=num), kimg=last.get("kimg", 0.0),
                train_seconds=last.get("train_seconds"), frozen_fraction=None, curve=None)




def record_digest(record: dict) -> str:
    """Hex SHA-256 over a record's content (every key but ``digest``, keys sorted): an edited record no longer
    matches the digest it carries."""
    content = {k: v for k, v in record.items() if k != "digest"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def write_record(ledger: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` (checked first, :func:`check_record`) with its digest, atomically; returns its path."""
    path = record_path(ledger, record["name"])
    record = dict(record, digest=record_digest(record))
    check_record(record, record["name"], path)
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def read_record(ledger: str | os.PathLike, name: str) -> dict | None:
    """The record ``name``, or None when there is none. One that is too large, unreadable or fails
    :func:`check_record` is a LedgerError naming it: no table, rate choice or verdict is computed from it."""
    path = record_path(ledger, name)
    if not path.exists():
        return None
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise LedgerError(f"{path}: {path.stat().st_size:,} bytes, more than a ledger record holds "
                          f"({MAX_RECORD_BYTES:,}); restore it from git or delete it to retrain the run")
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # ValueError: bad JSON, or an int too long
        raise LedgerError(f"{path}: not a readable ledger record ({str(exc)[:200]}); restore it from git or delete "
                          f"it to retrain the run") from None
    check_record(record, name, path)
    return record


def check_record(record, name: str, path) -> None:
    """Refuse (LedgerError naming ``path``) a record that is not what :func:`run_record`, :func:`diverged_record`,
    :func:`teacher_record` or :func:`real_record` writes: a missing field or one of the wrong type, a non-finite or negative count, a
    non-finite metric, a config whose hash is not ``config_hash``, another name than ``name``, or content that
    does not match its ``digest``."""
    def fail(why: str):
        raise LedgerError(f"{path}: {why}; restore the record from git, or delete it to make it again")

    if not isinstance(record, dict) or record.get("ledger") != LEDGER_FORMAT:
        fail(f"not a ledger record of format {LEDGER_FORMAT}")
    if record.get("kind") not in _KIND_FIELDS:
        fail(f"kind {record.get('kind')!r}; expected one of {', '.join(_KIND_FIELDS)}")
    fields = dict(_COMMON_FIELDS, **_KIND_FIELDS[record["kind"]])
    for key, kinds in fields.items():
        if key not in record:
            fail(f"lacks {key!r}")
        if not isinstance(record[key], kinds) or isinstance(record[key], bool):
            fail(f"{key!r} is {type(record[key]).__name__}; expected {' or '.join(k.__name__ for k in kinds)}")
    if record["name"] != name:
        fail(f"holds the record {record['name']!r}, not {name!r}")
    if record.get("digest") != record_digest(record):
        fail("its content does not match its digest (edited?)" if "digest" in record else "it carries no digest")
    if record["kind"] == "run":
        if record["config_hash"] != config_hash(record["config"]):
            fail("its config does not match its config_hash")
        _check_numbers(record, ("seed", "kimg", "train_seconds", "frozen_fraction"), fail, "")
        if not (math.isfinite(record["lr"]) and record["lr"] > 0):
            fail(f"lr {record['lr']!r}; expected a finite rate above 0")
        _check_evaluation(record["evaluation"], fail, "evaluation", metrics=not record.get("diverged"))
    elif record["kind"] == "real":
        _check_evaluation(record["evaluation"], fail, "evaluation", metrics=True, latents=False)
    else:
        if not record["ranges"]:
            fail("holds no evaluated range")
        for i, evaluation in enumerate(record["ranges"]):
            _check_evaluation(evaluation, fail, f"range {i}", metrics=True)
        _check_numbers(record, ("steps", "sample_seconds"), fail, "")


def _check_numbers(values: dict, keys, fail, where: str) -> None:
    for key in keys:
        value = values.get(key)
        if value is None and key in ("train_seconds", "frozen_fraction"):  # a diverged run has none
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            fail(f"{where}{key} is {value!r}; expected a finite number of at least 0")


def _check_evaluation(evaluation, fail, where: str, metrics: bool, latents: bool = True) -> None:
    """An evaluation: (``latents``) its latents [first, last], its sample count, and (``metrics``) each recorded
    metric finite."""
    if not isinstance(evaluation, dict):
        fail(f"its {where} is {type(evaluation).__name__}; expected a dict")
    seeds = evaluation.get("latents")
    if latents and not (isinstance(seeds, list) and len(seeds) == 2 and all(type(v) is int for v in seeds)):
        fail(f"its {where} latents are {seeds!r}; expected [first, last] per-sample seeds")
    _check_numbers(evaluation, ("num",), fail, f"its {where} ")
    if metrics:
        if "fid" not in evaluation:
            fail(f"its {where} lacks 'fid'")
        for key in RECORDED_METRICS:
            value = evaluation.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                fail(f"its {where} {key} is {value!r}; expected a finite number")


def matching_record(ledger: str | os.PathLike, name: str, config: dict, num: int, start: int = 0) -> dict | None:
    """The record ``name`` if it holds a run of exactly ``config`` (a TrainConfig as a dict) evaluated on ``num``
    samples from per-sample seed ``start``; None when there is no record. A record of another config or evaluation
    is refused, naming the differences: it is evidence, and is replaced only by deleting it on purpose."""
    record = read_record(ledger, name)
    if record is None:
        return None
    wanted = portable_config(config)
    latents = [start, start + num - 1]
    if record["config_hash"] != config_hash(wanted) or record["evaluation"]["latents"] != latents:
        changed = [f"{k}: {record['config'].get(k)!r} -> {wanted.get(k)!r}"
                   for k in sorted(set(record["config"]) | set(wanted)) if record["config"].get(k) != wanted.get(k)]
        if record["evaluation"]["latents"] != latents:
            changed.append(f"evaluation seeds: {record['evaluation']['latents']} -> {latents}")
        raise LedgerError(f"{record_path(ledger, name)} holds this run with another config ({'; '.join(changed)}); "
                          f"delete the record to retrain it, or ask for a run of another name")
    return record


def result_of(record: dict, run_dir: str) -> dict:
    """A record as the result dict that training and evaluating the run returns (the metrics at top level; none,
    and ``diverged`` saying why, for a diverged run)."""
    evaluation = {k: v for k, v in record["evaluation"].items() if k != "latents"}
    if record.get("diverged"):
        evaluation["diverged"] = record["diverged"]
    return dict(preset=record["preset"], run_dir=run_dir, seed=record["seed"], lr=record["lr"], kimg=record["kimg"],
                train_seconds=record["train_seconds"], frozen_fraction=record["frozen_fraction"], **evaluation,
                curve=record.get("curve"), row_curve=record.get("row_curve"), record=record["name"],
                protocol=record["protocol"])


def teacher_record(name: str, teacher: str, steps: int, ranges: list[dict], sample_seconds: float,
                   protocol: str, origin: str = "run") -> dict:
    """The record of a teacher sampled at ``steps`` Heun steps: one evaluation per disjoint latent range
    (``ranges``: dicts with ``latents`` [first, last], ``num`` and the metrics, with the digests of the samples
    scored and of the feature net where :func:`paperlib.metrics.evaluate_network` gave them)."""
    return dict(ledger=LEDGER_FORMAT, name=name, kind="teacher", teacher=weights_identity(teacher), steps=steps,
                protocol=protocol, code=code_commit(), machine=machine(), origin=origin, made=now(),
                ranges=ranges, sample_seconds=sample_seconds)




def real_record(name: str, metrics: dict, protocol: str) -> dict:
    """The record of real images scored as samples are (the held-out digits against the training digits): the
    reference every metric of a table is read against."""
    return dict(ledger=LEDGER_FORMAT, name=name, kind="real", protocol=protocol, code=code_commit(), machine=machine(),
                origin="run", made=now(), evaluation={k: v for k, v in metrics.items() if k in RECORDED_METRICS + ("num",)})


def check_one_protocol(records: list[dict], what: str) -> None:
    """Refuse to put records (dicts with ``protocol`` and ``record``, the name) made under different protocol
    versions into one table."""
    versions = sorted({r["protocol"] for r in records})
    if len(versions) > 1:
        names = {v: next(r["record"] for r in records if r["protocol"] == v) for v in versions}
        raise LedgerError(f"{what} would mix records of protocol versions {versions} (e.g. {names}); a table "
                          f"compares runs made under one protocol")
