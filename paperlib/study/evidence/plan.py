"""What the protocol (``paperlib.study.protocol``) asks for, computed from it before any run:
the seeds each comparison needs for its power, the seeds each row gets, the compute it all takes, and the protocol
as PROTOCOL.md prints it. Nothing here trains or reads a run.
"""

from __future__ import annotations

from paperlib.study.evidence.significance import power, seeds_needed
from paperlib.study.protocol import (
    ABLATION_CLAIMS,
    ABLATION_FIXED_RATE,
    ABLATION_POLICIES,
    ABLATION_SEEDS,
    ALPHA,
    CONFIRM_CLAIMS,
    CONFIRM_METHODS,
    CONFIRM_PILOTS,
    CONFIRM_POWER,
    CONFIRM_REPORTED,
    CONFIRM_RUN_MINUTES,
    CONFIRM_SEEDS,
    CONFIRM_VERSION,
    COPY_MARGIN,
    COPY_PERCENTILE,
    CURVE_EVERY_KIMG,
    CURVE_NUM,
    EVIDENCE_CLAIMS,
    EVIDENCE_KIMG,
    EVIDENCE_NUM,
    EVIDENCE_VERSION,
    FID_MARGIN,
    INSTANCE_BANK,
    LATENT_BLOCK,
    MACHINE_RULE,
    MAX_SEEDS,
    MIN_SEEDS,
    MINI_DATASETS,
    MINUTES_PER_48_KIMG,
    PILOT_KIMG,
    PILOT_PROTOCOL,
    PILOT_SD,
    PILOT_SEEDS,
    RATE_GRID,
    RUN_LATENT_START,
    RUN_LATENT_STRIDE,
    SECONDARY_ROWS,
    SHOWN_METRICS,
    TABLE_ROWS,
    TARGET_POWER,
    TEACHER35_MINUTES,
    TEACHER_RANGES,
)

TESTS = {"noninferior": "non-inferiority", "superior": "superiority"}


def _pilot_key(row: str) -> str:
    return "teacher" if row.startswith("teacher") else ("smalld" if row == "gddi-smalld" else row)


def comparison_plan(dataset: str) -> list[dict]:
    """Per FID claim of ``dataset``'s table: the seeds of each trained side that reach :data:`TARGET_POWER` at its
    margin from the pilot spreads (teacher rows fixed at :data:`TEACHER_RANGES`), and the power at the seeds the
    rows get (:func:`row_seeds`). Left out: the copy claims (no pilot measured the near-copy share) and the
    one-step claim (the teacher's one-step FID is orders of magnitude above, and no pilot measured its spread)."""
    plan = []
    for claim in (c for c in EVIDENCE_CLAIMS if c["metric"] == "fid" and c["b"] != "teacher1"):
        sd_a, sd_b = PILOT_SD[dataset][_pilot_key(claim["a"])], PILOT_SD[dataset][_pilot_key(claim["b"])]
        fixed_b = TEACHER_RANGES if claim["b"].startswith("teacher") else None
        plan.append(dict(key=claim["key"], a=claim["a"], b=claim["b"], margin=FID_MARGIN[dataset],
                         needed=seeds_needed(sd_a, sd_b, FID_MARGIN[dataset], fixed_b, ALPHA, TARGET_POWER)))
    seeds = row_seeds(dataset, plan)
    for entry in plan:
        n_b = TEACHER_RANGES if entry["b"].startswith("teacher") else seeds[entry["b"]]
        entry["power"] = power(PILOT_SD[dataset][_pilot_key(entry["a"])], seeds[entry["a"]],
                               PILOT_SD[dataset][_pilot_key(entry["b"])], n_b, entry["margin"], ALPHA)
    return plan


def row_seeds(dataset: str, plan: list[dict] | None = None) -> dict[str, int]:
    """Seeds per trained row of ``dataset``'s table: the most any of its comparisons needs, within
    [:data:`MIN_SEEDS`, :data:`MAX_SEEDS`]."""
    plan = plan if plan is not None else comparison_plan(dataset)
    return {method: min(MAX_SEEDS, max([MIN_SEEDS] + [e["needed"] for e in plan if method in (e["a"], e["b"])]))
            for method, _, _ in TABLE_ROWS}


def _run_minutes(method: str, kimg: float) -> float:
    return MINUTES_PER_48_KIMG[_pilot_key(method)] * kimg / 48


