"""The projected discriminator: BatchNorm statistics over fixed groups (independent of the process count), the
authors' class embedding read safely, and the conditional heads' refusal to start from nothing silently."""

import copy
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F

from paperlib.discriminator_training import FastPath, RealFeatureCache, TrainingDiscriminator
from paperlib.discriminators import GroupBatchNorm2d, ProjectedDiscriminator, RandomBackboneWarning
from paperlib.store.checkpoints import CheckpointError, read_class_embedding

TINY = dict(backbones=("tf_efficientnet_lite0",), resize=64)  # random weights, small input: seconds on a CPU


def tiny_projected(**kwargs) -> ProjectedDiscriminator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomBackboneWarning)
        torch.manual_seed(0)
        return ProjectedDiscriminator(**{**TINY, **kwargs}).train()


def test_group_batchnorm_equals_batchnorm_per_group():
    torch.manual_seed(0)
    bn = GroupBatchNorm2d(5, group=4)
    with torch.no_grad():
        bn.weight.normal_(), bn.bias.normal_()
    x = torch.randn(12, 5, 3, 3) * 3 + 1
    reference = torch.nn.BatchNorm2d(5, track_running_stats=False)
    reference.load_state_dict(bn.state_dict())
    expected = torch.cat([reference(chunk) for chunk in x.split(4)])
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-5)
    assert not bn.track_running_stats and bn.running_mean is None  # nothing that depends on the process count
    with pytest.raises(ValueError, match="groups of 4 images do not divide a batch of 6"):
        bn(x[:6])


def test_projected_discriminator_on_two_groups_equals_each_half():
    """In training mode D(x) on 2 x bn_group images is D on each half, concatenated: what one process computes on a
    batch of 2 x bn_group is what two processes compute on theirs."""
    D = tiny_projected(bn_group=4)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    # Each call from the same state: a training forward advances spectral norm's power iteration.
    whole = copy.deepcopy(D)(x, None)
    halves = [copy.deepcopy(D)(h, None) for h in x.split(4)]
    for k, logits in enumerate(whole):
        torch.testing.assert_close(logits, torch.cat([h[k] for h in halves]), rtol=1e-4, atol=1e-5)
    ungrouped = copy.deepcopy(tiny_projected(bn_group=0))(x, None)  # statistics over all 8 images differ
    assert not torch.allclose(ungrouped[0], whole[0], atol=1e-4)


def write_embedding_pickle(path, rows=1000, dim=320):
    torch.manual_seed(3)
    embed = torch.nn.Embedding(rows, dim)
    with open(path, "wb") as f:
        pickle.dump({"embed": embed}, f)
    return embed.weight.detach().clone()


def test_class_embedding_is_read_without_running_code(tmp_path):
    path = tmp_path / "tf_efficientnet_lite0.pkl"
    weight = write_embedding_pickle(path)
    table = read_class_embedding(path)
    assert table.shape == (1000, 320) and torch.equal(table, weight)
    D = tiny_projected(label_dim=10, class_embedding=str(path))
    for head in D.heads[0]:  # every head starts from the file's table (and trains it)
        assert torch.equal(head.cond.embed.weight.detach(), weight) and head.cond.embed.weight.requires_grad
    write_embedding_pickle(tmp_path / "small.pkl", rows=10)
    with pytest.raises(CheckpointError, match=r"small.pkl: expected a pickled \{'embed': Embedding\(1000, 320\)\}"):
        read_class_embedding(tmp_path / "small.pkl")


class Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_malicious_class_embedding_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"embed": Exploit()}, f)
    with pytest.raises(CheckpointError, match=r"evil.pkl: refusing to load global '(posix|os)\.system'"):
        read_class_embedding(path)
    assert not (tmp_path / "pwned").exists()


def test_conditional_heads_need_an_explicit_embedding():
    with pytest.raises(ValueError, match="in_embeddings/tf_efficientnet_lite0.pkl"):
        tiny_projected(label_dim=10)
    random_rows = tiny_projected(label_dim=10, class_embedding="random")  # an explicit choice stays available
    assert random_rows.heads[0][0].cond.embed.num_embeddings == 1000


def test_conditional_paper_presets_name_the_embedding_file():
    from paperlib.config import ConfigError
    from paperlib.presets import preset_config

    with pytest.raises(ConfigError, match="class_embedding=/path/to/in_embeddings/tf_efficientnet_lite0.pkl"):
        preset_config("imagenet-64-gddi", teacher="t.pkl", dataset="d.zip")
    cfg = preset_config("cifar10-cond-gdd", teacher="t.pkl", dataset="d.zip",
                        discriminator_kwargs=dict(backbones="vgg16_bn+lite0", class_embedding="e.pkl"))
    assert cfg.discriminator_kwargs["class_embedding"] == "e.pkl"
    preset_config("cifar10-uncond-gdd", teacher="t.pkl", dataset="d.zip")  # unconditional: nothing needed


