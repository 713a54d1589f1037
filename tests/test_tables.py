"""FID tables: request validation, the paper-scale plan of commands, reported numbers, rendering and the report.
(The smoke table itself is built end to end in test_notebooks.py.)"""

import json
import sys
from pathlib import Path

import pytest

from paperlib.study.tables.paper import paper_plan
from paperlib.study.protocol import teacher_steps
from paperlib.study.report import ablation_markdown, claims, claims_markdown, long_budget_markdown, sweep_markdown, update_readme
from paperlib.study.paper_numbers import reported_for
from paperlib.study.tables.format import to_markdown
from paperlib.study.tables.build import TableError, TableRequest, build_table


def test_requests_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(TableError, match="dataset 'cifar10' is not a smoke-scale dataset"):
        build_table(TableRequest("cifar10", "smoke", runs=str(tmp_path)))
    with pytest.raises(TableError, match="scale 'huge'"):
        TableRequest("digits", "huge").validate()
    with pytest.raises(TableError, match="it is a smoke/mini-scale dataset"):
        TableRequest("digits", "paper").validate()
    with pytest.raises(TableError, match="methods \\['gan'\\] unknown"):
        TableRequest("digits", "mini", methods=["gan"]).validate()
    with pytest.raises(TableError, match="released checkpoints are keyed 'GDD' or 'GDD-I'"):
        TableRequest("digits", "mini", released={"gdd": "x"}).validate()
    with pytest.raises(TableError, match="GDD-I: no file at /nope.pkl"):
        TableRequest("digits", "mini", released={"GDD-I": "/nope.pkl"}).validate()
    with pytest.raises(TableError, match="feature_weights=PATH: inception-2015-12-05.pt"):
        TableRequest("ffhq-64", "paper", teacher=__file__, data=__file__).validate()
    assert not (tmp_path / "paper").exists()


def test_paper_plan_runs_every_row_under_torchrun(tmp_path):
    files = {name: tmp_path / name for name in ("edm.pkl", "data.zip", "inception.pt", "ref.npz", "gddi.pkl", "vgg.pth")}
    for f in files.values():
        f.write_bytes(b"x")
    request = TableRequest("afhqv2-64", "paper", teacher=str(files["edm.pkl"]), data=str(files["data.zip"]),
                           feature_weights=str(files["inception.pt"]), ref=str(files["ref.npz"]), gpus=8,
                           runs=str(tmp_path / "runs"), released={"GDD-I": str(files["gddi.pkl"])},
                           backbone_weights={"vgg16_bn": str(files["vgg.pth"])}, methods=["gdd", "gddi"])
    plan = paper_plan(request)
    assert [s["row"] for s in plan[:7]] == [f"teacher, Heun NFE {n}" for n in (1, 3, 5, 9, 17, 35, 79)]
    assert teacher_steps(32)[-1] == 18 and teacher_steps(64)[-1] == 40
    assert [s["row"] for s in plan[7:]] == ["GDD-I released (NFE 1)", "GDD training", "GDD (NFE 1), final",
                                            "GDD-I training", "GDD-I (NFE 1), final"]
    for step in plan:
        assert step["argv"][:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8",
                                    "-m"]
    fid = plan[0]["argv"]
    assert fid[fid.index("--num") + 1] == "50000" and fid[fid.index("--steps") + 1] == "1"
    train = plan[-2]["argv"]
    assert train[train.index("--preset") + 1] == "afhqv2-64-gddi" and "--resume" in train
    # every snapshot is scored with the table's protocol, so the best one can be reported
    assert train[train.index("--eval-ref") + 1] == str(files["ref.npz"]) and train[train.index("--eval-num") + 1] == "50000"
    kwargs = json.loads(train[train.index("--discriminator_kwargs") + 1])
    assert kwargs == {"backbones": "deit+lite0", "weights": {"vgg16_bn": str(files["vgg.pth"])}}
    single = paper_plan(TableRequest(**{**request.__dict__, "gpus": 1}))
    assert single[0]["argv"][:4] == [sys.executable, "-m", "paperlib", "fid"]


def test_reported_numbers_and_markdown():
    assert reported_for("imagenet-64", "gddi") == (1.16, "ImageNet 64x64 cond: abstract; recall 0.60")
    assert reported_for("digits", "teacher", 35)[0] == 1.97 and "(stand-in)" in reported_for("digits", "teacher", 35)[1]
    assert reported_for("digits", "teacher", 17) == (None, "")
    assert reported_for("ffhq-64", "instance") == (None, "")
    table = dict(dataset="digits", scale="mini", eval_num=10, feature_net="f", rows=[
        dict(row="GDD-I (NFE 1)", fid=8.4, kid=float("nan"), frozen_fraction=0.82, kimg=40.0, reported_fid=1.54,
             reported_source="CIFAR-10 (stand-in): abstract")])
    md = to_markdown(table)
    assert "| GDD-I (NFE 1) | 8.40 | – | – |" in md and "| 1 | 40 | – | 82.0% | 1.54 |" in md
    table["rows"][0].update(fid_sd=0.25, seeds=[1, 2, 3])
    assert "| GDD-I (NFE 1) | 8.40 ± 0.25 | – | – |" in to_markdown(table) and "| 3 | 40 |" in to_markdown(table)
    assert "GDD-I (NFE 1): CIFAR-10 (stand-in): abstract" in md


