"""The training loop and the method's pieces: EMA, freezing, losses, R1, presets, resume, multi-process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PINNED_THREADS, torch_threads
from test_nets import CONFIGS, build_meta

from paperlib.config import ConfigError, TrainConfig
from paperlib.data import write_image_zip
from paperlib.discriminators import SmallDiscriminator
from paperlib.freezing import apply_freezing, frozen_parameter_names
from paperlib.losses import discriminator_loss, generator_loss, instance_loss, r1_penalty
from paperlib.presets import PRESETS, preset_config
from paperlib.store.checkpoints import load_network, read_network_file
from paperlib.store.run_folder import RunError
from paperlib.training import ema_beta, ema_update, train

ROOT = Path(__file__).resolve().parent.parent


def test_ema_schedule_matches_reference_numbers():
    assert ema_beta(256, 0, 500) == 0.0  # the first step copies
    assert ema_beta(256, 100_000, 500) == pytest.approx(0.9651, abs=1e-4)
    assert ema_beta(256, 1_000_000, 500) == pytest.approx(0.99646, abs=1e-5)
    assert ema_beta(256, 5_000_000, 500) == pytest.approx(0.99929, abs=1e-5)
    assert ema_beta(256, 100_000_000, 500) == pytest.approx(0.5 ** (256 / 500_000))  # the cap takes over


FREEZE_TABLE = {  # shared/spec/freeze-summary.md: (frozen tensors, frozen params) per level
    "cifar10-32x32-uncond-ncsnpp": {1: (144, 47_597_568), 2: (156, 48_781_824), 3: (196, 51_015_168)},
    "ffhq-afhqv2-64x64-uncond-ncsnpp": {1: (188, 52_614_144), 2: (200, 53_798_400), 3: (254, 56_294_912)},
    "imagenet-64x64-cond-adm": {1: (188, 233_065_920), 2: (232, 257_324_160), 3: (270, 266_807_616)},
    "cifar10-32x32-uncond-ddpmpp": {1: (144, 47_597_568), 2: (156, 48_781_824), 3: (196, 51_015_168)},
}



def test_ema_update_skips_frozen_parameters_without_changing_results(tiny_net):
    net = tiny_net()
    apply_freezing(net, 1)
    ema = tiny_net()
    ema.load_state_dict(net.state_dict())
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(1.0)
    expected = {n: e.detach().clone().lerp_(p.detach(), 0.25) for (n, e), p in zip(ema.named_parameters(), net.parameters())}
    ema_update(ema, net, 0.75)
    for name, e in ema.named_parameters():
        assert torch.equal(e, expected[name]), name  # frozen: lerp of equal values is the value itself

@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_freeze_level_1_equals_the_spec_lists(config):
    net = build_meta("GDDPrecond", **CONFIGS[config])
    listed = (Path(__file__).parent / "data" / f"{config}.freeze1.txt").read_text().splitlines()
    expected = [(line.split("\t")[0], line.split("\t")[1]) for line in listed]
    shapes = dict(net.named_parameters())
    got = [(name, "[" + ",".join(str(d) for d in shapes[name].shape) + "]") for name in frozen_parameter_names(net, 1)]
    assert got == expected


@pytest.mark.parametrize("config", sorted(FREEZE_TABLE))
def test_freeze_levels_match_the_summary_counts(config):
    for level, (tensors, params) in FREEZE_TABLE[config].items():
        net = build_meta("GDDPrecond", **CONFIGS[config])
        info = apply_freezing(net, level)
        assert (info["frozen_tensors"], info["frozen_params"]) == (tensors, params)
    net = build_meta("GDDPrecond", **CONFIGS["cifar10-32x32-uncond-ncsnpp"])
    assert round(100 * apply_freezing(net, 1)["frozen_fraction"], 2) == 84.40


def test_frozen_layers_get_no_weight_gradient(tiny_net):
    net = tiny_net("GDDPrecond").train()
    apply_freezing(net, 1)
    net.generate(torch.randn(2, 3, 8, 8)).square().mean().backward()
    for name, p in net.named_parameters():
        assert (p.grad is None) == (name in frozen_parameter_names(net, 1)), name
    with pytest.raises(ValueError, match="freeze level"):
        apply_freezing(net, 4)


def test_gan_losses_on_fixed_logits():
    real, fake = [torch.tensor([[2.0, 0.0], [1.0, 1.0]])], [torch.tensor([[-1.0, 3.0], [0.0, 0.0]])]
    sp = torch.nn.functional.softplus
    per_sample_fake = torch.stack([sp(torch.tensor([-1.0, 3.0])).mean(), sp(torch.tensor([0.0, 0.0])).mean()])
    per_sample_real = torch.stack([sp(-torch.tensor([2.0, 0.0])).mean(), sp(-torch.tensor([1.0, 1.0])).mean()])
    assert discriminator_loss(real, fake).item() == pytest.approx((per_sample_fake.mean() + per_sample_real.mean()).item())
    assert generator_loss(fake).item() == pytest.approx(sp(-torch.tensor([[-1.0, 3.0], [0.0, 0.0]])).mean(1).mean().item())
    assert generator_loss(fake, "hinge").item() == pytest.approx(-0.5)
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(
        torch.relu(1 + fake[0]).mean(1).mean().item() + torch.relu(1 - real[0]).mean(1).mean().item())
    # two backbones: their per-sample means add up
    assert generator_loss(fake + fake).item() == pytest.approx(2 * generator_loss(fake).item())
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss(fake, "wgan")


def test_loss_reduction_is_a_mean_over_samples():
    """paperlib averages over samples where the reference sums over each GPU's batch: duplicating the batch
    leaves the loss unchanged, and the reference's sum is exactly per-GPU-batch times ours."""
    logits = [torch.randn(8, 5)]
    doubled = [torch.cat([logits[0], logits[0]])]
    assert discriminator_loss(doubled, doubled).item() == pytest.approx(discriminator_loss(logits, logits).item())
    reference_sum = sum(torch.nn.functional.softplus(-l).mean() for l in logits[0])
    assert reference_sum.item() == pytest.approx(8 * generator_loss(logits).item(), rel=1e-6)
    cifar = preset_config("cifar10-uncond-gdd", teacher="t.pkl", dataset="d.zip")
    assert cifar.bn_group == 64 and cifar.r1_weight == pytest.approx(1e-4 / 64)  # gamma_paper / per-GPU batch
    imagenet = preset_config("imagenet-64-gddi", teacher="t.pkl", dataset="d.zip", discriminator_kwargs=dict(
        backbones="deit+lite0", class_embedding="random"))
    assert imagenet.bn_group == 128 and imagenet.r1_weight == pytest.approx(1e-4 / 128)
    # One knob: the reference's per-process batch sets both the BatchNorm groups and gamma's conversion.
    eight_gpus = preset_config("cifar10-uncond-gdd", teacher="t.pkl", dataset="d.zip", bn_group=32)
    assert eight_gpus.r1_weight == pytest.approx(1e-4 / 32)
    with pytest.raises(ConfigError, match="give the R1 weight once"):
        preset_config("cifar10-uncond-gdd", teacher="t.pkl", dataset="d.zip", r1_gamma=1e-6).validate()