def test_spectral_norm_starts_as_the_reference_without_power_iterations():
    """PyTorch's parametrization runs 15 power iterations when built; the reference's hook-based spectral norm
    starts from random unit u, v. paperlib starts as the reference: u^T W v is then far from the top singular value."""
    from paperlib.discriminators import _spectral_norm

    torch.manual_seed(0)
    conv = _spectral_norm(torch.nn.Conv2d(64, 128, 4))
    sn = conv.parametrizations.weight[0]
    w = conv.parametrizations.weight.original.flatten(1)
    estimate = torch.dot(sn._u, w @ sn._v).abs()
    assert estimate < 0.5 * torch.linalg.matrix_norm(w, 2)
    assert torch.allclose(sn._u.norm(), torch.tensor(1.0)) and torch.allclose(sn._v.norm(), torch.tensor(1.0))


def test_adam_eps_scaled_to_mean_gradients_takes_the_reference_steps():
    """The reference's gradients are sums over a process's 64 images, paperlib's means: with eps / 64, Adam's
    steps are the same."""
    from paperlib.presets import preset_config

    assert preset_config("cifar10-uncond-gdd", teacher="t.pkl", dataset="d.zip").adam_eps == pytest.approx(1e-8 / 64)
    assert preset_config("digits-gdd").adam_eps == pytest.approx(1e-8 / 64)  # mini: the paper's D settings in miniature
    assert preset_config("digits-gddi-smalld").adam_eps == 1e-8  # the small discriminator has no reference convention
    grads = [torch.randn(50) * 1e-9 for _ in range(3)]  # small enough for eps to matter
    steps = []
    for scale, eps in ((64.0, 1e-8), (1.0, 1e-8 / 64)):
        p = torch.zeros(50, requires_grad=True)
        adam = torch.optim.Adam([p], lr=1e-3, betas=(0.0, 0.99), eps=eps)
        for g in grads:
            p.grad = g * scale
            adam.step()
        steps.append(p.detach().clone())
    torch.testing.assert_close(steps[0], steps[1], rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("shape, size", [((2, 3, 8, 8), 32), ((2, 3, 32, 32), 224), ((1, 2, 12, 9), 5)])
def test_resize_by_matmul_is_bilinear_interpolation(shape, size):
    """The fast path's resize (two matrix products) gives F.interpolate's bilinear resize, up and down, and its
    input gradient, to fp32 rounding."""
    from paperlib.discriminators import resize_bilinear_by_matmul

    x = torch.randn(shape, dtype=torch.float64).float().requires_grad_(True)
    want = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    got = resize_bilinear_by_matmul(x, size)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(want)
    (grad_want,), (grad_got,) = (torch.autograd.grad((y * weights).sum(), x) for y in (want, got))
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-5, atol=1e-5)


def test_fast_discriminator_stays_close_and_exact_passes_are_faithful():
    """fast_d runs the frozen feature networks in bf16 autocast. bf16 keeps 8 mantissa bits (relative rounding
    2^-9, about 2e-3, per operation); through EfficientNet-lite0's ~50 layers (random weights here) and the
    projection the logits move by about 1e-2 relative (measured 1.8e-2 here), so the bound is 5e-2. Inside exact()
    the path is the faithful fp32 one (its weights in channels-last layout change only the rounding)."""
    faithful = tiny_projected(bn_group=4)

    def fast():  # a fresh twin each time: the heads' spectral norms step at every call
        model = copy.deepcopy(faithful)
        return TrainingDiscriminator(model, FastPath(model))
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    want = copy.deepcopy(faithful)(x, None)[0]
    got = fast()(x, None)[0]
    relative = ((got - want).norm() / want.norm()).item()
    assert 1e-5 < relative < 5e-2  # really bf16, and close
    exact = fast()
    with exact.exact():
        torch.testing.assert_close(exact(x, None)[0], want, rtol=1e-5, atol=1e-5)
    assert not exact._exact