def _row(kind, fids, **extra):
    return dict(row=kind, kind=kind, fid=sum(fids) / len(fids), fid_runs=fids, fid_test=sum(fids) / len(fids) + 5,
                fid_test_runs=[f + 5 for f in fids], **extra)


def test_claims_follow_the_rule():
    """Welch's 95% interval decides: wholly on the predicted side holds, wholly on the other does not, else
    inconclusive; each claim names the metric it rests on and tests the held-out FID beside it."""
    table = dict(rows=[_row("teacher", [900.0], nfe=1), _row("teacher", [6.0, 6.1, 5.9], nfe=35, memorisation=1.1,
                                                                   memorisation_runs=[1.1, 1.12, 1.08]),
                       _row("gdd", [9.0, 12.0, 6.0], memorisation=0.8, memorisation_runs=[0.79, 0.8, 0.81]),
                       _row("gddi", [5.0, 5.1, 5.2], memorisation=1.1, memorisation_runs=[1.0, 1.1, 1.2]),
                       _row("instance", [30.0, 31.0, 29.0])])
    verdicts = {c["claim"]: c for c in claims(table)}
    assert [c["verdict"] for c in verdicts.values()] == [
        "holds", "holds", "inconclusive", "inconclusive", "holds", "inconclusive", "does not hold"]
    gddi = verdicts["GDD-I in one step is at or below the teacher's 35-NFE FID"]
    assert gddi["metric"] == "fid" and [t["metric"] for t in gddi["tests"]] == ["fid", "fid_test"]
    assert gddi["tests"][0]["high"] < 0 and "Welch" in gddi["tests"][0]["evidence"]
    md = claims_markdown([dict(table, dataset="digits", scale="mini", eval_num=10000)])
    assert "Rule, fixed before the runs" in md and "**does not hold** on the memorisation ratio" in md
    assert "on the held-out FID: holds" in md
    assert [c["verdict"] for c in claims(dict(rows=table["rows"][:2]))][1:3] == ["untested", "untested"]


def test_long_budget_section_decides_only_the_claims_its_rows_can(tmp_path):
    """The continued runs' table (the long study) is rendered with its claims by the main rule,
    leaving out the claims whose rows were not continued (instance distillation) instead of calling them untested."""
    mem = dict(memorisation=1.0, memorisation_runs=[0.9, 1.0, 1.1])
    rows = [_row("teacher", [900.0], nfe=1), _row("teacher", [6.0, 6.1, 5.9], nfe=35, **mem),
            _row("gdd", [9.0, 12.0, 6.0], **mem), _row("gddi", [5.0, 5.1, 5.2], **mem)]
    (tmp_path / "digits" / "mini").mkdir(parents=True)
    (tmp_path / "digits" / "mini" / "long144.json").write_text(json.dumps(dict(
        dataset="digits", scale="mini", eval_num=10000, feature_net="f", kimg=144, continued_from_kimg=48, rows=rows)))
    md = long_budget_markdown(tmp_path)
    assert "GDD and GDD-I continued from 48 to 144 kimg" in md and "| gddi | 5.10 |" in md
    assert "GDD-I in one step is at or below the teacher's 35-NFE FID: **holds**" in md
    assert "instance" not in md and "untested" not in md
    assert long_budget_markdown(tmp_path / "none") == ""


