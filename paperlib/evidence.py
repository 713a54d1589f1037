"""The mini-scale evidence beyond the main tables: the learning-rate sweeps that choose the presets' rates, and the
freeze ablation (FID against the frozen fraction of the generator). Both train many runs at once
(:mod:`paperlib.pool`) and write JSON under ``results/``; ``paperlib.report`` turns them into tables and figures.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from paperlib.freezing import FREEZE_POLICIES
from paperlib.io import atomic_write_bytes, save_figure
from paperlib.ledger import ledger_dir
from paperlib.pool import Job, default_workers, run_jobs
from paperlib.presets import MINI_SWEEP_LRS, PRESETS
from paperlib.protocol import ABLATION_SEEDS, MINI_DATASETS, SWEEP_SEED
from paperlib.stats import aggregate_runs


def sweep_path(results: str | Path, preset: str) -> Path:
    return Path(results) / "mini" / f"sweep-{preset}.json"


def chosen_lr(results: str | Path, preset: str) -> float:
    """The rate of lowest training-split FID in ``preset``'s sweep (never the held-out FID, which would leak it)."""
    path = sweep_path(results, preset)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no sweep of {preset}; run ./run_all.sh mini-sweep first")
    runs = json.loads(path.read_text())
    return min(runs, key=lambda r: r["fid"])["lr"]


def sweep_jobs(datasets=MINI_DATASETS, methods=("gdd", "gddi"), lrs: dict | None = None, runs: str = "runs",
               device: str = "auto", kimg: float = 0.0, eval_num: int = 10000, results: str = "results") -> list[Job]:
    """The sweep's runs: each (dataset, method) preset at each of its rates, seed 0, in runs/mini/sweep/, recorded
    in the ledger as ``mini/sweep/<preset>-lr<lr>``."""
    jobs = []
    for dataset in datasets:
        for method in methods:
            preset = f"{dataset}-{method}"
            for lr in (lrs or MINI_SWEEP_LRS)[method]:
                overrides = dict(lr=lr, seed=SWEEP_SEED, device=device, **({"total_kimg": kimg} if kimg else {}))
                name = f"mini/sweep/{preset}-lr{lr:g}"
                jobs.append(Job(f"sweep {preset} lr {lr:g}", preset, f"{runs}/{name}", overrides, eval_num=eval_num,
                                ledger=str(ledger_dir(results)), record=name))
    return jobs


def mini_sweep(datasets=MINI_DATASETS, methods=("gdd", "gddi"), lrs: dict | None = None, runs: str = "runs",
               results: str = "results", device: str = "auto", workers: int = 0, kimg: float = 0.0,
               eval_num: int = 10000) -> dict[str, float]:
    """Train every (dataset, method) preset at each of its sweep rates (``MINI_SWEEP_LRS``; seed 0, the preset's
    budget or ``kimg``) in one pool, write ``results/mini/sweep-<preset>.json`` (one result per rate) and return
    the chosen rate of each preset."""
    jobs = sweep_jobs(datasets, methods, lrs, runs, device, kimg, eval_num, results)
    done = run_jobs(jobs, workers=workers or default_workers(device))
    chosen = {}
    for preset in dict.fromkeys(job.preset for job in jobs):
        mine = sorted((r for job, r in zip(jobs, done) if job.preset == preset), key=lambda r: r["lr"])
        atomic_write_bytes(sweep_path(results, preset), json.dumps(mine, indent=2).encode())
        chosen[preset] = chosen_lr(results, preset)
    return chosen


def ablation_jobs(dataset: str = "digits", seeds=ABLATION_SEEDS, runs: str = "runs", device: str = "auto",
                  kimg: float = 0.0, eval_num: int = 10000, results: str = "results") -> list[Job]:
    """The ablation's runs: GDD-I's preset at every freezing policy and seed. At the preset's budget the 'gddi' policy
    is the main table's GDD-I row and reuses its runs and records (freeze_level 1 is that policy; same config, same
    folders); another budget (``kimg``) trains every policy in folders of its own. Recorded in the ledger under
    the run folder's name below the runs folder."""
    jobs = []
    for policy in FREEZE_POLICIES:
        for seed in seeds:
            overrides = dict(seed=seed, device=device, **({"total_kimg": kimg} if kimg else {}))
            if policy == "gddi" and not kimg:
                name = f"mini/{dataset}/{dataset}-gddi/seed{seed}"
            else:
                overrides.update(freeze_level=0, freeze_policy=policy)
                budget = f"-{kimg:g}kimg" if kimg else ""
                name = f"mini/ablation/{dataset}-freeze-{policy}{budget}/seed{seed}"
            jobs.append(Job(f"ablation {dataset} freeze {policy} seed {seed}", f"{dataset}-gddi", f"{runs}/{name}",
                            overrides, eval_num=eval_num, ledger=str(ledger_dir(results)), record=name))
    return jobs


