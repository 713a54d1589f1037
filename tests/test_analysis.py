"""Layer activation versus noise level: hooks, statistics, controls, generator comparison and bad input."""

import numpy as np
import pytest
import torch
from conftest import TINY_ADM, TINY_SONG, randomize
from test_nets import CONFIGS, build_meta, read_keys

from paperlib.analysis import (
    ActivationRecorder,
    AnalysisError,
    LayerActivations,
    batch_noise_similarity,
    compare_generator,
    conv_layers,
    generator_pattern,
    layer_activations,
    layer_study,
    pearson,
    randomised_copy,
    sigma_grid,
    summarise,
)
from paperlib.nets.layers import Conv2d
from paperlib.precond import build_network
from paperlib.store.checkpoints import generator_from_teacher, save_network


def conv_keys(config):
    return [k[len("model."):-len(".weight")] for k, shape, _, _ in read_keys(f"{config}.txt")
            if len(shape) == 4 and k.endswith(".weight")]


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_convolution_of_the_paper_networks_is_hooked_once(config):
    net = build_meta("EDMPrecond", **dict(CONFIGS[config], dropout=0.0))
    expected = conv_keys(config)
    assert sorted(conv_layers(net)) == sorted(expected) and len(expected) > 50
    # A forward pass (shapes only, on the meta device) calls each of them exactly once.
    names = {m: n for n, m in conv_layers(net).items()}
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: calls.append(names[m]) if m in names else None)
    try:
        with torch.device("meta"):
            labels = torch.zeros(2, net.label_dim) if net.label_dim else None
            x = torch.zeros(2, 3, net.img_resolution, net.img_resolution)
            net(x, torch.ones(2), labels)
    finally:
        handle.remove()
    assert sorted(calls) == sorted(expected)


@pytest.mark.parametrize("arch", [TINY_SONG, TINY_ADM], ids=["songunet", "adm"])
def test_recorder_sees_every_convolution_once_in_execution_order(arch):
    net = randomize(build_network("EDMPrecond", **arch)).eval()
    order = []
    convs = {m: n for n, m in conv_layers(net).items()}
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: order.append(convs[m]) if m in convs else None)
    with ActivationRecorder(net) as rec:
        net(torch.randn(3, 3, 8, 8), torch.ones(3))
    handle.remove()
    assert rec.order == order and len(order) == len(convs) and set(rec.calls.values()) == {1}
    assert not any(m._forward_hooks for m in convs)  # hooks removed on exit


def test_statistics_equal_hand_computed_values(tiny_net):
    net = tiny_net()
    stem_name = next(iter(conv_layers(net)))
    stem = conv_layers(net)[stem_name]
    bias = torch.tensor([(-1.0) ** c * (c + 1) for c in range(stem.out_channels)])
    with torch.no_grad():  # hand-set: the stem outputs its bias everywhere, whatever the input
        stem.weight.zero_()
        stem.bias.copy_(bias)
    images = torch.rand(4, 3, 8, 8) * 2 - 1
    acts = layer_activations(net, images, sigma_grid(3, 0.01, 10.0), batch=3, progress=False)
    i = acts.layers.index(stem_name)
    assert np.allclose(acts.channel_mean[i], bias.numpy()[:, None])
    assert np.allclose(acts.mean_abs[i], bias.abs().mean().item())
    assert np.allclose(acts.similarity(i), 1.0)

    # A later layer against its raw outputs, captured separately.
    name = acts.layers[3]
    module = conv_layers(net)[name]
    captured = []
    h = module.register_forward_hook(lambda m, i, o: captured.append(o.detach().clone()))
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net(images + 10.0 * noise, 10.0)
    h.remove()
    y = captured[0]
    assert acts.mean_abs[3, -1] == pytest.approx(y.abs().mean().item(), rel=1e-5)
    assert np.allclose(acts.channel_mean[3][:, -1], y.mean(dim=(0, 2, 3)).numpy(), atol=1e-6)


def test_derived_quantities_on_hand_made_patterns():
    sigmas = np.array([0.1, 1.0, 10.0])
    ch = np.array([[1.0, 2.0, 4.0], [-3.0, 1.0, 0.5], [0.0, 0.0, 2.0]])  # [C=3, S=3]
    acts = LayerActivations(["a"], sigmas, np.array([[1.0, 4.0, 2.0]]), [ch])
    assert np.allclose(acts.heatmap, [[0.25, 1.0, 0.5]])
    assert acts.peak_sigma.tolist() == [1.0]
    # |ch| > half its own max: c0 [F, F, T], c1 [T, F, F], c2 [F, F, T]
    assert np.allclose(acts.active_fraction, [[1 / 3, 0, 2 / 3]])
    r = acts.similarity(0)
    assert r[0, 1] == pytest.approx(np.corrcoef(ch[:, 0], ch[:, 1])[0, 1]) and np.allclose(np.diag(r), 1)
    assert pearson(np.ones((3, 1)), ch)[0].tolist() == [0, 0, 0]  # no variation: no defined correlation
    zero = LayerActivations(["z"], sigmas, np.zeros((1, 3)), [np.zeros((2, 3))])
    assert np.all(zero.heatmap == 0) and np.all(zero.active_fraction == 0)


