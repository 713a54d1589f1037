"""`python -m paperlib sample|convert`: the commands a user runs, end to end on tiny checkpoints."""

import numpy as np
from edm_pickle import write_edm_pickle
from PIL import Image

from paperlib.__main__ import main
from paperlib.store.checkpoints import load_network, save_network


def test_convert_then_sample_a_teacher(tmp_path, tiny_net, capsys):
    teacher = tiny_net(label_dim=10, augment_dim=9)
    pkl = write_edm_pickle(teacher, tmp_path / "edm-tiny.pkl")
    assert main(["convert", str(pkl), str(tmp_path / "conv")]) == 0
    assert "EDMPrecond/SongUNet" in capsys.readouterr().out
    assert load_network(tmp_path / "conv").init_kwargs == teacher.init_kwargs
    out = tmp_path / "samples"
    assert main(["sample", "--ckpt", str(tmp_path / "conv"), "--seeds", "0-4", "--steps", "2", "--batch", "2",
                 "--outdir", str(out), "--device", "cpu"]) == 0
    npz = np.load(out / "samples.npz")
    assert npz["images"].shape == (5, 8, 8, 3) and npz["images"].dtype == np.uint8 and int(npz["nfe"]) == 3
    assert list(npz["seeds"]) == [0, 1, 2, 3, 4] and npz["labels"].min() >= 0
    assert np.array_equal(np.asarray(Image.open(out / "000003.png")), npz["images"][3])


def test_sample_a_one_step_generator_and_a_pickle_directly(tmp_path, tiny_net):
    gen = tiny_net("GDDPrecond")
    save_network(gen, tmp_path / "gen")
    assert main(["sample", "--ckpt", str(tmp_path / "gen"), "--seeds", "7", "--outdir", str(tmp_path / "s"), "--device", "cpu"]) == 0
    assert int(np.load(tmp_path / "s" / "samples.npz")["nfe"]) == 1
    pkl = write_edm_pickle(gen, tmp_path / "gdd.pkl", kind="gdd")
    assert main(["sample", "--ckpt", str(pkl), "--seeds", "7", "--outdir", str(tmp_path / "p"), "--device", "cpu"]) == 0
    assert np.array_equal(np.load(tmp_path / "p" / "samples.npz")["images"], np.load(tmp_path / "s" / "samples.npz")["images"])


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["sample", "--ckpt", str(tmp_path / "missing.pkl"), "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.pkl: file not found" in err
    assert main(["convert-cifar10", str(tmp_path / "nope.tar.gz"), str(tmp_path / "x.zip")]) == 2
    assert "nope.tar.gz" in capsys.readouterr().err


def test_train_help_lists_every_config_key_with_its_default_and_meaning(capsys):
    import pytest

    from paperlib.config import TrainConfig

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for name, _, meaning in TrainConfig.key_help():
        assert meaning, f"{name} has no comment in TrainConfig"
        assert f"  --{name} (default " in out
    assert '--bn_group (default 0): projected D: BatchNorm over groups' in out


def test_the_config_file_shows_what_bn_group_sets_and_resume_ignores_it(tmp_path, smoke_teacher):
    import json

    from paperlib.presets import preset_config
    from paperlib.training import train

    cfg = preset_config("smoke-gdd", run_dir=str(tmp_path / "run"), teacher=smoke_teacher, total_kimg=0.032,
                        discriminator="projected", bn_group=8, r1_gamma=None, r1_gamma_sum=1e-4,
                        discriminator_kwargs=dict(backbones="digits", width=0.125))
    train(cfg, progress=False)
    derived = json.loads((tmp_path / "run" / "config.json").read_text())["derived"]
    assert derived == dict(r1_weight=1e-4 / 8, adam_eps=1e-8 / 8, batchnorm_group=8)
    cfg.total_kimg = 0.064
    assert train(cfg, resume=True, progress=False)["nimg"] == 64
