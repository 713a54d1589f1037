"""The FID table of one dataset, produced end to end from runs, at smoke, mini or paper scale.

Rows: the teacher sampled with Heun at NFE 1, 3, 5, 9, 17 and 35 (and 79 for the 64x64 sets); the one-step GDD,
GDD-I and instance-distillation students trained from that teacher with the same image budget; the authors'
released checkpoints when their paths are given; and, at mini scale, the real-data floor. Columns: FID against the
training split (and the held-out split at mini scale), KID, precision, recall, memorisation ratio, training images,
training wall time, frozen fraction, and the paper's reported FID beside ours.
Writes ``results/<dataset>/<scale>/table.json``, ``figures/table_<dataset>_<scale>.md`` and sample grids.

At smoke and mini scale everything runs in this process on the digits data; at paper scale every training run and
every FID is a ``python -m paperlib`` command (under torchrun when ``gpus > 1``), resumed when its output exists.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np

from paperlib.checkpoints import load_network
from paperlib.curves import collect_progress, mean_curve
from paperlib.data import digits_dataset
from paperlib.diffusion import nfe_of
from paperlib.experiments import best_snapshot, cached_result
from paperlib.grids import nearest_neighbour_grid, save_grid
from paperlib.io import ROOT, atomic_write_bytes, file_sha256, resolve_device
from paperlib.metrics import DigitsExtractor, digits_reference, evaluate_features, extract_features, generate_uint8, real_data_floor
from paperlib.pool import Job, default_workers, run_jobs
from paperlib.presets import MINI_TEACHERS, PRESETS, preset_config
from paperlib.reported import reported_for
from paperlib.stats import aggregate_runs, mean_sd
from paperlib.train import train

MINI_DATASETS = ("digits", "digits-cond")
# Paper datasets: (preset prefix, resolution, teacher file name as released by EDM).
PAPER_DATASETS = {"cifar10": ("cifar10-uncond", 32, "edm-cifar10-32x32-uncond-ve.pkl"),
                  "cifar10-cond": ("cifar10-cond", 32, "edm-cifar10-32x32-cond-ve.pkl"),
                  "afhqv2-64": ("afhqv2-64", 64, "edm-afhqv2-64x64-uncond-ve.pkl"),
                  "ffhq-64": ("ffhq-64", 64, "edm-ffhq-64x64-uncond-ve.pkl"),
                  "imagenet-64": ("imagenet-64", 64, "edm-imagenet-64x64-cond-adm.pkl")}
SCALES = ("smoke", "mini", "paper")
# Per scale: FID samples, how often FID is recorded during training (kimg; 0 = never).
# Per scale: FID samples, how often FID is recorded during training (kimg; 0 = never) and on how many samples,
# the training seeds of every trained row, and how many disjoint seed ranges the teacher's NFE-35 row is sampled with.
SCALE_DEFAULTS = {
    "smoke": dict(fid_num=100, fid_every_kimg=0.16, curve_num=100, seeds=[1], teacher_ranges=1),
    "mini": dict(fid_num=10000, fid_every_kimg=8.0, curve_num=2000, seeds=[1, 2, 3], teacher_ranges=3),
    "paper": dict(fid_num=50000, fid_every_kimg=0.0, curve_num=0, seeds=[42], teacher_ranges=1)}
METHODS = (("GDD", "gdd"), ("GDD-I", "gddi"), ("instance distillation", "instance"),
           ("GDD-I, small from-scratch D (ablation)", "gddi-smalld"))
MINI_ONLY_METHODS = ("gddi-smalld",)
RELEASED_KINDS = {"GDD": "gdd", "GDD-I": "gddi"}  # the authors' released checkpoints, by table label


class Row(TypedDict, total=False):
    """One row of a FID table as table.json stores it. ``kind`` is set where the row is made, never derived from
    its label: 'teacher', 'gdd', 'gddi', 'instance' or 'real'."""

    row: str                # the label shown in the table
    kind: str
    nfe: int | None         # network evaluations per sample (None for real data)
    checkpoint: str         # the network scored
    run_dir: str            # trained rows: the folder of the row's runs (one per seed)
    run_dirs: list          # trained rows at smoke/mini scale: each seed's run
    curve: dict             # smoke/mini: FID during training, mean over seeds (paperlib.curves.mean_curve)
    progress: str           # smoke/mini: the first seed's samples over training (paperlib.curves.collect_progress)
    seeds: list             # trained rows: training seeds; teacher rows: the seed ranges sampled
    fid_runs: list          # per seed (or seed range), likewise <metric>_runs for every metric
    fid_sd: float | None    # sample sd over seeds, likewise <metric>_sd
    snapshot: str           # paper scale: 'final' or 'best'
    lr: float               # trained rows: the generator's learning rate
    freeze_level: int       # trained rows: 0 (GDD) or 1 (GDD-I)
    fid: float              # against the training split (the paper's protocol)
    fid_test: float         # against the held-out split (mini scale)
    kid: float
    precision: float
    recall: float
    memorisation: float     # nearest-training-image distance ratio: 1 = no copying, 0 = copies
    num: int                # samples the metrics come from (per seed)
    kimg: float | None      # training images seen, in thousands
    train_seconds: float | None
    sample_seconds: float   # teacher rows: time to sample them
    frozen_fraction: float
    reported_fid: float | None
    reported_source: str


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
        """Check every parameter before anything runs; returns self."""
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
        if self.scale == "paper":
            self.methods = [m for m in self.methods if m not in MINI_ONLY_METHODS]  # an ablation of the mini scale
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
        return self

    @property
    def num(self) -> int:
        return self.fid_num or SCALE_DEFAULTS[self.scale]["fid_num"]

    @property
    def training_seeds(self) -> list[int]:
        return list(self.seeds) or SCALE_DEFAULTS[self.scale]["seeds"]

    def describe(self) -> str:
        """What :func:`build_table` will do and where it writes, in a few lines (shown, after :meth:`validate`,
        before anything runs)."""
        runs = len(self.methods) * len(self.training_seeds)
        lines = [f"{self.dataset} table at {self.scale} scale: {runs} training runs ({', '.join(self.methods)}; seeds "
                 f"{self.training_seeds}; {'preset budget' if not self.kimg else f'{self.kimg:g} kimg'}), "
                 f"{self.num} samples per FID; finished runs are reused, unfinished ones resumed.",
                 f"writes {Path(self.results) / self.dataset / self.scale / 'table.json'} and "
                 f"{Path(self.figures) / f'table_{self.dataset}_{self.scale}.md'} (+ sample grids there)"]
        if self.scale == "mini":
            missing = len(runs_to_train(self))
            workers = self.workers or default_workers(self.device)
            lines.append(f"{runs - missing} of {runs} runs are finished in {self.runs}/; " + (
                f"the other {missing} take roughly {MINI_RUN_MINUTES * missing / workers:.0f} min to train here "
                f"({workers} at once, about {MINI_RUN_MINUTES} min per 48-kimg run per CPU core)" if missing
                else "the table takes about a minute"))
        if self.scale == "smoke":
            lines.insert(0, "SMOKE SCALE: tiny networks trained for seconds; the numbers test the code and mean "
                            "nothing about the method.")
        return "\n".join(lines)


MINI_RUN_MINUTES = 12  # one 48-kimg projected-D run on one core of a 2-core machine (measured 2026-11)


def runs_to_train(request: TableRequest) -> list[Job]:
    """The mini-scale training runs of ``request`` that have no finished result in its runs folder (none at the
    other scales: smoke trains in seconds, paper scale runs its own commands)."""
    if request.scale != "mini":
        return []
    return [job for job in mini_jobs(request)
            if cached_result(job.preset, job.run_dir, job.eval_num, **job.overrides) is None]


def table_or_committed(request: TableRequest, train: bool) -> tuple[dict, str]:
    """The table a notebook shows: :func:`build_table` when ``train`` is set or nothing needs training, else the
    committed ``table.json`` (a fresh clone has the results but not the ignored ``runs/``), so "Run all" never
    starts an hour of training unasked. Returns (table, a line saying which it is)."""
    missing = runs_to_train(request)
    if train or not missing:
        return build_table(request), f"built from the runs in {request.runs}/"
    path = Path(request.results) / request.dataset / request.scale / "table.json"
    if not path.exists():
        raise TableError(f"{len(missing)} training runs are missing and there is no {path} to show: set train = True "
                         f"to train them (or run ./run_all.sh {request.scale})")
    return json.loads(path.read_text()), (
        f"showing the committed {path}: {len(missing)} of its training runs are not in {request.runs}/ (a fresh "
        f"clone has results, not runs); set train = True to retrain them (./run_all.sh {request.scale} does)")


def build_table(request: TableRequest) -> dict:
    """Train (or resume) and evaluate every row of one dataset's table, write it, and return it as a dict."""
    request.validate()
    start = time.perf_counter()
    rows = _paper_rows(request) if request.scale == "paper" else _mini_rows(request)
    for row in rows:  # the reported numbers are the authors' best snapshots: no reported value beside a final one
        kind = "" if row.get("snapshot") == "final" and request.scale == "paper" else row.get("kind", "")
        row["reported_fid"], row["reported_source"] = reported_for(request.dataset, kind, row.get("nfe"))
    table = dict(dataset=request.dataset, scale=request.scale, eval_num=request.num, request=asdict(request),
                 feature_net=("Inception-v3 (legacy_tensorflow)" if request.scale == "paper"
                              else "digits-featnet (64-d penultimate layer)"),
                 wall_seconds=time.perf_counter() - start, rows=rows)
    out_dir = Path(request.results) / request.dataset / request.scale
    atomic_write_bytes(out_dir / "table.json", json.dumps(table, indent=2, default=float).encode())
    atomic_write_bytes(Path(request.figures) / f"table_{request.dataset}_{request.scale}.md", to_markdown(table).encode())
    return table