def test_controls_and_generator_comparison(tmp_path, tiny_net):
    teacher = tiny_net()
    images = torch.rand(16, 3, 8, 8) * 2 - 1
    sigmas = sigma_grid(4)
    a = layer_activations(teacher, images[:8], sigmas, progress=False)
    b = layer_activations(teacher, images[8:], sigmas, noise_seed=1, progress=False)
    floor = batch_noise_similarity(a, b)
    assert floor.shape == (len(a.layers), 4) and np.all(np.abs(floor) <= 1 + 1e-9)
    untrained = layer_activations(randomised_copy(teacher), images[:8], sigmas, progress=False)
    assert untrained.layers == a.layers and not np.allclose(untrained.mean_abs, a.mean_abs)

    save_network(teacher, tmp_path / "teacher.safetensors")
    generator = generator_from_teacher(tmp_path / "teacher.safetensors")
    cmp = compare_generator(teacher, a, generator, 8)
    assert cmp["match"].shape == (len(a.layers), 4) and np.all(cmp["weight_change"] == 0)  # untouched copy
    with torch.no_grad():
        conv_layers(generator)[a.layers[2]].weight.mul_(2)
    cmp = compare_generator(teacher, a, generator, 8)
    assert cmp["weight_change"][2] == pytest.approx(1.0) and np.sum(cmp["weight_change"] > 0) == 1
    summary = summarise(a, untrained, floor, {"GDD": cmp})
    assert summary["GDD"]["unchanged_layers"] == len(a.layers) - 1 and isinstance(summary["layers_differ_across_sigma"], bool)


def test_layer_study_end_to_end_and_bad_input(tmp_path, smoke_teacher):
    teacher_gen = tmp_path / "gen.safetensors"
    from paperlib.store.checkpoints import load_network

    save_network(generator_from_teacher(smoke_teacher), teacher_gen)
    study = layer_study(smoke_teacher, {"GDD": str(teacher_gen)}, num_sigmas=32, batch=16, progress=False)
    assert study["trained"].mean_abs.shape == (len(study["trained"].layers), 32)
    assert study["summary"]["GDD"]["unchanged_layers"] == len(study["trained"].layers)

    with pytest.raises(AnalysisError, match="is a one-step generator; the teacher must be a diffusion model"):
        layer_study(str(teacher_gen), {}, batch=8, progress=False)
    with pytest.raises(AnalysisError, match="expected a one-step GDD generator"):
        generator_pattern(load_network(smoke_teacher), 4)
    with pytest.raises(AnalysisError, match="needs a paperlib denoiser"):
        conv_layers(Conv2d(3, 3, 3))
    with pytest.raises(AnalysisError, match="two independent batches of 1000 need 2000"):
        layer_study(smoke_teacher, {}, batch=1000, progress=False)


def test_layer_study_reads_edm_pickles(tmp_path, smoke_teacher):
    from edm_pickle import write_edm_pickle

    from paperlib.store.checkpoints import load_network

    teacher = load_network(smoke_teacher)
    pkl = write_edm_pickle(teacher, tmp_path / "edm-digits.pkl")
    from_pickle = layer_study(str(pkl), {}, num_sigmas=4, batch=8, progress=False)
    from_file = layer_study(smoke_teacher, {}, num_sigmas=4, batch=8, progress=False)
    assert np.array_equal(from_pickle["trained"].mean_abs, from_file["trained"].mean_abs)


def test_sigma_grid_outside_the_network_range(tiny_net):
    ve = tiny_net("VEPrecond")  # sigma in [0.02, 100]
    with pytest.raises(AnalysisError, match=r"sigma grid \[0.002, 80\] lies outside this network's range \[0.02, 100\]"):
        layer_activations(ve, torch.zeros(2, 3, 8, 8), sigma_grid(32), progress=False)
    with pytest.raises(AnalysisError, match="0 < sigma_min < sigma_max"):
        sigma_grid(32, 1.0, 0.5)
    assert len(sigma_grid(32)) == 32 and sigma_grid(32)[0] == pytest.approx(0.002) and sigma_grid(32)[-1] == pytest.approx(80)
