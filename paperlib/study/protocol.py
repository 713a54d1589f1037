"""The protocol: the one owner of what paperlib's mini-scale evidence is made of and how its claims are decided.
Datasets and their split, image budgets, the grid of rates and how a rate is chosen, training seeds and latent
ranges, metrics, margins, the tests, the claims of each family, the machine rule and the compute estimate. Every
other module imports these names; none keeps a copy. PROTOCOL.md renders it (:func:`paperlib.study.evidence.plan.markdown`).

Two version hashes identify it, each over the values it fixes (not over module paths): :data:`PILOT_PROTOCOL`, the
rules the rate pilots were run under, and :data:`EVIDENCE_VERSION`, those rules with Amendment 1 (each run's own
latents), under which every table, teacher-range and ablation run is recorded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from paperlib.assets import MINI_TEACHERS
from paperlib.data import DIGITS_SPLIT_SEED, DIGITS_TEST_SIZE

MINI_DATASETS = ("digits", "digits-cond")
DIGITS_SPLIT = dict(test_size=DIGITS_TEST_SIZE, seed=DIGITS_SPLIT_SEED, stratified=True)  # defined in paperlib.data

EVIDENCE_KIMG = 144      # the tables: the paper's ~100 passes over the 1,437 training digits
PILOT_KIMG = 48          # the rate sweeps and the freeze ablation: a third of it
EVIDENCE_NUM = 10_000    # samples per evaluation of a run or of one teacher range
# One grid of generator learning rates for every method (GDD, GDD-I, instance distillation, the small-D ablation).
RATE_GRID = (1e-4, 3e-4, 1e-3, 3e-3)
PILOT_SEEDS = (101, 102)            # the sweeps' and the ablation pilots' seeds: no table uses them
TABLE_SEEDS = tuple(range(1, 11))   # a row of n seeds trains the first n
MIN_SEEDS, MAX_SEEDS = 5, 10
TEACHER_RANGES = 10                 # disjoint latent ranges of the teacher's NFE 1 and NFE 35 rows
ABLATION_SEEDS = (1, 2, 3)          # the freeze ablation's seeds per level, at PILOT_KIMG
ABLATION_FIXED_RATE = 1e-3          # "freezing stabilises training at a high rate" is tested at this rate
# Latents: training seed s owns the per-sample seeds [s * LATENT_BLOCK, (s + 1) * LATENT_BLOCK): its final
# evaluation uses the first EVIDENCE_NUM, its FIDs during training start half a block in. Teacher range k is scored
# on the block of seed TEACHER_RANGE_SEED0 + k. No two runs or ranges of one comparison share a latent.
LATENT_BLOCK = 10_000_000
TEACHER_RANGE_SEED0 = 1000
# The instance baseline's bank of (noise, teacher NFE-35 image) pairs: as many as the images it sees at 144 kimg.
INSTANCE_BANK = 144_000
# Training curves of the tables' runs: FID of CURVE_NUM samples every CURVE_EVERY_KIMG kimg; the discriminator's view
# (mean logits and accuracy on held-out reals and fresh fakes) is logged with them.
CURVE_EVERY_KIMG, CURVE_NUM = 8.0, 2000

# Tests. Lower is better for every deciding metric (FID, copy share). "A at or below B" / "A at least as good as B":
# non-inferiority, H0: mean(A) - mean(B) >= margin. "A beats B": superiority, H0: mean(A) - mean(B) >= 0. Both are
# one-sided Welch t-tests at ALPHA, Holm-corrected over each family. A claim **holds** when its Holm-adjusted p is
# below ALPHA; it **does not hold** when the 95% interval of the difference lies wholly above its bound (the margin,
# or 0 for superiority); otherwise it is **not decided**, printed with its power: the chance of a holding verdict
# (one-sided, ALPHA, before correction) had the truth been no difference (non-inferiority) or a difference of one
# margin (superiority), at the observed spreads and seed counts. An "equivalent" sentence would need two one-sided
# tests; none is printed.
ALPHA, TARGET_POWER = 0.05, 0.8
# FID margin per dataset: 10% of the teacher's NFE-35 FID, but never below the spread of that FID over disjoint
# latent ranges (its sd at 10,000 samples), since a smaller difference is within what redrawing the latents moves:
# from the pilot records (the 48-kimg table's teacher rows, 3 ranges each): digits max(0.29, 0.22), digits-cond
# max(0.09, 0.34).
FID_MARGIN = {"digits": 0.29, "digits-cond": 0.34}
# Copying: a sample is a near-copy when it lies nearer its nearest training digit (digits feature space) than
# COPY_PERCENTILE % of held-out digits lie to theirs (so fresh data gives about 5%). "Copies no more than the
# teacher": non-inferiority of the near-copy share with an absolute margin of half the fresh-data share.
COPY_PERCENTILE, COPY_MARGIN = 5.0, 0.025
EVIDENCE_METRICS = ("fid", "fid_test", "kid", "precision", "recall", "copy_share", "memorisation")
# Pilot spreads (sd over seeds of the training-split FID) that set the seed counts: the 144-kimg records for digits
# GDD and GDD-I, the 48-kimg table's records otherwise (3 seeds each; made before this protocol).
PILOT_SD = {"digits": dict(teacher=0.22, gdd=0.53, gddi=0.25, instance=0.11, smalld=0.29),
            "digits-cond": dict(teacher=0.34, gdd=0.44, gddi=0.46, instance=0.06, smalld=0.53)}

# Rows of each dataset's table ("method": how its rate is chosen). Rates are chosen on the pilots' training-split FID
# (the mean over PILOT_SEEDS of log FID at PILOT_KIMG; a rate with a diverged or non-finite pilot is out; ties go to
# the lower rate). "common": the one rate that minimises the mean of GDD's and GDD-I's values (the authors run
# both at one rate); "own": the method's own best. GDD and GDD-I at their own best rates are secondary rows,
# trained only where that rate differs from the common one, with MIN_SEEDS seeds, and decide nothing.
TABLE_ROWS = (("gdd", "GDD", "common"), ("gddi", "GDD-I", "common"), ("instance", "instance distillation", "own"),
              ("gddi-smalld", "GDD-I, small from-scratch D", "own"))
SECONDARY_ROWS = (("gdd", "GDD at its own best rate"), ("gddi", "GDD-I at its own best rate"))
# Each dataset's family of claims, decided at EVIDENCE_KIMG on the first metric (the others are shown beside it).
# a, b: rows ("teacher1", "teacher35" or a method); test: "noninferior" or "superior".
EVIDENCE_CLAIMS = (
    dict(key="one-step", a="gddi", b="teacher1", test="superior", metric="fid",
         claim="GAN fine-tuning alone turns the diffusion model into a one-step generator: GDD-I in one step beats "
               "the teacher in one step"),
    dict(key="gddi-teacher", a="gddi", b="teacher35", test="noninferior", metric="fid",
         claim="GDD-I in one step is at or below the teacher's 35-NFE FID"),
    dict(key="gdd-teacher", a="gdd", b="teacher35", test="noninferior", metric="fid",
         claim="GDD in one step is at or below the teacher's 35-NFE FID"),
    dict(key="freezing", a="gddi", b="gdd", test="noninferior", metric="fid",
         claim="At one common learning rate, freezing most block convolutions (GDD-I) is at least as good as "
               "training them all (GDD)"),
    dict(key="gan-vs-instance", a="gddi", b="instance", test="superior", metric="fid",
         claim="GAN distillation (GDD-I) beats instance distillation at the same image budget, each at its best rate"),
    dict(key="projected-d", a="gddi", b="gddi-smalld", test="superior", metric="fid",
         claim="The pretrained-feature (projected) discriminator beats a small discriminator trained from scratch"),
    dict(key="gddi-copies", a="gddi", b="teacher35", test="noninferior", metric="copy_share",
         claim="GDD-I makes near-copies of training digits no more often than the teacher"),
    dict(key="gdd-copies", a="gdd", b="teacher35", test="noninferior", metric="copy_share",
         claim="GDD makes near-copies of training digits no more often than the teacher"),
)
SHOWN_METRICS = ("fid_test", "precision", "recall", "kid")
# Printed beside the verdicts, outside the hashed protocol (its words stay as committed). Errata: where a claim's
# words are not true of the rows it compares. Caveats: a setting chosen with earlier results in view, or a baseline
# that had not converged; the instance caveat gets the row's own FID curve appended.
ERRATA = {
    "gan-vs-instance": "the words say 'each at its best rate', but GDD-I enters at the common rate of GDD and GDD-I "
                       "(the rates are printed with the rows), instance distillation at its own best rate",
    "projected-d": "GDD-I with the projected discriminator enters at the common rate, the small from-scratch "
                   "discriminator at its own best rate",
}
_MARGIN_CAVEAT = ("the margin, and the pilot sds that set the seed counts, came from records made before this protocol "
                  "(the digits GDD and GDD-I ones from before the spectral-norm order was fixed)")
CAVEATS = {
    "gddi-teacher": _MARGIN_CAVEAT, "gdd-teacher": _MARGIN_CAVEAT, "freezing": _MARGIN_CAVEAT,
    "gan-vs-instance": "instance distillation was still improving when the budget ended",
    "stabilises": "the fixed rate 0.001 is where earlier 'freeze nothing' runs (before this protocol) had already "
                  "diverged (FID 417-747), so freezing beating it there was foreseeable when the rate was fixed",
}
# The freeze ablation (digits, PILOT_KIMG): each freezing policy at its own best rate of RATE_GRID (chosen on its
# pilots as above; 'none' is GDD's and 'gddi' GDD-I's sweep), then ABLATION_SEEDS at that rate; 'none' and
# 'gddi' also at ABLATION_FIXED_RATE. Its own family of two claims.
ABLATION_CLAIMS = (
    dict(key="stabilises", a="gddi@fixed", b="none@fixed", test="superior", metric="fid",
         claim=f"At the high rate {ABLATION_FIXED_RATE:g}, freezing most block convolutions (GDD-I) beats freezing "
               f"nothing"),
    dict(key="better-at-best", a="gddi@best", b="none@best", test="superior", metric="fid",
         claim="Each at its best rate, freezing most block convolutions (GDD-I) beats freezing nothing"),
)
# Machines. Runs made on different kinds of CPU (model and torch capability) enter one comparison as independent
# seeds, each record naming its machine. A comparison is decided only when every CPU kind on one side of it also
# has runs on the other (the teacher's rows, sampling only, are exempt); when two kinds each give at least 2 seeds
# to both sides, the machine effect on the difference is tested and printed beside the verdict.
MACHINE_RULE = "every CPU kind on one side has runs on the other"
# Compute, estimated before the first run: core-minutes per 48 kimg on one core of the 2-core Intel Xeon machine
# (the 48-kimg records' training times), scaled by budget; teacher sampling per 10,000 digits at NFE 35.
MINUTES_PER_48_KIMG = dict(gdd=12.5, gddi=12.0, instance=2.6, smalld=4.2)
TEACHER35_MINUTES = {"digits": 2.5, "digits-cond": 7.0}


def _evidence_content() -> dict:
    names = ("EVIDENCE_KIMG", "PILOT_KIMG", "EVIDENCE_NUM", "RATE_GRID", "PILOT_SEEDS", "TABLE_SEEDS", "MIN_SEEDS",
             "MAX_SEEDS", "TEACHER_RANGES", "ABLATION_FIXED_RATE", "LATENT_BLOCK",
             "TEACHER_RANGE_SEED0", "INSTANCE_BANK", "CURVE_EVERY_KIMG", "CURVE_NUM", "ALPHA", "TARGET_POWER",
             "FID_MARGIN", "COPY_PERCENTILE", "COPY_MARGIN", "EVIDENCE_METRICS", "PILOT_SD", "TABLE_ROWS",
             "SECONDARY_ROWS", "EVIDENCE_CLAIMS", "SHOWN_METRICS", "ABLATION_CLAIMS", "MACHINE_RULE")
    return dict({n: globals()[n] for n in names}, ABLATION_SEEDS_V2=ABLATION_SEEDS,  # the name it was hashed under
                digits_split=DIGITS_SPLIT, mini_datasets=MINI_DATASETS,
                mini_teachers={str(k): Path(v).name for k, v in MINI_TEACHERS.items()})


# The protocol's first version. The rate sweeps (the tables' and the freeze ablation's pilots) follow it unchanged, so
# their records carry it.
PILOT_PROTOCOL = hashlib.sha256(json.dumps(_evidence_content(), sort_keys=True).encode()).hexdigest()[:12]

# --- Amendment 1 (committed before any table, teacher-range or ablation run; only rate pilots of the tables' GDD
# and GDD-I had run, and nothing about the pilots changes). Under the first version a table's rows shared latents: GDD's
# seed s and GDD-I's seed s were both scored on seed s's block, so one comparison's two sides shared their sampling
# noise; the teacher's NFE-1 and NFE-35 range k shared theirs too; and the teacher ranges' seeds (above 2**32) were
# drawn modulo 2**32 (paperlib.diffusion.SeedRandom), so the stored ranges were not the drawn ones. From this
# amendment on, every table run, ablation run and teacher range owns one latent slot of RUN_LATENT_STRIDE
# per-sample seeds from RUN_LATENT_START (all below 2**32, so stored as drawn): its final evaluation is the first
# EVIDENCE_NUM, its FIDs during training start half a slot in. Slots: a table run by (dataset, method, rate, seed),
# an ablation run by (policy, rate, seed), a teacher range by (dataset, NFE row, range); no two of them, and none of
# them and a pilot (eval_latents of seeds 101, 102) or the instance bank (BANK_SEED), share a latent. Training seeds
# stay 1..n in every row (rows share their training seeds' data order; the unpaired Welch test ignores that
# pairing, which can only widen the interval). The freeze ablation's policies are named; a run of it that diverged
# (non-finite loss) makes its claims not decidable, as in the tables.
SEED_WRAP = 2 ** 32
RUN_LATENT_START, RUN_LATENT_STRIDE = 3_000_000_000, 100_000
ABLATION_POLICIES = ("none", "conv1", "conv0+conv1", "gddi", "gddi+skip+aux", "all-but-norm-embedding")
ABLATION_DIVERGED = "not decidable"


def _amendment_content() -> dict:
    return dict(first=PILOT_PROTOCOL, seed_wrap=SEED_WRAP, run_latent_start=RUN_LATENT_START,
                run_latent_stride=RUN_LATENT_STRIDE, ablation_policies=ABLATION_POLICIES,
                ablation_diverged=ABLATION_DIVERGED,
                slots=["table: dataset, method (TABLE_ROWS), rate (RATE_GRID), seed (1..MAX_SEEDS)",
                       "ablation: policy (ABLATION_POLICIES), rate (RATE_GRID), seed (ABLATION_SEEDS_V2)",
                       "teacher: dataset, row (teacher1, teacher35), range (0..TEACHER_RANGES-1)"])


EVIDENCE_VERSION = hashlib.sha256(json.dumps(_amendment_content(), sort_keys=True).encode()).hexdigest()[:12]


def eval_latents(seed: int) -> range:
    """The per-sample seeds of pilot seed ``seed``'s final evaluation (EVIDENCE_NUM of its block)."""
    return range(seed * LATENT_BLOCK, seed * LATENT_BLOCK + EVIDENCE_NUM)


