"""The evidence protocol: its tests (non-inferiority, superiority, Holm, power), its latents (no two runs or teacher
ranges share one), its rate choice, the near-copy share, and its runs' records (own latents, own protocol
version, a diverged pilot recorded as diverged)."""

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from paperlib.metrics import near_copy_share
from paperlib.study import protocol
from paperlib.study.evidence import plan as evidence_plan
from paperlib.study.evidence.rates import choose_rates, rate_jobs
from paperlib.study.evidence.significance import holm, one_sided_test, power, seeds_needed
from paperlib.study.jobs import Job, run_job
from paperlib.study.ledger import LedgerError, matching_record, read_record

ROOT = Path(__file__).resolve().parent.parent


def test_one_sided_welch_test_agrees_with_scipy_for_superiority_and_non_inferiority():
    a, b = [1.0, 2.2, 2.9, 1.4], [2.0, 3.1, 4.2]
    for bound in (0.0, 0.5):
        mine = one_sided_test(a, b, bound)
        theirs = scipy_stats.ttest_ind(np.subtract(a, bound), b, equal_var=False, alternative="less")
        assert mine["p"] == pytest.approx(theirs.pvalue, rel=1e-10)
        assert (mine["high"] < bound) == (mine["p"] < 0.05)  # the 90% interval's end is the 5% one-sided test
    with pytest.raises(ValueError, match="2 values per group"):
        one_sided_test([1.0], b)


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_power_follows_the_normal_limit_and_seeds_needed_is_the_first_count_that_reaches_it():
    normal = scipy_stats.norm.cdf(0.5 / math.sqrt(2 / 400) - scipy_stats.norm.ppf(0.95))
    assert power(1.0, 400, 1.0, 400, 0.5) == pytest.approx(normal, abs=2e-3)
    n = seeds_needed(0.5, 0.3, 0.4)
    assert power(0.5, n, 0.3, n, 0.4) >= 0.8 > power(0.5, n - 1, 0.3, n - 1, 0.4)
    assert seeds_needed(0.5, 0.3, 0.4, n_b=40) < n  # a larger fixed reference group needs fewer seeds of a


def test_no_two_runs_or_teacher_ranges_share_a_latent_and_every_seed_is_drawn_as_stored():
    from paperlib.instance_bank import BANK_SEED

    p = protocol
    evaluations = [p.eval_latents(s) for s in p.PILOT_SEEDS]
    evaluations += [p.table_latents(d, m, lr, s) for d in p.MINI_DATASETS for m, _, _ in p.TABLE_ROWS
                    for lr in p.RATE_GRID for s in p.TABLE_SEEDS]
    evaluations += [p.ablation_latents(policy, lr, s) for policy in p.ABLATION_POLICIES for lr in p.RATE_GRID
                    for s in p.ABLATION_SEEDS]
    evaluations += [p.teacher_latents(d, row, k) for d in p.MINI_DATASETS for row in ("teacher1", "teacher35")
                    for k in range(p.TEACHER_RANGES)]
    evaluations += [p.confirm_latents(d, m, s) for d in p.MINI_DATASETS for m in p.CONFIRM_METHODS
                    for s in p.CONFIRM_SEEDS]
    spans = evaluations + [range(p.curve_latent_start(e), p.curve_latent_start(e) + p.CURVE_NUM) for e in evaluations]
    spans.append(range(BANK_SEED, BANK_SEED + 1))  # the bank's one generator: its seed's first draw
    assert all(span.stop <= p.SEED_WRAP for span in spans)  # SeedRandom draws seed % 2**32
    ordered = sorted(spans, key=lambda r: r.start)
    for x, y in itertools.pairwise(ordered):
        assert x.stop <= y.start, (x, y)


def test_the_freeze_ablation_names_the_policies_freezing_knows():
    from paperlib.freezing import FREEZE_POLICIES

    assert protocol.ABLATION_POLICIES == tuple(FREEZE_POLICIES)
    assert protocol.PILOT_PROTOCOL == "351e22ca5ea3"  # the first version, committed before any run: the pilots' rules
    assert protocol.EVIDENCE_VERSION == "559edbcfd97e"  # with Amendment 1: every table, range and ablation run
    assert protocol.CONFIRM_VERSION == "11c6c7a1aa04"  # Amendment 2, committed before its first run
    assert not set(protocol.CONFIRM_SEEDS) & set(protocol.TABLE_SEEDS)  # only fresh seeds decide it