def table_checkpoints(results: str, dataset: str, scale: str) -> tuple[str, dict[str, str]]:
    """The teacher and the trained one-step generators ('GDD', 'GDD-I') of a finished table, as paths."""
    path = Path(results) / dataset / scale / "table.json"
    if not path.exists():
        raise TableError(f"{path} is missing: run notebooks/fid_table.ipynb with dataset={dataset!r}, scale={scale!r} "
                         f"first, or give the checkpoints explicitly")
    rows = json.loads(path.read_text())["rows"]
    teacher = next(r["checkpoint"] for r in rows if r.get("kind") == "teacher")
    names = {"gdd": "GDD", "gddi": "GDD-I"}
    found = {names[r["kind"]]: _located(r["checkpoint"]) for r in rows
             if r.get("kind") in names and r.get("run_dir") and r.get("checkpoint")}
    for label, checkpoint in found.items():
        if not Path(checkpoint).exists():  # the table is committed, its runs (runs/, ignored) are not
            raise TableError(f"{checkpoint}: the {label} network of {path} is not in this checkout; train it with "
                             f"./run_all.sh {scale} (or notebooks/fid_table.ipynb, dataset={dataset!r}, "
                             f"scale={scale!r}; finished runs are reused), or give the checkpoints explicitly")
    return _located(teacher), found


