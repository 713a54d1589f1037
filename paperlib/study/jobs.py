"""One job of a study: a training run, its final evaluation and its ledger record. A run whose record exists is not
trained again; a finished run whose ``result.json`` was made with the same config and evaluation is not evaluated
again; an interrupted run resumes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Callable

from paperlib.devices import resolve_device
from paperlib.evaluation import TRAINING_FID_SEED_START, fid_callback, held_out_digits
from paperlib.metrics import DigitsExtractor, Reference, digits_reference, evaluate_network
from paperlib.presets import preset_config
from paperlib.store.checkpoints import load_network
from paperlib.store.files import atomic_write_bytes, file_sha256
from paperlib.store.run_folder import NonFiniteError, RunFolder, config_changes
from paperlib.study.ledger import diverged_record, matching_record, result_of, run_record, write_record
from paperlib.training import train


@dataclass
class Job:
    """One training run and its evaluation (:func:`train_and_evaluate`), and its ledger record where it has one."""

    label: str                  # shown in the progress line, e.g. 'digits GDD-I seed 2'
    preset: str
    run_dir: str
    overrides: dict = field(default_factory=dict)
    eval_num: int = 10000
    fid_every_kimg: float = 0.0
    curve_num: int = 2000       # samples of each FID recorded during training
    ledger: str = ""            # the ledger folder, and the run's record in it (paperlib.study.ledger): a run whose
    record: str = ""            # record exists is not trained again, and a finished run writes its record
    eval_start: int = 0         # first per-sample seed of the final evaluation, and of the FIDs during training
    curve_start: int = TRAINING_FID_SEED_START
    protocol: str = ""          # the protocol version its record is made under (a job with a record)
    may_diverge: bool = False   # a sweep's run: NaN/inf training is recorded as diverged, not an error

    def config(self) -> dict:
        return asdict(preset_config(self.preset, run_dir=self.run_dir, **self.overrides))

    def recorded(self) -> dict | None:
        """The result kept in this job's ledger record, or None (no record, or a job without one)."""
        if not self.record:
            return None
        record = matching_record(self.ledger, self.record, self.config(), self.eval_num, self.eval_start)
        return None if record is None else result_of(record, self.run_dir)


_WORKER: dict = {}  # the digits feature net and reference, built once per process


def run_job(job: Job) -> dict:
    """Train (or resume) and evaluate one job in this process; the digits feature net is built once per process.
    A run with a ledger record is taken from it; a finished run whose ``result.json`` was made with the same config
    and sample count is not evaluated again; either way a job with a record name leaves its record written."""
    recorded = job.recorded()
    if recorded is not None:
        return recorded
    result = cached_result(job.preset, job.run_dir, job.eval_num, job.eval_start, **job.overrides)
    if result is None:
        if "ref" not in _WORKER:
            _WORKER["extractor"] = DigitsExtractor()
            _WORKER["ref"] = digits_reference(_WORKER["extractor"])
        try:
            result = train_and_evaluate(job.preset, job.run_dir, _WORKER["extractor"], _WORKER["ref"],
                                        eval_num=job.eval_num, fid_every_kimg=job.fid_every_kimg,
                                        curve_num=job.curve_num, eval_start=job.eval_start,
                                        curve_start=job.curve_start, **job.overrides)
        except NonFiniteError as exc:
            if not (job.may_diverge and job.record):
                raise
            record = diverged_record(job.record, job.config(), job.preset, job.eval_num, job.eval_start, str(exc),
                                     RunFolder(job.run_dir), job.protocol)
            write_record(job.ledger, record)
            return result_of(record, job.run_dir)
    if job.record:
        record = run_record(job.record, result, result.get("curve"), protocol=job.protocol)
        write_record(job.ledger, record)
        result = dict(result, record=job.record, protocol=record["protocol"])
    return result


def cached_result(preset: str, run_dir: str, eval_num: int, eval_start: int = 0, **overrides) -> dict | None:
    """The ``result.json`` of a finished run made with this exact config, sample count and first sample seed, else
    None (also for one that does not read: the run's evaluation is made again; its record is checked when written)."""
    folder = RunFolder(run_dir)
    path = folder.result
    if not path.exists() or not folder.network.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except (ValueError, RecursionError, UnicodeDecodeError):  # unreadable: the run is evaluated again, over it
        return None
    if not isinstance(result, dict):
        return None
    cfg = preset_config(preset, run_dir=run_dir, **overrides)
    same = (isinstance(result.get("config"), dict) and result.get("num") == eval_num
            and result.get("eval_start", 0) == eval_start
            and not config_changes(result["config"], json.loads(json.dumps(asdict(cfg))), saved_teacher=result.get("teacher_weights")))
    return result if same and result.get("kimg", 0) * 1000 >= round(cfg.total_kimg * 1000) else None


def train_and_evaluate(preset: str, run_dir: str, extractor: Callable, ref: Reference, eval_num: int = 1000,
                       fid_every_kimg: float = 0.0, resume: bool = True, curve_num: int = 500, eval_start: int = 0,
                       curve_start: int = TRAINING_FID_SEED_START, **overrides) -> dict:
    """Train ``preset`` (resuming a finished or interrupted run in ``run_dir``), then evaluate the final EMA network
    on ``eval_num`` samples (per-sample seeds ``eval_start ..``) on the training device.

    With ``fid_every_kimg``, FID during training (``curve_num`` samples, against the training and held-out splits)
    goes into the run's ``metrics.jsonl``, with the discriminator's view of the held-out digits beside it (GAN runs
    on digits), and sample grids of fixed seeds into ``run_dir/progress/`` (see :func:`fid_callback`). Returns the
    config overrides, seed, learning rate, training summary, training wall time
    (summed over resumed parts, evaluations excluded) and each part's start (``training_parts``: where and from which
    code it trained), the sample count ``num`` and first seed ``eval_start``, the metrics with the digests of the
    samples scored and of the feature net, the network file's SHA-256 (and the instance bank's digest) and, with
    ``fid_every_kimg``, the ``curve`` of FID during training (:meth:`~paperlib.store.run_folder.RunFolder.curve`,
    plus its ``num`` and first seed ``start``; its FIDs use per-sample seeds ``curve_start ..``).
    """
    cfg = preset_config(preset, run_dir=run_dir, **overrides)
    folder = RunFolder(run_dir)
    callback = (fid_callback(extractor, ref, num=curve_num, progress=folder, seed_start=curve_start,
                             held_out=held_out_digits(cfg.dataset, cfg.conditional)) if fid_every_kimg else None)
    summary = train(cfg, resume=resume, callback=callback, callback_kimg=fid_every_kimg, progress=False)
    device = resolve_device(cfg.device)
    net = load_network(folder.network).to(device)
    metrics = evaluate_network(net, extractor, ref, num=eval_num, seed_offset=eval_start, device=device, progress=False)
    result = dict(preset=preset, run_dir=run_dir, overrides=overrides, config=asdict(cfg), seed=cfg.seed, lr=cfg.lr,
                  teacher_weights=summary["teacher_weights"], network_sha256=file_sha256(folder.network),
                  bank_digest=summary.get("instance_bank", {}).get("digest"), training_parts=folder.parts(),
                  train_seconds=summary["train_seconds"], kimg=summary["nimg"] / 1000,
                  frozen_fraction=summary.get("freezing", {}).get("frozen_fraction", 0.0), eval_start=eval_start,
                  **metrics, curve=dict(folder.curve(), num=curve_num, start=curve_start) if fid_every_kimg else None)
    atomic_write_bytes(folder.result, json.dumps(result, indent=2).encode())
    return result