def test_update_readme_and_sweeps(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- results:x -->\nold\n<!-- /results:x -->\nb\n")
    update_readme(readme, {"x": "new\n"})
    assert readme.read_text() == "a\n<!-- results:x -->\nnew\n<!-- /results:x -->\nb\n"
    with pytest.raises(ValueError, match="no '<!-- results:y -->'"):
        update_readme(readme, {"y": "z"})
    assert "new" in readme.read_text()  # nothing lost on error
    result = dict(preset="digits-gdd", lr=1e-3, kimg=16.0, seed=0, num=10000, fid=9.3, fid_test=17.1, precision=0.8,
                  recall=0.8, memorisation=1.07)
    (tmp_path / "sweep-digits-gdd.json").write_text(json.dumps([result, dict(result, lr=1e-4, fid=20.0, fid_test=1.0)]))
    md = sweep_markdown(tmp_path)
    # chosen on the training-split FID, never the held-out one (which favours 1e-4 here)
    assert md.index("| 0.0001 | 20.00 |") < md.index("| 0.001 (chosen) | 9.30 |")
    assert "16 kimg, seed 0, 10000 samples" in md


def test_ablation_table(tmp_path):
    level = dict(policy="gddi", frozen_fraction=0.82, fid=5.0, fid_sd=0.5, fid_test=9.0, fid_test_sd=1.0, recall=0.8,
                 recall_sd=0.01, memorisation=1.0, memorisation_sd=0.02)
    (tmp_path / "digits" / "mini").mkdir(parents=True)
    (tmp_path / "digits" / "mini" / "freeze_ablation.json").write_text(json.dumps(
        dict(preset="digits-gddi", lr=3e-3, kimg=8.0, seeds=[1, 2, 3], num=10000, levels=[level])))
    assert "| 82.0% | gddi | 5.00 ± 0.50 | 9.00 ± 1.00 | 0.800 ± 0.010 | 1.000 ± 0.020 |" in ablation_markdown(tmp_path)


def test_ablation_comparisons_use_ratios_so_a_diverged_level_decides():
    from paperlib.study.report import ablation_comparisons_markdown

    def level(policy, runs):
        return dict(policy=policy, frozen_fraction=0.5, fid=sum(runs) / 3, fid_runs=runs, fid_test=sum(runs) / 3,
                    fid_test_runs=runs)

    ablation = dict(levels=[level("none", [585.0, 1143.0, 2155.0]), level("gddi", [38.0, 52.0, 44.0]),
                            level("gddi+skip+aux", [42.0, 39.0, 58.0])])
    text = ablation_comparisons_markdown(ablation)
    assert "below 'none'" in text and "**holds** on the training-split FID (ratio 0.04" in text
    assert "below 'gddi+skip+aux'" in text and "**inconclusive**" in text
    assert ablation_comparisons_markdown(dict(levels=[level("none", [1.0, 2.0, 3.0])])) == ""


def test_ablation_figure_draws_every_seed_and_a_diverged_level(tmp_path):
    from paperlib.evidence import plot_freeze_ablation

    levels = [dict(policy=p, frozen_fraction=f, fid=m, fid_sd=m / 4, fid_runs=[m * 0.8, m, m * 1.2], fid_test=m,
                   fid_test_sd=m / 4, fid_test_runs=[m * 0.8, m, m * 1.2])
              for p, f, m in (("none", 0.0, 1300.0), ("gddi", 0.82, 45.0), ("all-but-norm-embedding", 0.899, 60.0))]
    ablation = dict(dataset="digits", kimg=48.0, lr=1e-3, seeds=[1, 2, 3], num=10000, levels=levels)
    path = plot_freeze_ablation(ablation, tmp_path / "ablation.png")
    assert path.stat().st_size > 10_000


def test_paper_table_reports_the_final_and_the_best_snapshot(tmp_path):
    """A paper table whose runs are done (their outputs exist, so nothing runs): each method gets its final EMA row
    and its lowest-FID snapshot row, and the reported FID stands beside the best snapshot, as the authors chose it."""
    files = {name: tmp_path / name for name in ("edm.pkl", "data.zip", "inception.pt", "ref.npz")}
    for f in files.values():
        f.write_bytes(b"x")
    request = TableRequest("cifar10", "paper", teacher=str(files["edm.pkl"]), data=str(files["data.zip"]),
                           feature_weights=str(files["inception.pt"]), ref=str(files["ref.npz"]),
                           runs=str(tmp_path / "runs"), results=str(tmp_path / "results"),
                           figures=str(tmp_path / "figures"), methods=["gddi"])
    for step in paper_plan(request):
        out = Path(step["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dict(fid=2.5, num=50000)) if out.suffix == ".json" else "x")
    run = tmp_path / "runs" / "paper" / "cifar10" / "gddi"
    (run / "config.json").write_text(json.dumps(dict(freeze_level=1)))
    log = [dict(nimg=n, kimg=n / 1000, train_seconds=n / 100, **({"eval_fid": f, "eval_num": 50000} if f else {}))
           for n, f in ((250_000, 3.1), (300_000, None), (500_000, 1.9), (750_000, 2.4))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    rows = {r["row"]: r for r in build_table(request)["rows"]}
    final, best = rows["GDD-I (NFE 1), final"], rows["GDD-I (NFE 1), best snapshot (500 kimg)"]
    assert final["fid"] == 2.5 and final["kimg"] == 750 and final["reported_fid"] is None
    assert best["fid"] == 1.9 and best["kimg"] == 500 and best["reported_fid"] == 1.54
    assert best["checkpoint"].endswith("network-snapshot-000500000.safetensors")
    assert "snapshot (every 250 kimg) of lowest FID" in (tmp_path / "figures" / "table_cifar10_paper.md").read_text()