def _slot(slot: int) -> range:
    start = RUN_LATENT_START + slot * RUN_LATENT_STRIDE
    return range(start, start + EVIDENCE_NUM)


_TABLE_SLOTS = len(MINI_DATASETS) * len(TABLE_ROWS) * len(RATE_GRID) * MAX_SEEDS
_ABLATION_SLOTS = len(ABLATION_POLICIES) * len(RATE_GRID) * len(ABLATION_SEEDS)


def table_latents(dataset: str, method: str, lr: float, seed: int) -> range:
    """The per-sample seeds of a table run's final evaluation: its own slot, by dataset, method, rate and seed."""
    methods = [m for m, _, _ in TABLE_ROWS]
    index = ((MINI_DATASETS.index(dataset) * len(methods) + methods.index(method)) * len(RATE_GRID)
             + RATE_GRID.index(lr)) * MAX_SEEDS + TABLE_SEEDS.index(seed)
    return _slot(index)


def ablation_latents(policy: str, lr: float, seed: int) -> range:
    """The per-sample seeds of a freeze-ablation run's final evaluation: its own slot, by policy, rate and seed."""
    index = (ABLATION_POLICIES.index(policy) * len(RATE_GRID) + RATE_GRID.index(lr)) * len(ABLATION_SEEDS)
    return _slot(_TABLE_SLOTS + index + ABLATION_SEEDS.index(seed))


