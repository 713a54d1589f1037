"""What one FID table is asked to be: dataset, scale, files, budget, seeds, methods; checked before anything runs.

At smoke scale (tiny networks, for the tests) and paper scale (the released EDM teachers on GPUs) a table is built
from runs of its own (:mod:`paperlib.study.tables.build`, :mod:`paperlib.study.tables.paper`); at mini scale the
table is the protocol's, assembled from the ledger (:mod:`paperlib.study.evidence.tables`), and everything a
smoke or paper table chooses (teacher, budget, seeds, methods, released checkpoints) is fixed by the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paperlib.presets import PAPER_DATASETS
from paperlib.study.protocol import MINI_DATASETS

SCALES = ("smoke", "mini", "paper")
# Per scale of a table built from its own runs: FID samples, how often FID is recorded during training (kimg; 0 =
# never) and on how many samples, and the training seeds of every trained row.
SCALE_DEFAULTS = {"smoke": dict(fid_num=100, fid_every_kimg=0.16, curve_num=100, seeds=[1]),
                  "paper": dict(fid_num=50000, fid_every_kimg=0.0, curve_num=0, seeds=[42])}
# The trained rows (label, preset suffix), of which the small-D ablation exists at smoke and mini scale only; the
# authors' released checkpoints by label.
METHODS = (("GDD", "gdd"), ("GDD-I", "gddi"), ("instance distillation", "instance"),
           ("GDD-I, small from-scratch D (ablation)", "gddi-smalld"))
SMALL_SCALE_METHODS = ("gddi-smalld",)
RELEASED_KINDS = {"GDD": "gdd", "GDD-I": "gddi"}


def teacher_steps(resolution: int) -> tuple[int, ...]:
    """Heun steps of the teacher rows: NFE 1, 3, 5, 9, 17, 35, and 79 for the 64x64 sets (NFE = 2 steps - 1)."""
    return (1, 2, 3, 5, 9, 18) + ((40,) if resolution >= 64 else ())


class TableError(ValueError):
    """A table request that cannot run; the message names the parameter and what was expected."""


@dataclass
class TableRequest:
    """Everything one FID table needs; the notebook's parameters map onto it one to one.

    ``teacher``/``data``/``feature_weights``/``ref`` are paths (paper scale; at mini scale the shipped teacher and
    the digits data are used unless ``teacher`` is given). ``kimg`` overrides the students' image budget (0 = preset).
    ``released`` maps 'GDD'/'GDD-I' to the authors' checkpoints, evaluated without training.
    ``class_embedding``: the authors' in_embeddings/tf_efficientnet_lite0.pkl (conditional paper datasets).
    """

    dataset: str = "digits"
    scale: str = "mini"
    teacher: str = ""
    data: str = ""
    feature_weights: str = ""
    ref: str = ""
    kimg: float = 0.0
    device: str = "auto"
    gpus: int = 1
    fid_num: int = 0
    seeds: list = field(default_factory=list)  # training seeds of every trained row (default: the scale's)
    workers: int = 0                           # smoke/mini: runs trained at once (0 = one per core, or 6 on a GPU)
    methods: list = field(default_factory=lambda: ["gdd", "gddi", "instance", "gddi-smalld"])
    released: dict = field(default_factory=dict)
    backbone_weights: dict = field(default_factory=dict)
    class_embedding: str = ""
    runs: str = "runs"
    results: str = "results"
    figures: str = "figures"

    def validate(self) -> "TableRequest":
        """Check every parameter before anything runs (changing none); returns self."""
        if self.scale not in SCALES:
            raise TableError(f"scale {self.scale!r}: expected one of {SCALES}")
        known = MINI_DATASETS if self.scale != "paper" else tuple(PAPER_DATASETS)
        if self.dataset not in known:
            other = "paper" if self.scale != "paper" else "smoke/mini"
            raise TableError(f"dataset {self.dataset!r} is not a {self.scale}-scale dataset; expected one of {known}"
                             + (f" (it is a {other}-scale dataset)" if self.dataset in (*MINI_DATASETS, *PAPER_DATASETS) else ""))
        unknown = sorted(set(self.methods) - {m for _, m in METHODS})
        if unknown:
            raise TableError(f"methods {unknown} unknown; expected some of {[m for _, m in METHODS]}")
        if not all(isinstance(s, int) and s >= 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise TableError(f"seeds: expected distinct integers >= 0, got {self.seeds!r}")
        bad_released = sorted(set(self.released) - set(RELEASED_KINDS))
        if bad_released:
            raise TableError(f"released checkpoints are keyed 'GDD' or 'GDD-I', not {bad_released}")
        if self.gpus < 1 or self.kimg < 0 or self.fid_num < 0:
            raise TableError(f"gpus ({self.gpus}) must be >= 1, kimg ({self.kimg}) and fid_num ({self.fid_num}) >= 0")
        if self.scale == "paper":
            teacher_name = PAPER_DATASETS[self.dataset][2]
            needs = dict(teacher=f"the EDM teacher {teacher_name}", data="the dataset in EDM's zip/folder format",
                         feature_weights="inception-2015-12-05.pt (see README, 'Files you bring')",
                         ref=f"EDM's reference statistics fid-refs/{self.dataset}.npz")
            for name, what in needs.items():
                if not getattr(self, name):
                    raise TableError(f"paper scale needs {name}=PATH: {what}")
            if self.dataset in ("cifar10-cond", "imagenet-64") and not self.class_embedding:
                raise TableError("paper scale needs class_embedding=PATH for a conditional dataset: the authors' "
                                 "in_embeddings/tf_efficientnet_lite0.pkl (or 'random' for N(0, 1) rows)")
        for name in ("teacher", "data", "feature_weights", "ref"):
            path = getattr(self, name)
            if path and not Path(path).exists():
                raise TableError(f"{name}: no file or folder at {path}")
        embedding = {} if self.class_embedding in ("", "random") else dict(class_embedding=self.class_embedding)
        for label, path in {**self.released, **self.backbone_weights, **embedding}.items():
            if not Path(path).exists():
                raise TableError(f"{label}: no file at {path}")
        if self.scale == "mini":
            fixed = [name for name in self.PROTOCOL_FIXED if getattr(self, name) != getattr(TableRequest(), name)]
            if fixed:
                raise TableError(f"{', '.join(fixed)}: at mini scale the table is the protocol's (PROTOCOL.md), which "
                                 f"fixes them; use scale smoke or paper to choose them")
        return self

    # What a smoke or paper table chooses and the protocol fixes at mini scale.
    PROTOCOL_FIXED = ("teacher", "data", "feature_weights", "ref", "kimg", "gpus", "fid_num", "seeds", "methods",
                      "released", "backbone_weights", "class_embedding")

    @property
    def table_methods(self) -> list[str]:
        """The methods whose rows this table trains: ``methods`` less the mini-scale ablation at paper scale."""
        return [m for m in self.methods if self.scale != "paper" or m not in SMALL_SCALE_METHODS]

    @property
    def num(self) -> int:
        return self.fid_num or SCALE_DEFAULTS[self.scale]["fid_num"]

    @property
    def training_seeds(self) -> list[int]:
        return list(self.seeds) or SCALE_DEFAULTS[self.scale]["seeds"]
