"""Experiment drivers shared by the command line and the notebooks: train-then-evaluate, learning-rate sweeps,
and the teacher's FID across sampler steps. Each returns plain dicts and writes JSON, so tables come from runs.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from paperlib.checkpoints import load_network
from paperlib.curves import load_curve
from paperlib.io import atomic_write_bytes, resolve_device
from paperlib.metrics import (
    Reference,
    Stats,
    build_extractor,
    dataset_reference,
    evaluate_network,
    extract_features,
    feature_stats,
    fid_from_stats,
    generate_uint8,
)
from paperlib.presets import preset_config
from paperlib.protocol import EVAL_KEYS, PROGRESS_SEEDS, TRAINING_FID_SEED_START
from paperlib.rundir import RunFolder, config_changes
from paperlib.train import train


def held_out_digits(dataset: str, conditional: bool) -> tuple | None:
    """The held-out split of a digits training set ('digits-R:train') as the discriminator's view takes it: images
    [N, 1, R, R] in [-1, 1] and one-hot labels [N, 10] (None when unconditional); None for any other dataset."""
    import torch

    from paperlib.data import digits_dataset, uint8_to_float

    name, _, split = dataset.partition(":")
    if not name.startswith("digits") or split != "train":
        return None
    test = digits_dataset("test", int(name.split("-")[1]) if "-" in name else 8)
    labels = torch.stack([test.onehot(i) for i in range(len(test))]) if conditional else None
    return uint8_to_float(test.images), labels


def fid_callback(extractor: Callable, ref: Reference, num: int = 500, progress: RunFolder | None = None,
                 seed_start: int = TRAINING_FID_SEED_START, held_out: tuple | None = None) -> Callable:
    """A training callback that records FID (and precision/recall) of the EMA generator against training images.

    The FID samples use the per-sample seeds from ``seed_start`` on (by default
    :data:`~paperlib.protocol.TRAINING_FID_SEED_START`), apart from the final evaluation's; its metrics are logged
    as ``eval_<key>`` for each of :data:`~paperlib.protocol.EVAL_KEYS`. With ``progress`` (the run's folder), the
    images of :data:`~paperlib.protocol.PROGRESS_SEEDS` are also saved in its
    progress files (uint8 [32, C, H, W]). With ``held_out`` (images [N, C, R, R] in [-1, 1], one-hot labels or
    None) and a GAN objective, the discriminator's view of them and of fresh fakes is logged too (``d_logit_real``,
    ``d_accuracy_fake``, ...: :meth:`paperlib.train.GDDObjective.discriminator_view`).
    """
    def callback(kimg: float, ema, objective=None) -> dict:
        device = next(ema.parameters()).device  # the training device
        result = evaluate_network(ema, extractor, ref, num=num, seed_offset=seed_start, device=device, progress=False)
        view = {}
        if held_out is not None and hasattr(objective, "discriminator_view"):
            view = objective.discriminator_view(held_out[0].to(device), None if held_out[1] is None
                                                else held_out[1].to(device), seed=seed_start + round(kimg * 1000))
        if progress is not None:
            images, _ = generate_uint8(ema, PROGRESS_SEEDS, device=device, progress=False)
            buf = io.BytesIO()
            np.savez(buf, images=images, kimg=kimg)
            atomic_write_bytes(progress.progress_file(round(kimg * 1000)), buf.getvalue())
        return {f"eval_{k}": v for k, v in result.items() if k in EVAL_KEYS} | view
    return callback


def snapshot_fid_callback(ref: str, features: str = "inception", feature_weights: str | None = None,
                          num: int = 50000, batch: int = 250) -> Callable:
    """A training callback for paper scale: FID of the EMA generator at every snapshot, with the paper's protocol
    (seeds 0..num-1, one step in fp32) against ``ref`` (EDM's fid-refs .npz, or a dataset). Logged as
    ``eval_fid`` and ``eval_num`` in metrics.jsonl, so the best snapshot can be found after (or during) the run."""
    state: dict = {}

    def callback(kimg: float, ema, objective=None) -> dict:
        device = next(ema.parameters()).device
        if "extractor" not in state:  # built on first use, on the training device
            state["extractor"] = build_extractor(features, feature_weights, device)
            state["stats"] = (Stats.load(ref) if str(ref).endswith(".npz")
                              else dataset_reference(ref, state["extractor"]).train_stats)
        images, _ = generate_uint8(ema, range(num), batch=batch, device=device, progress=False)
        fid = fid_from_stats(feature_stats(extract_features(state["extractor"], images)), state["stats"])
        return dict(eval_fid=fid, eval_num=num)
    return callback


def best_snapshot(run_dir: str | Path) -> dict | None:
    """The snapshot of a run with the lowest ``eval_fid`` in its metrics.jsonl (see :func:`snapshot_fid_callback`):
    dict(kimg, fid, num, checkpoint), or None when the run logged no snapshot FID."""
    folder = RunFolder(run_dir)
    scored = [r for r in folder.records() if "eval_fid" in r]
    if not scored:
        return None
    best = min(scored, key=lambda r: r["eval_fid"])
    return dict(kimg=best["kimg"], fid=best["eval_fid"], num=best.get("eval_num"),
                checkpoint=str(folder.snapshot(best["nimg"])))


def cached_result(preset: str, run_dir: str, eval_num: int, eval_start: int = 0, **overrides) -> dict | None:
    """The ``result.json`` of a finished run made with this exact config, sample count and first sample seed, else
    None."""
    folder = RunFolder(run_dir)
    path = folder.result
    if not path.exists() or not folder.network.exists():
        return None
    result = json.loads(path.read_text())
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
    (summed over resumed parts, evaluations excluded), the sample count ``num`` and first seed ``eval_start``, the
    metrics and, with ``fid_every_kimg``, the ``curve`` of FID during training (:func:`paperlib.curves.load_curve`,
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
                  teacher_weights=summary["teacher_weights"],
                  train_seconds=summary["train_seconds"], kimg=summary["nimg"] / 1000,
                  frozen_fraction=summary.get("freezing", {}).get("frozen_fraction", 0.0), eval_start=eval_start,
                  **metrics, curve=dict(load_curve(run_dir), num=curve_num, start=curve_start) if fid_every_kimg else None)
    atomic_write_bytes(folder.result, json.dumps(result, indent=2).encode())
    return result


def teacher_nfe_curve(teacher_path: str, extractor: Callable, ref: Reference, steps: Sequence[int] = (1, 2, 3, 5, 9, 18),
                      eval_num: int = 1000) -> list[dict]:
    """FID of a diffusion teacher sampled with Heun at each number of steps (NFE 2N - 1)."""
    net = load_network(teacher_path)
    return [dict(steps=n, **evaluate_network(net, extractor, ref, num=eval_num, num_steps=n, progress=False)) for n in steps]
