"""The FID table of one dataset built from runs of its own, at smoke scale (tiny networks trained here in seconds:
it tests the code, not the method) or at paper scale (:mod:`paperlib.study.tables.paper`: every run a resumable
command). At mini scale the table is the protocol's (:mod:`paperlib.study.evidence.tables`).

Rows: the teacher sampled with Heun at NFE 1, 3, 5, 9, 17 and 35 (and 79 for the 64x64 sets); the one-step GDD,
GDD-I and instance-distillation students trained from that teacher with the same image budget (and, at smoke scale,
the small-discriminator ablation); the authors' released checkpoints when their paths are given; and, at smoke
scale, the real-data floor. Columns: FID against the training split (and the held-out split on digits), KID,
precision, recall, memorisation ratio, training images, training wall time, frozen fraction, and the paper's
reported FID beside ours. Writes ``<results>/<dataset>/<scale>/table.json``, ``<figures>/table_<dataset>_<scale>.md``
and sample grids.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from paperlib.assets import ROOT
from paperlib.data import digits_dataset
from paperlib.devices import resolve_device
from paperlib.diffusion import nfe_of
from paperlib.metrics import (
    DigitsExtractor,
    digits_reference,
    evaluate_features,
    extract_features,
    generate_uint8,
    read_npz,
    real_data_floor,
)
from paperlib.plots.grids import nearest_neighbour_figure, save_grid
from paperlib.presets import preset_config
from paperlib.store.checkpoints import load_network
from paperlib.store.files import atomic_write_bytes
from paperlib.store.run_folder import RunFolder
from paperlib.study.jobs import Job
from paperlib.study.paper_numbers import reported_for
from paperlib.study.pool import default_workers, run_jobs
from paperlib.study.summary import aggregate_runs, average_curves
from paperlib.study.tables.format import Row, to_markdown
from paperlib.study.tables.paper import paper_rows
from paperlib.study.tables.request import METHODS, RELEASED_KINDS, SCALE_DEFAULTS, TableRequest, teacher_steps
from paperlib.training import train

TABLE_METRICS = ("fid", "fid_test", "kid", "precision", "recall", "memorisation")


def describe(request: TableRequest) -> str:
    """What :func:`build_table` will do with ``request`` and where it writes, in a few lines (shown, after its
    ``validate()``, before anything runs)."""
    runs = len(request.table_methods) * len(request.training_seeds)
    lines = [f"{request.dataset} table at {request.scale} scale: {runs} training runs "
             f"({', '.join(request.table_methods)}; seeds {request.training_seeds}; "
             f"{f'{request.kimg:g} kimg' if request.kimg else 'preset budget'}), "
             f"{request.num} samples per FID; finished runs are reused, unfinished ones resumed.",
             f"writes {Path(request.results) / request.dataset / request.scale / 'table.json'} and "
             f"{Path(request.figures) / f'table_{request.dataset}_{request.scale}.md'} (+ sample grids there)"]
    if request.scale == "smoke":
        lines.insert(0, "SMOKE SCALE: tiny networks trained for seconds; the numbers test the code and mean "
                        "nothing about the method.")
    return "\n".join(lines)


def build_table(request: TableRequest) -> dict:
    """Train (or resume) and evaluate every row of one dataset's smoke or paper table, write it, and return it."""
    request.validate()
    if request.scale == "mini":
        raise ValueError("a mini table is the protocol's, assembled from the ledger: paperlib.study.evidence.tables")
    rows = paper_rows(request) if request.scale == "paper" else _smoke_rows(request)
    for row in rows:  # the reported numbers are the authors' best snapshots: no reported value beside a final one
        kind = "" if row.get("snapshot") == "final" else row.get("kind", "")
        row["reported_fid"], row["reported_source"] = reported_for(request.dataset, kind, row.get("nfe"))
    table = dict(dataset=request.dataset, scale=request.scale, eval_num=request.num, request=asdict(request),
                 feature_net=("Inception-v3 (legacy_tensorflow)" if request.scale == "paper"
                              else "digits-featnet (64-d penultimate layer)"), rows=rows)
    out_dir = Path(request.results) / request.dataset / request.scale
    atomic_write_bytes(out_dir / "table.json", json.dumps(table, indent=2, default=float).encode())
    atomic_write_bytes(Path(request.figures) / f"table_{request.dataset}_{request.scale}.md", to_markdown(table).encode())
    return table


