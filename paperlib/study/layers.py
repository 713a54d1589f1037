"""The layer-activation study as an experiment: on a dataset's teacher and the GDD and GDD-I networks of its presets
(training seed 1, at the presets' rate and budget; at smoke scale the smoke table's), trained where this checkout
lacks them, computed with :func:`paperlib.analysis.layer_study`, drawn with :mod:`paperlib.plots.activation` and
written to ``results/<dataset>/<scale>/layer_activation.json`` and four figures; or, when not asked to compute, what
an earlier computation wrote (a fresh clone has the committed mini numbers and figures, not the networks).
"""

from __future__ import annotations

import json
from pathlib import Path

from paperlib.analysis import layer_study, study_json
from paperlib.assets import MINI_TEACHERS
from paperlib.plots.activation import plot_generators, plot_heatmaps, plot_similarity
from paperlib.store.files import atomic_write_bytes
from paperlib.store.run_folder import RunFolder
from paperlib.study.jobs import Job
from paperlib.study.pool import default_workers, run_jobs
from paperlib.study.tables.build import smoke_jobs, train_smoke_teacher
from paperlib.study.tables.request import TableRequest

FIGURES = ("layer_activation", "layer_active_channels", "layer_similarity", "layer_generators")
# The study's sizes per scale (noise levels, images per batch): smoke stays a matter of seconds.
LAYER_SIZES = {"smoke": dict(num_sigmas=8, batch=32), "mini": dict(num_sigmas=32, batch=256),
               "paper": dict(num_sigmas=32, batch=256)}


def layer_outputs(dataset: str, scale: str, results_dir: str, figures_dir: str) -> dict:
    """Where the study of ``dataset``'s ``scale`` table writes: its numbers and its four figures (paths)."""
    return dict(numbers=Path(results_dir) / dataset / scale / "layer_activation.json",
                figures={name: Path(figures_dir) / f"{name}_{dataset}_{scale}.png" for name in FIGURES})


def generator_jobs(dataset: str, scale: str, runs: str = "runs", device: str = "auto") -> list[Job]:
    """The runs that make the study's GDD and GDD-I networks (seed 1) where this checkout lacks them: at mini scale
    the presets' own (``<runs>/mini/<dataset>/<dataset>-gdd/seed1``, ...), at smoke scale the smoke table's."""
    if scale == "smoke":
        jobs = smoke_jobs(TableRequest(dataset=dataset, scale="smoke", methods=["gdd", "gddi"], runs=runs,
                                       device=device))
    else:
        jobs = [Job(f"{dataset} {label} seed 1 (layer study)", f"{dataset}-{method}",
                    str(Path(runs) / "mini" / dataset / f"{dataset}-{method}" / "seed1"), dict(seed=1, device=device))
                for method, label in (("gdd", "GDD"), ("gddi", "GDD-I"))]
    return [job for job in jobs if not RunFolder(job.run_dir).network.exists()]


def study_networks(dataset: str, scale: str, runs: str = "runs", device: str = "auto", workers: int = 0) -> tuple[str, dict]:
    """The teacher and the GDD and GDD-I networks the study reads at ``scale`` (trained first where missing):
    (teacher path, {'GDD': path, 'GDD-I': path}). At smoke scale the teacher is the one the networks were fine-tuned
    from (a smoke table may have been given a teacher of its own), read from their run folders."""
    missing = generator_jobs(dataset, scale, runs, device)
    if missing:
        if scale == "smoke":
            train_smoke_teacher(TableRequest(dataset=dataset, scale="smoke", runs=runs, device=device))
        run_jobs(missing, workers=workers or default_workers(device))
    folder = Path(runs) / scale / dataset
    prefix = "smoke" if scale == "smoke" else dataset
    runs_of = {label: RunFolder(folder / f"{prefix}-{method}" / "seed1") for method, label in (("gdd", "GDD"), ("gddi", "GDD-I"))}
    teacher = MINI_TEACHERS[dataset == "digits-cond"]
    if scale == "smoke":
        teachers = {json.loads(run.config.read_text())["teacher"] for run in runs_of.values()}
        if len(teachers) != 1:
            raise ValueError(f"the smoke GDD and GDD-I networks under {folder} were fine-tuned from different teachers "
                             f"{sorted(teachers)}; train them again from one")
        teacher = teachers.pop()
    return teacher, {label: str(run.network) for label, run in runs_of.items()}


def compute_layer_study(dataset: str, scale: str, results_dir: str = "results", figures_dir: str = "figures",
                        teacher: str = "", generators: dict | None = None, data: str = "digits-8:train",
                        num_sigmas: int = 32, sigma_min: float = 0.002, sigma_max: float = 80.0, batch: int = 256,
                        device: str = "auto", runs: str = "runs") -> dict:
    """Compute the study (on ``teacher`` and ``generators`` when given, else on :func:`study_networks`, training
    those this checkout lacks), draw its figures and write its numbers. Returns dict(numbers: the JSON written,
    summary, figures: {name in FIGURES: path}, numbers_path)."""
    if not teacher:
        teacher, found = study_networks(dataset, scale, runs, device)
        generators = generators or found
    study = layer_study(teacher, generators or {}, data=data, num_sigmas=num_sigmas, sigma_min=sigma_min,
                        sigma_max=sigma_max, batch=batch, device=device, progress=False)
    trained, untrained = study["trained"], study["untrained"]
    out = layer_outputs(dataset, scale, results_dir, figures_dir)
    title = f"{dataset} ({scale})"
    paths = out["figures"]
    figures = dict(
        layer_activation=plot_heatmaps(
            {"trained teacher": trained.heatmap, "same architecture, random weights": untrained.heatmap},
            trained.layers, trained.sigmas, paths["layer_activation"],
            f"{title}: mean |activation| / its maximum over sigma", "relative activation"),
        layer_active_channels=plot_heatmaps(
            {"trained teacher": trained.active_fraction, "random weights": untrained.active_fraction},
            trained.layers, trained.sigmas, paths["layer_active_channels"], f"{title}: fraction of active channels",
            "fraction active"),
        layer_similarity=plot_similarity(trained, untrained, study["noise_floor"], paths["layer_similarity"],
                                         f"{title}: Pearson correlation of channel patterns across sigma"))
    if study["comparisons"]:
        figures["layer_generators"] = plot_generators(study["comparisons"], trained.sigmas, paths["layer_generators"],
                                                      f"{title}: one-step generators against the teacher")
    numbers = study_json(study)
    atomic_write_bytes(out["numbers"], json.dumps(numbers).encode())
    return dict(numbers=numbers, summary=study["summary"], figures=figures, numbers_path=out["numbers"])

