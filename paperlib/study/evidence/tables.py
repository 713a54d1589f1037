"""The protocol's tables (``paperlib.study.protocol``): each dataset's rows trained at
:data:`~paperlib.study.protocol.EVIDENCE_KIMG` at the rates its sweeps chose (:mod:`paperlib.study.evidence.rates`), the
teacher's NFE-1 and NFE-35 rows over :data:`~paperlib.study.protocol.TEACHER_RANGES` disjoint latent ranges, and the
verdict of every claim of its family (:mod:`paperlib.study.evidence.verdicts`), assembled from the ledger's records alone.

Runs are listed seed by seed (every row's seed 1, then seed 2, ...), so that a study stopped at any point leaves
whole seeds, each made on one machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from paperlib.data import DIGITS_TEST_SIZE
from paperlib.devices import resolve_device
from paperlib.plots.curves import plot_discriminator_view, plot_training_curves
from paperlib.store.checkpoints import weights_identity
from paperlib.store.files import atomic_write_bytes
from paperlib.study.evidence.plan import comparison_plan, row_seeds
from paperlib.study.evidence.rates import METHOD_LABELS, evidence_job, recorded_row
from paperlib.study.evidence.verdicts import annotate, decide_claims
from paperlib.study.jobs import Job
from paperlib.study.ledger import (
    LedgerError,
    check_one_protocol,
    cpu_kind,
    ledger_dir,
    read_record,
    real_record,
    teacher_record,
    write_record,
)
from paperlib.study.protocol import (
    COPY_MARGIN,
    CURVE_EVERY_KIMG,
    CURVE_NUM,
    EVIDENCE_CLAIMS,
    EVIDENCE_KIMG,
    EVIDENCE_METRICS,
    EVIDENCE_NUM,
    EVIDENCE_VERSION,
    FID_MARGIN,
    MIN_SEEDS,
    MINI_TEACHERS,
    SECONDARY_ROWS,
    TABLE_ROWS,
    TABLE_SEEDS,
    TEACHER_RANGES,
    table_latents,
    teacher_latents,
)
from paperlib.study.summary import aggregate_runs, average_curves

TEACHER_STEPS = {"teacher1": 1, "teacher35": 18}  # Heun steps of the teacher rows (NFE = 2 steps - 1)


def chosen_rates(dataset: str, results: str = "results") -> dict:
    """The rates :func:`paperlib.study.evidence.rates.rates_summary` chose for ``dataset`` (its ``rates.json``)."""
    path = Path(results) / "evidence" / dataset / "rates.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the {dataset} table's rates are chosen by its sweeps first: "
                                f"python -m paperlib run rates --datasets {dataset}")
    return json.loads(path.read_text())


def table_rows(dataset: str, rates: dict) -> list[dict]:
    """The trained rows of ``dataset``'s table: dict(method, label, lr, seeds, secondary), the secondary ones (a
    method at its own best rate) only where that rate is not the common one."""
    seeds = row_seeds(dataset)
    rows = [dict(method=m, label=label, lr=rates["common"] if how == "common" else rates["own"][m],
                 seeds=list(TABLE_SEEDS[:seeds[m]]), secondary=False) for m, label, how in TABLE_ROWS]
    rows += [dict(method=m, label=label, lr=rates["own"][m], seeds=list(TABLE_SEEDS[:MIN_SEEDS]), secondary=True)
             for m, label in SECONDARY_ROWS if rates["own"][m] != rates["common"]]
    return rows


def run_name(dataset: str, method: str, lr: float, seed: int) -> str:
    return f"evidence/{dataset}/table/{method}-lr{lr:g}/seed{seed}"


def table_jobs(datasets, runs: str = "runs", results: str = "results", device: str = "auto") -> list[Job]:
    """Every training run of the tables of ``datasets``, seed by seed, with FID curves and the discriminator's
    view; a run two rows share (a secondary row at the common rate) is listed once."""
    jobs, seen = [], set()
    rows = {d: table_rows(d, chosen_rates(d, results)) for d in datasets}
    for seed in TABLE_SEEDS:
        for dataset in datasets:
            for row in rows[dataset]:
                name = run_name(dataset, row["method"], row["lr"], seed)
                if seed in row["seeds"] and name not in seen:
                    seen.add(name)
                    jobs.append(evidence_job(dataset, row["method"], row["lr"], seed, EVIDENCE_KIMG, name,
                                             table_latents(dataset, row["method"], row["lr"], seed), EVIDENCE_VERSION,
                                             runs, results, device, CURVE_EVERY_KIMG))
    return jobs


def teacher_ranges(dataset: str, row: str, results: str = "results", device: str = "auto", log=print) -> list[dict]:
    """The teacher's ``row`` ('teacher1' or 'teacher35') of ``dataset`` over :data:`TEACHER_RANGES` disjoint
    latent ranges of :data:`EVIDENCE_NUM` samples, one ledger record per range (sampled where it is missing, so
    an interrupted evaluation goes on where it stopped). Returns the records, in range order."""
    from paperlib.metrics import DigitsExtractor, digits_reference, evaluate_network
    from paperlib.store.checkpoints import load_network

    teacher_path, ledger = MINI_TEACHERS[dataset == "digits-cond"], ledger_dir(results)
    records, state = [], {}
    for k in range(TEACHER_RANGES):
        name, latents = f"evidence/{dataset}/{row}/range{k}", teacher_latents(dataset, row, k)
        record = read_record(ledger, name)
        if record is not None and (record["teacher"], record["steps"], record["ranges"][0]["latents"]) != (
                weights_identity(teacher_path), TEACHER_STEPS[row], [latents.start, latents.stop - 1]):
            raise LedgerError(f"{name} holds another teacher evaluation; delete it to evaluate again")
        if record is None:
            if not state:
                device_ = resolve_device(device)
                state.update(net=load_network(teacher_path).to(device_), extractor=DigitsExtractor(), device=device_)
                state["ref"] = digits_reference(state["extractor"])
            started = time.perf_counter()
            metrics = evaluate_network(state["net"], state["extractor"], state["ref"], num=EVIDENCE_NUM,
                                       num_steps=TEACHER_STEPS[row], seed_offset=latents.start, device=state["device"],
                                       progress=False)
            record = teacher_record(name, teacher_path, TEACHER_STEPS[row],
                                    [dict(latents=[latents.start, latents.stop - 1], **metrics)],
                                    time.perf_counter() - started, EVIDENCE_VERSION)
            write_record(ledger, record)
            log(f"{dataset} {row} range {k}: FID {metrics['fid']:.3f} ({record['sample_seconds']:.0f} s)")
        records.append(record)
    return records


def real_reference(dataset: str, results: str = "results") -> dict:
    """The held-out digits scored against the training digits as samples are (:func:`paperlib.metrics.real_data_floor`):
    how low each metric goes for fresh real data. One ledger record per dataset, made where it is missing."""
    from paperlib.metrics import DigitsExtractor, digits_reference, real_data_floor

    ledger, name = ledger_dir(results), f"evidence/{dataset}/real/held-out"
    record = read_record(ledger, name)
    if record is None:
        record = real_record(name, real_data_floor(digits_reference(DigitsExtractor()))["held_out"], EVIDENCE_VERSION)
        write_record(ledger, record)
    return record


def assemble_evidence_table(dataset: str, results: str = "results") -> dict:
    """``dataset``'s table and verdicts from the ledger alone (every run and teacher range must be recorded; nothing
    is sampled, trained or written): rows with mean ± sd and per-seed values of every metric, each claim's test,
    Holm's correction over the family, its verdict sentence, the rows it compares, its planned power and notes
    (:func:`~paperlib.study.evidence.verdicts.annotate`); the FID claims again on held-out FID (``held_out``, their
    own family, deciding nothing); and the real held-out digits' metrics (``real``, where recorded)."""
    ledger, rates = ledger_dir(results), chosen_rates(dataset, results)
    sides, rows, records = {}, [], []
    for row in ("teacher1", "teacher35"):
        names = [f"evidence/{dataset}/{row}/range{k}" for k in range(TEACHER_RANGES)]
        found = [read_record(ledger, name) for name in names]
        if None in found:
            raise LedgerError(f"the {dataset} evidence table lacks {names[found.index(None)]}: python -m paperlib run "
                              f"evidence --datasets {dataset}")
        records += found
        evaluations = [r["ranges"][0] for r in found]
        rows.append(dict(row=f"teacher, Heun NFE {2 * TEACHER_STEPS[row] - 1}", kind=row,
                         **aggregate_runs(evaluations, [f"{e['latents'][0]}.." for e in evaluations], EVIDENCE_METRICS)))
        sides[row] = (evaluations, [None] * len(found))
    for row in table_rows(dataset, rates):
        found, evaluations, summary = recorded_row(
            ledger, [run_name(dataset, row["method"], row["lr"], s) for s in row["seeds"]], row["seeds"],
            f"the {dataset} evidence table's {row['label']} at lr {row['lr']:g}",
            f"python -m paperlib run evidence --datasets {dataset}")
        records += found
        rows.append(dict(row=f"{row['label']} (NFE 1), lr {row['lr']:g}" + (", secondary" if row["secondary"] else ""),
                         kind=row["method"], lr=row["lr"], secondary=row["secondary"], kimg=EVIDENCE_KIMG, **summary))
        curves = [r["curve"] for r in found if r.get("curve") and r["curve"].get("kimg")]
        if curves:
            rows[-1]["curve"] = average_curves(curves)
        if not row["secondary"]:
            sides[row["method"]] = (evaluations, [cpu_kind(r) for r in found])
    check_one_protocol([dict(protocol=r["protocol"], record=r["name"]) for r in records],
                       f"the {dataset} evidence table")
    margin = lambda claim: COPY_MARGIN if claim["metric"] == "copy_share" else FID_MARGIN[dataset]  # noqa: E731
    described = {r["kind"]: r for r in rows if not r.get("secondary")}
    hows = {m: how for m, _, how in TABLE_ROWS}
    describe = lambda side: (described[side]["row"] if side.startswith("teacher") else  # noqa: E731
                             f"{METHOD_LABELS[side]} at lr {described[side]['lr']:g} "
                             f"({'the common rate' if hows[side] == 'common' else 'its own best rate'})")
    curve = described["instance"].get("curve") or {}
    extra = {"gan-vs-instance": f": its FID during training falls from {curve['fid'][0]:.1f} to {curve['fid'][-1]:.1f} "
                                f"over {curve['kimg'][-1]:g} kimg" if curve.get("fid") else ""}
    planned = {e["key"]: e["power"] for e in comparison_plan(dataset)}
    claims = annotate(decide_claims(EVIDENCE_CLAIMS, sides, margin), EVIDENCE_CLAIMS, describe, planned, extra)
    # The held-out view: the FID claims again on held-out FID, their own Holm family, deciding nothing.
    held_out_claims = [dict(c, metric="fid_test") for c in EVIDENCE_CLAIMS if c["metric"] == "fid"]
    held_out = decide_claims(held_out_claims, sides, margin)
    real = read_record(ledger, f"evidence/{dataset}/real/held-out")
    return dict(dataset=dataset, protocol=EVIDENCE_VERSION, kimg=EVIDENCE_KIMG, eval_num=EVIDENCE_NUM, rates=rates,
                rows=rows, claims=claims, held_out=held_out, real=real["evaluation"] if real else None)


