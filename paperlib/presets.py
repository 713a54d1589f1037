"""Named training configurations: the paper's ten runs, the mini (digits, CPU) runs and the smoke (test) runs.

Paper hyperparameters follow the authors' ``train.sh`` (Zyriix/GDD): 4 processes per run, so 64 images per
process (ImageNet: 128). That per-process batch is one knob, ``bn_group``: the projected discriminator's BatchNorm
statistics are taken over groups of that many images, and the R1 weight is given in the reference's convention
(``r1_gamma_sum = 1e-4``, losses summed over each process's images) and converted to paperlib's mean-over-samples
convention through it (gamma = 1e-4 / bn_group, see ``paperlib.losses``), whatever the number of GPUs.
"""

from __future__ import annotations

from paperlib.assets import MINI_TEACHERS
from paperlib.config import ConfigError, TrainConfig

# The paper's datasets: (preset prefix, resolution, the teacher file as EDM released it).
PAPER_DATASETS = {"cifar10": ("cifar10-uncond", 32, "edm-cifar10-32x32-uncond-ve.pkl"),
                  "cifar10-cond": ("cifar10-cond", 32, "edm-cifar10-32x32-cond-ve.pkl"),
                  "afhqv2-64": ("afhqv2-64", 64, "edm-afhqv2-64x64-uncond-ve.pkl"),
                  "ffhq-64": ("ffhq-64", 64, "edm-ffhq-64x64-uncond-ve.pkl"),
                  "imagenet-64": ("imagenet-64", 64, "edm-imagenet-64x64-cond-adm.pkl")}
# The mini students' default budget: 48 kimg, 33 passes over the 1,437 training digits (the protocol's tables train
# 144 kimg, the paper's ~100 passes; its rate pilots 48).
MINI_KIMG = 48

# NCSN++-style SongUNet for 8x8 digits (8 -> 4 -> 2), 1.78M parameters.
MINI_ARCH = dict(model_type="SongUNet", embedding_type="fourier", encoder_type="residual", decoder_type="standard",
                 channel_mult_noise=2, resample_filter=[1, 3, 3, 1], model_channels=32, channel_mult=[1, 2, 2],
                 num_blocks=2, attn_resolutions=[4], dropout=0.0)
SMOKE_ARCH = dict(MINI_ARCH, model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])
NCSNPP = dict(model_type="SongUNet", embedding_type="fourier", encoder_type="residual", decoder_type="standard",
              channel_mult_noise=2, resample_filter=[1, 3, 3, 1], model_channels=128, channel_mult=[2, 2, 2])
# The generators' architectures (GDDPrecond init kwargs) at each width, for benchmarks: EDM's released
# configurations (56.4M, 62.8M and 295.9M parameters) and the mini one.
GENERATOR_CONFIGS = {
    "mini": dict(img_resolution=8, img_channels=1, **MINI_ARCH),
    "cifar10": dict(img_resolution=32, img_channels=3, dropout=0.0, **NCSNPP),
    "64x64": dict(img_resolution=64, img_channels=3, dropout=0.0, **dict(NCSNPP, channel_mult=[1, 2, 2, 2])),
    "imagenet-64": dict(img_resolution=64, img_channels=3, label_dim=1000, dropout=0.0, model_type="DhariwalUNet",
                        model_channels=192, channel_mult=[1, 2, 3, 4]),
}


_TEACHER_FILES = {prefix: teacher for prefix, _, teacher in PAPER_DATASETS.values()}


def _paper(prefix: str, backbones: str, batch: int, lr: float, d_lr: float, kimg: float, ema_kimg: float,
           conditional: bool) -> dict:
    per_process_batch = batch // 4  # the reference's train.sh runs 4 GPUs per command
    return dict(objective="gdd", conditional=conditional, batch=batch, lr=lr, d_lr=d_lr, total_kimg=kimg,
                ema_kimg=ema_kimg, discriminator="projected", discriminator_kwargs=dict(backbones=backbones),
                bn_group=per_process_batch, r1_gamma=None, r1_gamma_sum=1e-4, r1_interval=16, gan_loss="ns", bf16=True, seed=42,
                snapshot_kimg=250, log_kimg=25, dataset="", teacher=None, _teacher_name=_TEACHER_FILES[prefix])


_PAPER_RUNS = {
    prefix: _paper(prefix, *settings) for prefix, settings in {
        "cifar10-uncond": ("vgg16_bn+lite0", 256, 1e-4, 1e-4, 5000, 500, False),
        "cifar10-cond": ("vgg16_bn+lite0", 256, 1e-4, 1e-4, 5000, 500, True),
        "afhqv2-64": ("deit+lite0", 256, 2e-5, 4e-5, 10000, 500, False),
        "ffhq-64": ("deit+lite0", 256, 2e-5, 4e-5, 10000, 500, False),
        "imagenet-64": ("deit+lite0", 512, 8e-6, 4e-5, 10000, 50000, True)}.items()
}


def _mini_teacher(conditional: bool) -> dict:
    return dict(objective="edm", dataset="digits-8:train", conditional=conditional, arch=MINI_ARCH, batch=128,
                lr=2e-3, betas=[0.9, 0.999], lr_rampup_kimg=20, total_kimg=600, ema_kimg=30, ema_rampup=0.05,
                snapshot_kimg=100, log_kimg=10, num_workers=0)


# The mini discriminator is the paper's projected discriminator in miniature: two frozen digits classifiers of
# different designs (paperlib.digits_backbones) on 4x-upsampled digits, the frozen random CCM/CSM projections and
# multi-scale heads at 1/8 of the paper's channels, BatchNorm over the batch of 64 and R1 as the paper sets it.
MINI_PROJECTED = dict(discriminator="projected", bn_group=64, r1_gamma=None, r1_gamma_sum=1e-4)