def teacher_latents(dataset: str, row: str, k: int) -> range:
    """The per-sample seeds of the teacher's latent range ``k`` of ``row`` ('teacher1' or 'teacher35')."""
    index = (MINI_DATASETS.index(dataset) * 2 + ("teacher1", "teacher35").index(row)) * TEACHER_RANGES + k
    return _slot(_TABLE_SLOTS + _ABLATION_SLOTS + index)


def curve_latent_start(latents: range) -> int:
    """The first per-sample seed of a run's FIDs during training: half a slot into the slot of its evaluation."""
    return latents.start + RUN_LATENT_STRIDE // 2


# --- Amendment 2 (committed 2026-12-07, before any of its runs): a confirmation study of what freezing does. Its
# hypotheses were found by looking at the first tables (at the common rate GDD-I's recall was far higher than GDD's on
# both datasets and its near-copy share lower, while the training-split FID did not separate them): the records of
# TABLE_SEEDS are its pilots, and only fresh training seeds, scored on fresh latent slots, decide them. One family of
# the claims below on both datasets, Holm-corrected, one-sided Welch tests at ALPHA, the verdict rules and the machine
# rule of the tables. The held-out FID difference (GDD-I minus GDD) is reported beside them with its two-sided 95%
# interval and p (Holm over the two datasets), and decides nothing.
CONFIRM_SEEDS = tuple(range(11, 21))  # fresh: none of TABLE_SEEDS; a row of n seeds trains the first n
CONFIRM_METHODS = ("gdd", "gddi")     # each at its dataset's common rate, EVIDENCE_KIMG, as the tables' rows
# The first tables' values the hypotheses were found in (10 seeds per row at the common rate): (mean, sd).
CONFIRM_PILOTS = {
    "digits": dict(gdd=dict(recall=(0.7149, 0.0145), copy_share=(0.0738, 0.0015), fid_test=(8.533, 1.446)),
                   gddi=dict(recall=(0.8406, 0.0137), copy_share=(0.0625, 0.0043), fid_test=(6.994, 0.909))),
    "digits-cond": dict(gdd=dict(recall=(0.8371, 0.0071), copy_share=(0.0700, 0.0029), fid_test=(6.605, 0.736)),
                        gddi=dict(recall=(0.8741, 0.0114), copy_share=(0.0602, 0.0023), fid_test=(7.040, 0.876))),
}
# Lower is better in every test, so "GDD-I's recall is higher" is tested as GDD's recall minus GDD-I's below 0.
CONFIRM_CLAIMS = (
    dict(key="recall", a="gdd", b="gddi", test="superior", metric="recall",
         claim="At the common rate, GDD-I's recall is higher than GDD's (GDD's minus GDD-I's below 0)"),
    dict(key="copies", a="gddi", b="gdd", test="superior", metric="copy_share",
         claim="At the common rate, GDD-I makes near-copies of training digits less often than GDD"),
)
CONFIRM_REPORTED = dict(key="held-out-fid", a="gddi", b="gdd", metric="fid_test",
                        claim="Held-out FID, GDD-I minus GDD at the common rate (two-sided)")