def test_compiled_fast_discriminator_runs_each_backbone_whole_and_exact_passes_bypass_it(monkeypatch):
    """With compile (CUDA), fast_d compiles each backbone's path from images to logits, features and heads. Here
    torch.compile's eager backend stands in for inductor (which takes minutes on a CPU): the compiled graphs must
    give the uncompiled fast path's logits and gradients, for the generator step (input gradient) and the
    discriminator step (head gradients), and passes inside exact() must not use them (R1's double backward)."""
    real_compile, calls = torch.compile, []

    def compile_eagerly(fn):
        compiled = real_compile(fn, backend="eager")
        return lambda *args: (calls.append(fn.args), compiled(*args))[1]

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    eager_model = tiny_projected(bn_group=4, backbones="digits", resize=None, width=0.125)  # two small backbones
    compiled_model = copy.deepcopy(eager_model)
    eager = TrainingDiscriminator(eager_model, FastPath(eager_model, compile=False))
    compiled = TrainingDiscriminator(compiled_model, FastPath(compiled_model, compile=True))
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    for heads_train in (False, True):  # generator step, then discriminator step
        grads = []
        for D in (eager, compiled):
            D.model.heads.requires_grad_(heads_train)
            xi = x.clone().requires_grad_(not heads_train)
            logits = D(xi, None)
            wrt = list(D.model.heads.parameters()) if heads_train else [xi]
            grads.append((logits, torch.autograd.grad(sum(l.square().sum() for l in logits), wrt)))
        (want, want_grads), (got, got_grads) = grads
        assert calls[-2:] == [(0,), (1,)]  # both backbones through their compiled path
        for w, g in zip(want + list(want_grads), got + list(got_grads)):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    before = len(calls)
    with compiled.exact():
        compiled(x, None)
    assert len(calls) == before


def test_fast_discriminator_trains_and_its_r1_takes_the_exact_path(monkeypatch, tmp_path):
    import paperlib.objectives as objectives_module
    from paperlib.config import TrainConfig
    from paperlib.devices import DistInfo
    from paperlib.objectives import GDDObjective
    from paperlib.precond import EDMPrecond
    from paperlib.presets import GENERATOR_CONFIGS
    from paperlib.store.checkpoints import save_network

    teacher = str(tmp_path / "teacher.safetensors")
    torch.manual_seed(0)
    save_network(EDMPrecond(**dict(GENERATOR_CONFIGS["mini"], model_channels=16, channel_mult=[1, 2], num_blocks=1)),
                 teacher)
    cfg = TrainConfig(teacher=teacher, batch=8, bn_group=4, r1_interval=2, discriminator="projected", fast_d=True,
                      discriminator_kwargs=TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomBackboneWarning)
        objective = GDDObjective(cfg, DistInfo(), None, torch.device("cpu"))
    modes = []
    original_r1 = objectives_module.r1_loss
    monkeypatch.setattr(objectives_module, "r1_loss", lambda D, *a: (modes.append(D._exact), original_r1(D, *a))[1])
    before = [p.detach().clone() for p in objective.net.parameters()]
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    gen = torch.Generator().manual_seed(1)
    noise = lambda shape: torch.randn(list(shape), generator=gen)  # noqa: E731
    images = torch.rand(8, 1, 8, 8, generator=gen) * 2 - 1
    losses = [objective.step(k, 8 * k, images, None, noise) for k in range(3)]
    assert modes == [True] and "loss_R1" in losses[2]  # R1 at iteration 2 only, on the exact path
    assert all(torch.isfinite(v) for out in losses for v in out.values())
    assert any(not torch.equal(p, b) for p, b in zip(objective.net.parameters(), before))
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == flags  # exact() restored them


def test_digits_backbones_are_shipped_pretrained_and_not_the_fid_network():
    """The mini scale's projected discriminator: two small digits classifiers of different designs, pretrained on the
    training split only and shipped; neither is the FID feature network."""
    from safetensors import safe_open

    from paperlib.digits_backbones import DIGITS_BACKBONES, asset_path, load_digits_backbone
    from paperlib.metrics import DIGITS_FEATNET

    with safe_open(str(DIGITS_FEATNET), "pt") as f:
        fid_keys = set(f.keys())
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    for name in DIGITS_BACKBONES:
        with safe_open(str(asset_path(name)), "pt") as f:
            assert float(f.metadata()["test_accuracy"]) > 0.95  # a real classifier (held-out accuracy, reported only)
            assert not set(f.keys()) & fid_keys
        maps = load_digits_backbone(name)(x)
        assert [m.shape[-1] for m in maps] == [16, 8, 4, 2]  # a four-scale pyramid
    vgg, mbnet = (load_digits_backbone(n) for n in DIGITS_BACKBONES)
    assert vgg.channels != mbnet.channels


def test_projected_discriminator_on_digits_trains_a_smoke_run(tmp_path, smoke_teacher):
    from paperlib.presets import preset_config
    from paperlib.training import train

    D = ProjectedDiscriminator("digits", label_dim=10, class_embedding="random", bn_group=4).train()
    logits = D(torch.rand(8, 1, 8, 8) * 2 - 1, torch.eye(10)[:8])
    assert len(logits) == 2 and all(l.shape[0] == 8 for l in logits)  # one logit set per backbone
    summary = train(preset_config("smoke-gdd", run_dir=str(tmp_path / "run"), teacher=smoke_teacher, total_kimg=0.016,
                                  discriminator="projected", discriminator_kwargs=dict(backbones="digits"), bn_group=16),
                    progress=False)  # one step of the paper-width discriminator
    assert summary["nimg"] == 16 and summary["sanitized_steps"] == 0


