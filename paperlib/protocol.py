"""The protocol: the one owner of what paperlib's evidence is made of. Datasets and their splits, scales, training
seeds and latent ranges, image budgets, metric keys, teacher files and the claims each table decides. Every other
module imports these names; none keeps a copy. :data:`VERSION` is a hash of all of it, so a record made under one
protocol can be told from one made under another.

Latent ranges (per-sample seeds, as EDM's ``generate.py``): the final evaluation of a network uses seeds
``EVAL_SEED_START ..``; FIDs recorded during training use ``TRAINING_FID_SEED_START ..``; the instance baseline's
bank of teacher solutions uses ``BANK_SEED``; sample grids over training use :data:`PROGRESS_SEEDS`. The ranges do
not overlap at any sample count paperlib uses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from paperlib.data import DIGITS_SPLIT_SEED, DIGITS_TEST_SIZE
from paperlib.io import ASSETS

# --- Datasets and scales.
SCALES = ("smoke", "mini", "paper")
MINI_DATASETS = ("digits", "digits-cond")
# Paper datasets: (preset prefix, resolution, teacher file name as released by EDM).
PAPER_DATASETS = {"cifar10": ("cifar10-uncond", 32, "edm-cifar10-32x32-uncond-ve.pkl"),
                  "cifar10-cond": ("cifar10-cond", 32, "edm-cifar10-32x32-cond-ve.pkl"),
                  "afhqv2-64": ("afhqv2-64", 64, "edm-afhqv2-64x64-uncond-ve.pkl"),
                  "ffhq-64": ("ffhq-64", 64, "edm-ffhq-64x64-uncond-ve.pkl"),
                  "imagenet-64": ("imagenet-64", 64, "edm-imagenet-64x64-cond-adm.pkl")}
DIGITS_SPLIT = dict(test_size=DIGITS_TEST_SIZE, seed=DIGITS_SPLIT_SEED, stratified=True)  # defined in paperlib.data
MINI_TEACHERS = {False: str(ASSETS / "teachers" / "digits-uncond.safetensors"),  # shipped with the package
                 True: str(ASSETS / "teachers" / "digits-cond.safetensors")}

# --- The rows of an FID table: the trained methods (label, preset suffix), of which the small-D ablation exists at
# mini scale only; the authors' released checkpoints by label; the teacher's Heun steps (NFE = 2 steps - 1).
METHODS = (("GDD", "gdd"), ("GDD-I", "gddi"), ("instance distillation", "instance"),
           ("GDD-I, small from-scratch D (ablation)", "gddi-smalld"))
MINI_ONLY_METHODS = ("gddi-smalld",)
RELEASED_KINDS = {"GDD": "gdd", "GDD-I": "gddi"}  # the authors' released checkpoints, by table label


def teacher_steps(resolution: int) -> tuple[int, ...]:
    """Heun steps of the teacher rows: NFE 1, 3, 5, 9, 17, 35, and 79 for the 64x64 sets (NFE = 2 steps - 1)."""
    return (1, 2, 3, 5, 9, 18) + ((40,) if resolution >= 64 else ())


# --- Budgets. 48 kimg: 33 passes over the 1,437 training digits, a third of the paper's ~100 (5 Mimg over
# CIFAR-10's 50k images), so that ./run_all.sh mini fits in about an hour on 2 CPU cores.
MINI_KIMG = 48

# --- Seeds and latent ranges.
EVAL_SEED_START = 0
TRAINING_FID_SEED_START = 10_000_000
BANK_SEED = 2_000_000_000
PROGRESS_SEEDS = range(32)  # the same seeds as the final sample grids, so grids over training compare
SWEEP_SEED = 0              # the sweeps train seed 0; the tables' rows seeds 1, 2, 3, so no reported run chose its rate
ABLATION_SEEDS = (1, 2, 3)
# Per scale: FID samples, how often FID is recorded during training (kimg; 0 = never) and on how many samples,
# the training seeds of every trained row, and how many disjoint seed ranges the teacher's NFE-35 row is sampled with.
SCALE_DEFAULTS = {
    "smoke": dict(fid_num=100, fid_every_kimg=0.16, curve_num=100, seeds=[1], teacher_ranges=1),
    "mini": dict(fid_num=10000, fid_every_kimg=8.0, curve_num=2000, seeds=[1, 2, 3], teacher_ranges=3),
    "paper": dict(fid_num=50000, fid_every_kimg=0.0, curve_num=0, seeds=[42], teacher_ranges=1)}

# --- Metrics: what a final evaluation reports per run, and what a FID during training records (as eval_<key>).
METRICS = ("fid", "fid_test", "kid", "precision", "recall", "memorisation")
EVAL_KEYS = ("fid", "fid_test", "precision", "recall", "memorisation")
METRIC_NAMES = dict(fid="training-split FID", fid_test="held-out FID", memorisation="memorisation ratio")

# --- Claims each FID table decides. ``a`` and ``b`` name rows by kind (and NFE); ``b`` may be a row's scalar
# ``predicts`` says which sign of mean(a) - mean(b)
# the claim expects; the first of ``metrics`` decides, the others are shown beside it. ``b_fixed``: b's mean is
# a fixed reference value (a one-sample test), not a group of seeds.
CLAIMS = (
    dict(claim="GAN fine-tuning alone turns the diffusion model into a one-step generator (GDD-I at NFE 1 below the "
               "teacher at NFE 1)", a=("gddi", None), b=("teacher", 1), b_fixed=True, names=("GDD-I", "teacher NFE 1"),
         predicts="negative", metrics=("fid",)),
    dict(claim="GDD-I in one step is at or below the teacher's 35-NFE FID", a=("gddi", None), b=("teacher", 35),
         names=("GDD-I", "teacher NFE 35"), predicts="negative", metrics=("fid", "fid_test")),
    dict(claim="GDD in one step is at or below the teacher's 35-NFE FID", a=("gdd", None), b=("teacher", 35),
         names=("GDD", "teacher NFE 35"), predicts="negative", metrics=("fid", "fid_test")),
    dict(claim="Freezing most block convolutions (GDD-I) is at least as good as training them all (GDD)",
         a=("gddi", None), b=("gdd", None), names=("GDD-I", "GDD"), predicts="negative", metrics=("fid", "fid_test")),
    dict(claim="GAN distillation beats instance distillation at the same image budget", a=("gddi", None),
         b=("instance", None), names=("GDD-I", "instance"), predicts="negative", metrics=("fid", "fid_test")),
    dict(claim="GDD-I does not copy its training images (memorisation ratio at least the teacher's)", a=("gddi", None),
         b=("teacher", 35), names=("GDD-I", "teacher NFE 35"), predicts="positive", metrics=("memorisation",)),
    dict(claim="GDD does not copy its training images (memorisation ratio at least the teacher's)", a=("gdd", None),
         b=("teacher", 35), names=("GDD", "teacher NFE 35"), predicts="positive", metrics=("memorisation",)),
)


def _content() -> dict:
    """Everything above that decides what a record means, as JSON-able data (file paths by name only)."""
    return dict(scales=SCALES, mini_datasets=MINI_DATASETS, paper_datasets=PAPER_DATASETS, digits_split=DIGITS_SPLIT,
                mini_teachers={str(k): Path(v).name for k, v in MINI_TEACHERS.items()}, mini_kimg=MINI_KIMG,
                latents=dict(eval=EVAL_SEED_START, training_fid=TRAINING_FID_SEED_START, bank=BANK_SEED,
                             progress=[PROGRESS_SEEDS.start, PROGRESS_SEEDS.stop]),
                sweep_seed=SWEEP_SEED, ablation_seeds=ABLATION_SEEDS, scale_defaults=SCALE_DEFAULTS, metrics=METRICS,
                eval_keys=EVAL_KEYS, claims=CLAIMS, methods=METHODS, teacher_steps=[teacher_steps(8), teacher_steps(64)])


VERSION = hashlib.sha256(json.dumps(_content(), sort_keys=True).encode()).hexdigest()[:12]
