"""Evaluation during training: callbacks that score the EMA generator as a run goes (FID and what stands beside it
at mini scale, the paper's FID at every snapshot at paper scale), and the best snapshot a run logged.

Everything a callback returns is logged with the prefix ``eval_``, which is how a run folder's curve reader
(:meth:`paperlib.store.run_folder.RunFolder.curve`) finds it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np

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
from paperlib.store.files import atomic_write_bytes
from paperlib.store.run_folder import RunFolder

EVAL_KEYS = ("fid", "fid_test", "precision", "recall", "memorisation")  # logged at each FID during training
TRAINING_FID_SEED_START = 10_000_000  # FIDs during training use per-sample seeds from here unless told otherwise
PROGRESS_SEEDS = range(32)  # the sample grids over training


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

    The FID samples (``num`` of them) use the per-sample seeds from ``seed_start`` on, apart from the final
    evaluation's; its metrics are logged as ``eval_<key>`` for each of :data:`EVAL_KEYS`. With ``progress`` (the run's
    folder), the images of :data:`PROGRESS_SEEDS` are also saved in its progress files (uint8 [32, C, H, W]). With
    ``held_out`` (images [N, C, R, R] in [-1, 1], one-hot labels or None) and a GAN objective, the discriminator's
    view of them and of fresh fakes is logged too (``eval_d_logit_real``, ``eval_d_accuracy_fake``, ...:
    :meth:`paperlib.objectives.GDDObjective.discriminator_view`).
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
        return {f"eval_{k}": v for k, v in (*((k, result[k]) for k in EVAL_KEYS), *view.items())}
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
