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

import datetime
import functools
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

from paperlib.assets import ROOT
from paperlib.store.checkpoints import weights_identity
from paperlib.store.files import atomic_write_bytes

LEDGER_FORMAT = 1
# What a run's evaluation records (metrics.evaluate_features' keys, and the sampler's NFE), in this order.
RECORDED_METRICS = ("fid", "fid_test", "kid", "precision", "recall", "memorisation", "copy_share", "nfe")
# Config keys that say where or how a run was watched, not what it computes: left out of a record's config.
LOCAL_KEYS = ("run_dir", "device", "num_workers", "keep_states", "max_nonfinite_steps", "bank_dir")


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


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
    """The checkout's commit, with '+changes' when paperlib's code differs from it; 'unknown' outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "paperlib"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> dict:
    """What the arithmetic of a run depends on besides its config: CPU model, torch's CPU capability (the vector
    instructions its kernels use), thread count, torch version and device."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=model, cpu_capability=torch.backends.cpu.get_cpu_capability(), threads=torch.get_num_threads(),
                torch=torch.__version__, cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)


def cpu_kind(record: dict) -> str | None:
    """The kind of CPU a record was made on ('model / torch capability'), or None for a record without a machine."""
    made = record.get("machine") or {}
    return f"{made.get('cpu')} / {made.get('cpu_capability')}" if made else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_record(name: str, result: dict, curve: dict | None, protocol: str, origin: str = "run") -> dict:
    """The record of one finished training run from its result (:func:`paperlib.study.jobs.train_and_evaluate`),
    made under ``protocol`` (a version hash): its evaluation's latents are the per-sample seeds
    ``eval_start .. eval_start + num - 1``."""
    config = portable_config(result["config"])
    metrics = {k: result[k] for k in RECORDED_METRICS if result.get(k) is not None}
    start = result.get("eval_start", 0)
    return dict(ledger=LEDGER_FORMAT, name=name, kind="run", preset=result["preset"], seed=result["seed"],
                lr=result["lr"], config=config, config_hash=config_hash(config), protocol=protocol, code=code_commit(),
                machine=machine(), made=_now(), origin=origin,
                evaluation=dict(latents=[start, start + result["num"] - 1], num=result["num"], **metrics),
                kimg=result["kimg"], train_seconds=result["train_seconds"], frozen_fraction=result["frozen_fraction"],
                curve=curve)


def diverged_record(name: str, config: dict, preset: str, num: int, eval_start: int, why: str, folder,
                    protocol: str) -> dict:
    """The record of a run whose training stopped on NaN/inf gradients (``why``, the error): no evaluation, the
    image count and training time it reached (from its log, a :class:`~paperlib.store.run_folder.RunFolder`)."""
    portable = portable_config(config)
    last = (folder.records() or [{}])[-1] if folder.log.exists() else {}
    return dict(ledger=LEDGER_FORMAT, name=name, kind="run", preset=preset, seed=config["seed"], lr=config["lr"],
                config=portable, config_hash=config_hash(portable), protocol=protocol, code=code_commit(),
                machine=machine(), made=_now(), origin="run", diverged=why,
                evaluation=dict(latents=[eval_start, eval_start + num - 1], num=num), kimg=last.get("kimg", 0.0),
                train_seconds=last.get("train_seconds"), frozen_fraction=None, curve=None)




def write_record(ledger: str | os.PathLike, record: dict) -> Path:
    path = record_path(ledger, record["name"])
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def read_record(ledger: str | os.PathLike, name: str) -> dict | None:
    """The record ``name``, or None when there is none; an unreadable one is a LedgerError naming it."""
    path = record_path(ledger, name)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise LedgerError(f"{path}: not a readable ledger record ({exc}); restore it from git or delete it to "
                          f"retrain the run") from None
    if not isinstance(record, dict) or record.get("ledger") != LEDGER_FORMAT:
        raise LedgerError(f"{path}: not a ledger record of format {LEDGER_FORMAT}")
    return record


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
    (``ranges``: dicts with ``latents`` [first, last], ``num`` and the metrics)."""
    return dict(ledger=LEDGER_FORMAT, name=name, kind="teacher", teacher=weights_identity(teacher), steps=steps,
                protocol=protocol, code=code_commit(), machine=machine(), origin=origin, made=_now(),
                ranges=ranges, sample_seconds=sample_seconds)




def check_one_protocol(records: list[dict], what: str) -> None:
    """Refuse to put records (dicts with ``protocol`` and ``record``, the name) made under different protocol
    versions into one table."""
    versions = sorted({r["protocol"] for r in records})
    if len(versions) > 1:
        names = {v: next(r["record"] for r in records if r["protocol"] == v) for v in versions}
        raise LedgerError(f"{what} would mix records of protocol versions {versions} (e.g. {names}); a table "
                          f"compares runs made under one protocol")
