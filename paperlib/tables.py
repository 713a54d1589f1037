"""The FID table of one dataset, produced end to end from runs, at smoke, mini or paper scale: the request, and
the smoke/mini execution (the paper-scale plan is :mod:`paperlib.paper_plan`, the row format and its rendering
:mod:`paperlib.table_format`).

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

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from paperlib.checkpoints import load_network
from paperlib.curves import average_curves, collect_progress
from paperlib.data import digits_dataset
from paperlib.diffusion import nfe_of
from paperlib.experiments import cached_result
from paperlib.grids import nearest_neighbour_figure, save_grid
from paperlib.io import ROOT, atomic_write_bytes, resolve_device
from paperlib.ledger import (
    check_one_protocol,
    ledger_dir,
    legacy_record,
    matching_teacher_record,
    teacher_record,
    write_record,
)
from paperlib.metrics import DigitsExtractor, digits_reference, evaluate_features, extract_features, generate_uint8, real_data_floor
from paperlib.paper_plan import paper_rows
from paperlib.pool import Job, default_workers, run_jobs
from paperlib.presets import preset_config
from paperlib.protocol import (
    METHODS,
    METRICS,
    MINI_TEACHERS,
    RELEASED_KINDS,
    SCALE_DEFAULTS,
    teacher_steps,
)
from paperlib.reported import reported_for
from paperlib.rundir import RunFolder
from paperlib.stats import aggregate_runs
from paperlib.table_format import Row, to_markdown
from paperlib.table_request import TableError, TableRequest
from paperlib.train import train

MINI_RUN_MINUTES = 12  # one 48-kimg projected-D run on one core of a 2-core machine (measured 2026-11)


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
    if request.scale == "mini":
        missing = len(runs_to_train(request))
        workers = request.workers or default_workers(request.device)
        lines.append(f"{runs - missing} of {runs} runs are recorded in {ledger_dir(request.results)}/ or finished in "
                     f"{request.runs}/; " + (
            f"the other {missing} take roughly {MINI_RUN_MINUTES * missing / workers:.0f} min to train here "
            f"({workers} at once, about {MINI_RUN_MINUTES} min per 48-kimg run per CPU core)" if missing
            else "the table takes about a minute"))
    if request.scale == "smoke":
        lines.insert(0, "SMOKE SCALE: tiny networks trained for seconds; the numbers test the code and mean "
                        "nothing about the method.")
    return "\n".join(lines)


def runs_to_train(request: TableRequest) -> list[Job]:
    """The mini-scale training runs of ``request`` that have neither a ledger record nor a finished result in its
    runs folder (none at the other scales: smoke trains in seconds, paper scale runs its own commands)."""
    if request.scale != "mini":
        return []
    return [job for job in mini_jobs(request) if job.recorded() is None
            and cached_result(job.preset, job.run_dir, job.eval_num, **job.overrides) is None]


def table_or_committed(request: TableRequest, train: bool) -> tuple[dict, str]:
    """The table a notebook shows: :func:`build_table` when ``train`` is set or nothing needs training, else the
    committed ``table.json`` (a fresh clone has the results but not the ignored ``runs/``), so "Run all" never
    starts an hour of training unasked. Returns (table, a line saying which it is)."""
    missing = runs_to_train(request)
    if train or not missing:
        return build_table(request), f"built from the run records in {ledger_dir(request.results)}/"
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
    rows = paper_rows(request) if request.scale == "paper" else _mini_rows(request)
    for row in rows:  # the reported numbers are the authors' best snapshots: no reported value beside a final one
        kind = "" if row.get("snapshot") == "final" and request.scale == "paper" else row.get("kind", "")
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
            raise TableError(f"{checkpoint}: the {label} network of {path} is not in this checkout (the ledger keeps "
                             f"its record, not its weights); train it with train = True in "
                             f"notebooks/layer_activation.ipynb or ./run_all.sh {scale}, or give the checkpoints "
                             f"explicitly")
    return _located(teacher), found


def table_network_jobs(request: TableRequest, methods: tuple[str, ...] = ("gdd", "gddi")) -> list[Job]:
    """The runs that make the first seed's networks of ``methods`` of a smoke/mini table where this checkout lacks
    them (a clone has the runs' ledger records, not their networks), for the studies that need the networks
    themselves; without records: the evidence is the recorded run, left as it is."""
    return [replace(job, record="", ledger="") for job in mini_jobs(request)
            if job.preset.endswith(tuple(f"-{m}" for m in methods)) and job.overrides["seed"] == request.training_seeds[0]
            and not RunFolder(job.run_dir).network.exists()]


def train_table_networks(request: TableRequest, methods: tuple[str, ...] = ("gdd", "gddi")) -> list[str]:
    """Train :func:`table_network_jobs` (and the smoke teacher they start from); returns their run folders."""
    jobs = table_network_jobs(request, methods)
    if jobs:
        train_smoke_teacher(request)
        run_jobs(jobs, workers=request.workers or default_workers(request.device))
    return [job.run_dir for job in jobs]


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

def mini_teacher_path(request: TableRequest) -> str:
    """The teacher file of a smoke/mini table: the request's, the shipped mini teacher, or at smoke scale the tiny
    teacher that :func:`train_smoke_teacher` trains into the runs folder. Nothing is trained here."""
    if request.teacher:
        return request.teacher
    if request.scale == "mini":
        return MINI_TEACHERS[request.dataset == "digits-cond"]
    return str(RunFolder(Path(request.runs) / "smoke" / request.dataset / "teacher").network)


def train_smoke_teacher(request: TableRequest) -> None:
    """Train (or find finished) the smoke scale's tiny teacher at :func:`mini_teacher_path` (a few seconds)."""
    if request.scale == "smoke" and not request.teacher:
        run_dir = Path(mini_teacher_path(request)).parent
        train(preset_config("smoke-teacher", run_dir=str(run_dir), conditional=request.dataset == "digits-cond",
                            device=request.device), resume=True, progress=False)


def teacher_row(request: TableRequest, teacher, teacher_path: str, steps: int, extractor, ref,
                device) -> tuple[Row, dict]:
    """The teacher at ``steps`` Heun steps, sampled with the scale's number of disjoint seed ranges at NFE 35 (one
    elsewhere) of ``request.num`` seeds each (0.., num.., ...): the row holds their mean, sd and per-range values.
    Taken from its ledger record when there is one (sampling 10,000 digits at NFE 35 three times takes minutes on
    a CPU), else sampled and recorded. Returns the row and its record."""
    num, scale = request.num, request.scale
    ranges = SCALE_DEFAULTS[scale]["teacher_ranges"] if steps == 18 else 1
    ledger, name = ledger_dir(request.results), f"{scale}/{request.dataset}/teacher/nfe{nfe_of(steps)}"
    record = matching_teacher_record(ledger, name, teacher_path, steps, ranges, num)
    if record is None:
        started = time.perf_counter()
        evaluations = []
        for k in range(ranges):
            images, _ = generate_uint8(teacher, range(k * num, (k + 1) * num), num_steps=steps, device=device,
                                       progress=False)
            evaluations.append(dict(latents=[k * num, (k + 1) * num - 1],
                                    **evaluate_features(extract_features(extractor, images), ref)))
        record = teacher_record(name, teacher_path, steps, evaluations, time.perf_counter() - started)
        write_record(ledger, record)
    evaluations = [{k: v for k, v in e.items() if k != "latents"} for e in record["ranges"]]
    row = Row(row=f"teacher, Heun NFE {nfe_of(steps)}", kind="teacher", nfe=nfe_of(steps),
              checkpoint=_portable(teacher_path), kimg=None, train_seconds=None, frozen_fraction=0.0,
              sample_seconds=record["sample_seconds"],
              **aggregate_runs(evaluations, [f"{a}..{b}" for a, b in (e["latents"] for e in record["ranges"])]))
    return row, record


def mini_jobs(request: TableRequest) -> list[Job]:
    """The training runs behind a smoke/mini table's trained rows (a list; nothing is trained here): every method
    of ``request.methods`` at every training seed, in ``<runs>/<scale>/<dataset>/<preset>/seed<N>``, from the
    teacher at :func:`mini_teacher_path`."""
    request.validate()
    defaults = SCALE_DEFAULTS[request.scale]
    conditional = request.dataset == "digits-cond"
    root = Path(request.runs) / request.scale / request.dataset
    teacher_path = mini_teacher_path(request)
    prefix = "smoke" if request.scale == "smoke" else request.dataset
    jobs = []
    for label, method in METHODS:
        if method not in request.table_methods:
            continue
        for seed in request.training_seeds:
            overrides = dict(teacher=teacher_path, conditional=conditional, device=request.device, seed=seed)
            if request.kimg:
                overrides["total_kimg"] = request.kimg
            name = f"{prefix}-{method}/seed{seed}"
            jobs.append(Job(f"{request.dataset} {label} seed {seed}", f"{prefix}-{method}", str(root / name),
                            overrides, eval_num=request.num, fid_every_kimg=defaults["fid_every_kimg"],
                            curve_num=defaults["curve_num"], ledger=str(ledger_dir(request.results)),
                            record=f"{request.scale}/{request.dataset}/{name}"))
    return jobs


def import_table(table: dict, origin: str) -> list[str]:
    """Enter a smoke/mini ``table`` made before the ledger into it, as records marked with ``origin`` (where the
    numbers come from): one per seed of each trained row, one per teacher row. The per-seed metrics are the row's
    ``<metric>_runs``; training time is the row's mean (per-seed times were not kept) and the FID curve the row's
    mean curve (``row_curve``); their machine, code commit and date are unknown (None). Built again from these
    records, the table's rows are unchanged. Returns the names."""
    request = TableRequest(**{k: v for k, v in table["request"].items() if k in TableRequest.__dataclass_fields__})
    request.validate()
    ledger, names = ledger_dir(request.results), []
    teacher_path = mini_teacher_path(request)
    for row in (r for r in table["rows"] if r.get("kind") == "teacher"):
        ranges = [dict(latents=[int(x) for x in span.split("..")], num=row["num"],
                       **{k: row[f"{k}_runs"][i] for k in METRICS}) for i, span in enumerate(row["seeds"])]
        record = teacher_record(f"{request.scale}/{request.dataset}/teacher/nfe{row['nfe']}", teacher_path,
                                (row["nfe"] + 1) // 2, ranges, row["sample_seconds"], origin=origin)
        write_record(ledger, dict(record, machine=None, code=None, made=None))
        names.append(record["name"])
    return names + import_trained_rows(table["rows"], mini_jobs(request), origin)


def import_trained_rows(rows: list[Row], jobs: list[Job], origin: str) -> list[str]:
    """Enter each seed of each trained row of a table made before the ledger as the record of its job in ``jobs``
    (the job of that preset and seed), as :func:`import_table` describes. Returns the names."""
    names = []
    for row in (r for r in rows if r.get("run_dirs")):
        for i, seed in enumerate(row["seeds"]):
            job = next(j for j in jobs if j.overrides["seed"] == seed and j.preset.endswith(f"-{row['kind']}"))
            write_record(job.ledger, legacy_record(job.record, job.preset, seed, job.config(), per_seed(row, i), origin,
                                                   row.get("curve")))
            names.append(job.record)
    return names


def per_seed(row: dict, i: int) -> dict:
    """Seed ``i``'s values of an aggregated row (:func:`paperlib.stats.aggregate_runs`): its metrics, and the row's
    shared lr, sample count, NFE, kimg, training time (a mean) and frozen fraction."""
    shared = {k: row.get(k) for k in ("lr", "num", "nfe", "kimg", "train_seconds", "frozen_fraction")}
    return dict(shared, **{k: row[f"{k}_runs"][i] for k in METRICS})


def _class_labels(labels) -> list[str] | None:
    """Each conditional sample's class, to print on its cell (None for an unconditional model, labels -1)."""
    return [str(int(c)) for c in labels] if len(labels) and labels[0] >= 0 else None


def _class_note(labels) -> str:
    return "; yellow: the class asked for" if _class_labels(labels) else ""


def _mini_rows(request: TableRequest) -> list[Row]:
    dataset, scale, num = request.dataset, request.scale, request.num
    defaults = SCALE_DEFAULTS[scale]
    fig_dir = Path(request.figures)
    extractor = DigitsExtractor()
    ref = digits_reference(extractor)
    rows: list[dict] = []

    train_smoke_teacher(request)
    teacher_path = mini_teacher_path(request)
    device = resolve_device(request.device)
    teacher = load_network(teacher_path).to(device)
    provenance = []  # every record behind the table: one protocol version for all
    samples = {}  # seeds 0-63 of the teacher and of the first seed's GDD and GDD-I networks, for the copy figure
    for steps in teacher_steps(8):
        row, record = teacher_row(request, teacher, teacher_path, steps, extractor, ref, device)
        provenance.append(dict(protocol=record["protocol"], record=record["name"]))
        rows.append(row)
        print(f"[paperlib] {dataset} {row['row']}: FID {row['fid']:.2f} ({num} samples x {len(row['seeds'])})",
              flush=True)
        if steps == 18:
            images, labels = generate_uint8(teacher, range(64), num_steps=steps, device=device, progress=False)
            samples["teacher, Heun NFE 35"] = images
            save_grid(images, fig_dir / f"samples_{dataset}_{scale}_teacher-nfe35.png", nrow=16,
                      title=f"{dataset} teacher, Heun NFE 35 (seeds 0-63){_class_note(labels)}",
                      cell_labels=_class_labels(labels))

    prefix = "smoke" if scale == "smoke" else dataset
    seeds = request.training_seeds
    methods = [(label, method) for label, method in METHODS if method in request.table_methods]
    jobs = mini_jobs(request)
    results = run_jobs(jobs, workers=request.workers or default_workers(request.device))
    check_one_protocol(provenance + [r for r in results if r.get("record")], f"the {dataset} {scale} table")
    for label, method in methods:
        runs = [r for job, r in zip(jobs, results) if job.preset == f"{prefix}-{method}"]
        cfg = preset_config(f"{prefix}-{method}", **next(j.overrides for j in jobs if j.preset == f"{prefix}-{method}"))
        first = runs[0]["run_dir"]
        row = Row(row=f"{label} (NFE 1)", kind=method, freeze_level=cfg.freeze_level,
                  run_dir=str(Path(first).parent), run_dirs=[r["run_dir"] for r in runs],
                  checkpoint=_portable(str(RunFolder(first).network)), **aggregate_runs(runs, seeds))
        if defaults["fid_every_kimg"]:  # kept with the table, so the curves and grids need no run folder
            curves = [r.get("curve") for r in runs]
            row["curve"] = average_curves(curves) if all(curves) else runs[0].get("row_curve")
            progress = Path(request.results) / dataset / scale / "progress" / f"{method}.npz"
            if RunFolder(first).progress_files():
                collect_progress(first, progress)
            if progress.exists():
                row["progress"] = _portable(str(progress))
        rows.append(row)
        if not RunFolder(first).network.exists():  # a table rebuilt from the ledger alone: its figures stay
            print(f"[paperlib] {first}: not in this checkout; the {label} sample grids are kept as they are",
                  flush=True)
            continue
        net = load_network(RunFolder(first).network)
        images, labels = generate_uint8(net, range(64), progress=False)
        save_grid(images, fig_dir / f"samples_{dataset}_{scale}_{method}.png", nrow=16,
                  title=f"{dataset} {label}, NFE 1 (training seed {seeds[0]}; samples of seeds 0-63)"
                        f"{_class_note(labels)}", cell_labels=_class_labels(labels))
        if method in ("gdd", "gddi"):
            samples[label] = images
    if len(samples) == 3:  # the teacher's, GDD's and GDD-I's: copies would show as near-identical pairs
        nearest_neighbour_figure({k: (v, extract_features(extractor, v)) for k, v in samples.items()},
                                 digits_dataset("train").images, ref.train, ref.held_out,
                                 fig_dir / f"nearest_{dataset}_{scale}_gddi.png",
                                 f"{dataset} ({scale}): samples beside their nearest training digits")

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


