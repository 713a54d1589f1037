"""Checks of the GPU paths (skipped without a CUDA device; CI has none, so they run on a lent GPU machine through
``benchmarks/gpu_checks.sh``): on CUDA paperlib computes what it computes on the CPU, bf16 stays close to fp32, and
the fused optimizer and the sync-free step change nothing."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY_ADM, TINY_SONG, randomize

from paperlib.devices import DistInfo, configure_backends
from paperlib.objectives import GDDObjective
from paperlib.precond import build_network
from paperlib.presets import preset_config
from paperlib.training import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm()).item()


def test_backends_are_set_as_the_reference():
    configure_backends(CUDA)
    assert torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("arch", [TINY_SONG, TINY_ADM], ids=["SongUNet", "DhariwalUNet"])
def test_fp32_forward_on_cuda_matches_cpu_and_bf16_stays_close(arch):
    configure_backends(CUDA)
    torch.manual_seed(0)
    net = randomize(build_network("GDDPrecond", **arch)).eval()
    sigma = torch.tensor([80.0, 10.0, 1.0, 0.3, 0.05, 0.002]).reshape(-1, 1, 1, 1)
    x = torch.randn(6, 3, 8, 8) * sigma  # noisy inputs at their own sigma: no row's skip path swamps the others
    cpu = net(x, sigma)
    gpu = net.to(CUDA)(x.to(CUDA), sigma.to(CUDA))
    assert relative_error(gpu, cpu) < 1e-5
    net.use_fp16 = True  # bf16 backbone on CUDA; GroupNorm, softmax and the output combination in fp32
    bf16 = net(x.to(CUDA), sigma.to(CUDA))
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert 1e-4 < relative_error(bf16, cpu) < 3e-2  # really bf16 (~3e-3 on CPU bf16), and close


def _gdd_steps(teacher: str, device: torch.device, steps: int = 3):
    """Losses of ``steps`` GDD steps (R1 in each) and the generator's weight update, from fixed CPU noise."""
    cfg = preset_config("smoke-gdd", teacher=teacher, r1_interval=1, device=device.type)
    torch.manual_seed(0)  # the discriminator's initial weights
    objective = GDDObjective(cfg, DistInfo(), None, device)
    before = [p.detach().clone() for p in objective.net.parameters()]
    gen = torch.Generator().manual_seed(1)
    noise = lambda shape: torch.randn(list(shape), generator=gen).to(device)  # noqa: E731
    shape = (cfg.batch, objective.net.img_channels, objective.net.img_resolution, objective.net.img_resolution)
    images = torch.rand(shape, generator=torch.Generator().manual_seed(2)).to(device) * 2 - 1
    losses = [objective.step(k, k * cfg.batch, images, None, noise) for k in range(1, steps + 1)]
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(objective.net.parameters(), before)])
    return losses, update, objective


def test_gdd_steps_on_cuda_match_cpu(smoke_teacher):
    configure_backends(CUDA)
    cpu_losses, cpu_update, _ = _gdd_steps(smoke_teacher, torch.device("cpu"))
    gpu_losses, gpu_update, objective = _gdd_steps(smoke_teacher, CUDA)
    assert all(o.adam.defaults["fused"] for o in objective.optimizers.values())
    for c, g in zip(cpu_losses, gpu_losses):
        assert set(c) == set(g) == {"loss_G", "loss_D", "logits_real", "logits_fake", "loss_R1"}
        assert all(v.device.type == "cuda" for v in g.values())  # returned without a host sync
        for name in c:
            assert abs(float(g[name]) - float(c[name])) <= 1e-4 * max(1.0, abs(float(c[name]))), name
    # Adam's first steps are close to sign(g) * lr, so an element with a near-zero gradient may step the other way.
    assert relative_error(gpu_update, cpu_update) < 0.05
    assert objective.sanitized_steps == 0


def test_bf16_training_on_cuda_runs_end_to_end(tmp_path, smoke_teacher):
    summary = train(preset_config("smoke-gddi", run_dir=str(tmp_path / "run"), teacher=smoke_teacher, device="cuda",
                                  bf16=True, total_kimg=0.16), progress=False)
    assert summary["nimg"] >= 160 and summary["sanitized_steps"] == 0

    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(np.isfinite(v) for l in lines for v in l.values() if isinstance(v, float))
    assert lines[-1]["peak_mem_mb"] > 0


def test_tf32_channels_last_training_on_cuda_runs(tmp_path, smoke_teacher):
    """The opt-in tf32 + channels-last run: a channels-last weight once got a contiguous gradient, which the fused
    CUDA Adam refused."""
    summary = train(preset_config("smoke-gddi", run_dir=str(tmp_path / "run"), teacher=smoke_teacher, device="cuda",
                                  bf16=True, tf32=True, channels_last=True, total_kimg=0.08), progress=False)
    assert summary["nimg"] >= 80 and summary["sanitized_steps"] == 0


def test_one_step_sampling_on_cuda_is_fp32_unless_asked(smoke_teacher):
    from paperlib.diffusion import SeedRandom, generate
    from paperlib.store.checkpoints import generator_from_teacher

    configure_backends(CUDA)
    net = generator_from_teacher(smoke_teacher).to(CUDA)
    net.use_fp16 = True
    latents = SeedRandom(range(8), CUDA).randn([8, net.img_channels, net.img_resolution, net.img_resolution])
    cpu = generator_from_teacher(smoke_teacher).generate(latents.cpu())  # the same latents, fp32 on the CPU
    gpu = generate(net, range(8), device=CUDA).images.cpu()
    bf16 = generate(net, range(8), device=CUDA, bf16=True).images.cpu()
    assert relative_error(gpu, cpu) < 1e-4 < relative_error(bf16, cpu)