def freeze_ablation(dataset: str = "digits", seeds=ABLATION_SEEDS, runs: str = "runs", results: str = "results",
                    figures: str = "figures", device: str = "auto", workers: int = 0, kimg: float = 0.0,
                    eval_num: int = 10000) -> dict:
    """GDD-I's freezing at every policy of ``FREEZE_POLICIES`` (nothing frozen ... everything but normalisation and
    embeddings), ``seeds`` each, all at GDD-I's preset rate and budget: a fixed rate, so that only the freezing
    differs. The 'gddi' policy is the main table's GDD-I row and reuses its runs (same config, same folders).
    Writes ``results/<dataset>/mini/freeze_ablation.json`` and the figure; returns the JSON's dict."""
    preset = f"{dataset}-gddi"
    lr = PRESETS[preset]["lr"]
    jobs = ablation_jobs(dataset, seeds, runs, device, kimg, eval_num, results)
    done = run_jobs(jobs, workers=workers or default_workers(device))
    levels = []
    for policy in FREEZE_POLICIES:
        # a job without freeze_policy is the table's own GDD-I run, i.e. the 'gddi' policy
        mine = [r for job, r in zip(jobs, done) if job.overrides.get("freeze_policy", "gddi") == policy]
        levels.append(dict(policy=policy, **aggregate_runs(mine, list(seeds))))
    out = dict(dataset=dataset, scale="mini", preset=preset, lr=lr, num=eval_num, seeds=list(seeds),
               kimg=levels[0].get("kimg"), levels=levels)
    atomic_write_bytes(Path(results) / dataset / "mini" / "freeze_ablation.json", json.dumps(out, indent=2).encode())
    plot_freeze_ablation(out, Path(figures) / f"freeze_ablation_{dataset}_mini.png")
    return out


def plot_freeze_ablation(ablation: dict, path: str | Path) -> Path:
    """FID (training and held-out split) per freeze policy, ordered by frozen fraction: each seed's value as a dot
    and the mean ± sd as a bar (log y: a level that diverges sits orders of magnitude above the rest)."""
    import matplotlib.pyplot as plt

    from paperlib.curves import log_axis

    levels = ablation["levels"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(levels))
    for key, label, color, dx in (("fid", "FID (train)", "tab:blue", -0.1), ("fid_test", "FID (held-out)",
                                                                            "tab:orange", 0.1)):
        ax.errorbar(x + dx, [lv[key] for lv in levels], yerr=[lv.get(f"{key}_sd") or 0 for lv in levels],
                    marker="o", capsize=3, color=color, label=f"{label}: mean ± sd")
        for xi, lv in zip(x, levels):
            runs = lv.get(f"{key}_runs") or [lv[key]]
            ax.scatter(np.full(len(runs), xi + dx + 0.06), runs, s=10, color=color, alpha=0.5, zorder=3)
    names = [textwrap.fill(lv["policy"].replace("-", " "), 13) for lv in levels]  # wrapped: the ticks stay apart
    ax.set_xticks(x, [f"{n}\n{100 * lv['frozen_fraction']:.1f}% frozen" for n, lv in zip(names, levels)], fontsize=8)
    log_axis(ax)
    ax.set_ylabel("FID (digits feature space, log scale)")
    ax.set_title(f"Freeze ablation, {ablation['dataset']} mini: {ablation['kimg']:g} kimg, lr {ablation['lr']:g}, "
                 f"{len(ablation['seeds'])} seeds per policy (dots: each seed), {ablation['num']:,} samples", fontsize=9)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
