"""The layer-activation study as an experiment: on a table's teacher and its seed-1 GDD and GDD-I networks (trained
where this checkout lacks them), computed with :func:`paperlib.analysis.layer_study`, drawn with
:mod:`paperlib.activation_plots` and written to ``results/<dataset>/<scale>/layer_activation.json`` and four
figures; or, when not asked to compute, what an earlier computation wrote (a fresh clone has the committed mini
numbers and figures, not the networks).
"""

from __future__ import annotations

import json
from pathlib import Path

from paperlib.activation_plots import plot_generators, plot_heatmaps, plot_similarity
from paperlib.analysis import AnalysisError, layer_study, study_json
from paperlib.io import atomic_write_bytes
from paperlib.table_request import TableRequest

FIGURES = ("layer_activation", "layer_active_channels", "layer_similarity", "layer_generators")
# The study's sizes per scale (noise levels, images per batch): smoke stays a matter of seconds.
LAYER_SIZES = {"smoke": dict(num_sigmas=8, batch=32), "mini": dict(num_sigmas=32, batch=256),
               "paper": dict(num_sigmas=32, batch=256)}


def layer_outputs(dataset: str, scale: str, results_dir: str, figures_dir: str) -> dict:
    """Where the study of ``dataset``'s ``scale`` table writes: its numbers and its four figures (paths)."""
    return dict(numbers=Path(results_dir) / dataset / scale / "layer_activation.json",
                figures={name: Path(figures_dir) / f"{name}_{dataset}_{scale}.png" for name in FIGURES})


def compute_layer_study(dataset: str, scale: str, results_dir: str = "results", figures_dir: str = "figures",
                        teacher: str = "", generators: dict | None = None, data: str = "digits-8:train",
                        num_sigmas: int = 32, sigma_min: float = 0.002, sigma_max: float = 80.0, batch: int = 256,
                        device: str = "auto", runs: str = "runs") -> dict:
    """Compute the study (on ``teacher`` and ``generators`` when given, else on the table's, training the seed-1
    networks this checkout lacks), draw its figures and write its numbers. Returns dict(numbers: the JSON written,
    summary, figures: {name in FIGURES: path}, numbers_path)."""
    from paperlib.tables import table_checkpoints, train_table_networks

    if not teacher:
        train_table_networks(TableRequest(dataset=dataset, scale=scale, results=results_dir, runs=runs, device=device))
        teacher, found = table_checkpoints(results_dir, dataset, scale)
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


def layer_study_or_committed(p) -> tuple[dict, str]:
    """What layer_activation.ipynb shows for its checked parameters ``p`` (:func:`paperlib.notebook_params.setup`):
    the study computed when ``p.compute``, else the numbers and figures written before (the committed ones on a
    fresh clone). Returns (dict as :func:`compute_layer_study`'s, a line saying which it is)."""
    if p.compute:
        done = compute_layer_study(p.dataset, p.scale, p.results_dir, p.figures_dir, p.teacher, p.generators, p.data,
                                   p.num_sigmas, p.sigma_min, p.sigma_max, p.batch, p.device)
        return done, f"computed now; numbers in {done['numbers_path']}"
    out = layer_outputs(p.dataset, p.scale, p.results_dir, p.figures_dir)
    if not out["numbers"].exists():
        raise AnalysisError(f"no earlier study at {out['numbers']}: set compute = True to compute it (it trains the "
                            f"{p.scale} table's seed-1 GDD and GDD-I networks where this checkout lacks them)")
    numbers = json.loads(out["numbers"].read_text())
    figures = {name: path for name, path in out["figures"].items() if path.exists()}
    return (dict(numbers=numbers, summary=numbers["summary"], figures=figures, numbers_path=out["numbers"]),
            f"showing the study written before ({out['numbers']}); set compute = True to compute it again (it trains "
            f"the networks this checkout lacks)")
