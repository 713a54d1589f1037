"""FID tables: request validation, the paper-scale plan of commands, reported numbers, rendering and the generated
documents. (The smoke table itself is built end to end in test_notebooks.py.)"""

import json
import sys
from pathlib import Path

import pytest

from paperlib.study.paper_numbers import reported_for
from paperlib.study.report import claims_table_markdown, update_readme
from paperlib.study.tables.build import build_table
from paperlib.study.tables.format import to_markdown
from paperlib.study.tables.paper import paper_plan
from paperlib.study.tables.request import TableError, TableRequest, teacher_steps

ROOT = Path(__file__).resolve().parent.parent


def test_requests_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(TableError, match="dataset 'cifar10' is not a smoke-scale dataset"):
        build_table(TableRequest("cifar10", "smoke", runs=str(tmp_path)))
    with pytest.raises(TableError, match="scale 'huge'"):
        TableRequest("digits", "huge").validate()
    with pytest.raises(TableError, match="it is a smoke/mini-scale dataset"):
        TableRequest("digits", "paper").validate()
    with pytest.raises(TableError, match="methods \\['gan'\\] unknown"):
        TableRequest("digits", "smoke", methods=["gan"]).validate()
    with pytest.raises(TableError, match="released checkpoints are keyed 'GDD' or 'GDD-I'"):
        TableRequest("digits", "smoke", released={"gdd": "x"}).validate()
    with pytest.raises(TableError, match="GDD-I: no file at /nope.pkl"):
        TableRequest("digits", "smoke", released={"GDD-I": "/nope.pkl"}).validate()
    with pytest.raises(TableError, match="kimg, seeds: at mini scale the table is the protocol's"):
        TableRequest("digits", "mini", kimg=16, seeds=[4]).validate()
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








def test_update_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- results:x -->\nold\n<!-- /results:x -->\nb\n")
    update_readme(readme, {"x": "new\n"})
    assert readme.read_text() == "a\n<!-- results:x -->\nnew\n<!-- /results:x -->\nb\n"
    with pytest.raises(ValueError, match="no '<!-- results:y -->'"):
        update_readme(readme, {"y": "z"})
    assert "new" in readme.read_text()  # nothing lost on error








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


def test_the_claims_table_puts_each_verdict_beside_the_papers_figure():
    text = claims_table_markdown(ROOT / "results")
    lines = text.splitlines()
    assert lines[0] == "| claim | the paper | digits | digits-cond |" and len(lines) == 2 + 8 + 2 + 2
    one_step = next(line for line in lines if line.startswith("| GAN fine-tuning alone"))
    assert "CIFAR-10: GDD-I 1.54 in one step" in one_step and one_step.count("**holds**: -") == 2
    freeze = next(line for line in lines if line.startswith("| At the high rate"))
    assert freeze.endswith("| – |") and "**holds**" in freeze  # the freeze ablation ran on digits only
    assert claims_table_markdown(ROOT / "nowhere").count("| – | – |") == 10