def test_rates_are_chosen_on_training_fid_with_diverged_pilots_out_and_ties_to_the_lower_rate():
    def runs(*fids):
        return [dict(fid=f) if f is not None else dict(diverged="NaN") for f in fids]
    pilots = {("gdd", 1e-4): runs(4.0, 4.0), ("gdd", 1e-3): runs(2.0, None), ("gdd", 3e-4): runs(3.0, 3.0),
              ("gddi", 1e-4): runs(5.0, 5.0), ("gddi", 1e-3): runs(1.0, 1.0), ("gddi", 3e-4): runs(3.0, 3.0)}
    choice = choose_rates(pilots)
    assert choice["own"] == {"gdd": 3e-4, "gddi": 1e-3} and choice["common"] == 3e-4  # 1e-3 has a diverged GDD
    assert choice["scores"]["gdd"]["0.001"] == math.inf
    tied = {k: runs(2.0, 2.0) for k in pilots}
    assert choose_rates(tied)["common"] == 1e-4


def test_the_near_copy_share_sees_a_minority_of_copies():
    rng = np.random.default_rng(0)
    train, held_out, fresh = (rng.normal(size=(n, 8)) for n in (500, 400, 2000))
    assert near_copy_share(fresh, train, held_out) == pytest.approx(0.05, abs=0.02)
    some_copies = np.concatenate([fresh[:1800], train[:200]])  # 10% copies: the mean distance barely moves
    assert near_copy_share(some_copies, train, held_out) == pytest.approx(0.15, abs=0.03)


def test_the_protocol_plans_seeds_within_its_bounds_and_renders_its_version():
    for dataset in protocol.MINI_DATASETS:
        seeds = evidence_plan.row_seeds(dataset)
        assert set(seeds) == {m for m, _, _ in protocol.TABLE_ROWS}
        assert all(protocol.MIN_SEEDS <= n <= protocol.MAX_SEEDS for n in seeds.values())
    text = evidence_plan.markdown()
    assert protocol.EVIDENCE_VERSION in text and "core-hours" in text
    jobs = rate_jobs(protocol.MINI_DATASETS)
    assert len({j.record for j in jobs}) == len(jobs) == 2 * 4 * len(protocol.RATE_GRID) * len(protocol.PILOT_SEEDS)
    assert all(j.protocol == protocol.PILOT_PROTOCOL and j.eval_start == protocol.eval_latents(j.overrides["seed"]).start
               for j in jobs)
    instance = [j.overrides for j in jobs if j.preset.endswith("-instance")]
    assert {(o["instance_bank"], o["bank_dir"]) for o in instance} == {(protocol.INSTANCE_BANK, "runs/evidence/banks")}


def test_a_run_records_its_own_latents_and_protocol_and_a_diverged_run_is_recorded_as_such(tmp_path, smoke_teacher):
    ledger = tmp_path / "ledger"
    job = Job("smoke", "smoke-gdd", str(tmp_path / "run"), dict(teacher=smoke_teacher), eval_num=100,
              ledger=str(ledger), record="e/run", eval_start=5000, protocol="evidence-v", may_diverge=True)
    result = run_job(job)
    record = read_record(ledger, "e/run")
    assert record["evaluation"]["latents"] == [5000, 5099] and record["protocol"] == "evidence-v"
    assert 0 <= record["evaluation"]["copy_share"] <= 1 and result["fid"] == record["evaluation"]["fid"]
    with pytest.raises(LedgerError, match=r"evaluation seeds: \[5000, 5099\] -> \[0, 99\]"):
        matching_record(ledger, "e/run", job.config(), 100, 0)

    diverging = Job("smoke", "smoke-gdd", str(tmp_path / "diverges"), dict(teacher=smoke_teacher, lr=1e12,
                    max_nonfinite_steps=2), eval_num=100, ledger=str(ledger), record="e/diverges", may_diverge=True)
    result = run_job(diverging)
    assert result["diverged"].startswith("stopped at") and result.get("fid") is None
    assert json.loads((ledger / "e" / "diverges.json").read_text())["diverged"] == result["diverged"]
    assert run_job(diverging)["diverged"] == result["diverged"]  # read back from its record, not trained again