def compute_estimate() -> dict:
    """Core-hours of every part of the protocol on the 2-core machine the minutes were measured on (upper bounds:
    secondary rows as if both differ from the common rate, every ablation level's best rate apart from the fixed
    one), and the wall-clock hours at two runs at once."""
    parts = {}
    for dataset in MINI_DATASETS:
        sweep = sum(_run_minutes(m, PILOT_KIMG) for m, _, _ in TABLE_ROWS) * len(RATE_GRID) * len(PILOT_SEEDS)
        seeds = row_seeds(dataset)
        table = sum(seeds[m] * _run_minutes(m, EVIDENCE_KIMG) for m, _, _ in TABLE_ROWS)
        table += sum(MIN_SEEDS * _run_minutes(m, EVIDENCE_KIMG) for m, _ in SECONDARY_ROWS)
        teacher = TEACHER35_MINUTES[dataset] * (TEACHER_RANGES + INSTANCE_BANK / EVIDENCE_NUM)
        parts[f"{dataset}: rate sweeps"] = dict(runs=len(TABLE_ROWS) * len(RATE_GRID) * len(PILOT_SEEDS),
                                                kimg=PILOT_KIMG, core_hours=sweep / 60)
        parts[f"{dataset}: table"] = dict(runs=sum(seeds.values()) + MIN_SEEDS * len(SECONDARY_ROWS),
                                          kimg=EVIDENCE_KIMG, core_hours=table / 60)
        parts[f"{dataset}: teacher ranges and instance bank"] = dict(runs=0, kimg=0, core_hours=teacher / 60)
    others = len(ABLATION_POLICIES) - 2  # 'none' and 'gddi' are GDD's and GDD-I's pilots
    pilots = others * len(RATE_GRID) * len(PILOT_SEEDS)
    finals = (len(ABLATION_POLICIES) + 2) * len(ABLATION_SEEDS)
    parts["digits: freeze ablation"] = dict(runs=pilots + finals, kimg=PILOT_KIMG,
                                            core_hours=(pilots + finals) * _run_minutes("gddi", PILOT_KIMG) / 60)
    total = sum(p["core_hours"] for p in parts.values()) * 1.1  # evaluations and curves: about a tenth more
    return dict(parts=parts, core_hours=total, wall_hours_2_cores=total / 2)


def markdown() -> str:
    """The protocol as PROTOCOL.md prints it: its version, runs, latents, amendment, tests, claims, the seed plan with
    its planned power, the machine rule and the compute estimate."""
    return "\n".join(_rules() + _claims() + _seed_plan() + _compute() + ["", confirm_markdown()])


def _rules() -> list[str]:
    lines = [f"Protocol version `{EVIDENCE_VERSION}` (`paperlib/study/protocol.py`, with its amendment; the rate pilots "
             f"are made under its first version, `{PILOT_PROTOCOL}`).", "",
             "**Runs.** "
             f"Tables at {EVIDENCE_KIMG:g} kimg (the paper's ~100 passes over the 1,437 training digits), rows: "
             + ", ".join(f"{label} ({'the common rate' if how == 'common' else 'its own best rate'})"
                         for _, label, how in TABLE_ROWS)
             + f"; secondary rows: {', '.join(label for _, label in SECONDARY_ROWS)} ({MIN_SEEDS} seeds, only where "
             f"that rate differs from the common one; they decide nothing). Rates from one grid "
             f"{', '.join(f'{r:g}' for r in RATE_GRID)} for every method, {len(PILOT_SEEDS)} pilot seeds "
             f"{list(PILOT_SEEDS)} at {PILOT_KIMG:g} kimg (no table uses them), on the training-split FID alone: the "
             "mean over pilots of log FID, a rate with a diverged pilot out, ties to the lower rate; the common rate "
             "minimises the mean of GDD's and GDD-I's. The instance baseline's bank holds "
             f"{INSTANCE_BANK:,} teacher solutions (NFE 35), as many as the images it sees. FID during training every "
             f"{CURVE_EVERY_KIMG:g} kimg on {CURVE_NUM:,} samples, with the discriminator's view beside it.",
             "",
             f"**Latents** (as amended). Every table run, freeze-ablation run and teacher range owns a slot of "
             f"{RUN_LATENT_STRIDE:,} per-sample seeds from {RUN_LATENT_START:,} (a table run by dataset, method, rate "
             "and seed; an ablation run by policy, rate and seed; a teacher range by dataset, NFE row and range): its "
             f"final evaluation uses the first {EVIDENCE_NUM:,}, its FIDs during training start half a slot in. The "
             f"rate pilots keep the first version's: pilot seed s is scored on seeds [s x {LATENT_BLOCK:,}, s x "
             f"{LATENT_BLOCK:,} + {EVIDENCE_NUM:,}). Every seed is below 2^32, so the stored ranges are the drawn "
             "ones, and no two runs or ranges share a latent, nor any with the instance bank. Rows share their "
             "training seeds 1..n (the same data order per seed); the unpaired test ignores that pairing.",
             "",
             f"**Amendment 1** (2026-12-02, before any table, teacher-range or ablation run; only rate pilots had "
             f"run). The first version, `{PILOT_PROTOCOL}`, scored a table's rows on their training seed's "
             "block, so GDD's seed s and GDD-I's seed s (and the teacher's NFE-1 and NFE-35 range k) shared latents "
             "inside one comparison, and its teacher ranges' seeds lay above 2^32, where they are drawn modulo 2^32. "
             "The amendment gives each its own slot (above), names the ablation's policies "
             f"({', '.join(ABLATION_POLICIES)}), and makes an ablation claim with a diverged run not decidable, as in "
             "the tables. Nothing about the rate pilots changed: their records keep the first version's hash.",
             "",
             f"**Tests.** Lower is better for every deciding metric. \"At or below\" and \"at least as good as\": "
             f"non-inferiority, H0: mean(A) - mean(B) >= margin; \"beats\": superiority, H0: mean(A) - mean(B) >= 0; "
             f"one-sided Welch t-tests at {ALPHA}, Holm-corrected within each family (a dataset's table; the freeze "
             "ablation), p shown raw and adjusted. **Holds**: adjusted p below "
             f"{ALPHA}. **Does not hold**: the 95% interval lies wholly above the bound. Otherwise **not decided**, "
             "printed with its power (no true difference for non-inferiority, one margin's improvement for "
             "superiority). No \"equivalent\", \"matches\", \"near\" or \"strongest\" is printed. FID margins: "
             + ", ".join(f"{d} {m:g}" for d, m in FID_MARGIN.items())
             + " (10% of the teacher's NFE-35 FID, never below its sd over disjoint latent ranges). A near-copy is a "
             f"sample nearer its nearest training digit than {COPY_PERCENTILE:g}% of held-out digits are to theirs; "
             f"copy claims: non-inferiority of that share with margin {COPY_MARGIN:g}. Shown beside each verdict: "
             f"{', '.join(SHOWN_METRICS)}.",
             ""]
    return lines