def _portable(path: str) -> str:
    """A path inside the checkout is recorded relative to it, so committed tables name no machine's folders."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def _located(path: str) -> str:
    return path if Path(path).is_absolute() or Path(path).exists() else str(ROOT / path)


# ----------------------------------------------------------------------------------------------------------
# Smoke and mini scale: digits, in this process.

def _mini_teacher(request: TableRequest, root: Path) -> str:
    conditional = request.dataset == "digits-cond"
    if request.teacher:
        return request.teacher
    if request.scale == "mini":
        return MINI_TEACHERS[conditional]
    run_dir = root / "teacher"
    train(preset_config("smoke-teacher", run_dir=str(run_dir), conditional=conditional, device=request.device),
          resume=True, progress=False)
    return str(run_dir / "network.safetensors")


def _teacher_row(teacher, teacher_path: str, steps: int, ranges: int, num: int, extractor, ref, device,
                 cache_dir: Path) -> tuple[Row, np.ndarray]:
    """The teacher at ``steps`` Heun steps, sampled with ``ranges`` disjoint seed ranges of ``num`` seeds each
    (0.., num.., ...); the row holds their mean, sd and per-range values. Also returns the first range's first 64
    images. The row is cached in ``cache_dir`` under the teacher file's hash, so a rerun of the table re-samples
    nothing (sampling 10,000 digits at NFE 35 three times takes minutes on a CPU)."""
    key = f"teacher-rows/{file_sha256(teacher_path)[:12]}-steps{steps}-x{ranges}-n{num}.npz"
    if (cache_dir / key).exists():
        with np.load(cache_dir / key) as cached:
            return Row(**json.loads(str(cached["row"]))), cached["images"]
    started = time.perf_counter()
    results, first = [], None
    for k in range(ranges):
        images, _ = generate_uint8(teacher, range(k * num, (k + 1) * num), num_steps=steps, device=device,
                                   progress=False)
        first = images[:64] if first is None else first
        results.append(evaluate_features(extract_features(extractor, images), ref))
    row = Row(row=f"teacher, Heun NFE {nfe_of(steps)}", kind="teacher", nfe=nfe_of(steps),
              checkpoint=_portable(teacher_path), kimg=None, train_seconds=None, frozen_fraction=0.0,
              sample_seconds=time.perf_counter() - started,
              **aggregate_runs(results, [f"{k * num}..{(k + 1) * num - 1}" for k in range(ranges)]))
    buf = io.BytesIO()
    np.savez(buf, row=json.dumps(row), images=first)
    atomic_write_bytes(cache_dir / key, buf.getvalue())
    return row, first


def mini_jobs(request: TableRequest, teacher_path: str | None = None) -> list[Job]:
    """The training runs behind a smoke/mini table's trained rows: every method of ``request.methods`` at every
    training seed, in ``<runs>/<scale>/<dataset>/<preset>/seed<N>``."""
    request.validate()
    defaults = SCALE_DEFAULTS[request.scale]
    conditional = request.dataset == "digits-cond"
    root = Path(request.runs) / request.scale / request.dataset
    teacher_path = teacher_path or _mini_teacher(request, root)
    prefix = "smoke" if request.scale == "smoke" else request.dataset
    jobs = []
    for label, method in METHODS:
        if method not in request.methods:
            continue
        for seed in request.training_seeds:
            overrides = dict(teacher=teacher_path, conditional=conditional, device=request.device, seed=seed)
            if request.kimg:
                overrides["total_kimg"] = request.kimg
            jobs.append(Job(f"{request.dataset} {label} seed {seed}", f"{prefix}-{method}",
                            str(root / f"{prefix}-{method}" / f"seed{seed}"), overrides, eval_num=request.num,
                            fid_every_kimg=defaults["fid_every_kimg"], curve_num=defaults["curve_num"]))
    return jobs


def _mini_rows(request: TableRequest) -> list[Row]:
    dataset, scale, num = request.dataset, request.scale, request.num
    defaults = SCALE_DEFAULTS[scale]
    root = Path(request.runs) / scale / dataset
    fig_dir = Path(request.figures)
    extractor = DigitsExtractor()
    ref = digits_reference(extractor)
    rows: list[dict] = []

    teacher_path = _mini_teacher(request, root)
    device = resolve_device(request.device)
    teacher = load_network(teacher_path).to(device)
    for steps in teacher_steps(8):
        ranges = defaults["teacher_ranges"] if steps == 18 else 1
        row, images = _teacher_row(teacher, teacher_path, steps, ranges, num, extractor, ref, device, root)
        rows.append(row)
        print(f"[paperlib] {dataset} {row['row']}: FID {row['fid']:.2f} ({num} samples x {ranges})", flush=True)
        if steps == 18:
            save_grid(images[:64], fig_dir / f"samples_{dataset}_{scale}_teacher-nfe35.png", nrow=16,
                      title=f"{dataset} teacher, Heun NFE 35")

    prefix = "smoke" if scale == "smoke" else dataset
    seeds = request.training_seeds
    methods = [(label, method) for label, method in METHODS if method in request.methods]
    jobs = mini_jobs(request, teacher_path)
    results = run_jobs(jobs, workers=request.workers or default_workers(request.device))
    for label, method in methods:
        runs = [r for job, r in zip(jobs, results) if job.preset == f"{prefix}-{method}"]
        cfg = preset_config(f"{prefix}-{method}", **next(j.overrides for j in jobs if j.preset == f"{prefix}-{method}"))
        first = runs[0]["run_dir"]
        row = Row(row=f"{label} (NFE 1)", kind=method, freeze_level=cfg.freeze_level,
                  run_dir=str(Path(first).parent), run_dirs=[r["run_dir"] for r in runs],
                  checkpoint=_portable(str(Path(first) / "network.safetensors")), **aggregate_runs(runs, seeds))
        if defaults["fid_every_kimg"]:  # kept with the table, so the curves and grids need no run folder
            row["curve"] = mean_curve(row["run_dirs"])
            row["progress"] = _portable(str(collect_progress(
                first, Path(request.results) / dataset / scale / "progress" / f"{method}.npz")))
        rows.append(row)
        net = load_network(Path(first) / "network.safetensors")
        images, _ = generate_uint8(net, range(64), progress=False)
        save_grid(images, fig_dir / f"samples_{dataset}_{scale}_{method}.png", nrow=16,
                  title=f"{dataset} {label}, NFE 1 (seed {seeds[0]})")
        if method == "gddi":
            nearest_neighbour_grid(images, extract_features(extractor, images), digits_dataset("train").images,
                                   ref.train, fig_dir / f"nearest_{dataset}_{scale}_gddi.png")

    for label, path in request.released.items():
        metrics = evaluate_features(extract_features(extractor, generate_uint8(load_network(path), range(num),
                                                                               progress=False)[0]), ref)
        rows.append(Row(row=f"{label} released (NFE 1)", kind=RELEASED_KINDS[label], nfe=1, checkpoint=path,
                        num=num, **metrics))

    floor = real_data_floor(ref)
    rows.append(Row(row="real data: held-out split (360)", kind="real", nfe=None, **floor["held_out"]))
    rows.append(Row(row="real data: training subsample (360)", kind="real", nfe=None,
                    **floor["train_resample"]))
    return rows


# ----------------------------------------------------------------------------------------------------------
# Paper scale: commands, each resumable, under torchrun when several GPUs are used.

def paperlib_command(args: list[str], gpus: int = 1) -> list[str]:
    """The argv that runs ``python -m paperlib ARGS`` on ``gpus`` processes (torchrun, one node) or one."""
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                "-m", "paperlib", *args]
    return [sys.executable, "-m", "paperlib", *args]


def paper_plan(request: TableRequest) -> list[dict]:
    """Every step of a paper-scale table in order: dicts with ``row``, ``kind``, ``nfe``, ``argv`` and ``output``
    (the file the step leaves behind; a step whose output exists is not run again)."""
    request.validate()
    prefix, resolution, _ = PAPER_DATASETS[request.dataset]
    root = Path(request.runs) / "paper" / request.dataset
    fid = ["fid", "--ref", request.ref, "--num", str(request.num), "--features", "inception",
           "--feature-weights", request.feature_weights]
    if request.device != "auto":
        fid += ["--device", request.device]
    steps: list[dict] = []
    for n in teacher_steps(resolution):
        out = root / f"fid-teacher-nfe{nfe_of(n)}.json"
        steps.append(dict(row=f"teacher, Heun NFE {nfe_of(n)}", kind="teacher", nfe=nfe_of(n), output=str(out),
                          checkpoint=request.teacher,
                          argv=paperlib_command([*fid, "--ckpt", request.teacher, "--steps", str(n), "--out", str(out)],
                                                request.gpus)))
    for label, path in request.released.items():
        out = root / f"fid-released-{label.lower()}.json"
        steps.append(dict(row=f"{label} released (NFE 1)", kind=RELEASED_KINDS[label], nfe=1, output=str(out),
                          checkpoint=path,
                          argv=paperlib_command([*fid, "--ckpt", path, "--out", str(out)], request.gpus)))
    for label, method in METHODS:
        if method not in request.methods:
            continue
        preset = f"{prefix}-{'gddi' if method == 'gddi' else 'gdd'}"
        run_dir = root / method
        extra = ["--teacher", request.teacher, "--dataset", request.data, "--device", request.device]
        if method == "instance":  # the same preset, budget and optimiser; only the objective differs
            extra += ["--objective", "instance"]
        if request.kimg:
            extra += ["--total_kimg", str(request.kimg)]
        d_kwargs = dict(PRESETS[preset]["discriminator_kwargs"])
        if request.backbone_weights:
            d_kwargs["weights"] = request.backbone_weights
        if request.class_embedding:
            d_kwargs["class_embedding"] = request.class_embedding
        if d_kwargs != PRESETS[preset]["discriminator_kwargs"]:
            extra += ["--discriminator_kwargs", json.dumps(d_kwargs)]
        # FID at every snapshot (250 kimg), as the authors chose their released checkpoints by it.
        extra += ["--eval-ref", request.ref, "--eval-feature-weights", request.feature_weights,
                  "--eval-num", str(request.num)]
        network = run_dir / "network.safetensors"
        steps.append(dict(row=f"{label} training", kind="train", output=str(network), run_dir=str(run_dir),
                          argv=paperlib_command(["train", "--preset", preset, "--run-dir", str(run_dir), "--resume",
                                                 "--no-progress", *extra], request.gpus)))
        out = root / f"fid-{method}.json"
        steps.append(dict(row=f"{label} (NFE 1), final", kind=method, nfe=1, output=str(out), run_dir=str(run_dir),
                          checkpoint=str(network), snapshot="final",
                          argv=paperlib_command([*fid, "--ckpt", str(network), "--out", str(out)], request.gpus)))
    return steps


def _paper_rows(request: TableRequest) -> list[Row]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    rows = []
    for step in paper_plan(request):
        output = Path(step["output"])
        if not output.exists():
            print("[paperlib] " + " ".join(step["argv"]), flush=True)
            subprocess.run(step["argv"], check=True, env=env)
        if step["kind"] == "train":
            continue
        row = Row(row=step["row"], kind=step["kind"], nfe=step["nfe"], checkpoint=step["checkpoint"],
                   **({"snapshot": step["snapshot"]} if "snapshot" in step else {}), **json.loads(output.read_text()))
        if "run_dir" in step:
            config = json.loads((Path(step["run_dir"]) / "config.json").read_text())
            lines = (Path(step["run_dir"]) / "metrics.jsonl").read_text().splitlines()
            last = json.loads(lines[-1]) if lines else {}
            row.update(kimg=last.get("kimg"), train_seconds=last.get("train_seconds"), freeze_level=config["freeze_level"])
            best = best_snapshot(step["run_dir"])
            if best is not None:  # the authors released their lowest-FID snapshots: this row is the comparable one
                rows.append(Row(row, row=step["row"].replace(", final", f", best snapshot ({best['kimg']:g} kimg)"),
                                 snapshot="best", checkpoint=best["checkpoint"], fid=best["fid"], num=best["num"],
                                 kimg=best["kimg"]))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------
# Rendering.

def format_number(value, digits: int = 2) -> str:
    """A table cell: fixed-point with ``digits`` decimals (no exponent notation), '–' for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(table: dict) -> str:
    """The table as markdown, one row per model (mean ± sd over seeds where a row has several), with the paper's
    reported FID beside ours."""
    head = ("| row | FID (train) | FID (held-out) | KID | precision | recall | memorisation | runs | training kimg | "
            "train s | frozen | reported FID |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    decimals = dict(fid=2, fid_test=2, kid=1, precision=3, recall=3, memorisation=3)
    lines = []
    for r in table["rows"]:
        frozen = r.get("frozen_fraction")
        cells = [r["row"], *(mean_sd(r, k, d) for k, d in decimals.items()), str(len(r.get("seeds") or [1])),
                 format_number(r.get("kimg"), 0), format_number(r.get("train_seconds"), 0),
                 "–" if frozen is None else f"{100 * frozen:.1f}%", format_number(r.get("reported_fid"))]
        lines.append("| " + " | ".join(cells) + " |")
    sources = [f"{r['row']}: {r['reported_source']}" for r in table["rows"] if r.get("reported_fid") is not None]
    note = (f"\n{table['dataset']} at {table['scale']} scale; {table['eval_num']} samples per model and run (seeds 0..; "
            f"the teacher's NFE-35 row: one disjoint range of seeds per run), features: {table['feature_net']}. "
            f"Columns: 'FID (train)' against the training split (the paper's protocol), 'FID (held-out)' against "
            f"images no model saw; 'KID': clean-fid's unbiased kernel distance (cubic kernel) in the same features, "
            f"raw units (it scales with the features' magnitude and can dip below 0 when two sets are alike); "
            f"'precision'/'recall': k-NN manifold precision and recall (k = 3) against the training split; "
            f"'memorisation': mean distance of samples to their nearest training image over that of held-out images "
            f"(about 1 for fresh data, well below 1 for copies); 'runs': training seeds (or seed ranges) behind a "
            f"row, shown as mean ± sample sd; 'train s': training wall time per run, evaluations excluded; "
            f"'frozen': the generator's frozen fraction of parameters.")
    if table["scale"] == "paper":
        note += (" Trained rows: the final EMA generator and the snapshot (every 250 kimg) of lowest FID, which is how"
                 " the authors chose their released checkpoints; the reported FIDs stand beside the best snapshot.")
    else:
        note += (" Trained rows are the final EMA generator (no snapshot selection at this scale)."
                 " FID here is in that feature space and not comparable with the reported Inception FIDs, which are"
                 " the paper's numbers for the setting this dataset stands in for.")
    if sources:
        note += " Reported: " + "; ".join(sources) + "."
    return head + "\n".join(lines) + "\n" + note + "\n"