# Seeds by power: each row gets the fewest seeds (at least MIN_SEEDS, at most all CONFIRM_SEEDS) that give every
# claim of its dataset CONFIRM_POWER at Holm's strictest level ALPHA / (number of claims in the family), planned at
# the pilots' difference with their sds. Found by looking, those differences may be inflated: the plan also prints
# the power at half of each.
CONFIRM_POWER = TARGET_POWER
# Compute: core-minutes per 144-kimg GDD or GDD-I run (training, then its evaluations: about a tenth more) on one
# core of a 2-core AMD EPYC (AVX512) machine, two runs at once: the first tables' records there average 2,015 s (GDD)
# and 2,020 s (GDD-I) of training.
CONFIRM_RUN_MINUTES = 37.0


def _confirm_content() -> dict:
    return dict(amended=EVIDENCE_VERSION, seeds=CONFIRM_SEEDS, methods=CONFIRM_METHODS, pilots=CONFIRM_PILOTS,
                claims=CONFIRM_CLAIMS, reported=CONFIRM_REPORTED, power=CONFIRM_POWER, alpha=ALPHA,
                min_seeds=MIN_SEEDS, kimg=EVIDENCE_KIMG, num=EVIDENCE_NUM, curve=[CURVE_EVERY_KIMG, CURVE_NUM],
                machine_rule=MACHINE_RULE, slots="confirm: dataset, method (CONFIRM_METHODS), seed (CONFIRM_SEEDS), "
                                               "after the teacher's")


CONFIRM_VERSION = hashlib.sha256(json.dumps(_confirm_content(), sort_keys=True).encode()).hexdigest()[:12]
_TEACHER_SLOTS = len(MINI_DATASETS) * 2 * TEACHER_RANGES


def confirm_latents(dataset: str, method: str, seed: int) -> range:
    """The per-sample seeds of a confirmation run's final evaluation: its own slot, after every slot of Amendment 1."""
    index = (MINI_DATASETS.index(dataset) * len(CONFIRM_METHODS) + CONFIRM_METHODS.index(method)) * len(CONFIRM_SEEDS)
    return _slot(_TABLE_SLOTS + _ABLATION_SLOTS + _TEACHER_SLOTS + index + CONFIRM_SEEDS.index(seed))