def test_verdicts_follow_holm_and_say_no_more_than_the_test():
    from paperlib.study.evidence.verdicts import FAILS, HOLDS, UNDECIDABLE, UNDECIDED, Side, decide, decide_family, sentence

    teacher = Side([2.9, 3.0, 3.1, 2.8, 3.2])
    clear = decide(Side([2.0, 2.1, 1.9, 2.05, 1.95], ["intel"] * 5), teacher, "noninferior", 0.3)
    worse = decide(Side([4.0, 4.1, 3.9, 4.2, 4.0], ["intel"] * 5), teacher, "noninferior", 0.3)
    noisy = decide(Side([2.0, 4.5, 3.0, 1.5, 3.8], ["intel"] * 5), teacher, "superior", 0.3)
    mixed = decide(Side([2.0, 2.1], ["intel", "amd"]), Side([3.0, 3.1], ["intel", "intel"]), "superior", 0.3)
    results = decide_family([clear, worse, noisy, mixed])
    assert [r["verdict"] for r in results] == [HOLDS, FAILS, UNDECIDED, UNDECIDABLE]
    assert results[0]["p_adjusted"] == pytest.approx(min(1, 3 * clear["p"]))  # the smallest of 3 decidable tests
    assert "power" in sentence("X", results[2]) and "**holds**" in sentence("X", results[0])
    assert not any(word in sentence("X", r) for r in results for word in ("matches", "near", "strongest", "equivalent"))
    far = decide(Side([1.0, 1.2, 0.9]), Side([1020.0, 1025.0, 1018.0]), "superior", 0.3)
    words = sentence("X", decide_family([far])[0])
    assert "difference -1020, 95% interval [" in words and "90% interval [" in words  # the deciding one first
    worse_words = sentence("X", results[1])  # 'does not hold': the 95% interval it rests on lies above the bound
    low95 = float(re.search(r"95% interval \[([+-][\d.]+),", worse_words).group(1))
    assert low95 > 0.3 and "power at the observed sds" in worse_words


def test_the_machine_effect_is_the_kind_of_cpu_changing_the_difference_not_one_side():
    from paperlib.study.evidence.significance import machine_effect
    from paperlib.study.evidence.verdicts import Side, decide, decide_family, sentence

    kinds = ["intel"] * 4 + ["amd"] * 4
    a = Side([1.0, 1.2, 0.9, 1.1, 2.0, 2.2, 1.9, 2.1], kinds)
    alike = decide(a, Side([3.0, 3.1, 2.9, 3.2, 4.0, 4.1, 3.9, 4.2], kinds), "superior", 0.3)["machines"]
    assert alike["per_kind"] == pytest.approx(dict(intel=-2.0, amd=-2.0))  # amd shifts both sides alike: no effect
    assert alike["diff"] == pytest.approx(0.0, abs=1e-12) and alike["p"] > 0.99
    shifted = decide_family([decide(a, Side([3.0, 3.1, 2.9, 3.2, 5.0, 5.1, 4.9, 5.2], kinds), "superior", 0.3)])[0]
    assert shifted["machines"]["diff"] == pytest.approx(1.0) and shifted["machines"]["p"] < 0.001
    assert "machine effect on the difference, intel minus amd: +1, p " in sentence("X", shifted)
    assert decide(a, Side([3.0, 3.1, 2.9]), "superior", 0.3)["machines"] is None  # the teacher's rows: exempt
    assert machine_effect(dict(intel=[1.0, 2.0], amd=[1.0, 2.0]), dict(intel=[1.0, 2.0], amd=[3.0])) is None