def _claims() -> list[str]:
    lines = ["**Claims** (each dataset's family):", ""]
    lines += [f"- {c['claim']} ({TESTS[c['test']]}, {c['metric']}: {c['a']} against {c['b']})" for c in EVIDENCE_CLAIMS]
    lines += ["", f"**Freeze ablation** (digits, {PILOT_KIMG:g} kimg, seeds {list(ABLATION_SEEDS)} per level, each "
              f"level at its best rate from {len(PILOT_SEEDS)} pilots per rate of the grid; 'none' and 'gddi' also at "
              f"{ABLATION_FIXED_RATE:g}), its own family:", ""]
    lines += [f"- {c['claim']} ({TESTS[c['test']]}, {c['metric']})" for c in ABLATION_CLAIMS]
    return lines


def _seed_plan() -> list[str]:
    lines = ["", f"**Seeds by power** (pilot sds of the training-split FID; {TARGET_POWER:.0%} power at the margin; "
              f"rows get the most any comparison needs, within {MIN_SEEDS}..{MAX_SEEDS}; the one-step and copy claims "
              "are not planned: no pilot measured the teacher's one-step spread or the near-copy share):", "",
              "| dataset | comparison | margin | seeds needed | planned power at the seeds run |", "|---|---|---|---|---|"]
    for dataset in MINI_DATASETS:
        for e in comparison_plan(dataset):
            lines.append(f"| {dataset} | {e['key']}: {e['a']} vs {e['b']} | {e['margin']:g} | {e['needed']} | "
                         f"{e['power']:.0%} |")
    lines += ["", "Seeds per row: " + "; ".join(
        f"{d}: " + ", ".join(f"{m} {n}" for m, n in row_seeds(d).items()) for d in MINI_DATASETS) + ".", "",
        f"**Machines.** Runs from different kinds of CPU enter one comparison as independent seeds, each record naming "
        f"its machine; a comparison is decided only when {MACHINE_RULE} (the teacher's rows, sampling only, are "
        "exempt); with two kinds of at least 2 seeds on both sides, the machine effect on the difference is tested "
        "and printed beside the verdict.", ""]
    return lines


def _compute() -> list[str]:
    estimate = compute_estimate()
    lines = ["**Compute, estimated before the first run** (2-core Intel Xeon, two runs at once):", "",
              "| part | runs | kimg each | core-hours |", "|---|---|---|---|"]
    lines += [f"| {name} | {p['runs']} | {p['kimg']:g} | {p['core_hours']:.1f} |" for name, p in estimate["parts"].items()]
    lines += ["", f"Total with evaluations: about {estimate['core_hours']:.0f} core-hours, "
              f"{estimate['wall_hours_2_cores']:.0f} hours on 2 cores."]
    return lines


