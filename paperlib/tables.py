"""The FID table of one dataset at smoke or mini scale, produced end to end from runs.

Rows: the teacher sampled with Heun at NFE 1, 3, 5, 9, 17 and 35; the one-step GDD, GDD-I and instance-distillation
students trained from that teacher with the same image budget; and the real-data floor (the held-out split, and a
same-size subsample of the training split). Columns: FID against the training split and against the held-out
split, KID, precision, recall, the memorisation ratio, training images, training wall time and frozen fraction.
Writes ``results/<dataset>/<scale>/table.json``, ``figures/table_<dataset>_<scale>.md`` and sample grids.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from paperlib.checkpoints import atomic_write_bytes, load_network
from paperlib.data import digits_dataset
from paperlib.experiments import train_and_evaluate
from paperlib.grids import nearest_neighbour_grid, save_grid
from paperlib.metrics import (DigitsExtractor, digits_reference, evaluate_features, extract_features, generate_uint8,
                              real_data_floor)
from paperlib.presets import MINI_TEACHERS, preset_config
from paperlib.train import train

TEACHER_STEPS = (1, 2, 3, 5, 9, 18)  # Heun NFE 1, 3, 5, 9, 17, 35
COLUMNS = ("fid", "fid_test", "kid", "precision", "recall", "memorisation", "kimg", "train_seconds", "frozen_fraction")
SCALES = {"smoke": dict(eval_num=100, prefix="smoke", student_kimg=None),
          "mini": dict(eval_num=1000, prefix="digits", student_kimg=None)}


def _teacher(dataset: str, scale: str, root: Path) -> str:
    conditional = dataset == "digits-cond"
    if scale == "mini":
        return MINI_TEACHERS[conditional]
    run_dir = root / "teacher"
    train(preset_config("smoke-teacher", run_dir=str(run_dir), conditional=conditional), resume=True, progress=False)
    return str(run_dir / "network.safetensors")


def build_table(dataset: str = "digits", scale: str = "mini", runs: str = "runs", results: str = "results",
                figures: str = "figures", eval_num: int | None = None) -> dict:
    """Train (or resume) every row of the table for ``dataset`` ('digits' or 'digits-cond') at ``scale``
    ('smoke' or 'mini'), evaluate it and write the table; returns the table as a dict."""
    if dataset not in ("digits", "digits-cond"):
        raise ValueError(f"dataset {dataset!r} has no {scale} table; expected 'digits' or 'digits-cond'")
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r}; tables are built here at {sorted(SCALES)} (paper scale runs on GPUs)")
    conditional = dataset == "digits-cond"
    eval_num = eval_num or SCALES[scale]["eval_num"]
    root = Path(runs) / scale / dataset
    out_dir = Path(results) / dataset / scale
    fig_dir = Path(figures)
    extractor = DigitsExtractor()
    ref = digits_reference(extractor)
    rows: list[dict] = []

    teacher_path = _teacher(dataset, scale, root)
    teacher = load_network(teacher_path)
    for steps in TEACHER_STEPS:
        start = time.perf_counter()
        images, _ = generate_uint8(teacher, range(eval_num), num_steps=steps, progress=False)
        metrics = evaluate_features(extract_features(extractor, images), ref)
        rows.append(dict(row=f"teacher, Heun NFE {2 * steps - 1}", nfe=2 * steps - 1, sample_seconds=time.perf_counter() - start,
                         kimg=None, train_seconds=None, frozen_fraction=0.0, **metrics))
        if steps == 18:
            save_grid(images[:64], fig_dir / f"samples_{dataset}_{scale}_teacher-nfe35.png", nrow=16,
                      title=f"{dataset} teacher, Heun NFE 35")

    prefix = "digits-cond" if conditional and scale == "mini" else SCALES[scale]["prefix"]
    for label, preset in (("GDD", f"{prefix}-gdd"), ("GDD-I", f"{prefix}-gddi"), ("instance distillation", f"{prefix}-instance")):
        overrides = dict(teacher=teacher_path, conditional=conditional)
        result = train_and_evaluate(preset, str(root / preset), extractor, ref, eval_num=eval_num, **overrides)
        cfg = preset_config(preset, **overrides)
        rows.append(dict(row=f"{label} (NFE 1)", lr=cfg.lr, freeze_level=cfg.freeze_level,
                         **{k: v for k, v in result.items() if k not in ("preset", "run_dir", "overrides")}))
        net = load_network(root / preset / "network.safetensors")
        images, _ = generate_uint8(net, range(64), progress=False)
        slug = label.split(" ")[0].lower()
        save_grid(images, fig_dir / f"samples_{dataset}_{scale}_{slug}.png", nrow=16, title=f"{dataset} {label}, NFE 1")
        if label == "GDD-I":
            nearest_neighbour_grid(images, extract_features(extractor, images), digits_dataset("train").images,
                                   ref.train, fig_dir / f"nearest_{dataset}_{scale}_gddi.png")

    floor = real_data_floor(ref)
    rows.append(dict(row="real data: held-out split (360)", nfe=None, **floor["held_out"]))
    rows.append(dict(row="real data: training subsample (360)", nfe=None, **floor["train_resample"]))
    table = dict(dataset=dataset, scale=scale, eval_num=eval_num, teacher=teacher_path,
                 feature_net="digits-featnet (64-d penultimate layer)", rows=rows)
    atomic_write_bytes(out_dir / "table.json", json.dumps(table, indent=2, default=float).encode())
    atomic_write_bytes(fig_dir / f"table_{dataset}_{scale}.md", to_markdown(table).encode())
    return table


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(table: dict) -> str:
    """The table as markdown, one row per model."""
    head = ("| row | FID (train) | FID (held-out) | KID | precision | recall | memorisation | training kimg | "
            "train s | frozen |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in table["rows"]:
        frozen = r.get("frozen_fraction")
        lines.append(f"| {r['row']} | {_fmt(r.get('fid'))} | {_fmt(r.get('fid_test'))} | {_fmt(r.get('kid'), 1)} | "
                     f"{_fmt(r.get('precision'), 3)} | {_fmt(r.get('recall'), 3)} | {_fmt(r.get('memorisation'), 3)} | "
                     f"{_fmt(r.get('kimg'), 0)} | {_fmt(r.get('train_seconds'), 0)} | "
                     f"{'–' if frozen is None else f'{100 * frozen:.1f}%'} |")
    note = (f"\n{table['dataset']} at {table['scale']} scale; {table['eval_num']} samples per model (seeds 0..), "
            f"features: {table['feature_net']}. FID is in that feature space, not comparable with Inception FIDs.\n")
    return head + "\n".join(lines) + "\n" + note
