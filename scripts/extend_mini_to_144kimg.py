"""Continue the unconditional mini table's GDD and GDD-I runs (seeds 1-3) from their 48-kimg training state to the
paper's number of passes (144 kimg, about 100 over the 1,437 training digits), in copies under
runs/mini/long144/, recording FID every 8 kimg (2,000 samples, training and held-out splits), and evaluate the
final generators on 10,000 samples. Writes results/digits/mini/long144.json (a table in the format of
``paperlib.tables``: the 48-kimg table's teacher and real-data rows beside the two continued rows, mean ± sd over the
seeds, whose claims ``paperlib.report`` decides by the same rule as the table's) and
figures/training_curves_digits_mini_144kimg.png. Needs the table's runs (./run_all.sh mini); about 25 minutes per
seed on 2 CPU cores. Run from the checkout: python scripts/extend_mini_to_144kimg.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from paperlib.curves import mean_curve, plot_training_curves
from paperlib.io import atomic_write_bytes
from paperlib.pool import Job, run_jobs
from paperlib.stats import aggregate_runs, mean_sd
from paperlib.tables import MINI_TEACHERS

KIMG, SEEDS = 144, (1, 2, 3)
NAMES = {"gdd": "GDD", "gddi": "GDD-I"}


def continuation_jobs() -> list[Job]:
    """One job per method and seed: a copy of the table's finished 48-kimg run, trained on to KIMG."""
    jobs = []
    for seed in SEEDS:
        for method in NAMES:
            source = Path(f"runs/mini/digits/digits-{method}/seed{seed}")
            run_dir = Path(f"runs/mini/long{KIMG}/digits-{method}/seed{seed}")
            if not run_dir.exists():
                if not (source / "result.json").exists():
                    raise FileNotFoundError(f"{source}: the table's finished run is needed (./run_all.sh mini)")
                shutil.copytree(source, run_dir)
                (run_dir / "result.json").unlink()  # its 48-kimg evaluation
            jobs.append(Job(f"digits {NAMES[method]} seed {seed} to {KIMG} kimg", f"digits-{method}", str(run_dir),
                            dict(teacher=MINI_TEACHERS[False], conditional=False, device="auto", seed=seed,
                                 total_kimg=KIMG), fid_every_kimg=8.0))
    return jobs


def main() -> None:
    jobs = continuation_jobs()
    results = run_jobs(jobs, workers=2, threads=1)
    table = json.loads(Path("results/digits/mini/table.json").read_text())
    rows = [r for r in table["rows"] if r["kind"] == "real" or (r["kind"] == "teacher" and r["nfe"] in (1, 35))]
    for method, name in NAMES.items():
        done = [(job, r) for job, r in zip(jobs, results) if job.preset == f"digits-{method}"]
        run_dirs = [job.run_dir for job, _ in done]
        rows.append(dict(row=f"{name} (NFE 1), {KIMG} kimg", kind=method, run_dirs=run_dirs, checkpoint=
                         f"{run_dirs[0]}/network.safetensors", **aggregate_runs([r for _, r in done], SEEDS),
                         curve=mean_curve(run_dirs), reported_fid=None, reported_source=""))
    long = dict(dataset=table["dataset"], scale=table["scale"], eval_num=table["eval_num"],
                feature_net=table["feature_net"], kimg=KIMG, continued_from_kimg=48, rows=rows)
    atomic_write_bytes(f"results/digits/mini/long{KIMG}.json", json.dumps(long, indent=1).encode())
    plot_training_curves({r["row"]: r["curve"] for r in rows if "curve" in r},
                         f"figures/training_curves_digits_mini_{KIMG}kimg.png",
                         f"digits, seeds {SEEDS[0]}-{SEEDS[-1]} continued from the table's 48 kimg to {KIMG} kimg "
                         f"(FID of {jobs[0].curve_num} samples every 8 kimg; mean ± sd)")
    for row in rows[-len(NAMES):]:
        print(f"{row['row']}: FID train {mean_sd(row, 'fid')}, held-out {mean_sd(row, 'fid_test')}, recall "
              f"{mean_sd(row, 'recall', 3)}, memorisation {mean_sd(row, 'memorisation', 3)} ({row['num']} samples)")


if __name__ == "__main__":  # the pool's worker processes import this file
    main()