def test_digits_backbone_training_regenerates_a_loadable_file(tmp_path):
    from paperlib.digits_backbones import load_digits_backbone, train_digits_backbone

    result = train_digits_backbone("digits_vgg", epochs=1, out=tmp_path / "vgg.safetensors")
    assert 0 <= result["test_accuracy"] <= 1
    assert load_digits_backbone("digits_vgg", tmp_path / "vgg.safetensors").channels == (16, 32, 64, 128)


def test_projected_discriminator_width_scales_projections_and_heads():
    """Mini scale runs the paper's design at 1/8 of its channels; width 1 is the paper's discriminator."""
    full, mini = ProjectedDiscriminator("digits"), ProjectedDiscriminator("digits", width=0.125)
    assert full.features[0].projection.out_channels == (64, 64, 128, 256)
    assert mini.features[0].projection.out_channels == (8, 8, 16, 32)
    assert sum(p.numel() for p in mini.heads.parameters()) < sum(p.numel() for p in full.heads.parameters()) / 30
    logits = mini(torch.rand(4, 1, 8, 8) * 2 - 1, None)
    assert [l.shape for l in logits] == [l.shape for l in full(torch.rand(4, 1, 8, 8) * 2 - 1, None)]
    with pytest.raises(ValueError, match="width: expected a fraction in \\(0, 1\\]"):
        ProjectedDiscriminator("digits", width=2)


@pytest.mark.parametrize("threads", [1, 2])
def test_cached_real_features_give_the_recomputed_logits_bit_for_bit(threads):
    """The mini discriminator's features of the training images are computed once (in batches of the training
    batch) and looked up for any batch of those images; the logits equal a full recomputation exactly, a batch with
    an unknown image or one that needs an input gradient (R1) is recomputed."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = ProjectedDiscriminator("digits", width=0.125, bn_group=64)
        reals = (torch.randint(0, 256, (150, 1, 8, 8)).float() / 127.5 - 1)
        cache = RealFeatureCache(model.feature_maps, len(model.features), reals, batch=64)
        plain = TrainingDiscriminator(copy.deepcopy(model))  # the heads' spectral norms step at every call: twins
        D = TrainingDiscriminator(model, cache=cache)
        assert not cache.known.any()  # nothing computed before a batch asks for it
        for _ in range(3):
            batch = reals[torch.randperm(150)[:64]]
            assert cache.lookup(batch) is not None
            assert all(torch.equal(a, b) for a, b in zip(D(batch, None, reals=True), plain(batch, None, reals=True)))
        unknown = torch.cat([reals[:63], torch.zeros(1, 1, 8, 8)])
        assert cache.lookup(unknown) is None
        assert cache.lookup(reals[:64].clone().requires_grad_(True)) is None
        rest = reals[~cache.known]  # the images no batch has asked for yet, computed in a short chunk padded to 64
        direct = model.feature_maps(0, torch.cat([rest, reals[:64 - len(rest)]]))
        assert 0 < len(rest) < 64 and all(torch.equal(a, b[:len(rest)]) for a, b in zip(cache.lookup(rest)[0], direct))
        assert cache.known.all()
    finally:
        torch.set_num_threads(previous)


def test_spectral_norm_steps_as_the_reference_hook_v_then_u():
    """The heads' spectral norm runs the reference's power iteration (torch.nn.utils.spectral_norm, hook-based: v
    from u, then u from v), not PyTorch's parametrization's (u first): from the same vectors, the same weights."""
    from torch.nn.utils.parametrizations import spectral_norm as parametrized

    from paperlib.discriminators import _spectral_norm

    torch.manual_seed(0)
    layer = torch.nn.Conv2d(32, 64, 4)
    reference = torch.nn.utils.spectral_norm(copy.deepcopy(layer))
    ours, pytorch = _spectral_norm(copy.deepcopy(layer)), parametrized(copy.deepcopy(layer))
    for module in (ours, pytorch):
        sn = module.parametrizations.weight[0]
        sn._u.copy_(reference.weight_u)
        sn._v.copy_(reference.weight_v)
    x = torch.randn(2, 32, 6, 6)
    for _ in range(3):  # training forwards: one power iteration each
        want = reference(x)
        torch.testing.assert_close(ours(x), want, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(pytorch(x), reference(x), rtol=1e-4, atol=1e-4)