def test_instance_losses():
    a, b = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert instance_loss(a, b).item() == 1.0
    assert instance_loss(a, b, "pseudo_huber", huber_c=0.5).item() == pytest.approx((1 + 0.25) ** 0.5 - 0.5)


def test_r1_matches_finite_differences():
    torch.manual_seed(0)
    D = SmallDiscriminator(1, label_dim=0, channels=8).double()
    with torch.no_grad():  # settle spectral norm's power iteration so D is a fixed function
        for _ in range(5):
            D(torch.randn(1, 1, 8, 8, dtype=torch.float64), None)
    D.eval()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    penalty = r1_penalty(D, x, None)
    f = lambda y: sum(l.sum() for l in D(y, None)).item()
    eps = 1e-6
    for b in range(2):
        grad = torch.zeros_like(x[b])
        for idx in np.ndindex(*x.shape[1:]):
            xp, xm = x.clone(), x.clone()
            xp[(b,) + idx] += eps
            xm[(b,) + idx] -= eps
            grad[idx] = (f(xp) - f(xm)) / (2 * eps)
        assert penalty[b].item() == pytest.approx(grad.square().sum().item(), rel=1e-6)


# ----------------------------------------------------------------------------------------------------------
# End to end at smoke scale.

def run_cli(*args, env_extra=None, check=True, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "paperlib", *args], env=env, capture_output=True, text=True,
                          check=check, **kwargs)


