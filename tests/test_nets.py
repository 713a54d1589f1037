"""Architectures: state-dict names, order, shapes and dtypes equal EDM's for every paper configuration."""

from pathlib import Path

import pytest
import torch
from conftest import TINY_ADM, TINY_SONG

from paperlib.precond import build_network

DATA = Path(__file__).parent / "data"
NCSNPP = dict(model_type="SongUNet", embedding_type="fourier", encoder_type="residual", decoder_type="standard",
              channel_mult_noise=2, resample_filter=[1, 3, 3, 1], model_channels=128, channel_mult=[2, 2, 2])
DDPMPP = dict(model_type="SongUNet", embedding_type="positional", encoder_type="standard", decoder_type="standard",
              channel_mult_noise=1, resample_filter=[1, 1], model_channels=128, channel_mult=[2, 2, 2])
ADM = dict(model_type="DhariwalUNet", model_channels=192, channel_mult=[1, 2, 3, 4])
CONFIGS = {
    "cifar10-32x32-uncond-ncsnpp": dict(img_resolution=32, img_channels=3, **NCSNPP),
    "cifar10-32x32-cond-ncsnpp": dict(img_resolution=32, img_channels=3, label_dim=10, **NCSNPP),
    "ffhq-afhqv2-64x64-uncond-ncsnpp": dict(img_resolution=64, img_channels=3, **dict(NCSNPP, channel_mult=[1, 2, 2, 2])),
    "imagenet-64x64-cond-adm": dict(img_resolution=64, img_channels=3, label_dim=1000, **ADM),
    "cifar10-32x32-uncond-ddpmpp": dict(img_resolution=32, img_channels=3, **DDPMPP),
}


def read_keys(name):
    rows = []
    for line in (DATA / name).read_text().splitlines():
        key, shape, dtype, kind = line.split("\t")
        rows.append((key, [int(d) for d in shape.strip("[]").split(",") if d], dtype, kind))
    return rows


def observed(net):
    params = {id(p) for p in net.parameters()}
    return [(k, list(v.shape), str(v.dtype).replace("torch.", ""), "param" if id(v) in params else "buffer")
            for k, v in net.state_dict(keep_vars=True).items()]


def build_meta(precond, **kwargs):
    with torch.device("meta"):  # shapes only: building the 296M-parameter ADM for real would cost seconds and GBs
        return build_network(precond, **kwargs)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_state_dict_with_augment_matches_edm(config):
    kwargs = dict(CONFIGS[config], dropout=0.13, augment_dim=9)
    expected = read_keys(f"{config}.txt")
    if "imagenet" in config:  # EDM's ImageNet model has no augmentation; with augment_dim, ADM adds map_augment first
        expected = [("model.map_augment.weight", [192, 9], "float32", "param")] + expected
    assert observed(build_meta("EDMPrecond", **kwargs)) == expected


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_state_dict_without_augment_matches_gdd_generator(config):
    net = build_meta("GDDPrecond", **dict(CONFIGS[config], dropout=0.0))
    assert observed(net) == read_keys(f"{config}.gdd.txt")


@pytest.mark.parametrize("precond", ["EDMPrecond", "VEPrecond", "VPPrecond"])
def test_preconditioners_share_key_names(precond):
    kwargs = dict(CONFIGS["cifar10-32x32-uncond-ddpmpp"], augment_dim=9)
    assert [r[0] for r in observed(build_meta(precond, **kwargs))] == [r[0] for r in read_keys("cifar10-32x32-uncond-ddpmpp.txt")]


def test_parameter_counts_match_spec():
    counts = {"cifar10-32x32-uncond-ncsnpp": 56_395_523, "imagenet-64x64-cond-adm": 295_899_267}
    for config, count in counts.items():
        net = build_meta("GDDPrecond", **CONFIGS[config])
        assert sum(p.numel() for p in net.parameters()) == count