def table_figures(request: TableRequest) -> list[Path]:
    """The figures a table's run draws (those that exist): the samples of the teacher and of each student, then the
    nearest-training-digit figure."""
    prefix = Path(request.figures) / f"samples_{request.dataset}_{request.scale}"
    paths = [Path(f"{prefix}_{name}.png") for name in ("teacher-nfe35", *request.table_methods)]
    paths.append(Path(request.figures) / f"nearest_{request.dataset}_{request.scale}_gddi.png")
    return [p for p in paths if p.exists()]


def curves_of_table(table: dict) -> dict[str, dict]:
    """The training curve of every trained row of a table, keyed by row name: the one the table keeps (smoke: the
    mean over the row's seeds), else the one its run logged (paper: FIDs at snapshots)."""
    return {row["row"]: row.get("curve") or RunFolder(row["run_dir"]).curve()
            for row in table["rows"] if row.get("run_dir")}


def _portable(path: str) -> str:
    """A path inside the checkout is recorded relative to it, so a table names no machine's folders."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


# ----------------------------------------------------------------------------------------------------------
# Smoke scale: digits and tiny networks, in this process.

def smoke_teacher_path(request: TableRequest) -> str:
    """The teacher of a smoke table: the request's, or the tiny one :func:`train_smoke_teacher` trains into the runs
    folder. Nothing is trained here."""
    return request.teacher or str(RunFolder(Path(request.runs) / "smoke" / request.dataset / "teacher").network)


def train_smoke_teacher(request: TableRequest) -> None:
    """Train (or find finished) the smoke scale's tiny teacher at :func:`smoke_teacher_path` (a few seconds)."""
    if not request.teacher:
        run_dir = Path(smoke_teacher_path(request)).parent
        train(preset_config("smoke-teacher", run_dir=str(run_dir), conditional=request.dataset == "digits-cond",
                            device=request.device), resume=True, progress=False)


def smoke_jobs(request: TableRequest) -> list[Job]:
    """The training runs behind a smoke table's trained rows (nothing is trained here): every method of
    ``request.methods`` at every training seed, in ``<runs>/smoke/<dataset>/smoke-<method>/seed<N>``."""
    request.validate()
    defaults = SCALE_DEFAULTS["smoke"]
    root, teacher = Path(request.runs) / "smoke" / request.dataset, smoke_teacher_path(request)
    jobs = []
    for label, method in METHODS:
        if method not in request.table_methods:
            continue
        for seed in request.training_seeds:
            overrides = dict(teacher=teacher, conditional=request.dataset == "digits-cond", device=request.device,
                             seed=seed, **({"total_kimg": request.kimg} if request.kimg else {}))
            jobs.append(Job(f"{request.dataset} {label} seed {seed}", f"smoke-{method}",
                            str(root / f"smoke-{method}" / f"seed{seed}"), overrides, eval_num=request.num,
                            fid_every_kimg=defaults["fid_every_kimg"], curve_num=defaults["curve_num"]))
    return jobs


def collect_progress(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Gather one run's progress samples (``run_dir/progress/kimg-*.npz``) into one small file ``out`` (images
    [T, 32, C, H, W] uint8, kimg [T]) kept beside its table, so the grids need no run folder."""
    files = RunFolder(run_dir).progress_files()
    if not files:
        raise FileNotFoundError(f"{run_dir}/progress holds no sample snapshots (train with fid_every_kimg > 0)")
    images, kimgs = [], []
    for file in files:
        data = read_npz(file, required=("images", "kimg"))
        images.append(data["images"])
        kimgs.append(float(data["kimg"]))
    buf = io.BytesIO()
    np.savez_compressed(buf, images=np.stack(images), kimg=np.array(kimgs))
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)


def _class_labels(labels) -> list[str] | None:
    """Each conditional sample's class, to print on its cell (None for an unconditional model, labels -1)."""
    return [str(int(c)) for c in labels] if len(labels) and labels[0] >= 0 else None


