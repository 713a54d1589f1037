"""Experiment drivers shared by the command line and the notebooks: train-then-evaluate, learning-rate sweeps,
and the teacher's FID across sampler steps. Each returns plain dicts and writes JSON, so tables come from runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from paperlib.checkpoints import atomic_write_bytes, load_network
from paperlib.metrics import Reference, evaluate_network
from paperlib.presets import preset_config
from paperlib.train import train


def fid_callback(extractor: Callable, ref: Reference, num: int = 500) -> Callable:
    """A training callback that records FID (and precision/recall) of the EMA generator against training images."""
    def callback(kimg: float, ema) -> dict:
        result = evaluate_network(ema, extractor, ref, num=num, seed_offset=10_000_000, progress=False)
        return {f"eval_{k}": v for k, v in result.items() if k in ("fid", "fid_test", "precision", "recall", "memorisation")}
    return callback


def train_and_evaluate(preset: str, run_dir: str, extractor: Callable, ref: Reference, eval_num: int = 1000,
                       fid_every_kimg: float = 0.0, resume: bool = True, **overrides) -> dict:
    """Train ``preset`` (resuming a finished or interrupted run in ``run_dir``), then evaluate the final EMA network.

    Returns the config overrides, training summary, wall time of this call's training and the metrics.
    """
    cfg = preset_config(preset, run_dir=run_dir, **overrides)
    start = time.perf_counter()
    callback = fid_callback(extractor, ref) if fid_every_kimg else None
    summary = train(cfg, resume=resume, callback=callback, callback_kimg=fid_every_kimg, progress=False)
    wall = time.perf_counter() - start
    net = load_network(Path(run_dir) / "network.safetensors")
    metrics = evaluate_network(net, extractor, ref, num=eval_num, progress=False)
    result = dict(preset=preset, run_dir=run_dir, overrides=overrides, train_seconds=wall, kimg=summary["nimg"] / 1000,
                  frozen_fraction=summary.get("freezing", {}).get("frozen_fraction", 0.0), **metrics)
    atomic_write_bytes(Path(run_dir) / "result.json", json.dumps(result, indent=2).encode())
    return result


def lr_sweep(preset: str, lrs: Sequence[float], root: str, extractor: Callable, ref: Reference,
             eval_num: int = 1000, **overrides) -> list[dict]:
    """Train ``preset`` once per generator learning rate (same image budget) and evaluate each; best FID first."""
    results = [train_and_evaluate(preset, f"{root}/{preset}-lr{lr:g}", extractor, ref, eval_num=eval_num, lr=lr,
                                  **overrides) for lr in lrs]
    return sorted(results, key=lambda r: r["fid"])


def teacher_nfe_curve(teacher_path: str, extractor: Callable, ref: Reference, steps: Sequence[int] = (1, 2, 3, 5, 9, 18),
                      eval_num: int = 1000) -> list[dict]:
    """FID of a diffusion teacher sampled with Heun at each number of steps (NFE 2N - 1)."""
    net = load_network(teacher_path)
    return [dict(steps=n, **evaluate_network(net, extractor, ref, num=eval_num, num_steps=n, progress=False)) for n in steps]