@pytest.mark.parametrize("preset", ["smoke-gdd", "smoke-gddi", "smoke-instance"])
def test_smoke_runs_write_loadable_checkpoints(tmp_path, smoke_teacher, preset):
    summary = train(preset_config(preset, run_dir=str(tmp_path / "run"), teacher=smoke_teacher), progress=False)
    net = load_network(tmp_path / "run" / "network.safetensors")
    assert type(net).__name__ == "GDDPrecond" and summary["nimg"] >= 320
    config, _ = read_network_file(tmp_path / "run" / "network.safetensors")
    assert config["extra"]["objective"] == PRESETS[preset]["objective"]
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(np.isfinite(v) for l in lines for v in l.values() if isinstance(v, float))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["teacher"] == smoke_teacher
    if preset == "smoke-gddi":
        frozen = summary["freezing"]
        assert frozen["level"] == 1 and 0.5 < frozen["frozen_fraction"] < 0.9
        teacher = load_network(smoke_teacher)
        for name in frozen_parameter_names(net, 1):  # frozen weights end exactly as the teacher's
            assert torch.equal(net.state_dict()[name], teacher.state_dict()[name])
    if preset == "smoke-gdd":
        assert {"loss_G", "loss_D", "logits_real", "logits_fake", "loss_R1"} <= set().union(*lines)


def test_smoke_teacher_is_a_denoiser(smoke_teacher):
    net = load_network(smoke_teacher)
    assert type(net).__name__ == "EDMPrecond" and net.img_channels == 1 and net.img_resolution == 8