def write_evidence_table(dataset: str, runs: str = "runs", results: str = "results", device: str = "auto",
                         figures: str = "figures") -> dict:
    """The ``evidence`` study's summary of ``dataset``: its teacher ranges sampled where missing, then
    :func:`assemble_evidence_table` written to ``results/evidence/<dataset>/table.json`` with its curves figures
    (:func:`draw_evidence_curves`) and its copy figure (:func:`draw_evidence_copies`) in ``figures``."""
    for row in ("teacher1", "teacher35"):
        teacher_ranges(dataset, row, results, device)
    real_reference(dataset, results)
    table = assemble_evidence_table(dataset, results)
    atomic_write_bytes(Path(results) / "evidence" / dataset / "table.json", json.dumps(table, indent=1, default=float).encode())
    draw_evidence_curves(table, figures)
    draw_evidence_copies(dataset, table["rates"], runs, figures, device)
    return table


def draw_evidence_copies(dataset: str, rates: dict, runs: str = "runs", figures: str = "figures",
                         device: str = "auto", count: int = 8):
    """The copy figure of ``dataset``'s evidence table: the teacher at NFE 35 (its first latent range), GDD and
    GDD-I (at the common rate, the first training seed whose two networks are both in ``runs``, each on its own
    latents), each sample over its nearest training digit with the distance, the held-out digits' 5th percentile
    marking a near-copy. Returns the path, or None (saying so) when no seed has both networks in ``runs``: a
    ledger spans machines, and a run folder stays on the machine that trained it."""
    from paperlib.data import digits_dataset
    from paperlib.metrics import DigitsExtractor, digits_reference, extract_features, generate_uint8
    from paperlib.plots.grids import nearest_neighbour_figure
    from paperlib.store.checkpoints import load_network
    from paperlib.store.run_folder import RunFolder

    lr = rates["common"]
    seed = next((s for s in TABLE_SEEDS if all(RunFolder(Path(runs) / run_name(dataset, method, lr, s)).network.exists()
                                               for method in ("gdd", "gddi"))), None)
    if seed is None:
        print(f"[paperlib] no training seed of {dataset}'s GDD and GDD-I at lr {lr:g} has both networks under {runs}: "
              f"the {dataset} evidence copy figure is kept as it is", flush=True)
        return None
    device_ = resolve_device(device)
    nets = {f"teacher, Heun NFE 35 (latents {teacher_latents(dataset, 'teacher35', 0).start}..)":
            (Path(MINI_TEACHERS[dataset == "digits-cond"]), teacher_latents(dataset, "teacher35", 0), TEACHER_STEPS["teacher35"])}
    for method, label in (("gdd", "GDD"), ("gddi", "GDD-I")):
        latents = table_latents(dataset, method, lr, seed)
        nets[f"{label}, NFE 1 (lr {lr:g}, training seed {seed}, latents {latents.start}..)"] = (
            RunFolder(Path(runs) / run_name(dataset, method, lr, seed)).network, latents, None)
    extractor = DigitsExtractor()
    ref = digits_reference(extractor)
    panels = {}
    for label, (network, latents, steps) in nets.items():
        images = generate_uint8(load_network(network).to(device_), latents[:count], num_steps=steps, device=device_,
                                progress=False)[0]
        panels[label] = (images, extract_features(extractor, images))
    path = nearest_neighbour_figure(panels, digits_dataset("train").images, ref.train, ref.held_out,
                                    Path(figures) / f"evidence_nearest_{dataset}.png",
                                    f"{dataset}, the evidence table's runs at {EVIDENCE_KIMG:g} kimg: samples beside "
                                    f"their nearest training digits", count)
    print(f"[paperlib] {path}: the teacher beside GDD and GDD-I of training seed {seed}", flush=True)
    return path