def _mini_student(objective: str, conditional: bool, freeze_level: int) -> dict:
    d_kwargs = dict(backbones="digits", width=0.125, **(dict(class_embedding="random") if conditional else {}))
    return dict(objective=objective, dataset="digits-8:train", conditional=conditional,
                teacher=MINI_TEACHERS[conditional], freeze_level=freeze_level, **MINI_PROJECTED,
                discriminator_kwargs=d_kwargs, batch=64, lr=1e-4, d_lr=1e-4, total_kimg=MINI_KIMG,
                ema_kimg=MINI_KIMG / 10, r1_interval=16, snapshot_kimg=MINI_KIMG / 3, log_kimg=MINI_KIMG / 20,
                num_workers=0)


# A small discriminator trained from scratch (no pretrained features, no BatchNorm; R1 in paperlib's convention): the
# ablation row that asks what the projected discriminator's pretrained features buy.
SMALL_D = dict(discriminator="small", discriminator_kwargs={}, bn_group=0, r1_gamma=1e-3, r1_gamma_sum=0.0)

PRESETS: dict[str, dict] = {}
for _name, _run in _PAPER_RUNS.items():
    PRESETS[f"{_name}-gdd"] = dict(_run, freeze_level=0)
    PRESETS[f"{_name}-gddi"] = dict(_run, freeze_level=1)
# The mini presets' default generator learning rates (each the lowest training-split FID of three rates at 16 kimg;
# the layer study trains at them). The protocol's runs set their own, chosen on its grid of rates
# (results/evidence/<dataset>/rates.json).
MINI_LRS = {("digits", "gdd"): 3e-4, ("digits", "gddi"): 1e-3, ("digits-cond", "gdd"): 3e-4,
            ("digits-cond", "gddi"): 3e-4}
for _cond, _dataset in ((False, "digits"), (True, "digits-cond")):
    PRESETS[f"{_dataset}-teacher"] = _mini_teacher(_cond)
    PRESETS[f"{_dataset}-gdd"] = dict(_mini_student("gdd", _cond, 0), lr=MINI_LRS[_dataset, "gdd"])
    PRESETS[f"{_dataset}-gddi"] = dict(_mini_student("gdd", _cond, 1), lr=MINI_LRS[_dataset, "gddi"])
    PRESETS[f"{_dataset}-gddi-smalld"] = dict(_mini_student("gdd", _cond, 1), **SMALL_D, lr=3e-4 if _cond else 3e-3)
    # A fixed bank of 4,096 teacher solutions (NFE 35), not a solve per step; the rate is not swept.
    PRESETS[f"{_dataset}-instance"] = dict(_mini_student("instance", _cond, 0), **SMALL_D, lr=3e-4, instance_bank=4096)
PRESETS["smoke-teacher"] = dict(_mini_teacher(False), arch=SMOKE_ARCH, batch=32, total_kimg=0.256, lr_rampup_kimg=0,
                                snapshot_kimg=0.128, log_kimg=0.064)
# Smoke: tiny networks for seconds. GDD-I uses the mini projected discriminator (digits backbones, 1/8 width;
# BatchNorm over the batch of 16; a random class embedding serves a conditional run), so the smoke table and its
# notebook test run the mini recipe's discriminator end to end; GDD and the ablation row keep the small one (the
# many tests that train smoke GDD with other batch sizes and processes stay quick).
SMOKE_PROJECTED = dict(MINI_PROJECTED, bn_group=16,
                       discriminator_kwargs=dict(backbones="digits", width=0.125, class_embedding="random"))
SMOKE_SMALL_D = dict(SMALL_D, discriminator_kwargs=dict(channels=16))
for _name, _objective, _level, _d in (("smoke-gdd", "gdd", 0, SMOKE_SMALL_D), ("smoke-gddi", "gdd", 1, SMOKE_PROJECTED),
                                      ("smoke-instance", "instance", 0, SMOKE_SMALL_D),
                                      ("smoke-gddi-smalld", "gdd", 1, SMOKE_SMALL_D)):
    PRESETS[_name] = dict(_mini_student(_objective, False, _level), **_d, teacher=None, batch=16, total_kimg=0.32,
                          ema_kimg=10, snapshot_kimg=0.16, log_kimg=0.08, r1_interval=4, instance_steps=2)


def preset_config(name: str, run_dir: str | None = None, **overrides) -> TrainConfig:
    """The TrainConfig of preset ``name`` with ``overrides`` applied; run_dir defaults to runs/<name>."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    values = {k: v for k, v in PRESETS[name].items() if not k.startswith("_")}
    values.update(overrides)
    values["run_dir"] = run_dir or overrides.get("run_dir") or f"runs/{name}"
    cfg = TrainConfig.from_dict(values)
    teacher_name = PRESETS[name].get("_teacher_name")
    if teacher_name and not cfg.teacher:
        raise ConfigError(f"preset {name!r} needs the EDM teacher: teacher=/path/to/{teacher_name}")
    if teacher_name and not cfg.dataset:
        raise ConfigError(f"preset {name!r} needs its dataset in EDM's format: dataset=/path/to/dataset.zip")
    if teacher_name and cfg.conditional and "class_embedding" not in cfg.discriminator_kwargs:
        raise ConfigError(f"preset {name!r} starts its conditional discriminator heads from the authors' class "
                          f"embedding: discriminator_kwargs.class_embedding=/path/to/in_embeddings/"
                          f"tf_efficientnet_lite0.pkl (Zyriix/GDD repository), or 'random' to start from N(0, 1)")
    return cfg