def test_resume_after_sigkill_is_bit_identical(tmp_path, smoke_teacher):
    """A run killed (SIGKILL, in a process of its own) after its first training state, then resumed, ends with the
    weights, discriminator and log of the same run trained straight through (both here, on the killed one's thread)."""
    from paperlib.__main__ import main

    common = ["train", "--preset", "smoke-gdd", "--teacher", smoke_teacher, "--total_kimg", "0.48",
              "--snapshot_kimg", "0.16", "--no-progress"]
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "paperlib", *common, "--run-dir", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(killed.glob("training-state-*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "network.safetensors").exists(), "the run finished before it could be killed"
    with torch_threads(1):
        assert main([*common, "--run-dir", str(tmp_path / "straight")]) == 0
        assert main([*common, "--run-dir", str(killed), "--resume"]) == 0
    a, b = load_network(tmp_path / "straight"), load_network(killed)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    sa = torch.load(sorted((tmp_path / "straight").glob("training-state-*.pt"))[-1], weights_only=True)
    sb = torch.load(sorted(killed.glob("training-state-*.pt"))[-1], weights_only=True)
    for k in sa["modules"]["D"]:
        assert torch.equal(sa["modules"]["D"][k], sb["modules"]["D"][k]), k
    lines = [json.loads(l)["nimg"] for l in (killed / "metrics.jsonl").read_text().splitlines()]
    assert lines == sorted(set(lines))  # no duplicated log lines after the resume


# The runs trained on two gloo processes and on one (same global batch), by name: the small discriminator for 8
# steps (with R1), and the projected one (random-weight EfficientNet-lite0 at 64x64, BatchNorm over groups of 8).
DDP_RUNS = {
    "small": dict(preset="smoke-gdd", overrides=dict(total_kimg=0.128, snapshot_kimg=1, device="cpu")),
    "projected": dict(preset="smoke-gdd", overrides=dict(
        total_kimg=0.016, device="cpu", discriminator="projected", bn_group=8,
        discriminator_kwargs=dict(backbones=["tf_efficientnet_lite0"], resize=64))),
}


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory, smoke_teacher):
    """Every run of DDP_RUNS trained by one torchrun launch of two gloo processes: name -> final network."""
    root = tmp_path_factory.mktemp("ddp")
    runs = [dict(run, run_dir=str(root / name), overrides=dict(run["overrides"], teacher=smoke_teacher))
            for name, run in DDP_RUNS.items()]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                str(Path(__file__).with_name("ddp_train.py")), json.dumps(runs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(torchrun, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: load_network(root / name) for name in DDP_RUNS}


def train_on_one_process(tmp_path, smoke_teacher, name):
    """Run ``name`` of DDP_RUNS here, on one thread: its final network."""
    run = DDP_RUNS[name]
    with torch_threads(1):
        train(preset_config(run["preset"], run_dir=str(tmp_path / name), teacher=smoke_teacher, **run["overrides"]),
              progress=False)
    return load_network(tmp_path / name)


def test_two_gloo_processes_equal_one_process(tmp_path, smoke_teacher, two_process_runs):
    one, two = train_on_one_process(tmp_path, smoke_teacher, "small"), two_process_runs["small"]
    for (k, va), vb in zip(one.state_dict().items(), two.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-4, atol=1e-5, msg=k)
    teacher = load_network(smoke_teacher).state_dict().values()
    moved = sum((va - vb).abs().max().item() for va, vb in zip(one.state_dict().values(), teacher))
    assert moved > 0  # training really changed the weights


def test_projected_discriminator_trains_alike_on_one_and_two_processes(tmp_path, smoke_teacher, two_process_runs):
    """Two processes of 8 images take the step of one process of 16. Adam's first step is close to a sign step, so
    gradients at rounding level flip a few weights by 2 lr: measured 0.02% of the weights beyond 1e-6 (mean
    difference 1.4e-8), where BatchNorm over each process's whole batch (16 vs 8) moves 3.1% (mean 5e-6)."""
    one, two = train_on_one_process(tmp_path, smoke_teacher, "projected"), two_process_runs["projected"]
    diff = torch.cat([(va - vb).abs().flatten() for va, vb in zip(one.state_dict().values(), two.state_dict().values())])
    assert (diff > 1e-6).float().mean() < 2e-3 and diff.mean() < 1e-7


def test_bad_configurations(tmp_path, smoke_teacher):
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        preset_config("nope")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['learning_rate'\]"):
        preset_config("smoke-gdd", learning_rate=1)
    with pytest.raises(ConfigError, match="needs the EDM teacher"):
        preset_config("cifar10-uncond-gddi")
    with pytest.raises(ConfigError, match="needs a teacher"):
        train(preset_config("smoke-gdd", run_dir=str(tmp_path / "a")), progress=False)
    with pytest.raises(ConfigError, match=r"does not fit the dataset: digits-16x16-train: images are 1x16x16"):
        train(preset_config("smoke-gdd", run_dir=str(tmp_path / "b"), teacher=smoke_teacher, dataset="digits-16:train"),
              progress=False)
    unlabelled = write_image_zip(tmp_path / "u.zip", np.zeros((4, 8, 8, 1), np.uint8), None)
    with pytest.raises(ConfigError, match="needs labels"):
        train(preset_config("digits-cond-teacher", run_dir=str(tmp_path / "c"), dataset=str(unlabelled)), progress=False)
    train(preset_config("smoke-gdd", run_dir=str(tmp_path / "d"), teacher=smoke_teacher, total_kimg=0.016), progress=False)
    with pytest.raises(RunError, match="already holds a run"):
        train(preset_config("smoke-gdd", run_dir=str(tmp_path / "d"), teacher=smoke_teacher), progress=False)


def test_cli_train_errors(tmp_path, main_here):
    code, stderr = main_here("train", "--preset", "smoke-gdd", "--bogus_key", "1")
    assert code == 2 and "unknown config key(s) ['bogus_key']" in stderr
    code, stderr = main_here("train", "--preset", "nope")
    assert code == 2 and "unknown preset 'nope'" in stderr


def test_every_preset_resolves():
    for name, values in PRESETS.items():
        overrides = dict(teacher="t.pkl", dataset="d.zip") if values.get("_teacher_name") else {}
        if values.get("_teacher_name") and values["conditional"]:
            overrides["discriminator_kwargs"] = dict(values["discriminator_kwargs"], class_embedding="e.pkl")
        cfg = preset_config(name, **overrides)
        if overrides:
            cfg.validate()  # the R1 weight is given once, the BatchNorm groups fit the projected discriminator
        assert isinstance(cfg, TrainConfig) and cfg.run_dir == f"runs/{name}"
    assert sum(1 for n in PRESETS if PRESETS[n].get("_teacher_name")) == 10


def test_non_finite_gradients_are_sanitised_and_counted():
    from paperlib.devices import DistInfo
    from paperlib.objectives import GradientStep

    p = torch.nn.Parameter(torch.ones(3))
    opt = GradientStep([p], lr=0.1, betas=[0.0, 0.99], dist_info=DistInfo())
    opt.step((p * torch.tensor([float("nan"), float("inf"), 1.0])).sum())
    assert opt.sanitized_steps == 1 and torch.isfinite(p).all()
    assert p.grad.tolist() == [0.0, 1e5, 1.0]
    opt.step(p.sum())
    assert opt.sanitized_steps == 1


def test_channels_last_weights_get_gradients_of_their_own_strides():
    from paperlib.devices import DistInfo
    from paperlib.objectives import GradientStep

    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    opt = GradientStep(conv.parameters(), lr=0.1, betas=[0.0, 0.99], dist_info=DistInfo())
    reference = conv.weight.detach().clone()
    opt.step(conv(torch.randn(2, 3, 5, 5)).square().mean())
    assert conv.weight.grad.stride() == conv.weight.stride() and not conv.weight.is_contiguous()
    assert not torch.equal(conv.weight, reference)


@pytest.mark.parametrize("option", ["channels_last", "compile"])
def test_speed_options_train_to_the_same_weights(tmp_path, smoke_teacher, option, monkeypatch):
    """Channels-last layout and a compiled backbone change the speed, not the maths (to fp32 rounding). The compiled
    run captures the backbone's forward and backward graphs as training does and runs them through AOT autograd; only
    inductor's code generation is left out (PyTorch's own part, and over a hundred seconds of compiling on 2 cores)."""
    original = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: original(self, **dict(kw, backend="aot_eager")))
    nets = {}
    for on in (False, True):
        run = tmp_path / f"{option}-{on}"
        train(preset_config("smoke-gdd", run_dir=str(run), teacher=smoke_teacher, total_kimg=0.064, **{option: on}),
              progress=False)
        nets[on] = load_network(run / "network.safetensors").state_dict()
    assert nets[True].keys() == nets[False].keys()
    assert max((nets[True][k] - nets[False][k]).abs().max().item() for k in nets[True]) < 1e-5


def test_speed_up_compiles_the_trained_backbone_only(smoke_teacher):
    from paperlib.devices import DistInfo
    from paperlib.objectives import GDDObjective, speed_up

    cfg = preset_config("smoke-gdd", teacher=smoke_teacher, compile=True, channels_last=True)
    objective = GDDObjective(cfg, DistInfo(), None, torch.device("cpu"))
    speed_up(objective, cfg)
    assert objective.net.model._compiled_call_impl is not None  # D is not compiled: R1 needs double backward
    assert objective.D.model._compiled_call_impl is None
    weights = [p for m in objective.modules().values() for p in m.parameters() if p.ndim == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def test_freeze_ablation_policies_nest_and_gddi_is_level_1():
    from paperlib.freezing import FREEZE_POLICIES

    net = build_meta("GDDPrecond", **CONFIGS["cifar10-32x32-uncond-ncsnpp"])
    names = {policy: set(frozen_parameter_names(net, policy)) for policy in FREEZE_POLICIES}
    assert names["none"] == set() and names["gddi"] == set(frozen_parameter_names(net, 1))
    ordered = list(names.values())
    assert all(a < b for a, b in zip(ordered, ordered[1:]))  # each policy freezes strictly more than the one before
    assert any("aux_" in n for n in names["gddi+skip+aux"]) and not any("aux_" in n for n in names["gddi"])
    everything = names["all-but-norm-embedding"]
    assert not any(".map_" in n or ".norm" in n or "aux_norm" in n for n in everything)
    assert {n for n, _ in net.named_parameters() if n.endswith("conv.weight") and "aux" not in n} <= everything
    with pytest.raises(ValueError, match="freeze level must be one of"):
        frozen_parameter_names(net, "conv2")


def test_instance_bank_is_cached_per_teacher_and_visited_once_per_epoch(tmp_path, smoke_teacher):
    from paperlib.devices import DistInfo
    from paperlib.instance_bank import bank_indices, bank_path, load_or_build_bank
    from paperlib.store.checkpoints import load_network

    teacher = load_network(smoke_teacher)
    bank = load_or_build_bank(teacher, smoke_teacher, 24, 2, tmp_path, "cpu")
    assert bank["path"] == bank_path(smoke_teacher, 24, 2, tmp_path) and bank["path"].name.endswith("-nfe3-24.pt")
    assert bank["noise"].shape == bank["target"].shape == (24, 1, 8, 8) and bank["labels"].shape == (24, 0)
    again = load_or_build_bank(teacher, smoke_teacher, 24, 2, tmp_path, "cpu")  # read back, not solved again
    assert torch.equal(again["target"], bank["target"])
    one = DistInfo(rank=0, world=1, local_rank=0)
    epoch = torch.cat([bank_indices(k, 8, 24, seed=3, dist_info=one) for k in range(3)])
    assert sorted(epoch.tolist()) == list(range(24))  # every pair once per epoch
    straddle = bank_indices(2, 10, 24, seed=3, dist_info=one)  # images 20..29 cross into epoch 1
    assert straddle[:4].tolist() == epoch[20:].tolist()
    halves = [bank_indices(1, 8, 24, seed=3, dist_info=DistInfo(rank=r, world=2, local_rank=r)) for r in (0, 1)]
    assert torch.cat(halves).tolist() == epoch[8:16].tolist()  # two processes split the one-process batch
    # the smoke instance preset with a bank trains from it
    from paperlib.presets import preset_config
    from paperlib.training import train

    summary = train(preset_config("smoke-instance", run_dir=str(tmp_path / "run"), teacher=smoke_teacher,
                                  instance_bank=32, total_kimg=0.032), progress=False)
    assert summary["instance_bank"]["size"] == 32 and (tmp_path / Path(summary["instance_bank"]["file"]).name).exists()
    # runs in other folders share one bank folder: the pool builds the bank once before its workers start, and a
    # run then reads it (the folder is where a file lies, not what the run is: its record's config leaves it out)
    from paperlib.study.jobs import Job
    from paperlib.study.ledger import portable_config
    from paperlib.study.pool import build_banks

    shared = tmp_path / "banks"
    jobs = [Job(f"s{s}", "smoke-instance", str(tmp_path / f"r{s}" / "run"), dict(
        teacher=smoke_teacher, instance_bank=40, bank_dir=str(shared), seed=s, total_kimg=0.016)) for s in (1, 2)]
    lines = []
    build_banks(jobs, lines.append)
    build_banks(jobs, lines.append)
    assert len(lines) == 1 and len(list(shared.glob("instance-bank-*-40.pt"))) == 1
    summary = train(preset_config(jobs[1].preset, run_dir=jobs[1].run_dir, **jobs[1].overrides), progress=False)
    assert Path(summary["instance_bank"]["file"]).parent == shared and not list((tmp_path / "r2").glob("*.pt"))
    assert portable_config(jobs[0].config()) == portable_config(dict(jobs[0].config(), bank_dir=""))


def test_mini_run_with_cached_real_features_equals_recomputing_them(tmp_path, monkeypatch):
    """The mini presets' discriminator looks up the training digits' frozen features instead of recomputing them
    in every D step (paperlib.discriminator_training.RealFeatureCache): two GDD-I iterations (the
    second generator step meets the D trained on cached reals) give the generator of the cache switched off, bit for bit."""
    from paperlib.discriminator_training import RealFeatureCache

    def run(name):
        train(preset_config("digits-gddi", run_dir=str(tmp_path / name), total_kimg=0.128, snapshot_kimg=0.128,
                            log_kimg=0.064), progress=False)
        return load_network(tmp_path / name / "network.safetensors").state_dict()

    hits, lookup = [], RealFeatureCache.lookup

    def counted(self, x):
        maps = lookup(self, x)
        hits.append(maps is not None)
        return maps

    monkeypatch.setattr(RealFeatureCache, "lookup", counted)
    cached = run("cached")
    assert sum(hits) == 2  # the D step's reals, once per iteration
    monkeypatch.setattr(RealFeatureCache, "lookup", lambda self, x: None)
    recomputed = run("recomputed")
    assert all(torch.equal(cached[k], recomputed[k]) for k in cached)


# Short runs of each objective (teacher, GDD with the small D, GDD-I with the mini projected D, instance
# distillation from a bank), keyed by the kind of CPU and thread count: bit-for-bit equality holds only on the same
# kind (other kinds round otherwise). The pins of the three kinds come from the same code, so a CI machine of any of
# these kinds runs this test instead of skipping it.
PINNED_WEIGHTS = {
    ("Intel(R) Xeon(R) Processor", "AVX512", False, 2): dict(
        teacher="c09f7eb575f9cae5", gdd="8f4f0effd749fd0b", gddi="307fd58340ac2562", instance="f0b6eae6a87335cc"),
    ("AMD EPYC", "AVX512", False, 2): dict(
        teacher="0d59686e46a21749", gdd="d4a1bc5124f2f555", gddi="c0a3c88393552082", instance="6cb6bf0032aee1b3"),
    ("AMD EPYC", "AVX2", False, 2): dict(
        teacher="47b54036aa248401", gdd="430481d96b4da082", gddi="089f04f175e074d2", instance="e3585957cba4af5f"),
}


def test_short_runs_train_to_the_weights_pinned_for_this_kind_of_cpu(tmp_path, smoke_teacher):
    with torch_threads(PINNED_THREADS):
        check_pinned_weights(tmp_path, smoke_teacher)


def check_pinned_weights(tmp_path, smoke_teacher):
    import hashlib

    from safetensors.torch import load_file

    from paperlib.store.provenance import machine

    info = machine()
    kind = (info["cpu"], info["cpu_capability"], "amx_tile" in Path("/proc/cpuinfo").read_text(), torch.get_num_threads())
    if kind not in PINNED_WEIGHTS:
        pytest.skip(f"no weights pinned for {kind}")

    def digest(path):
        tensors, h = load_file(str(path)), hashlib.sha256()
        for k in sorted(tensors):
            h.update(k.encode())
            h.update(tensors[k].contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:16]

    got = dict(teacher=digest(smoke_teacher))
    projected = dict(discriminator="projected", bn_group=16, r1_gamma=None, r1_gamma_sum=1e-4,
                     discriminator_kwargs=dict(backbones="digits", width=0.125))
    small = dict(discriminator="small", discriminator_kwargs=dict(channels=16), bn_group=0, r1_gamma=1e-3,
                 r1_gamma_sum=0.0)  # the pins were made with these settings; the smoke presets' own may move
    for name, preset, extra in (("gdd", "smoke-gdd", small), ("gddi", "smoke-gddi", projected),
                                ("instance", "smoke-instance", dict(instance_bank=64))):
        train(preset_config(preset, run_dir=str(tmp_path / name), teacher=smoke_teacher, **extra), progress=False)
        got[name] = digest(tmp_path / name / "network.safetensors")
    assert got == PINNED_WEIGHTS[kind]