def draw_evidence_curves(table: dict, figures: str = "figures") -> list[Path]:
    """The curves of an evidence table (:func:`evidence_table`'s dict): FID during training of every primary
    trained row (mean ± sd over its seeds, :data:`CURVE_NUM` samples each) with its final evaluation
    (:data:`EVIDENCE_NUM` samples) at the end and the teacher's NFE-35 line (mean of its ranges), and beside it the
    discriminator's view over the same training. Returns the two figures' paths."""
    dataset, num = table["dataset"], table["eval_num"]
    primary = [r for r in table["rows"] if r.get("curve") and not r.get("secondary")]
    teacher = next(r for r in table["rows"] if r["kind"] == "teacher35")
    seeds = max((len(r["seeds"]) for r in primary), default=0)
    title = (f"{dataset}: the evidence table's runs during training (mean ± sd over up to {seeds} training seeds; "
             f"stars: final evaluation)")
    references = {f"{teacher['row']} ({num:,} samples, mean of {len(teacher['seeds'])} latent ranges)":
                  (teacher["fid"], teacher.get("fid_test"))}
    return [plot_training_curves({r["row"]: r["curve"] for r in primary},
                                 Path(figures) / f"evidence_curves_{dataset}.png", title, CURVE_NUM,
                                 {r["row"]: dict(r, kimg=table["kimg"]) for r in primary}, num, references),
            plot_discriminator_view({r["row"]: r["curve"] for r in primary},
                                    Path(figures) / f"evidence_discriminator_{dataset}.png",
                                    f"{dataset}: the discriminator during the evidence table's runs (mean over "
                                    f"training seeds)", DIGITS_TEST_SIZE)]