def confirm_effect(dataset: str, metric: str, a: str, b: str) -> float:
    """The difference a confirmation claim is planned at: mean(b) - mean(a) of its pilots (the first tables), so that
    a claim 'a below b' is planned at the improvement the pilots showed."""
    return CONFIRM_PILOTS[dataset][b][metric][0] - CONFIRM_PILOTS[dataset][a][metric][0]


def confirm_plan(dataset: str) -> list[dict]:
    """Per confirmation claim of ``dataset``: the planned difference, the seeds per row that reach
    :data:`CONFIRM_POWER` at Holm's strictest level, and the power at the seeds run, at that difference and at half."""
    level = ALPHA / (len(CONFIRM_CLAIMS) * len(MINI_DATASETS))
    plan = []
    for claim in CONFIRM_CLAIMS:
        (_, sd_a), (_, sd_b) = (CONFIRM_PILOTS[dataset][claim[s]][claim["metric"]] for s in ("a", "b"))
        effect = confirm_effect(dataset, claim["metric"], claim["a"], claim["b"])
        plan.append(dict(key=claim["key"], metric=claim["metric"], effect=effect, sd_a=sd_a, sd_b=sd_b, level=level,
                         needed=seeds_needed(sd_a, sd_b, effect, None, level, CONFIRM_POWER)))
    n = min(len(CONFIRM_SEEDS), max([MIN_SEEDS] + [e["needed"] for e in plan]))
    for e in plan:
        e.update(seeds=n, power=power(e["sd_a"], n, e["sd_b"], n, e["effect"], e["level"]),
                 power_half=power(e["sd_a"], n, e["sd_b"], n, e["effect"] / 2, e["level"]))
    return plan


def confirm_seeds(dataset: str) -> list[int]:
    """The training seeds of ``dataset``'s confirmation rows: the first of :data:`CONFIRM_SEEDS`, as many as its plan
    asks for."""
    return list(CONFIRM_SEEDS[:confirm_plan(dataset)[0]["seeds"]])


def confirm_markdown() -> str:
    """Amendment 2 as PROTOCOL.md prints it: why, its runs and latents, its claims, its seed plan and compute."""
    runs = sum(len(confirm_seeds(d)) * len(CONFIRM_METHODS) for d in MINI_DATASETS)
    hours = runs * CONFIRM_RUN_MINUTES / 60
    lines = [f"**Amendment 2** (2026-12-07, before any of its runs; version `{CONFIRM_VERSION}`): a confirmation "
             "study of what freezing does. Its hypotheses were chosen after looking at the first tables: at the "
             "common rate GDD-I's recall was far higher than GDD's on both datasets and its near-copy share lower, "
             "while the training-split FID did not separate them. The first tables' records are its pilots; only "
             f"fresh training seeds ({CONFIRM_SEEDS[0]} on, none of the tables') decide, each run scored on a latent "
             f"slot of its own after every slot above. Runs as the tables' GDD and GDD-I rows ({EVIDENCE_KIMG:g} kimg at "
             f"each dataset's common rate, FID during training every {CURVE_EVERY_KIMG:g} kimg). One family over both "
             f"datasets, Holm-corrected, one-sided Welch tests at {ALPHA}, the tables' verdict and machine rules:", ""]
    lines += [f"- {c['claim']} (superiority, {c['metric']}: {c['a']} against {c['b']}), on each dataset"
              for c in CONFIRM_CLAIMS]
    lines += [f"- Reported beside them, deciding nothing: {CONFIRM_REPORTED['claim']}, with its 95% interval and p "
              "(Holm over the two datasets).", "",
              f"**Its seeds by power** (the pilots' difference and sds, 10 seeds per row; {CONFIRM_POWER:.0%} power at "
              f"Holm's strictest level {ALPHA / (len(CONFIRM_CLAIMS) * len(MINI_DATASETS)):.4g}; at least "
              f"{MIN_SEEDS} seeds per row; found by looking, the pilots' differences may be inflated, so the power at "
              "half of each is printed too):", "",
              "| dataset | claim | planned difference | pilot sds (a, b) | seeds needed | seeds per row | power | "
              "power at half the difference |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for dataset in MINI_DATASETS:
        lines += [f"| {dataset} | {e['key']} ({e['metric']}) | {e['effect']:.4g} | {e['sd_a']:g}, {e['sd_b']:g} | "
                  f"{e['needed']} | {e['seeds']} | {e['power']:.0%} | {e['power_half']:.0%} |"
                  for e in confirm_plan(dataset)]
    lines += ["", f"Compute, estimated before its first run: {runs} runs of {EVIDENCE_KIMG:g} kimg, about "
              f"{CONFIRM_RUN_MINUTES:g} core-minutes each on a 2-core AMD EPYC (AVX512) machine (the first tables' "
              f"records there), about {hours:.0f} core-hours, {hours / 2:.0f} hours on 2 cores."]
    return "\n".join(lines)