def _grid(net, path: Path, title: str, num_steps: int | None = None, device="cpu") -> np.ndarray:
    """Seeds 0-63 of ``net`` as a grid at ``path`` (a conditional model's cells show the class asked for)."""
    images, labels = generate_uint8(net, range(64), num_steps=num_steps, device=device, progress=False)
    note = "; yellow: the class asked for" if _class_labels(labels) else ""
    save_grid(images, path, nrow=16, title=title + note, cell_labels=_class_labels(labels))
    return images


def _teacher_rows(request: TableRequest, teacher_path: str, extractor, ref) -> tuple[list[Row], np.ndarray]:
    """The teacher at every step count of the table on ``request.num`` seeds 0..; and its samples of seeds 0-63 at
    NFE 35 (drawn as a grid)."""
    device = resolve_device(request.device)
    teacher, rows = load_network(teacher_path).to(device), []
    for steps in teacher_steps(8):
        images, _ = generate_uint8(teacher, range(request.num), num_steps=steps, device=device, progress=False)
        metrics = evaluate_features(extract_features(extractor, images), ref)
        rows.append(Row(row=f"teacher, Heun NFE {nfe_of(steps)}", kind="teacher", nfe=nfe_of(steps),
                        checkpoint=_portable(teacher_path), kimg=None, train_seconds=None, frozen_fraction=0.0,
                        **aggregate_runs([metrics], [f"0..{request.num - 1}"], TABLE_METRICS)))
    samples = _grid(teacher, Path(request.figures) / f"samples_{request.dataset}_smoke_teacher-nfe35.png",
                    f"{request.dataset} teacher, Heun NFE 35 (seeds 0-63)", num_steps=18, device=device)
    return rows, samples


def _smoke_rows(request: TableRequest) -> list[Row]:
    dataset, fig_dir = request.dataset, Path(request.figures)
    extractor = DigitsExtractor()
    ref = digits_reference(extractor)
    train_smoke_teacher(request)
    rows, teacher_samples = _teacher_rows(request, smoke_teacher_path(request), extractor, ref)
    samples = {"teacher, Heun NFE 35": teacher_samples}  # beside GDD's and GDD-I's, for the copy figure
    jobs = smoke_jobs(request)
    results = run_jobs(jobs, workers=request.workers or default_workers(request.device))
    for label, method in METHODS:
        runs = [r for job, r in zip(jobs, results) if job.preset == f"smoke-{method}"]
        if not runs:
            continue
        first = runs[0]["run_dir"]
        progress = Path(request.results) / dataset / "smoke" / "progress" / f"{method}.npz"
        rows.append(Row(row=f"{label} (NFE 1)", kind=method, freeze_level=runs[0]["config"]["freeze_level"],
                        run_dir=str(Path(first).parent), run_dirs=[r["run_dir"] for r in runs],
                        checkpoint=_portable(str(RunFolder(first).network)),
                        **aggregate_runs(runs, request.training_seeds, TABLE_METRICS),
                        curve=average_curves([r["curve"] for r in runs]),
                        progress=_portable(str(collect_progress(first, progress)))))
        images = _grid(load_network(RunFolder(first).network), fig_dir / f"samples_{dataset}_smoke_{method}.png",
                       f"{dataset} {label}, NFE 1 (training seed {request.training_seeds[0]}; samples of seeds 0-63)")
        if method in ("gdd", "gddi"):
            samples[label] = images
    if len(samples) == 3:  # the teacher's, GDD's and GDD-I's: copies would show as near-identical pairs
        nearest_neighbour_figure({k: (v, extract_features(extractor, v)) for k, v in samples.items()},
                                 digits_dataset("train").images, ref.train, ref.held_out,
                                 fig_dir / f"nearest_{dataset}_smoke_gddi.png",
                                 f"{dataset} (smoke): samples beside their nearest training digits")
    for label, path in request.released.items():
        images = generate_uint8(load_network(path), range(request.num), progress=False)[0]
        rows.append(Row(row=f"{label} released (NFE 1)", kind=RELEASED_KINDS[label], nfe=1, checkpoint=path,
                        num=request.num, **evaluate_features(extract_features(extractor, images), ref)))
    floor = real_data_floor(ref)
    rows.append(Row(row="real data: held-out split (360)", kind="real", nfe=None, **floor["held_out"]))
    rows.append(Row(row="real data: training subsample (360)", kind="real", nfe=None, **floor["train_resample"]))
    return rows