@pytest.mark.parametrize("arch", [TINY_SONG, TINY_ADM,
                                  dict(TINY_SONG, embedding_type="positional", encoder_type="skip", decoder_type="skip"),
                                  dict(TINY_SONG, encoder_type="standard", channel_mult=[1], attn_resolutions=[8]),
                                  dict(TINY_SONG, img_resolution=16, channel_mult=[1, 2, 2], label_dim=10, augment_dim=9)])
def test_tiny_configurations_run_forward_and_backward(arch):
    net = build_network("EDMPrecond", **arch)
    b, r = 3, arch["img_resolution"]
    x = torch.randn(b, 3, r, r, requires_grad=True)
    labels = torch.eye(arch["label_dim"])[:b] if arch.get("label_dim") else None
    aug = torch.randn(b, arch["augment_dim"]) if arch.get("augment_dim") else None
    out = net(x, torch.tensor([0.1, 1.0, 80.0]), labels, augment_labels=aug)
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_gdd_coefficients_at_sigma_80_match_reference(tiny_net):
    net = tiny_net("GDDPrecond")
    c_skip, c_out, c_in, c_noise = net.coefficients(torch.tensor(80.0).reshape(1, 1, 1, 1))
    assert c_skip.item() == pytest.approx(3.9063e-5, rel=1e-4)
    assert c_out.item() == pytest.approx(0.4999777, rel=1e-6)
    assert c_in.item() == pytest.approx(0.01249976, rel=1e-6)
    assert c_noise.item() == pytest.approx(1.095507, rel=1e-6)


def test_gdd_boundary_condition_and_edm_equivalence(tiny_net):
    gdd = tiny_net("GDDPrecond")
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(gdd(x, gdd.eps), x, rtol=0, atol=1e-6)  # G(x; eps) = x
    edm = build_network("EDMPrecond", **{k: v for k, v in gdd.init_kwargs.items() if k != "eps"})
    edm.load_state_dict(gdd.state_dict())
    gdd.eps = 0.0  # with eps = 0 the boundary form is exactly EDM's preconditioning
    torch.testing.assert_close(gdd(x, 2.0), edm.eval()(x, 2.0))


def test_one_step_generator_evaluates_at_sigma_80(tiny_net):
    gdd = tiny_net("GDDPrecond")
    z = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(gdd.generate(z), gdd(80 * z, 80.0))


def test_conditional_network_requires_labels(tiny_net):
    net = tiny_net(label_dim=10)
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="class-conditional"):
        net(x, 1.0)
    with pytest.raises(ValueError, match=r"expected \[2, 10\]"):
        net(x, 1.0, torch.eye(10)[:3])
    with pytest.raises(ValueError, match="unconditional"):
        tiny_net()(x, 1.0, torch.eye(10)[:2])


def test_wrong_input_shape_is_a_clear_error(tiny_net):
    with pytest.raises(ValueError, match=r"expects \[B, 3, 8, 8\]"):
        tiny_net()(torch.randn(2, 1, 8, 8), 1.0)


def test_bad_architecture_arguments():
    with pytest.raises(ValueError, match="encoder_type"):
        build_network("EDMPrecond", **dict(TINY_SONG, encoder_type="bogus"))
    with pytest.raises(ValueError, match="model_type"):
        build_network("EDMPrecond", **dict(TINY_SONG, model_type="Bogus"))
    with pytest.raises(ValueError, match="preconditioner"):
        build_network("Bogus", **TINY_SONG)


def test_bf16_path_is_opt_in_on_cpu(tiny_net):
    net = tiny_net("GDDPrecond")
    z = torch.randn(2, 3, 8, 8)
    reference = net.generate(z)
    seen = []
    hook = net.model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(args[0].dtype), with_kwargs=True)
    net.use_fp16 = True  # as an EDM checkpoint may say: still fp32 on the CPU
    assert torch.equal(net.generate(z), reference) and seen[-1] == torch.float32
    net.bf16_on_cpu = True  # TrainConfig.bf16 on a CPU
    out = net.generate(z)
    hook.remove()
    assert seen[-1] == torch.bfloat16 and out.dtype == torch.float32
    assert not torch.equal(out, reference) and torch.allclose(out, reference, rtol=0.05, atol=0.05 * reference.abs().max().item())