def test_an_evidence_table_is_assembled_from_records_alone_with_a_verdict_per_claim(tmp_path, smoke_teacher, capsys):
    from paperlib.study.evidence.tables import TEACHER_STEPS, table_jobs, write_evidence_table
    from paperlib.study.ledger import run_record, teacher_record, write_record

    results = tmp_path / "results"
    (results / "evidence" / "digits").mkdir(parents=True)
    rates = dict(common=1e-3, own={"gdd": 1e-3, "gddi": 3e-4, "instance": 3e-4, "gddi-smalld": 3e-3})
    (results / "evidence" / "digits" / "rates.json").write_text(json.dumps(rates))
    jobs = table_jobs(["digits"], results=str(results))
    assert [j.overrides["seed"] for j in jobs] == sorted(j.overrides["seed"] for j in jobs)  # seed by seed
    assert {j.preset for j in jobs if j.overrides["lr"] == 3e-4 and j.preset.endswith("gddi")} == {"digits-gddi"}
    rng = np.random.default_rng(0)
    level = {"digits-gdd": 3.0, "digits-gddi": 2.0, "digits-instance": 9.0, "digits-gddi-smalld": 4.0}
    kimg, logits = [8.0 * i for i in range(1, 19)], np.random.default_rng(1)
    for job in jobs:
        fid = level[job.preset] + 0.2 * rng.standard_normal()
        falling = [fid * (1 + 4 / k) for k in kimg]
        curve = dict(kimg=kimg, fid=falling, fid_test=[f + 3 for f in falling], precision=[0.8] * 18, recall=[0.8] * 18,
                     memorisation=[1.0] * 18, num=protocol.CURVE_NUM)
        if job.preset != "digits-instance":  # a discriminator's view, as GAN runs log it
            curve.update(d_logit_real=list(logits.normal(0, 0.02, 18)), d_logit_fake=list(logits.normal(0, 0.02, 18)),
                         d_accuracy_real=[0.5] * 18, d_accuracy_fake=[0.52] * 18)
        result = dict(config=job.config(), preset=job.preset, seed=job.overrides["seed"], lr=job.overrides["lr"],
                      num=job.eval_num, eval_start=job.eval_start, kimg=144.0, train_seconds=1.0, frozen_fraction=0.0,
                      fid=fid, fid_test=fid + 3, kid=0.1, precision=0.8, recall=0.8, memorisation=1.0,
                      copy_share=0.05 + 0.005 * rng.standard_normal())
        write_record(results / "ledger", dict(run_record(job.record, result, curve, protocol.EVIDENCE_VERSION),
                                              machine=dict(cpu="x", cpu_capability="y")))
    teacher = protocol.MINI_TEACHERS[False]
    for row, steps in TEACHER_STEPS.items():
        for k in range(protocol.TEACHER_RANGES):
            span = protocol.teacher_latents("digits", row, k)
            fid = (900.0 if row == "teacher1" else 2.5) + 0.2 * rng.standard_normal()
            write_record(results / "ledger", teacher_record(
                f"evidence/digits/{row}/range{k}", teacher, steps,
                [dict(latents=[span.start, span.stop - 1], num=protocol.EVIDENCE_NUM, fid=fid, fid_test=fid + 3,
                      kid=0.1, precision=0.8, recall=0.9, memorisation=1.0, copy_share=0.05)], 1.0,
                protocol.EVIDENCE_VERSION))
    table = write_evidence_table("digits", results=str(results), figures=str(tmp_path / "figures"),
                                 runs=str(tmp_path / "runs"))
    for name in ("evidence_curves_digits.png", "evidence_discriminator_digits.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    assert "the digits evidence copy figure is kept as it is" in capsys.readouterr().out  # no networks here
    import shutil

    from paperlib.study.evidence.tables import draw_evidence_copies, run_name

    for method, seed in (("gdd", 1), ("gdd", 3), ("gddi", 2), ("gddi", 3)):  # seed 3 is the first with both
        folder = tmp_path / "runs" / run_name("digits", method, 1e-3, seed)  # any digits-shaped network will do
        folder.mkdir(parents=True)
        shutil.copy(smoke_teacher, folder / "network.safetensors")
    path = draw_evidence_copies("digits", rates, str(tmp_path / "runs"), str(tmp_path / "figures"), "cpu", count=4)
    assert path.name == "evidence_nearest_digits.png" and path.stat().st_size > 0
    assert "training seed 3" in capsys.readouterr().out
    gddi = next(r for r in table["rows"] if r["kind"] == "gddi" and not r["secondary"])
    assert gddi["curve"]["runs"] == len(gddi["seeds"]) and "d_accuracy_fake_sd" in gddi["curve"]
    verdicts = {c["key"]: c["verdict"] for c in table["claims"]}
    assert verdicts["one-step"] == "holds" and verdicts["gan-vs-instance"] == "holds"
    assert verdicts["gdd-teacher"] == "does not hold"  # 3.0 against 2.5 + 0.29
    assert all(c["p_adjusted"] >= c["p"] for c in table["claims"])
    assert [r["row"] for r in table["rows"]][-1] == "GDD-I at its own best rate (NFE 1), lr 0.0003, secondary"
    assert json.loads((results / "evidence" / "digits" / "table.json").read_text())["protocol"] == protocol.EVIDENCE_VERSION
    from paperlib.study.report import evidence_markdown

    text = evidence_markdown(results)
    assert "**digits**: rate sweeps 0 of 32 runs recorded; table 42 of 42 runs" in text and "**holds**" in text
    # what a reviewer asks for beside each verdict: its rows and rates, both powers, errata and caveats, the held-out
    # view (its own family, deciding nothing) and what real held-out digits score
    by_key = {c["key"]: c for c in table["claims"]}
    assert by_key["gan-vs-instance"]["rows"] == ("GDD-I at lr 0.001 (the common rate) against instance distillation at "
                                                 "lr 0.0003 (its own best rate)")
    assert by_key["gan-vs-instance"]["notes"][0].startswith("Erratum: the words say 'each at its best rate'")
    assert "its FID during training falls from" in by_key["gan-vs-instance"]["notes"][1]
    assert by_key["freezing"]["planned_power"] > 0 and by_key["gddi-copies"]["planned_power"] is None
    assert [c["key"] for c in table["held_out"]] == [c["key"] for c in protocol.EVIDENCE_CLAIMS if c["metric"] == "fid"]
    assert all(c["metric"] == "fid_test" for c in table["held_out"]) and table["real"]["num"] == 360
    assert "**Held-out view** (exploratory, deciding nothing)" in text and "| real held-out digits (360) |" in text
    assert "planned power" in text and "the protocol planned no power for it" in text
    assert len({j.eval_start for j in jobs}) == len(jobs)  # every table run on latents of its own


def _write_run_record(results, job, fid, diverged=None):
    """A record as a finished (or diverged) run of ``job`` writes it, with the training-split FID ``fid``."""
    from paperlib.study.ledger import run_record, write_record

    metrics = dict(fid=fid, fid_test=fid + 3, kid=0.1, precision=0.8, recall=0.8, memorisation=1.0, copy_share=0.05)
    result = dict(config=job.config(), preset=job.preset, seed=job.overrides["seed"], lr=job.overrides["lr"],
                  eval_start=job.eval_start, num=job.eval_num, kimg=48, train_seconds=1.0, frozen_fraction=0.5,
                  **({} if diverged else metrics))
    record = dict(run_record(job.record, result, None, protocol=job.protocol), machine=dict(cpu="x", cpu_capability="y"))
    write_record(results / "ledger", dict(record, diverged=diverged) if diverged else record)


def test_the_freeze_ablation_chooses_each_policys_rate_on_its_pilots_and_decides_its_two_claims(tmp_path):
    from paperlib.study.evidence.ablation import ablation_jobs, ablation_rates, ablation_table, pilot_jobs

    results = tmp_path / "results"
    pairs = pilot_jobs(results=str(results))
    assert len(pairs) == len(protocol.ABLATION_POLICIES) * len(protocol.RATE_GRID) * len(protocol.PILOT_SEEDS)
    assert {job.preset for policy, job in pairs if policy == "none"} == {"digits-gdd"}  # GDD's own pilots
    assert all(job.overrides["freeze_policy"] == policy and job.protocol == protocol.PILOT_PROTOCOL
               for policy, job in pairs if policy not in ("none", "gddi"))
    best = {"none": 3e-4, "gddi": 1e-3}
    for policy, job in pairs:
        fid = 5.0 if job.overrides["lr"] == best.get(policy, 1e-4) else 8.0
        _write_run_record(results, job, fid, diverged="stopped" if job.overrides["lr"] == 3e-3 else None)
    chosen = ablation_rates(results=str(results))
    assert chosen["best"] == dict.fromkeys(protocol.ABLATION_POLICIES, 1e-4) | best
    jobs = ablation_jobs(results=str(results))
    # every policy at its best rate plus 'none' at the fixed rate ('gddi' is at it already), 3 seeds each
    assert len(jobs) == (len(protocol.ABLATION_POLICIES) + 1) * 3 and len({j.eval_start for j in jobs}) == len(jobs)
    level = {("none", 1e-3): 40.0, ("none", 3e-4): 3.0, ("gddi", 1e-3): 2.0}
    rng = np.random.default_rng(1)
    for i, job in enumerate(jobs):
        if i == len(jobs) - 1:  # a row lacking a seed is named, with the command that records it
            with pytest.raises(LedgerError, match=r"lacks the records of seeds \[3\]: python -m paperlib run freez"):
                ablation_table(str(results))
        policy = job.overrides.get("freeze_policy") or ("none" if job.preset == "digits-gdd" else "gddi")
        _write_run_record(results, job, level.get((policy, job.overrides["lr"]), 4.0) + 0.1 * rng.standard_normal())
    table = ablation_table(str(results))
    verdicts = {c["key"]: c["verdict"] for c in table["claims"]}
    assert verdicts == {"stabilises": "holds", "better-at-best": "holds"}
    assert all(c["p_adjusted"] >= c["p"] for c in table["claims"])
    from paperlib.study.report import evidence_markdown

    text = evidence_markdown(results)
    assert "ablation 21 of 21 runs" in text and "| gddi@best = gddi@fixed | 0.001 | 3 |" in text  # same runs, once
    assert "| none@best | 0.0003 |" in text and "| none@fixed | 0.001 |" in text


def test_the_confirmation_trains_fresh_seeds_on_fresh_latents_and_decides_one_family_over_both_datasets(tmp_path):
    import shutil

    from paperlib.study.evidence.confirm import assemble_confirmation, confirm_jobs
    from paperlib.study.ledger import run_record, write_record

    results = tmp_path / "results"
    for dataset in protocol.MINI_DATASETS:
        (results / "evidence" / dataset).mkdir(parents=True)
        shutil.copy(ROOT / "results" / "evidence" / dataset / "rates.json", results / "evidence" / dataset)
    jobs = confirm_jobs(results=str(results))
    assert {j.overrides["seed"] for j in jobs} == set(evidence_plan.confirm_seeds("digits")) == {11, 12, 13, 14, 15}
    assert {j.protocol for j in jobs} == {protocol.CONFIRM_VERSION} and len(jobs) == 20
    assert {(j.preset, j.overrides["lr"]) for j in jobs} == {("digits-gdd", 3e-4), ("digits-gddi", 3e-4),
                                                             ("digits-cond-gdd", 1e-4), ("digits-cond-gddi", 1e-4)}
    assert all(j.record.startswith(f"evidence/{j.preset.rsplit('-', 1)[0]}/confirm/") for j in jobs)
    rng = np.random.default_rng(0)
    for job in jobs:  # GDD-I: higher recall and fewer near-copies on digits; no difference on digits-cond
        gddi, digits = job.preset.endswith("gddi"), job.preset.startswith("digits-g")
        result = dict(config=job.config(), preset=job.preset, seed=job.overrides["seed"], lr=job.overrides["lr"],
                      num=job.eval_num, eval_start=job.eval_start, kimg=144.0, train_seconds=1.0, frozen_fraction=0.0,
                      fid=2 + rng.normal(0, 0.3), fid_test=7 + rng.normal(0, 0.8), kid=0.1, precision=0.9,
                      recall=0.75 + 0.1 * (gddi and digits) + rng.normal(0, 0.01), memorisation=1.0,
                      copy_share=0.07 - 0.01 * (gddi and digits) + rng.normal(0, 0.002))
        write_record(results / "ledger", dict(run_record(job.record, result, None, job.protocol),
                                              machine=dict(cpu="x", cpu_capability="y")))
    table = assemble_confirmation(str(results))
    verdicts = {c["key"]: c["verdict"] for c in table["claims"]}
    assert verdicts["digits:recall"] == verdicts["digits:copies"] == "holds"
    assert {verdicts["digits-cond:recall"], verdicts["digits-cond:copies"]} <= {"not decided", "does not hold"}
    assert sorted(c["p_adjusted"] for c in table["claims"]) == holm(sorted(c["p"] for c in table["claims"]))
    assert [r["dataset"] for r in table["reported"]] == list(protocol.MINI_DATASETS)
    assert all("two-sided p" in r["sentence"] and r["low95"] < r["diff"] < r["high95"] for r in table["reported"])
    assert table["protocol"] == protocol.CONFIRM_VERSION and len(table["rows"]) == 4
