"""Paper-scale FID tables as a plan: every training run and every FID is a ``python -m paperlib`` command (under
torchrun when ``gpus > 1``), run in order and skipped when its output exists, so a table resumes where it stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paperlib.assets import ROOT
from paperlib.diffusion import nfe_of
from paperlib.evaluation import best_snapshot
from paperlib.presets import PAPER_DATASETS, PRESETS
from paperlib.store.run_folder import RunFolder
from paperlib.study.tables.format import Row
from paperlib.study.tables.request import METHODS, RELEASED_KINDS, TableRequest, teacher_steps


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
        if method not in request.table_methods:
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
        network = RunFolder(run_dir).network
        steps.append(dict(row=f"{label} training", kind="train", output=str(network), run_dir=str(run_dir),
                          argv=paperlib_command(["train", "--preset", preset, "--run-dir", str(run_dir), "--resume",
                                                 "--no-progress", *extra], request.gpus)))
        out = root / f"fid-{method}.json"
        steps.append(dict(row=f"{label} (NFE 1), final", kind=method, nfe=1, output=str(out), run_dir=str(run_dir),
                          checkpoint=str(network), snapshot="final",
                          argv=paperlib_command([*fid, "--ckpt", str(network), "--out", str(out)], request.gpus)))
    return steps


def paper_rows(request: TableRequest) -> list[Row]:
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
            folder = RunFolder(step["run_dir"])
            config = json.loads(folder.config.read_text())
            last = (folder.records() or [{}])[-1]
            row.update(kimg=last.get("kimg"), train_seconds=last.get("train_seconds"), freeze_level=config["freeze_level"])
            best = best_snapshot(step["run_dir"])
            if best is not None:  # the authors released their lowest-FID snapshots: this row is the comparable one
                rows.append(Row(row, row=step["row"].replace(", final", f", best snapshot ({best['kimg']:g} kimg)"),
                                 snapshot="best", checkpoint=best["checkpoint"], fid=best["fid"], num=best["num"],
                                 kimg=best["kimg"]))
        rows.append(row)
    return rows
